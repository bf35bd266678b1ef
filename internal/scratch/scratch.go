// Package scratch makes per-run temporary directories for files that hold
// personal data (spilled datasets, sort runs, objects being stored). Each
// run's directory is 0700 and holds a lock file the run keeps flock(2)ed
// while it lives, so the next run can tell a crashed run's leftovers from
// a live run's work and remove them: a SIGKILL cannot leave personal data
// behind for longer than the next command.
package scratch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// lockName is the lock file inside each run directory.
const lockName = ".lock"

// unlockedAge is how old a run directory without a lock file must be to
// count as stale: New makes the directory a moment before its lock file.
const unlockedAge = 10 * time.Minute

// Dir is one run's scratch directory.
type Dir struct {
	Path string

	mu   sync.Mutex
	lock *os.File
}

// New removes stale run directories named prefix* in parent, then makes a
// new one (0700) and locks it. parent is created 0700 if missing.
func New(parent, prefix string) (*Dir, error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	if _, err := Sweep(parent, prefix); err != nil {
		return nil, err
	}
	p, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(p, lockName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(p)
		return nil, fmt.Errorf("scratch: lock %s: %w", p, err)
	}
	return &Dir{Path: p, lock: f}, nil
}

// Close removes the directory and everything in it. It is safe to call
// more than once.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return nil
	}
	err := os.RemoveAll(d.Path)
	d.lock.Close() // releases the flock
	d.lock = nil
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	return nil
}

// Sweep removes the run directories named prefix* in parent whose run is
// gone: their lock can be taken, or they have no lock file and are older
// than a few minutes. It returns the directories removed; a missing
// parent is not an error.
func Sweep(parent, prefix string) ([]string, error) {
	ents, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if stale(p) {
			if err := os.RemoveAll(p); err != nil {
				return removed, fmt.Errorf("scratch: remove stale %s: %w", p, err)
			}
			removed = append(removed, p)
		}
	}
	return removed, nil
}

// stale reports whether the run that made p has ended without removing it.
func stale(p string) bool {
	f, err := os.OpenFile(filepath.Join(p, lockName), os.O_RDWR, 0)
	if err != nil {
		fi, serr := os.Stat(p)
		return errors.Is(err, os.ErrNotExist) && serr == nil && time.Since(fi.ModTime()) > unlockedAge
	}
	defer f.Close()
	// Holding the lock while the caller removes p is not needed: a live
	// run never gives its lock up before removing its directory.
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

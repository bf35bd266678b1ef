// Package fstest holds checks shared by the tests of the file-system
// readers (like testing/fstest for io/fs): comparing listings with a
// ground truth or The Sleuth Kit, and reading files concurrently with a
// walk, as evidx ls does.
package fstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
)

// Tree maps a path to the hex SHA-256 of its content.
type Tree map[string]string

// PathOnly in a wanted Tree says the path must be listed, whatever its content.
const PathOnly = "(path only)"

// SHA256 returns the hex SHA-256 of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Compare reports every path missing from got, listed in got but not
// wanted, or with another content.
func Compare(t testing.TB, what string, want, got Tree) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s missing", what, p)
		} else if g != w && w != PathOnly {
			t.Errorf("%s: %s sha256 %s, want %s", what, p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra %s", what, p)
		}
	}
}

// ConcurrentSums walks fsys, hashing every readable regular file in 4
// goroutines while Walk runs and Unallocated is called, as evidx ls does;
// under -race it checks that Open shares nothing with Walk.
func ConcurrentSums(t *testing.T, fsys fs.FileSystem) Tree {
	t.Helper()
	jobs := make(chan *fs.File)
	var mu sync.Mutex
	sums := Tree{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				r, err := fsys.Open(f)
				if err != nil {
					t.Errorf("%s: %v", f.Path, err)
					continue
				}
				b, err := io.ReadAll(r)
				if err != nil {
					t.Errorf("%s: %v", f.Path, err)
				}
				mu.Lock()
				sums[f.Path] = SHA256(b)
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := fsys.Unallocated(); err != nil {
			t.Error(err)
		}
	}()
	err := fsys.Walk(context.Background(), func(f *fs.File) error {
		if f.Type == "file" && f.Recoverable {
			jobs <- f
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// Walk returns every File fsys reports, in walk order, with the SHA-256 of
// each readable regular file. A read error fails the test with the path.
func Walk(t testing.TB, fsys fs.FileSystem) ([]*fs.File, Tree) {
	t.Helper()
	var files []*fs.File
	sums := Tree{}
	err := fsys.Walk(context.Background(), func(f *fs.File) error {
		files = append(files, f)
		if f.Type != "file" || !f.Recoverable {
			return nil
		}
		r, err := fsys.Open(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		sums[f.Path] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, sums
}

// CheckUnallocated verifies that the unallocated ranges un a reader
// reported are present, sorted and disjoint, and that no run of an
// allocated file overlaps them. skip leaves out runs that are not in the
// file system's data area (resident or inline data, sparse runs).
func CheckUnallocated(t testing.TB, un []fs.Range, files []*fs.File, skip func(*fs.File, fs.Run) bool) {
	t.Helper()
	if len(un) == 0 {
		t.Fatal("no unallocated space")
	}
	for i := 1; i < len(un); i++ {
		if un[i].Off < un[i-1].Off+un[i-1].Len {
			t.Fatalf("ranges overlap or unsorted: %v %v", un[i-1], un[i])
		}
	}
	for _, f := range files {
		if f.Deleted {
			continue
		}
		for _, r := range f.Runs {
			if r.Sparse || skip(f, r) {
				continue
			}
			for _, u := range un {
				if r.Offset < u.Off+u.Len && u.Off < r.Offset+r.Length {
					t.Errorf("%s run %+v overlaps unallocated %+v", f.Path, r, u)
				}
			}
		}
	}
}

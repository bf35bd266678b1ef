package custody

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RejectsDir holds the malformed rows of the datasets loaded into a case,
// one file per dataset: rejects/<dataset SHA-256>.tsv (0600 in a 0700
// directory: the rows are personal data).
const RejectsDir = "rejects"

// RejectsKind is the audit item kind of a kept rejects file.
const RejectsKind = "rejects"

// rejectsTmpPrefix starts the name of a rejects file still being written.
const rejectsTmpPrefix = ".loading-"

// Rejects is the rejects file of one dataset load while it is written: a
// temporary rejects/.loading-*.tsv behind a buffer, hashed as it is
// written. It is the io.Writer a dataset reader writes malformed rows to
// (ingest.Options.Rejects), one line each. Not safe for concurrent
// Writes (ReadDataset serialises its own). End it with Finish.
type Rejects struct {
	c    *Case
	f    *os.File
	w    *bufio.Writer
	h    hash.Hash
	n    int64 // bytes written
	err  error // first write error
	done bool
}

// NewRejects starts a rejects file for one dataset load, creating the
// rejects directory (0700) when needed.
func (c *Case) NewRejects() (*Rejects, error) {
	dir := filepath.Join(c.dir, RejectsDir)
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	tmp, err := c.Scratch()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmp, rejectsTmpPrefix+"*.tsv") // 0600
	if err != nil {
		return nil, fmt.Errorf("custody: rejects: %w", err)
	}
	return &Rejects{c: c, f: f, w: bufio.NewWriterSize(f, 256<<10), h: sha256.New()}, nil
}

// Write appends p to the rejects file. A write error is kept and returned
// by Finish as well (dataset readers do not stop on one).
func (r *Rejects) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.w.Write(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if err != nil {
		r.err = fmt.Errorf("custody: rejects: %w", err)
	}
	return n, r.err
}

// Finish ends the load's rejects file. keep says the load succeeded and
// loaded the dataset (it was not skipped as already ingested: a skip may
// come after the rows were read, when another load of the same file
// finished first). When keep and rows were written, the file is renamed
// rejects/<datasetSHA>.tsv (replacing the file of an earlier, cut-short
// load of the same dataset) and returned as one audit item of kind
// "rejects" (case-relative path, size, SHA-256) for the outputs of the
// load's audit entry, so verify and the report cover it. Otherwise the
// file is removed and nothing is returned. Calls after the first return
// nothing.
func (r *Rejects) Finish(datasetSHA string, keep bool) ([]Item, error) {
	if r.done {
		return nil, nil
	}
	r.done = true
	err := r.err
	if ferr := r.w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("custody: rejects: %w", ferr)
	}
	if cerr := r.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("custody: rejects: %w", cerr)
	}
	keep = keep && r.n > 0
	if err == nil && keep && !isHex(datasetSHA, 64) {
		err = fmt.Errorf("custody: rejects: bad dataset SHA-256 %q", datasetSHA)
	}
	if err != nil || !keep {
		if rerr := os.Remove(r.f.Name()); err == nil && rerr != nil {
			err = fmt.Errorf("custody: rejects: %w", rerr)
		}
		return nil, err
	}
	final := filepath.Join(r.c.dir, RejectsDir, datasetSHA+".tsv")
	if err := os.Rename(r.f.Name(), final); err != nil {
		os.Remove(r.f.Name())
		return nil, fmt.Errorf("custody: rejects: %w", err)
	}
	rel, _ := filepath.Rel(r.c.dir, final)
	return []Item{{Kind: RejectsKind, Path: rel, Size: r.n, SHA256: hex.EncodeToString(r.h.Sum(nil))}}, nil
}

// RejectsItems hashes every kept rejects file (rejects/<sha256>.tsv) and
// returns them as audit items with case-relative paths, in name order;
// files still being written are left out.
func (c *Case) RejectsItems(ctx context.Context) ([]Item, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, RejectsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("custody: rejects: %w", err)
	}
	var items []Item
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sum, ok := strings.CutSuffix(e.Name(), ".tsv")
		if !e.Type().IsRegular() || !ok || !isHex(sum, 64) {
			continue
		}
		rel := filepath.Join(RejectsDir, e.Name())
		h, n, err := hashFile(filepath.Join(c.dir, rel))
		if err != nil {
			return nil, fmt.Errorf("custody: rejects: %w", err)
		}
		items = append(items, Item{Kind: RejectsKind, Path: rel, Size: n, SHA256: h})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	return items, nil
}

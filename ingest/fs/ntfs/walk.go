package ntfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/evidx/evidx/ingest/fs"
)

// orphanDir is the virtual directory, named as TSK names it, for entries
// whose parent directory is gone or reused.
const orphanDir = "/$OrphanFiles"

// maxPathDepth bounds the parent chain of one path: deeper chains are
// treated as cycles.
const maxPathDepth = 1024

// maxSparseFactor bounds what Open will read: a stream (necessarily sparse)
// claiming more than this many times the volume's size is listed but not
// read, so that a corrupt size cannot make a reader produce terabytes of
// zeros.
const maxSparseFactor = 64

// entryInfo is what the first pass keeps of each base MFT record: enough to
// build paths.
type entryInfo struct {
	valid bool // a readable base record
	seq   uint16
	flags uint16
	names []fileName
}

// walker carries one Walk's state.
type walker struct {
	n       *FS
	entries []entryInfo
	paths   map[uint64]string // directory entry → path, "" for the root
	busy    map[uint64]bool   // directories being resolved: cycle detection
}

// Walk reports every MFT base record that has a name: allocated and not in
// use (deleted), one File per long name and data stream, in MFT entry order.
// A deleted entry whose parent directory is gone is listed under
// /$OrphanFiles.
func (n *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	count := n.mftSize / n.bt.recordSize
	w := &walker{n: n, entries: make([]entryInfo, count), paths: map[uint64]string{entryRoot: ""}, busy: map[uint64]bool{}}
	raw := make([]byte, n.bt.recordSize)
	// Pass 1: names, parents and flags of every record.
	for i := int64(0); i < count; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := n.record(uint64(i), raw)
		if rec == nil || rec.baseRef != 0 {
			if err != nil && !isEmptyRecord(raw) {
				n.problem("%v", err)
			}
			continue
		}
		w.entries[i] = entryInfo{valid: true, seq: rec.seq, flags: rec.flags, names: rec.names()}
	}
	// Pass 2: files.
	for i := int64(0); i < count; i++ {
		e := &w.entries[i]
		if !e.valid || len(e.names) == 0 || i == entryRoot {
			continue
		}
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := n.record(uint64(i), raw)
		if rec == nil {
			continue // reported in pass 1
		}
		if err != nil {
			n.problem("%v", err)
		}
		for _, name := range e.names {
			files := w.files(rec, name)
			for _, f := range files {
				if err := fn(f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isEmptyRecord reports a never-used MFT slot (all zeros).
func isEmptyRecord(raw []byte) bool {
	for _, c := range raw[:min(len(raw), 64)] {
		if c != 0 {
			return false
		}
	}
	return true
}

// record reads and parses MFT entry num into raw. A nil record means the
// entry is unreadable; a record with an error is partly decoded.
func (n *FS) record(num uint64, raw []byte) (*record, error) {
	off, err := n.readRecord(num, raw)
	if err != nil {
		return nil, err
	}
	rec, err := n.parseRecord(raw, num, off)
	if rec != nil && rec.baseRef == 0 && rec.list != nil {
		if xerr := n.expand(rec); xerr != nil && err == nil {
			err = xerr
		}
	}
	return rec, err
}

// dirPath resolves the path of directory entry num referenced with seq.
func (w *walker) dirPath(num uint64, seq uint16, depth int) (string, bool) {
	if p, ok := w.paths[num]; ok && (num == entryRoot || w.seqMatches(num, seq)) {
		return p, true
	}
	if num >= uint64(len(w.entries)) || depth > maxPathDepth {
		return "", false
	}
	e := &w.entries[num]
	if !e.valid || e.flags&flagDir == 0 || len(e.names) == 0 || !w.seqMatches(num, seq) {
		return "", false
	}
	if w.busy[num] {
		w.n.problem("mft entry %d at %#x: %v: directory cycle through its parent references", num, w.n.recordOffset(num), ErrCorrupt)
		return "", false
	}
	w.busy[num] = true
	defer delete(w.busy, num)
	fn := e.names[0]
	pp, ok := w.dirPath(fn.parent, fn.parentSeq, depth+1)
	if !ok {
		return "", false
	}
	p := pp + "/" + w.component(num, fn.name)
	w.paths[num] = p
	return p, true
}

// seqMatches checks a reference's sequence number against the entry's: equal,
// or one behind for an entry freed since (NTFS bumps it on deletion). 0 is
// a reference without a sequence.
func (w *walker) seqMatches(num uint64, seq uint16) bool {
	if seq == 0 || num >= uint64(len(w.entries)) {
		return true
	}
	e := &w.entries[num]
	if e.seq == seq {
		return true
	}
	return e.flags&flagInUse == 0 && e.seq == seq+1
}

// files builds the Files of record rec under one of its names: the entry
// itself, or its unnamed $DATA, then each named stream as path:stream.
func (w *walker) files(rec *record, name fileName) []*fs.File {
	n := w.n
	deleted := !rec.inUse()
	path := ""
	if pp, ok := w.dirPath(name.parent, name.parentSeq, 0); ok {
		path = pp + "/" + w.component(rec.num, name.name)
	} else {
		if !deleted {
			n.problem("mft entry %d at %#x: %v: parent entry %d (sequence %d) is not a directory in use", rec.num, rec.off, ErrCorrupt, name.parent, name.parentSeq)
		}
		path = orphanDir + "/" + w.component(rec.num, name.name)
	}
	m, a, c, b, _ := rec.times()
	base := fs.File{Path: path, Deleted: deleted, Inode: rec.num, Mtime: m, Atime: a, Ctime: c, Btime: b}
	var out []*fs.File
	names := n.streamNames(rec)
	hasDefault := false
	for _, s := range names {
		hasDefault = hasDefault || s == ""
	}
	if rec.isDir() || !hasDefault {
		f := base
		f.Type = "other"
		if rec.isDir() {
			f.Type = "dir"
		}
		f.Recoverable = !deleted
		out = append(out, &f)
	}
	for _, s := range names {
		if s == "" && rec.isDir() {
			continue
		}
		f := base
		f.Type = "file"
		if s != "" {
			f.Path += ":" + s
		}
		st, err := n.stream(rec, s)
		if st == nil {
			f.Err = err.Error()
			n.problem("%s: %v", f.Path, err)
			out = append(out, &f)
			continue
		}
		f.Size = st.size
		if st.nonRes {
			f.Runs = st.runs
		} else if len(st.resident) > 0 {
			f.Runs = st.fix.runs(st.residentAt, int64(len(st.resident)))
		}
		switch {
		case err != nil:
			f.Err = err.Error()
			n.problem("%s: %v", f.Path, err)
		case st.flags&attrEncrypted != 0:
			f.Err = "encrypted stream"
		}
		if f.Err == "" && f.Size > maxSparseFactor*n.size {
			f.Err = fmt.Sprintf("size %d is more than %d times the volume: not read", f.Size, maxSparseFactor)
		}
		f.Recoverable = f.Err == ""
		if deleted && f.Recoverable && st.nonRes {
			if reason := n.reallocated(st.runs); reason != "" {
				f.Recoverable, f.Err = false, reason
			}
		}
		out = append(out, &f)
	}
	return out
}

// streamNames lists the names of the record's $DATA streams ("" is the
// unnamed one), in first-seen order (with expand, those in extension
// records too).
func (n *FS) streamNames(rec *record) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, a := range rec.attrs {
		if a.typ == attrData {
			add(a.name)
		}
	}
	return out
}

// reallocated says why a deleted stream's clusters cannot be trusted (one of
// them is allocated again in $Bitmap), or "".
func (n *FS) reallocated(runs []fs.Run) string {
	bm, err := n.loadBitmap()
	if err != nil {
		return "allocation unknown: " + err.Error()
	}
	cs := n.bt.clusterSize
	for _, r := range runs {
		if r.Sparse {
			continue
		}
		for c := r.Offset / cs; c*cs < r.Offset+r.Length; c++ {
			if c/8 >= int64(len(bm)) || bm[c/8]&(1<<(c%8)) != 0 {
				return fmt.Sprintf("cluster %d (offset %#x) reallocated", c, c*cs)
			}
		}
	}
	return ""
}

// loadBitmap reads $Bitmap (MFT entry 6) once: one bit per cluster, set
// when allocated.
func (n *FS) loadBitmap() ([]byte, error) {
	n.bitmapOnce.Do(func() {
		raw := make([]byte, n.bt.recordSize)
		rec, err := n.record(entryBitmap, raw)
		if rec == nil {
			n.bitmapErr = err
			return
		}
		st, err := n.stream(rec, "")
		if st == nil {
			n.bitmapErr = err
			return
		}
		need := (n.bt.clusters + 7) / 8
		if st.size < need {
			n.bitmapErr = &ParseError{Format: "ntfs", Op: "$Bitmap", Offset: rec.off, Err: fmt.Errorf("%w: %d bytes for %d clusters", ErrCorrupt, st.size, n.bt.clusters)}
			return
		}
		b := make([]byte, need)
		var r io.Reader = bytes.NewReader(st.resident)
		if st.nonRes {
			r = fs.NewRunReader(n.r, st.runs, st.size, "stream content")
		}
		if k, err := io.ReadFull(r, b); err != nil {
			// Unreadable bitmap bytes (a truncated image) count as
			// allocated: nothing there is offered as free.
			for i := k; i < len(b); i++ {
				b[i] = 0xFF
			}
			n.problem("$Bitmap (mft entry 6 at %#x) bytes %d..%d: %v", rec.off, k, len(b), err)
		}
		n.bitmap = b
	})
	return n.bitmap, n.bitmapErr
}

// Unallocated returns the byte ranges of clusters $Bitmap marks free, plus
// volume space past the last cluster other than the backup boot sector in
// the last sector. Sorted and merged.
func (n *FS) Unallocated() ([]fs.Range, error) {
	bm, err := n.loadBitmap()
	if err != nil {
		return nil, err
	}
	cs := n.bt.clusterSize
	var free fs.RangeSet
	add := free.Add
	last := min(n.bt.clusters, n.size/cs)
	for c := int64(0); c < last; c++ {
		if bm[c/8] == 0xFF && c%8 == 0 && c+8 <= last {
			c += 7
			continue
		}
		if bm[c/8]&(1<<(c%8)) == 0 {
			add(c*cs, cs)
		}
	}
	end := min(n.size, n.bt.volumeBytes) - n.bt.sectorSize // backup boot sector
	if tail := n.bt.clusters * cs; tail < end {
		add(tail, end-tail)
	}
	return free.Ranges(), nil
}

// Open returns the content of a File Walk reported: resident data from the
// (fixed-up) MFT record, non-resident data through its runs, compressed
// streams through go-ntfs. Deleted files only when Recoverable.
func (n *FS) Open(f *fs.File) (io.Reader, error) {
	if f.Deleted && !f.Recoverable {
		return nil, fmt.Errorf("%s: %w: %s", f.Path, ErrNotRecoverable, f.Err)
	}
	if f.Type != "file" {
		return nil, fmt.Errorf("%s: ntfs: not a file (%s)", f.Path, f.Type)
	}
	if f.Size > maxSparseFactor*n.size {
		return nil, fmt.Errorf("%s: %w: size %d is more than %d times the volume", f.Path, ErrCorrupt, f.Size, maxSparseFactor)
	}
	raw := make([]byte, n.bt.recordSize)
	rec, err := n.record(f.Inode, raw)
	if rec == nil {
		return nil, err
	}
	name := ""
	if i := strings.LastIndexByte(f.Path, ':'); i > strings.LastIndexByte(f.Path, '/') {
		name = f.Path[i+1:]
	}
	st, err := n.stream(rec, name)
	if st == nil {
		return nil, err
	}
	switch {
	case !st.nonRes:
		return bytes.NewReader(bytes.Clone(st.resident)), nil
	case st.flags&attrEncrypted != 0:
		return nil, fmt.Errorf("%s: %w: encrypted (EFS)", f.Path, ErrUnsupported)
	case st.flags&attrCompressed != 0:
		return n.compressed(f, name)
	}
	for _, r := range st.runs {
		if !r.Sparse && r.Offset+r.Length > n.size {
			return nil, &ParseError{Format: "ntfs", Op: f.Path + " byte run", Offset: r.Offset, Err: ErrTruncated}
		}
	}
	return fs.NewRunReader(n.r, st.runs, st.size, "stream content"), nil
}

// component escapes a $FILE_NAME as a path component (fs.NameComponent),
// naming in problems a name that holds '/' or is "." or "..".
func (w *walker) component(num uint64, name string) string {
	c, odd := fs.NameComponent(name)
	if odd {
		w.n.problem("mft entry %d at %#x: file name %q is no valid component; listed as %q", num, w.n.recordOffset(num), name, c)
	}
	return c
}

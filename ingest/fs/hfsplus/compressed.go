package hfsplus

import (
	"bytes"
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/decmpfs"
)

// compressedFile sets Size from the decmpfs header of a compressed file;
// its content is decoded by Open, so Runs stay empty.
func (h *FS) compressedFile(f *fs.File, e entry, a attr) error {
	hd, _, err := decmpfs.ParseHeader(a.data)
	if err != nil {
		return fmt.Errorf("com.apple.decmpfs at %#x: %w", a.off, err)
	}
	f.Size = hd.Size
	if hd.InFork() {
		if _, bad := h.runs(e.cnid, 0xff, parseFork(e.rec[cRsrcFork:])); bad != "" {
			return fmt.Errorf("compressed content in the resource fork of record at %#x: %w: %s", e.off, ErrCorrupt, bad)
		}
	}
	return nil
}

// openCompressed decodes a decmpfs file: inline in the attribute, or in
// chunks in the resource fork.
func (h *FS) openCompressed(e entry, a attr, path string) (io.Reader, error) {
	hd, data, err := decmpfs.ParseHeader(a.data)
	if err != nil {
		return nil, fmt.Errorf("%s: com.apple.decmpfs at %#x: %w", path, a.off, err)
	}
	if !hd.InFork() {
		b, err := decmpfs.Inline(hd, data)
		if err != nil {
			return nil, fmt.Errorf("%s: com.apple.decmpfs at %#x: %w", path, a.off, err)
		}
		return bytes.NewReader(b), nil
	}
	rf := parseFork(e.rec[cRsrcFork:])
	runs, bad := h.runs(e.cnid, 0xff, rf)
	if bad != "" {
		return nil, fmt.Errorf("%s: resource fork of record at %#x: %w: %s", path, e.off, ErrCorrupt, bad)
	}
	return decmpfs.NewForkReader(hd, fs.NewRunReaderAt(h.r, runs, int64(rf.size), path+RsrcSuffix), int64(rf.size), path)
}

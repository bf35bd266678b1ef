package apfs

import (
	"bytes"
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/decmpfs"
)

// ErrUnsupported says a file is compressed with a method evidx does not
// decode (decmpfs's LZFSE entropy-coded blocks).
var ErrUnsupported = decmpfs.ErrUnsupported

// compressed is what Open needs to decode one decmpfs file.
type compressed struct {
	h      decmpfs.Header
	inline []byte   // data after the decmpfs header (inline types)
	fork   []fs.Run // the resource fork (fork types)
	forkSz int64
}

func (a *FS) compression(v *volume, t *tree, id uint64, ino *inode) (*compressed, error) {
	h, data, err := decmpfs.ParseHeader(ino.decmpfs)
	c := &compressed{h: h}
	if err != nil {
		return c, err
	}
	if !h.InFork() {
		c.inline = data
		return c, nil
	}
	if ino.rsrc == nil {
		return c, fmt.Errorf("%w: decmpfs type %d without a resource fork", ErrCorrupt, h.Type)
	}
	runs, bad := a.runs(t.extents[ino.rsrc.oid], ino.rsrc.size)
	if bad != "" {
		return c, fmt.Errorf("%w: resource fork: %s", ErrCorrupt, bad)
	}
	c.fork, c.forkSz = runs, ino.rsrc.size
	return c, nil
}

// reader decodes the file.
func (c *compressed) reader(a *FS, path string) (io.Reader, error) {
	if !c.h.InFork() {
		out, err := decmpfs.Inline(c.h, c.inline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return bytes.NewReader(out), nil
	}
	fork := fs.NewRunReaderAt(a.r, c.fork, c.forkSz, path+" resource fork")
	return decmpfs.NewForkReader(c.h, fork, c.forkSz, path)
}

package ntfs

import (
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest/fs"
	"www.velocidex.com/golang/go-ntfs/parser"
)

// compressed opens an LZNT1-compressed stream through go-ntfs. Every call
// into go-ntfs runs under recover: it panics on some corrupt records; a
// panic becomes an error naming the MFT entry and its offset.
func (n *FS) compressed(f *fs.File, name string) (r io.Reader, err error) {
	n.gmu.Lock()
	defer n.gmu.Unlock()
	defer n.recoverAs(&err, f.Inode, "go-ntfs open")
	if n.gontfs == nil {
		// The context bootstraps $MFT once; it is reused for every
		// compressed stream of this volume.
		ctx, err := parser.GetNTFSContext(n.r, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: go-ntfs: %w", f.Path, err)
		}
		n.gontfs = ctx
	}
	ctx := n.gontfs
	entry, err := ctx.GetMFT(int64(f.Inode))
	if err != nil {
		return nil, fmt.Errorf("%s: go-ntfs: %w", f.Path, err)
	}
	st, err := parser.OpenStream(ctx, entry, 128, parser.WILDCARD_STREAM_ID, name)
	if err != nil {
		return nil, fmt.Errorf("%s: go-ntfs: %w", f.Path, err)
	}
	return &safeReader{n: n, ra: st, size: f.Size, entry: f.Inode}, nil
}

// recoverAs turns a panic inside go-ntfs into *errp naming MFT entry num.
func (n *FS) recoverAs(errp *error, num uint64, op string) {
	if p := recover(); p != nil {
		*errp = &ParseError{Format: "ntfs", Op: fmt.Sprintf("mft entry %d %s", num, op), Offset: n.recordOffset(num), Err: fmt.Errorf("%w: go-ntfs panicked: %v", ErrCorrupt, p)}
		n.problem("%v", *errp)
	}
}

// safeReader reads a go-ntfs stream sequentially, recovering its panics.
type safeReader struct {
	n     *FS
	ra    io.ReaderAt
	size  int64
	pos   int64
	entry uint64
}

// Read reads the next bytes through go-ntfs, under its mutex and recover.
func (s *safeReader) Read(p []byte) (k int, err error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	s.n.gmu.Lock()
	defer s.n.gmu.Unlock()
	defer s.n.recoverAs(&err, s.entry, "go-ntfs read")
	if int64(len(p)) > s.size-s.pos {
		p = p[:s.size-s.pos]
	}
	k, err = s.ra.ReadAt(p, s.pos)
	s.pos += int64(k)
	if k > 0 && err == io.EOF {
		err = nil
	}
	if k == 0 && err == nil {
		err = io.ErrUnexpectedEOF
	}
	return k, err
}

package custody

import (
	"io"
	"os"
)

// holeBlock is the unit a sparseFile leaves unwritten when it is all
// zeros: the page size of the host file systems.
const holeBlock = 4096

// sparseBuf is how much a sparseFile gathers before writing: whole blocks
// whatever the callers' write sizes, and one system call per run of data.
const sparseBuf = 1 << 20

// sparseFile writes a stream to f leaving every aligned all-zero block a
// hole, as `cp --sparse=always` does: a sparse file from evidence (a
// 2 GiB file in a 48 MB volume) takes its real size in the case and in
// exports, not its logical size. Reads see the same bytes. Call finish
// after the last Write.
type sparseFile struct {
	f    *os.File
	buf  []byte
	off  int64 // file offset of buf[0]
	hole bool  // the file so far ends in a hole
}

// newSparseFile writes to f. Its buffer grows with what is written, so a
// small file (most exports) costs no 1 MiB buffer.
func newSparseFile(f *os.File) *sparseFile { return &sparseFile{f: f} }

func (s *sparseFile) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), sparseBuf-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == sparseBuf {
			if err := s.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush writes buf, skipping its all-zero blocks.
func (s *sparseFile) flush() error {
	b := s.buf
	start := -1 // first byte of the data run not yet written
	for i := 0; i < len(b); i += holeBlock {
		blk := b[i:min(i+holeBlock, len(b))]
		if len(blk) == holeBlock && allZero(blk) {
			if start >= 0 {
				if _, err := s.f.WriteAt(b[start:i], s.off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
			s.hole = true
			continue
		}
		if start < 0 {
			start = i
		}
		s.hole = false
	}
	if start >= 0 {
		if _, err := s.f.WriteAt(b[start:], s.off+int64(start)); err != nil {
			return err
		}
	}
	s.off += int64(len(b))
	s.buf = s.buf[:0]
	return nil
}

// finish writes what is gathered and gives the file its full length when
// it ends in a hole.
func (s *sparseFile) finish() error {
	if err := s.flush(); err != nil {
		return err
	}
	if s.hole {
		return s.f.Truncate(s.off)
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var _ io.Writer = (*sparseFile)(nil)

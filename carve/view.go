package carve

import (
	"errors"
	"io"
)

// Run is a contiguous stretch of the image: Off and Len in bytes from the
// start of the image. A carved file is one Run, or two when it was found
// fragmented across a gap of allocated blocks.
type Run struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// End is the offset one past the last byte of the run.
func (r Run) End() int64 { return r.Off + r.Len }

// view is a logical byte stream made of runs of the image laid end to end:
// logical offset 0 is runs[0].Off. Validators read a candidate file through
// a view so that a fragmented file reads as one stream.
type view struct {
	r    io.ReaderAt
	runs []Run
	size int64
}

func newView(r io.ReaderAt, runs ...Run) *view {
	v := &view{r: r, runs: runs}
	for _, x := range runs {
		v.size += x.Len
	}
	return v
}

// ReadAt reads logical bytes [off, off+len(p)); it returns io.EOF when the
// view ends first. Safe for concurrent use if the underlying ReaderAt is.
func (v *view) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("carve: negative offset")
	}
	n := 0
	for _, x := range v.runs {
		if len(p) == 0 {
			break
		}
		if off >= x.Len {
			off -= x.Len
			continue
		}
		want := x.Len - off
		if int64(len(p)) < want {
			want = int64(len(p))
		}
		m, err := v.r.ReadAt(p[:want], x.Off+off)
		n += m
		if m < int(want) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		p = p[want:]
		off = 0
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// clip returns the image runs covering logical bytes [0, n) of the view.
func (v *view) clip(n int64) []Run {
	var out []Run
	for _, x := range v.runs {
		if n <= 0 {
			break
		}
		l := x.Len
		if l > n {
			l = n
		}
		out = append(out, Run{x.Off, l})
		n -= l
	}
	return out
}

// errTruncated is returned by a validator whose file continues past the end
// of the view: the caller may retry with the next free range appended.
var errTruncated = errors.New("carve: file continues past the end of the range")

// cursor reads a view sequentially through a small buffer; validators walk
// structures with it. Reads past the view end fail with errTruncated, reads
// past limit with errTooBig.
type cursor struct {
	r     io.ReaderAt
	size  int64 // bytes available in the view
	pos   int64 // logical offset of the next byte
	buf   []byte
	bufAt int64 // logical offset of buf[0]
	err   error
}

// bufSize is the read-ahead of a cursor in bytes.
const bufSize = 64 << 10

func newCursor(r io.ReaderAt, size int64) *cursor {
	return &cursor{r: r, size: size, buf: make([]byte, 0, bufSize)}
}

// fill makes at least need bytes from pos available in buf, or fails.
func (c *cursor) fill(need int) bool {
	if c.err != nil {
		return false
	}
	if c.pos >= c.bufAt && c.pos+int64(need) <= c.bufAt+int64(len(c.buf)) {
		return true
	}
	if c.pos+int64(need) > c.size {
		c.err = errTruncated
		return false
	}
	n := bufSize
	if need > n {
		n = need
	}
	if rem := c.size - c.pos; int64(n) > rem {
		n = int(rem)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	m, err := c.r.ReadAt(c.buf, c.pos)
	c.bufAt = c.pos
	c.buf = c.buf[:m]
	if m < need {
		if err == nil || err == io.EOF {
			err = errTruncated
		}
		c.err = err
		return false
	}
	return true
}

// peek returns the next n bytes without consuming them; valid until the next
// call on c. It returns nil on failure (see c.err).
func (c *cursor) peek(n int) []byte {
	if !c.fill(n) {
		return nil
	}
	i := c.pos - c.bufAt
	return c.buf[i : i+int64(n)]
}

// next consumes and returns n bytes (valid until the next call on c).
func (c *cursor) next(n int) []byte {
	b := c.peek(n)
	if b != nil {
		c.pos += int64(n)
	}
	return b
}

// byte1 consumes one byte; on failure it returns 0 and sets c.err.
func (c *cursor) byte1() byte {
	b := c.next(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// skip advances n bytes, failing with errTruncated past the view end.
func (c *cursor) skip(n int64) bool {
	if c.err != nil {
		return false
	}
	if n < 0 || c.pos+n > c.size {
		c.err = errTruncated
		return false
	}
	c.pos += n
	return true
}

// ReadByte implements io.ByteReader for decompressors that must not read
// ahead of the stream end (flate, bzip2): pos then is the exact length.
func (c *cursor) ReadByte() (byte, error) {
	b := c.next(1)
	if b == nil {
		if c.err == errTruncated {
			return 0, io.EOF
		}
		return 0, c.err
	}
	return b[0], nil
}

// Read implements io.Reader over the remaining view.
func (c *cursor) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.pos >= c.size {
		return 0, io.EOF
	}
	if !c.fill(1) {
		if c.err == errTruncated {
			return 0, io.EOF
		}
		return 0, c.err
	}
	i := c.pos - c.bufAt
	n := copy(p, c.buf[i:])
	c.pos += int64(n)
	return n, nil
}

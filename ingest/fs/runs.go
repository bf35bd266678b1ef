package fs

import (
	"errors"
	"io"
	"sort"
)

// NewRunReader returns a reader of a file of size bytes laid out in runs
// over r (runs sorted by Logical, offsets relative to r). Gaps between runs
// and sparse runs read as zeros, as the file system would return them. A
// short read of a run is a *ParseError naming the volume offset, so damage
// is never turned into silent zeros. op names the content in errors.
func NewRunReader(r io.ReaderAt, runs []Run, size int64, op string) io.Reader {
	return &runReader{r: r, runs: runs, size: size, op: op}
}

type runReader struct {
	r    io.ReaderAt
	runs []Run
	size int64
	op   string
	pos  int64
	i    int // index of the first run that may cover pos
}

// Read fills p from the run covering the current position, zeros in holes.
func (rr *runReader) Read(p []byte) (int, error) {
	if rr.pos >= rr.size {
		return 0, io.EOF
	}
	if int64(len(p)) > rr.size-rr.pos {
		p = p[:rr.size-rr.pos]
	}
	for rr.i < len(rr.runs) && rr.runs[rr.i].Logical+rr.runs[rr.i].Length <= rr.pos {
		rr.i++
	}
	if rr.i == len(rr.runs) || rr.runs[rr.i].Logical > rr.pos {
		// A hole up to the next run (or the end).
		end := rr.size
		if rr.i < len(rr.runs) {
			end = rr.runs[rr.i].Logical
		}
		n := int(min(int64(len(p)), end-rr.pos))
		clear(p[:n])
		rr.pos += int64(n)
		return n, nil
	}
	r := rr.runs[rr.i]
	n := int(min(int64(len(p)), r.Logical+r.Length-rr.pos))
	if r.Sparse {
		clear(p[:n])
		rr.pos += int64(n)
		return n, nil
	}
	m, err := rr.r.ReadAt(p[:n], r.Offset+(rr.pos-r.Logical))
	rr.pos += int64(m)
	if m < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return m, &ParseError{Op: rr.op, Offset: r.Offset + (rr.pos - r.Logical), Err: err}
	}
	return m, nil
}

// NewRunReaderAt is NewRunReader with random access: the content of a file
// laid out in runs over r, as an io.ReaderAt safe for concurrent use.
func NewRunReaderAt(r io.ReaderAt, runs []Run, size int64, op string) io.ReaderAt {
	return &runReader{r: r, runs: runs, size: size, op: op}
}

// ReadAt reads the content at off, run by run (holes as zeros); it keeps
// no state, so concurrent calls are safe.
func (rr *runReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("fs: negative offset")
	}
	n := 0
	for n < len(p) && off < rr.size {
		q := p[n:min(int64(len(p)), int64(n)+rr.size-off)]
		i := sort.Search(len(rr.runs), func(k int) bool { return rr.runs[k].Logical+rr.runs[k].Length > off })
		var k int
		switch {
		case i == len(rr.runs) || rr.runs[i].Logical > off:
			end := rr.size
			if i < len(rr.runs) {
				end = rr.runs[i].Logical
			}
			k = int(min(int64(len(q)), end-off))
			clear(q[:k])
		case rr.runs[i].Sparse:
			k = int(min(int64(len(q)), rr.runs[i].Logical+rr.runs[i].Length-off))
			clear(q[:k])
		default:
			r := rr.runs[i]
			want := int(min(int64(len(q)), r.Logical+r.Length-off))
			m, err := rr.r.ReadAt(q[:want], r.Offset+(off-r.Logical))
			if m < want {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return n + m, &ParseError{Op: rr.op, Offset: r.Offset + (off - r.Logical) + int64(m), Err: err}
			}
			k = want
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

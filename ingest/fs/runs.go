package fs

import (
	"errors"
	"io"
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
		return m, &ParseError{rr.op, r.Offset + (rr.pos - r.Logical), err}
	}
	return m, nil
}

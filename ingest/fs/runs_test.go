package fs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestRunReaderAt: random reads of a run layout (holes, sparse runs, runs
// out of order on the volume) equal the same bytes read in order.
func TestRunReaderAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	vol := make([]byte, 1<<16)
	for i := range vol {
		vol[i] = byte(rng.IntN(256))
	}
	for trial := range 50 {
		var runs []Run
		pos := int64(0)
		for range 1 + rng.IntN(8) {
			pos += int64(rng.IntN(3)) * int64(rng.IntN(700)) // sometimes a hole
			l := int64(1 + rng.IntN(3000))
			runs = append(runs, Run{Logical: pos, Offset: int64(rng.IntN(len(vol) - 3000)), Length: l, Sparse: rng.IntN(5) == 0})
			pos += l
		}
		size := pos + int64(rng.IntN(500)) // a hole at the end too
		want, err := io.ReadAll(NewRunReader(bytes.NewReader(vol), runs, size, "t"))
		if err != nil || int64(len(want)) != size {
			t.Fatalf("trial %d: sequential read %d bytes, %v", trial, len(want), err)
		}
		ra := NewRunReaderAt(bytes.NewReader(vol), runs, size, "t")
		for range 40 {
			off := rng.Int64N(size + 10)
			p := make([]byte, rng.IntN(4000))
			n, err := ra.ReadAt(p, off)
			end := min(off+int64(len(p)), size)
			wantN := int(max(end-off, 0))
			if n != wantN || (n < len(p)) != (err == io.EOF) || !bytes.Equal(p[:n], want[min(off, size):end]) {
				t.Fatalf("trial %d: ReadAt(%d, %d) = %d, %v; want %d bytes", trial, len(p), off, n, err, wantN)
			}
		}
	}
}

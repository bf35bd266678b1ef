package source

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// badMedia fails every read that touches [badOff, badOff+badLen), as an
// EWF reader fails every read touching a bad chunk (the test puts the
// range on 32 KiB chunk boundaries).
type badMedia struct {
	b              []byte
	badOff, badLen int64
}

func (m badMedia) ReadAt(p []byte, off int64) (int, error) {
	if off < m.badOff+m.badLen && off+int64(len(p)) > m.badOff {
		return 0, errors.New("bad chunk")
	}
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestTolerant: reads across a bad range return the good bytes around it
// and zeros only for the 4 KiB units it touches; the range is recorded
// once, whatever the read sizes.
func TestTolerant(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(rng.Uint32() | 1)
	}
	const chunk = 32 << 10
	m := badMedia{b: data, badOff: 9 * chunk, badLen: 2 * chunk}
	want := bytes.Clone(data)
	lo, hi := m.badOff, m.badOff+m.badLen
	clear(want[lo:hi])
	for _, step := range []int{1000, 4096, 65536 + 7, len(data)} {
		tr := NewTolerant(m, int64(len(data)))
		got := make([]byte, 0, len(data))
		buf := make([]byte, step)
		for off := int64(0); ; off += int64(step) {
			n, err := tr.ReadAt(buf, off)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("step %d: content differs", step)
		}
		bad := tr.Bad()
		if len(bad) != 1 || bad[0].Off != lo || bad[0].Off+bad[0].Len != hi {
			t.Errorf("step %d: bad ranges %+v, want one [%d, %d)", step, bad, lo, hi)
		}
		if _, ok := tr.Overlaps(lo-10, 20); !ok {
			t.Errorf("step %d: overlap not found", step)
		}
		if _, ok := tr.Overlaps(hi, 100); ok {
			t.Errorf("step %d: overlap past the range", step)
		}
	}
}

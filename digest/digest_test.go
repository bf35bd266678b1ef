package digest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func reference(b []byte) Sums {
	m, s1, s2 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return Sums{hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:]), int64(len(b))}
}

func TestSumMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, bufSize - 1, bufSize, bufSize + 1, 5*bufSize + 12345, 20 * bufSize} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := reference(b)
		// OneByteReader forces short reads; ReadFull must still fill buffers.
		for name, r := range map[string]func() any{
			"whole": func() any { return bytes.NewReader(b) },
			"half":  func() any { return iotest.HalfReader(bytes.NewReader(b)) },
		} {
			got, err := Sum(context.Background(), r().(interface{ Read([]byte) (int, error) }), nil)
			if err != nil {
				t.Fatalf("size %d %s: %v", size, name, err)
			}
			if got != want {
				t.Errorf("size %d %s: got %+v want %+v", size, name, got, want)
			}
		}
		w := NewWriter()
		w.Write(b)
		if w.Sums() != want {
			t.Errorf("Writer size %d: got %+v want %+v", size, w.Sums(), want)
		}
	}
}

func TestSumReportsReadError(t *testing.T) {
	boom := errors.New("boom")
	r := iotest.ErrReader(boom)
	_, err := Sum(context.Background(), r, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want wrapped boom", err)
	}
}

func TestSumProgressCountsEveryByte(t *testing.T) {
	b := make([]byte, 3*bufSize+7)
	var seen int64
	if _, err := Sum(context.Background(), bytes.NewReader(b), func(n int64) { seen += n }); err != nil {
		t.Fatal(err)
	}
	if seen != int64(len(b)) {
		t.Fatalf("progress saw %d bytes, want %d", seen, len(b))
	}
}

func BenchmarkSum(b *testing.B) {
	buf := make([]byte, 64<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := Sum(context.Background(), bytes.NewReader(buf), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSumCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Sum(ctx, bytes.NewReader(make([]byte, 4*bufSize)), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// BenchmarkMD5Only is the floor for BenchmarkSum: MD5 alone on one core.
// On two cores Sum should be within ~10% of it.
func BenchmarkMD5Only(b *testing.B) {
	buf := make([]byte, 64<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		h := md5.New()
		for off := 0; off < len(buf); off += bufSize {
			h.Write(buf[off : off+bufSize])
		}
		h.Sum(nil)
	}
}

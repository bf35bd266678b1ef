package carve

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

func carveAll(t *testing.T, img []byte, ranges []Run, opts Options) []Carved {
	t.Helper()
	var got []Carved
	err := Carve(context.Background(), bytes.NewReader(img), ranges, opts, func(c Carved) error {
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkExact asserts every planted file was carved byte-identical at its
// place and that nothing else was carved.
func checkExact(t *testing.T, img []byte, pl []placement, got []Carved) {
	t.Helper()
	byOff := map[int64]Carved{}
	for _, c := range got {
		byOff[c.Offset] = c
		b, _ := io.ReadAll(Open(bytes.NewReader(img), c))
		if sha(b) != c.SHA256 || int64(len(b)) != c.Length {
			t.Errorf("carved %s at %#x: digest does not match content", c.Type, c.Offset)
		}
	}
	want := map[int64]bool{}
	for _, p := range pl {
		want[p.runs[0].Off] = true
		c, ok := byOff[p.runs[0].Off]
		switch {
		case !ok:
			t.Errorf("%s at %#x (%d bytes): not carved", p.name, p.runs[0].Off, len(p.data))
		case c.SHA256 != sha(p.data):
			t.Errorf("%s at %#x: carved %s of %d bytes, want %d bytes", p.name, p.runs[0].Off, c.Type, c.Length, len(p.data))
		}
	}
	for _, c := range got {
		if !want[c.Offset] {
			t.Errorf("carved %s at %#x (%d bytes) where nothing was planted", c.Type, c.Offset, c.Length)
		}
	}
}

func TestCarveRawWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	files := corpus(t, rng)
	img, pl := buildRaw(rng, files)
	for _, workers := range []int{1, 2} {
		got := carveAll(t, img, []Run{{0, int64(len(img))}}, Options{Workers: workers, ChunkSize: 64 << 10})
		checkExact(t, img, pl, got)
	}
}

// TestCarveAnyOffset places files at odd byte offsets: only --any-offset
// finds them, and then exactly.
func TestCarveAnyOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	files := corpus(t, rng)
	var img []byte
	var pl []placement
	for _, f := range files {
		for range 1 + rng.IntN(3000) {
			img = append(img, byte(rng.Uint32()))
		}
		if len(img)%512 == 0 {
			img = append(img, 0x55)
		}
		// Text has no header: a printable byte of the fill just before a
		// dataset would rightly be carved with it.
		img = append(img, 0)
		pl = append(pl, placement{f, []Run{{int64(len(img)), int64(len(f.data))}}})
		img = append(img, f.data...)
	}
	for range 700 {
		img = append(img, byte(rng.Uint32()))
	}
	// Aligned carving may pick up a text run from inside a file, never a
	// planted file whole.
	for _, c := range carveAll(t, img, []Run{{0, int64(len(img))}}, Options{}) {
		for _, p := range pl {
			if c.SHA256 == sha(p.data) {
				t.Errorf("sector-aligned carving found %s at unaligned %#x", p.name, c.Offset)
			}
		}
	}
	got := carveAll(t, img, []Run{{0, int64(len(img))}}, Options{AnyOffset: true, ChunkSize: 100 << 10})
	checkExact(t, img, pl, got)
}

// BenchmarkCarve carves a 64 MiB seeded random image holding the corpus
// (MB/s from SetBytes; files/op reported).
func BenchmarkCarve(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	img, _ := buildRaw(rng, corpus(b, rng))
	for len(img) < 64<<20 {
		img = append(img, byte(rng.Uint32()))
	}
	for _, any := range []bool{false, true} {
		b.Run(map[bool]string{false: "sectors", true: "any-offset"}[any], func(b *testing.B) {
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				Carve(context.Background(), bytes.NewReader(img), []Run{{0, int64(len(img))}}, Options{AnyOffset: any}, func(Carved) error { n++; return nil })
			}
			b.ReportMetric(float64(n)/float64(b.N), "files/op")
		})
	}
}

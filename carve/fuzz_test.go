package carve

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// fuzzSeeds adds the corpus files of one format (by type name) up to
// 16 KiB, plus a truncated and a bit-flipped copy of each.
func fuzzSeeds(f *testing.F, typ string) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, p := range corpus(f, rng) {
		for i := range formats {
			// Small seeds only: each exec validates the whole input.
			if formats[i].name == typ && len(p.data) <= 16<<10 && formats[i].magic(p.data[:min(len(p.data), probeLen)]) {
				f.Add(p.data)
				f.Add(p.data[:len(p.data)/2])
				b := bytes.Clone(p.data)
				b[len(b)/3] ^= 0x40
				f.Add(b)
			}
		}
	}
}

// fuzzFormat checks a validator never panics and never claims more bytes
// than it was given, whole and split into two fragments.
func fuzzFormat(f *testing.F, typ string) {
	var fm *format
	for i := range formats {
		if formats[i].name == typ {
			fm = &formats[i]
		}
	}
	fuzzSeeds(f, typ)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		if res, err := fm.validate(r, int64(len(b))); err == nil && (res.n <= 0 || res.n > int64(len(b))) {
			t.Fatalf("%s: length %d of %d bytes", typ, res.n, len(b))
		}
		if len(b) > 4 {
			v := newView(r, Run{0, int64(len(b)) / 2}, Run{int64(len(b))/2 + 1, int64(len(b)) - int64(len(b))/2 - 1})
			if res, err := fm.validate(v, v.size); err == nil && (res.n <= 0 || res.n > v.size) {
				t.Fatalf("%s fragmented: length %d of %d bytes", typ, res.n, v.size)
			}
		}
	})
}

func FuzzJPEG(f *testing.F)   { fuzzFormat(f, "jpeg") }
func FuzzPNG(f *testing.F)    { fuzzFormat(f, "png") }
func FuzzGIF(f *testing.F)    { fuzzFormat(f, "gif") }
func FuzzBMP(f *testing.F)    { fuzzFormat(f, "bmp") }
func FuzzPDF(f *testing.F)    { fuzzFormat(f, "pdf") }
func FuzzZip(f *testing.F)    { fuzzFormat(f, "zip") }
func FuzzGzip(f *testing.F)   { fuzzFormat(f, "gzip") }
func FuzzBzip2(f *testing.F)  { fuzzFormat(f, "bzip2") }
func FuzzZstd(f *testing.F)   { fuzzFormat(f, "zstd") }
func FuzzXz(f *testing.F)     { fuzzFormat(f, "xz") }
func FuzzSQLite(f *testing.F) { fuzzFormat(f, "sqlite") }
func FuzzText(f *testing.F)   { fuzzFormat(f, "text") }

// FuzzCarve runs the whole engine over arbitrary bytes split in ranges:
// no panic, no overlapping output, no more output than input.
func FuzzCarve(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	img, _ := buildRaw(rng, corpus(f, rng)[:4])
	f.Add(img, uint16(700), false)
	f.Add([]byte("\xff\xd8\xff\xe0\x00\x10JFIF"), uint16(3), true)
	f.Fuzz(func(t *testing.T, b []byte, cut uint16, any bool) {
		c := min(int64(cut), int64(len(b)))
		ranges := []Run{{0, c}, {c + 1, int64(len(b)) - c - 1}}
		var total int64
		var seen []Run
		err := Carve(context.Background(), bytes.NewReader(b), ranges, Options{AnyOffset: any, ChunkSize: 512}, func(cf Carved) error {
			if overlaps(seen, cf.Runs) {
				t.Fatalf("overlapping output at %#x", cf.Offset)
			}
			seen = append(seen, cf.Runs...)
			total += cf.Length
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if total > int64(len(b)) {
			t.Fatalf("carved %d bytes from %d", total, len(b))
		}
	})
}

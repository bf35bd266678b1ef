package source

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkHash hashes a 64 MiB image (mixed random, zero and text
// chunks) as raw and as E01 with each compression; MB/s is media bytes.
func BenchmarkHash(b *testing.B) {
	dir := b.TempDir()
	media := genMedia(21, 64<<20)
	raw := writeRaw(b, dir, "bench.dd", media)
	images := []struct{ name, path string }{{"raw", raw}}
	for _, c := range []string{"none", "deflate:fast", "deflate:best"} {
		target := filepath.Join(dir, "e-"+c[len(c)-4:])
		images = append(images, struct{ name, path string }{"ewf-" + c, acquire(b, raw, target, c, "1500MiB")})
	}
	for _, im := range images {
		b.Run(im.name, func(b *testing.B) {
			img, err := Open(im.path)
			if err != nil {
				b.Fatal(err)
			}
			defer img.Close()
			b.SetBytes(img.Size())
			b.ReportAllocs()
			for b.Loop() {
				res, err := Hash(context.Background(), img, Expected{}, nil)
				if err != nil || len(res.Errors) > 0 {
					b.Fatal(err, res.Errors)
				}
			}
		})
	}
}

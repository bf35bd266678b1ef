package ext

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// benchImage builds an ext4 image (4 KiB blocks) holding n files of 512 B
// to 8 KiB, 100 per directory, from a seeded generator.
func benchImage(b *testing.B, n int) (string, int64) {
	b.Helper()
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	rng := rand.New(rand.NewPCG(20261127, 1))
	var total int64
	buf := make([]byte, 8192)
	for i := range n {
		d := filepath.Join(src, fmt.Sprintf("dir%04d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		sz := 512 + rng.IntN(8192-512)
		for j := range sz {
			buf[j] = byte(rng.UintN(256))
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("small file %06d.dat", i)), buf[:sz], 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(sz)
	}
	img := filepath.Join(tmp, "bench.img")
	sizeMB := (int64(n)*12*1024)>>20 + 64
	testutil.Run(b, "mkfs.ext4", "-q", "-F", "-b", "4096", "-N", strconv.Itoa(n+n/50+1024), "-d", src, img, fmt.Sprintf("%dM", sizeMB))
	if err := os.RemoveAll(src); err != nil {
		b.Fatal(err)
	}
	return img, total
}

// BenchmarkWalk lists (list) and lists, reads and SHA-256-hashes every file
// (extract) on one image, reporting files/s, and runs `fls -r -p` on the
// same image for comparison (fls).
func BenchmarkWalk(b *testing.B) {
	n := fstest.BenchFiles()
	img, total := benchImage(b, n)
	fstest.BenchWalk(b, img, n, total, Open, func(*fs.File) bool { return true })
}

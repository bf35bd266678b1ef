package ntfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// BenchmarkWalk lists (list) and lists, reads and SHA-256-hashes every file
// (extract) of an NTFS image of small files (512 B to 8 KiB, 100 per
// directory, written through ntfs-3g), reporting files/s, and runs
// `fls -r -p` on the same image for comparison (fls).
func BenchmarkWalk(b *testing.B) {
	n := fstest.BenchFiles()
	img := filepath.Join(b.TempDir(), "bench.img")
	sizeMB := int64(n)*10/1024 + 64
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(sizeMB << 20); err != nil {
		b.Fatal(err)
	}
	f.Close()
	testutil.Run(b, "mkntfs", "-F", "-Q", "-q", img)
	var total int64
	ok := mounted(b, img, func(dir string) {
		rng := rand.New(rand.NewPCG(20261127, 2))
		buf := make([]byte, 8192)
		for i := range n {
			d := filepath.Join(dir, fmt.Sprintf("dir%04d", i/100))
			if i%100 == 0 {
				if err := os.Mkdir(d, 0o755); err != nil {
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
	})
	if !ok {
		b.Skip("ntfs-3g FUSE mount not available")
	}
	// System files ($MFT, ...) are not the benchmark's files.
	fstest.BenchWalk(b, img, n, total, Open, func(f *fs.File) bool { return f.Path[1] != '$' })
}

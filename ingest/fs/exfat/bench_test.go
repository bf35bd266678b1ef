package exfat

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
)

// BenchmarkWalk lists and fully reads (SHA-256 of every file) a 64 MB
// volume about 90% full: 400 files of 4 KiB - 280 KiB in 8 directories,
// written through exfat-fuse; fls on the same image for comparison.
func BenchmarkWalk(b *testing.B) {
	needMount(b)
	dir := b.TempDir()
	img := filepath.Join(dir, "bench.img")
	const n = 400
	var total int64
	rng := rand.New(rand.NewPCG(3, 5))
	err := mounted(img, 64<<20, nil, func(mnt string) error {
		for i := range n {
			d := filepath.Join(mnt, fmt.Sprintf("dir%d", i%8))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			p := make([]byte, 4096+rng.IntN(280<<10))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			total += int64(len(p))
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("file %04d.bin", i)), p, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	fstest.BenchWalk(b, img, n, total, Open, func(f *fs.File) bool { return strings.HasPrefix(f.Path, "/dir") })
}

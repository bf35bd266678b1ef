package qcow2

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// BenchmarkFullRead reads a 256 MiB image (half random, half text) whole,
// in 1 MiB reads, uncompressed and compressed.
func BenchmarkFullRead(b *testing.B) {
	testutil.NeedTool(b, "qemu-img")
	dir := b.TempDir()
	raw := filepath.Join(dir, "big.raw")
	buf := make([]byte, 256<<20)
	rand.New(rand.NewSource(3)).Read(buf[:128<<20])
	for i := 128 << 20; i < len(buf); i++ {
		buf[i] = "evidx qcow2 benchmark text "[i%27]
	}
	os.WriteFile(raw, buf, 0o644)
	for _, c := range []struct{ name, opt string }{{"plain", "-q"}, {"deflate", "-c"}} {
		img := filepath.Join(dir, c.name+".qcow2")
		testutil.Run(b, "qemu-img", "convert", c.opt, "-f", "raw", "-O", "qcow2", raw, img)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(256 << 20)
			for i := 0; i < b.N; i++ {
				r, n, _ := osOpen(img)
				d, err := Open(r, n, img, nil)
				if err != nil {
					b.Fatal(err)
				}
				p := make([]byte, 1<<20)
				for off := int64(0); off < d.Size(); off += 1 << 20 {
					if _, err := d.ReadAt(p, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

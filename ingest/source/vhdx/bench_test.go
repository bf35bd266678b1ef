package vhdx

import (
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// BenchmarkRead256 reads a 256 MiB dynamic VHDX (half data, half holes)
// end to end in 1 MiB reads.
func BenchmarkRead256(b *testing.B) {
	testutil.NeedTool(b, "qemu-img")
	dir := b.TempDir()
	raw := filepath.Join(dir, "r.raw")
	f, _ := os.Create(raw)
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 256; i += 2 {
		rng.Read(buf)
		f.WriteAt(buf, int64(i)<<20)
	}
	f.Truncate(256 << 20)
	f.Close()
	img := filepath.Join(dir, "r.vhdx")
	testutil.Run(b, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", raw, img)
	r, sz, err := osOpen(img)
	if err != nil {
		b.Fatal(err)
	}
	d, err := Open(r, sz, img, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(d.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(d, 0, d.Size()), buf); err != nil {
			b.Fatal(err)
		}
	}
}

package vhd

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// BenchmarkRead256 reads a 256 MiB dynamic VHD made by qemu-img (half
// random data, half holes) end to end in 1 MiB reads.
func BenchmarkRead256(b *testing.B) {
	testutil.NeedTool(b, "qemu-img")
	dir := b.TempDir()
	raw := filepath.Join(dir, "r.raw")
	f, _ := os.Create(raw)
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 256; i += 2 {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		f.WriteAt(buf, int64(i)<<20)
	}
	f.Truncate(256 << 20)
	f.Close()
	img := filepath.Join(dir, "r.vhd")
	testutil.Run(b, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, img)
	vf, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer vf.Close()
	st, _ := vf.Stat()
	d, err := Open(vf, st.Size(), img, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(d.Size())
	b.ResetTimer()
	for range b.N {
		if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(d, 0, d.Size()), buf); err != nil {
			b.Fatal(err)
		}
	}
}

package hfsplus

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// benchImage builds, with xorriso, an HFS+ volume holding n files of 512 B
// to 8 KiB, 100 per folder, and cuts it out of the hybrid image so that
// fls reads the same volume.
func benchImage(b *testing.B, n int) (string, int64) {
	b.Helper()
	testutil.NeedTool(b, "xorriso")
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src")
	rng := rand.New(rand.NewPCG(20261203, 1))
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
	iso := filepath.Join(tmp, "hybrid.iso")
	testutil.Run(b, "xorriso", "-as", "mkisofs", "-quiet", "-hfsplus", "-o", iso, src)
	off := apmHFS(b, iso)
	in, err := os.Open(iso)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	st, _ := in.Stat()
	img := filepath.Join(tmp, "bench.hfs")
	out, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, off, st.Size()-off)); err != nil {
		b.Fatal(err)
	}
	out.Close()
	os.RemoveAll(src)
	os.Remove(iso)
	return img, total
}

// BenchmarkWalk lists (list) and lists, reads and SHA-256-hashes every file
// (extract), reporting files/s (and MB/s for extract), and runs `fls -r -p`
// on the same volume for comparison.
func BenchmarkWalk(b *testing.B) {
	n := fstest.BenchFiles()
	img, total := benchImage(b, n)
	fstest.BenchWalk(b, img, n, total, Open, func(f *fs.File) bool { return len(f.Path) > 2 && f.Path[1] != '$' })
}

// BenchmarkLargeFile reads one 64 MiB file (one extent) through Open:
// the reader's streaming rate, MB/s.
func BenchmarkLargeFile(b *testing.B) {
	testutil.NeedTool(b, "xorriso")
	src := b.TempDir()
	const size = 64 << 20
	buf := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "big.bin"), buf, 0o644); err != nil {
		b.Fatal(err)
	}
	iso := filepath.Join(b.TempDir(), "big.iso")
	testutil.Run(b, "xorriso", "-as", "mkisofs", "-quiet", "-hfsplus", "-o", iso, src)
	h := openAt(b, iso, apmHFS(b, iso))
	var big *fs.File
	for _, f := range walkAllB(b, h) {
		if f.Path == "/big.bin" {
			big = f
		}
	}
	if big == nil {
		b.Fatal("big.bin not listed")
	}
	cp := make([]byte, 1<<20)
	b.SetBytes(size)
	for b.Loop() {
		r, err := h.Open(big)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, r, cp); err != nil || n != size {
			b.Fatal(n, err)
		}
	}
}

func walkAllB(b *testing.B, h *FS) []*fs.File {
	var out []*fs.File
	if err := h.Walk(b.Context(), func(f *fs.File) error { out = append(out, f); return nil }); err != nil {
		b.Fatal(err)
	}
	return out
}

package ext

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// benchFiles is the number of files of the benchmark image:
// EVIDX_BENCH_FILES, default 2000 (scripts/bench-fs-readers.sh uses 100,000).
func benchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("EVIDX_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 2000
}

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
	n := benchFiles()
	img, total := benchImage(b, n)
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	run := func(b *testing.B, extract bool) {
		var count int
		for b.Loop() {
			e, err := Open(f, st.Size())
			if err != nil {
				b.Fatal(err)
			}
			count = 0
			h := sha256.New()
			buf := make([]byte, 256<<10)
			err = e.Walk(context.Background(), func(fl *fs.File) error {
				if fl.Type != "file" || fl.Deleted {
					return nil
				}
				count++
				if extract {
					r, err := e.Open(fl)
					if err != nil {
						return err
					}
					h.Reset()
					if _, err := io.CopyBuffer(h, r, buf); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if count != n {
			b.Fatalf("listed %d files, want %d", count, n)
		}
		sec := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(float64(n)/sec, "files/s")
		if extract {
			b.SetBytes(total)
		}
	}
	// Same page-cache state for every contender: the image read once.
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, st.Size())); err != nil {
		b.Fatal(err)
	}
	b.Run("list", func(b *testing.B) { run(b, false) })
	b.Run("extract", func(b *testing.B) { run(b, true) })
	// fls: The Sleuth Kit's listing of the same image, for comparison.
	b.Run("fls", func(b *testing.B) {
		fls := testutil.NeedTool(b, "fls")
		for b.Loop() {
			if out, err := exec.Command(fls, "-r", "-p", img).CombinedOutput(); err != nil {
				b.Fatalf("fls: %v %s", err, out)
			}
		}
		b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "files/s")
	})
}

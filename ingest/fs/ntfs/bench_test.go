package ntfs

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
// EVIDX_BENCH_FILES, default 2000 (scripts/bench-fs-readers.sh sets more).
func benchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("EVIDX_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// BenchmarkWalk lists (list) and lists, reads and SHA-256-hashes every file
// (extract) of an NTFS image of small files (512 B to 8 KiB, 100 per
// directory, written through ntfs-3g), reporting files/s, and runs
// `fls -r -p` on the same image for comparison (fls).
func BenchmarkWalk(b *testing.B) {
	n := benchFiles()
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
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	run := func(b *testing.B, extract bool) {
		var count int
		for b.Loop() {
			v, err := Open(fh, st.Size())
			if err != nil {
				b.Fatal(err)
			}
			count = 0
			h := sha256.New()
			buf := make([]byte, 256<<10)
			err = v.Walk(context.Background(), func(fl *fs.File) error {
				if fl.Type != "file" || fl.Deleted || fl.Path[1] == '$' {
					return nil
				}
				count++
				if extract {
					r, err := v.Open(fl)
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
		b.ReportMetric(float64(n)/(b.Elapsed().Seconds()/float64(b.N)), "files/s")
		if extract {
			b.SetBytes(total)
		}
	}
	// Same page-cache state for every contender: the image read once.
	if _, err := io.Copy(io.Discard, io.NewSectionReader(fh, 0, st.Size())); err != nil {
		b.Fatal(err)
	}
	b.Run("list", func(b *testing.B) { run(b, false) })
	b.Run("extract", func(b *testing.B) { run(b, true) })
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

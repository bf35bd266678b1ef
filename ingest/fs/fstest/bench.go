package fstest

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// BenchFiles is the number of files of a reader's benchmark image:
// EVIDX_BENCH_FILES, default 2000 (scripts/bench-fs-readers.sh sets more).
func BenchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("EVIDX_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// BenchWalk runs a reader's walk benchmarks on the image at img, which
// holds n user files of total bytes: list (walk only), extract (walk,
// read and SHA-256-hash every file), each reporting files/s, and fls
// (`fls -r -p`, The Sleuth Kit's listing of the same image) for
// comparison. user says which walked entries are the image's files.
func BenchWalk(b *testing.B, img string, n int, total int64, open func(io.ReaderAt, int64) (fs.FileSystem, error), user func(*fs.File) bool) {
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, extract bool) {
		var count int
		h := sha256.New()
		buf := make([]byte, 256<<10)
		for b.Loop() {
			fsys, err := open(f, st.Size())
			if err != nil {
				b.Fatal(err)
			}
			count = 0
			err = fsys.Walk(context.Background(), func(fl *fs.File) error {
				if fl.Type != "file" || fl.Deleted || !user(fl) {
					return nil
				}
				count++
				if extract {
					r, err := fsys.Open(fl)
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
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, st.Size())); err != nil {
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

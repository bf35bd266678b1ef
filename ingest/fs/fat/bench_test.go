package fat

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// benchImage builds a FAT32 image of n small files (512 B - 8 KiB, 100 per
// directory) and returns its path and the bytes of content written.
func benchImage(b *testing.B, n int) (string, int64) {
	b.Helper()
	testutil.NeedTool(b, "mkfs.fat")
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(11, 11))
	var total int64
	for i := range n {
		d := filepath.Join(src, fmt.Sprintf("dir%03d", i/100))
		os.MkdirAll(d, 0o755)
		buf := make([]byte, 512+rng.IntN(7681))
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		total += int64(len(buf))
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("small file %06d.dat", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	img := filepath.Join(dir, "bench.img")
	testutil.Run(b, "mkfs.fat", "-F", "32", "-C", img, strconv.Itoa(int(total/1024)*2+40000))
	ents, _ := os.ReadDir(src)
	args := []string{"-s", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	testutil.Run(b, "mcopy", append(args, "::/")...)
	return img, total
}

// BenchmarkWalk measures listing (metadata only) and listing plus reading
// every file's content through Open and hashing it with SHA-256.
func BenchmarkWalk(b *testing.B) {
	const n = 3000
	img, total := benchImage(b, n)
	fh, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	for _, read := range []bool{false, true} {
		name := "list"
		if read {
			name = "list+sha256"
		}
		b.Run(fmt.Sprintf("fat32-%dfiles/%s", n, name), func(b *testing.B) {
			if read {
				b.SetBytes(total)
			}
			b.ReportAllocs()
			buf := make([]byte, 64<<10)
			for b.Loop() {
				f, err := New(fh, st.Size())
				if err != nil {
					b.Fatal(err)
				}
				files := 0
				err = f.Walk(context.Background(), func(file *fs.File) error {
					if file.Type != "file" {
						return nil
					}
					files++
					if read {
						r, err := f.Open(file)
						if err != nil {
							return err
						}
						h := sha256.New()
						if _, err := io.CopyBuffer(h, r, buf); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil || files != n {
					b.Fatalf("walk: %v, %d files", err, files)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

package vmdk

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// rawDisk writes a 24 MiB FAT disk with random bytes at a few offsets and
// zeros elsewhere, so sparse extents have holes.
func rawDisk(t *testing.T, dir string) string {
	p := filepath.Join(dir, "disk.raw")
	testutil.Run(t, "mkfs.fat", "-C", p, "24576")
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, off := range []int64{1 << 20, 7<<20 + 4321, 24<<20 - 70000} {
		b := make([]byte, 65536)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		f.WriteAt(b, off)
	}
	f.Close()
	return p
}

// opener opens files read-only, as ingest/source does.
func opener(t *testing.T) OpenFunc {
	return func(p string) (io.ReaderAt, int64, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		return f, st.Size(), nil
	}
}

func check(t *testing.T, path, format string, wantFiles int) {
	t.Helper()
	back := path + ".raw"
	testutil.Run(t, "qemu-img", "convert", "-O", "raw", path, back)
	want, _ := os.ReadFile(back)
	testutil.Unchanged(t, path)
	r, size, err := opener(t)(path)
	if err != nil {
		t.Fatal(err)
	}
	if !Detect(r, size) {
		t.Fatal("Detect: false")
	}
	d, err := Open(r, size, path, opener(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Format() != format || d.Size() != int64(len(want)) || len(d.Files()) != wantFiles {
		t.Fatalf("format %s size %d files %v; want %s, %d, %d files", d.Format(), d.Size(), d.Files(), format, len(want), wantFiles)
	}
	got, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("content differs from qemu-img convert -O raw")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := rng.Int64N(d.Size())
		p := make([]byte, rng.IntN(1<<20))
		n, err := d.ReadAt(p, off)
		end := min(off+int64(len(p)), d.Size())
		if int64(n) != end-off || !bytes.Equal(p[:n], got[off:end]) || (n < len(p) && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", len(p), off, n, err)
		}
	}
	out := testutil.Run(t, "vmdkinfo", path)
	if !bytes.Contains(out, []byte(strconv.FormatInt(d.Size(), 10)+" bytes")) {
		t.Errorf("vmdkinfo does not give media size %d:\n%s", d.Size(), out)
	}
}

func TestAgainstQemu(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	testutil.NeedTool(t, "vmdkinfo")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	for _, tc := range []struct {
		sub   string
		files int
	}{{"monolithicSparse", 0}, {"streamOptimized", 0}, {"monolithicFlat", 1}, {"twoGbMaxExtentSparse", 1}, {"twoGbMaxExtentFlat", 1}} {
		t.Run(tc.sub, func(t *testing.T) {
			p := filepath.Join(dir, tc.sub+".vmdk")
			testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+tc.sub, raw, p)
			check(t, p, "vmdk-"+tc.sub, tc.files)
		})
	}
	t.Run("snapshot", func(t *testing.T) {
		testutil.NeedTool(t, "qemu-io")
		base := filepath.Join(dir, "monolithicSparse.vmdk")
		if _, err := os.Stat(base); err != nil {
			t.Skip("no base")
		}
		child := filepath.Join(dir, "child.vmdk")
		testutil.Run(t, "qemu-img", "create", "-f", "vmdk", "-b", base, "-F", "vmdk", child)
		testutil.Run(t, "qemu-io", "-c", "write -P 0xab 1M 64k", "-c", "write -P 0xcd 9M 100k", child)
		check(t, child, "vmdk-monolithicSparse", 1)
	})
}

func FuzzOpen(f *testing.F) {
	h := make([]byte, 2048)
	copy(h, "KDMV")
	f.Add(h)
	f.Add([]byte("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 ZERO\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		Detect(r, int64(len(b)))
		d, err := Open(r, int64(len(b)), "fuzz.vmdk", nil)
		if err != nil {
			return
		}
		p := make([]byte, 4096)
		for off := int64(0); off < min(d.Size(), 1<<20); off += 4096 {
			d.ReadAt(p, off)
		}
	})
}

package vhdx

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

func osOpen(p string) (io.ReaderAt, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// makeRaw builds a 64 MiB FAT disk with files and random bytes at known
// offsets, so data, zeros and holes all occur.
func makeRaw(t *testing.T, dir string) string {
	raw := filepath.Join(dir, "disk.raw")
	testutil.Run(t, "mkfs.fat", "-C", raw, "65536")
	src := filepath.Join(dir, "f.bin")
	rnd := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(rnd)
	os.WriteFile(src, rnd, 0o644)
	testutil.Run(t, "mcopy", "-i", raw, src, "::f.bin")
	f, err := os.OpenFile(raw, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{20<<20 + 12345, 40<<20 - 777, 63<<20 + 5} {
		f.WriteAt(rnd[:100000], off)
	}
	f.Close()
	return raw
}

func sumDisk(t *testing.T, d *Disk) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(d, 0, d.Size())); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func checkAgainst(t *testing.T, d *Disk, want []byte) {
	t.Helper()
	if d.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size(), len(want))
	}
	if sumDisk(t, d) != sha256.Sum256(want) {
		t.Fatal("sha256 of the virtual disk differs from qemu-img convert -O raw")
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 300; i++ {
		off := rng.Int63n(d.Size())
		n := rng.Intn(3<<20) + 1
		buf := make([]byte, n)
		got, err := d.ReadAt(buf, off)
		end := min(off+int64(n), d.Size())
		if got != int(end-off) || (err != nil && err != io.EOF) || !bytes.Equal(buf[:got], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v: bytes differ", n, off, got, err)
		}
	}
}

func vhdiSize(t *testing.T, path string) int64 {
	out := testutil.Run(t, "vhdiinfo", path)
	m := regexp.MustCompile(`Media size\s*:.*\((\d+) bytes\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no media size in vhdiinfo output:\n%s", out)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

func TestQemu(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	raw := makeRaw(t, dir)
	for _, c := range []struct{ name, opts, format string }{
		{"fixed", "subformat=fixed", "vhdx-fixed"},
		{"dynamic", "subformat=dynamic", "vhdx-dynamic"},
		{"dyn1m", "subformat=dynamic,block_size=1M", "vhdx-dynamic"},
		{"log1m", "subformat=dynamic,log_size=1M", "vhdx-dynamic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name+".vhdx")
			testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", c.opts, raw, img)
			back := filepath.Join(dir, c.name+".back")
			testutil.Run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", img, back)
			want, _ := os.ReadFile(back)
			testutil.Unchanged(t, img)
			r, sz, err := osOpen(img)
			if err != nil {
				t.Fatal(err)
			}
			defer r.(*os.File).Close()
			if !Detect(r, sz) {
				t.Fatal("Detect false")
			}
			d, err := Open(r, sz, img, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Format() != c.format || len(d.Files()) != 0 || len(d.Problems()) != 0 {
				t.Fatalf("format %q files %v problems %v", d.Format(), d.Files(), d.Problems())
			}
			if vs := vhdiSize(t, img); vs != d.Size() {
				t.Fatalf("vhdiinfo media size %d, Size %d", vs, d.Size())
			}
			checkAgainst(t, d, want)
		})
	}
}

func TestDamaged(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	raw := makeRaw(t, dir)
	img := filepath.Join(dir, "d.vhdx")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", raw, img)
	b, _ := os.ReadFile(img)
	// Truncated: the BAT points past the end.
	if _, err := Open(bytes.NewReader(b[:len(b)/2]), int64(len(b)/2), "t.vhdx", nil); err == nil {
		t.Fatal("truncated image opened")
	}
	// One header bad: a problem; both bad: an error.
	c := append([]byte(nil), b...)
	c[0x10000+100] ^= 1
	d, err := Open(bytes.NewReader(c), int64(len(c)), "h.vhdx", nil)
	if err != nil || len(d.Problems()) != 1 {
		t.Fatalf("one bad header: %v %v", err, d)
	}
	c[0x20000+100] ^= 1
	if _, err := Open(bytes.NewReader(c), int64(len(c)), "h.vhdx", nil); err == nil {
		t.Fatal("both headers bad but opened")
	}
}

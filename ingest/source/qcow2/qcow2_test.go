package qcow2

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"os/exec"
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

// makeRaw writes an 8 MiB raw disk with random data at odd offsets and holes.
func makeRaw(t *testing.T, dir string) string {
	p := filepath.Join(dir, "disk.raw")
	b := make([]byte, 8<<20)
	rng := rand.New(rand.NewSource(1))
	for _, at := range []int{0, 70000, 1<<20 + 333, 5<<20 - 17, 8<<20 - 5000} {
		rng.Read(b[at : at+min(200000, len(b)-at)])
	}
	for i := 3 << 20; i < 4<<20; i++ {
		b[i] = byte(i % 7) // compressible
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func check(t *testing.T, img, wantFmt string, wantFiles int) {
	t.Helper()
	testutil.Unchanged(t, img)
	raw := img + ".out"
	testutil.Run(t, "qemu-img", "convert", "-O", "raw", img, raw)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	r, n, _ := osOpen(img)
	if !Detect(r, n) {
		t.Fatal("Detect false")
	}
	d, err := Open(r, n, img, osOpen)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != int64(len(want)) || d.Format() != wantFmt || len(d.Files()) != wantFiles {
		t.Fatalf("size %d want %d, format %s want %s, files %v", d.Size(), len(want), d.Format(), wantFmt, d.Files())
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatal("sha256 of virtual disk differs from qemu-img convert")
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 300; i++ {
		off := rng.Int63n(d.Size())
		buf := make([]byte, rng.Intn(300000))
		k, err := d.ReadAt(buf, off)
		end := min(off+int64(len(buf)), d.Size())
		if k != int(end-off) || (err != nil && err != io.EOF) || !bytes.Equal(buf[:k], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", len(buf), off, k, err)
		}
	}
	if _, err := exec.LookPath("qcowinfo"); err == nil {
		out, _ := exec.Command("qcowinfo", img).CombinedOutput()
		m := regexp.MustCompile(`Media size\s*:.*?(\d+) bytes`).FindSubmatch(out)
		if m == nil && bytes.Contains(out, []byte("unsupported incompatible features")) {
			return // libqcow 20201213 predates zstd; qemu-img convert above checked the size
		}
		if m == nil {
			t.Fatalf("qcowinfo: no media size:\n%s", out)
		}
		if v, _ := strconv.ParseInt(string(m[1]), 10, 64); v != d.Size() {
			t.Fatalf("qcowinfo media size %d, ours %d", v, d.Size())
		}
	}
}

func TestConvert(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	raw := makeRaw(t, dir)
	for _, c := range []struct {
		name, fmt string
		args      []string
	}{
		{"v2", "qcow2-v2", []string{"-o", "compat=0.10"}},
		{"v3", "qcow2-v3", []string{"-o", "compat=1.1"}},
		{"v2c", "qcow2-v2", []string{"-c", "-o", "compat=0.10"}},
		{"v3c", "qcow2-v3", []string{"-c", "-o", "compat=1.1"}},
		{"zstd", "qcow2-v3", []string{"-c", "-o", "compression_type=zstd"}},
		{"c4k", "qcow2-v3", []string{"-o", "cluster_size=4096"}},
		{"c4kz", "qcow2-v3", []string{"-c", "-o", "cluster_size=4096"}},
		{"c2m", "qcow2-v3", []string{"-o", "cluster_size=2M"}},
		{"c512", "qcow2-v3", []string{"-c", "-o", "cluster_size=512"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name+".qcow2")
			testutil.Run(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, c.args...), raw, img)...)
			check(t, img, c.fmt, 0)
		})
	}
}

func TestBackingAndZero(t *testing.T) {
	testutil.NeedTool(t, "qemu-io")
	dir := t.TempDir()
	raw := makeRaw(t, dir)
	base := filepath.Join(dir, "base.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, base)
	top := filepath.Join(dir, "top.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
	testutil.Run(t, "qemu-io", "-c", "write -P 0x5a 3M 100k", top)
	testutil.Run(t, "qemu-io", "-c", "write -z 1M 64k", top)
	check(t, top, "qcow2-v3", 1)

	rtop := filepath.Join(dir, "rtop.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-b", "disk.raw", "-F", "raw", rtop)
	testutil.Run(t, "qemu-io", "-c", "write -P 0x5a 3M 100k", rtop)
	check(t, rtop, "qcow2-v3", 1)

	// A missing backing file is an error, never zeros.
	r, n, _ := osOpen(top)
	if _, err := Open(r, n, filepath.Join(t.TempDir(), "x.qcow2"), osOpen); err == nil {
		t.Fatal("missing backing file accepted")
	}
}

func TestDamaged(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	img := filepath.Join(dir, "d.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", makeRaw(t, dir), img)
	b, _ := os.ReadFile(img)
	for _, cut := range []int{50, 100, 70000, len(b) / 2} {
		d, err := Open(bytes.NewReader(b[:cut]), int64(cut), "t.qcow2", nil)
		if err == nil {
			_, err = d.ReadAt(make([]byte, d.Size()), 0)
		}
		if err == nil {
			t.Fatalf("truncated at %d accepted", cut)
		}
	}
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	img := filepath.Join(dir, "f.qcow2")
	raw := filepath.Join(dir, "f.raw")
	os.WriteFile(raw, bytes.Repeat([]byte("evidx"), 20000), 0o644)
	if _, err := exec.LookPath("qemu-img"); err == nil {
		if out, err := exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=512", raw, img).CombinedOutput(); err != nil {
			f.Fatal(string(out))
		}
		b, _ := os.ReadFile(img)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Open(bytes.NewReader(b), int64(len(b)), "f.qcow2", nil)
		if err != nil {
			return
		}
		buf := make([]byte, 1<<16)
		for off := int64(0); off < min(d.Size(), 1<<22); off += int64(len(buf)) {
			d.ReadAt(buf, off)
		}
	})
}

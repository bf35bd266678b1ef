package vhd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// rawDisk writes a 24 MiB raw disk: a FAT file system with files, random
// bytes at a few offsets, and zeros elsewhere (so dynamic VHDs have holes).
func rawDisk(t *testing.T, dir string) string {
	p := filepath.Join(dir, "disk.raw")
	testutil.Run(t, "mkfs.fat", "-C", p, "24576")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, off := range []int64{1 << 20, 5<<20 + 12345, 23<<20 - 70000} {
		b := make([]byte, 65536)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		f.WriteAt(b, off)
	}
	f.Close()
	return p
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestAgainstQemu: fixed and dynamic VHDs made by qemu-img read exactly as
// qemu-img's own raw conversion, whole and at random offsets.
func TestAgainstQemu(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	for _, tc := range []struct{ opts, format string }{
		{"subformat=fixed,force_size=on", "vhd-fixed"},
		{"subformat=dynamic,force_size=on", "vhd-dynamic"},
		{"subformat=dynamic", "vhd-dynamic"},
		{"subformat=fixed", "vhd-fixed"},
	} {
		t.Run(tc.opts, func(t *testing.T) {
			vp := filepath.Join(dir, strings.NewReplacer("=", "-", ",", "_").Replace(tc.opts)+".vhd")
			testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", tc.opts, raw, vp)
			back := vp + ".raw"
			testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", vp, back)
			want, _ := os.ReadFile(back)
			testutil.Unchanged(t, vp)
			f, err := os.Open(vp)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			if !Detect(f, st.Size()) {
				t.Fatal("Detect: false")
			}
			d, err := Open(f, st.Size(), vp, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Format() != tc.format || len(d.Problems()) != 0 {
				t.Errorf("format %s problems %v", d.Format(), d.Problems())
			}
			// qemu-img's raw conversion may stop at the CHS geometry below
			// the footer's size; the footer's size is what libvhdi gives.
			if d.Size() < int64(len(want)) {
				t.Fatalf("size %d, qemu-img converted %d", d.Size(), len(want))
			}
			if vi, err := exec.LookPath("vhdiinfo"); err == nil {
				out, _ := exec.Command(vi, vp).CombinedOutput()
				if !bytes.Contains(out, []byte(fmt.Sprintf("(%d bytes)", d.Size()))) {
					t.Errorf("vhdiinfo does not give media size %d:\n%s", d.Size(), out)
				}
			}
			got, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size()))
			if err != nil {
				t.Fatal(err)
			}
			if sha(got[:len(want)]) != sha(want) {
				t.Fatal("content differs from qemu-img convert -O raw")
			}
			if !bytes.Equal(got[len(want):], make([]byte, len(got)-len(want))) {
				t.Error("bytes past qemu's size are not zeros")
			}
			rawb, _ := os.ReadFile(raw)
			if !bytes.Equal(got[:len(rawb)], rawb) {
				t.Error("content differs from the raw disk converted")
			}
			rng := rand.New(rand.NewPCG(9, 9))
			for range 200 {
				off := rng.Int64N(d.Size())
				p := make([]byte, rng.IntN(3<<20))
				n, err := d.ReadAt(p, off)
				end := min(off+int64(len(p)), d.Size())
				if int64(n) != end-off || !bytes.Equal(p[:n], got[off:end]) || (n < len(p) && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", len(p), off, n, err)
				}
			}
		})
	}
}

// TestDamage: a cut file, a corrupt BAT entry and a bad checksum give
// errors, never a panic or silent zeros.
func TestDamage(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	vp := filepath.Join(dir, "d.vhd")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, vp)
	b, _ := os.ReadFile(vp)
	// Both footers bad: an error.
	bad := bytes.Clone(b)
	bad[70] ^= 1
	bad[len(bad)-512+70] ^= 1
	if _, err := Open(bytes.NewReader(bad), int64(len(bad)), "bad.vhd", nil); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("both footers bad: %v", err)
	}
	// The end footer gone (cut file): the copy at 0 is used, with a problem;
	// reading past the cut fails.
	cut := b[:len(b)-512-4096]
	d, err := Open(bytes.NewReader(cut), int64(len(cut)), "cut.vhd", nil)
	if err != nil || len(d.Problems()) != 1 {
		t.Fatalf("cut: %v %v", err, d)
	}
	if _, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size())); err == nil {
		t.Error("reading a cut dynamic VHD succeeded")
	}
}

func FuzzOpen(f *testing.F) {
	var hdr [1536]byte
	copy(hdr[:], cookie)
	f.Add(hdr[:])
	if b, err := os.ReadFile("testdata/small.vhd"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		Detect(r, int64(len(b)))
		d, err := Open(r, int64(len(b)), "fuzz.vhd", nil)
		if err != nil {
			return
		}
		p := make([]byte, 4096)
		for off := int64(0); off < min(d.Size(), 1<<20); off += 4096 {
			d.ReadAt(p, off)
		}
	})
}

package vhd

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
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

// rawDisk writes a 24 MiB raw disk: a FAT file system with files copied in
// by mcopy, random bytes at a few offsets, and zeros elsewhere (so dynamic
// VHDs have holes).
func rawDisk(t *testing.T, dir string) string {
	p := filepath.Join(dir, "disk.raw")
	testutil.Run(t, "mkfs.fat", "-C", p, "24576")
	rng := rand.New(rand.NewPCG(3, 4))
	if _, err := exec.LookPath("mcopy"); err == nil {
		src := filepath.Join(dir, "file.bin")
		b := make([]byte, 300000)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		os.WriteFile(src, b, 0o644)
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("evidx vhd test\n"), 0o644)
		testutil.Run(t, "mcopy", "-i", p, src, filepath.Join(dir, "notes.txt"), "::")
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
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

// checkAll compares the whole disk and 300 random reads at odd offsets
// and lengths (crossing block and sector boundaries) with want.
func checkAll(t *testing.T, d *Disk, want []byte) {
	t.Helper()
	if d.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size(), len(want))
	}
	got, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if sha(got) != sha(want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("content differs (sha256 %s, want %s), first at %#x", sha(got), sha(want), i)
			}
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 300 {
		off := rng.Int64N(d.Size())
		if i%3 == 0 { // near a 512 KiB boundary
			off = (off>>19)<<19 - int64(rng.IntN(3000)) + 1500
			off = max(0, min(off, d.Size()-1))
		}
		p := make([]byte, rng.IntN(3<<20))
		n, err := d.ReadAt(p, off)
		end := min(off+int64(len(p)), d.Size())
		if int64(n) != end-off || !bytes.Equal(p[:n], want[off:end]) || (n < len(p) && err != io.EOF) || (n == len(p) && err != nil) {
			t.Fatalf("ReadAt(%d bytes, %#x) = %d, %v", len(p), off, n, err)
		}
	}
	if n, err := d.ReadAt(make([]byte, 10), d.Size()); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v", n, err)
	}
}

// TestAgainstQemu: fixed and dynamic VHDs made by qemu-img read exactly as
// qemu-img's own raw conversion, whole and at random offsets; vhdiinfo
// gives the same media size.
func TestAgainstQemu(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	rawb, _ := os.ReadFile(raw)
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
			d, err := openPath(t, vp)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(vp)
			defer f.Close()
			if !Detect(f, d.fileSize) {
				t.Error("Detect: false")
			}
			if d.Format() != tc.format || len(d.Problems()) != 0 || len(d.Files()) != 0 {
				t.Errorf("format %s problems %q files %q", d.Format(), d.Problems(), d.Files())
			}
			// qemu-img's raw conversion may stop at the CHS geometry below
			// the footer's size (without force_size); the footer's size is
			// what libvhdi gives, and the rest is zeros.
			if d.Size() < int64(len(want)) || d.Size()-int64(len(want)) >= 63*16*512 {
				t.Fatalf("size %d, qemu-img converted %d", d.Size(), len(want))
			}
			if strings.Contains(tc.opts, "force_size") && d.Size() != int64(len(rawb)) {
				t.Errorf("size %d, raw %d", d.Size(), len(rawb))
			}
			if vi, err := exec.LookPath("vhdiinfo"); err == nil {
				out, _ := exec.Command(vi, vp).CombinedOutput()
				if !bytes.Contains(out, fmt.Appendf(nil, "(%d bytes)", d.Size())) {
					t.Errorf("vhdiinfo does not give media size %d:\n%s", d.Size(), out)
				}
			}
			full := append(bytes.Clone(want), make([]byte, d.Size()-int64(len(want)))...)
			checkAll(t, d, full)
			if !bytes.Equal(full[:len(rawb)], rawb) {
				t.Error("content differs from the raw disk converted")
			}
		})
	}
}

// TestFooter511: a fixed disk whose footer lacks its last (reserved) byte,
// as writers before Virtual PC 2004 left it, reads the same.
func TestFooter511(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	vp := filepath.Join(dir, "f.vhd")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, vp)
	b, _ := os.ReadFile(vp)
	b = b[:len(b)-1]
	if !Detect(bytes.NewReader(b), int64(len(b))) {
		t.Error("Detect: false")
	}
	d, err := Open(bytes.NewReader(b), int64(len(b)), "old.vhd", nil)
	if err != nil {
		t.Fatal(err)
	}
	rawb, _ := os.ReadFile(raw)
	if d.Format() != "vhd-fixed" || len(d.Problems()) != 0 {
		t.Errorf("format %s problems %q", d.Format(), d.Problems())
	}
	checkAll(t, d, rawb)
}

// TestDamage: a cut file, a corrupt BAT entry and bad checksums give
// errors or problems, never a panic or silent zeros.
func TestDamage(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	dir := t.TempDir()
	raw := rawDisk(t, dir)
	vp := filepath.Join(dir, "d.vhd")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, vp)
	b, _ := os.ReadFile(vp)
	good, err := Open(bytes.NewReader(b), int64(len(b)), "good.vhd", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(io.NewSectionReader(good, 0, good.Size()))
	open := func(name string, b []byte) (*Disk, error) { return Open(bytes.NewReader(b), int64(len(b)), name, nil) }

	// Footer copy bad, end good: a problem, and the disk reads right.
	bad := bytes.Clone(b)
	bad[70] ^= 1
	d, err := open("copy.vhd", bad)
	if err != nil || len(d.Problems()) != 1 || !strings.Contains(d.Problems()[0], "copy") {
		t.Fatalf("bad copy: %v %q", err, d.Problems())
	}
	checkAll(t, d, want)
	// Both good but different: a problem, the end footer used.
	bad = bytes.Clone(b)
	bad[24] ^= 1
	putChecksum(bad[:512], 64)
	if d, err := open("differ.vhd", bad); err != nil || len(d.Problems()) != 1 || !strings.Contains(d.Problems()[0], "differs") {
		t.Fatalf("copy differs: %v %q", err, d.Problems())
	}
	// Not a VHD: Detect false, Open an error.
	rawb, _ := os.ReadFile(raw)
	if Detect(bytes.NewReader(rawb), int64(len(rawb))) {
		t.Error("Detect: a raw FAT disk is a VHD")
	}
	if _, err := open("raw.img", rawb); !errors.Is(err, ErrFormat) {
		t.Errorf("raw disk: %v", err)
	}
	// End bad, copy good: a problem too.
	bad = bytes.Clone(b)
	bad[len(bad)-512+70] ^= 1
	if d, err := open("end.vhd", bad); err != nil || len(d.Problems()) != 1 || !strings.Contains(d.Problems()[0], "checksum") {
		t.Fatalf("bad end footer: %v", err)
	}
	// Both bad: an error naming the checksum.
	bad[70] ^= 1
	if _, err := open("bad.vhd", bad); err == nil || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), "bad.vhd") {
		t.Errorf("both footers bad: %v", err)
	}
	// Dynamic header checksum bad: an error.
	bad = bytes.Clone(b)
	bad[512+40] ^= 1
	if _, err := open("hdr.vhd", bad); err == nil || !strings.Contains(err.Error(), "dynamic header at 0x200") {
		t.Errorf("bad header: %v", err)
	}
	// The end footer gone (cut file): the copy at 0 is used, with
	// problems; reading past the cut fails.
	cut := b[:len(b)-512-4096]
	d, err = open("cut.vhd", cut)
	if err != nil || len(d.Problems()) != 2 {
		t.Fatalf("cut: %v %q", err, d.Problems())
	}
	if _, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size())); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("reading a cut dynamic VHD: %v", err)
	}
	// A BAT entry pointing far past the end: reading that block fails,
	// the others read.
	bad = bytes.Clone(b)
	bat := int64(binary.BigEndian.Uint64(bad[512+16:]))
	var blk int64 = -1
	for i := int64(0); i < good.Size()/good.blockSize; i++ {
		if binary.BigEndian.Uint32(bad[bat+4*i:]) != unallocated {
			blk = i
			break
		}
	}
	binary.BigEndian.PutUint32(bad[bat+4*blk:], 0x7fffffff)
	d, err = open("bat.vhd", bad)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096)
	if _, err := d.ReadAt(p, blk*good.blockSize+512); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("BAT entry %d", blk)) {
		t.Errorf("corrupt BAT entry: %v", err)
	}
	// Absurd sizes: errors, no huge allocation.
	for _, tc := range []struct {
		at  int
		val uint32
	}{{512 + 32, 1 << 31}, {512 + 32, 1000}, {512 + 16, 0x7fffffff}} {
		bad = bytes.Clone(b)
		binary.BigEndian.PutUint32(bad[tc.at:], tc.val)
		putChecksum(bad[512:1536], 36)
		if _, err := open("absurd.vhd", bad); err == nil {
			t.Errorf("header field at %d = %#x: no error", tc.at, tc.val)
		}
	}
	bad = bytes.Clone(b)
	for _, f := range [][]byte{bad[:512], bad[len(bad)-512:]} {
		binary.BigEndian.PutUint64(f[48:], 1<<62)
		putChecksum(f, 64)
	}
	if _, err := open("huge.vhd", bad); err == nil || !strings.Contains(err.Error(), "disk size") {
		t.Errorf("huge disk size: %v", err)
	}
}

package vhdx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen patches a valid 4 MiB VHDX (fuzzing the whole file is too slow:
// the engine managed one exec a minute) at a fuzzed offset, truncates it to
// a fuzzed length, opens it and reads: no panic, no unbounded allocation.
func FuzzOpen(f *testing.F) {
	var seed []byte
	if q, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		img := filepath.Join(dir, "s.vhdx")
		if exec.Command(q, "create", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", img, "4M").Run() == nil {
			if b, err := os.ReadFile(img); err == nil {
				seed = b
			}
		}
	}
	if seed == nil {
		f.Skip("qemu-img not installed")
	}
	for _, o := range []uint32{0x10000, 0x20000, 0x30000, 0x200000, 0x300000, 0x310000} {
		f.Add(o, []byte{1, 2, 3, 4}, uint32(len(seed)))
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, n uint32) {
		b := append([]byte(nil), seed...)
		copy(b[int(off)%len(b):], patch)
		b = b[:int(n)%(len(b)+1)]
		d, err := Open(bytes.NewReader(b), int64(len(b)), "f.vhdx", nil)
		if err != nil {
			return
		}
		buf := make([]byte, 1<<20)
		for off := int64(0); off < d.Size() && off < 64<<20; off += int64(len(buf)) {
			d.ReadAt(buf, off+7)
		}
	})
}

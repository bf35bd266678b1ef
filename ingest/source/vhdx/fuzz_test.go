package vhdx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds mutated VHDX files to Open and reads every block: no
// panic, no unbounded allocation.
func FuzzOpen(f *testing.F) {
	if q, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		img := filepath.Join(dir, "s.vhdx")
		if exec.Command(q, "create", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", img, "4M").Run() == nil {
			if b, err := os.ReadFile(img); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
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

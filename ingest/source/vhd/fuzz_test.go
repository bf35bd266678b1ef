package vhd

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// FuzzOpen opens arbitrary bytes as a VHD (and as the parent of any
// differencing disk they make): no panic, no absurd allocation, and reads
// stay within what was asked.
func FuzzOpen(f *testing.F) {
	small, err := os.ReadFile("testdata/small.vhd")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	if b, err := os.ReadFile("testdata/diff.vhd"); err == nil {
		f.Add(b)
	}
	var hdr [1536]byte
	copy(hdr[:], cookie)
	f.Add(hdr[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		Detect(r, int64(len(b)))
		// Every parent is the small dynamic VHD, or this input itself.
		open := func(p string) (io.ReaderAt, int64, error) {
			if len(p)%2 == 0 {
				return bytes.NewReader(small), int64(len(small)), nil
			}
			return r, int64(len(b)), nil
		}
		d, err := Open(r, int64(len(b)), "fuzz.vhd", open)
		if err != nil {
			return
		}
		p := make([]byte, 7000)
		for off := int64(0); off < min(d.Size(), 4<<20); off += 6999 {
			n, err := d.ReadAt(p, off)
			if n > len(p) || (n < len(p) && err == nil) {
				t.Fatalf("ReadAt at %d: %d, %v", off, n, err)
			}
		}
	})
}

package vhd

import (
	"bytes"
	"io"
	"os"
	"strings"
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
	// A differencing child of small.vhd, 4 KiB blocks, with locators.
	size, geo, uid := footerOf(small)
	c := &child{size: size, blockSize: 4096, geometry: geo, parentUID: uid, parentName: "small.vhd",
		locs:    []loc{{"W2ru", le16(`.\small.vhd`)}, {"MacX", []byte("file:///x/small.vhd")}},
		sectors: map[int64][]byte{0: make([]byte, 512), 3: bytes.Repeat([]byte{1}, 512), 9: bytes.Repeat([]byte{2}, 512)},
		empty:   []int64{5}}
	seed := c.bytes()
	f.Add(seed)
	if _, err := Open(bytes.NewReader(seed), int64(len(seed)), "fuzz.vhd", func(string) (io.ReaderAt, int64, error) {
		return bytes.NewReader(small), int64(len(small)), nil
	}); err != nil {
		f.Fatal(err)
	}
	var hdr [1536]byte
	copy(hdr[:], cookie)
	f.Add(hdr[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		Detect(r, int64(len(b)))
		// A parent named small is the small dynamic VHD, any other this
		// input itself (chains, loops).
		open := func(p string) (io.ReaderAt, int64, error) {
			if strings.Contains(p, "small") {
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

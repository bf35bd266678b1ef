package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

// fixture is the committed ewfacquire image (see ingest/source/fixture_test.go).
const fixture = "../../../testdata/ewf/small.E01"

// FuzzSegment feeds arbitrary bytes to the segment parser and, when they
// parse as a complete one-segment image, reads the media: nothing may
// panic, and every failure must be a located error.
func FuzzSegment(f *testing.F) {
	good, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:200])
	for _, at := range []int{9, 20, 100, 400, len(good) / 3, len(good) - 200} {
		b := bytes.Clone(good)
		b[at] ^= 0xff
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := NewSegment(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		ParseHeader(seg.HeaderText)
		r, err := NewReader([]*Segment{seg}, []string{"fuzz.E01"})
		if err != nil {
			return
		}
		buf := make([]byte, 40000)
		for off := int64(0); off < min(r.Size(), 1<<20); off += int64(len(buf)) {
			if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
				var ce *ChunkError
				if !errors.As(err, &ce) {
					t.Fatalf("read error without chunk location: %v", err)
				}
			}
		}
	})
}

func TestFixtureSections(t *testing.T) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := NewSegment(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !seg.Last || seg.Number != 1 || seg.MD5 == nil || seg.SHA1 == nil || seg.Chunks() != 4 {
		t.Fatalf("segment %d last %v md5 %x sha1 %x chunks %d", seg.Number, seg.Last, seg.MD5, seg.SHA1, seg.Chunks())
	}
	h := ParseHeader(seg.HeaderText)
	if h["case_number"] != "CASE-2026-042" || h["examiner"] != "Jane Examiner" {
		t.Fatalf("header %v", h)
	}
	// A corrupted section descriptor (byte 20 is inside the first
	// descriptor's next-offset field at 13+16) fails its Adler-32.
	bad := bytes.Clone(b)
	bad[20] ^= 1
	if _, err := NewSegment(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrSectionChecksum) {
		t.Fatalf("corrupt descriptor: %v", err)
	}
	// A bad table header with a good table2 still opens: table2 is the mirror.
	bad = bytes.Clone(b)
	off := 13
	for {
		typ := string(bytes.TrimRight(bad[off:off+16], "\x00"))
		next := int(binary.LittleEndian.Uint32(bad[off+16:]))
		if typ == "table" {
			bad[off+76+24] ^= 0x01 // first entry; its Adler-32 no longer matches
			break
		}
		off = next
	}
	seg, err = NewSegment(bytes.NewReader(bad), int64(len(bad)))
	if err != nil || seg.Chunks() != 4 {
		t.Fatalf("table damaged, table2 good: %v", err)
	}
}

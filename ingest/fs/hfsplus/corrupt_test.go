package hfsplus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
)

const small = "testdata/small.hfs"

// TestSmallAgainstTSK: the committed xorriso volume reads as fls/icat read it.
func TestSmallAgainstTSK(t *testing.T) {
	h := openAt(t, small, 0)
	compareTSK(t, small, 0, h)
}

// editFixture writes the fixture, changed by edit, into t.TempDir(); edit
// gets the opened original to find its structures.
func editFixture(t *testing.T, edit func(h *FS, b []byte)) string {
	t.Helper()
	img := needFixture(t)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	edit(openAt(t, img, 0), b)
	p := filepath.Join(t.TempDir(), "edited.raw")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// catalogHeader is the volume offset of the catalog's header node.
func catalogHeader(h *FS) int64 { return h.base + int64(h.catalog.ext[0].start)*h.blockSize }

func catalogNodeSize(b []byte, hdr int64) int64 {
	return int64(binary.BigEndian.Uint16(b[hdr+hdrNodeSize:]))
}

func entryOf(t *testing.T, h *FS, name string) entry {
	t.Helper()
	for _, e := range h.cat.entries {
		if e.name == name {
			return e
		}
	}
	t.Fatalf("no catalog entry %q", name)
	return entry{}
}

func walkAll(t *testing.T, h *FS) map[string]*fs.File {
	t.Helper()
	out := map[string]*fs.File{}
	if err := h.Walk(context.Background(), func(f *fs.File) error { out[f.Path] = f; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAbsurdNodeSize: a catalog node size that is no power of two in
// 512..32768 fails Open with the offset of the field.
func TestAbsurdNodeSize(t *testing.T) {
	var at int64
	p := editFixture(t, func(h *FS, b []byte) {
		at = catalogHeader(h) + hdrNodeSize
		binary.BigEndian.PutUint16(b[at:], 3)
	})
	f, _ := os.Open(p)
	defer f.Close()
	st, _ := f.Stat()
	_, err := Open(f, st.Size())
	if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "node size 3") {
		t.Fatalf("err %v", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Offset != at {
		t.Errorf("offset of %v, want %#x", err, at)
	}
}

// TestLeafLoop: a leaf whose fLink points back to itself is a problem
// naming the loop, and every record is still listed once.
func TestLeafLoop(t *testing.T) {
	p := editFixture(t, func(h *FS, b []byte) {
		hdr := catalogHeader(h)
		ns := catalogNodeSize(b, hdr)
		first := int64(binary.BigEndian.Uint32(b[hdr+hdrFirstLeaf:]))
		binary.BigEndian.PutUint32(b[hdr+first*ns+ndFLink:], uint32(first))
	})
	h := openAt(t, p, 0)
	if !hasProblem(h, "catalog leaf chain", "loop back to node") {
		t.Errorf("problems %q", h.Problems())
	}
	files := walkAll(t, h)
	if files["/passwords.txt"] == nil || files["/a_directory/a_file"] == nil {
		t.Errorf("files lost: %d listed", len(files))
	}
}

// TestBadLeafDescriptor: a leaf node of another kind breaks the chain: a
// problem with its offset; the walk goes on with the leaves the map holds.
func TestBadLeafDescriptor(t *testing.T) {
	var at int64
	p := editFixture(t, func(h *FS, b []byte) {
		hdr := catalogHeader(h)
		ns := catalogNodeSize(b, hdr)
		first := int64(binary.BigEndian.Uint32(b[hdr+hdrFirstLeaf:]))
		at = hdr + first*ns
		b[at+ndKind] = 7
	})
	h := openAt(t, p, 0)
	if !hasProblem(h, "kind 7", fmt.Sprintf("at %#x", at)) {
		t.Errorf("problems %q", h.Problems())
	}
	walkAll(t, h)
}

// TestBadRecordOffsets: record offsets past the node's table are a problem.
func TestBadRecordOffsets(t *testing.T) {
	p := editFixture(t, func(h *FS, b []byte) {
		hdr := catalogHeader(h)
		ns := catalogNodeSize(b, hdr)
		first := int64(binary.BigEndian.Uint32(b[hdr+hdrFirstLeaf:]))
		binary.BigEndian.PutUint16(b[hdr+first*ns+ns-4:], 0xfff0) // record 1's start
	})
	h := openAt(t, p, 0)
	if !hasProblem(h, "catalog leaf node 1 at 0x", "record 0 spans 14..65520") {
		t.Errorf("problems %q", h.Problems())
	}
	walkAll(t, h)
}

// TestExtentBeyondVolume: a data extent past the volume's blocks makes the
// file unreadable with an error naming its record, never a read past the end.
func TestExtentBeyondVolume(t *testing.T) {
	p := editFixture(t, func(h *FS, b []byte) {
		e := entryOf(t, h, "passwords.txt")
		// The record's data starts where e.rec starts within the node.
		i := bytes.Index(b[e.off:], e.rec[:cDataFork])
		binary.BigEndian.PutUint32(b[e.off+int64(i)+cDataFork+16:], 0x7fffffff)
	})
	h := openAt(t, p, 0)
	f := walkAll(t, h)["/passwords.txt"]
	if f == nil || f.Recoverable || !strings.Contains(f.Err, "beyond the volume") || !strings.Contains(f.Err, " at 0x") {
		t.Fatalf("file %+v", f)
	}
	if _, err := h.Open(f); err == nil {
		t.Error("opened")
	}
	if !hasProblem(h, "/passwords.txt", "beyond the volume") {
		t.Errorf("problems %q", h.Problems())
	}
}

// TestHugeFork: a logical size beyond a fork's blocks is refused, not allocated.
func TestHugeFork(t *testing.T) {
	p := editFixture(t, func(h *FS, b []byte) {
		e := entryOf(t, h, "passwords.txt")
		i := bytes.Index(b[e.off:], e.rec[:cDataFork])
		binary.BigEndian.PutUint64(b[e.off+int64(i)+cDataFork:], 1<<62)
	})
	h := openAt(t, p, 0)
	f := walkAll(t, h)["/passwords.txt"]
	if f == nil || f.Recoverable || !strings.Contains(f.Err, "beyond its") {
		t.Fatalf("file %+v", f)
	}
}

// TestEverySectorDamaged: each 512-byte sector of the metadata, in turn
// overwritten, never panics and never hangs.
func TestEverySectorDamaged(t *testing.T) {
	b, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); off += 512 {
		for _, fill := range []byte{0x00, 0xff, 0x5a} {
			c := bytes.Clone(b)
			for i := off; i < off+512 && i < len(c); i++ {
				c[i] ^= fill ^ byte(i)
			}
			exercise(c)
		}
	}
}

// TestRandomDamage: thousands of small random edits of small.hfs (bytes,
// 16- and 32-bit boundary values, cuts) never panic or hang.
func TestRandomDamage(t *testing.T) {
	b, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		c := bytes.Clone(b)
		for range 1 + rng.IntN(8) {
			i := rng.IntN(len(c) - 4)
			switch rng.IntN(4) {
			case 0:
				c[i] = byte(rng.Uint32())
			case 1:
				binary.BigEndian.PutUint16(c[i:], []uint16{0, 1, 0xffff, 0x8000, 512}[rng.IntN(5)])
			case 2:
				binary.BigEndian.PutUint32(c[i:], []uint32{0, 1, 0xffffffff, 0x7fffffff, 16}[rng.IntN(5)])
			case 3:
				c = append(c[:i], c[min(len(c), i+1+rng.IntN(64)):]...)
			}
		}
		exercise(c)
	}
}

// exercise opens, walks, reads and maps b as a volume, as evidx would.
func exercise(b []byte) {
	h, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	h.Walk(context.Background(), func(f *fs.File) error {
		if r, err := h.Open(f); err == nil {
			io.Copy(io.Discard, io.LimitReader(r, 1<<20)) // decmpfs may claim gigabytes
		}
		return nil
	})
	h.Unallocated()
	h.Problems()
}

// FuzzHFSPlus feeds damaged volumes to the whole reader. The input is
// the first 12.5 KiB of small.hfs (volume header, catalog, extents and
// allocation files), padded with zeros to the volume's 30 KiB: a short
// input keeps the fuzzer's minimisation fast (a 30 KiB seed stalled it).
func FuzzHFSPlus(f *testing.F) {
	b, err := os.ReadFile(small)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:12800])
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < len(b) {
			in = append(in, make([]byte, len(b)-len(in))...)
		}
		exercise(in)
	})
}

// TestBitmapFreesLiveBlock: an allocation bit cleared under passwords.txt
// (block 275) is damage: the block stays out of the free space, said so.
func TestBitmapFreesLiveBlock(t *testing.T) {
	p := editFixture(t, func(h *FS, b []byte) {
		at := h.base + int64(h.alloc.ext[0].start)*h.blockSize + 275/8
		b[at] &^= 0x80 >> (275 % 8)
	})
	h := openAt(t, p, 0)
	un, err := h.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	files := walkAll(t, h)
	f := files["/passwords.txt"]
	for _, u := range un {
		if f.Runs[0].Offset < u.Off+u.Len && u.Off < f.Runs[0].Offset+f.Runs[0].Length {
			t.Errorf("live block given as free: %+v", u)
		}
	}
	if !hasProblem(h, "marked free are mapped by files", fmt.Sprintf("first at %#x, CNID 20", 275*4096)) {
		t.Errorf("problems %q", h.Problems())
	}
}

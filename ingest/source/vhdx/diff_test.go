package vhdx

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/evidx/evidx/internal/testutil"
)

func putCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[4:], 0)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b, castagnoli))
}

func u16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// buildChild writes, per [MS-VHDX], a differencing VHDX over parent (size
// bytes, 1 MiB blocks): block 0 from the parent, block 1 fully in the
// child, block 2 partially (sector bitmap bits from rng).
func buildChild(t *testing.T, path string, size int64, linkage string, rng *rand.Rand) (child1, child2, bitmap []byte) {
	f := make([]byte, 7*mib)
	copy(f, "vhdxfile")
	copy(f[8:], u16("evidx test"))
	var dataGUID [16]byte
	rng.Read(dataGUID[:])
	for i, off := range []int{0x10000, 0x20000} {
		h := f[off : off+4096]
		copy(h, "head")
		binary.LittleEndian.PutUint64(h[8:], uint64(i+1))
		rng.Read(h[16:32])
		copy(h[32:48], dataGUID[:])
		binary.LittleEndian.PutUint16(h[66:], 1)
		binary.LittleEndian.PutUint32(h[68:], mib)
		binary.LittleEndian.PutUint64(h[72:], mib)
		putCRC(h)
	}
	for _, off := range []int{0x30000, 0x40000} {
		r := f[off : off+0x10000]
		copy(r, "regi")
		binary.LittleEndian.PutUint32(r[8:], 2)
		copy(r[16:], guidBAT[:])
		binary.LittleEndian.PutUint64(r[32:], 3*mib)
		binary.LittleEndian.PutUint32(r[40:], mib)
		binary.LittleEndian.PutUint32(r[44:], 1)
		copy(r[48:], guidMetadata[:])
		binary.LittleEndian.PutUint64(r[64:], 2*mib)
		binary.LittleEndian.PutUint32(r[72:], mib)
		binary.LittleEndian.PutUint32(r[76:], 1)
		putCRC(r)
	}
	// Parent locator.
	kv := [][2]string{{"parent_linkage", linkage}, {"relative_path", `.\parent.vhdx`}, {"absolute_win32_path", `C:\nowhere\parent.vhdx`}}
	loc := make([]byte, 20+12*len(kv))
	lt := guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")
	copy(loc, lt[:])
	binary.LittleEndian.PutUint16(loc[18:], uint16(len(kv)))
	for i, p := range kv {
		k, v := u16(p[0]), u16(p[1])
		e := loc[20+12*i:]
		binary.LittleEndian.PutUint32(e, uint32(len(loc)))
		binary.LittleEndian.PutUint16(e[8:], uint16(len(k)))
		loc = append(loc, k...)
		e = loc[20+12*i:]
		binary.LittleEndian.PutUint32(e[4:], uint32(len(loc)))
		binary.LittleEndian.PutUint16(e[10:], uint16(len(v)))
		loc = append(loc, v...)
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	diskID := make([]byte, 16)
	rng.Read(diskID)
	items := []struct {
		g     [16]byte
		v     []byte
		flags uint32
	}{
		{guidFileParams, append(le32(mib), le32(2)...), 4},
		{guidDiskSize, binary.LittleEndian.AppendUint64(nil, uint64(size)), 6},
		{guidDiskID, diskID, 6},
		{guidLogical, le32(512), 6},
		{guidPhysical, le32(512), 6},
		{guidParentLoc, loc, 4},
	}
	m := f[2*mib : 3*mib]
	copy(m, "metadata")
	binary.LittleEndian.PutUint16(m[10:], uint16(len(items)))
	at := 0x10000
	for i, it := range items {
		e := m[32+32*i:]
		copy(e, it.g[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(at))
		binary.LittleEndian.PutUint32(e[20:], uint32(len(it.v)))
		binary.LittleEndian.PutUint32(e[24:], it.flags)
		copy(m[at:], it.v)
		at += (len(it.v) + 7) &^ 7
	}
	// BAT: chunk ratio 4096, so the sector bitmap entry is index 4096.
	bat := f[3*mib : 4*mib]
	binary.LittleEndian.PutUint64(bat[8:], 4<<20|stFull)
	binary.LittleEndian.PutUint64(bat[16:], 5<<20|stPartial)
	binary.LittleEndian.PutUint64(bat[8*4096:], 6<<20|stFull)
	child1, child2 = f[4*mib:5*mib], f[5*mib:6*mib]
	rng.Read(child1)
	rng.Read(child2)
	// Block 2's sectors are bits 2*2048.. of the chunk's bitmap; runs of
	// set and clear bits of random lengths.
	bitmap = f[6*mib+2*256 : 6*mib+3*256]
	for i := 0; i < len(bitmap); i++ {
		bitmap[i] = byte(rng.Intn(256))
		if i%7 == 0 {
			bitmap[i] = 0xff
		} else if i%5 == 0 {
			bitmap[i] = 0
		}
	}
	if err := os.WriteFile(path, f, 0o644); err != nil {
		t.Fatal(err)
	}
	return
}

func TestDifferencing(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	praw := filepath.Join(dir, "p.raw")
	pdata := make([]byte, 8*mib)
	rng.Read(pdata[:6*mib])
	os.WriteFile(praw, pdata, 0o644)
	parent := filepath.Join(dir, "parent.vhdx")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", praw, parent)
	pb, _ := os.ReadFile(parent)
	pr := bytes.NewReader(pb)
	pd, err := Open(pr, int64(len(pb)), parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, linkage string
		problems      int
	}{{"good", guidString(pd.dataGUID), 0}, {"mismatch", "{00000000-1111-2222-3333-444444444444}", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			child := filepath.Join(dir, "child-"+tc.name+".vhdx")
			c1, c2, bm := buildChild(t, child, int64(len(pdata)), tc.linkage, rng)
			testutil.Unchanged(t, child, parent)
			out := string(testutil.Run(t, "vhdiinfo", child))
			if !strings.Contains(out, "Differential") {
				t.Logf("vhdiinfo:\n%s", out)
			}
			if vs := vhdiSize(t, child); vs != int64(len(pdata)) {
				t.Fatalf("vhdiinfo media size %d", vs)
			}
			want := append([]byte(nil), pdata...)
			copy(want[mib:], c1)
			for s := 0; s < 2048; s++ {
				if bm[s/8]>>(s%8)&1 != 0 {
					copy(want[2*mib+512*s:2*mib+512*(s+1)], c2[512*s:512*(s+1)])
				}
			}
			r, sz, err := osOpen(child)
			if err != nil {
				t.Fatal(err)
			}
			defer r.(*os.File).Close()
			d, err := Open(r, sz, child, osOpen)
			if err != nil {
				t.Fatal(err)
			}
			if d.Format() != "vhdx-differencing" || len(d.Files()) != 1 || d.Files()[0] != parent || len(d.Problems()) != tc.problems {
				t.Fatalf("format %q files %v problems %q", d.Format(), d.Files(), d.Problems())
			}
			checkAgainst(t, d, want)
			if _, err := Open(r, sz, child, nil); err == nil {
				t.Fatal("opened without an opener for the parent")
			}
		})
	}
}

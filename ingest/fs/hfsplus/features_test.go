package hfsplus

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// No Linux tool writes fragmented, compressed or hard-linked HFS+ files
// (hfsprogs is gone from Debian, the hfsplus package's hpmount refuses
// these volumes), so these tests edit the public image as macOS would
// have written it, and check the result against The Sleuth Kit, which
// reads all three.

var be = binary.BigEndian

const fixBS = 4096 // the fixture's allocation block size

// treeHeader is the volume offset of the header node of the B-tree whose
// fork is at volume-header offset forkOff.
func treeHeader(b []byte, forkOff int) int64 {
	return int64(be.Uint32(b[vhOff+forkOff+16:])) * fixBS
}

// setLeaf writes node n of the tree at hdr as the only leaf (and root),
// holding recs, and updates the header record and node map.
func setLeaf(t *testing.T, b []byte, hdr int64, n uint32, recs [][]byte) {
	t.Helper()
	ns := int64(be.Uint16(b[hdr+hdrNodeSize:]))
	node := b[hdr+int64(n)*ns : hdr+int64(n+1)*ns]
	clear(node)
	node[ndKind], node[ndHeight] = kindLeaf, 1
	be.PutUint16(node[ndNumRecords:], uint16(len(recs)))
	off := ndLen
	for i, r := range recs {
		be.PutUint16(node[len(node)-2*(i+1):], uint16(off))
		off += copy(node[off:], r)
	}
	be.PutUint16(node[len(node)-2*(len(recs)+1):], uint16(off))
	h := b[hdr+ndLen:]
	be.PutUint16(h[0:], 1)                 // depth
	be.PutUint32(h[2:], n)                 // root
	be.PutUint32(h[6:], uint32(len(recs))) // leaf records
	be.PutUint32(h[10:], n)                // first leaf
	be.PutUint32(h[14:], n)                // last leaf
	// The node map is the header node's record 2.
	mapOff := int64(be.Uint16(b[hdr+ns-6:]))
	b[hdr+mapOff+int64(n/8)] |= 0x80 >> (n % 8)
}

// recordData is the volume offset of the data of the catalog file record
// of name (the key of a file record ends its name; its data follows).
func recordData(t *testing.T, b []byte, name string) int64 {
	t.Helper()
	h := openAt(t, needFixture(t), 0)
	e := entryOf(t, h, name)
	i := bytes.Index(b[e.off:e.off+4096], e.rec[:cDataFork])
	if i < 0 {
		t.Fatal("record data not found")
	}
	return e.off + int64(i)
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edited.raw")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExtentsOverflow: passwords.txt remapped to eleven one-block
// fragments, the last three in an extents-overflow record, reads the
// blocks in that order, as icat reads them.
func TestExtentsOverflow(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	// Free blocks 300, 302, ... 320 get distinct content.
	var want []byte
	var exts []extent
	for i := range 11 {
		blk := uint32(300 + 2*i)
		chunk := bytes.Repeat([]byte{byte('a' + i)}, fixBS)
		copy(b[int64(blk)*fixBS:], chunk)
		want = append(want, chunk...)
		exts = append(exts, extent{blk, 1})
		b[treeHeader(b, vhAllocFork)+int64(blk/8)] |= 0x80 >> (blk % 8)
	}
	const size = 11*fixBS - 100
	want = want[:size]
	d := recordData(t, b, "passwords.txt")
	fk := b[d+cDataFork:]
	be.PutUint64(fk[0:], size)
	be.PutUint32(fk[12:], 11)
	for i := range 8 {
		be.PutUint32(fk[16+8*i:], exts[i].start)
		be.PutUint32(fk[20+8*i:], exts[i].count)
	}
	rec := make([]byte, 12+64)
	be.PutUint16(rec[0:], 10)
	be.PutUint32(rec[4:], 20) // passwords.txt's CNID
	be.PutUint32(rec[8:], 8)  // from file block 8
	for i, e := range exts[8:] {
		be.PutUint32(rec[12+8*i:], e.start)
		be.PutUint32(rec[16+8*i:], e.count)
	}
	setLeaf(t, b, treeHeader(b, vhExtFork), 1, [][]byte{rec})
	p := writeTemp(t, b)
	testutil.Unchanged(t, p)
	h := openAt(t, p, 0)
	files, sums := fstest.Walk(t, h)
	if got := sums["/passwords.txt"]; got != fstest.SHA256(want) {
		t.Errorf("sha256 %s, want %s", got, fstest.SHA256(want))
	}
	if icat := fstest.SHA256(testutil.Run(t, "icat", p, "20")); icat != fstest.SHA256(want) {
		t.Errorf("icat sha256 %s, want %s", icat, fstest.SHA256(want))
	}
	for _, f := range files {
		if f.Path == "/passwords.txt" && len(f.Runs) != 11 {
			t.Errorf("%d runs: %+v", len(f.Runs), f.Runs)
		}
	}
	if p := h.Problems(); len(p) != 1 {
		t.Errorf("problems %q", p)
	}
	un, err := h.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	fstest.CheckUnallocated(t, un, files, func(*fs.File, fs.Run) bool { return false })

	// The overflow record gone: the file is short of three blocks, said so.
	setLeaf(t, b, treeHeader(b, vhExtFork), 1, nil)
	h = openAt(t, writeTemp(t, b), 0)
	files, _ = fstest.Walk(t, h)
	for _, f := range files {
		if f.Path == "/passwords.txt" && (f.Recoverable || !bytes.Contains([]byte(f.Err), []byte("no extents-overflow record for block 8"))) {
			t.Errorf("%+v", f)
		}
	}
}

// decmpfsAttr is a com.apple.decmpfs attributes-file record for cnid.
func decmpfsAttr(cnid uint32, typ uint32, size uint64, data []byte) []byte {
	name := "com.apple.decmpfs"
	key := make([]byte, 14+2*len(name))
	be.PutUint16(key[0:], uint16(len(key)-2))
	be.PutUint32(key[4:], cnid)
	be.PutUint16(key[12:], uint16(len(name)))
	for i, c := range name {
		be.PutUint16(key[14+2*i:], uint16(c))
	}
	v := make([]byte, 16, 16+len(data))
	copy(v, "fpmc")
	binary.LittleEndian.PutUint32(v[4:], typ)
	binary.LittleEndian.PutUint64(v[8:], size)
	v = append(v, data...)
	rec := make([]byte, 16)
	be.PutUint32(rec[0:], 0x10)
	be.PutUint32(rec[12:], uint32(len(v)))
	rec = append(append(key, rec...), v...)
	if len(rec)%2 == 1 {
		rec = append(rec, 0)
	}
	return rec
}

// compress makes the file name (CNID cnid) of image b a decmpfs file of
// type typ and uncompressed size size: inline holds the attribute's data
// after its header, fork (if any) becomes the resource fork, written to
// the free blocks from 400 on.
func compress(t *testing.T, b []byte, name string, cnid, typ uint32, size int, inline, fork []byte) {
	t.Helper()
	d := recordData(t, b, name)
	b[d+cOwnerFlags] |= ufCompressed
	setLeaf(t, b, treeHeader(b, vhAttrFork), 1, [][]byte{decmpfsAttr(cnid, typ, uint64(size), inline)})
	if fork == nil {
		return
	}
	const start = 400
	blocks := (len(fork) + fixBS - 1) / fixBS
	copy(b[start*fixBS:], fork)
	rf := b[d+cRsrcFork:]
	clear(rf[:80])
	be.PutUint64(rf[0:], uint64(len(fork)))
	be.PutUint32(rf[12:], uint32(blocks))
	be.PutUint32(rf[16:], start)
	be.PutUint32(rf[20:], uint32(blocks))
	for blk := start; blk < start+blocks; blk++ {
		b[treeHeader(b, vhAllocFork)+int64(blk/8)] |= 0x80 >> (blk % 8)
	}
}

// checkCompressed: a_file (CNID 19) reads as want, with its size, no
// runs, and icat decodes it the same.
func checkCompressed(t *testing.T, b, want []byte) {
	t.Helper()
	p := writeTemp(t, b)
	h := openAt(t, p, 0)
	files, sums := fstest.Walk(t, h)
	if got := sums["/a_directory/a_file"]; got != fstest.SHA256(want) {
		t.Errorf("sha256 %s, want %s", got, fstest.SHA256(want))
	}
	for _, f := range files {
		if f.Path == "/a_directory/a_file" && (f.Size != int64(len(want)) || len(f.Runs) != 0 || f.Err != "") {
			t.Errorf("%+v", f)
		}
		if strings.HasPrefix(f.Path, "/a_directory/a_file/") {
			t.Errorf("resource fork of a compressed file listed: %s", f.Path)
		}
	}
	if icat := fstest.SHA256(testutil.Run(t, "icat", p, "19")); icat != fstest.SHA256(want) {
		t.Errorf("icat sha256 %s, want %s", icat, fstest.SHA256(want))
	}
	if len(h.Problems()) != 1 {
		t.Errorf("problems %q", h.Problems())
	}
}

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// TestDecmpfsZlib: a_file compressed as macOS does it (UF_COMPRESSED, a
// type 3 com.apple.decmpfs attribute holding the zlib stream) reads as its
// uncompressed content, with that size, as icat decodes it.
func TestDecmpfsZlib(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("compressed by decmpfs, type 3 (zlib inline). "), 200)
	compress(t, b, "a_file", 19, 3, len(want), zlibBytes(want), nil)
	checkCompressed(t, b, want)
}

// TestDecmpfsZlibFork: type 4, three 64 KiB chunks of zlib in the
// resource fork (its header, then the block table icat reads too).
func TestDecmpfsZlibFork(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; len(want) < 150000; i++ {
		want = fmt.Appendf(want, "line %d of a type 4 file\n", i)
	}
	want = want[:150000]
	const dataOff = 0x100
	var chunks [][]byte
	for o := 0; o < len(want); o += 65536 {
		chunks = append(chunks, zlibBytes(want[o:min(len(want), o+65536)]))
	}
	tab := 4 + 8*len(chunks)
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(len(chunks)))
	o := tab
	for _, c := range chunks {
		data = binary.LittleEndian.AppendUint32(data, uint32(o))
		data = binary.LittleEndian.AppendUint32(data, uint32(len(c)))
		o += len(c)
	}
	for _, c := range chunks {
		data = append(data, c...)
	}
	fork := make([]byte, dataOff)
	be.PutUint32(fork[0:], dataOff)
	be.PutUint32(fork[4:], uint32(dataOff+4+len(data))) // map offset
	be.PutUint32(fork[8:], uint32(4+len(data)))
	be.PutUint32(fork[12:], 50)
	fork = be.AppendUint32(fork, uint32(len(data)))
	fork = append(fork, data...)
	fork = append(fork, make([]byte, 50)...) // an empty resource map
	compress(t, b, "a_file", 19, 4, len(want), nil, fork)
	checkCompressed(t, b, want)
}

// lzvnSample is a hand-assembled LZVN stream (each opcode class) and what
// it decodes to.
func lzvnSample() (in, out []byte) {
	in = []byte{
		0xe4, 'a', 'b', 'c', 'd', // small literal
		0x0e,                    // nop
		0x40 | 1<<3 | 0, 4, 'x', // small distance L=1 M=4 D=4
		0x0f, 5, 0, // large distance M=4 D=5
		0xf3,    // small match M=3
		0xf0, 0, // large match M=16
		0xe0, 0, // large literal L=16
	}
	in = append(in, "0123456789abcdef"...)
	in = append(in, 0x06, 0, 0, 0, 0, 0, 0, 0)
	match := func(d, m int) {
		for range m {
			out = append(out, out[len(out)-d])
		}
	}
	out = append(out, "abcdx"...)
	match(4, 4)
	match(5, 4)
	match(5, 3)
	match(5, 16)
	out = append(out, "0123456789abcdef"...)
	return in, out
}

// TestDecmpfsLZVN: type 7 (LZVN inline) and type 8 (LZVN chunks in the
// resource fork, after their table of little-endian offsets) read as
// icat decodes them.
func TestDecmpfsLZVN(t *testing.T) {
	in, want := lzvnSample()
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	compress(t, b, "a_file", 19, 7, len(want), in, nil)
	checkCompressed(t, b, want)

	b, _ = os.ReadFile(needFixture(t))
	var fork []byte
	fork = binary.LittleEndian.AppendUint32(fork, 8)
	fork = binary.LittleEndian.AppendUint32(fork, uint32(8+len(in)))
	fork = append(fork, in...)
	compress(t, b, "a_file", 19, 8, len(want), nil, fork)
	checkCompressed(t, b, want)
}

// TestHardLink: another_file made a file hard link ('hlnk'/'hfs+',
// iNodeNum 20) lists with the indirect node's number and content, as fls
// and icat give them.
func TestHardLink(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	d := recordData(t, b, "another_file")
	copy(b[d+cFileType:], "hlnkhfs+")
	be.PutUint32(b[d+cSpecial:], 20)
	// Without the private folder's creation date it is no link.
	h := openAt(t, writeTemp(t, b), 0)
	if _, sums := fstest.Walk(t, h); sums["/a_directory/another_file"] == sums["/passwords.txt"] {
		t.Error("followed a link without the private folder's date")
	}
	priv := openAt(t, needFixture(t), 0)
	pe := entryOf(t, priv, privateFiles)
	copy(b[d+cCreate:d+cCreate+4], pe.rec[cCreate:])
	p := writeTemp(t, b)
	h = openAt(t, p, 0)
	compareTSK(t, p, 0, h)
	files, sums := fstest.Walk(t, h)
	if sums["/a_directory/another_file"] != sums["/passwords.txt"] {
		t.Error("hard link content is not its node's")
	}
	for _, f := range files {
		if f.Path == "/a_directory/another_file" && f.Inode != 20 {
			t.Errorf("hard link inode %d", f.Inode)
		}
	}
}

// TestDirectoryHardLink: passwords.txt made a directory hard link
// ('fdrp'/'MACS' with the private directory folder's creation date) to
// a_directory lists that folder's content under it, as fls does.
func TestDirectoryHardLink(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	d := recordData(t, b, "passwords.txt")
	copy(b[d+cFileType:], "fdrpMACS")
	be.PutUint32(b[d+cSpecial:], 18)
	pe := entryOf(t, openAt(t, needFixture(t), 0), privateDirs)
	copy(b[d+cCreate:d+cCreate+4], pe.rec[cCreate:])
	p := writeTemp(t, b)
	h := openAt(t, p, 0)
	compareTSK(t, p, 0, h)
	_, sums := fstest.Walk(t, h)
	if sums["/passwords.txt/a_file"] != sums["/a_directory/a_file"] || sums["/a_directory/a_file"] == "" {
		t.Errorf("linked folder content: %q", sums)
	}
}

// TestHFSX: the fixture's header signed "HX", version 5 (HFSX, with a
// binary-compare catalog) reads as an hfsx volume, as fls reads it.
func TestHFSX(t *testing.T) {
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	be.PutUint16(b[vhOff+vhSignature:], sigX)
	be.PutUint16(b[vhOff+vhVersion:], 5)
	b[treeHeader(b, vhCatFork)+ndLen+37] = 0xbc // kHFSBinaryCompare
	p := writeTemp(t, b)
	h := openAt(t, p, 0)
	if h.Type() != "hfsx" {
		t.Errorf("type %q", h.Type())
	}
	compareTSK(t, p, 0, h)
	f, _ := os.Open(p)
	defer f.Close()
	if got := fs.DetectFileSystem(f, int64(len(b))); got != "hfsx" || fs.Family(got) != "hfsplus" {
		t.Errorf("detected %q, family %q", got, fs.Family(got))
	}
}

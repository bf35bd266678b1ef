package fs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// sfdiskDisk creates an image of sizeMB with the given sfdisk script and
// returns its path and sfdisk's own reading of the table (the truth).
func sfdiskDisk(t *testing.T, sizeMB int, script string) (string, []sfPart) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMB)<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.NeedTool(t, "sfdisk"), "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var js struct {
		PT struct {
			Partitions []sfPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(testutil.Run(t, "sfdisk", "--json", img), &js); err != nil {
		t.Fatal(err)
	}
	return img, js.PT.Partitions
}

type sfPart struct {
	Node  string `json:"node"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	Name  string `json:"name"`
}

func readTable(t *testing.T, img string) *Table {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := ReadPartitions(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// nodeIndex turns sfdisk's "disk.img5" into 5.
func nodeIndex(t *testing.T, node string) int {
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(node[i:])
	if err != nil {
		t.Fatalf("node %q", node)
	}
	return n
}

func TestMBRWithLogicalPartitions(t *testing.T) {
	img, truth := sfdiskDisk(t, 96, "label: dos\n,8M,c\n,8M,83\n,,E\n,20M,c\n,12M,6\n,8M,83\n")
	testutil.Unchanged(t, img)
	tb := readTable(t, img)
	if tb.Scheme != "mbr" || len(tb.Problems) != 0 {
		t.Fatalf("scheme %s problems %v", tb.Scheme, tb.Problems)
	}
	var want []sfPart
	for _, p := range truth {
		if p.Type != "5" { // the extended container is not a data partition
			want = append(want, p)
		}
	}
	if len(tb.Partitions) != len(want) {
		t.Fatalf("%d partitions, sfdisk %d: %+v", len(tb.Partitions), len(want), tb.Partitions)
	}
	for i, w := range want {
		p := tb.Partitions[i]
		typ, _ := strconv.ParseUint(w.Type, 16, 8)
		if p.Index != nodeIndex(t, w.Node) || p.Start != w.Start*512 || p.Size != w.Size*512 || p.Type != fmt.Sprintf("0x%02x", typ) {
			t.Errorf("partition %d: %+v, sfdisk %+v", i, p, w)
		}
		if p.Logical != (p.Index >= 5) {
			t.Errorf("partition %d logical=%v", p.Index, p.Logical)
		}
	}
}

func TestGPTPrimaryAndBackup(t *testing.T) {
	img, truth := sfdiskDisk(t, 32, "label: gpt\nsize=8M, type=L, name=one\nsize=8M, type=U, name=two\n")
	testutil.Unchanged(t, img)
	tb := readTable(t, img)
	check := func(tb *Table) {
		t.Helper()
		if tb.Scheme != "gpt" || len(tb.Partitions) != len(truth) {
			t.Fatalf("scheme %s, %d partitions: %+v", tb.Scheme, len(tb.Partitions), tb)
		}
		for i, w := range truth {
			p := tb.Partitions[i]
			if p.Start != w.Start*512 || p.Size != w.Size*512 || !strings.EqualFold(p.Type, w.Type) || p.Name != w.Name {
				t.Errorf("partition %d: %+v, sfdisk %+v", i, p, w)
			}
		}
	}
	check(tb)
	if tb.Partitions[0].TypeName != "Linux filesystem" || tb.Partitions[1].TypeName != "EFI System" {
		t.Errorf("type names %q %q", tb.Partitions[0].TypeName, tb.Partitions[1].TypeName)
	}
	// Flip a byte of the primary header's disk GUID (LBA 1, offset 56): its
	// CRC fails and the backup header at the last LBA must be used.
	b, _ := os.ReadFile(img)
	b[512+56] ^= 0xff
	tb, err := ReadPartitions(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	check(tb)
	if !strings.Contains(strings.Join(tb.Problems, "\n"), "header CRC") || !strings.Contains(strings.Join(tb.Problems, "\n"), "backup") {
		t.Errorf("problems %v", tb.Problems)
	}
}

func TestBareFileSystem(t *testing.T) {
	img := filepath.Join(t.TempDir(), "fat.img")
	testutil.Run(t, "mkfs.fat", "-F", "16", "-C", img, "20000")
	testutil.Unchanged(t, img)
	tb := readTable(t, img)
	if tb.Scheme != "none" || len(tb.Partitions) != 1 || tb.Partitions[0].FileSystem != "fat16" || tb.Partitions[0].Start != 0 || len(tb.Problems) != 0 {
		t.Errorf("%+v", tb)
	}
	// An ISO has a zeroed sector 0: no table, no GPT complaints either.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	iso := filepath.Join(t.TempDir(), "x.iso")
	testutil.Run(t, "genisoimage", "-quiet", "-o", iso, src)
	tb = readTable(t, iso)
	if tb.Scheme != "none" || len(tb.Partitions) != 1 || tb.Partitions[0].FileSystem != "iso9660" || len(tb.Problems) != 0 {
		t.Errorf("%+v", tb)
	}
}

// mbrImage builds an MBR disk in memory (512-byte sectors): a primary
// FAT partition entry in slot 1 and an extended partition in slot 2 with a
// chain of n logical partitions, one EBR each.
func mbrImage(n int) []byte {
	const extStart, perLogical = 64, 16 // sectors
	img := make([]byte, (extStart+n*perLogical+8)*512)
	entry := func(sec []byte, slot int, typ byte, lba, count uint32) {
		e := sec[446+16*slot:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], lba)
		binary.LittleEndian.PutUint32(e[12:], count)
	}
	mbr := img[:512]
	entry(mbr, 0, 0x0c, 8, 48)
	entry(mbr, 1, 0x05, extStart, uint32(n*perLogical))
	mbr[510], mbr[511] = 0x55, 0xaa
	for i := range n {
		ebr := img[(extStart+i*perLogical)*512:]
		entry(ebr, 0, 0x83, 1, perLogical-1) // relative to this EBR
		if i+1 < n {
			entry(ebr, 1, 0x05, uint32((i+1)*perLogical), perLogical) // relative to the extended partition
		}
		ebr[510], ebr[511] = 0x55, 0xaa
	}
	return img
}

func TestEBRChain(t *testing.T) {
	img := mbrImage(4)
	tb, err := ReadPartitions(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Partitions) != 5 || tb.Partitions[4].Index != 8 || tb.Partitions[4].Start != (64+3*16+1)*512 {
		t.Errorf("%+v", tb.Partitions)
	}
	// The third EBR's link (entry 2 at byte 446+16, LBA at +8, relative to
	// the extended partition) points back at the second EBR (16 sectors in):
	// the chain loops and must stop with a problem.
	ebr3 := (64 + 2*16) * 512
	binary.LittleEndian.PutUint32(img[ebr3+446+16+8:], 16)
	tb, _ = ReadPartitions(bytes.NewReader(img), int64(len(img)))
	if len(tb.Partitions) != 4 || !strings.Contains(strings.Join(tb.Problems, "\n"), "loops") {
		t.Errorf("loop: %d partitions, problems %v", len(tb.Partitions), tb.Problems)
	}
}

// gptImage builds a GPT disk in memory with valid CRCs: protective MBR,
// header at LBA 1, 128 entries at LBA 2, backup header at the last LBA.
func gptImage() []byte {
	const sectors = 128
	img := make([]byte, sectors*512)
	e := img[446:]
	e[4] = 0xee
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], sectors-1)
	img[510], img[511] = 0x55, 0xaa
	arr := img[2*512 : 2*512+128*128]
	// Entry 1: Linux filesystem GUID 0FC63DAF-8483-4772-8E79-3D69D8477DE4, LBA 40-79.
	copy(arr, []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4})
	arr[16] = 1
	binary.LittleEndian.PutUint64(arr[32:], 40)
	binary.LittleEndian.PutUint64(arr[40:], 79)
	copy(arr[56:], []byte{'d', 0, 'a', 0, 't', 0, 'a', 0})
	hdr := func(at, entLBA, backup uint64) {
		h := img[at*512:]
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], at)
		binary.LittleEndian.PutUint64(h[32:], backup)
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], sectors-34)
		binary.LittleEndian.PutUint64(h[72:], entLBA)
		binary.LittleEndian.PutUint32(h[80:], 128)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(arr))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	}
	copy(img[(sectors-33)*512:], arr) // backup entry array before the backup header
	hdr(1, 2, sectors-1)
	hdr(sectors-1, sectors-33, 1)
	return img
}

func TestGPTInMemory(t *testing.T) {
	img := gptImage()
	tb, err := ReadPartitions(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if tb.Scheme != "gpt" || len(tb.Partitions) != 1 || tb.Partitions[0].Start != 40*512 || tb.Partitions[0].Name != "data" {
		t.Errorf("%+v", tb)
	}
}

func TestMergeRanges(t *testing.T) {
	got := MergeRanges([]Range{{10, 5}, {0, 3}, {3, 2}, {14, 10}, {30, 0}, {40, 1}})
	want := []Range{{0, 5}, {10, 14}, {40, 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func FuzzPartitions(f *testing.F) {
	f.Add(mbrImage(3))
	f.Add(gptImage())
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := ReadPartitions(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if len(tb.Partitions) > 4+maxLogical+gptMaxEntries {
			t.Fatalf("%d partitions", len(tb.Partitions))
		}
		d, err := OpenDisk(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			for _, r := range d.Unallocated() {
				if r.Off < 0 || r.Len <= 0 || r.Off+r.Len > int64(len(data)) {
					t.Fatalf("range %+v outside the image", r)
				}
			}
		}
	})
}

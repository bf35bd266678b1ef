package ntfs

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
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// small is a 2 MiB NTFS image made without mounting: mkntfs, then ntfscp
// for a non-resident file, a resident one, an alternate data stream and a
// file that is then deleted by hand (its MFT entry's in-use flag and its
// $Bitmap bits cleared, as NTFS does).
type small struct {
	img   []byte
	truth tree // allocated streams → SHA-256
	gone  string
	goneH string
}

func smallNTFS(t testing.TB) *small {
	t.Helper()
	tmp := t.TempDir()
	img := filepath.Join(tmp, "small.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-c", "1024", img)
	rng := rand.New(rand.NewPCG(7, 7))
	s := &small{truth: tree{}}
	cp := func(name string, content []byte, stream string) {
		src := filepath.Join(tmp, "src-"+name+stream)
		if err := os.WriteFile(src, content, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-q", img, src, name}
		key := "/" + name
		if stream != "" {
			args = []string{"-q", "-N", stream, img, src, name}
			key += ":" + stream
		}
		testutil.Run(t, "ntfscp", args...)
		s.truth[key] = sum(content)
	}
	big := make([]byte, 20000)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	cp("a.bin", big, "")
	cp("s.txt", []byte("small resident file\n"), "")
	cp("s.txt", []byte("the stream"), "ads")
	// Enough streams that ntfs-3g moves attributes to extension records
	// through an $ATTRIBUTE_LIST: the fuzz target then reaches expand.
	cp("m.bin", []byte("many streams"), "")
	for i := range 16 {
		cp("m.bin", bytes.Repeat([]byte{byte(i)}, 150), fmt.Sprintf("s%02d", i))
	}
	gone := bytes.Repeat([]byte("deleted content "), 700)
	cp("gone.bin", gone, "")
	delete(s.truth, "/gone.bin")
	s.gone, s.goneH = "/gone.bin", sum(gone)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// Delete gone.bin by hand.
	n, err := open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var gf *fs.File
	_ = n.Walk(context.Background(), func(f *fs.File) error {
		if f.Path == "/gone.bin" {
			gf = f
		}
		return nil
	})
	if gf == nil {
		t.Fatal("gone.bin not found")
	}
	off := n.recordOffset(gf.Inode)
	b[off+recFlags] &^= flagInUse // MFT record header flags, byte 0x16
	bmOffs := bitmapOffsets(t, n)
	for _, r := range gf.Runs {
		for c := r.Offset / n.bt.clusterSize; c*n.bt.clusterSize < r.Offset+r.Length; c++ {
			b[bmOffs(c)] &^= 1 << (c % 8)
		}
	}
	s.img = b
	return s
}

// bitmapOffsets returns a function giving the volume offset of the $Bitmap
// byte that holds cluster c's bit.
func bitmapOffsets(t testing.TB, n *FS) func(c int64) int64 {
	raw := make([]byte, n.bt.recordSize)
	rec, err := n.record(entryBitmap, raw)
	if rec == nil {
		t.Fatal(err)
	}
	st, err := n.stream(rec, "")
	if err != nil || !st.nonRes {
		t.Fatalf("$Bitmap: %v", err)
	}
	return func(c int64) int64 {
		for _, r := range st.runs {
			if c/8 >= r.Logical && c/8 < r.Logical+r.Length {
				return r.Offset + c/8 - r.Logical
			}
		}
		t.Fatalf("cluster %d not in $Bitmap", c)
		return 0
	}
}

// walkBytes walks an in-memory image, reading every readable stream.
func walkBytes(t testing.TB, b []byte, hash bool) (*FS, map[string]*fs.File, map[string]string, error) {
	n, err := open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, nil, err
	}
	files := map[string]*fs.File{}
	sums := map[string]string{}
	err = n.Walk(context.Background(), func(f *fs.File) error {
		files[f.Path] = f
		if f.Type == "file" && f.Recoverable {
			if r, err := n.Open(f); err == nil && !hash {
				_, _ = io.CopyN(io.Discard, r, 8<<20)
			} else if err == nil {
				var buf bytes.Buffer
				if _, err := io.CopyN(&buf, r, 8<<20); err == nil || errors.Is(err, io.EOF) {
					sums[f.Path] = sum(buf.Bytes())
				}
			}
		}
		return nil
	})
	if _, uerr := n.Unallocated(); uerr != nil && err == nil {
		err = uerr
	}
	return n, files, sums, err
}

func hasProblem(n *FS, sub string) bool {
	for _, p := range n.Problems() {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

func TestSmallAndCorrupt(t *testing.T) {
	s := smallNTFS(t)
	n, files, sums, err := walkBytes(t, s.img, true)
	if err != nil {
		t.Fatal(err)
	}
	if p := n.Problems(); len(p) > 0 {
		t.Errorf("problems on a clean image: %q", p)
	}
	for p, want := range s.truth {
		if sums[p] != want {
			t.Errorf("%s: sha %s want %s", p, sums[p], want)
		}
	}
	// Byte runs say where the content lies in the image: for a resident
	// stream, inside its MFT record.
	for _, p := range []string{"/a.bin", "/s.txt", "/s.txt:ads"} {
		f := files[p]
		var b []byte
		for _, r := range f.Runs {
			b = append(b, s.img[r.Offset:r.Offset+r.Length]...)
		}
		if sum(b) != s.truth[p] {
			t.Errorf("%s: image bytes at its runs %+v differ from its content", p, f.Runs)
		}
	}
	if g := files[s.gone]; g == nil || !g.Deleted || !g.Recoverable || sums[s.gone] != s.goneH {
		t.Errorf("deleted %s: %+v", s.gone, g)
	}
	entry := func(path string) (uint64, int64) {
		f := files[path]
		if f == nil {
			t.Fatalf("%s not listed", path)
		}
		return f.Inode, n.recordOffset(f.Inode)
	}

	t.Run("FILE signature flipped", func(t *testing.T) {
		b := bytes.Clone(s.img)
		num, off := entry("/a.bin")
		b[off] ^= 0x20 // "FILE" → "fILE"
		n, files, _, err := walkBytes(t, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("mft entry %d at %#x", num, off); !hasProblem(n, want) {
			t.Errorf("want problem %q, got %q", want, n.Problems())
		}
		if files["/a.bin"] != nil || files["/s.txt"] == nil || files["/s.txt:ads"] == nil {
			t.Errorf("listing wrong: %v", keys(files))
		}
	})
	// The backup boot sector (the volume's last sector, as mkntfs wrote
	// it) stands in for a primary whose $MFT cluster is absurd, or that is
	// wiped: every file still reads, and the fall-back is named.
	for _, c := range []struct {
		name  string
		spoil func(b []byte)
	}{
		{"bad $MFT LCN uses the backup boot sector", func(b []byte) { binary.LittleEndian.PutUint64(b[bootMFTLCN:], 1<<40) }},
		{"wiped primary uses the backup boot sector", func(b []byte) { clear(b[:512]) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(s.img)
			c.spoil(b)
			if got := fs.DetectFileSystem(bytes.NewReader(b), int64(len(b))); got != "ntfs" {
				t.Errorf("detected %q", got)
			}
			n2, _, sums, err := walkBytes(t, b, true)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("using the backup boot sector at %#x", len(b)-512); !hasProblem(n2, want) {
				t.Errorf("want problem %q, got %q", want, n2.Problems())
			}
			for p, want := range s.truth {
				if sums[p] != want {
					t.Errorf("%s: sha %s want %s", p, sums[p], want)
				}
			}
		})
	}
	t.Run("entry 0 damaged uses $MFTMirr", func(t *testing.T) {
		b := bytes.Clone(s.img)
		b[n.bt.mftOff] = 'X' // "FILE" of MFT entry 0
		n2, files, sums, err := walkBytes(t, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("mft entry 0 at %#x", n.bt.mftOff); !hasProblem(n2, "using $MFTMirr") || !hasProblem(n2, want) {
			t.Errorf("problems %q", n2.Problems())
		}
		if sums["/a.bin"] != s.truth["/a.bin"] || files["/$MFT"] != nil {
			t.Errorf("a.bin %s, $MFT %+v", sums["/a.bin"], files["/$MFT"])
		}
	})
	t.Run("torn fixup", func(t *testing.T) {
		b := bytes.Clone(s.img)
		num, off := entry("/s.txt")
		b[off+fixupStride-2] ^= 0xFF // sector 0's last two bytes must equal the USN
		n, files, _, err := walkBytes(t, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("mft entry %d fixup at %#x", num, off+fixupStride-2); !hasProblem(n, want) {
			t.Errorf("want problem %q, got %q", want, n.Problems())
		}
		if files["/a.bin"] == nil {
			t.Error("a.bin lost")
		}
	})
	t.Run("run past the end", func(t *testing.T) {
		b := bytes.Clone(s.img)
		num, off := entry("/a.bin")
		raw := make([]byte, n.bt.recordSize)
		rec, _ := n.record(num, raw)
		var data *attr
		for _, a := range rec.attrs {
			if a.typ == attrData && a.nonResident {
				data = a
			}
		}
		if data == nil {
			t.Fatal("a.bin has no non-resident $DATA")
		}
		// First mapping pair: header byte, then length, then a signed
		// LCN of (header>>4) bytes; make the LCN 0x7FFFFF.. clusters.
		h := b[data.runListOff]
		ls, os := int64(h&0xF), int64(h>>4)
		for i := range os {
			b[data.runListOff+1+ls+i] = 0xFF
		}
		b[data.runListOff+ls+os] = 0x7F
		n2, files, _, err := walkBytes(t, b, true)
		if err != nil {
			t.Fatal(err)
		}
		f := files["/a.bin"]
		if want := fmt.Sprintf("run list at %#x", data.runListOff); f == nil || !strings.Contains(f.Err, want) || f.Recoverable {
			t.Errorf("a.bin: want error naming %q, got %+v", want, f)
		}
		if files["/s.txt"] == nil || !hasProblem(n2, "run list") {
			t.Errorf("rest not listed or problem missing: %q", n2.Problems())
		}
		_ = off
	})
	t.Run("directory cycle", func(t *testing.T) {
		b := bytes.Clone(s.img)
		const extend = 11 // $Extend, a directory with children
		raw := make([]byte, n.bt.recordSize)
		rec, _ := n.record(extend, raw)
		var fn *attr
		for _, a := range rec.attrs {
			if a.typ == attrFileName {
				fn = a
			}
		}
		// $FILE_NAME parent reference (bytes 0-7 of the value: 48-bit
		// entry, 16-bit sequence): point $Extend at itself.
		binary.LittleEndian.PutUint64(b[fn.valueOff:], extend|uint64(rec.seq)<<48)
		if (fn.valueOff-rec.off)%fixupStride >= fixupStride-8 {
			t.Skip("parent reference straddles a fixup")
		}
		n2, files, _, err := walkBytes(t, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(n2, "directory cycle") {
			t.Errorf("cycle not reported: %q", n2.Problems())
		}
		if files["/a.bin"] == nil || files["/$OrphanFiles/$Quota"] == nil && files["/$OrphanFiles/$Extend"] == nil {
			t.Errorf("listing: %v", keys(files))
		}
	})
	t.Run("truncated", func(t *testing.T) {
		_, off := entry("/s.txt")
		b := s.img[:off+100]
		n2, files, _, err := walkBytes(t, b, true)
		if err != nil && !errors.Is(err, ErrTruncated) {
			t.Fatal(err)
		}
		if n2 == nil {
			t.Fatal("open failed")
		}
		if !hasProblem(n2, "read past the end") {
			t.Errorf("truncation not reported: %q", n2.Problems())
		}
		if files["/a.bin"] == nil {
			t.Errorf("a.bin lost: %v", keys(files))
		}
	})
	t.Run("boot sector damaged", func(t *testing.T) {
		b := bytes.Clone(s.img)
		b[bootSecPerCluster] = 3            // not a power of two
		b[len(b)-512+bootSecPerCluster] = 3 // and so the backup: the primary's error is told
		_, err := Open(bytes.NewReader(b), int64(len(b)))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Offset != bootSecPerCluster || !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v", err)
		}
		if Probe(bytes.NewReader(b), int64(len(b))) {
			t.Error("Probe true")
		}
		if _, err := Open(bytes.NewReader(make([]byte, 4096)), 4096); !errors.Is(err, ErrNotNTFS) {
			t.Errorf("zeros: %v", err)
		}
	})
}

func keys(m map[string]*fs.File) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzNTFS walks the small image with the fuzz input patched in: into the
// boot sector (region 0) or the first 256 KiB of the MFT (region 1; +128: truncated after the patch), where
// records, attributes and run lists live. The input is a patch, not the
// whole image: the fuzz engine crawls on inputs of many KiB. Walk, every
// Open and Unallocated must not panic.
func FuzzNTFS(f *testing.F) {
	s := smallNTFS(f)
	n, err := open(bytes.NewReader(s.img), int64(len(s.img)))
	if err != nil {
		f.Fatal(err)
	}
	mft := n.bt.mftOff
	f.Add(uint8(0), uint32(bootSecPerCluster), []byte{0x80})
	f.Add(uint8(1), uint32(64*1024+0x14), []byte{0xff, 0xff})   // entry 64 attribute offset
	f.Add(uint8(1), uint32(64*1024+0x100), []byte{0x41, 0x01})  // inside entry 64 attributes
	f.Add(uint8(1), uint32(6*1024+0x48), []byte{0, 0, 0, 0, 9}) // $Bitmap record
	f.Add(uint8(1), uint32(0), []byte("FILE0"))
	f.Add(uint8(129), uint32(70*1024), []byte{0})
	f.Fuzz(func(t *testing.T, region uint8, at uint32, patch []byte) {
		b := bytes.Clone(s.img)
		base := int64(0)
		if region%2 == 1 {
			base = mft
		}
		start := min(base+int64(at%(256<<10)), int64(len(b)))
		end := min(start+int64(len(patch)), int64(len(b)))
		copy(b[start:end], patch)
		if region >= 128 {
			b = b[:end] // truncated after the patch
		}
		_, _, _, _ = walkBytes(t, b, false)
	})
}

// TestRecoverAs checks that a panic inside a go-ntfs call becomes an error
// and a Problem naming the MFT entry and its offset.
func TestRecoverAs(t *testing.T) {
	s := smallNTFS(t)
	n, err := open(bytes.NewReader(s.img), int64(len(s.img)))
	if err != nil {
		t.Fatal(err)
	}
	call := func() (err error) {
		defer n.recoverAs(&err, 64, "go-ntfs read")
		var m map[string]int
		m["x"]++ // nil map write: panics
		return nil
	}
	err = call()
	want := fmt.Sprintf("mft entry 64 go-ntfs read at %#x", n.recordOffset(64))
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrCorrupt) || !hasProblem(n, want) {
		t.Errorf("err %v, problems %q; want %q", err, n.Problems(), want)
	}
}

// TestConcurrentOpen opens and reads files from worker goroutines while
// Walk runs, and calls Unallocated meanwhile, as evidx ls does: run under
// -race, it checks the read-ahead window and go-ntfs are guarded.
func TestConcurrentOpen(t *testing.T) {
	s := smallNTFS(t)
	n, err := open(bytes.NewReader(s.img), int64(len(s.img)))
	if err != nil {
		t.Fatal(err)
	}
	got := fstest.ConcurrentSums(t, n)
	for p, want := range s.truth {
		if got[p] != want {
			t.Errorf("%s: %s want %s", p, got[p], want)
		}
	}
}

// TestFixupRuns checks the byte runs of resident content that spans a
// fixed-up pair of bytes: those two bytes lie in the update sequence array.
func TestFixupRuns(t *testing.T) {
	fx := fixups{recOff: 0x1000, usa: 0x30, count: 3} // a 1 KiB record: fixups at 0x11FE and 0x13FE
	got := fx.runs(0x1100, 0x200)
	want := []fs.Run{
		{Logical: 0, Offset: 0x1100, Length: 0xFE},
		{Logical: 0xFE, Offset: 0x1032, Length: 2}, // usa entry 1
		{Logical: 0x100, Offset: 0x1200, Length: 0x100},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	if got := fx.runs(0x1010, 0x20); len(got) != 1 || got[0].Offset != 0x1010 {
		t.Errorf("no fixup inside: %v", got)
	}
	if got := fx.runs(0x11FF, 3); fmt.Sprint(got) != fmt.Sprint([]fs.Run{{Logical: 0, Offset: 0x1033, Length: 1}, {Logical: 1, Offset: 0x1200, Length: 2}}) {
		t.Errorf("starting inside the pair: %v", got)
	}
}

// freeClusters asks ntfsinfo (ntfs-3g) how many clusters img has free.
func freeClusters(t testing.TB, img string) int64 {
	t.Helper()
	out := testutil.Run(t, "ntfsinfo", "-m", img)
	for _, line := range strings.Split(string(out), "\n") {
		var n int64
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "Free Clusters: %d", &n); err == nil {
			return n
		}
	}
	t.Fatalf("ntfsinfo -m: no free cluster count in\n%s", out)
	return 0
}

// checkFreeCount compares Unallocated (inside the cluster area) with
// ntfsinfo's free cluster count.
func checkFreeCount(t testing.TB, n *FS, img string) {
	t.Helper()
	un, err := n.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	var free int64
	for _, r := range un {
		end := min(r.Off+r.Len, n.bt.clusters*n.bt.clusterSize)
		if end > r.Off {
			free += end - r.Off
		}
	}
	if want := freeClusters(t, img); free/n.bt.clusterSize != want {
		t.Errorf("Unallocated covers %d free clusters, ntfsinfo says %d", free/n.bt.clusterSize, want)
	}
}

func TestFreeCountSmall(t *testing.T) {
	s := smallNTFS(t)
	img := filepath.Join(t.TempDir(), "s.img")
	if err := os.WriteFile(img, s.img, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := open(bytes.NewReader(s.img), int64(len(s.img)))
	if err != nil {
		t.Fatal(err)
	}
	checkFreeCount(t, n, img)
}

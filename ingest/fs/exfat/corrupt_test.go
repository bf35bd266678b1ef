package exfat

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
)

// listing is what a walk of a damaged copy gave.
type listing struct {
	f     *FS
	files map[string]*fs.File
	sums  map[string]string
}

// listBytes opens img (times without an offset in loc) and walks it,
// reading every readable file; it fails the test only on a panic.
func listBytes(t *testing.T, img []byte, loc *time.Location) (listing, error) {
	t.Helper()
	f, err := NewIn(bytes.NewReader(img), int64(len(img)), loc)
	if err != nil {
		return listing{}, err
	}
	l := listing{f: f, files: map[string]*fs.File{}, sums: map[string]string{}}
	err = f.Walk(context.Background(), func(fl *fs.File) error {
		l.files[fl.Path] = fl
		if fl.Type == "file" && fl.Recoverable {
			r, err := f.Open(fl)
			if err != nil {
				l.sums[fl.Path] = "open: " + err.Error()
				return nil
			}
			h := sha256.New()
			if _, err := io.Copy(h, r); err != nil {
				l.sums[fl.Path] = "read: " + err.Error()
				return nil
			}
			l.sums[fl.Path] = fmt.Sprintf("%x", h.Sum(nil))
		}
		return nil
	})
	return l, err
}

func mustList(t *testing.T, img []byte, loc *time.Location) listing {
	t.Helper()
	l, err := listBytes(t, img, loc)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(smallImage(t).img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hasProblem(f *FS, sub string) bool {
	for _, p := range f.Problems() {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// sameExcept fails unless got lists what want does, with the same content,
// paths in except left out.
func sameExcept(t *testing.T, want, got listing, except ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, p := range except {
		skip[p] = true
	}
	for p, w := range want.files {
		if skip[p] {
			continue
		}
		g := got.files[p]
		if g == nil {
			t.Errorf("%s no longer listed", p)
			continue
		}
		if g.Inode != w.Inode || g.Size != w.Size || g.Deleted != w.Deleted || got.sums[p] != want.sums[p] {
			t.Errorf("%s changed: %+v, was %+v", p, g, w)
		}
	}
	if len(got.files) != len(want.files) {
		t.Errorf("%d entries, %d before the damage", len(got.files), len(want.files))
	}
}

// entryOf returns the volume offset of the file entry of path.
func entryOf(t *testing.T, l listing, path string) int64 {
	t.Helper()
	fl := l.files[path]
	if fl == nil {
		t.Fatalf("%s not listed", path)
	}
	return l.f.heapOff + int64(fl.Inode-3)*entrySize
}

// TestBackupBootRegion: a main boot region whose checksum fails, or whose
// boot sector is gone, is replaced by the backup at sector 12; the damage
// is a problem and the listing is unchanged.
func TestBackupBootRegion(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	for name, damage := range map[string]func([]byte){
		"checksum":    func(b []byte) { b[512+100] ^= 0x5a }, // extended boot sector 1: summed, not parsed
		"boot sector": func(b []byte) { clear(b[:512]) },
	} {
		t.Run(name, func(t *testing.T) {
			img := bytes.Clone(base)
			damage(img)
			got := mustList(t, img, nil)
			if !hasProblem(got.f, "backup boot region at 0x1800 used") {
				t.Errorf("backup use not reported: %q", got.f.Problems())
			}
			sameExcept(t, want, got)
			if k := fs.DetectFileSystem(bytes.NewReader(img), int64(len(img))); name == "checksum" && k != "exfat" {
				t.Errorf("detected %s", k)
			}
		})
	}
	t.Run("both", func(t *testing.T) {
		img := bytes.Clone(base)
		img[512+100] ^= 0x5a
		img[12*512+512+100] ^= 0x5a
		got := mustList(t, img, nil)
		if !hasProblem(got.f, "exfat boot checksum at 0x") || !hasProblem(got.f, "no valid backup boot region; main boot sector used") {
			t.Errorf("problems: %q", got.f.Problems())
		}
		sameExcept(t, want, got)
	})
	t.Run("none", func(t *testing.T) {
		img := bytes.Clone(base)
		clear(img[:512])
		clear(img[12*512 : 13*512])
		if _, err := NewIn(bytes.NewReader(img), int64(len(img)), nil); err == nil || !strings.Contains(err.Error(), "0x3") {
			t.Errorf("no boot sector at all: %v", err)
		}
	})
}

// TestEntrySetChecksum: a file entry set whose checksum fails is still
// listed, with the damage in its Err and a problem naming its offset;
// everything else is listed as before.
func TestEntrySetChecksum(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	img := bytes.Clone(base)
	off := entryOf(t, want, "/docs/readme.txt")
	img[off+feCreate] ^= 0x01 // a create-time bit: the set still parses
	got := mustList(t, img, nil)
	msg := fmt.Sprintf("entry set at %#x: set checksum", off)
	if !hasProblem(got.f, msg) {
		t.Errorf("no problem %q: %q", msg, got.f.Problems())
	}
	if g := got.files["/docs/readme.txt"]; g == nil || !strings.Contains(g.Err, msg) || got.sums[g.Path] != want.sums[g.Path] {
		t.Errorf("damaged set: %+v", g)
	}
	sameExcept(t, want, got, "/docs/readme.txt")
}

// TestNoUTCOffset: times whose UTC offset is not valid are local time: of
// the zone OpenIn names, or read as UTC with a problem.
func TestNoUTCOffset(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	img := bytes.Clone(base)
	off := entryOf(t, want, "/t.txt")
	set := img[off : off+3*entrySize]
	if set[feModifiedUTC] != 0x80|32 { // +8 h in 15-minute steps
		t.Fatalf("exfat-fuse with TZ=%s wrote UTC offset %#x", writerTZ, set[feModifiedUTC])
	}
	set[feCreateUTC], set[feModifiedUTC], set[feAccessedUTC] = 0, 0, 0
	binary.LittleEndian.PutUint16(set[feSetChecksum:], entrySum(set, false))

	got := mustList(t, img, nil)
	if g := got.files["/t.txt"]; !g.Mtime.Equal(tMtime.Add(8*time.Hour)) || !g.Atime.Equal(tAtime.Add(8*time.Hour)) {
		t.Errorf("zone unknown: mtime %v atime %v, want the local fields as UTC", g.Mtime, g.Atime)
	}
	if !hasProblem(got.f, noOffsetProblem) {
		t.Errorf("no problem about the zone: %q", got.f.Problems())
	}
	sh, err := time.LoadLocation(writerTZ)
	if err != nil {
		t.Skip(err)
	}
	got = mustList(t, img, sh)
	if g := got.files["/t.txt"]; !g.Mtime.Equal(tMtime) || !g.Atime.Equal(tAtime) || !g.Btime.Equal(want.files["/t.txt"].Btime) {
		t.Errorf("in %s: %+v, want mtime %v atime %v", writerTZ, g, tMtime, tAtime)
	}
	if len(got.f.Problems()) != 0 {
		t.Errorf("problems: %q", got.f.Problems())
	}
}

// TestChainLoop: a FAT entry pointing back into its own chain stops the
// chain with an error naming the entry; the file cannot be opened whole.
func TestChainLoop(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	a := want.files["/frag/a.bin"]
	c := uint32((a.Runs[0].Offset-want.f.heapOff)/want.f.clusterSize) + 2
	last := c + uint32(a.Runs[0].Length/want.f.clusterSize) - 1
	img := bytes.Clone(base)
	binary.LittleEndian.PutUint32(img[want.f.fatOff+int64(last)*4:], c)
	got := mustList(t, img, nil)
	g := got.files["/frag/a.bin"]
	if g == nil || !strings.Contains(g.Err, "loops") || !strings.Contains(g.Err, fmt.Sprintf("%#x", want.f.fatOff+int64(last)*4)) {
		t.Errorf("loop: %+v", g)
	}
	if _, err := got.f.Open(g); err == nil {
		t.Error("a file with a looping chain opened")
	}
	sameExcept(t, want, got, "/frag/a.bin")
}

// TestTruncated: an image cut short still opens; files past the cut fail
// to read with an error, the cut is a problem.
func TestTruncated(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	at := want.files["/big-contiguous.bin"].Runs[0].Offset + 100000
	got := mustList(t, base[:at], nil)
	if !hasProblem(got.f, fmt.Sprintf("truncated at %#x", at)) {
		t.Errorf("problems: %q", got.f.Problems())
	}
	if g := got.files["/big-contiguous.bin"]; g == nil {
		t.Error("big file not listed")
	} else if s := got.sums[g.Path]; !strings.HasPrefix(s, "read: ") && !strings.Contains(g.Err, "past the end") {
		t.Errorf("big file past the cut: %+v %.40s", g, s)
	}
}

// TestBadBitmap: without a readable allocation bitmap the files still
// list, nothing deleted is recovered and Unallocated fails (the carver
// takes the whole volume).
func TestBadBitmap(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	img := bytes.Clone(base)
	off := entryOf(t, want, "/$ALLOC_BITMAP")
	binary.LittleEndian.PutUint32(img[off+seFirstCluster:], 1)
	got := mustList(t, img, nil)
	if !hasProblem(got.f, fmt.Sprintf("allocation bitmap entry at %#x", off)) {
		t.Errorf("problems: %q", got.f.Problems())
	}
	if _, err := got.f.Unallocated(); err == nil {
		t.Error("Unallocated without a bitmap")
	}
	for p, w := range want.files {
		g := got.files[p]
		switch {
		case w.Deleted: // below a deleted directory not even listed: it cannot be read
			if g != nil && g.Recoverable {
				t.Errorf("deleted %s recovered without a bitmap", p)
			}
		case g == nil || got.sums[p] != want.sums[p] && p != "/$ALLOC_BITMAP":
			t.Errorf("%s: %+v", p, g)
		}
	}
}

// seed is the committed 1 MiB image (mkfs.exfat -c 512, files written with
// exfat-fuse: nested and Chinese names, empty, contiguous, interleaved,
// deleted) with its trailing zeros cut; the fuzz target pads inputs back
// to 1 MiB, the smallest exFAT volume.
func seed(t testing.TB) []byte {
	fh, err := os.Open("testdata/seed.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\x00")
}

const fuzzVolume = 1 << 20

func FuzzExfat(f *testing.F) {
	f.Add(seed(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4<<20 {
			return
		}
		if len(data) < fuzzVolume {
			data = append(data, make([]byte, fuzzVolume-len(data))...)
		}
		fsys, err := New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		fsys.Walk(context.Background(), func(file *fs.File) error {
			if r, err := fsys.Open(file); err == nil {
				io.CopyN(io.Discard, r, 8<<20) // a sparse tail may be terabytes of zeros
			}
			return nil
		})
		fsys.Unallocated()
		fsys.Problems()
	})
}

// TestSeed: the committed seed lists as fls lists it (the fuzz target's
// starting point is a real volume).
func TestSeed(t *testing.T) {
	b := seed(t)
	b = append(b, make([]byte, fuzzVolume-len(b))...)
	l := mustList(t, b, nil)
	for _, p := range []string{"/目录/sub/这是一个很长的中文文件名超过十五个字符.txt", "/empty", "/contig.bin", "/fa", "/fb", "/gone.bin"} {
		if l.files[p] == nil {
			t.Errorf("%s not listed", p)
		}
	}
	if g := l.files["/gone.bin"]; g == nil || !g.Deleted || !g.Recoverable {
		t.Errorf("deleted: %+v", g)
	}
	if got := l.sums["/目录/sub/这是一个很长的中文文件名超过十五个字符.txt"]; got != fmt.Sprintf("%x", sha256.Sum256([]byte("hello exfat\n"))) {
		t.Errorf("content %s", got)
	}
	if l.f.Label() != "SEED卷" || len(l.f.Problems()) != 0 {
		t.Errorf("label %q, problems %q", l.f.Label(), l.f.Problems())
	}
}

// TestSlashInName: a name holding "/" (exFAT forbids it) stays one path
// component, escaped as %2F, and is a problem, as is its name hash that no
// longer matches.
func TestSlashInName(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	img := bytes.Clone(base)
	off := entryOf(t, want, "/docs/readme.txt")
	set := img[off : off+3*entrySize]
	binary.LittleEndian.PutUint16(set[2*entrySize+2+2*4:], '/') // "read/e.txt"
	binary.LittleEndian.PutUint16(set[feSetChecksum:], entrySum(set, false))
	got := mustList(t, img, nil)
	if g := got.files["/docs/read%2Fe.txt"]; g == nil || got.sums[g.Path] != want.sums["/docs/readme.txt"] {
		t.Errorf("escaped name: %+v", g)
	}
	if !hasProblem(got.f, fmt.Sprintf("entry set at %#x: name \"read/e.txt\" is not a plain path component", off)) ||
		!hasProblem(got.f, fmt.Sprintf("stream extension entry at %#x: name hash", off+entrySize)) {
		t.Errorf("problems: %q", got.f.Problems())
	}
	sameExcept(t, want, got, "/docs/readme.txt")
}

// TestValidLength: bytes past a stream's valid data length read as zeros
// (a sparse run), unless the file's clusters run past the end of the
// image: then nothing is made up and Open fails.
func TestValidLength(t *testing.T) {
	base := imageBytes(t)
	want := mustList(t, base, nil)
	big := want.files["/big-contiguous.bin"]
	img := bytes.Clone(base)
	off := entryOf(t, want, "/big-contiguous.bin")
	set := img[off : off+int64(img[off+feSecondaryCount]+1)*entrySize] // 18 characters: two name entries
	const valid = 5000
	binary.LittleEndian.PutUint64(set[entrySize+seValidLength:], valid)
	binary.LittleEndian.PutUint16(set[feSetChecksum:], entrySum(set, false))
	orig := base[big.Runs[0].Offset : big.Runs[0].Offset+big.Size]
	wantContent := append(bytes.Clone(orig[:valid]), make([]byte, big.Size-valid)...)

	got := mustList(t, img, nil)
	g := got.files["/big-contiguous.bin"]
	if len(g.Runs) != 2 || !g.Runs[1].Sparse || g.Runs[0].Length != valid || g.Err != "" {
		t.Errorf("runs %+v err %q", g.Runs, g.Err)
	}
	if s := got.sums[g.Path]; s != fmt.Sprintf("%x", sha256.Sum256(wantContent)) {
		t.Errorf("content past the valid length is not zeros: %s", s)
	}

	cut := img[:big.Runs[0].Offset+big.Size/2]
	got = mustList(t, cut, nil)
	g = got.files["/big-contiguous.bin"]
	if !strings.Contains(g.Err, "past the end of the image") || len(g.Runs) != 1 {
		t.Errorf("cut: runs %+v err %q", g.Runs, g.Err)
	}
	if _, err := got.f.Open(g); err == nil {
		t.Error("a file past the end of the image opened")
	}
}

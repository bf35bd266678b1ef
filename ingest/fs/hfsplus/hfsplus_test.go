package hfsplus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// fixture is the public dfvfs HFS+ image (see /work/shared/fixtures/SOURCE.md).
var fixture = filepath.Join("..", "..", "..", "..", "shared", "fixtures", "hfsplus.raw")

func needFixture(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(fixture); err != nil {
		t.Skip("public HFS+ image absent: ", err)
	}
	return fixture
}

// openAt opens the HFS+ volume at byte off of the image p.
func openAt(t testing.TB, p string, off int64) *FS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	h, err := OpenFS(io.NewSectionReader(f, off, st.Size()-off), st.Size()-off)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tskName is a path as fls prints it: control characters become '^'.
func tskName(p string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 {
			return '^'
		}
		return r
	}, p)
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (\d+):\t(.*)$`)

// tskTree is what `fls -r -p` lists of the HFS+ volume at sector sec of
// img, with `icat`'s SHA-256 of every file and symbolic link, and the
// inode of every path.
func tskTree(t *testing.T, img string, sec int64) (fstest.Tree, map[string]uint64) {
	t.Helper()
	o := fmt.Sprint(sec)
	out := testutil.Run(t, "fls", "-r", "-p", "-o", o, img)
	want := fstest.Tree{}
	inodes := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("fls line %q", sc.Text())
		}
		p := "/" + m[4]
		ino, _ := strconv.ParseUint(m[3], 10, 64)
		inodes[p] = ino
		want[p] = fstest.PathOnly
		if m[2] == "r" || m[2] == "l" {
			want[p] = fstest.SHA256(testutil.Run(t, "icat", "-o", o, img, m[3]))
		}
	}
	return want, inodes
}

// ourTree is the walk of h in fls's terms: paths with '^' for control
// characters, the SHA-256 of every file and symbolic link. Resource forks
// (which fls does not list) are returned apart, by inode.
func ourTree(t *testing.T, h *FS) (fstest.Tree, map[string]uint64, map[uint64]string, []*fs.File) {
	t.Helper()
	got := fstest.Tree{}
	inodes := map[string]uint64{}
	rsrc := map[uint64]string{}
	var files []*fs.File
	err := h.Walk(context.Background(), func(f *fs.File) error {
		files = append(files, f)
		sum := fstest.PathOnly
		if f.Type == "file" || f.Type == "symlink" {
			r, err := h.Open(f)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			sum = fstest.SHA256(b)
		}
		if strings.HasSuffix(f.Path, RsrcSuffix) {
			rsrc[f.Inode] = sum
			return nil
		}
		if f.Err != "" {
			t.Errorf("%s: %s", f.Path, f.Err)
		}
		got[tskName(f.Path)] = sum
		inodes[tskName(f.Path)] = f.Inode
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, inodes, rsrc, files
}

func compareTSK(t *testing.T, img string, sec int64, h *FS) []*fs.File {
	t.Helper()
	want, wantIno := tskTree(t, img, sec)
	if len(want) < 5 {
		t.Fatalf("fls listed %d entries", len(want))
	}
	got, gotIno, rsrc, files := ourTree(t, h)
	for p, sum := range got {
		if want[p] == fstest.PathOnly && sum != fstest.PathOnly {
			got[p] = fstest.PathOnly // fls lists it as other than r/l
		}
	}
	fstest.Compare(t, "fls/icat", want, got)
	for p, ino := range wantIno {
		if gotIno[p] != ino {
			t.Errorf("%s: inode %d, fls says %d", p, gotIno[p], ino)
		}
	}
	for ino, sum := range rsrc {
		w := fstest.SHA256(testutil.Run(t, "icat", "-o", fmt.Sprint(sec), img, fmt.Sprintf("%d-4353", ino)))
		if sum != w {
			t.Errorf("resource fork of %d: sha256 %s, icat %s", ino, sum, w)
		}
	}
	return files
}

var istatTime = regexp.MustCompile(`(?m)^(Created|Content Modified|Attributes Modified|Accessed):\s+(\S+ \S+) \(UTC\)$`)

// checkTimes compares f's times with istat's.
func checkTimes(t *testing.T, img string, f *fs.File) {
	t.Helper()
	out := string(testutil.Run(t, "istat", img, fmt.Sprint(f.Inode)))
	got := map[string]time.Time{"Created": f.Btime, "Content Modified": f.Mtime, "Attributes Modified": f.Ctime, "Accessed": f.Atime}
	n := 0
	for _, m := range istatTime.FindAllStringSubmatch(out, -1) {
		n++
		if m[2] == "0000-00-00 00:00:00" {
			if !got[m[1]].IsZero() {
				t.Errorf("%s: %s %v, istat unset", f.Path, m[1], got[m[1]])
			}
			continue
		}
		w, err := time.Parse("2006-01-02 15:04:05", m[2])
		if err != nil {
			t.Fatal(err)
		}
		if !got[m[1]].Equal(w) {
			t.Errorf("%s: %s %v, istat %v", f.Path, m[1], got[m[1]], w)
		}
	}
	if n != 4 {
		t.Errorf("%s: istat gave %d times", f.Path, n)
	}
}

// TestFixtureAgainstTSK: every path and inode fls lists of the public
// image, every file's and link's content as icat gives it, the resource
// fork as icat INODE-4353 gives it, the times as istat prints them.
func TestFixtureAgainstTSK(t *testing.T) {
	img := needFixture(t)
	testutil.Unchanged(t, img)
	h := openAt(t, img, 0)
	if h.Type() != "hfsplus" {
		t.Errorf("type %q", h.Type())
	}
	files := compareTSK(t, img, 0, h)
	n := 0
	for _, f := range files {
		if f.Inode >= 16 && !strings.HasSuffix(f.Path, RsrcSuffix) {
			checkTimes(t, img, f)
			n++
		}
		if f.Path == "/a_link" && f.Type != "symlink" {
			t.Errorf("/a_link is %s", f.Type)
		}
		if f.Path == "/a_directory/a_resourcefork"+RsrcSuffix && f.Size != 17 {
			t.Errorf("resource fork of %d bytes, istat says 17", f.Size)
		}
	}
	if n < 10 {
		t.Errorf("times checked on %d files", n)
	}
	if p := h.Problems(); len(p) != 1 || !strings.Contains(p[0], "no deleted entries") {
		t.Errorf("problems %q", p)
	}
}

// TestFixtureAgainstFshfsinfo: libfshfs's hierarchy is the same paths.
func TestFixtureAgainstFshfsinfo(t *testing.T) {
	img := needFixture(t)
	out := testutil.Run(t, "fshfsinfo", "-H", img)
	want := fstest.Tree{}
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "/") || l == "/" {
			continue
		}
		l = strings.NewReplacer(`\x0d`, "\r", "␀", "\x00").Replace(l)
		want[l] = fstest.PathOnly
	}
	got := fstest.Tree{}
	files, _ := fstest.Walk(t, openAt(t, img, 0))
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "/$") && !strings.HasSuffix(f.Path, RsrcSuffix) {
			got[f.Path] = fstest.PathOnly
		}
	}
	fstest.Compare(t, "fshfsinfo", want, got)
}

// TestFixtureUnallocated: the free space is the blocks `blkls -l` lists as
// free ('f'), and overlaps no file.
func TestFixtureUnallocated(t *testing.T) {
	img := needFixture(t)
	out := testutil.Run(t, "blkls", "-l", img)
	var want []fs.Range
	for _, l := range strings.Split(string(out), "\n") {
		a, st, ok := strings.Cut(l, "|")
		blk, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil || st != "f" {
			continue
		}
		if n := len(want); n > 0 && want[n-1].Off+want[n-1].Len == blk*4096 {
			want[n-1].Len += 4096
		} else {
			want = append(want, fs.Range{Off: blk * 4096, Len: 4096})
		}
	}
	h := openAt(t, img, 0)
	un, err := h.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(un) != fmt.Sprint(want) {
		t.Errorf("unallocated %v, blkls %v", un, want)
	}
	files, _ := fstest.Walk(t, h)
	fstest.CheckUnallocated(t, un, files, func(*fs.File, fs.Run) bool { return false })
}

// TestConcurrentOpen: Open shares nothing with Walk (run with -race).
func TestConcurrentOpen(t *testing.T) {
	img := needFixture(t)
	h := openAt(t, img, 0)
	_, want := fstest.Walk(t, h)
	got := fstest.ConcurrentSums(t, h)
	fstest.Compare(t, "concurrent", want, got)
}

// TestWrapper: the fixture embedded in an HFS wrapper (a "BD" master
// directory block whose embedded extent names it) reads the same, with
// runs 64 KiB further; fls reads the wrapper too.
func TestWrapper(t *testing.T) {
	src, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	const at = 65536
	b := make([]byte, at+len(src))
	copy(b[at:], src)
	mdb := b[1024:]
	binary.BigEndian.PutUint16(mdb, sigHFS)
	binary.BigEndian.PutUint32(mdb[mdbAlBlkSiz:], 4096)
	binary.BigEndian.PutUint16(mdb[mdbAlBlSt:], 0)
	binary.BigEndian.PutUint16(mdb[mdbEmbedSig:], sigPlus)
	binary.BigEndian.PutUint16(mdb[mdbEmbedExtent:], at/4096)
	binary.BigEndian.PutUint16(mdb[mdbEmbedExtent+2:], uint16(len(src)/4096))
	p := filepath.Join(t.TempDir(), "wrapped.raw")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := fs.DetectFileSystem(bytes.NewReader(b), int64(len(b))); got != "hfsplus" {
		t.Errorf("wrapper detected as %q", got)
	}
	h := openAt(t, p, 0)
	if h.base != at {
		t.Fatalf("embedded volume at %#x", h.base)
	}
	compareTSK(t, p, 0, h) // fsstat: "embedded in an HFS wrapper at offset 65536"
	plain := openAt(t, needFixture(t), 0)
	_, want := fstest.Walk(t, plain)
	files, got := fstest.Walk(t, h)
	fstest.Compare(t, "wrapped", want, got)
	for _, f := range files {
		for _, r := range f.Runs {
			if r.Offset < at {
				t.Errorf("%s: run %+v before the embedded volume", f.Path, r)
			}
		}
	}
	un, err := h.Unallocated()
	if err != nil || len(un) == 0 || un[0].Off < at {
		t.Errorf("unallocated %v %v", un, err)
	}
}

// xorrisoImage makes an ISO 9660 / HFS+ hybrid of dir with xorriso and
// returns it with the byte offset of its HFS+ volume, found as macOS finds
// it: the Apple partition map (block size in the driver descriptor at 0,
// partition entries "PM" from block 1) entry of type Apple_HFS.
func xorrisoImage(t *testing.T, dir string) (string, int64) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "hybrid.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-hfsplus", "-o", img, dir)
	return img, apmHFS(t, img)
}

// apmHFS is the byte offset of the Apple_HFS partition of image img.
func apmHFS(t testing.TB, img string) int64 {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:2]) != "ER" {
		t.Fatalf("no Apple driver descriptor: %q", b[:2])
	}
	bs := int64(binary.BigEndian.Uint16(b[2:]))
	for i := int64(1); (i+1)*bs <= int64(len(b)) && i < 64; i++ {
		e := b[i*bs:]
		if string(e[:2]) != "PM" {
			break
		}
		if string(bytes.TrimRight(e[48:80], "\x00")) == "Apple_HFS" {
			return int64(binary.BigEndian.Uint32(e[8:])) * bs
		}
	}
	t.Fatal("no Apple_HFS partition in the Apple partition map")
	return 0
}

// writeTree creates a tree with Chinese and decomposed names, a symbolic
// link, nested folders and files of many sizes; it returns the SHA-256 of
// every regular file by path.
func writeTree(t *testing.T, n int) (string, fstest.Tree) {
	t.Helper()
	dir := t.TempDir()
	sums := fstest.Tree{}
	rng := rand.New(rand.NewPCG(1, 2))
	put := func(p string, size int) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		sums["/"+p] = fstest.SHA256(b)
	}
	put("中文目录/文件.txt", 100)
	put("café.txt", 5)
	put("e\u0301te\u0301.txt", 7) // already decomposed
	put("empty", 0)
	put("colon:in name.txt", 9) // a POSIX ':' is a '/' in the catalog
	put("deep/a/b/c/d/leaf.bin", 70000)
	for i := range n {
		put(fmt.Sprintf("many/f%04d.dat", i), rng.IntN(9000))
	}
	if err := os.Symlink("中文目录/文件.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir, sums
}

// TestXorrisoAgainstTSK: an HFS+ volume xorriso writes lists as fls lists
// it, every file's content is icat's and the source file's.
func TestXorrisoAgainstTSK(t *testing.T) {
	testutil.NeedTool(t, "xorriso")
	dir, sums := writeTree(t, 60)
	img, off := xorrisoImage(t, dir)
	testutil.Unchanged(t, img)
	h := openAt(t, img, off)
	compareTSK(t, img, off/512, h)
	_, got := fstest.Walk(t, h)
	// xorriso stores names decomposed (NFD), as HFS+ requires; the reader
	// keeps them as stored, as fls does.
	sums["/cafe\u0301.txt"] = sums["/café.txt"]
	delete(sums, "/café.txt")
	for p, w := range sums {
		if got[p] != w {
			t.Errorf("%s: sha256 %s, source %s", p, got[p], w)
		}
	}
	un, err := h.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := fstest.Walk(t, h)
	for _, u := range un {
		for _, f := range files {
			for _, r := range f.Runs {
				if r.Offset < u.Off+u.Len && u.Off < r.Offset+r.Length {
					t.Errorf("%s run %+v overlaps unallocated %+v", f.Path, r, u)
				}
			}
		}
	}
	ra := randomReads(t, h, files)
	if ra == 0 {
		t.Error("no random reads")
	}
}

// randomReads checks ReadAt at odd offsets and lengths against the whole
// content, on every file above 4 KiB.
func randomReads(t *testing.T, h *FS, files []*fs.File) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	n := 0
	for _, f := range files {
		if f.Type != "file" || f.Size < 4096 {
			continue
		}
		r, _ := h.Open(f)
		all, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		r, _ = h.Open(f)
		ra, ok := r.(io.ReaderAt)
		if !ok {
			t.Fatalf("%s: Open gives no io.ReaderAt", f.Path)
		}
		for range 20 {
			off := rng.Int64N(f.Size)
			l := 1 + rng.IntN(3*4096)
			b := make([]byte, l)
			m, err := ra.ReadAt(b, off)
			if want := min(int64(l), f.Size-off); int64(m) != want || !bytes.Equal(b[:m], all[off:off+int64(m)]) || (m < l && err == nil) {
				t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", f.Path, l, off, m, err)
			}
			n++
		}
	}
	return n
}

// TestNotHFSPlus: other data is ErrNotHFSPlus, a short volume an error.
func TestNotHFSPlus(t *testing.T) {
	for _, b := range [][]byte{make([]byte, 4096), make([]byte, 100)} {
		if _, err := Open(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%d zero bytes opened", len(b))
		}
	}
}

func hasProblem(h *FS, subs ...string) bool {
	for _, p := range h.Problems() {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(p, s)
		}
		if ok {
			return true
		}
	}
	return false
}

var _ = exec.Command

package apfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

// fixture is the public dfvfs APFS image (see /work/shared/fixtures/SOURCE.md):
// one volume "apfs_test" whose superblock is block 107.
var fixture = filepath.Join("..", "..", "..", "..", "shared", "fixtures", "apfs.raw")

const fixtureVolume = "/apfs_test"

func needFixture(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(fixture); err != nil {
		t.Skip("public APFS image absent: ", err)
	}
	return fixture
}

func openFile(t testing.TB, p string) *FS {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	a, err := OpenFS(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (\d+):\t(.*)$`)

// TestFixtureAgainstTSK: every path and inode `fls -r -p -P apfs -B 107`
// lists, with every regular file's SHA-256 as `icat` gives it and the four
// times `istat` prints, and nothing else but the volume's own directory.
func TestFixtureAgainstTSK(t *testing.T) {
	img := needFixture(t)
	testutil.Unchanged(t, img)
	fls := testutil.NeedTool(t, "fls")
	out, err := exec.Command(fls, "-r", "-p", "-P", "apfs", "-B", "107", img).Output()
	if err != nil {
		t.Fatalf("fls: %v", err)
	}
	want := fstest.Tree{fixtureVolume: fstest.PathOnly}
	inodes := map[string]uint64{fixtureVolume: rootDirID}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("fls line %q", sc.Text())
		}
		p := fixtureVolume + "/" + m[4]
		ino, _ := strconv.ParseUint(m[3], 10, 64)
		inodes[p] = ino
		want[p] = fstest.PathOnly
		if m[2] == "r" {
			// icat fails on a file with no data fork (a_resourcefork):
			// its content is empty.
			b, _ := exec.Command("icat", "-P", "apfs", "-B", "107", img, m[3]).Output()
			want[p] = fstest.SHA256(b)
		}
	}
	if len(want) < 10 {
		t.Fatalf("fls listed %d entries", len(want))
	}
	a := openFile(t, img)
	files, sums := fstest.Walk(t, a)
	got := fstest.Tree{}
	for _, f := range files {
		got[f.Path] = sums[f.Path]
		if want[f.Path] == fstest.PathOnly {
			got[f.Path] = fstest.PathOnly
		}
		if ino, ok := inodes[f.Path]; ok && ino != f.Inode {
			t.Errorf("%s: inode %d, fls says %d", f.Path, f.Inode, ino)
		}
		if f.Err != "" {
			t.Errorf("%s: %s", f.Path, f.Err)
		}
		checkTimes(t, img, f)
	}
	fstest.Compare(t, "fls/icat", want, got)
	if p := a.Problems(); len(p) != 0 {
		t.Errorf("problems %q", p)
	}
	if a.XID() != 4 {
		t.Errorf("checkpoint xid %d, want 4 (pstat: NX xid 4)", a.XID())
	}
}

var istatTime = regexp.MustCompile(`(?m)^(Created|Content Modified|Attributes Modified|Accessed):\s+(\S+ \S+) \(UTC\)$`)

// checkTimes compares f's times with `istat`'s, to the nanosecond.
func checkTimes(t *testing.T, img string, f *fs.File) {
	t.Helper()
	out := string(testutil.Run(t, "istat", "-P", "apfs", "-B", "107", img, fmt.Sprint(f.Inode)))
	got := map[string]time.Time{"Created": f.Btime, "Content Modified": f.Mtime, "Attributes Modified": f.Ctime, "Accessed": f.Atime}
	n := 0
	for _, m := range istatTime.FindAllStringSubmatch(out, -1) {
		w, err := time.Parse("2006-01-02 15:04:05.999999999", m[2])
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !got[m[1]].Equal(w) {
			t.Errorf("%s: %s %v, istat %v", f.Path, m[1], got[m[1]], w)
		}
	}
	if n != 4 {
		t.Errorf("%s: istat gave %d times", f.Path, n)
	}
}

// TestFixtureAgainstFsapfsinfo: libfsapfs's hierarchy (fsapfsinfo -H) is
// the same list of paths, the volume's identifier standing for its name.
func TestFixtureAgainstFsapfsinfo(t *testing.T) {
	img := needFixture(t)
	out := testutil.Run(t, "fsapfsinfo", "-H", img)
	want := fstest.Tree{}
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "/{") {
			continue
		}
		_, rest, _ := strings.Cut(l[1:], "}")
		want[fixtureVolume+strings.TrimSuffix(rest, "/")] = fstest.PathOnly
	}
	got := fstest.Tree{}
	files, _ := fstest.Walk(t, openFile(t, img))
	for _, f := range files {
		got[f.Path] = fstest.PathOnly
	}
	fstest.Compare(t, "fsapfsinfo", want, got)
}

// TestFixtureUnallocated: the free space is pstat's "Unallocated Container
// Blocks" and overlaps no file.
func TestFixtureUnallocated(t *testing.T) {
	img := needFixture(t)
	out := string(testutil.Run(t, "pstat", img))
	m := regexp.MustCompile(`0x([0-9a-f]+)-0x([0-9a-f]+)`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("pstat gave no ranges:\n%s", out)
	}
	var want []fs.Range
	for _, r := range m {
		a, _ := strconv.ParseInt(r[1], 16, 64)
		b, _ := strconv.ParseInt(r[2], 16, 64)
		want = append(want, fs.Range{Off: a * 4096, Len: (b - a + 1) * 4096})
	}
	a := openFile(t, img)
	un, err := a.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(un) != fmt.Sprint(want) {
		t.Errorf("unallocated %v, pstat %v", un, want)
	}
	files, _ := fstest.Walk(t, a)
	fstest.CheckUnallocated(t, un, files, func(*fs.File, fs.Run) bool { return false })
}

// TestConcurrentOpen: Open shares nothing with Walk (run with -race).
func TestConcurrentOpen(t *testing.T) {
	img := needFixture(t)
	a := openFile(t, img)
	_, want := fstest.Walk(t, a)
	got := fstest.ConcurrentSums(t, a)
	fstest.Compare(t, "concurrent", want, got)
}

// copyFixture writes the fixture with edit applied into t.TempDir().
func copyFixture(t *testing.T, edit func(b []byte)) string {
	t.Helper()
	b, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	p := filepath.Join(t.TempDir(), "apfs.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadNewestCheckpoint: a damaged newest container superblock (block 8,
// xid 4) is named with its offset and the previous checkpoint (xid 3) used.
func TestBadNewestCheckpoint(t *testing.T) {
	p := copyFixture(t, func(b []byte) { b[8*4096+1000] ^= 0xff })
	a := openFile(t, p)
	if a.XID() != 3 {
		t.Errorf("xid %d, want 3", a.XID())
	}
	if !hasProblem(a, "0x8000", "checksum") {
		t.Errorf("problems %q", a.Problems())
	}
	files, _ := fstest.Walk(t, a)
	if len(files) == 0 {
		t.Error("older checkpoint listed nothing")
	}
}

// TestBadTreeNode: a flipped byte in the file-system tree's root node
// (block 101) is a checksum problem naming the node's offset; the walk
// still lists the volume directory and nothing panics.
func TestBadTreeNode(t *testing.T) {
	p := copyFixture(t, func(b []byte) { b[101*4096+1000] ^= 0x55 })
	a := openFile(t, p)
	files, _ := fstest.Walk(t, a)
	if len(files) != 1 || files[0].Path != fixtureVolume {
		t.Errorf("listed %d files", len(files))
	}
	if !hasProblem(a, "0x65000", "checksum") {
		t.Errorf("problems %q", a.Problems())
	}
}

// TestBadNodeNoChecksum: a node made inconsistent but with a recomputed
// checksum (key count past the table) is named too.
func TestBadNodeNoChecksum(t *testing.T) {
	p := copyFixture(t, func(b []byte) {
		n := b[101*4096 : 102*4096]
		n[btnNKeys] = 0xff
		n[btnNKeys+1] = 0x7f
		resum(n)
	})
	a := openFile(t, p)
	fstest.Walk(t, a)
	if !hasProblem(a, "0x65000", "keys") {
		t.Errorf("problems %q", a.Problems())
	}
}

// TestEncryptedVolume: a volume without APFS_FS_UNENCRYPTED is named in
// Problems and not read.
func TestEncryptedVolume(t *testing.T) {
	p := copyFixture(t, func(b []byte) {
		sb := b[107*4096 : 108*4096]
		sb[apsbFSFlags] &^= fsUnencrypted
		resum(sb)
	})
	a := openFile(t, p)
	files, _ := fstest.Walk(t, a)
	if len(files) != 0 {
		t.Errorf("listed %d files of an encrypted volume", len(files))
	}
	if !hasProblem(a, "apfs: volume apfs_test is encrypted; not read") {
		t.Errorf("problems %q", a.Problems())
	}
}

// TestTwoVolumesSameName: the newest container superblock made to list the
// volume twice walks it under "/apfs_test" and "/apfs_test-1".
func TestTwoVolumesSameName(t *testing.T) {
	p := copyFixture(t, func(b []byte) {
		nx := b[8*4096 : 9*4096]
		copy(nx[nxFSOID+8:nxFSOID+16], nx[nxFSOID:nxFSOID+8])
		nx[nxMaxFSOff] = 2 // the container allows one volume
		resum(nx)
	})
	a := openFile(t, p)
	files, sums := fstest.Walk(t, a)
	if len(files) != 22 {
		t.Errorf("listed %d files, want 2 x 11", len(files))
	}
	if s := sums["/apfs_test-1/a_directory/a_file"]; s == "" || s != sums["/apfs_test/a_directory/a_file"] {
		t.Errorf("second volume's a_file %q", s)
	}
}

// TestOpenBeforeWalk: a compressed-looking File (size, no runs) this FS has
// not walked is an error, never zeros.
func TestOpenBeforeWalk(t *testing.T) {
	a := openFile(t, needFixture(t))
	if _, err := a.Open(&fs.File{Path: "/apfs_test/x", Type: "file", Size: 10, Inode: 99, Recoverable: true}); err == nil {
		t.Error("no error")
	}
}

func resum(b []byte) {
	c := fletcher64(b[8:])
	for i := range 8 {
		b[i] = byte(c >> (8 * i))
	}
}

func hasProblem(a *FS, subs ...string) bool {
	for _, p := range a.Problems() {
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

// TestEveryBlockDamaged flips a byte in each metadata block in turn, with
// and without a fixed-up checksum: nothing panics, every walk ends.
func TestEveryBlockDamaged(t *testing.T) {
	orig, err := os.ReadFile(needFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	for blk := 0; blk < 110; blk++ {
		for _, pos := range []int{40, 60, 120, 300, 4000} {
			for _, fix := range []bool{false, true} {
				b := bytes.Clone(orig)
				b[blk*4096+pos] ^= 0xa5
				if fix {
					resum(b[blk*4096 : (blk+1)*4096])
				}
				exercise(b)
			}
		}
	}
}

// exercise opens, walks, reads and asks the free space of an image.
func exercise(b []byte) {
	a, err := OpenFS(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	a.Walk(context.Background(), func(f *fs.File) error {
		// A decmpfs header may claim 64 GiB made of one repeated chunk:
		// valid, but not for a fuzz run to read through.
		if r, err := a.Open(f); err == nil {
			io.CopyN(io.Discard, r, 1<<22)
		}
		return nil
	})
	a.Unallocated()
	a.Snapshots()
}

func TestNotAPFS(t *testing.T) {
	b := make([]byte, 1<<20)
	if _, err := Open(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "0x20") {
		t.Errorf("zeros: %v", err)
	}
}

// FuzzOpen feeds damaged containers to Open, Walk, Open of every file and
// Unallocated. Each input patches one metadata block of the public image
// (block blk of the first 110, bytes at off) and, when fix is set,
// recomputes that block's checksum, so that damage gets past the checksum
// check into the B-tree, object-map, inode and space-manager parsers.
func FuzzOpen(f *testing.F) {
	orig, err := os.ReadFile(fixture)
	if err != nil {
		f.Skip("public APFS image absent")
	}
	orig = orig[:110*4096]
	f.Add(uint8(0), uint16(0), []byte{}, false)
	f.Add(uint8(8), uint16(104), []byte{0xff, 0xff}, true)    // checkpoint area size
	f.Add(uint8(101), uint16(36), []byte{0x40}, true)         // fs tree key count
	f.Add(uint8(101), uint16(56), []byte{0, 1, 2, 3}, true)   // fs tree table of contents
	f.Add(uint8(109), uint16(4000), []byte{9, 9, 9, 9}, true) // volume omap values
	f.Add(uint8(19), uint16(80), []byte{0x10}, true)          // space manager addresses
	f.Add(uint8(107), uint16(136), []byte{0x01}, true)        // volume root tree oid
	f.Fuzz(func(t *testing.T, blk uint8, off uint16, patch []byte, fix bool) {
		b := bytes.Clone(orig)
		n := int(blk) % 110
		blockB := b[n*4096 : (n+1)*4096]
		copy(blockB[int(off)%4096:], patch)
		if fix {
			resum(blockB)
		}
		exercise(b)
	})
}

// BenchmarkRead opens the image, walks it and reads every file.
func BenchmarkRead(b *testing.B) {
	img, err := os.ReadFile(fixture)
	if err != nil {
		b.Skip("public APFS image absent")
	}
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		exercise(img)
	}
}

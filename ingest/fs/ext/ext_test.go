package ext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// tree is the ground truth a test generator wrote: path ("/a/b") → SHA-256
// of the content, for regular files.
type tree = fstest.Tree

var sum = fstest.SHA256

// writeTree writes a seeded directory tree under dir: nested directories,
// empty, tiny (inline-sized) and multi-block files, names with spaces and
// non-ASCII letters, a symlink, and a directory of "fill" files the
// fragmentation step deletes every other one of.
func writeTree(t testing.TB, dir string, seed uint64, nfill int, fillSize int) tree {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	truth := tree{}
	put := func(rel string, b []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		truth["/"+rel] = sum(b)
	}
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	put("empty.txt", nil)
	put("tiny.txt", []byte("hello evidx\n"))
	put("docs/readme 1.txt", rnd(59))
	put("docs/数据/names.csv", []byte(strings.Repeat("张三,13800138000\n", 300)))
	for i := range 6 {
		put(fmt.Sprintf("d%d/sub/f%02d.bin", i%3, i), rnd(1+rng.IntN(40000)))
	}
	for i := range 4 {
		put(fmt.Sprintf("del/victim%d.dat", i), rnd(3000+rng.IntN(9000)))
	}
	put("gonedir/inner.bin", rnd(7000))
	// A directory of several blocks: e2fsck -D turns it into an htree.
	for i := range 150 {
		put(fmt.Sprintf("many/an-entry-with-a-longer-name-%03d.txt", i), []byte(fmt.Sprint(i)))
	}
	for i := range nfill {
		put(fmt.Sprintf("fill/f%03d", i), rnd(fillSize))
	}
	if err := os.Symlink("docs/readme 1.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("long/", 20)+"target", filepath.Join(dir, "longlink")); err != nil {
		t.Fatal(err)
	}
	return truth
}

// debugfs runs debugfs -w with the given commands on img.
func debugfs(t testing.TB, img string, cmds ...string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, "debugfs", "-w", "-f", f, img)
	if bytes.Contains(out, []byte("rm: ")) || bytes.Contains(out, []byte("write: ")) {
		t.Fatalf("debugfs: %s", out)
	}
}

// image describes one test image: the mkfs variant and block size.
type image struct {
	mkfs   string
	bs     int
	sizeKB int
	extra  []string
	big    int // bytes of the fragmented file written after deletions
	// reindex runs e2fsck -fyD at the end, which rebuilds every directory
	// of more than one block as an htree (hashed b-tree) index.
	reindex bool
}

// buildImage makes the image and returns its path and the truth: allocated
// files (with the big fragmented file) and the deleted victims.
func buildImage(t testing.TB, im image, seed uint64) (img string, live, deleted tree) {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	live = writeTree(t, src, seed, 40, 3*im.bs)
	// Past times: mkfs -d copies the seconds into i_mtime/i_atime; the
	// *_extra fields (nanoseconds << 2 | epoch bits) are set with debugfs
	// below.
	if err := os.Chtimes(filepath.Join(src, "tiny.txt"), tinyAtime, tinyMtime); err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(tmp, "fs.img")
	args := append([]string{"-q", "-F", "-b", fmt.Sprint(im.bs), "-d", src}, im.extra...)
	args = append(args, img, fmt.Sprintf("%dk", im.sizeKB))
	testutil.Run(t, im.mkfs, args...)

	// Fragment: delete every other fill file, then write a big file that
	// must reuse the holes.
	var cmds []string
	for i := 0; i < 40; i += 2 {
		p := fmt.Sprintf("/fill/f%03d", i)
		cmds = append(cmds, "rm "+p)
		delete(live, p)
	}
	big := make([]byte, im.big)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	bigPath := filepath.Join(tmp, "big.bin")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, "write "+bigPath+" big.bin")
	live["/big.bin"] = sum(big)
	debugfs(t, img, cmds...)

	// Delete the victims last: their blocks stay free, so their content is
	// recoverable.
	deleted = tree{}
	cmds = nil
	for i := range 4 {
		p := fmt.Sprintf("/del/victim%d.dat", i)
		cmds = append(cmds, "rm "+p)
		deleted[p] = live[p]
		delete(live, p)
	}
	// A deleted directory holding a deleted file: the walk descends into
	// the directory's freed blocks and finds the name in their slack.
	cmds = append(cmds, "rm /gonedir/inner.bin", "rmdir /gonedir")
	deleted["/gonedir/inner.bin"] = live["/gonedir/inner.bin"]
	delete(live, "/gonedir/inner.bin")
	debugfs(t, img, cmds...)
	debugfs(t, img,
		fmt.Sprintf("set_inode_field /tiny.txt mtime_extra %#x", tinyMtime.Nanosecond()<<2),
		fmt.Sprintf("set_inode_field /tiny.txt atime_extra %#x", tinyAtime.Nanosecond()<<2|1), // epoch bit: +2^32 s
		fmt.Sprintf("set_inode_field /tiny.txt crtime %#x", tinyCrtime.Unix()),
		fmt.Sprintf("set_inode_field /tiny.txt crtime_extra %#x", tinyCrtime.Nanosecond()<<2))
	if im.reindex {
		// e2fsck exits 1 when it changed the file system, as -D does.
		out, err := exec.Command(testutil.NeedTool(t, "e2fsck"), "-fyD", img).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	return img, live, deleted
}

// walkAll opens img and returns every File Walk reported, with the SHA-256
// of each readable regular file.
func walkAll(t testing.TB, img string) (*FS, []*fs.File, map[string]string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	e, err := open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	files, sums := fstest.Walk(t, e)
	return e, files, sums
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (\* )?(\d+)(?:\(realloc\))?:\t(.*)$`)

// tskDeleted lists the paths fls -r -p marks deleted ("*"), outside
// $OrphanFiles.
func tskDeleted(t testing.TB, img string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(testutil.Run(t, "fls", "-r", "-p", img)))
	for sc.Scan() {
		if m := flsLine.FindStringSubmatch(sc.Text()); m != nil && m[3] != "" && !strings.HasPrefix(m[5], "$OrphanFiles") {
			out = append(out, "/"+m[5])
		}
	}
	return out
}

// pathOnly marks a tree entry whose content is not compared.
const pathOnly = fstest.PathOnly

// tskAllocated lists allocated regular files with fls -r -p and hashes them
// with icat (those under /fill and /many: path only).
func tskAllocated(t testing.TB, img string) tree {
	t.Helper()
	out := testutil.Run(t, "fls", "-r", "-p", img)
	got := tree{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil || m[3] != "" || m[1] != "r" || strings.HasPrefix(m[5], "$OrphanFiles") {
			continue
		}
		if strings.HasPrefix(m[5], "fill/") || strings.HasPrefix(m[5], "many/") {
			// Many uniform files the generator's truth covers: TSK checks
			// their paths only, to keep icat runs (one process each) few.
			got["/"+m[5]] = pathOnly
			continue
		}
		data, err := exec.Command(testutil.NeedTool(t, "icat"), img, m[4]).Output()
		if err != nil {
			t.Fatalf("icat %s: %v", m[4], err)
		}
		got["/"+m[5]] = sum(data)
	}
	return got
}

// tinyMtime and tinyAtime are set on tiny.txt before mkfs: whole seconds
// survive in every inode, the nanoseconds only in 256-byte ones.
var (
	tinyMtime  = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	tinyAtime  = time.Date(2022, 1, 2, 3, 4, 5, 987654321, time.UTC)
	tinyCrtime = time.Unix(0x12345678, 5).UTC()
	// tinyAtimeRead is tinyAtime with the epoch bit set: 2^32 s later.
	tinyAtimeRead = tinyAtime.Add(1 << 32 * time.Second)
)

var images = []image{
	{mkfs: "mkfs.ext2", bs: 1024, sizeKB: 8192, big: 1 << 20},
	{mkfs: "mkfs.ext2", bs: 4096, sizeKB: 16384, big: 5 << 20, extra: []string{"-I", "128"}}, // 128-byte inodes: seconds only; double indirect
	{mkfs: "mkfs.ext3", bs: 1024, sizeKB: 8192, big: 1 << 20},
	{mkfs: "mkfs.ext3", bs: 4096, sizeKB: 16384, big: 5 << 20},
	{mkfs: "mkfs.ext4", bs: 1024, sizeKB: 8192, big: 1 << 20},
	{mkfs: "mkfs.ext4", bs: 4096, sizeKB: 16384, big: 3 << 20},
	{mkfs: "mkfs.ext4", bs: 4096, sizeKB: 16384, big: 2 << 20, extra: []string{"-O", "inline_data,^has_journal"}},
	{mkfs: "mkfs.ext4", bs: 1024, sizeKB: 8192, big: 1 << 20, extra: []string{"-O", "64bit,metadata_csum"}},
	{mkfs: "mkfs.ext3", bs: 1024, sizeKB: 8192, big: 1 << 20, reindex: true},
	// 64 KiB blocks: a whole-block rec_len (65536) is stored as 0 or 65535.
	{mkfs: "mkfs.ext4", bs: 65536, sizeKB: 65536 + 32768, big: 1 << 20, extra: []string{"-O", "^has_journal"}},
}

func TestAgainstTruthAndTSK(t *testing.T) {
	for i, im := range images {
		name := fmt.Sprintf("%s-%d-%s", im.mkfs, im.bs, strings.Join(im.extra, ""))
		if im.reindex {
			name += "htree"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			img, live, deleted := buildImage(t, im, uint64(100+i))
			testutil.Unchanged(t, img)
			e, files, sums := walkAll(t, img)
			if par := fstest.ConcurrentSums(t, e); len(par) != len(sums) {
				t.Errorf("concurrent Open read %d files, sequential %d", len(par), len(sums))
			} else {
				for p, h := range sums {
					if par[p] != h {
						t.Errorf("concurrent Open of %s: %s, sequential %s", p, par[p], h)
					}
				}
			}
			if want := strings.TrimPrefix(im.mkfs, "mkfs."); e.Type() != want {
				t.Errorf("Type = %s, want %s", e.Type(), want)
			}
			if p := e.Problems(); len(p) > 0 {
				t.Errorf("problems on a clean image: %q", p)
			}
			byPath := map[string]*fs.File{}
			gotLive := tree{}
			for _, f := range files {
				byPath[f.Path] = f
				if !f.Deleted && f.Type == "file" {
					gotLive[f.Path] = sums[f.Path]
				}
			}
			fstest.Compare(t, "generator", live, gotLive)
			fstest.Compare(t, "TSK", tskAllocated(t, img), gotLive)
			for _, p := range tskDeleted(t, img) {
				if im.reindex && strings.HasPrefix(p, "/many/") {
					// fls reads htree index blocks as directory entries and
					// reports garbage names ("many/^") there; we do not.
					continue
				}
				if f := byPath[p]; f == nil || !f.Deleted {
					t.Errorf("TSK lists %s deleted; we have %+v", p, f)
				}
			}

			if im.reindex {
				// e2fsck -D compacts directories: the deleted names are
				// gone, the deleted inodes remain as orphans.
				orphans := map[string]bool{}
				for _, f := range files {
					if f.Deleted && strings.HasPrefix(f.Path, orphanDir+"/") && f.Recoverable {
						orphans[sums[f.Path]] = true
					}
				}
				for p, want := range deleted {
					if !orphans[want] {
						t.Errorf("deleted %s not recovered as an orphan", p)
					}
				}
				deleted = nil
			}
			for p, want := range deleted {
				f := byPath[p]
				if f == nil {
					t.Errorf("deleted %s not listed", p)
					continue
				}
				if f.Deleted && f.Inode == 0 {
					// Unlinking the first entry of a block (or of inline
					// data) clears its inode number: the name survives,
					// the content is found as an orphan inode.
					found := false
					for _, o := range files {
						found = found || o.Deleted && strings.HasPrefix(o.Path, orphanDir+"/") && sums[o.Path] == want
					}
					if !found {
						t.Errorf("deleted %s: inode cleared and no orphan with its content", p)
					}
					continue
				}
				if !f.Deleted || !f.Recoverable || sums[p] != want {
					t.Errorf("deleted %s: deleted=%v recoverable=%v sha %s want %s (%s)", p, f.Deleted, f.Recoverable, sums[p], want, f.Err)
				}
			}
			if f := byPath["/link"]; f == nil || f.Type != "symlink" || f.Size != int64(len("docs/readme 1.txt")) {
				t.Errorf("symlink: %+v", f)
			} else if r, err := e.Open(f); err != nil {
				t.Error(err)
			} else if b, _ := io.ReadAll(r); string(b) != "docs/readme 1.txt" {
				t.Errorf("symlink target %q", b)
			}
			if f := byPath["/longlink"]; f == nil {
				t.Error("long symlink missing")
			} else if r, err := e.Open(f); err != nil {
				t.Error(err)
			} else if b, _ := io.ReadAll(r); string(b) != strings.Repeat("long/", 20)+"target" {
				t.Errorf("long symlink target %q", b)
			}
			big := byPath["/big.bin"]
			if big == nil || len(big.Runs) < 2 {
				t.Errorf("big.bin not fragmented: %+v", big)
			}
			if f := byPath["/tiny.txt"]; f == nil || !f.Mtime.Equal(tinyMtime.Truncate(time.Second)) && !f.Mtime.Equal(tinyMtime) || f.Ctime.IsZero() {
				t.Errorf("tiny.txt times: %+v, mtime want %v", f, tinyMtime)
			} else if e.sb.inodeSize >= 256 && (!f.Mtime.Equal(tinyMtime) || !f.Atime.Equal(tinyAtimeRead) || !f.Btime.Equal(tinyCrtime)) {
				t.Errorf("tiny.txt nanosecond times: mtime %v atime %v crtime %v; want %v %v %v", f.Mtime, f.Atime, f.Btime, tinyMtime, tinyAtimeRead, tinyCrtime)
			}
			if im.reindex {
				in, err := e.readInode(uint32(byPath["/many"].Inode))
				if err != nil || in.flags&flagIndex == 0 {
					t.Errorf("/many is not an htree directory after e2fsck -D (%v)", err)
				}
			}
			checkUnallocated(t, e, files)
		})
	}
}

// checkUnallocated checks e's unallocated ranges against its files; runs
// inside an inode table (inline data, fast symlinks) are not in the data
// area.
func checkUnallocated(t testing.TB, e *FS, files []*fs.File) {
	t.Helper()
	un, err := e.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	fstest.CheckUnallocated(t, un, files, func(_ *fs.File, r fs.Run) bool {
		return r.Offset < 1024*1024*1024 && r.Offset < int64(e.sb.blocksCount)*e.sb.blockSize && r.Offset >= 0 && isInline(e, r)
	})
}

// isInline reports runs inside an inode table (inline data, fast symlinks).
func isInline(e *FS, r fs.Run) bool {
	return r.Length <= iBlockLen && r.Offset%e.sb.blockSize != 0
}

package ntfs

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// tree is ground truth: path ("/a/b", "/a/b:stream") → SHA-256.
type tree = fstest.Tree

var sum = fstest.SHA256

// mounted mounts img with ntfs-3g in the foreground, runs fill on the mount
// point, and unmounts, waiting for ntfs-3g to exit so every write is on
// the image. It reports false when FUSE is not available here.
func mounted(t testing.TB, img string, fill func(dir string)) bool {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.NeedTool(t, "ntfs-3g"), "-o", "no_detach", img, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := false
	for range 500 { // up to 10 s on a loaded machine
		var st, parent syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev {
			up = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !up {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("ntfs-3g mount unavailable: %s", stderr.String())
		// A mount that came up late would hold the mount point busy.
		_ = exec.Command("umount", dir).Run()
		return false
	}
	defer func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	}()
	fill(dir)
	return true
}

// ntfsImage is the result of buildNTFS: the image and the ground truth.
type ntfsImage struct {
	img     string
	live    tree // allocated files and streams
	deleted tree // deleted files (their content is recoverable)
	links   [2]string
}

// buildNTFS makes an NTFS image with mkntfs and fills it through an
// ntfs-3g mount: nested directories, resident and non-resident files,
// alternate data streams on a file and a directory, a hard link, a
// fragmented big file (fill, delete every other, write), and deleted
// victims removed last so their clusters stay free.
func buildNTFS(t testing.TB, seed uint64, sizeMB int, v variant) *ntfsImage {
	cluster := v.cluster
	t.Helper()
	img := filepath.Join(t.TempDir(), "ntfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-c", fmt.Sprint(cluster), img)
	rng := rand.New(rand.NewPCG(seed, 3))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	im := &ntfsImage{img: img, live: tree{}, deleted: tree{}}
	ok := mounted(t, img, func(dir string) {
		put := func(rel string, b []byte) {
			p := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			im.live["/"+rel] = sum(b)
		}
		ads := func(rel, stream string, b []byte) {
			if err := syscall.Setxattr(filepath.Join(dir, rel), "user."+stream, b, 0); err != nil {
				t.Fatalf("ADS %s:%s: %v", rel, stream, err)
			}
			im.live["/"+rel+":"+stream] = sum(b)
		}
		put("empty.txt", nil)
		put("tiny.txt", []byte("hello evidx\n"))
		put("docs/readme 1.txt", rnd(300))
		put("docs/数据/names.csv", []byte(strings.Repeat("张三,13800138000\n", 300)))
		for i := range 6 {
			put(fmt.Sprintf("d%d/sub/f%02d.bin", i%3, i), rnd(1+rng.IntN(40000)))
		}
		// A compressed directory (FILE_ATTRIBUTE_COMPRESSED 0x800 through
		// ntfs-3g's system.ntfs_attrib_be): files created in it are
		// LZNT1-compressed, with sparse runs where units shrank.
		if err := os.Mkdir(filepath.Join(dir, "comp"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setxattr(filepath.Join(dir, "comp"), "system.ntfs_attrib_be", []byte{0, 0, 0x08, 0x10}, 0); err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		for i := range 20000 {
			fmt.Fprintf(&text, "line %d of compressible text %d\n", i, rng.IntN(1000))
		}
		put("comp/z.txt", text.Bytes())
		ads("tiny.txt", "secret", []byte("hidden stream"))
		put("streams.bin", []byte("a file with many streams"))
		for i := range 24 {
			ads("streams.bin", fmt.Sprintf("stream%02d", i), rnd(150+i))
		}
		ads("docs", "dirstream", rnd(5000))
		if err := os.Link(filepath.Join(dir, "d0/sub/f00.bin"), filepath.Join(dir, "docs/hardlink.bin")); err != nil {
			t.Fatal(err)
		}
		im.live["/docs/hardlink.bin"] = im.live["/d0/sub/f00.bin"]
		for i := range 4 {
			put(fmt.Sprintf("del/victim%d.dat", i), rnd(3000+rng.IntN(9000)))
		}
		put("del/tinyvictim.txt", []byte("resident and deleted"))
		// Fragmentation: a ballast file takes all but ~2 MiB of the free
		// space, fill files take the rest until the volume is full, every
		// other one is deleted, and big.bin (80% of the freed space) must
		// go into the holes.
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(dir, &sfs); err != nil {
			t.Fatal(err)
		}
		free := int64(sfs.Bavail) * int64(sfs.Bsize)
		if err := os.WriteFile(filepath.Join(dir, "ballast"), make([]byte, free-v.spare), 0o644); err != nil {
			t.Fatal(err)
		}
		im.live["/ballast"] = sum(make([]byte, free-v.spare))
		fillSize := v.fill
		nfill := 0
		for ; nfill < 5000; nfill++ {
			p := fmt.Sprintf("fill/f%03d", nfill)
			if err := os.MkdirAll(filepath.Join(dir, "fill"), 0o755); err != nil {
				t.Fatal(err)
			}
			b := rnd(fillSize)
			if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
				_ = os.Remove(filepath.Join(dir, p)) // the volume is full
				break
			}
			im.live["/"+p] = sum(b)
		}
		for i := 0; i < nfill; i += 2 {
			p := fmt.Sprintf("fill/f%03d", i)
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
			delete(im.live, "/"+p)
		}
		put("big.bin", rnd(nfill/2*fillSize*8/10))
		// A deleted directory with a deleted file in it: the file keeps
		// its path through the directory's (deleted) MFT entry.
		put("gonedir/inner.bin", rnd(7000))
		for _, p := range []string{"gonedir/inner.bin", "gonedir"} {
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
		}
		im.deleted["/gonedir/inner.bin"] = im.live["/gonedir/inner.bin"]
		delete(im.live, "/gonedir/inner.bin")
		for _, p := range []string{"del/victim0.dat", "del/victim1.dat", "del/victim2.dat", "del/victim3.dat", "del/tinyvictim.txt"} {
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
			im.deleted["/"+p] = im.live["/"+p]
			delete(im.live, "/"+p)
		}
	})
	if !ok {
		if os.Getenv("CI") != "" {
			t.Fatal("ntfs-3g FUSE mount needed to build NTFS test images")
		}
		t.Skip("ntfs-3g FUSE mount not available")
	}
	return im
}

// walkAll opens img and returns every File with the SHA-256 of each readable
// file stream.
func walkAll(t testing.TB, img string) (*FS, []*fs.File, map[string]string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	n, err := open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	files, sums := fstest.Walk(t, n)
	return n, files, sums
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (\* )?(\d+)-(\d+)-(\d+)(?:\(realloc\))?:\t(.*)$`)

// tskAllocated lists allocated $DATA streams (attribute type 128) with fls
// -r -p and hashes each with icat.
func tskAllocated(t testing.TB, img string) tree {
	t.Helper()
	out := testutil.Run(t, "fls", "-r", "-p", img)
	got := tree{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		// Directories' named streams are "d/r"; "dir/.:stream" is TSK
		// listing a directory's stream a second time through ".".
		if m == nil || m[3] != "" || m[2] != "r" || m[5] != "128" || strings.Contains(m[7], "/.:") {
			continue
		}
		data, err := exec.Command(testutil.NeedTool(t, "icat"), img, m[4]+"-"+m[5]+"-"+m[6]).Output()
		if err != nil {
			t.Fatalf("icat %s: %v", m[4], err)
		}
		got["/"+m[7]] = sum(data)
	}
	return got
}

// variant is one NTFS test image: cluster size, the size of the fill files
// whose every other one is deleted before big.bin is written, and the free
// space (bytes) left for them after the ballast.
type variant struct {
	name    string
	cluster int
	fill    int
	spare   int64
}

var variants = []variant{
	{name: "cluster4096", cluster: 4096, fill: 12 << 10, spare: 2 << 20},
	{name: "cluster512", cluster: 512, fill: 12 << 10, spare: 2 << 20},
}

func TestAgainstTruthAndTSK(t *testing.T) {
	for i, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			im := buildNTFS(t, uint64(200+i), 24, v)
			testutil.Unchanged(t, im.img)
			n, files, sums := walkAll(t, im.img)
			if par := fstest.ConcurrentSums(t, n); len(par) != len(sums) {
				t.Errorf("concurrent Open read %d files, sequential %d", len(par), len(sums))
			} else {
				for p, h := range sums {
					if par[p] != h {
						t.Errorf("concurrent Open of %s: %s, sequential %s", p, par[p], h)
					}
				}
			}
			if p := n.Problems(); len(p) > 0 {
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
			// The generator's files are those outside the metafiles.
			user := tree{}
			for p, s := range gotLive {
				if !strings.HasPrefix(p, "/$") {
					user[p] = s
				}
			}
			fstest.Compare(t, "generator", im.live, user)
			tsk := tskAllocated(t, im.img)
			// TSK's icat prints nothing for $BadClus:$Bad, a stream wholly
			// sparse with the volume's size; we read it as that many zeros.
			delete(tsk, "/$BadClus:$Bad")
			delete(gotLive, "/$BadClus:$Bad")
			// fls lists a deleted name still present in its directory's
			// index as allocated, though its MFT entry is not in use.
			for p := range im.deleted {
				delete(tsk, p)
			}
			fstest.Compare(t, "TSK", tsk, gotLive)
			// Every $DATA stream TSK marks deleted ("*") is listed deleted.
			sc := bufio.NewScanner(bytes.NewReader(testutil.Run(t, "fls", "-r", "-p", im.img)))
			for sc.Scan() {
				m := flsLine.FindStringSubmatch(sc.Text())
				if m == nil || m[3] == "" || m[5] != "128" || strings.HasPrefix(m[7], "$OrphanFiles") {
					continue
				}
				if f := byPath["/"+m[7]]; f == nil || !f.Deleted {
					t.Errorf("TSK lists /%s deleted; we have %+v", m[7], f)
				}
			}
			for p, want := range im.deleted {
				f := byPath[p]
				if f == nil {
					t.Errorf("deleted %s not listed", p)
					continue
				}
				if p == "/del/tinyvictim.txt" && f.Type == "other" {
					continue // ntfs-3g may drop the resident $DATA when it deletes
				}
				if !f.Deleted || !f.Recoverable || sums[p] != want {
					t.Errorf("deleted %s: deleted=%v recoverable=%v sha %s want %s (%s)", p, f.Deleted, f.Recoverable, sums[p], want, f.Err)
				}
			}
			if f := byPath["/big.bin"]; f == nil || len(f.Runs) < 2 {
				t.Errorf("big.bin not fragmented: %+v", f)
			}
			if f := byPath["/tiny.txt"]; f == nil || f.Mtime.IsZero() || f.Btime.IsZero() || f.Ctime.IsZero() || f.Atime.IsZero() || time.Since(f.Mtime) > time.Hour {
				t.Errorf("tiny.txt times: %+v", f)
			}
			if f := byPath["/comp/z.txt"]; f == nil || !hasSparse(f.Runs) {
				t.Errorf("comp/z.txt not stored compressed: %+v", f)
			}
			if f := byPath["/docs"]; f == nil || f.Type != "dir" {
				t.Errorf("docs: %+v", f)
			}
			// streams.bin has more streams than its record holds: ntfs-3g
			// moved some to extension records listed in $ATTRIBUTE_LIST.
			raw := make([]byte, n.bt.recordSize)
			if rec, err := n.record(byPath["/streams.bin"].Inode, raw); err != nil || rec.list == nil {
				t.Errorf("streams.bin has no $ATTRIBUTE_LIST (%v): extension records untested", err)
			}
			checkUnallocated(t, n, files)
			checkFreeCount(t, n, im.img)
		})
	}
}

// checkUnallocated checks n's unallocated ranges against its files;
// resident data lives in the MFT, and $BadClus maps the whole volume.
func checkUnallocated(t testing.TB, n *FS, files []*fs.File) {
	t.Helper()
	un, err := n.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	fstest.CheckUnallocated(t, un, files, func(f *fs.File, r fs.Run) bool {
		return strings.HasPrefix(f.Path, "/$BadClus") || r.Length < n.bt.clusterSize && r.Offset%n.bt.clusterSize != 0
	})
}

func hasSparse(runs []fs.Run) bool {
	for _, r := range runs {
		if r.Sparse {
			return true
		}
	}
	return false
}

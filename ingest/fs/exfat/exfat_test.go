package exfat

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/fstest"
	"github.com/evidx/evidx/internal/testutil"
)

// The shared test image: made once (mkfs.exfat, then files written through
// exfat-fuse on a loop device), used by every test of the package.
var (
	shared, small         built
	sharedOnce, smallOnce sync.Once
	sharedDir             string
)

// built is a test image and the ground truth its generator wrote.
type built struct {
	img      string
	live     fstest.Tree       // allocated files: path -> SHA-256
	deleted  fstest.Tree       // deleted files whose clusters stay free
	gone     fstest.Tree       // other deleted files (clusters maybe reused)
	data     map[string][]byte // content of a few files for random reads
	contig   []string          // files written in one go: one run expected
	frag     []string          // files written interleaved: several runs expected
	freeByte int64             // free bytes statfs reported before unmount
	skip     string            // why the image could not be made
	err      string            // a failure building it
}

const (
	label    = "EVIDX 证据"
	writerTZ = "Asia/Shanghai" // exfat-fuse writes local time of its TZ with the offset
)

var (
	tMtime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC) // odd second: needs the 10 ms field
	tAtime = time.Date(2022, 1, 2, 3, 4, 4, 0, time.UTC) // access time has 2 s granularity
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" && os.Getenv("EXFAT_KEEP") == "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// needMount skips unless the test can mount an exFAT image: root,
// /dev/fuse, losetup and the exFAT tools.
func needMount(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device and mount with exfat-fuse")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	for _, tool := range []string{"losetup", "mkfs.exfat", "mount.exfat-fuse", "umount", "fls", "icat", "fsstat", "fsck.exfat"} {
		testutil.NeedTool(t, tool)
	}
}

// image returns the shared 64 MB test image, building it on first use.
func image(t testing.TB) built { return once(t, &sharedOnce, &shared, "full", 64<<20, true) }

// smallImage returns an 8 MB image of the same tree without the many and
// fill directories, for the corruption tests that copy and walk it often.
func smallImage(t testing.TB) built { return once(t, &smallOnce, &small, "small", 8<<20, false) }

func once(t testing.TB, o *sync.Once, b *built, name string, size int64, full bool) built {
	t.Helper()
	needMount(t)
	o.Do(func() {
		if sharedDir == "" {
			dir, err := os.MkdirTemp("", "exfat-test-")
			if err != nil {
				b.err = err.Error()
				return
			}
			sharedDir = dir
		}
		dir := filepath.Join(sharedDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.err = err.Error()
			return
		}
		var err error
		*b, err = buildImage(dir, size, full, nil)
		if err != nil {
			b.err = err.Error()
		}
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return *b
}

func run(name string, env []string, args ...string) ([]byte, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		p = "/usr/sbin/" + name
	}
	cmd := exec.Command(p, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %v: %v: %s", name, args, err, out)
	}
	return out, nil
}

// mounted makes an exFAT image of size bytes at img, mounts it through a
// loop device with exfat-fuse (TZ=writerTZ), calls fill with the mount
// point, and unmounts it.
func mounted(img string, size int64, extra []string, fill func(mnt string) error) (err error) {
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	// "-s N" is the loop device's logical sector size, which mkfs.exfat
	// takes for the volume's.
	loArgs := []string{"-f", "--show"}
	var mkfsArgs []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "-s" && i+1 < len(extra) {
			loArgs = append(loArgs, "-b", extra[i+1])
			i++
			continue
		}
		mkfsArgs = append(mkfsArgs, extra[i])
	}
	out, err := run("losetup", nil, append(loArgs, img)...)
	if err != nil {
		return err
	}
	dev := strings.TrimSpace(string(out))
	defer func() {
		if _, e := run("losetup", nil, "-d", dev); e != nil && err == nil {
			err = e
		}
	}()
	if _, err := run("mkfs.exfat", nil, append(append([]string{"-L", label}, mkfsArgs...), dev)...); err != nil {
		return err
	}
	mnt := img + ".mnt"
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	if _, err := run("mount.exfat-fuse", []string{"TZ=" + writerTZ}, dev, mnt); err != nil {
		return err
	}
	mountedOK := true
	defer func() {
		if mountedOK {
			run("umount", nil, mnt)
		}
	}()
	if err := fill(mnt); err != nil {
		return err
	}
	if _, err := run("umount", nil, mnt); err != nil {
		return err
	}
	mountedOK = false
	return nil
}

// buildImage writes the test tree: nested directories, Chinese and long
// names (several name entries), an empty file, contiguous (NoFatChain)
// files, files made fragmented by appending to two of them in turn, a
// directory of many entries (several clusters), fill files every other of
// which is deleted before a file that can use their holes, and deleted
// files (a small one, a contiguous one, a fragmented one, a deleted
// directory tree) whose clusters stay free.
func buildImage(dir string, size int64, full bool, mkfsArgs []string) (b built, err error) {
	b = built{img: filepath.Join(dir, "exfat.img"), live: fstest.Tree{}, deleted: fstest.Tree{}, gone: fstest.Tree{}, data: map[string][]byte{}}
	rng := rand.New(rand.NewPCG(7, 13))
	rnd := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	err = mounted(b.img, size, mkfsArgs, func(mnt string) error {
		put := func(rel string, p []byte) error {
			full := filepath.Join(mnt, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			b.live["/"+rel] = fstest.SHA256(p)
			return os.WriteFile(full, p, 0o644)
		}
		appendTo := func(rel string, p []byte) error {
			full := filepath.Join(mnt, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			fh, err := os.OpenFile(full, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			if _, err := fh.Write(p); err != nil {
				fh.Close()
				return err
			}
			return fh.Close()
		}
		del := func(rel string) {
			b.deleted["/"+rel] = b.live["/"+rel]
			delete(b.live, "/"+rel)
		}
		steps := []func() error{
			func() error { return put("empty.txt", nil) },
			func() error { return put("docs/readme.txt", []byte("evidx exFAT test\n")) },
			func() error {
				return put("docs/数据/深层目录/说明文件的名字很长超过十五个字符.txt", []byte(strings.Repeat("张三,13800138000\n", 200)))
			},
			func() error { return put("a-very-long-english-file-name-beyond-fifteen-characters.bin", rnd(9000)) },
			func() error {
				big := rnd(5 << 20)
				if !full {
					big = big[:1<<20]
				}
				b.data["/big-contiguous.bin"] = big
				b.contig = append(b.contig, "/big-contiguous.bin")
				return put("big-contiguous.bin", big)
			},
			func() error {
				// Appending to two files in turn interleaves their clusters.
				var fa, fb []byte
				for range 12 {
					pa, pb := rnd(5000), rnd(7000)
					fa, fb = append(fa, pa...), append(fb, pb...)
					if err := appendTo("frag/a.bin", pa); err != nil {
						return err
					}
					if err := appendTo("frag/b.bin", pb); err != nil {
						return err
					}
				}
				b.live["/frag/a.bin"], b.live["/frag/b.bin"] = fstest.SHA256(fa), fstest.SHA256(fb)
				b.data["/frag/a.bin"] = fa
				b.frag = append(b.frag, "/frag/a.bin", "/frag/b.bin")
				return nil
			},
		}
		if full {
			steps = append(steps,
				func() error {
					for i := range 100 {
						if err := put(fmt.Sprintf("many/an-entry-with-a-longer-name-%03d.txt", i), []byte(strconv.Itoa(i))); err != nil {
							return err
						}
					}
					return nil
				},
				func() error {
					for i := range 20 {
						if err := put(fmt.Sprintf("fill/f%02d", i), rnd(3*4096+100)); err != nil {
							return err
						}
					}
					for i := 0; i < 20; i += 2 {
						rel := fmt.Sprintf("fill/f%02d", i)
						if err := os.Remove(filepath.Join(mnt, rel)); err != nil {
							return err
						}
						b.gone["/"+rel] = b.live["/"+rel]
						delete(b.live, "/"+rel)
					}
					return put("holes.bin", rnd(150000))
				})
		}
		steps = append(steps,
			func() error {
				p := filepath.Join(mnt, "t.txt")
				if err := os.WriteFile(p, []byte("times\n"), 0o644); err != nil {
					return err
				}
				b.live["/t.txt"] = fstest.SHA256([]byte("times\n"))
				return os.Chtimes(p, tAtime, tMtime)
			},
			// The deleted files come last: nothing is written over them.
			func() error { return put("del/small.txt", []byte("deleted but recoverable\n")) },
			func() error {
				b.contig = append(b.contig, "/del/contig.bin")
				return put("del/contig.bin", rnd(20000))
			},
			func() error {
				var fv, fk []byte
				for range 4 {
					pv, pk := rnd(4500), rnd(4200)
					fv, fk = append(fv, pv...), append(fk, pk...)
					if err := appendTo("del/frag.bin", pv); err != nil {
						return err
					}
					if err := appendTo("del/keeper.bin", pk); err != nil {
						return err
					}
				}
				b.live["/del/frag.bin"], b.live["/del/keeper.bin"] = fstest.SHA256(fv), fstest.SHA256(fk)
				return nil
			},
			func() error { return put("gonedir/sub/inner.bin", rnd(6000)) },
			func() error {
				var st syscall.Statfs_t
				if err := syscall.Statfs(mnt, &st); err != nil {
					return err
				}
				for _, rel := range []string{"del/small.txt", "del/contig.bin", "del/frag.bin", "gonedir/sub/inner.bin"} {
					if err := os.Remove(filepath.Join(mnt, rel)); err != nil {
						return err
					}
					del(rel)
				}
				for _, rel := range []string{"gonedir/sub", "gonedir"} {
					if err := os.Remove(filepath.Join(mnt, rel)); err != nil {
						return err
					}
				}
				if err := syscall.Statfs(mnt, &st); err != nil {
					return err
				}
				b.freeByte = int64(st.Bfree) * st.Bsize
				return nil
			})
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return b, err
	}
	// A second opinion that the image is a valid exFAT volume.
	if out, err := run("fsck.exfat", nil, "-n", b.img); err != nil {
		return b, fmt.Errorf("fsck.exfat -n: %v\n%s", err, out)
	}
	return b, nil
}

func openImg(t testing.TB, img string) *FS {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(fh, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// flsEntry is one line of fls -r -p.
type flsEntry struct {
	inode   uint64
	dir     bool
	deleted bool
}

var flsLine = regexp.MustCompile(`^(\S)/(\S) (\* )?(\d+)(?:\(realloc\))?:\t(.*)$`)

// fls lists the image as The Sleuth Kit does, without its virtual files
// ($MBR, $FAT1, $FAT2, $OrphanFiles) and the volume label entry, which
// evidx gives as Label.
func fls(t testing.TB, img string) map[string]flsEntry {
	t.Helper()
	out := map[string]flsEntry{}
	sc := bufio.NewScanner(bytes.NewReader(testutil.Run(t, "fls", "-r", "-p", "-f", "exfat", img)))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("fls line %q", sc.Text())
		}
		name := m[5]
		if m[1] == "v" || m[1] == "V" || strings.HasPrefix(name, "$OrphanFiles") || strings.HasSuffix(name, " (Volume Label Entry)") {
			continue
		}
		n, _ := strconv.ParseUint(m[4], 10, 64)
		out["/"+name] = flsEntry{inode: n, dir: m[1] == "d", deleted: m[3] != ""}
	}
	return out
}

func icat(t testing.TB, img string, inode uint64) string {
	t.Helper()
	return fstest.SHA256(testutil.Run(t, "icat", "-f", "exfat", img, strconv.FormatUint(inode, 10)))
}

// TestAgainstTruthAndTSK compares the walk with what was written and with
// fls/icat: every path, inode and deleted mark; every allocated file's
// SHA-256 (and icat's); deleted files recovered byte for byte; the label;
// the unallocated space; and that the image is not written.
func TestAgainstTruthAndTSK(t *testing.T) { checkImage(t, image(t)) }

// TestGeometries: the small tree on volumes of other sector and cluster
// sizes (512-byte clusters: many more runs; 32 KiB clusters; 4 KiB
// sectors, whose backup boot region is at 0xc000) and with the bitmap
// packed into the FAT's alignment gap.
func TestGeometries(t *testing.T) {
	needMount(t)
	for _, g := range [][]string{{"-c", "512"}, {"-c", "32K"}, {"-s", "4096"}, {"--pack-bitmap"}} {
		t.Run(strings.Join(g, ""), func(t *testing.T) {
			b, err := buildImage(t.TempDir(), 16<<20, false, g)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, b)
			if g[0] != "-s" {
				return
			}
			img, err := os.ReadFile(b.img)
			if err != nil {
				t.Fatal(err)
			}
			if f, err := New(bytes.NewReader(img), int64(len(img))); err != nil || f.bps != 4096 {
				t.Fatalf("sector size: %v", err)
			}
			img[4096+100] ^= 0x5a // extended boot sector 1
			f, err := New(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			if !hasProblem(f, "backup boot region at 0xc000 used") {
				t.Errorf("4 KiB sectors, main checksum bad: %q", f.Problems())
			}
		})
	}
}

// checkImage runs the checks of TestAgainstTruthAndTSK on b.
func checkImage(t *testing.T, b built) {
	t.Helper()
	testutil.Unchanged(t, b.img)
	f := openImg(t, b.img)
	files, sums := fstest.Walk(t, f)
	if f.Label() != label {
		t.Errorf("label %q, want %q", f.Label(), label)
	}
	st := string(testutil.Run(t, "fsstat", "-f", "exfat", b.img))
	// fsstat prints each byte of the serial unpadded: 0x6f5b0ef0 is "6f5b-ef0".
	sn := f.Serial()
	serial := fmt.Sprintf("Volume Serial Number: %x%x-%x%x\n", sn>>24, sn>>16&0xff, sn>>8&0xff, sn&0xff)
	if !strings.Contains(st, serial) || !strings.Contains(st, "Volume Label (from root directory): "+label+"\n") ||
		!strings.Contains(st, fmt.Sprintf("Cluster Size: %d\n", f.ClusterSize())) {
		t.Errorf("fsstat says\n%s\nevidx: %q, label %q, cluster size %d", st, serial, f.Label(), f.ClusterSize())
	}
	byPath := map[string]*fs.File{}
	for _, fl := range files {
		if byPath[fl.Path] != nil {
			t.Errorf("%s listed twice", fl.Path)
		}
		byPath[fl.Path] = fl
	}

	// Listing against fls: paths, inodes, types, deleted marks.
	tsk := fls(t, b.img)
	for p, e := range tsk {
		g := byPath[p]
		switch {
		case g == nil:
			t.Errorf("fls lists %s (inode %d), evidx does not", p, e.inode)
		case g.Inode != e.inode || g.Deleted != e.deleted || (g.Type == "dir") != e.dir:
			t.Errorf("%s: inode %d deleted %v type %s; fls: inode %d deleted %v dir %v", p, g.Inode, g.Deleted, g.Type, e.inode, e.deleted, e.dir)
		}
	}
	for p := range byPath {
		if _, ok := tsk[p]; !ok {
			t.Errorf("evidx lists %s, fls does not", p)
		}
	}

	// Content against the truth and icat.
	live := fstest.Tree{}
	want := fstest.Tree{"/$ALLOC_BITMAP": fstest.PathOnly, "/$UPCASE_TABLE": fstest.PathOnly}
	for p, s := range b.live {
		want[p] = s
	}
	for _, fl := range files {
		if fl.Type != "file" {
			continue
		}
		if !fl.Deleted {
			live[fl.Path] = sums[fl.Path]
			if fl.Err != "" || !fl.Recoverable || fl.Recovery != "" {
				t.Errorf("%s: err %q recoverable %v recovery %q", fl.Path, fl.Err, fl.Recoverable, fl.Recovery)
			}
		}
		// icat each file but most of the hundred tiny ones in /many (time).
		if s, ok := sums[fl.Path]; ok && !strings.HasPrefix(fl.Path, "/many/an-entry-with-a-longer-name-0") {
			if it := icat(t, b.img, fl.Inode); it != s {
				t.Errorf("%s (inode %d, deleted %v, %s): sha256 %s, icat %s", fl.Path, fl.Inode, fl.Deleted, fl.Recovery, s, it)
			}
		}
	}
	fstest.Compare(t, "allocated", want, live)
	for p, s := range b.deleted {
		g := byPath[p]
		switch {
		case g == nil || !g.Deleted:
			t.Errorf("deleted %s not listed as deleted", p)
		case !g.Recoverable:
			t.Errorf("deleted %s not recovered: %s", p, g.Err)
		case sums[p] != s:
			t.Errorf("deleted %s recovered (%s) as %s, want %s", p, g.Recovery, sums[p], s)
		}
	}
	for _, p := range []string{"/gonedir", "/gonedir/sub"} {
		if g := byPath[p]; g == nil || !g.Deleted || g.Type != "dir" {
			t.Errorf("deleted directory %s: %+v", p, g)
		}
	}
	// Fill files whose clusters holes.bin reused must not come back with
	// its bytes: recovered means the content is the deleted file's.
	for p, s := range b.gone {
		if g := byPath[p]; g == nil || !g.Deleted {
			t.Errorf("deleted %s not listed", p)
		} else if g.Recoverable && sums[p] != s {
			t.Errorf("deleted %s recovered (%s) with other content", p, g.Recovery)
		}
	}
	if g := byPath["/del/contig.bin"]; g != nil && g.Recovery != "contiguous" {
		t.Errorf("/del/contig.bin recovery %q", g.Recovery)
	}
	if g := byPath["/del/frag.bin"]; g != nil && g.Size > f.clusterSize && g.Recovery != "skip-allocated" && g.Recovery != "fat-chain" {
		t.Errorf("/del/frag.bin recovery %q", g.Recovery)
	}
	// The stream extension entry's NoFatChain flag, as exfat-fuse set it.
	noFatChain := func(g *fs.File) bool {
		flags := make([]byte, 1)
		if _, err := f.r.ReadAt(flags, f.heapOff+int64(g.Inode-3)*entrySize+entrySize+seFlags); err != nil {
			t.Fatal(err)
		}
		return flags[0]&flagNoFatChain != 0
	}
	for _, p := range b.contig {
		if g := byPath[p]; g == nil || len(g.Runs) != 1 || !noFatChain(g) {
			t.Errorf("%s written in one go: runs %+v, not NoFatChain", p, g)
		}
	}
	for _, p := range b.frag {
		if g := byPath[p]; g == nil || len(g.Runs) < 2 || noFatChain(g) {
			t.Errorf("%s written interleaved: runs %+v, NoFatChain", p, g)
		}
	}

	// Times carry the writer's UTC offset (+8): exact in UTC.
	if g := byPath["/t.txt"]; g == nil || !g.Mtime.Equal(tMtime) || !g.Atime.Equal(tAtime) || g.Btime.IsZero() {
		t.Errorf("/t.txt times: %+v, want mtime %v atime %v", g, tMtime, tAtime)
	}
	for _, p := range f.Problems() {
		t.Errorf("problem on a clean volume: %s", p)
	}

	// Unallocated: disjoint from every allocated run, holding the deleted
	// files' clusters, and as many cluster bytes as statfs said were free.
	un, err := f.Unallocated()
	if err != nil {
		t.Fatal(err)
	}
	fstest.CheckUnallocated(t, un, files, func(*fs.File, fs.Run) bool { return false })
	heapEnd := f.heapOff + int64(f.nClusters)*f.clusterSize
	var free int64
	for _, r := range un {
		free += min(r.Off+r.Len, heapEnd) - min(r.Off, heapEnd)
	}
	if free != b.freeByte {
		t.Errorf("unallocated cluster bytes %d, statfs said %d free", free, b.freeByte)
	}
	for p := range b.deleted {
		for _, r := range byPath[p].Runs {
			in := false
			for _, u := range un {
				in = in || r.Offset >= u.Off && r.Offset+r.Length <= u.Off+u.Len
			}
			if !in {
				t.Errorf("deleted %s run %+v not in unallocated space", p, r)
			}
		}
	}

	// The walk as evidx ls runs it: files hashed while the walk goes on.
	conc := fstest.ConcurrentSums(t, f)
	fstest.Compare(t, "concurrent", sums, conc)
}

// TestRandomReads reads fragmented and contiguous files at odd offsets and
// lengths that cross cluster and run boundaries, from several goroutines.
func TestRandomReads(t *testing.T) {
	b := image(t)
	f := openImg(t, b.img)
	files, _ := fstest.Walk(t, f)
	var wg sync.WaitGroup
	for _, fl := range files {
		want, ok := b.data[fl.Path]
		if !ok {
			continue
		}
		r, err := f.Open(fl)
		if err != nil {
			t.Fatal(err)
		}
		ra := r.(io.ReaderAt)
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), uint64(len(want))))
				for range 300 {
					off := rng.Int64N(int64(len(want)))
					n := 1 + rng.IntN(3*int(f.clusterSize))
					buf := make([]byte, n)
					got, err := ra.ReadAt(buf, off)
					end := min(off+int64(n), int64(len(want)))
					if got != int(end-off) || !bytes.Equal(buf[:got], want[off:end]) {
						t.Errorf("%s: ReadAt(%d, %d) = %d, %v: content differs", fl.Path, n, off, got, err)
						return
					}
					if end < off+int64(n) && err != io.EOF {
						t.Errorf("%s: ReadAt past the end: %v", fl.Path, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
}

package fat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	"unicode/utf16"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// genFile is one file the test generator writes into an image.
type genFile struct {
	path string // relative, "/"-separated
	data []byte
}

const tzProblem = "fat: times are local time of an unknown zone, read as UTC"

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// genTree makes n files with long names (spaces, mixed case), nested
// directories, and one empty file, from a seeded generator.
func genTree(rng *rand.Rand, prefix string, n int, maxSize int) []genFile {
	dirs := []string{"", "Dir One/", "Dir One/Nested Deeper/", "second_dir/", "second_dir/Sub Dir With A Long Name/"}
	var out []genFile
	for i := range n {
		size := rng.IntN(maxSize)
		if i == 0 {
			size = 0 // the empty file
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out = append(out, genFile{path: fmt.Sprintf("%s%s Long File Name %03d.bin", dirs[i%len(dirs)], prefix, i), data: b})
	}
	return out
}

// writeTree puts files under a fresh host directory and returns it.
func writeTree(t *testing.T, files []genFile) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// mcopyTree copies every top-level entry of dir into the image root.
func mcopyTree(t *testing.T, img, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-o", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(dir, e.Name()))
	}
	testutil.Run(t, "mcopy", append(args, "::/")...)
}

// freeBytes asks mtools how many bytes are free in the image.
func freeBytes(t *testing.T, img string) int64 {
	t.Helper()
	out := testutil.Run(t, "mdir", "-i", img, "::/")
	m := regexp.MustCompile(`([0-9 ]+) bytes free`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("mdir: no free count in %s", out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(string(m[1]), " ", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scenario is a generated image with the truth about its content.
type scenario struct {
	img       string
	alive     map[string][]byte // allocated files: path -> content
	deleted   map[string][]byte // deleted files: path -> original content
	lastPhase map[string]bool   // deleted last, never overwritten: must be recovered exactly
}

// buildScenario makes a FAT image of the given type: set A copied, the
// volume filled up to 64 KiB with a filler, part of A deleted (D1), set B
// copied (it must reuse D1's clusters), then more of A deleted (D2).
func buildScenario(t *testing.T, fatBits int, sizeKB int, nFiles, maxSize int) scenario {
	t.Helper()
	testutil.NeedTool(t, "mkfs.fat")
	dir := t.TempDir()
	img := filepath.Join(dir, fmt.Sprintf("fat%d.img", fatBits))
	testutil.Run(t, "mkfs.fat", "-F", strconv.Itoa(fatBits), "-C", img, strconv.Itoa(sizeKB))
	rng := rand.New(rand.NewPCG(uint64(fatBits), 42))
	a := genTree(rng, "A", nFiles, maxSize)
	// A directory removed whole with mdeltree at the end.
	gone := genTree(rng, "G", 4, maxSize/4)
	for i := range gone {
		gone[i].path = "Gone Directory/" + filepath.Base(gone[i].path)
	}
	a = append(a, gone...)
	mcopyTree(t, img, writeTree(t, a))
	free := freeBytes(t, img)
	if free > 64<<10+4096 {
		filler := []genFile{{path: "filler.bin", data: bytes.Repeat([]byte("F"), int(free-64<<10))}}
		mcopyTree(t, img, writeTree(t, filler))
		a = append(a, filler...)
	}
	s := scenario{img: img, alive: map[string][]byte{}, deleted: map[string][]byte{}, lastPhase: map[string]bool{}}
	for _, f := range a {
		s.alive["/"+f.path] = f.data
	}
	del := func(p string) {
		testutil.Run(t, "mdel", "-i", img, "::"+p)
		s.deleted[p] = s.alive[p]
		delete(s.alive, p)
	}
	// D1: every third file of A (not the empty one), later overwritten by B.
	for i := 1; i < nFiles; i += 3 {
		del("/" + a[i].path)
	}
	b := genTree(rng, "B", nFiles/3, maxSize/2) // about half of what D1 freed: fits, and must reuse it
	for i := range b {
		b[i].path = "second_dir/" + filepath.Base(b[i].path) // B lands in one directory
	}
	mcopyTree(t, img, writeTree(t, b))
	for _, f := range b {
		s.alive["/"+f.path] = f.data
	}
	// D2: every third file of A from index 2, deleted last.
	for i := 2; i < nFiles; i += 3 {
		p := "/" + a[i].path
		del(p)
		s.lastPhase[p] = true
	}
	testutil.Run(t, "mdeltree", "-i", img, "::/Gone Directory")
	for _, g := range gone {
		p := "/" + g.path
		s.deleted[p] = s.alive[p]
		delete(s.alive, p)
		s.lastPhase[p] = true
	}
	return s
}

// tskEntry is one line of fls -r -p.
type tskEntry struct {
	typ     string
	inode   uint64
	deleted bool
	path    string
}

var flsLine = regexp.MustCompile(`^(\S+) (\* )?(\d+)(?:\(realloc\))?:\t(.*)$`)

func fls(t *testing.T, img string, offSectors int64) []tskEntry {
	t.Helper()
	out := testutil.Run(t, "fls", "-r", "-p", "-o", strconv.FormatInt(offSectors, 10), img)
	var es []tskEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("fls line %q not understood", sc.Text())
		}
		if strings.HasPrefix(m[4], "$") || strings.HasSuffix(m[4], "(Volume Label Entry)") {
			continue // TSK's virtual files and the label are not files
		}
		ino, _ := strconv.ParseUint(m[3], 10, 64)
		es = append(es, tskEntry{typ: m[1], inode: ino, deleted: m[2] != "", path: "/" + m[4]})
	}
	return es
}

func icatSHA(t *testing.T, img string, offSectors int64, inode uint64) string {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, "icat"), "-o", strconv.FormatInt(offSectors, 10), img, strconv.FormatUint(inode, 10)).Output()
	if err != nil {
		t.Fatalf("icat %d: %v", inode, err)
	}
	return sha(out)
}

func openImage(t *testing.T, img string) (*os.File, int64) {
	t.Helper()
	fh, err := os.Open(img) // read-only: evidence is never written
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fh, st.Size()
}

type listed struct {
	file *fs.File
	sha  string
	err  error
}

// walkAll lists every file and hashes the content of the readable ones.
func walkAll(t *testing.T, f *FS) []listed {
	t.Helper()
	var out []listed
	err := f.Walk(context.Background(), func(file *fs.File) error {
		l := listed{file: file}
		if file.Type == "file" && file.Recoverable {
			r, err := f.Open(file)
			if err == nil {
				h := sha256.New()
				_, err = io.Copy(h, r)
				l.sha = hex.EncodeToString(h.Sum(nil))
			}
			l.err = err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

func TestAgainstTSK(t *testing.T) {
	for _, tc := range []struct {
		bits, sizeKB, files, maxSize int
	}{
		{12, 1440, 30, 20000},
		{16, 20000, 45, 60000},
		{32, 40000, 60, 60000},
	} {
		t.Run(fmt.Sprintf("fat%d", tc.bits), func(t *testing.T) {
			s := buildScenario(t, tc.bits, tc.sizeKB, tc.files, tc.maxSize)
			testutil.Unchanged(t, s.img)
			fh, size := openImage(t, s.img)
			f, err := New(fh, size)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := f.Type(), fmt.Sprintf("fat%d", tc.bits); got != want {
				t.Fatalf("type %s, want %s", got, want)
			}
			if p := f.Problems(); len(p) != 1 || p[0] != tzProblem {
				t.Errorf("problems on a clean image: %q, want only %q", p, tzProblem)
			}
			ours := walkAll(t, f)
			byPath := map[string]listed{}
			delByPath := map[string][]listed{}
			for _, l := range ours {
				if l.file.Deleted {
					delByPath[l.file.Path] = append(delByPath[l.file.Path], l)
				} else {
					byPath[l.file.Path] = l
				}
			}
			// Allocated: same paths, inodes and content as fls + icat.
			tsk := fls(t, s.img, 0)
			nAlloc := 0
			for _, e := range tsk {
				if e.deleted {
					continue
				}
				nAlloc++
				l, ok := byPath[e.path]
				if !ok {
					t.Errorf("fls lists %q, we do not", e.path)
					continue
				}
				if l.file.Inode != e.inode {
					t.Errorf("%s: inode %d, fls %d", e.path, l.file.Inode, e.inode)
				}
				if e.typ == "r/r" {
					if want := icatSHA(t, s.img, 0, e.inode); l.sha != want || l.err != nil {
						t.Errorf("%s: sha256 %s (%v), icat %s", e.path, l.sha, l.err, want)
					}
				}
			}
			// Timestamps of a few files against istat (written, accessed, created).
			checked := 0
			for _, e := range tsk {
				if e.deleted || e.typ != "r/r" || checked == 3 {
					continue
				}
				checked++
				cmd := exec.Command(testutil.NeedTool(t, "istat"), s.img, strconv.FormatUint(e.inode, 10))
				cmd.Env = append(os.Environ(), "TZ=UTC") // FAT times have no zone; TSK shows them in TZ
				b, err := cmd.Output()
				if err != nil {
					t.Fatalf("istat: %v", err)
				}
				out := string(b)
				f := byPath[e.path].file
				for label, tm := range map[string]time.Time{"Written": f.Mtime, "Accessed": f.Atime, "Created": f.Btime} {
					if want := fmt.Sprintf("%s:\t%s (UTC)", label, tm.Format("2006-01-02 15:04:05")); !strings.Contains(out, want) {
						t.Errorf("%s: istat has no %q:\n%s", e.path, want, out)
					}
				}
			}
			if nAlloc != len(byPath) {
				t.Errorf("we list %d allocated entries, fls %d", len(byPath), nAlloc)
			}
			// Allocated: content equals what the generator wrote.
			for p, data := range s.alive {
				if l, ok := byPath[p]; !ok || l.sha != sha(data) {
					t.Errorf("%s: listed %v sha %s, wrote %s", p, ok, l.sha, sha(data))
				}
			}
			// Deleted: every deleted file listed; any we call recoverable
			// has its original content; those deleted last all recover.
			tskDeleted := map[string]bool{}
			for _, e := range tsk {
				if e.deleted {
					tskDeleted[e.path] = true
				}
			}
			recovered := 0
			for p, data := range s.deleted {
				ls := delByPath[p]
				if len(ls) == 0 {
					// B's entries may reuse a deleted entry's slot: then it is
					// gone for every tool, and fls must not list it either.
					if s.lastPhase[p] || tskDeleted[p] {
						t.Errorf("deleted %s not listed (fls lists it: %v)", p, tskDeleted[p])
					}
					continue
				}
				l := ls[0]
				if l.file.Recoverable {
					recovered++
					if l.sha != sha(data) {
						t.Errorf("deleted %s: recovered sha %s, original %s", p, l.sha, sha(data))
					}
				} else if s.lastPhase[p] {
					t.Errorf("deleted %s (freed last, never overwritten) not recoverable: %s", p, l.file.Err)
				}
			}
			for p := range delByPath {
				if !tskDeleted[p] {
					t.Errorf("we list deleted %q, fls -d does not", p)
				}
			}
			nTSKDel := 0
			for _, e := range tsk {
				if e.deleted {
					nTSKDel++
					if len(delByPath[e.path]) == 0 {
						t.Errorf("fls lists deleted %q, we do not", e.path)
					}
					same := false
					for _, l := range delByPath[e.path] {
						same = same || l.file.Inode == e.inode
					}
					if !same {
						t.Errorf("deleted %q: no entry with fls's inode %d", e.path, e.inode)
					}
				}
			}
			// tsk_recover (deleted files only) writes every deleted file,
			// cut short where clusters were reused. Whatever it recovers
			// whole (the entry's full size), we recover with the same bytes.
			recDir := t.TempDir()
			testutil.Run(t, "tsk_recover", s.img, recDir)
			tskRec := 0
			filepath.WalkDir(recDir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, _ := os.ReadFile(p)
				rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, recDir+string(filepath.Separator)))
				whole, ok := false, false
				for _, l := range delByPath[rel] {
					if l.file.Size == int64(len(b)) {
						whole = true
						ok = ok || (l.file.Recoverable && l.sha == sha(b))
					}
				}
				if whole {
					tskRec++
					if !ok {
						t.Errorf("tsk_recover recovered %s whole (%d bytes), we did not recover the same", rel, len(b))
					}
				}
				return nil
			})
			if tskRec > recovered {
				t.Errorf("tsk_recover recovered %d files whole, we %d", tskRec, recovered)
			}
			t.Logf("fat%d: %d allocated entries (fls %d), %d deleted files written, %d recovered byte-exact, fls lists %d deleted, tsk_recover recovered %d whole",
				tc.bits, len(byPath), nAlloc, len(s.deleted), recovered, nTSKDel, tskRec)
			fragmented := 0
			for _, l := range byPath {
				if len(l.file.Runs) > 1 {
					fragmented++
				}
			}
			if fragmented == 0 {
				t.Errorf("no fragmented allocated file: the scenario should make B fill D1's holes")
			}
			t.Logf("fat%d: %d allocated files fragmented (content checked against icat and the originals)", tc.bits, fragmented)
			if recovered == len(s.deleted) {
				t.Errorf("every deleted file recovered: the scenario should have overwritten some")
			}
			un, _ := f.Unallocated()
			if len(un) == 0 {
				t.Errorf("no unallocated space after deleting files")
			}
			for _, l := range ours {
				if !l.file.Deleted || !l.file.Recoverable {
					continue
				}
				for _, r := range l.file.Runs {
					if !inRanges(un, r.Offset, r.Length) {
						t.Errorf("recoverable deleted %s run %+v is not inside unallocated space", l.file.Path, r)
					}
				}
			}
		})
	}
}

func inRanges(rs []fs.Range, off, n int64) bool {
	for _, r := range rs {
		if off >= r.Off && off+n <= r.Off+r.Len {
			return true
		}
	}
	return false
}

// bpb reads the layout numbers the corrupt tests need straight from the
// boot sector (offsets per the FAT specification).
type bpb struct {
	bps, spc, rsvd, nfats, fatSz, rootSec int64
}

func readBPB(t *testing.T, img []byte) bpb {
	b := bpb{
		bps:   int64(binary.LittleEndian.Uint16(img[11:])), // BPB_BytsPerSec
		spc:   int64(img[13]),                              // BPB_SecPerClus
		rsvd:  int64(binary.LittleEndian.Uint16(img[14:])), // BPB_RsvdSecCnt
		nfats: int64(img[16]),                              // BPB_NumFATs
		fatSz: int64(binary.LittleEndian.Uint16(img[22:])), // BPB_FATSz16
	}
	if b.fatSz == 0 {
		b.fatSz = int64(binary.LittleEndian.Uint32(img[36:])) // BPB_FATSz32
	}
	b.rootSec = (int64(binary.LittleEndian.Uint16(img[17:]))*32 + b.bps - 1) / b.bps
	return b
}

// entryOffset inverts TSK's inode numbering: byte offset of a directory
// entry = end of the FATs + (inode-3)*32.
func (b bpb) entryOffset(inode uint64) int64 {
	return (b.rsvd+b.nfats*b.fatSz)*b.bps + int64(inode-3)*32
}

// fat32Entry is the byte offset of FAT entry c in FAT copy i.
func (b bpb) fat32Entry(i int64, c uint32) int64 { return (b.rsvd+i*b.fatSz)*b.bps + int64(c)*4 }

// corruptBase builds a small FAT32 image with a few multi-cluster files in
// a nested directory and returns its bytes and the fls listing.
func corruptBase(t *testing.T) ([]byte, []tskEntry) {
	t.Helper()
	testutil.NeedTool(t, "mkfs.fat")
	img := filepath.Join(t.TempDir(), "base.img")
	testutil.Run(t, "mkfs.fat", "-F", "32", "-C", img, "40000")
	rng := rand.New(rand.NewPCG(7, 7))
	files := []genFile{{path: "top.bin"}, {path: "d1/mid.bin"}, {path: "d1/d2/leaf.bin"}, {path: "d1/d2/other.bin"}, {path: "z_last.bin"}}
	for i := range files {
		files[i].data = make([]byte, 4000+rng.IntN(4000)) // several 512-byte clusters each
		for j := range files[i].data {
			files[i].data[j] = byte(rng.Uint32())
		}
	}
	mcopyTree(t, img, writeTree(t, files))
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b, fls(t, img, 0)
}

func inodeOf(t *testing.T, es []tskEntry, path string) uint64 {
	for _, e := range es {
		if e.path == path {
			return e.inode
		}
	}
	t.Fatalf("%s not in fls output", path)
	return 0
}

func listCorrupt(t *testing.T, img []byte) (*FS, map[string]listed) {
	t.Helper()
	f, err := New(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]listed{}
	for _, l := range walkAll(t, f) {
		m[l.file.Path] = l
	}
	return f, m
}

func hasProblem(f *FS, sub string) bool {
	for _, p := range f.Problems() {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

func TestCorrupt(t *testing.T) {
	base, tsk := corruptBase(t)
	b := readBPB(t, base)
	clusterOf := func(img []byte, path string) uint32 {
		off := b.entryOffset(inodeOf(t, tsk, path))
		return uint32(binary.LittleEndian.Uint16(img[off+20:]))<<16 | uint32(binary.LittleEndian.Uint16(img[off+26:])) // DIR_FstClusHI, DIR_FstClusLO
	}
	t.Run("looping chain", func(t *testing.T) {
		img := bytes.Clone(base)
		c := clusterOf(img, "/top.bin")
		for i := range b.nfats { // second cluster of top.bin points back to its first
			binary.LittleEndian.PutUint32(img[b.fat32Entry(i, c+1):], c)
		}
		f, m := listCorrupt(t, img)
		if l := m["/top.bin"]; !strings.Contains(l.file.Err, "loops") || l.err == nil {
			t.Errorf("top.bin: err %q / %v, want a loop", l.file.Err, l.err)
		}
		if !hasProblem(f, "loops") {
			t.Errorf("no loop problem: %v", f.Problems())
		}
		if l := m["/d1/d2/leaf.bin"]; l.err != nil || l.sha == "" {
			t.Errorf("the rest must still list: leaf.bin %+v", l)
		}
	})
	t.Run("directory cycle", func(t *testing.T) {
		img := bytes.Clone(base)
		d2 := b.entryOffset(inodeOf(t, tsk, "/d1/d2"))
		root := binary.LittleEndian.Uint32(base[44:]) // BPB_RootClus
		binary.LittleEndian.PutUint16(img[d2+20:], uint16(root>>16))
		binary.LittleEndian.PutUint16(img[d2+26:], uint16(root)) // d1/d2 now points at the root
		f, m := listCorrupt(t, img)
		if !hasProblem(f, "directory cycle") {
			t.Errorf("no cycle problem: %v", f.Problems())
		}
		if _, ok := m["/z_last.bin"]; !ok {
			t.Errorf("entries after the cycle not listed")
		}
	})
	t.Run("fat copies differ", func(t *testing.T) {
		img := bytes.Clone(base)
		c := clusterOf(img, "/z_last.bin")
		binary.LittleEndian.PutUint32(img[b.fat32Entry(1, c):], 0) // FAT 2 says free; FAT 1 is right
		f, m := listCorrupt(t, img)
		if !hasProblem(f, "differs") {
			t.Errorf("FAT difference not reported: %v", f.Problems())
		}
		if want := fmt.Sprintf("%#x", b.fat32Entry(1, c)); !hasProblem(f, want) {
			t.Errorf("difference offset %s not named: %v", want, f.Problems())
		}
		if l := m["/z_last.bin"]; l.err != nil || l.file.Err != "" {
			t.Errorf("z_last.bin read from FAT 1 should be fine: %+v", l)
		}
	})
	t.Run("absurd size", func(t *testing.T) {
		img := bytes.Clone(base)
		off := b.entryOffset(inodeOf(t, tsk, "/d1/mid.bin"))
		binary.LittleEndian.PutUint32(img[off+28:], 0xffffffff) // DIR_FileSize
		_, m := listCorrupt(t, img)
		if l := m["/d1/mid.bin"]; l.file.Err == "" {
			t.Errorf("4 GiB file on a 20 MB volume not flagged: %+v", l.file)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		dataStart := (b.rsvd + b.nfats*b.fatSz) * b.bps
		img := bytes.Clone(base[:dataStart+20*b.bps]) // FATs and the first 20 data sectors survive
		f, m := listCorrupt(t, img)
		if !hasProblem(f, "truncated") {
			t.Errorf("truncation not reported: %v", f.Problems())
		}
		if len(m) == 0 {
			t.Errorf("nothing listed from a truncated image")
		}
	})
	t.Run("flipped bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		meta := (b.rsvd+b.nfats*b.fatSz)*b.bps + 64*b.bps // boot, FATs and the first directory clusters
		img := bytes.Clone(base)
		for range 30 {
			// Flip 64 bytes in place, list, then put them back: cloning the
			// 40 MB image per round would dominate the test's time.
			var at [64]int64
			var was [64]byte
			for i := range at {
				at[i] = rng.Int64N(meta)
				was[i] = img[at[i]]
				img[at[i]] ^= byte(1 + rng.IntN(255))
			}
			if f, err := New(bytes.NewReader(img), int64(len(img))); err == nil {
				walkAll(t, f) // must not panic or fail
				f.Unallocated()
			}
			for i := len(at) - 1; i >= 0; i-- {
				img[at[i]] = was[i]
			}
		}
	})
}

// tinyFAT builds a minimal FAT12 volume in memory for fuzz seeds (6 KiB,
// so the fuzzer mutates and minimises it quickly): 12 sectors of 512 bytes, one reserved sector, two 1-sector FATs, a
// 1-sector root directory holding a long-named file, a deleted long-named
// file and a directory with one file.
func tinyFAT() []byte {
	const bps = 512
	img := make([]byte, 12*bps)
	bs := img[:bps]
	copy(bs, []byte{0xeb, 0x3c, 0x90})
	copy(bs[3:], "mkfs.fat")
	binary.LittleEndian.PutUint16(bs[11:], bps) // bytes per sector
	bs[13] = 1                                  // sectors per cluster
	binary.LittleEndian.PutUint16(bs[14:], 1)   // reserved sectors
	bs[16] = 2                                  // FATs
	binary.LittleEndian.PutUint16(bs[17:], 16)  // root entries: one sector
	binary.LittleEndian.PutUint16(bs[19:], 12)  // total sectors: 8 data clusters
	bs[21] = 0xf8
	binary.LittleEndian.PutUint16(bs[22:], 1) // sectors per FAT
	bs[510], bs[511] = 0x55, 0xaa
	// FAT12 entries: 0,1 reserved; file clusters 2->3->EOC; dir 4 EOC; file in dir 5 EOC.
	setFAT := func(fat []byte, c, v int) {
		o := c + c/2
		if c&1 == 0 {
			fat[o] = byte(v)
			fat[o+1] = fat[o+1]&0xf0 | byte(v>>8)&0x0f
		} else {
			fat[o] = fat[o]&0x0f | byte(v<<4)
			fat[o+1] = byte(v >> 4)
		}
	}
	for _, fat := range [][]byte{img[bps : 2*bps], img[2*bps : 3*bps]} {
		setFAT(fat, 0, 0xff8)
		setFAT(fat, 1, 0xfff)
		setFAT(fat, 2, 3)
		setFAT(fat, 3, 0xfff)
		setFAT(fat, 4, 0xfff)
		setFAT(fat, 5, 0xfff)
	}
	root := img[3*bps : 4*bps]
	dataOff := 4 * bps
	sfn := func(e []byte, name string, attr byte, clus uint16, size uint32) {
		copy(e, name)
		e[11] = attr
		binary.LittleEndian.PutUint16(e[24:], 0x5a21) // a 2025 date
		binary.LittleEndian.PutUint16(e[26:], clus)
		binary.LittleEndian.PutUint32(e[28:], size)
	}
	lfn := func(e []byte, ord byte, long string, chk byte) {
		e[0] = ord
		e[11] = attrLFN
		e[13] = chk
		u := utf16.Encode([]rune(long))
		u = append(u, 0)
		for len(u) < 13 {
			u = append(u, 0xffff)
		}
		for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], u[i])
		}
	}
	lfn(root[0:], 0x41, "Hello World", sfnChecksum([]byte("HELLOW~1TXT")))
	sfn(root[32:], "HELLOW~1TXT", 0x20, 2, 700)
	lfn(root[64:], entryDeleted, "Gone file", sfnChecksum([]byte("GONEFI~1TXT")))
	sfn(root[96:], "\xe5ONEFI~1TXT", 0x20, 6, 100)
	sfn(root[128:], "SUBDIR     ", attrDirectory, 4, 0)
	sub := img[dataOff+2*bps : dataOff+3*bps]
	sfn(sub[0:], ".          ", attrDirectory, 4, 0)
	sfn(sub[32:], "..         ", attrDirectory, 0, 0)
	sfn(sub[64:], "INNER   TXT", 0x20, 5, 10)
	for i := range 700 {
		img[dataOff+i] = byte(i)
	}
	copy(img[dataOff+3*bps:], "inner file")
	copy(img[dataOff+4*bps:], strings.Repeat("deleted!", 13))
	return img
}

func TestTinyFAT(t *testing.T) {
	img := tinyFAT()
	_, m := listCorrupt(t, img)
	want := map[string]struct {
		deleted bool
		size    int64
	}{
		"/Hello World":      {false, 700},
		"/Gone file":        {true, 100},
		"/SUBDIR":           {false, 512}, // its one cluster, as TSK sizes directories
		"/SUBDIR/INNER.TXT": {false, 10},
	}
	if len(m) != len(want) {
		t.Errorf("listed %d, want %d: %v", len(m), len(want), m)
	}
	for p, w := range want {
		l, ok := m[p]
		if !ok || l.file.Deleted != w.deleted || l.file.Size != w.size || (l.file.Type == "file" && l.sha == "") {
			t.Errorf("%s: %+v", p, l)
		}
	}
	if got := m["/Gone file"].sha; got != sha([]byte(strings.Repeat("deleted!", 13)[:100])) {
		t.Errorf("deleted file content sha %s", got)
	}
}

func FuzzFAT(f *testing.F) {
	f.Add(tinyFAT())
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		fsys.Walk(context.Background(), func(file *fs.File) error {
			if r, err := fsys.Open(file); err == nil {
				io.Copy(io.Discard, r)
			}
			return nil
		})
		fsys.Unallocated()
		fsys.Problems()
	})
}

// TestBackupBootSector: with the boot sector's jump and BPB zeroed (bytes
// 0-35 of sector 0), the FAT32 backup boot sector at sector 6 opens the
// volume; the listing is unchanged and the damage reported.
func TestBackupBootSector(t *testing.T) {
	base, _ := corruptBase(t)
	_, want := listCorrupt(t, base)
	img := bytes.Clone(base)
	clear(img[:36])
	f, got := listCorrupt(t, img)
	if !hasProblem(f, "backup boot sector at 0xc00") {
		t.Errorf("backup use not reported: %v", f.Problems())
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, %d before the damage", len(got), len(want))
	}
	for p, l := range want {
		if got[p].sha != l.sha {
			t.Errorf("%s: sha %s, was %s", p, got[p].sha, l.sha)
		}
	}
	if k := fs.DetectFileSystem(bytes.NewReader(img), int64(len(img))); k != "fat32" {
		t.Errorf("detected %s", k)
	}
}

package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
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

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// layout of the test disk, in 512-byte sectors as sfdisk places them.
type part struct {
	node     int    // partition number (5+ logical)
	fat      string // mkfs.fat -F value, "ext4", or "" for none
	sizeMB   int
	sfType   string
	startSec int64
	files    map[string][]byte
}

var flsLine = regexp.MustCompile(`^(\S+) (\* )?(\d+)(?:\(realloc\))?:\t(.*)$`)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// tskAllocated returns fls's allocated regular files of the partition at
// offSec with icat's SHA-256 of each.
func tskAllocated(t *testing.T, img string, offSec int64) map[string]string {
	t.Helper()
	off := strconv.FormatInt(offSec, 10)
	out := testutil.Run(t, "fls", "-r", "-p", "-o", off, img)
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil || m[2] != "" || m[1] != "r/r" || strings.HasPrefix(m[4], "$") {
			continue
		}
		b, err := exec.Command(testutil.NeedTool(t, "icat"), "-o", off, img, m[3]).Output()
		if err != nil {
			t.Fatalf("icat %s: %v", m[3], err)
		}
		got["/"+m[4]] = sha(b)
	}
	return got
}

func TestDiskAgainstTSK(t *testing.T) {
	for _, tool := range []string{"sfdisk", "mkfs.fat", "mcopy", "mdel", "fls", "icat"} {
		testutil.NeedTool(t, tool)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	parts := []*part{
		{node: 1, fat: "16", sizeMB: 16, sfType: "e"},
		{node: 2, fat: "ext4", sizeMB: 8, sfType: "83"},
		{node: 5, fat: "32", sizeMB: 40, sfType: "c"},
		{node: 6, fat: "12", sizeMB: 4, sfType: "1"},
		{node: 7, fat: "", sizeMB: 4, sfType: "83"}, // never formatted: unknown, whole to the carver
		{node: 8, fat: "ntfs", sizeMB: 8, sfType: "7"},
	}
	script := "label: dos\n"
	for _, p := range parts {
		if p.node == 5 {
			script += ",,E\n"
		}
		script += fmt.Sprintf(",%dM,%s\n", p.sizeMB, p.sfType)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(96 << 20)
	f.Close()
	cmd := exec.Command(testutil.NeedTool(t, "sfdisk"), "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	// Start sectors from sfdisk's own dump ("disk.img5 : start=  ...").
	dump := testutil.Run(t, "sfdisk", "-d", img)
	re := regexp.MustCompile(`disk\.img(\d+) : start=\s*(\d+)`)
	for _, m := range re.FindAllStringSubmatch(string(dump), -1) {
		n, _ := strconv.Atoi(m[1])
		s, _ := strconv.ParseInt(m[2], 10, 64)
		for _, p := range parts {
			if p.node == n {
				p.startSec = s
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	deleted := map[string][]byte{}
	for _, p := range parts {
		if p.fat == "" {
			continue
		}
		src := t.TempDir()
		p.files = map[string][]byte{}
		for i := range 8 {
			name := fmt.Sprintf("p%d dir/File number %d.bin", p.node, i)
			if i%2 == 0 || p.fat == "ntfs" { // ntfscp cannot make directories
				name = fmt.Sprintf("top %d.txt", i)
			}
			b := make([]byte, rng.IntN(30000))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			p.files["/"+name] = b
			hp := filepath.Join(src, name)
			os.MkdirAll(filepath.Dir(hp), 0o755)
			os.WriteFile(hp, b, 0o644)
		}
		off := p.startSec * 512
		if p.fat == "ntfs" {
			// mkntfs formats a file from its start: build the volume alone,
			// add the files, then write it into the partition.
			vol := filepath.Join(dir, "ntfs.img")
			os.WriteFile(vol, nil, 0o644)
			os.Truncate(vol, int64(p.sizeMB)<<20)
			testutil.Run(t, "mkntfs", "-F", "-Q", "-q", "-s", "512", "-p", strconv.FormatInt(p.startSec, 10), vol)
			for name := range p.files {
				testutil.Run(t, "ntfscp", "-f", vol, filepath.Join(src, name), name)
			}
			testutil.Run(t, "dd", "if="+vol, "of="+img, "bs=512", "seek="+strconv.FormatInt(p.startSec, 10), "conv=notrunc", "status=none")
			continue
		}
		if p.fat == "ext4" {
			testutil.Run(t, "mkfs.ext4", "-q", "-F", "-E", fmt.Sprintf("offset=%d", off), "-d", src, img, fmt.Sprintf("%dk", p.sizeMB<<10))
			continue
		}
		testutil.Run(t, "mkfs.fat", "-F", p.fat, "--offset", strconv.FormatInt(p.startSec, 10), img, strconv.Itoa(p.sizeMB<<10))
		at := fmt.Sprintf("%s@@%d", img, off)
		ents, _ := os.ReadDir(src)
		args := []string{"-s", "-i", at}
		for _, e := range ents {
			args = append(args, filepath.Join(src, e.Name()))
		}
		testutil.Run(t, "mcopy", append(args, "::/")...)
		if p.node == 5 { // delete two files on the logical FAT32 partition
			for _, name := range []string{"/top 2.txt", fmt.Sprintf("/p%d dir/File number 3.bin", p.node)} {
				testutil.Run(t, "mdel", "-i", at, "::"+name)
				deleted[name] = p.files[name]
				delete(p.files, name)
			}
		}
	}
	testutil.Unchanged(t, img)

	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	d, err := OpenDisk(fh, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if d.Scheme != "mbr" || len(d.Partitions) != len(parts) {
		t.Fatalf("scheme %s, partitions %+v", d.Scheme, d.Partitions)
	}
	wantFS := map[int]string{1: "fat16", 2: "ext4", 5: "fat32", 6: "fat12", 7: "unknown", 8: "ntfs"}
	for _, p := range d.Partitions {
		if p.FileSystem != wantFS[p.Index] {
			t.Errorf("p%d: filesystem %s, want %s (%s)", p.Index, p.FileSystem, wantFS[p.Index], p.Error)
		}
	}
	type got struct {
		file *fs.File
		sha  string
	}
	ours := map[int]map[string]got{}
	err = d.Walk(context.Background(), func(pi int, f *fs.File) error {
		if ours[pi] == nil {
			ours[pi] = map[string]got{}
		}
		g := got{file: f}
		if f.Type == "file" && f.Recoverable {
			r, err := d.Open(pi, f)
			if err != nil {
				t.Errorf("p%d %s: %v", pi, f.Path, err)
				return nil
			}
			b, err := io.ReadAll(r)
			if err != nil {
				t.Errorf("p%d %s: %v", pi, f.Path, err)
			}
			g.sha = sha(b)
			// The runs are image offsets: reading them gives the same bytes.
			var viaRuns []byte
			for _, run := range f.Runs {
				buf := make([]byte, run.Length)
				if !run.Sparse { // sparse runs read as zeros
					fh.ReadAt(buf, run.Offset)
				}
				viaRuns = append(viaRuns, buf...)
			}
			if !bytes.Equal(viaRuns, b) {
				t.Errorf("p%d %s: byte runs do not give the content", pi, f.Path)
			}
		}
		ours[pi][f.Path] = g
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	un := d.Unallocated()
	for _, p := range parts {
		if p.fat == "" || p.fat == "ext4" || p.fat == "ntfs" {
			continue
		}
		tsk := tskAllocated(t, img, p.startSec)
		n := 0
		for path, g := range ours[p.node] {
			if g.file.Type == "file" && !g.file.Deleted {
				n++
				if tsk[path] != g.sha {
					t.Errorf("p%d %s: sha %s, icat %q", p.node, path, g.sha, tsk[path])
				}
				for _, r := range g.file.Runs {
					for _, u := range un {
						if r.Offset < u.Off+u.Len && u.Off < r.Offset+r.Length {
							t.Errorf("p%d %s: run %+v overlaps unallocated %+v", p.node, path, r, u)
						}
					}
				}
			}
		}
		if n != len(tsk) || n != len(p.files) {
			t.Errorf("p%d: %d allocated files, fls %d, written %d", p.node, n, len(tsk), len(p.files))
		}
		for path, b := range p.files {
			if ours[p.node][path].sha != sha(b) {
				t.Errorf("p%d %s: content differs from what was written", p.node, path)
			}
		}
	}
	// The ext4 partition goes through the ext reader: what was written is there.
	for path, b := range parts[1].files {
		if ours[2][path].sha != sha(b) {
			t.Errorf("p2 (ext4) %s: listed %v, content sha %q", path, ours[2][path].file != nil, ours[2][path].sha)
		}
	}
	// So does the NTFS one, through the ntfs reader.
	for path, b := range parts[5].files {
		if ours[8][path].sha != sha(b) {
			t.Errorf("p8 (ntfs) %s: listed %v, content sha %q", path, ours[8][path].file != nil, ours[8][path].sha)
		}
	}
	for path, b := range deleted {
		g, ok := ours[5][path]
		if !ok || !g.file.Deleted || !g.file.Recoverable || g.sha != sha(b) {
			t.Errorf("deleted p5 %s: listed %v %+v", path, ok, g.file)
		}
	}
	// Unallocated includes the gap before p1 and all of unformatted p7.
	p7 := d.Partition(7)
	covers := func(off, n int64) bool {
		for _, u := range un {
			if off >= u.Off && off+n <= u.Off+u.Len {
				return true
			}
		}
		return false
	}
	if !covers(512, parts[0].startSec*512-512) || !covers(p7.Start, p7.Size) {
		t.Errorf("unallocated %v misses the pre-partition gap or p7 %+v", un, p7)
	}
	t.Logf("%d partitions, unallocated ranges %d, problems %v", len(d.Partitions), len(un), d.Problems())

	// The same disk cut in the middle of the logical FAT32 partition (p5):
	// p1, p2 list as before; p5 lists what its directories still hold with
	// damage reported; nothing panics and every range stays inside the image.
	p5 := d.Partition(5)
	cut := p5.Start + p5.Size/2
	trunc := filepath.Join(dir, "truncated.img")
	whole, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trunc, whole[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	th, err := os.Open(trunc)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	td, err := OpenDisk(th, cut)
	if err != nil {
		t.Fatal(err)
	}
	n1 := 0
	err = td.Walk(context.Background(), func(pi int, f *fs.File) error {
		if pi == 1 && f.Type == "file" {
			n1++
		}
		if f.Type == "file" && f.Recoverable && f.Err == "" {
			r, err := td.Open(pi, f)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			if err != nil && pi != 5 {
				t.Errorf("p%d %s: %v", pi, f.Path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n1 != len(parts[0].files) {
		t.Errorf("truncated disk: p1 lists %d files, want %d", n1, len(parts[0].files))
	}
	if tp := td.Partition(5); !tp.Truncated || tp.FS == nil {
		t.Errorf("p5 on the truncated disk: %+v", tp)
	}
	// p6-p8 are described by EBRs that lie past the cut: not listed, and
	// the broken chain is reported with the EBR's offset.
	for _, i := range []int{6, 7, 8} {
		if tp := td.Partition(i); tp != nil {
			t.Errorf("p%d listed though its EBR is past the end: %+v", i, tp)
		}
	}
	if !regexp.MustCompile(`ebr at 0x[0-9a-f]+: fs: truncated`).MatchString(strings.Join(td.Problems(), "\n")) {
		t.Errorf("no problem naming the lost EBR: %v", td.Problems())
	}
	for _, u := range td.Unallocated() {
		if u.Off < 0 || u.Off+u.Len > cut {
			t.Errorf("unallocated %+v outside the %d-byte image", u, cut)
		}
	}
	if !strings.Contains(strings.Join(td.Problems(), "\n"), "truncated") {
		t.Errorf("truncation not reported: %v", td.Problems())
	}
}

// fuzzSeedDisk builds a 200 KiB MBR disk with a FAT12 primary partition and
// a FAT12 logical one (one file each, the second deleted), using the same
// tools as the tests; nil when they are missing.
func fuzzSeedDisk(f *testing.F) []byte {
	for _, tool := range []string{"sfdisk", "mkfs.fat", "mcopy", "mdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				return nil
			}
		}
	}
	dir := f.TempDir()
	img := filepath.Join(dir, "seed.img")
	os.WriteFile(img, make([]byte, 200<<10), 0o644)
	cmd := exec.Command(testutil.NeedTool(f, "sfdisk"), "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2, size=130, type=1\nstart=140, size=250, type=5\nstart=142, size=120, type=1\n")
	if err := cmd.Run(); err != nil {
		return nil
	}
	note := filepath.Join(dir, "note.txt")
	os.WriteFile(note, []byte("seed file"), 0o644)
	testutil.Run(f, "mkfs.fat", "-F", "12", "--offset", "2", img, "65")
	testutil.Run(f, "mkfs.fat", "-F", "12", "--offset", "142", img, "60")
	testutil.Run(f, "mcopy", "-i", img+"@@1024", note, "::/")
	testutil.Run(f, "mcopy", "-i", img+"@@72704", note, "::/")
	testutil.Run(f, "mdel", "-i", img+"@@72704", "::/note.txt")
	b, err := os.ReadFile(img)
	if err != nil {
		return nil
	}
	return b
}

// FuzzDisk runs the whole disk reading (tables, every reader, walk, open,
// unallocated) on mutated disks: no panic, every range inside the image.
func FuzzDisk(f *testing.F) {
	if seed := fuzzSeedDisk(f); seed != nil {
		f.Add(seed)
	}
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := OpenDisk(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		d.Walk(context.Background(), func(pi int, file *fs.File) error {
			if r, err := d.Open(pi, file); err == nil {
				io.Copy(io.Discard, io.LimitReader(r, 1<<20))
			}
			return nil
		})
		for _, r := range d.Unallocated() {
			if r.Off < 0 || r.Len <= 0 || r.Off+r.Len > int64(len(data)) {
				t.Fatalf("range %+v outside the %d-byte image", r, len(data))
			}
		}
		d.Problems()
	})
}

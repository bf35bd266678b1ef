package listing

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/internal/testutil"
)

// Layout of the image partitionedDisk builds, in 512-byte sectors.
const (
	fatStart, fatSectors = 2048, 80000 // mkfs.fat -C ... 40000 (KiB)
	extStart, extSectors = fatStart + fatSectors, 16384
	diskSectors          = extStart + extSectors + 2048
	extFiles             = 1500 // more than InFlight: order is kept across a full pipeline
)

var (
	diskOnce sync.Once
	diskImg  string            // shared by the tests; never written after it is built
	diskWant map[string][]byte // content written, by "pN:/path"
	diskErr  error
	diskDir  string
)

// partitionedDisk returns an MBR disk image holding a FAT32 volume (a
// nested long-named file, an empty file, a file of more than BigFile bytes,
// a deleted file) and an ext4 volume of extFiles small files, built once
// for all tests with mkfs.fat, mtools, mkfs.ext4 and sfdisk, and the
// content written to each "pN:/path".
func partitionedDisk(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	for _, tool := range []string{"mkfs.fat", "mcopy", "mdel", "mkfs.ext4", "sfdisk"} {
		testutil.NeedTool(t, tool)
	}
	diskOnce.Do(func() {
		diskDir, diskErr = os.MkdirTemp("", "listing-test-")
		if diskErr == nil {
			diskImg, diskWant, diskErr = buildDisk(t, diskDir)
		}
	})
	if diskErr != nil {
		t.Fatal(diskErr)
	}
	return diskImg, diskWant
}

func TestMain(m *testing.M) {
	code := m.Run()
	if diskDir != "" {
		os.RemoveAll(diskDir)
	}
	os.Exit(code)
}

func run(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

func buildDisk(t *testing.T, dir string) (string, map[string][]byte, error) {
	want := map[string][]byte{}
	tool := func(name string) string { return testutil.NeedTool(t, name) }

	fat := filepath.Join(dir, "fat.img")
	if err := run("", tool("mkfs.fat"), "-F", "32", "-C", fat, fmt.Sprint(fatSectors/2)); err != nil {
		return "", nil, err
	}
	src := filepath.Join(dir, "fat")
	files := map[string][]byte{
		"/Some Dir/A long file name.txt": bytes.Repeat([]byte("evidence "), 500),
		"/empty":                         {},
		"/big.bin":                       bytes.Repeat([]byte("0123456789abcdef"), BigFile/16+256),
		"/gone later.bin":                bytes.Repeat([]byte{1, 2, 3}, 3000),
	}
	for p, b := range files {
		hp := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(hp, b, 0o644); err != nil {
			return "", nil, err
		}
		want["p1:"+p] = b
	}
	if err := run("", tool("mcopy"), "-s", "-i", fat, filepath.Join(src, "Some Dir"), filepath.Join(src, "empty"),
		filepath.Join(src, "big.bin"), filepath.Join(src, "gone later.bin"), "::/"); err != nil {
		return "", nil, err
	}
	if err := run("", tool("mdel"), "-i", fat, "::/gone later.bin"); err != nil {
		return "", nil, err
	}

	ext := filepath.Join(dir, "ext.img")
	esrc := filepath.Join(dir, "ext")
	if err := os.MkdirAll(filepath.Join(esrc, "d"), 0o755); err != nil {
		return "", nil, err
	}
	for i := range extFiles {
		b := []byte(strings.Repeat(fmt.Sprintf("row %d\n", i), i%50+1))
		if err := os.WriteFile(filepath.Join(esrc, "d", fmt.Sprintf("f%04d", i)), b, 0o644); err != nil {
			return "", nil, err
		}
		want[fmt.Sprintf("p2:/d/f%04d", i)] = b
	}
	if err := run("", tool("mkfs.ext4"), "-q", "-N", fmt.Sprint(extFiles+64), "-d", esrc, ext, fmt.Sprintf("%dk", extSectors/2)); err != nil {
		return "", nil, err
	}

	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", nil, err
	}
	if err := os.Truncate(img, diskSectors*512); err != nil {
		return "", nil, err
	}
	script := fmt.Sprintf("label: dos\nstart=%d, size=%d, type=c\nstart=%d, size=%d, type=83\n", fatStart, fatSectors, extStart, extSectors)
	if err := run(script, tool("sfdisk"), "-q", img); err != nil {
		return "", nil, err
	}
	out, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		return "", nil, err
	}
	defer out.Close()
	for _, v := range []struct {
		path string
		at   int64 // sector
	}{{fat, fatStart}, {ext, extStart}} {
		b, err := os.ReadFile(v.path)
		if err != nil {
			return "", nil, err
		}
		if _, err := out.WriteAt(b, v.at*512); err != nil {
			return "", nil, err
		}
	}
	return img, want, out.Close()
}

func openDisk(t *testing.T, img string) *fs.Disk {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	disk, err := probe.OpenDisk(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return disk
}

// row is what a test compares of an entry.
type row struct {
	key               string // "pN:/path"
	typ               string
	deleted           bool
	sha256, md5, sha1 string // "" when not hashed
	err               string
}

func rowOf(e *Entry) row {
	r := row{key: fmt.Sprintf("p%d:%s", e.Partition, e.Path), typ: e.Type, deleted: e.Deleted, err: e.Err}
	if e.SHA256 != nil {
		r.sha256, r.md5, r.sha1 = *e.SHA256, *e.MD5, *e.SHA1
	}
	return r
}

func hexSum(h hash.Hash, b []byte) string {
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// serial lists disk the plain way, one file at a time on this goroutine,
// hashing with the standard library: the truth Walk must match.
func serial(t *testing.T, disk *fs.Disk) []row {
	t.Helper()
	var rows []row
	err := disk.Walk(context.Background(), func(part int, f *fs.File) error {
		r := rowOf(&Entry{Partition: part, File: f})
		if f.Type == "file" && f.Recoverable {
			rd, err := disk.Open(part, f)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rd)
			if err != nil {
				return fmt.Errorf("%s: %w", r.key, err)
			}
			r.sha256, r.md5, r.sha1 = hexSum(sha256.New(), b), hexSum(md5.New(), b), hexSum(sha1.New(), b)
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func walkRows(t *testing.T, disk *fs.Disk, opts Options) ([]row, Counts) {
	t.Helper()
	var rows []row
	var c Counts
	got, err := Walk(context.Background(), disk, opts, func(e *Entry) error {
		rows = append(rows, rowOf(e))
		c.Add(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("Walk counted %+v, the entries it emitted count %+v", got, c)
	}
	return rows, got
}

func diffRows(t *testing.T, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestWalk: with any number of workers, Walk emits what a serial walk
// finds, in the same order, with the same digests, and every file written
// to the image is listed with the digest of what was written.
func TestWalk(t *testing.T) {
	img, written := partitionedDisk(t)
	testutil.Unchanged(t, img)
	disk := openDisk(t, img)
	want := serial(t, disk)
	for _, workers := range []int{1, 3, 0} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			got, c := walkRows(t, disk, Options{Workers: workers})
			diffRows(t, got, want)
			byKey := map[string]row{}
			for _, r := range got {
				byKey[r.key] = r
			}
			for k, b := range written {
				if r := byKey[k]; r.sha256 != hexSum(sha256.New(), b) || r.md5 != hexSum(md5.New(), b) {
					t.Errorf("%s: %+v, want content of %d bytes", k, r, len(b))
				}
			}
			if !byKey["p1:/gone later.bin"].deleted {
				t.Error("/gone later.bin not listed as deleted")
			}
			if c.Files < len(written) || c.Dirs < 2 || c.Deleted < 1 || c.Recoverable < 1 || c.Hashed < len(written) || c.Errors != 0 {
				t.Errorf("counts %+v", c)
			}
		})
	}
}

func TestWalkDeletedOnly(t *testing.T) {
	img, written := partitionedDisk(t)
	disk := openDisk(t, img)
	var want []row
	for _, r := range serial(t, disk) {
		if r.deleted {
			want = append(want, r)
		}
	}
	got, c := walkRows(t, disk, Options{DeletedOnly: true, Workers: 2})
	diffRows(t, got, want)
	found := false
	for _, r := range got {
		if r.key == "p1:/gone later.bin" {
			found = r.sha256 == hexSum(sha256.New(), written[r.key])
		}
	}
	if !found || c.Deleted != len(got) || c.Recoverable < 1 {
		t.Errorf("deleted only: %+v, counts %+v", got, c)
	}
}

func TestWalkNoHash(t *testing.T) {
	img, _ := partitionedDisk(t)
	disk := openDisk(t, img)
	want := serial(t, disk)
	for i := range want {
		want[i].sha256, want[i].md5, want[i].sha1 = "", "", ""
	}
	got, c := walkRows(t, disk, Options{NoHash: true})
	diffRows(t, got, want)
	if c.Hashed != 0 || c.Recoverable != 0 {
		t.Errorf("counts %+v with NoHash", c)
	}
}

// TestWalkStopsOnEmitError: the error comes back, emit is not called
// again, and the counts are those of the entries emit was given.
func TestWalkStopsOnEmitError(t *testing.T) {
	img, _ := partitionedDisk(t)
	disk := openDisk(t, img)
	stop := errors.New("stop")
	calls := 0
	c, err := Walk(context.Background(), disk, Options{Workers: 2}, func(*Entry) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 || c.Files+c.Dirs != 10 {
		t.Errorf("err %v after %d calls, counts %+v", err, calls, c)
	}
}

// TestWalkCancelled: once ctx is cancelled nothing more is emitted (so no
// entry comes out unhashed for that reason) and Walk returns ctx.Err().
func TestWalkCancelled(t *testing.T) {
	img, _ := partitionedDisk(t)
	disk := openDisk(t, img)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err := Walk(ctx, disk, Options{Workers: 2}, func(e *Entry) error {
		calls++
		if e.Type == "file" && e.Recoverable && e.SHA256 == nil {
			t.Errorf("%s emitted without digests: %q", e.Path, e.Err)
		}
		if calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 5 {
		t.Errorf("err %v after %d calls", err, calls)
	}
}

func TestWalkNegativeWorkers(t *testing.T) {
	if _, err := Walk(context.Background(), &fs.Disk{}, Options{Workers: -1}, nil); !errors.Is(err, ErrWorkers) {
		t.Errorf("got %v, want ErrWorkers", err)
	}
}

// TestWalkTruncated: a file whose content lies past the end of a cut-short
// image is listed with the reason in Err and no digests; the others are
// hashed, and the walk goes on.
func TestWalkTruncated(t *testing.T) {
	img, written := partitionedDisk(t)
	disk := openDisk(t, img)
	var big *fs.File
	disk.Walk(context.Background(), func(part int, f *fs.File) error {
		if part == 1 && f.Path == "/big.bin" {
			big = f
		}
		return nil
	})
	if big == nil || len(big.Runs) == 0 {
		t.Fatalf("/big.bin not found or without runs: %+v", big)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cut := big.Runs[0].Offset + 4096 // image offset: inside big.bin's first run
	disk, err = probe.OpenDisk(bytes.NewReader(b[:cut]), cut)
	if err != nil {
		t.Fatal(err)
	}
	var gotBig, gotSmall *Entry
	c, err := Walk(context.Background(), disk, Options{}, func(e *Entry) error {
		switch fmt.Sprintf("p%d:%s", e.Partition, e.Path) {
		case "p1:/big.bin":
			gotBig = e
		case "p1:/Some Dir/A long file name.txt":
			gotSmall = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotBig == nil || gotBig.SHA256 != nil || gotBig.Err == "" {
		t.Errorf("cut file: %+v", gotBig)
	}
	if gotSmall == nil || gotSmall.SHA256 == nil || *gotSmall.SHA256 != hexSum(sha256.New(), written["p1:/Some Dir/A long file name.txt"]) {
		t.Errorf("whole file: %+v", gotSmall)
	}
	if c.Errors < 1 {
		t.Errorf("counts %+v", c)
	}
}

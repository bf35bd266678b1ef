package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/internal/testutil"
)

// exfatSeed writes the exFAT test volume of package exfat (1 MiB, written
// with exfat-fuse: nested Chinese names, an empty file, a contiguous and
// two interleaved files, a deleted one) to dir and returns its path.
func exfatSeed(t *testing.T, dir string) string {
	t.Helper()
	fh, err := os.Open(filepath.Join("..", "..", "ingest", "fs", "exfat", "testdata", "seed.img.gz"))
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
	img := filepath.Join(dir, "exfat.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLsExfat: `evidx ls --json` lists an exFAT volume, bare and as an
// MBR partition, as fls does (paths, inodes, deleted marks) with icat's
// content for every file, the deleted one recovered; `cat` extracts by
// path.
func TestLsExfat(t *testing.T) {
	testutil.NeedTool(t, "icat")
	dir := t.TempDir()
	bare := exfatSeed(t, dir)
	vol, err := os.ReadFile(bare)
	if err != nil {
		t.Fatal(err)
	}
	// The same volume at 1 MiB in an MBR-partitioned image.
	mbr := filepath.Join(dir, "mbr.img")
	if err := os.WriteFile(mbr, append(make([]byte, 1<<20), vol...), 0o644); err != nil {
		t.Fatal(err)
	}
	sf := testutil.NeedTool(t, "sfdisk")
	cmd := exec.Command(sf, "-q", mbr)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=2048, type=7\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	testutil.Unchanged(t, bare, mbr)

	want := map[string]bool{ // path -> deleted
		"/$ALLOC_BITMAP": false, "/$UPCASE_TABLE": false, "/目录": false, "/目录/sub": false,
		"/目录/sub/这是一个很长的中文文件名超过十五个字符.txt": false,
		"/empty": false, "/contig.bin": false, "/fa": false, "/fb": false, "/gone.bin": true,
	}
	for _, img := range []string{bare, mbr} {
		out, err := lsRun(t, "ls", "--json", img)
		if err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		var res struct {
			Partitions []struct {
				FileSystem string `json:"filesystem"`
				Error      string `json:"error"`
			} `json:"partitions"`
			Files []struct {
				Path        string  `json:"path"`
				Type        string  `json:"type"`
				Inode       uint64  `json:"inode"`
				Deleted     bool    `json:"deleted"`
				Recoverable bool    `json:"recoverable"`
				SHA256      *string `json:"sha256"`
			} `json:"files"`
			Problems []string `json:"problems"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(res.Partitions) != 1 || res.Partitions[0].FileSystem != "exfat" || res.Partitions[0].Error != "" {
			t.Fatalf("%s: partitions %+v", img, res.Partitions)
		}
		if len(res.Problems) != 0 {
			t.Errorf("%s: problems %q", img, res.Problems)
		}
		seen := map[string]bool{}
		for _, f := range res.Files {
			del, ok := want[f.Path]
			if !ok || seen[f.Path] || f.Deleted != del {
				t.Errorf("%s: unexpected %+v", img, f)
				continue
			}
			seen[f.Path] = true
			if f.Type != "file" {
				continue
			}
			sum := sha256.Sum256(testutil.Run(t, "icat", "-f", "exfat", bare, strconv.FormatUint(f.Inode, 10)))
			if f.SHA256 == nil || *f.SHA256 != hex.EncodeToString(sum[:]) || !f.Recoverable {
				t.Errorf("%s: %s (inode %d): sha256 %v, icat %x", img, f.Path, f.Inode, f.SHA256, sum)
			}
		}
		if len(seen) != len(want) {
			t.Errorf("%s: listed %v, want %v", img, seen, want)
		}
		got, err := lsRun(t, "cat", img, "/目录/sub/这是一个很长的中文文件名超过十五个字符.txt")
		if err != nil || !bytes.Equal(got, []byte("hello exfat\n")) {
			t.Errorf("%s: cat: %q %v", img, got, err)
		}
	}
}

// TestCarveExfat: carve searches the exFAT volume's free clusters (from
// its allocation bitmap) and not its files: a PNG put in free clusters is
// carved byte-identical, one written over an allocated file's clusters is
// not.
func TestCarveExfat(t *testing.T) {
	img := exfatSeed(t, t.TempDir())
	out, err := lsRun(t, "ls", "--json", "--no-hash", img)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Files []struct {
			Path string `json:"path"`
			Runs []struct {
				Offset int64 `json:"img_offset"`
				Length int64 `json:"len"`
			} `json:"byte_runs"`
		} `json:"files"`
		Unallocated []struct {
			Off int64 `json:"offset"`
			Len int64 `json:"length"`
		} `json:"unallocated"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	mk := func(seed uint64) []byte {
		rng := rand.New(rand.NewPCG(seed, seed))
		m := image.NewRGBA(image.Rect(0, 0, 16, 16))
		for i := range m.Pix {
			m.Pix[i] = byte(rng.Uint32())
		}
		var b bytes.Buffer
		png.Encode(&b, m)
		return b.Bytes()
	}
	free, used := mk(1), mk(2)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var at int64 = -1
	for _, u := range res.Unallocated {
		// Well past the seed's own deleted file, which carve also searches.
		if s := (max(u.Off, 64<<10) + 511) &^ 511; s+int64(len(free)) <= u.Off+u.Len {
			at = s
			break
		}
	}
	if at < 0 {
		t.Fatalf("no free range for %d bytes: %+v", len(free), res.Unallocated)
	}
	copy(b[at:], free)
	placed := false
	for _, f := range res.Files {
		if f.Path == "/contig.bin" {
			if len(f.Runs) != 1 || f.Runs[0].Length < int64(len(used)) {
				t.Fatalf("contig.bin runs %+v", f.Runs)
			}
			copy(b[f.Runs[0].Offset:], used)
			placed = true
		}
	}
	if !placed {
		t.Fatal("/contig.bin not listed")
	}
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, img)
	stdout, err := lsRun(t, "carve", img, "--out", filepath.Join(t.TempDir(), "out"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var cr struct {
		Mode   string `json:"mode"`
		Carved []struct {
			SHA256 string `json:"sha256"`
		} `json:"carved"`
	}
	if err := json.Unmarshal(stdout, &cr); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range cr.Carved {
		got[c.SHA256] = true
	}
	sum := func(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:]) }
	if cr.Mode != "unallocated" || !got[sum(free)] || got[sum(used)] {
		t.Errorf("mode %s, carved %v: free PNG %v, PNG in a file %v", cr.Mode, got, got[sum(free)], got[sum(used)])
	}
}

// TestTzExfat: an exFAT entry whose UTC offsets are not valid holds local
// time: --tz names its zone (as for FAT); without it the time is read as
// UTC and the listing's problems say so.
func TestTzExfat(t *testing.T) {
	img := exfatSeed(t, t.TempDir())
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	mtime := func(argv ...string) (string, []string) {
		out, err := lsRun(t, append(argv, "ls", "--json", "--no-hash", img)...)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Files []struct {
				Path  string `json:"path"`
				Mtime string `json:"mtime"`
			} `json:"files"`
			Problems []string `json:"problems"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Files {
			if f.Path == "/fa" {
				return f.Mtime, res.Problems
			}
		}
		t.Fatal("/fa not listed")
		return "", nil
	}
	before, _ := mtime()

	// The entry set of /fa (TSK inode 223: entry 220 of the cluster heap)
	// loses its UTC offsets; its set checksum is made again.
	heap := int64(binary.LittleEndian.Uint32(b[88:])) << b[108]
	set := b[heap+220*32 : heap+223*32]
	if set[0] != 0x85 || set[23] != 0x80|32 {
		t.Fatalf("entry of /fa: type %#x, UTC offset %#x", set[0], set[23])
	}
	set[22], set[23], set[24] = 0, 0, 0
	var sum uint16
	for i, c := range set {
		if i != 2 && i != 3 {
			sum = (sum>>1 | sum<<15) + uint16(c)
		}
	}
	binary.LittleEndian.PutUint16(set[2:], sum)
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}

	utc, problems := mtime()
	inTz, tzProblems := mtime("--tz", "Asia/Shanghai")
	if inTz != before {
		t.Errorf("--tz Asia/Shanghai: mtime %s, %s with the offset", inTz, before)
	}
	bt, _ := time.Parse(time.RFC3339Nano, before)
	ut, _ := time.Parse(time.RFC3339Nano, utc)
	if ut.Sub(bt) != 8*time.Hour {
		t.Errorf("without --tz: mtime %s, want the local time %s+8h read as UTC", utc, before)
	}
	if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "without a UTC offset") }) || len(tzProblems) != 0 {
		t.Errorf("problems without --tz %q, with %q", problems, tzProblems)
	}
}

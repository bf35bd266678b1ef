package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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

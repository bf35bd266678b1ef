package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// diskUsage is the bytes a directory tree takes on disk (holes excluded).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		var st syscall.Stat_t
		if err == nil && syscall.Lstat(p, &st) == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// TestSparseFileStaysSparse: a 2 GiB sparse file in a 48 MB ext4 volume is
// stored and exported with its holes (the case stays under 300 MB), while
// its hash is of the full logical content and verify passes.
func TestSparseFileStaysSparse(t *testing.T) {
	testutil.NeedTool(t, "mkfs.ext4")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	big := filepath.Join(src, "sparse.bin")
	f, _ := os.Create(big)
	f.WriteAt([]byte("head of a sparse file"), 0)
	f.WriteAt([]byte("middle"), 1<<30)
	f.Truncate(2 << 30)
	f.Close()
	want := testutil.SHA256File(t, big)
	img := filepath.Join(dir, "vol.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "48M")
	testutil.Unchanged(t, img)
	cs := filepath.Join(dir, "case")
	if r := runCLI(t, "case", "init", cs, "--case-number", "S-1", "--examiner", "X"); r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	if r := runCLI(t, "evidence", "add", cs, img, "--id", "EV1", "--no-scan", "--no-carve"); r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	if used := diskUsage(t, cs); used > 300<<20 {
		t.Errorf("case takes %d bytes on disk, want under 300 MB", used)
	}
	out := filepath.Join(dir, "export")
	if r := runCLI(t, "export", cs, "--files", out); r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	if used := diskUsage(t, out); used > 300<<20 {
		t.Errorf("export takes %d bytes on disk, want under 300 MB", used)
	}
	var found bool
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "sparse.bin" {
			found = true
			if got := testutil.SHA256File(t, p); got != want {
				t.Errorf("exported %s: sha256 %s, want %s", p, got, want)
			}
		}
		return nil
	})
	if !found {
		t.Error("sparse.bin not exported")
	}
	if r := runCLI(t, "verify", cs); r.err != nil {
		t.Errorf("verify: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

package layer

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/internal/testutil"
)

// walkImage lists every file of the image at path, layers included, with
// its content.
func walkImage(t *testing.T, path string) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	disk, err := probe.OpenDisk(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	problems, err := Walk(context.Background(), disk, func(lf *File) error {
		if lf.Type != "file" {
			return nil
		}
		r, err := lf.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		got[lf.Path] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, problems
}

// TestFATImageInsideExt4: a FAT image stored as a file on ext4 opens as a
// layer; its files have paths through the image file and their content.
func TestFATImageInsideExt4(t *testing.T) {
	testutil.NeedTool(t, "mkfs.fat")
	testutil.NeedTool(t, "mcopy")
	testutil.NeedTool(t, "mkfs.ext4")
	dir := t.TempDir()
	inner := filepath.Join(dir, "stick.img")
	testutil.Run(t, "mkfs.fat", "-C", inner, "4096")
	leak := filepath.Join(dir, "leak.csv")
	body := strings.Repeat("name,phone\nzhang,13812345678\n", 4000)
	os.WriteFile(leak, []byte(body), 0o600)
	testutil.Run(t, "mcopy", "-i", inner, leak, "::/leak.csv")
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "backup"), 0o755)
	innerBytes, _ := os.ReadFile(inner)
	os.WriteFile(filepath.Join(root, "backup", "stick.img"), innerBytes, 0o600)
	os.WriteFile(filepath.Join(root, "note.txt"), []byte("top level"), 0o600)
	outer := filepath.Join(dir, "disk.ext4")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, outer, "16M")
	testutil.Unchanged(t, outer)

	got, problems := walkImage(t, outer)
	if got["/note.txt"] != "top level" {
		t.Errorf("top-level file: %q", got["/note.txt"])
	}
	var innerPath string
	for p := range got {
		if strings.HasPrefix(p, "/backup/stick.img/p") && strings.HasSuffix(p, ":/LEAK.CSV") || strings.HasSuffix(p, ":/leak.csv") {
			innerPath = p
		}
	}
	if innerPath == "" || got[innerPath] != body {
		t.Fatalf("no leak.csv through the FAT layer (problems %v): %v", problems, keys(got))
	}
	if len(got["/backup/stick.img"]) != len(innerBytes) {
		t.Errorf("the image file itself is listed too: %d bytes", len(got["/backup/stick.img"]))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

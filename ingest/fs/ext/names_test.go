package ext

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestNamesNeverSplit: a directory entry whose name holds '/' stays one
// path component (escaped %2F, never taking another file's path), and a
// planted entry named ".." is listed (%2E%2E), not dropped; both named in
// the problems. The names are patched into a real mkfs.ext4 image.
func TestNamesNeverSplit(t *testing.T) {
	testutil.NeedTool(t, "mkfs.ext4")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	os.MkdirAll(filepath.Join(src, "z"), 0o755)
	for name, body := range map[string]string{"zQtxt": "planted", "z/txt": "real", "QQ": "dots", "100%": "percent"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(tmp, "fs.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-d", src, img, "2048k")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// Directory entries: inode(4) rec_len(2) name_len(1) type(1) name.
	patch := func(from, to string) {
		i := bytes.Index(b, append([]byte{byte(len(from)), 1}, from...))
		if i < 0 {
			t.Fatalf("entry %q not found in the image", from)
		}
		copy(b[i+2:], to)
	}
	patch("zQtxt", "z/txt")
	patch("QQ", "..")
	_, files, err := walkBytes(t, b)
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := walkBytes(t, b)
	for path, want := range map[string]string{"/z%2Ftxt": "planted", "/z/txt": "real", "/%2E%2E": "dots", "/100%25": "percent"} {
		f, ok := files[path]
		if !ok {
			t.Errorf("%s not listed; listed %v", path, keys(files))
			continue
		}
		r, err := e.Open(f)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		var got bytes.Buffer
		got.ReadFrom(r)
		if got.String() != want {
			t.Errorf("%s holds %q, want %q", path, got.String(), want)
		}
	}
	for _, p := range []string{`"z/txt" is no valid component`, `".." is no valid component`} {
		if !hasProblem(e, p) {
			t.Errorf("no problem %q in %q", p, e.Problems())
		}
	}
}

package zipfs

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// walk lists the archive at p: path -> SHA-256 of Open's content ("" for
// directories), and the files as Walk gave them.
func walk(t *testing.T, p string) (map[string]string, map[string]*fs.File, *FS) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	zfs, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open %s: %v", p, err)
	}
	z := zfs.(*FS)
	sums, files := map[string]string{}, map[string]*fs.File{}
	err = z.Walk(context.Background(), func(x *fs.File) error {
		files[x.Path] = x
		if x.Type != "file" || !x.Recoverable {
			sums[x.Path] = ""
			return nil
		}
		r, err := z.Open(x)
		if err != nil {
			sums[x.Path] = "error: " + err.Error()
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			sums[x.Path] = "error: " + err.Error()
			return nil
		}
		sums[x.Path] = sum(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums, files, z
}

// TestRealZip: an archive made by Info-ZIP's zip with stored and deflated
// members in nested directories, an empty file and a member bigger than the
// in-memory bound: every member lists with the SHA-256 of the file zipped,
// stored members have their byte run in the archive, and random access
// works where Open promises it. The archive is unchanged.
func TestRealZip(t *testing.T) {
	testutil.NeedTool(t, "zip")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	put := func(name string, b []byte) {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, b, 0o600)
		want["/"+name] = sum(b)
	}
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	put("a/users.csv", []byte(strings.Repeat("name,phone\nzhang,13812345678\n", 500)))
	put("a/b/random.bin", random) // stored (zip -0)
	put("empty.txt", nil)
	put("客户/名单.txt", []byte("王五 13900001111\n"))
	big := bytes.Repeat([]byte("0123456789abcdef"), (maxBuffer+1<<20)/16)
	put("big.txt", big)
	zp := filepath.Join(dir, "t.zip")
	cmd := exec.Command("zip", "-q", "-r", zp, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v\n%s", err, out)
	}
	cmd = exec.Command("zip", "-q", "-0", zp, "a/b/random.bin") // stored
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip -0: %v\n%s", err, out)
	}
	testutil.Unchanged(t, zp)
	sums, files, z := walk(t, zp)
	for p, w := range want {
		if sums[p] != w {
			t.Errorf("%s: sha256 %q, want %s", p, sums[p], w)
		}
	}
	for _, d := range []string{"/a", "/a/b", "/客户"} {
		if f := files[d]; f == nil || f.Type != "dir" {
			t.Errorf("directory %s: %+v", d, f)
		}
	}
	img, _ := os.ReadFile(zp)
	rb := files["/a/b/random.bin"]
	if len(rb.Runs) != 1 || sum(img[rb.Runs[0].Offset:rb.Runs[0].Offset+rb.Runs[0].Length]) != want["/a/b/random.bin"] {
		t.Errorf("stored member's run %+v does not hold its bytes", rb.Runs)
	}
	for _, p := range []string{"/a/b/random.bin", "/a/users.csv"} {
		r, _ := z.Open(files[p])
		ra, ok := r.(io.ReaderAt)
		if !ok {
			t.Fatalf("%s: no random access", p)
		}
		b := make([]byte, 100)
		if _, err := ra.ReadAt(b, 1234); err != nil {
			t.Fatalf("%s: ReadAt: %v", p, err)
		}
	}
	if r, _ := z.Open(files["/big.txt"]); r == nil {
		t.Error("big member not opened")
	} else if _, ok := r.(io.ReaderAt); ok {
		t.Error("a deflated member over the bound was read into memory")
	}
	if len(z.Problems()) != 0 {
		t.Errorf("problems on a clean archive: %q", z.Problems())
	}
}

// TestHostileZip: names that climb ("../x", "/abs"), a bomb and an
// encrypted member become problems; nothing escapes, nothing panics.
func TestHostileZip(t *testing.T) {
	testutil.NeedTool(t, "zip")
	dir := t.TempDir()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, n := range []string{"../../etc/passwd", "/abs/x", "ok/../../y"} {
		f, _ := w.Create(n)
		f.Write([]byte(n))
	}
	w.Close()
	hp := filepath.Join(dir, "hostile.zip")
	os.WriteFile(hp, b.Bytes(), 0o600)
	sums, files, z := walk(t, hp)
	for p := range files {
		if strings.Contains(p, "/../") || strings.HasPrefix(p, "../") || strings.Count(p, "/..") > 0 && !strings.Contains(p, "%2E%2E") {
			t.Errorf("path %q climbs", p)
		}
	}
	if sums["/%2E%2E/%2E%2E/etc/passwd"] != sum([]byte("../../etc/passwd")) {
		t.Errorf("escaped member not read: %v", sums)
	}
	if !strings.Contains(strings.Join(z.Problems(), "\n"), "escaped") {
		t.Errorf("escaped names not named: %q", z.Problems())
	}

	// A real bomb: 200 MiB of zeros deflate to about 200 KiB.
	zeros := filepath.Join(dir, "zeros")
	f, _ := os.Create(zeros)
	f.Truncate(200 << 20)
	f.Close()
	bp := filepath.Join(dir, "bomb.zip")
	testutil.Run(t, "zip", "-q", "-j", "-9", bp, zeros)
	sums, _, z = walk(t, bp)
	if !strings.Contains(sums["/zeros"], "zip bomb") || !strings.Contains(strings.Join(z.Problems(), "\n"), "zip bomb") {
		t.Errorf("bomb: %q, problems %q", sums["/zeros"], z.Problems())
	}

	os.WriteFile(filepath.Join(dir, "s.txt"), []byte("secret 13800000000\n"), 0o600)
	ep := filepath.Join(dir, "enc.zip")
	testutil.Run(t, "zip", "-q", "-j", "-P", "pw", ep, filepath.Join(dir, "s.txt"))
	_, files, z = walk(t, ep)
	if f := files["/s.txt"]; f == nil || f.Recoverable || !strings.Contains(strings.Join(z.Problems(), "\n"), "encrypted") {
		t.Errorf("encrypted member: %+v, problems %q", f, z.Problems())
	}
}

// TestDocumentRefused: an OOXML file is a document, not an archive.
func TestDocumentRefused(t *testing.T) {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("[Content_Types].xml")
	f.Write([]byte("<Types/>"))
	w.Close()
	if _, err := Open(bytes.NewReader(b.Bytes()), int64(b.Len())); !errors.Is(err, ErrDocument) {
		t.Errorf("docx opened as an archive: %v", err)
	}
}

// FuzzZip: arbitrary bytes never panic the reader; every content read is
// bounded by the declared size.
func FuzzZip(f *testing.F) {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, n := range []string{"a.csv", "d/", "d/b.txt"} {
		x, _ := w.Create(n)
		x.Write([]byte("name,phone\nx,13800000000\n"))
	}
	x, _ := w.CreateHeader(&zip.FileHeader{Name: "s.bin", Method: zip.Store})
	x.Write([]byte("stored"))
	w.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		zfs, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		zfs.Walk(context.Background(), func(x *fs.File) error {
			if r, err := zfs.Open(x); err == nil {
				n, _ := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
				if n > x.Size {
					t.Fatalf("%s: %d bytes read, %d declared", x.Path, n, x.Size)
				}
			}
			return nil
		})
	})
}

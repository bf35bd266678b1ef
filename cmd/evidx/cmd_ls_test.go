package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// lsRun runs the CLI in-process: stdout and the error main would map to
// an exit code.
func lsRun(t *testing.T, argv ...string) ([]byte, error) {
	r := runCLI(t, argv...)
	return r.stdout, r.err
}

// lsFATImage makes a FAT32 image with a nested long-named file, an empty
// file and a deleted file, and returns it with the written contents.
func lsFATImage(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "ls.img")
	testutil.Run(t, "mkfs.fat", "-F", "32", "-C", img, "40000")
	files := map[string][]byte{
		"/Some Dir/A long file name.txt": bytes.Repeat([]byte("evidence "), 500),
		"/empty":                         nil,
		"/gone later.bin":                bytes.Repeat([]byte{1, 2, 3}, 3000),
	}
	src := t.TempDir()
	for p, b := range files {
		hp := filepath.Join(src, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(hp), 0o755)
		os.WriteFile(hp, b, 0o644)
	}
	testutil.Run(t, "mcopy", "-s", "-i", img, filepath.Join(src, "Some Dir"), filepath.Join(src, "empty"), filepath.Join(src, "gone later.bin"), "::/")
	testutil.Run(t, "mdel", "-i", img, "::/gone later.bin")
	return img, files
}

func TestLsJSON(t *testing.T) {
	img, files := lsFATImage(t)
	testutil.Unchanged(t, img)
	out, err := lsRun(t, "ls", "--json", img)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Partitions []map[string]any `json:"partitions"`
		Files      []struct {
			Path        string  `json:"path"`
			Size        int64   `json:"size"`
			Deleted     bool    `json:"deleted"`
			SHA256      *string `json:"sha256"`
			MD5         *string `json:"md5"`
			Partition   int     `json:"partition"`
			Recoverable bool    `json:"recoverable"`
		} `json:"files"`
		Unallocated []map[string]int64 `json:"unallocated"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("more than one JSON value on stdout")
	}
	for _, k := range []string{"index", "start", "size", "type", "filesystem"} {
		if _, ok := res.Partitions[0][k]; !ok {
			t.Errorf("partition key %q missing", k)
		}
	}
	seen := map[string]bool{}
	for _, f := range res.Files {
		b, ok := files[f.Path]
		if !ok {
			continue
		}
		seen[f.Path] = true
		sum := sha256.Sum256(b)
		if f.SHA256 == nil || *f.SHA256 != hex.EncodeToString(sum[:]) || f.MD5 == nil || f.Size != int64(len(b)) {
			t.Errorf("%s: %+v", f.Path, f)
		}
		if f.Deleted != (f.Path == "/gone later.bin") {
			t.Errorf("%s: deleted=%v", f.Path, f.Deleted)
		}
	}
	if len(seen) != len(files) {
		t.Errorf("listed %v of %d written files", seen, len(files))
	}
	if len(res.Unallocated) == 0 {
		t.Error("no unallocated ranges")
	}

	out, err = lsRun(t, "ls", "--json", "--deleted", img)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Files[0].Path != "/gone later.bin" || !res.Files[0].Recoverable {
		t.Errorf("--deleted: %+v", res.Files)
	}
}

func TestCat(t *testing.T) {
	img, files := lsFATImage(t)
	testutil.Unchanged(t, img)
	for _, p := range []string{"/Some Dir/A long file name.txt", "p1:/Some Dir/A long file name.txt", "/gone later.bin", "/empty"} {
		out, err := lsRun(t, "cat", img, p)
		if err != nil {
			t.Errorf("cat %s: %v", p, err)
			continue
		}
		want := files[strings.TrimPrefix(p, "p1:")]
		if !bytes.Equal(out, want) {
			t.Errorf("cat %s: %d bytes, want %d", p, len(out), len(want))
		}
	}
	if _, err := lsRun(t, "cat", img, "/nope"); err == nil || exitCode(err) != 1 {
		t.Errorf("missing file: %v", err)
	}
	if _, err := lsRun(t, "cat", img, "p9:/empty"); err == nil || exitCode(err) != 1 {
		t.Errorf("missing partition: %v", err)
	}
	if _, err := lsRun(t, "cat", img); exitCode(err) != 2 {
		t.Errorf("missing PATH must be usage error, got %v", err)
	}
	if _, err := lsRun(t, "cat", img, "relative"); exitCode(err) != 2 {
		t.Errorf("relative PATH must be usage error, got %v", err)
	}
	var ue usageError
	if _, err := lsRun(t, "ls"); !errors.As(err, &ue) {
		t.Errorf("ls without IMAGE: %v", err)
	}
}

func TestLsEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain name.txt":    "plain name.txt",
		"bell\a\x1b[31mred": `bell\a\x1b[31mred`,
		"back\\slash":       `back\\slash`,
		"bad\xffutf8":       `bad\xffutf8`,
		"c1\u009bcsi":       `c1\u009bcsi`,
		"中文名.txt":           "中文名.txt",
	} {
		if got := lsEscape(in); got != want {
			t.Errorf("lsEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLsContainers lists the same FAT image as raw, split raw and E01: the
// files and their hashes must be identical (ingest/source does the reading).
func TestLsContainers(t *testing.T) {
	img, _ := lsFATImage(t)
	dir := t.TempDir()
	testutil.Run(t, "split", "--numeric-suffixes=1", "-a", "3", "-b", "7M", img, filepath.Join(dir, "split.img."))
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "ewf"), "-f", "encase6", "-c", "fast", "-S", "8MiB", img)
	list := func(path string) map[string]string {
		t.Helper()
		out, err := lsRun(t, "ls", "--json", path)
		if err != nil {
			t.Fatalf("ls %s: %v", path, err)
		}
		var res struct {
			Files []struct {
				Path    string  `json:"path"`
				Deleted bool    `json:"deleted"`
				SHA256  *string `json:"sha256"`
			} `json:"files"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, f := range res.Files {
			h := "-"
			if f.SHA256 != nil {
				h = *f.SHA256
			}
			m[fmt.Sprintf("%s deleted=%v", f.Path, f.Deleted)] = h
		}
		return m
	}
	raw := list(img)
	for _, p := range []string{filepath.Join(dir, "split.img.001"), filepath.Join(dir, "ewf.E01")} {
		testutil.Unchanged(t, p)
		if got := list(p); fmt.Sprint(got) != fmt.Sprint(raw) {
			t.Errorf("%s lists\n%v\nraw lists\n%v", filepath.Base(p), got, raw)
		}
	}
}

// TestLsHostileName: a long name carrying ESC and BEL (patched into the
// LFN slot's UTF-16 of a real mcopy'd file) reaches the terminal escaped,
// and stays exact in JSON, where it is data.
func TestLsHostileName(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "evil.img")
	testutil.Run(t, "mkfs.fat", "-F", "12", "-C", img, "1440")
	src := filepath.Join(t.TempDir(), "evilXname.txt")
	os.WriteFile(src, []byte("x"), 0o644)
	testutil.Run(t, "mcopy", "-i", img, src, "::/")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// "evilX" in the LFN slot is UTF-16LE; X becomes ESC. The LFN checksum
	// covers only the short name, so the slot stays valid.
	needle := []byte{'e', 0, 'v', 0, 'i', 0, 'l', 0, 'X', 0}
	i := bytes.Index(b, needle)
	if i < 0 {
		t.Fatal("LFN not found")
	}
	b[i+8] = 0x1b
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, img)
	out, err := lsRun(t, "ls", img)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(out, 0x1b) || !bytes.Contains(out, []byte(`/evil\x1bname.txt`)) {
		t.Errorf("human listing not escaped:\n%q", out)
	}
	out, err = lsRun(t, "ls", "--json", img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"/evil\u001bname.txt"`)) {
		t.Errorf("JSON lost the name:\n%s", out)
	}
}

package custody

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evidx/evidx/internal/testutil"
)

func TestSafePath(t *testing.T) {
	long := strings.Repeat("長", 100) // 300 bytes
	for _, tc := range []struct{ in, want string }{
		{"/dir/name.txt", "dir/name.txt"},
		{"/../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd"},
		{"/a/./b", "a/%2E/b"},
		{"//a//b/", "a/b"},
		{"/", "%00"},
		{"", "%00"},
		{"/tab\there", "tab%09here"},
		{"/nl\nx\r", "nl%0Ax%0D"},
		{"/100%", "100%25"},
		{"/back\\slash", "back%5Cslash"},
		{"/bad\xffutf8", "bad%FFutf8"},
		{"/c1\u0085ctl", "c1%C2%85ctl"},
		{"/手机号.csv", "手机号.csv"},
		{"/file.txt:Zone.Identifier", "file.txt:Zone.Identifier"},
	} {
		if got := SafePath(tc.in); got != tc.want {
			t.Errorf("SafePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := SafePath("/" + long)
	if len(got) > maxComponent || !utf8.ValidString(got) || !strings.Contains(got, "~") {
		t.Errorf("long name: %q (%d bytes)", got, len(got))
	}
	if SafePath("/"+long) == SafePath("/"+long+"x") {
		t.Error("two long names collide")
	}
}

func TestNamerCollisions(t *testing.T) {
	n := newNamer()
	var got []string
	for _, p := range []string{"E/v/a.txt", "E/v/a.txt", "E/v/a.txt", "E/v/b", "E/v/b/c", "E/v/noext", "E/v/noext"} {
		got = append(got, n.name(p))
	}
	want := []string{"E/v/a.txt", "E/v/a~2.txt", "E/v/a~3.txt", "E/v/b", "E/v/b~dir/c", "E/v/noext", "E/v/noext~2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestExportHostileNames exports files whose names from "evidence" try to
// escape the export root, carry control characters, or collide, and
// checks that every file lands inside OUT with its content and that
// hashdeep audits the export.
func TestExportHostileNames(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	img, _ := randomImage(t, t.TempDir(), 1<<16, 3)
	testutil.Unchanged(t, img)
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "EV9", Paths: []string{img}}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(img)
	names := []string{"/../../escape.txt", "/../../escape.txt", "/dir/..", "/new\nline", "/abs/../../../x", "/%2E%2E", "/a", "/a/b", "/" + strings.Repeat("x", 400)}
	b, err := c.NewBatch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string][]byte{}
	for i, name := range names {
		data := raw[i*1000 : i*1000+500+i]
		sums, err := b.StoreObject(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		contents[sums.SHA256] = data
		if err := b.AddFile(File{EvidenceID: "EV9", Volume: 2, Path: name, Size: int64(len(data)), Runs: []Run{{0, int64(i * 1000), int64(len(data)), false}},
			SHA256: sums.SHA256, MD5: sums.MD5, Recoverable: true, Object: sums.SHA256}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "export")
	res, err := c.Export(ctx, ExportOptions{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != int64(len(names)) {
		t.Fatalf("%d files exported, want %d", res.Files, len(names))
	}
	n := 0
	filepath.WalkDir(filepath.Dir(root), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == res.Manifest {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !filepath.IsLocal(rel) || !strings.HasPrefix(rel, "EV9/vol-2/") {
			t.Errorf("file written outside the export root: %s", p)
		}
		if strings.ContainsAny(rel, "\n\r") {
			t.Errorf("control character in %q", rel)
		}
		data, _ := os.ReadFile(p)
		if _, ok := contents[sha256Hex(data)]; !ok {
			t.Errorf("%s: content not a stored object", rel)
		}
		n++
		return nil
	})
	if n != len(names) {
		t.Fatalf("%d files on disk, want %d", n, len(names))
	}
	testutil.NeedTool(t, "hashdeep")
	hd := exec.Command("hashdeep", "-r", "-l", "-a", "-k", res.Manifest, ".")
	hd.Dir = root
	out, err := hd.CombinedOutput()
	if err != nil {
		t.Fatalf("hashdeep: %v\n%s", err, out)
	}
	// The report's DFXML stays valid with these names.
	if _, err := c.WriteReport(ctx, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.NeedTool(t, "xmllint")
	if out, err := exec.Command("xmllint", "--noout", "--schema", schemaPath(t), filepath.Join(c.Dir(), ReportsDir, "evidence-EV9.dfxml")).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
}

// FuzzSafePath checks that no name from evidence yields a path that is
// absolute, climbs out, or carries control characters or invalid UTF-8.
func FuzzSafePath(f *testing.F) {
	for _, s := range []string{"/a/b", "/../x", "..", "/\x00\n", "/\xff\xfe", "/" + strings.Repeat("é", 300), "/a/%2E%2E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := SafePath(in)
		if !filepath.IsLocal(p) || strings.HasPrefix(p, "/") {
			t.Fatalf("SafePath(%q) = %q not local", in, p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == "." || c == ".." || c == "" || len(c) > maxComponent {
				t.Fatalf("SafePath(%q) component %q", in, c)
			}
		}
		if !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			t.Fatalf("SafePath(%q) = %q unsafe characters", in, p)
		}
		n := newNamer()
		if a, b := n.name("E/v/"+p), n.name("E/v/"+p); a == b {
			t.Fatalf("namer gave %q twice", a)
		}
		x := xmlText(in)
		if !utf8.ValidString(x) || strings.ContainsAny(x, "<>\"\x00\n\r") {
			t.Fatalf("xmlText(%q) = %q", in, x)
		}
	})
}

// FuzzVerifyChain feeds arbitrary bytes to the audit log reader: it must
// return a result or a *ChainError naming a line, never panic.
func FuzzVerifyChain(f *testing.F) {
	dir := f.TempDir()
	c, err := Init(context.Background(), filepath.Join(dir, "case"), Meta{CaseNumber: "F", Examiner: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	c.Audit(Entry{Action: "x", Inputs: []Item{{Kind: "evidence", Path: "/a", SHA256: strings.Repeat("a", 64)}}})
	c.Close()
	good, _ := os.ReadFile(filepath.Join(dir, "case", AuditName))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"seq":1,"prev":"` + Genesis + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := VerifyChain(bytes.NewReader(b), nil)
		if err != nil {
			var ce *ChainError
			if !asChainError(err, &ce) || ce.Line != ch.Lines+1 && ce.Line != ch.Lines {
				t.Fatalf("error %v (lines %d)", err, ch.Lines)
			}
		}
	})
}

func asChainError(err error, ce **ChainError) bool {
	e, ok := err.(*ChainError)
	*ce = e
	return ok
}

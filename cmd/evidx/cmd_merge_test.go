package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// treeSum hashes every file under dir (names and contents): a case merged
// from must come out of the merge byte for byte as it went in.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		h.Write([]byte(p + "\x00" + hex.EncodeToString(s[:]) + "\n"))
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// mergeView is what must agree between a merged case and one that loaded
// everything: totals, and per source (by SHA-256) its counts.
type mergeView struct {
	Unique  map[string]int64
	Sources map[string]string // sha256 -> rows/rejected/unique/new/invalid/status as JSON
	Overlap []string
}

func viewOf(t *testing.T, cs string) mergeView {
	t.Helper()
	out, err := idxRun(t, "stats", cs, "--json")
	if err != nil {
		t.Fatalf("stats %s: %v", cs, err)
	}
	var st statsJSON
	decodeOne(t, out, &st)
	v := mergeView{Unique: st.Unique, Sources: map[string]string{}}
	for _, s := range st.Sources {
		b, _ := json.Marshal([]any{s.Name, s.Rows, s.Rejected, s.Unique, s.New, s.Invalid, s.Status})
		v.Sources[s.SHA256] = string(b)
	}
	for _, o := range st.Overlap {
		b, _ := json.Marshal(o)
		v.Overlap = append(v.Overlap, string(b))
	}
	sort.Strings(v.Overlap)
	return v
}

// TestCaseMerge: two cases, each loaded from half of a generated corpus
// (and a file both hold, and an evidence item each with the same id),
// merged into a third equal one case that loaded everything in the same
// order: totals against the generator's truth, every source's unique and
// new counts, the overlaps. The merged case verifies, the evidence items
// and their files are there (the second renamed), the source cases are
// byte for byte unchanged, and a source case that does not verify is
// refused.
func TestCaseMerge(t *testing.T) {
	testutil.NeedTool(t, "mkfs.ext4")
	dir := t.TempDir()
	truth, err := leakgen.Generate(filepath.Join(dir, "corpus"), leakgen.Options{Seed: 41, Rows: 12000, Dup: 0.1, Overlap: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range truth.Files {
		files = append(files, f.Path)
	}
	half := len(files) / 2
	partA, partB := files[:half], append([]string{files[0]}, files[half:]...) // files[0] in both

	// One evidence item per lab, both called EV1: an ext4 image holding a
	// dataset of its own.
	image := func(name string, rows string) string {
		src := filepath.Join(dir, name+"-src")
		os.MkdirAll(src, 0o700)
		os.WriteFile(filepath.Join(src, "found.csv"), []byte("name,phone\n"+rows), 0o600)
		img := filepath.Join(dir, name+".img")
		testutil.Run(t, "mkfs.ext4", "-q", "-d", src, img, "8M")
		return img
	}
	imgA := image("a", "x,13700000001\ny,13700000002\n")
	imgB := image("b", "x,13700000001\nz,13700000003\n")

	mk := func(name, number string) string {
		cs := filepath.Join(dir, name)
		if _, err := idxRun(t, "case", "init", cs, "--case-number", number, "--examiner", "x", "--shards", "4"); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	add := func(cs string, fs []string) {
		if out, err := idxRun(t, append([]string{"dataset", "add", cs}, fs...)...); err != nil {
			t.Fatalf("dataset add: %v\n%s", err, out)
		}
	}
	evidence := func(cs, img, id string) {
		if out, err := idxRun(t, "evidence", "add", cs, img, "--id", id, "--no-scan"); err != nil {
			t.Fatalf("evidence add: %v\n%s", err, out)
		}
	}
	a, b := mk("lab-a", "A-2026-1"), mk("lab-b", "B/2026/7")
	add(a, partA)
	evidence(a, imgA, "EV1")
	add(b, partB)
	evidence(b, imgB, "EV1")
	all := mk("all", "ALL")
	add(all, partA)
	evidence(all, imgA, "EV1")
	add(all, partB)
	evidence(all, imgB, "EV2")

	sumA, sumB := treeSum(t, a), treeSum(t, b)
	merged := mk("merged", "M")
	out, err := idxRun(t, "case", "merge", merged, a, b, "--json")
	if err != nil {
		t.Fatalf("case merge: %v\n%s", err, out)
	}
	var mr struct {
		Merged []struct {
			AuditHead string `json:"audit_head"`
			Evidence  []struct{ From, ID string }
		}
	}
	decodeOne(t, out, &mr)
	if len(mr.Merged) != 2 || len(mr.Merged[1].Evidence) != 1 || mr.Merged[1].Evidence[0].ID != "B_2026_7.EV1" {
		t.Fatalf("merge result %s", out)
	}

	got, want := viewOf(t, merged), viewOf(t, all)
	t.Logf("merged %v (%d sources, %d overlaps); one case %v", got.Unique, len(got.Sources), len(got.Overlap), want.Unique)
	sameCounts(t, "merged unique", got.Unique, want.Unique)
	for sha, w := range want.Sources {
		if got.Sources[sha] != w {
			t.Errorf("source %.12s: merged %s, one case %s", sha, got.Sources[sha], w)
		}
	}
	if len(got.Sources) != len(want.Sources) {
		t.Errorf("%d sources merged, %d in one case", len(got.Sources), len(want.Sources))
	}
	// Persons link as in one case (the records come along).
	if pg, pw := stats(t, merged).Persons, stats(t, all).Persons; pg.Unique != pw.Unique || pw.Unique == 0 || len(pg.Hubs) != len(pw.Hubs) {
		t.Errorf("merged persons %d (%d hubs), one case %d (%d hubs)", pg.Unique, len(pg.Hubs), pw.Unique, len(pw.Hubs))
	}
	if strings.Join(got.Overlap, "\n") != strings.Join(want.Overlap, "\n") {
		t.Errorf("overlaps differ:\nmerged %q\none case %q", got.Overlap, want.Overlap)
	}
	// The corpus truth, plus the two found datasets' three phones.
	var gen leakgen.Counts = truth.Unique
	if got.Unique["email"] != gen["email"] || got.Unique["cn_id"] != gen["cn_id"] {
		t.Errorf("merged unique %v, generator's truth %v", got.Unique, gen)
	}

	if out, err := idxRun(t, "verify", merged); err != nil {
		t.Errorf("verify merged: %v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(merged, "audit.log"))
	for _, m := range mr.Merged {
		if !strings.Contains(string(log), m.AuditHead) {
			t.Errorf("source audit head %s not in the merged audit log", m.AuditHead)
		}
	}
	lsOut, err := idxRun(t, "export", merged, "--files", filepath.Join(dir, "export"))
	if err != nil {
		t.Fatalf("export: %v\n%s", err, lsOut)
	}
	for _, p := range []string{"EV1", "B_2026_7.EV1"} {
		if _, err := os.Stat(filepath.Join(dir, "export", p)); err != nil {
			t.Errorf("evidence %s not exported from the merged case: %v", p, err)
		}
	}
	if treeSum(t, a) != sumA || treeSum(t, b) != sumB {
		t.Error("a source case changed during the merge")
	}

	// A source case whose audit log was edited is refused.
	bad := mk("bad", "BAD")
	add(bad, files[:1])
	p := filepath.Join(bad, "audit.log")
	lb, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(lb), `"BAD"`, `"BAE"`, 1)), 0o600)
	dest := mk("dest", "D")
	if _, err := idxRun(t, "case", "merge", dest, bad); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("merge from a case that does not verify: %v", err)
	}
}

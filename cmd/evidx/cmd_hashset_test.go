package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // writes the RDSv3-shaped test database

	"github.com/evidx/evidx/internal/testutil"
)

// hsImage makes a FAT image with mcopy holding eight files (two in a
// folder) and returns it with the host folder the files were copied from
// and their paths in the image, in order.
func hsImage(t *testing.T) (img, src string, paths []string) {
	t.Helper()
	dir := t.TempDir()
	img = filepath.Join(dir, "hs.img")
	testutil.Run(t, "mkfs.fat", "-C", img, "8192")
	src = filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "docs"), 0o755)
	for i := range 8 {
		p := fmt.Sprintf("/file%d.bin", i)
		if i >= 6 {
			p = fmt.Sprintf("/docs/note%d.txt", i)
		}
		body := fmt.Appendf(nil, "content of file %d\n%s", i, bytes.Repeat([]byte{byte(i)}, 1000*i))
		if err := os.WriteFile(filepath.Join(src, filepath.FromSlash(p)), body, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ents, _ := os.ReadDir(src)
	args := []string{"-s", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	testutil.Run(t, "mcopy", append(args, "::/")...)
	return img, src, paths
}

// hsRDS writes an RDSv3-shaped SQLite (FILE, PKG, OS, MFG) with the real
// SQLite library: the SHA-256 of the given host files in upper-case hex,
// as NIST ships it, among decoys random rows, with no index on sha256.
func hsRDS(t *testing.T, path string, files []string, decoys int) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`
CREATE TABLE FILE(sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, crc32 VARCHAR NOT NULL,
	file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
CREATE TABLE PKG(package_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
	operating_system_id INTEGER NOT NULL, manufacturer_id INTEGER NOT NULL, language VARCHAR NOT NULL, application_type VARCHAR NOT NULL);
CREATE TABLE OS(operating_system_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL, manufacturer_id INTEGER NOT NULL);
CREATE TABLE MFG(manufacturer_id INTEGER NOT NULL, name VARCHAR NOT NULL);
INSERT INTO MFG VALUES(7, 'Example Corp');
INSERT INTO OS VALUES(3, 'ExampleOS', '11', 7);
INSERT INTO PKG VALUES(42, 'Example Suite', '2.0', 3, 7, 'English', 'Operating System');`); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.Begin()
	st, err := tx.Prepare(`INSERT INTO FILE VALUES(?, ?, ?, '00000000', ?, ?, 42)`)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	hex := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return strings.ToUpper(fmt.Sprintf("%x", b))
	}
	for i := range decoys {
		st.Exec(hex(32), hex(20), hex(16), fmt.Sprintf("decoy%d.dll", i), i)
		if i == decoys/3 {
			for _, f := range files {
				st.Exec(strings.ToUpper(testutil.SHA256File(t, f)), hex(20), hex(16), filepath.Base(f), 1)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// lsMarks runs ls --json with the hash sets and returns each listed
// path's hashsets.
func lsMarks(t *testing.T, img string, sets ...string) map[string][]string {
	t.Helper()
	argv := []string{"ls", "--json", img}
	for _, s := range sets {
		argv = append(argv, "--hashset", s)
	}
	out, err := lsRun(t, argv...)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Files []struct {
			Path     string    `json:"path"`
			Hashsets *[]string `json:"hashsets"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	marks := map[string][]string{}
	for _, f := range res.Files {
		if f.Hashsets != nil {
			marks[f.Path] = *f.Hashsets
		}
	}
	return marks
}

func TestLsHashsetRDS(t *testing.T) {
	img, src, paths := hsImage(t)
	rds := filepath.Join(t.TempDir(), "RDS_2025.03.1_modern_minimal.db")
	hits := []string{paths[0], paths[2], paths[6]}
	var host []string
	for _, p := range hits {
		host = append(host, filepath.Join(src, filepath.FromSlash(p)))
	}
	hsRDS(t, rds, host, 5000)
	testutil.Unchanged(t, img, rds)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	marks := lsMarks(t, img, "nsrl="+rds)
	want := map[string][]string{}
	for _, p := range hits {
		want[p] = []string{"nsrl"}
	}
	if fmt.Sprint(marks) != fmt.Sprint(want) {
		t.Errorf("marked %v, want %v", marks, want)
	}
	// The human listing marks the same three lines.
	out, err := lsRun(t, "ls", img, "--hashset", "nsrl="+rds)
	if err != nil {
		t.Fatal(err)
	}
	var marked []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(l, "\t[hashset: nsrl]") {
			marked = append(marked, strings.Split(l, "\t")[1])
		}
	}
	slices.Sort(marked)
	if w := slices.Sorted(slices.Values(hits)); !slices.Equal(marked, w) {
		t.Errorf("text listing marks %v, want %v", marked, w)
	}
	// The RDS has no sha256 index: its side file was built once, in the
	// user's cache, and the second listing used it.
	side, _ := filepath.Glob(filepath.Join(cache, "evidx", "hashsets", "rds-*.sha256"))
	if len(side) != 1 {
		t.Errorf("side files %v", side)
	} else if st, _ := os.Stat(side[0]); st.Size() != 5003*32 {
		t.Errorf("side file of %d bytes, want %d", st.Size(), 5003*32)
	}
	if _, err := lsRun(t, "ls", img, "--no-hash", "--hashset", rds); err == nil {
		t.Error("--no-hash with --hashset accepted")
	}
	if _, err := os.Stat(rds + "-journal"); err == nil {
		t.Error("SQLite left a journal beside the RDS file")
	}
}

func TestLsHashsetLists(t *testing.T) {
	img, src, paths := hsImage(t)
	dir := t.TempDir()
	host := func(i int) string { return filepath.Join(src, filepath.FromSlash(paths[i])) }
	sums := filepath.Join(dir, "bad.sha256")
	out := testutil.Run(t, "sha256sum", host(1), host(3))
	os.WriteFile(sums, out, 0o600)
	hd := filepath.Join(dir, "seized.hashdeep")
	testutil.NeedTool(t, "hashdeep")
	cmd := exec.Command("hashdeep", "-c", "md5,sha256", host(3), host(4), host(7))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(hd, out, 0o600)
	testutil.Unchanged(t, img, sums, hd)
	marks := lsMarks(t, img, sums, "seized="+hd)
	want := map[string][]string{
		paths[1]: {"bad"}, paths[3]: {"bad", "seized"}, paths[4]: {"seized"}, paths[7]: {"seized"},
	}
	if fmt.Sprint(marks) != fmt.Sprint(want) {
		t.Errorf("marked %v, want %v", marks, want)
	}
}

// TestHashsetCase: hashset add before and after evidence add; the report
// lists the known-bad matches before the known-good ones, in HTML and
// JSON; the RDS file is unchanged after every command.
func TestHashsetCase(t *testing.T) {
	img, src, paths := hsImage(t)
	dir := t.TempDir()
	rds := filepath.Join(dir, "nsrl.db")
	host := func(i int) string { return filepath.Join(src, filepath.FromSlash(paths[i])) }
	hsRDS(t, rds, []string{host(0), host(2), host(5)}, 3000)
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, testutil.Run(t, "sha256sum", host(6), host(1)), 0o600)
	testutil.Unchanged(t, img, rds, bad)
	rdsSum := testutil.SHA256File(t, rds)
	cs := filepath.Join(dir, "case")
	step := func(argv ...string) []byte {
		t.Helper()
		r := runCLI(t, argv...)
		if r.err != nil {
			t.Fatalf("%v: %v\n%s", argv, r.err, r.stderr)
		}
		if got := testutil.SHA256File(t, rds); got != rdsSum {
			t.Fatalf("%v changed the RDS file: sha256 %s, was %s", argv, got, rdsSum)
		}
		return r.stdout
	}
	step("case", "init", cs, "--case-number", "HS-1", "--examiner", "Ex")
	step("hashset", "add", cs, rds, "--name", "NSRL", "--known-good")
	if r := runCLI(t, "hashset", "add", cs, rds, "--name", "NSRL", "--known-good"); r.err == nil {
		t.Error("a second set named NSRL accepted")
	}
	if r := runCLI(t, "hashset", "add", cs, bad); r.code != 2 {
		t.Errorf("no kind: exit %d", r.code)
	}
	if out := step("evidence", "add", cs, img, "--id", "EV1", "--no-carve", "--no-scan"); !strings.Contains(string(out), "hashset NSRL: 3 files\n") {
		t.Errorf("evidence add does not say the NSRL matches:\n%s", out)
	}
	out := step("hashset", "add", cs, bad, "--name", "Case bad", "--known-bad", "--json")
	var add struct {
		Marked  int `json:"marked"`
		Hashset struct {
			SHA256 string `json:"sha256"`
			Format string `json:"format"`
		} `json:"hashset"`
	}
	if err := json.Unmarshal(out, &add); err != nil || add.Marked != 2 || add.Hashset.Format != "sums" || add.Hashset.SHA256 != testutil.SHA256File(t, bad) {
		t.Errorf("hashset add: %+v %v\n%s", add, err, out)
	}
	step("report", cs)
	// The side file of the RDS (no sha256 index) is in the case, not beside it.
	if side, _ := filepath.Glob(filepath.Join(cs, "hashsets", "rds-*.sha256")); len(side) != 1 {
		t.Errorf("side files in the case: %v", side)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 { // nsrl.db, bad.txt, case (before "other" is made)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("folder of the RDS file holds %v", names)
	}

	raw, err := os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Hashsets []struct {
			Name, Kind, SHA256 string
		} `json:"hashsets"`
		Matches []struct {
			Hashset    string `json:"hashset"`
			Kind       string `json:"kind"`
			EvidenceID string `json:"evidence_id"`
			Path       string `json:"path"`
			SHA256     string `json:"sha256"`
		} `json:"hashset_matches"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rep.Matches {
		got = append(got, m.Kind+" "+m.Hashset+" "+m.EvidenceID+" "+m.Path)
		sum := sha256.Sum256(mustRead(t, filepath.Join(src, filepath.FromSlash(m.Path))))
		if m.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %s", m.Path, m.SHA256)
		}
	}
	want := []string{
		"known-bad Case bad EV1 " + paths[6], "known-bad Case bad EV1 " + paths[1], // by path: /docs/... first
		"known-good NSRL EV1 " + paths[0], "known-good NSRL EV1 " + paths[2], "known-good NSRL EV1 " + paths[5],
	}
	if !slices.Equal(got, want) {
		t.Errorf("report.json matches\n%q\nwant\n%q", got, want)
	}
	if len(rep.Hashsets) != 2 || rep.Hashsets[1].Name != "NSRL" || rep.Hashsets[1].SHA256 != rdsSum {
		t.Errorf("report.json hashsets %+v", rep.Hashsets)
	}
	html, err := os.ReadFile(filepath.Join(cs, "reports", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	tbl := string(html)
	i := strings.Index(tbl, `<table class="hashset-matches">`)
	if i < 0 {
		t.Fatal("report.html has no hash set matches table")
	}
	tbl = tbl[i : i+strings.Index(tbl[i:], "</table>")]
	last := -1
	for _, w := range want {
		f := strings.Fields(w)
		at := strings.Index(tbl, "<code>"+f[len(f)-1]+"</code>")
		if at < 0 || at < last {
			t.Errorf("report.html: %s at %d (previous at %d)", w, at, last)
		}
		last = at
	}
	if strings.Count(tbl, "<tr><td>known-bad</td>") != 2 || strings.Count(tbl, "<tr><td>known-good</td>") != 3 {
		t.Errorf("report.html matches table:\n%s", tbl)
	}
	// Both additions and the marking of EV1 are in the audit log, with the
	// sets' SHA-256.
	audit, _ := os.ReadFile(filepath.Join(cs, "audit.log"))
	// Two added, the duplicate audited as an error; the kindless one is a
	// usage error that never opened the case.
	if n := strings.Count(string(audit), `"action":"hashset.add"`); n != 3 {
		t.Errorf("%d hashset.add audit lines, want 3", n)
	}
	if !strings.Contains(string(audit), rdsSum) || !strings.Contains(string(audit), `"action":"evidence.hashsets"`) {
		t.Error("audit log lacks the RDS SHA-256 or the evidence.hashsets line")
	}
	// Evidence merged from another lab's case is marked by this case's
	// sets as an intake is.
	other := filepath.Join(dir, "other")
	step("case", "init", other, "--case-number", "LAB2", "--examiner", "Ey")
	step("evidence", "add", other, img, "--id", "EV1", "--no-carve", "--no-scan")
	step("case", "merge", cs, other)
	step("report", cs)
	raw, _ = os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	rep.Matches = nil
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	var merged []string
	for _, m := range rep.Matches {
		if m.EvidenceID == "LAB2.EV1" {
			merged = append(merged, m.Kind+" "+m.Path)
		}
	}
	if len(rep.Matches) != 10 || fmt.Sprint(merged) != fmt.Sprint([]string{"known-bad " + paths[6], "known-bad " + paths[1],
		"known-good " + paths[0], "known-good " + paths[2], "known-good " + paths[5]}) {
		t.Errorf("after the merge: %d matches, of LAB2.EV1 %q", len(rep.Matches), merged)
	}
	step("verify", cs)
	// The hash set rows are anchored in the audit log: an edit is named.
	db, err := sql.Open("sqlite3", filepath.Join(cs, "catalog.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE hashsets SET kind='known-bad' WHERE name='NSRL'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := runCLI(t, "verify", cs)
	if r.code == 0 || !strings.Contains(string(r.stdout)+r.stderr, "hashset NSRL kind differs from the audit log") {
		t.Errorf("verify after editing the NSRL row: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHashsetCarved: a known-bad PNG that only carving recovers (raw media
// with no file system) is marked, as "carved:OFFSET (png)".
func TestHashsetCarved(t *testing.T) {
	dir := t.TempDir()
	var pngBuf bytes.Buffer
	im := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range im.Pix {
		im.Pix[i] = byte(i * 7)
	}
	if err := png.Encode(&pngBuf, im); err != nil {
		t.Fatal(err)
	}
	media := make([]byte, 1<<20)
	const off = 300 * 512
	copy(media[off:], pngBuf.Bytes())
	img := filepath.Join(dir, "raw.dd")
	os.WriteFile(img, media, 0o600)
	sum := sha256.Sum256(pngBuf.Bytes())
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte(hex.EncodeToString(sum[:])+"\n"), 0o600)
	testutil.Unchanged(t, img, bad)
	cs := filepath.Join(dir, "case")
	for _, argv := range [][]string{
		{"case", "init", cs, "--case-number", "HS-2", "--examiner", "Ex"},
		{"hashset", "add", cs, bad, "--name", "bad", "--known-bad"},
		{"evidence", "add", cs, img, "--id", "RAW", "--no-scan"},
		{"report", cs, "--lang", "zh"},
	} {
		if r := runCLI(t, argv...); r.err != nil {
			t.Fatalf("%v: %v\n%s", argv, r.err, r.stderr)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	var rep struct {
		Matches []struct {
			Path   string `json:"path"`
			Carved bool   `json:"carved"`
			SHA256 string `json:"sha256"`
		} `json:"hashset_matches"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("carved:%d (png)", off)
	if len(rep.Matches) != 1 || rep.Matches[0].Path != want || !rep.Matches[0].Carved || rep.Matches[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("matches %+v, want one %s", rep.Matches, want)
	}
	zh, _ := os.ReadFile(filepath.Join(cs, "reports", "report.zh.html"))
	if !strings.Contains(string(zh), "<td>已知违规</td><td>RAW</td><td>"+want+"</td>") {
		t.Error("report.zh.html does not list the known-bad match")
	}
}

package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module root (where go.mod lies).
func repoRoot(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		p := filepath.Dir(d)
		if p == d {
			t.Fatal("no go.mod above the test")
		}
		d = p
	}
}

// caseValidator returns the node validator script and the CASE/UCO shapes
// directory: scripts/deps.sh installs the validator (../shared/tools/
// case-validate with its npm packages) into .cache/case-validate.
// EVIDX_CASE_VALIDATE and EVIDX_CASE_SHAPES override the places. Without
// node the test is skipped; in CI (CI set) a missing validator fails.
func caseValidator(t *testing.T) (script, shapes string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	root := repoRoot(t)
	dir := os.Getenv("EVIDX_CASE_VALIDATE")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "case-validate")
	}
	shapes = os.Getenv("EVIDX_CASE_SHAPES")
	if shapes == "" {
		shapes = filepath.Join(root, "..", "shared", "schemas", "case")
	}
	script = filepath.Join(dir, "validate.mjs")
	_, e1 := os.Stat(filepath.Join(dir, "node_modules"))
	_, e2 := os.Stat(shapes)
	if e1 != nil || e2 != nil {
		msg := "CASE validator not installed (run scripts/deps.sh): " + dir + " or shapes " + shapes
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return script, shapes
}

func validateCASE(t *testing.T, file string) string {
	t.Helper()
	script, shapes := caseValidator(t)
	out, err := exec.Command("node", script, file, shapes).CombinedOutput()
	if err != nil {
		t.Fatalf("case-validate %s: %v\n%s", filepath.Base(file), err, out)
	}
	return string(out)
}

// TestCASEExport writes case.jsonld for a case with custody facts, a
// transfer, extracted and carved files, and checks it against the CASE
// 1.4.0 / UCO 1.4.0 SHACL shapes with the shipped validator, then that it
// carries what the case holds.
func TestCASEExport(t *testing.T) {
	ctx := context.Background()
	fc := buildFATCase(t)
	c := fc.c
	SetActingExaminer("Sam Poe")
	defer SetActingExaminer("")
	if _, err := c.AddTransfer(ctx, Transfer{EvidenceID: "EV1", From: testSeizure.SeizedBy, To: "Evidence store B2",
		Reason: "lodged for examination", At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteReport(ctx, ReportOptions{SignKey: fc.key}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(c.Dir(), ReportsDir, "case.jsonld")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context map[string]string `json:"@context"`
		Graph   []map[string]any  `json:"@graph"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("case.jsonld is not JSON: %v", err)
	}
	// Every stored object's SHA-256 is in it (upper-case hexBinary).
	rows, err := c.DB().Query(`SELECT sha256 FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var s string
		rows.Scan(&s)
		n++
		if !bytes.Contains(raw, []byte(`"`+strings.ToUpper(s)+`"`)) {
			t.Errorf("case.jsonld lacks stored object %s", s)
		}
	}
	rows.Close()
	if n != 3 { // NOTES.TXT and SAME.TXT share one; the carved item is GONE.BIN again
		t.Fatalf("%d stored objects, want 3", n)
	}
	types := map[string]int{}
	lines, _, _ := c.ReadAudit(ctx)
	for _, nd := range doc.Graph {
		ty, _ := nd["@type"].(string)
		types[ty]++
		if id, _ := nd["@id"].(string); !strings.HasPrefix(id, "urn:uuid:") {
			t.Errorf("node id %q", id)
		}
	}
	// One action per audit line before the report's own (written after
	// case.jsonld), plus the seizure; 5 files with a
	// Contained_Within relation each, plus the device's.
	if types["case-investigation:InvestigativeAction"] != len(lines)-1+1 || types["case-investigation:Investigation"] != 1 ||
		types["case-investigation:ProvenanceRecord"] != 2 || types["uco-observable:ObservableRelationship"] != 6 || types["uco-observable:Device"] != 1 {
		t.Errorf("node types %v (audit lines %d)", types, len(lines))
	}
	for _, want := range []string{fc.imgSums[0], fc.imgSums[1], fc.imgSums[2]} {
		if !bytes.Contains(raw, []byte(strings.ToUpper(want))) {
			t.Errorf("case.jsonld lacks image hash %s", want)
		}
	}
	for _, want := range []string{"SEAL-000417", "WD-WX61A1234567", "lodged for examination", "Sam Poe", "PC Li Wei (4411)", "Contained_Within", `"evidx custody.transfer"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("case.jsonld lacks %q", want)
		}
	}
	for _, bad := range []string{c.Dir(), filepath.Dir(fc.img)} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("case.jsonld holds the workstation path %s", bad)
		}
	}
	out := validateCASE(t, p)
	if !strings.HasPrefix(out, "conforms") {
		t.Fatalf("case-validate: %s", out)
	}
	t.Logf("case-validate: %s", strings.TrimSpace(out))

	// The validator can fail: a hash value that is not hexBinary does not conform.
	bad := bytes.Replace(raw, []byte(`"uco-types:hashMethod":"SHA256"`), []byte(`"uco-types:hashMethod":"SHA256","uco-types:hashValue":"zz"`), 1)
	bp := filepath.Join(t.TempDir(), "bad.jsonld")
	os.WriteFile(bp, bad, 0o600)
	script, shapes := caseValidator(t)
	if out, err := exec.Command("node", script, bp, shapes).CombinedOutput(); err == nil {
		t.Fatalf("a broken document conforms: %s", out)
	}
}

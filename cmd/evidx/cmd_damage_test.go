package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/leakgen"
)

// TestTruncatedDumpSameEverywhere: an SQL dump cut in the middle of an
// INSERT keeps the rows before the cut in count and in dataset add alike
// (the same rows, the same exit status), with the loss named.
func TestTruncatedDumpSameEverywhere(t *testing.T) {
	dir := t.TempDir()
	truth, err := leakgen.Generate(filepath.Join(dir, "leaks"), leakgen.Options{Seed: 5, Rows: 6000, Formats: "dump.sql"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(truth.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside the last INSERT statement.
	cut := bytes.LastIndex(b, []byte("INSERT INTO")) + 40
	dump := filepath.Join(dir, "cut.sql")
	os.WriteFile(dump, b[:cut], 0o600)

	out, stderr, code := countRun(t, "--json", dump)
	var rep struct {
		Files []struct {
			Rows     int64    `json:"rows"`
			Problems []string `json:"problems"`
			Error    string   `json:"error"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Files) != 1 {
		t.Fatalf("count: %v %s", err, out)
	}
	cs := filepath.Join(dir, "case")
	if r := runCLI(t, "case", "init", cs, "--case-number", "D-1", "--examiner", "X"); r.err != nil {
		t.Fatal(r.err)
	}
	r := runCLI(t, "dataset", "add", cs, dump, "--json")
	var add struct {
		Sources []struct {
			Rows     int64    `json:"rows"`
			Problems []string `json:"problems"`
		} `json:"sources"`
	}
	json.Unmarshal(r.stdout, &add)
	if code != r.code || code != 0 {
		t.Errorf("exit status: count %d (%s), dataset add %d (%s)", code, stderr, r.code, r.stderr)
	}
	if len(add.Sources) != 1 || rep.Files[0].Rows == 0 || add.Sources[0].Rows != rep.Files[0].Rows {
		t.Fatalf("rows: count %+v, dataset add %+v", rep.Files, add.Sources)
	}
	if !strings.Contains(strings.Join(add.Sources[0].Problems, "\n"), "lost") || !strings.Contains(strings.Join(rep.Files[0].Problems, "\n"), "lost") {
		t.Errorf("the cut is not named: count %q, dataset add %q", rep.Files[0].Problems, add.Sources[0].Problems)
	}
}

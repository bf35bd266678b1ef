package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// countRun runs `evidx count` in-process: stdout, stderr and the exit code.
func countRun(t *testing.T, argv ...string) ([]byte, string, int) {
	r := runCLI(t, append([]string{"count"}, argv...)...)
	return r.stdout, r.stderr, r.code
}

// TestCountCLI counts a leakgen corpus (every format) plus a broken file
// and a missing one: the JSON object has the contract's keys, the counts
// equal the generator's truth, the broken files carry an error and the
// run still succeeds.
func TestCountCLI(t *testing.T) {
	testutil.NeedTool(t, "bzip2")
	dir := t.TempDir()
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: 3, Rows: 5000, Dup: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.csv.gz")
	good, _ := os.ReadFile(truth.Files[9].Path) // orders.csv.gz
	if err := os.WriteFile(broken, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--json", "--rejects", filepath.Join(dir, "rejects.tsv")}
	for _, f := range truth.Files {
		args = append(args, f.Path)
	}
	args = append(args, broken, filepath.Join(dir, "missing.csv"))
	out, stderr, code := countRun(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Unique map[string]int64 `json:"unique"`
		Files  []struct {
			Path, SHA256, Format, Encoding, Compression, Error string
			Rows, Rejected                                     int64
			Unique, Invalid                                    map[string]int64
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	for k, want := range truth.Unique {
		if rep.Unique[k] != want {
			t.Errorf("unique %s = %d, want %d", k, rep.Unique[k], want)
		}
	}
	for i, f := range truth.Files {
		got := rep.Files[i]
		for k, want := range f.Unique {
			if got.Unique[k] != want {
				t.Errorf("%s: unique %s = %d, want %d", filepath.Base(f.Path), k, got.Unique[k], want)
			}
		}
		if got.SHA256 != testutil.SHA256File(t, f.Path) || got.Rows != f.Rows || got.Format != f.Format {
			t.Errorf("%s: %+v", filepath.Base(f.Path), got)
		}
	}
	n := len(truth.Files)
	if rep.Files[n].Error == "" || rep.Files[n+1].Error == "" {
		t.Errorf("broken files without error: %+v %+v", rep.Files[n], rep.Files[n+1])
	}
	if !strings.Contains(stderr, "broken.csv.gz") || !strings.Contains(stderr, "line ") {
		t.Errorf("stderr does not name the broken file and line: %q", stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "evidx: count: ") {
			t.Errorf("stderr line %q", l)
		}
	}
	// Human output: a table with the overall line.
	out, _, code = countRun(t, truth.Files[0].Path)
	if code != 0 || !strings.Contains(string(out), "UNIQUE (all files)") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
}

func TestCountCLIFailures(t *testing.T) {
	if _, _, code := countRun(t); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
	if _, _, code := countRun(t, "--mem", "lots", "x"); code != 2 {
		t.Errorf("bad --mem: exit %d, want 2", code)
	}
	if _, _, code := countRun(t, filepath.Join(t.TempDir(), "missing")); code != 1 {
		t.Errorf("nothing readable: exit %d, want 1", code)
	}
}

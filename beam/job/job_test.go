package job

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// TestMain initialises Beam, as a program's main does.
func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

var (
	evidxOnce sync.Once
	evidxBin  string
	evidxErr  error
)

// evidx builds the core binary from the root module: the reference the
// pipeline's output must equal.
func evidx(t *testing.T) string {
	t.Helper()
	evidxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "evidx-beam-test-")
		if err != nil {
			evidxErr = err
			return
		}
		evidxBin = filepath.Join(dir, "evidx")
		cmd := exec.Command("go", "build", "-o", evidxBin, "./cmd/evidx")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			evidxErr = fmt.Errorf("building evidx: %v\n%s", err, out)
		}
	})
	if evidxErr != nil {
		t.Fatal(evidxErr)
	}
	return evidxBin
}

// corpus generates every leakgen format (with overlaps across files) and
// returns its truth and the files in the truth's order.
func corpus(t *testing.T, seed uint64, rows int) (*leakgen.Truth, []string) {
	t.Helper()
	dir := t.TempDir()
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: seed, Rows: rows, Dup: 0.3, Overlap: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range truth.Files {
		paths = append(paths, f.Path)
	}
	return truth, paths
}

func facts(unique map[identity.Kind]int64) string {
	var s []string
	for k, n := range unique {
		s = append(s, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func truthFacts(c leakgen.Counts) string {
	var s []string
	for _, k := range identity.Kinds() {
		s = append(s, fmt.Sprintf("%s=%d", k, c[string(k)]))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestCountEqualsEvidxCount: on Prism, the pipeline's JSON is the whole
// document evidx count --json prints, and its counts are the generator's
// truth overall and per file; with spans of 1 KiB (records crossing
// hundreds of span ends) and of the default size.
func TestCountEqualsEvidxCount(t *testing.T) {
	truth, paths := corpus(t, 41, 14*1500)
	testutil.Unchanged(t, paths...)
	want, err := exec.Command(evidx(t), append(append([]string{"count"}, paths...), "--json")...).Output()
	if err != nil {
		t.Fatalf("evidx count: %v", err)
	}
	for _, split := range []int64{1 << 10, 0} {
		res, err := Count(context.Background(), "prism", paths, Options{SplitSize: split})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Report, want) {
			t.Fatalf("split %d: evidx-beam count differs from evidx count:\n--- beam\n%s\n--- evidx\n%s", split, res.Report, want)
		}
		rep, err := ParseCount(res.Report)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := facts(rep.Unique), truthFacts(truth.Unique); got != w {
			t.Errorf("split %d: unique %s, truth %s", split, got, w)
		}
		for i, f := range truth.Files {
			got := rep.Files[i]
			if g, w := facts(got.Unique), truthFacts(f.Unique); g != w || got.Rows != f.Rows || got.Rejected != f.Rejected {
				t.Errorf("split %d: %s: rows %d rejected %d unique %s; truth rows %d rejected %d unique %s",
					split, filepath.Base(f.Path), got.Rows, got.Rejected, g, f.Rows, f.Rejected, w)
			}
		}
	}
}

// TestLoadImportEqualsDatasetAdd: the load pipeline's output, imported
// into a case with `evidx dataset import`, gives the case `dataset add`
// of the same files in the same order gives: totals (the generator's
// truth), every source's rows, unique and new counts, the overlaps, and
// the first location of an identity; the import is audited and the case
// verifies; an output changed after the job is refused.
func TestLoadImportEqualsDatasetAdd(t *testing.T) {
	truth, paths := corpus(t, 43, 14*800)
	testutil.Unchanged(t, paths...)
	bin := evidx(t)
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("evidx %v: %v\n%s", args, err, out)
		}
		return out
	}
	dir := t.TempDir()
	added, imported := filepath.Join(dir, "added"), filepath.Join(dir, "imported")
	for _, c := range []string{added, imported} {
		run("case", "init", c, "--case-number", "B1", "--examiner", "x", "--shards", "4")
	}
	run(append([]string{"dataset", "add", added, "--no-link"}, paths...)...)
	out := filepath.Join(dir, "job")
	if _, err := Load(context.Background(), "prism", paths, Options{SplitSize: 4 << 10, Shards: 8}, out, "test"); err != nil {
		t.Fatal(err)
	}
	run("dataset", "import", imported, out, "--no-link") // as the add: the index alone

	type source struct {
		Name, SHA256         string
		Rows, Rejected       int64
		Unique, New, Invalid map[string]int64
	}
	type stats struct {
		Unique  map[string]int64
		Sources []source
		Overlap []struct {
			A, B   string
			Shared int64
		}
	}
	view := func(c string) stats {
		var st stats
		if err := json.Unmarshal(run("stats", c, "--json"), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b := view(added), view(imported)
	if truthFacts(truth.Unique) != truthFacts(leakgen.Counts(b.Unique)) {
		t.Errorf("imported unique %v, truth %v", b.Unique, truth.Unique)
	}
	if fmt.Sprint(a.Unique) != fmt.Sprint(b.Unique) || fmt.Sprint(a.Sources) != fmt.Sprint(b.Sources) || fmt.Sprint(a.Overlap) != fmt.Sprint(b.Overlap) {
		t.Errorf("imported case differs from dataset add:\nadd    %v\n%v\nimport %v\n%v", a.Unique, a.Sources, b.Unique, b.Sources)
	}
	// First locations: a search for identities of the job's output answers
	// the same in both cases (sources, occurrences, first location).
	shards, _ := filepath.Glob(filepath.Join(out, "shard-*.jsonl"))
	if len(shards) == 0 {
		t.Fatal("no shard files")
	}
	lines := strings.SplitN(string(must(os.ReadFile(shards[len(shards)-1]))), "\n", 40)
	for _, l := range lines[:len(lines)-1] {
		var e index.ImportEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		sa, sb := run("search", added, e.Value, "--json"), run("search", imported, e.Value, "--json")
		if !bytes.Equal(sa, sb) || !bytes.Contains(sb, []byte(e.FirstLoc)) {
			t.Errorf("search %s: dataset add %s\nimport %s", e.Value, sa, sb)
		}
	}
	run("verify", imported)
	if log, _ := os.ReadFile(filepath.Join(imported, "audit.log")); !strings.Contains(string(log), `"dataset.import.job"`) {
		t.Error("the job is not in the audit log")
	}
	// A changed output is refused.
	f, _ := os.OpenFile(shards[0], os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"kind":"phone","value":"+8613999999999","file":0,"occurrences":1,"first_loc":"line 2"}` + "\n")
	f.Close()
	other := filepath.Join(dir, "other")
	run("case", "init", other, "--case-number", "B2", "--examiner", "x")
	if out, err := exec.Command(bin, "dataset", "import", other, out).CombinedOutput(); err == nil || !strings.Contains(string(out), "changed since the job wrote it") {
		t.Errorf("import of a changed output: %v\n%s", err, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLoadImportLinksAsDatasetAdd: the persons corpus loaded by `dataset
// add` in one case and by the load pipeline (spans of 1 KiB: tens of
// spans per delimited and JSON Lines file) and `dataset import` in
// another gives every source the same record file, byte for byte, and
// the same persons: stats' persons section (persons, hubs, per source,
// overlaps) and demographics are equal, and the persons are the
// corpus's truth. A manifest without record files (a job from before
// they were written) still imports, its sources unlinked; a record
// file changed after the job is refused.
func TestLoadImportLinksAsDatasetAdd(t *testing.T) {
	dir := t.TempDir()
	truth, err := leakgen.GeneratePersons(filepath.Join(dir), 17, 1500)
	if err != nil {
		t.Fatal(err)
	}
	paths := truth.Files
	testutil.Unchanged(t, paths...)
	const split = 1 << 10
	spans := 0
	for _, p := range paths {
		pl, err := ingest.PlanSplit(context.Background(), p, ingest.Options{}, split)
		if err != nil {
			t.Fatal(err)
		}
		spans += len(pl.Spans)
	}
	if spans < 40 {
		t.Fatalf("only %d spans: the files are not cut", spans)
	}
	bin := evidx(t)
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("evidx %v: %v\n%s", args, err, out)
		}
		return out
	}
	cases := t.TempDir()
	added, imported, old := filepath.Join(cases, "added"), filepath.Join(cases, "imported"), filepath.Join(cases, "old")
	for _, c := range []string{added, imported, old} {
		run("case", "init", c, "--case-number", "L1", "--examiner", "x", "--shards", "4")
	}
	run(append([]string{"dataset", "add", added}, paths...)...)
	out := filepath.Join(t.TempDir(), "job")
	if _, err := Load(context.Background(), "prism", paths, Options{SplitSize: split, Shards: 8}, out, "test"); err != nil {
		t.Fatal(err)
	}
	if parts, _ := filepath.Glob(filepath.Join(out, "*.part")); len(parts) > 0 {
		t.Errorf("parts left: %v", parts)
	}
	manPath := filepath.Join(out, index.ImportManifestName)
	manBytes := must(os.ReadFile(manPath))
	var man index.ImportManifest
	if err := json.Unmarshal(manBytes, &man); err != nil {
		t.Fatal(err)
	}
	run("dataset", "import", imported, out)

	// The record files, source by source (ids in load order in both).
	for i, in := range man.Inputs {
		if in.Records == nil {
			t.Fatalf("input %d has no records in the manifest", i)
		}
		rec := fmt.Sprintf("src-%06d.rec", i+1)
		a := must(os.ReadFile(filepath.Join(added, "index", "persons", rec)))
		b := must(os.ReadFile(filepath.Join(imported, "index", "persons", rec)))
		j := must(os.ReadFile(filepath.Join(out, in.Records.Name)))
		if !bytes.Equal(a, b) || !bytes.Equal(a, j) || len(a) < 1000 {
			t.Errorf("%s: record file of dataset add (%d bytes), of the import (%d) and of the job (%d) differ", in.Name, len(a), len(b), len(j))
		}
	}
	type persons struct {
		Persons      map[string]json.RawMessage
		Demographics json.RawMessage
	}
	view := func(c string) (persons, []byte) {
		var st persons
		if err := json.Unmarshal(run("stats", c, "--json"), &st); err != nil {
			t.Fatal(err)
		}
		delete(st.Persons, "built")
		b, _ := json.Marshal(st)
		return st, b
	}
	_, a := view(added)
	sb, b := view(imported)
	if !bytes.Equal(a, b) {
		t.Errorf("persons after the import differ from dataset add's:\nadd    %s\nimport %s", a, b)
	}
	var unique int64
	var hubs []struct {
		Kind, Value string
		People      int64
	}
	var unlinked []int64
	json.Unmarshal(sb.Persons["unique"], &unique)
	json.Unmarshal(sb.Persons["hubs"], &hubs)
	json.Unmarshal(sb.Persons["unlinked_sources"], &unlinked)
	if unique != truth.Persons || len(hubs) != 1 || hubs[0].Value != truth.HubValue || hubs[0].People != truth.HubPeople || len(unlinked) != 0 {
		t.Errorf("imported: %d persons, hubs %+v, unlinked %v; truth %d persons, hub %s of %d people", unique, hubs, unlinked, truth.Persons, truth.HubValue, truth.HubPeople)
	}

	// A manifest of before the record files: imported, not linked.
	rec := filepath.Join(out, man.Inputs[0].Records.Name)
	for i := range man.Inputs {
		man.Inputs[i].Records = nil
	}
	os.WriteFile(manPath, must(json.Marshal(man)), 0o600)
	run("dataset", "import", old, out)
	so, _ := view(old)
	unlinked = nil
	json.Unmarshal(so.Persons["unlinked_sources"], &unlinked)
	if fmt.Sprint(unlinked) != "[1 2 3 4 5]" {
		t.Errorf("old manifest: unlinked %v, want every source", unlinked)
	}
	// A changed record file is refused before anything is loaded.
	os.WriteFile(manPath, manBytes, 0o600)
	f, _ := os.OpenFile(rec, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 0, 0, 5, 1, 'x'})
	f.Close()
	other := filepath.Join(cases, "other")
	run("case", "init", other, "--case-number", "L2", "--examiner", "x")
	if o, err := exec.Command(bin, "dataset", "import", other, out).CombinedOutput(); err == nil || !strings.Contains(string(o), rec+": SHA-256") {
		t.Errorf("import of a changed record file: %v\n%s", err, o)
	}
}

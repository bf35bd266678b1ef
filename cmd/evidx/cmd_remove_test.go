package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestDatasetRemoveReload: removing a source by name leaves the case as a
// case that never loaded it; --reload loads a file again with other
// choices; both are in the audit log and the report.
func TestDatasetRemoveReload(t *testing.T) {
	dir := t.TempDir()
	a := genLeak(11, 3000, 2000, 0)
	b := genLeak(12, 2000, 2000, 1200)
	c := genLeak(13, 2500, 2000, 600)
	paths := map[string]string{}
	for name, l := range map[string]leak{"a.csv": a, "b.csv": b, "c.csv": c} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(l.csv), 0o600)
		paths[name] = p
	}
	testutil.Unchanged(t, paths["a.csv"], paths["b.csv"], paths["c.csv"])
	newCase := func(name string, files ...string) string {
		cs := filepath.Join(dir, name)
		if _, err := idxRun(t, "case", "init", cs, "--case-number", "T-RM", "--examiner", "tester", "--shards", "3"); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if _, err := idxRun(t, "dataset", "add", cs, paths[f]); err != nil {
				t.Fatal(err)
			}
		}
		return cs
	}
	stats := func(cs string) statsJSON {
		out, err := idxRun(t, "stats", cs, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var st statsJSON
		decodeOne(t, out, &st)
		return st
	}

	cs := newCase("case", "a.csv", "b.csv", "c.csv")
	ref := newCase("ref", "a.csv", "c.csv")

	out, err := idxRun(t, "dataset", "remove", cs, "b.csv", "--reason", "wrong file", "--json")
	if err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	var rm struct {
		Removed []struct {
			Source struct {
				Name string `json:"name"`
			} `json:"source"`
		} `json:"removed"`
		Unique map[string]int64 `json:"unique"`
	}
	decodeOne(t, out, &rm)
	if len(rm.Removed) != 1 || rm.Removed[0].Source.Name != "b.csv" {
		t.Fatalf("remove JSON: %s", out)
	}
	sameCounts(t, "unique after remove", rm.Unique, unionCounts(a, c))

	got, want := stats(cs), stats(ref)
	sameCounts(t, "unique", got.Unique, want.Unique)
	if len(got.Sources) != len(want.Sources) {
		t.Fatalf("%d sources, want %d", len(got.Sources), len(want.Sources))
	}
	for i := range want.Sources {
		g, w := got.Sources[i], want.Sources[i]
		if g.Name != w.Name {
			t.Fatalf("source %d is %s, want %s", i, g.Name, w.Name)
		}
		sameCounts(t, g.Name+" new", g.New, w.New)
		sameCounts(t, g.Name+" unique", g.Unique, w.Unique)
	}
	if len(got.Overlap) != 1 || got.Overlap[0].Shared != want.Overlap[0].Shared {
		t.Errorf("overlap %+v, want %+v", got.Overlap, want.Overlap)
	}

	// A name no source has, or an ambiguous reference, removes nothing.
	if _, err := idxRun(t, "dataset", "remove", cs, "a.csv", "nope.csv"); err == nil {
		t.Error("remove of an unknown source succeeded")
	}
	if st := stats(cs); len(st.Sources) != 2 {
		t.Errorf("a failed remove changed the sources: %d", len(st.Sources))
	}

	// --reload with a column override: the idcard column set to none
	// yields no cn_id; the source counts as loaded last.
	if _, err := idxRun(t, "dataset", "add", cs, paths["a.csv"], "--reload", "--column", "idcard=none"); err != nil {
		t.Fatal(err)
	}
	st := stats(cs)
	if len(st.Sources) != 2 || st.Sources[1].Name != "a.csv" {
		t.Fatalf("after reload: %+v", st.Sources)
	}
	if st.Sources[1].Unique["cn_id"] != 0 || st.Sources[1].Unique["phone"] != a.counts()["phone"] {
		t.Errorf("reloaded a.csv unique %v", st.Sources[1].Unique)
	}
	sameCounts(t, "c unique", st.Sources[0].Unique, c.counts())
	sameCounts(t, "c new (now first)", st.Sources[0].New, c.counts())

	// The audit log names both removals; the report lists them.
	alog, err := os.ReadFile(filepath.Join(cs, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(alog, []byte(`"dataset.remove"`)); n != 2 {
		t.Errorf("audit log has %d dataset.remove lines, want 2", n)
	}
	if _, err := idxRun(t, "report", cs); err != nil {
		t.Fatal(err)
	}
	rj, err := os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Removed []struct {
			Name   string `json:"name"`
			Reason string `json:"reason"`
		} `json:"removed_datasets"`
	}
	if err := json.Unmarshal(rj, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 2 || rep.Removed[0].Name != "b.csv" || rep.Removed[0].Reason != "wrong file" ||
		!strings.HasPrefix(rep.Removed[1].Reason, "reload of ") {
		t.Errorf("report removed_datasets: %+v", rep.Removed)
	}
	if out, err := idxRun(t, "verify", cs); err != nil {
		t.Errorf("verify after removals: %v\n%s", err, out)
	}
}

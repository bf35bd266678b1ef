package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// TestPersonsManyHubs loads a leak with more hubs than stats lists (6,000
// phones most shared by 2 to 4 persons, so the cut falls among ties) and checks against the
// generator's truth: the persons, the hub total, the listed hubs being
// exactly the 1,000 touching the most people (ties by value), a hub
// beyond the list still found by search with its people, and export
// --hubs writing every hub with its people.
func TestPersonsManyHubs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recycled.csv")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := leakgen.WriteHubsCSV(f, 17, 6000)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, path)
	cs := newPersonsCase(t)
	cli(t, "dataset", "add", cs, path)

	var st struct {
		Persons struct {
			Unique     int64            `json:"unique"`
			HubsTotal  int64            `json:"hubs_total"`
			HubsByKind map[string]int64 `json:"hubs_by_kind"`
			Hubs       []struct {
				Kind   string `json:"kind"`
				Value  string `json:"value"`
				People int64  `json:"people"`
			} `json:"hubs"`
		} `json:"persons"`
	}
	if err := json.Unmarshal(cli(t, "stats", cs, "--json"), &st); err != nil {
		t.Fatal(err)
	}
	p := st.Persons
	if p.Unique != truth.Persons || p.HubsTotal != int64(len(truth.Hubs)) || p.HubsByKind["phone"] != int64(len(truth.Hubs)) {
		t.Fatalf("persons %d, hubs %d %v; want %d persons, %d phone hubs", p.Unique, p.HubsTotal, p.HubsByKind, truth.Persons, len(truth.Hubs))
	}
	type hub struct {
		value  string
		people int64
	}
	var want []hub
	for v, n := range truth.Hubs {
		want = append(want, hub{v, n})
	}
	slices.SortFunc(want, func(a, b hub) int { return cmp.Or(cmp.Compare(b.people, a.people), cmp.Compare(a.value, b.value)) })
	if len(p.Hubs) != 1000 {
		t.Fatalf("%d hubs listed, want 1000", len(p.Hubs))
	}
	for i, h := range p.Hubs {
		if h.Kind != "phone" || h.Value != want[i].value || h.People != want[i].people {
			t.Fatalf("listed hub %d = %+v, want %+v", i, h, want[i])
		}
	}
	// The hub touching the fewest people is not listed, but is a hub.
	last := want[len(want)-1]
	res := search(t, cs, last.value)
	if len(res.Matches) != 1 || res.Matches[0].Person == nil || res.Matches[0].Person.Hub == nil || res.Matches[0].Person.Hub.People != last.people {
		t.Errorf("search %s: %+v, want a hub of %d people", last.value, res.Matches, last.people)
	}
	// Every hub, with its people, in the export.
	out := filepath.Join(t.TempDir(), "hubs.csv")
	var ex struct {
		Hubs   int64  `json:"hubs"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(cli(t, "export", cs, "--hubs", out, "--json"), &ex); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 || testutil.SHA256File(t, out) != ex.SHA256 {
		t.Fatalf("hubs export %+v: %v", ex, err)
	}
	hf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	rows, err := csv.NewReader(hf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if ex.Hubs != int64(len(truth.Hubs)) || len(rows) != len(truth.Hubs)+1 || strings.Join(rows[0], ",") != "kind,value,people,rule" {
		t.Fatalf("hubs export: %d hubs, %d rows, header %v; want %d", ex.Hubs, len(rows), rows[0], len(truth.Hubs))
	}
	for _, r := range rows[1:] {
		n, _ := strconv.ParseInt(r[2], 10, 64)
		if r[0] != "phone" || truth.Hubs[r[1]] != n || !strings.Contains(r[3], "ID numbers") {
			t.Fatalf("hubs export row %v: want %d people", r, truth.Hubs[r[1]])
		}
		delete(truth.Hubs, r[1])
	}
	if len(truth.Hubs) != 0 {
		t.Errorf("%d hubs missing from the export", len(truth.Hubs))
	}
	// The human output says the list is cut and where the rest are.
	if o := string(cli(t, "stats", cs)); !strings.Contains(o, "5990 more hubs") || !strings.Contains(o, "export --hubs") {
		t.Errorf("stats does not say where the other hubs are:\n%s", o)
	}
}

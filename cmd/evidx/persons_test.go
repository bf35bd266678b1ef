package main

import (
	"encoding/csv"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// personsCorpus generates the persons corpus (its truth written by the
// generator) in a temporary directory.
func personsCorpus(t *testing.T, seed uint64, n int) *leakgen.PersonsTruth {
	t.Helper()
	dir := t.TempDir()
	truth, err := leakgen.GeneratePersons(dir, seed, n)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, truth.Files...)
	return truth
}

// cli runs evidx and fails the test on a non-zero exit.
func cli(t *testing.T, argv ...string) []byte {
	t.Helper()
	r := runCLI(t, argv...)
	if r.err != nil {
		t.Fatalf("evidx %s: %v\n%s", strings.Join(argv, " "), r.err, r.stderr)
	}
	return r.stdout
}

func newPersonsCase(t *testing.T) string {
	t.Helper()
	cs := filepath.Join(t.TempDir(), "case")
	cli(t, "case", "init", cs, "--case-number", "P-1", "--examiner", "X")
	return cs
}

// personsStatsJSON is the part of `stats --json` the persons tests read.
type personsStatsJSON struct {
	Persons struct {
		Unique int64 `json:"unique"`
		Hubs   []struct {
			Kind   string `json:"kind"`
			Value  string `json:"value"`
			People int64  `json:"people"`
		} `json:"hubs"`
		HubsTotal int64  `json:"hubs_total"`
		Method    string `json:"method"`
		Sources   []struct {
			ID      int64  `json:"id"`
			Name    string `json:"name"`
			Persons int64  `json:"persons"`
			New     int64  `json:"new"`
		} `json:"sources"`
		Overlap []struct {
			AID    int64 `json:"a_id"`
			BID    int64 `json:"b_id"`
			Shared int64 `json:"shared"`
		} `json:"overlap"`
	} `json:"persons"`
	Demographics struct {
		Province []struct {
			Code string `json:"code"`
			Name string `json:"name"`
			CNID int64  `json:"cn_id"`
		} `json:"province"`
		Prefecture []struct {
			Code     string `json:"code"`
			Province string `json:"province"`
			CNID     int64  `json:"cn_id"`
		} `json:"prefecture"`
		Sex []struct {
			Label string `json:"label"`
			CNID  int64  `json:"cn_id"`
		} `json:"sex"`
	} `json:"demographics"`
}

func stats(t *testing.T, cs string) personsStatsJSON {
	t.Helper()
	var st personsStatsJSON
	if err := json.Unmarshal(cli(t, "stats", cs, "--json"), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// personsSearchJSON is `search --json`.
type personsSearchJSON struct {
	Matches []struct {
		Query  string `json:"query"`
		Kind   string `json:"kind"`
		Value  string `json:"value"`
		Person *struct {
			Identifiers []struct{ Kind, Value string } `json:"identifiers"`
			Names       []string                       `json:"names"`
			Sources     []struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"sources"`
			Locations []struct {
				Source string `json:"source"`
				Loc    string `json:"loc"`
			} `json:"locations"`
			Hub *struct {
				People int64 `json:"people"`
			} `json:"hub"`
		} `json:"person"`
	} `json:"matches"`
	Summary struct {
		Values          int `json:"values"`
		Found           int `json:"found"`
		NotFound        int `json:"not_found"`
		NotAnIdentifier int `json:"not_an_identifier"`
	} `json:"summary"`
}

func search(t *testing.T, argv ...string) personsSearchJSON {
	t.Helper()
	var res personsSearchJSON
	out := cli(t, append([]string{"search", "--json"}, argv...)...)
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return res
}

// TestDemoPersonsTruth loads the demo's datasets (every format leakgen
// writes) with dataset add and checks persons.unique, and each source's
// persons, against the generator's truth: its own union-find over the
// valid identifiers of each record it wrote, the SQLite tables joined on
// uid. No value there is a hub.
func TestDemoPersonsTruth(t *testing.T) {
	testutil.NeedTool(t, "bzip2")
	truth, err := leakgen.Generate(filepath.Join(t.TempDir(), "leaks"), leakgen.Options{Seed: 7, Rows: 20000, Dup: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	want := map[string]int64{}
	for _, f := range truth.Files {
		files = append(files, f.Path)
		want[filepath.Base(f.Path)] = f.Persons
	}
	testutil.Unchanged(t, files...)
	cs := newPersonsCase(t)
	cli(t, append([]string{"dataset", "add", cs}, files...)...)
	st := stats(t, cs)
	if st.Persons.Unique != truth.Persons {
		t.Errorf("persons.unique %d, truth %d (unique phones %d, ID numbers %d, e-mails %d)",
			st.Persons.Unique, truth.Persons, truth.Unique["phone"], truth.Unique["cn_id"], truth.Unique["email"])
	}
	if st.Persons.HubsTotal != truth.Hubs || len(st.Persons.Hubs) != 0 {
		t.Errorf("%d hubs (%+v), truth %d", st.Persons.HubsTotal, st.Persons.Hubs, truth.Hubs)
	}
	if len(st.Persons.Sources) != len(files) {
		t.Fatalf("%d sources with persons, want %d", len(st.Persons.Sources), len(files))
	}
	for _, sp := range st.Persons.Sources {
		if w, ok := want[sp.Name]; !ok || sp.Persons != w {
			t.Errorf("source %s: %d persons, truth %d", sp.Name, sp.Persons, w)
		}
	}
}

// TestPersonsCorpus loads CSV, GBK text, an SQL dump, JSON Lines and a
// SQLite file whose tables join on cid, and checks the persons against the
// generator's truth: their number, the placeholder phone a hub of 300
// people that joins nobody, the province counts of unique ID numbers, and
// a phone from the file without ID column found with the ID number the
// dump links it to.
func TestPersonsCorpus(t *testing.T) {
	truth := personsCorpus(t, 7, 2000)
	cs := newPersonsCase(t)
	cli(t, append([]string{"dataset", "add", cs}, truth.Files...)...)
	st := stats(t, cs)
	if st.Persons.Unique != truth.Persons {
		t.Errorf("persons.unique %d, truth %d (of %d people generated)", st.Persons.Unique, truth.Persons, truth.People)
	}
	if len(st.Persons.Hubs) != 1 || st.Persons.Hubs[0].Kind != "phone" || st.Persons.Hubs[0].Value != truth.HubValue || st.Persons.Hubs[0].People != truth.HubPeople {
		t.Errorf("hubs %+v, want only phone %s with %d people", st.Persons.Hubs, truth.HubValue, truth.HubPeople)
	}
	if len(st.Persons.Sources) != len(truth.Files) {
		t.Fatalf("%d sources with persons, want %d", len(st.Persons.Sources), len(truth.Files))
	}
	var news int64
	for i, sp := range st.Persons.Sources {
		if sp.Name != filepath.Base(truth.Files[i]) || sp.Persons != truth.PersonsPerFile[i] {
			t.Errorf("source %d %s: %d persons, truth %s %d", i, sp.Name, sp.Persons, filepath.Base(truth.Files[i]), truth.PersonsPerFile[i])
		}
		news += sp.New
	}
	if news != truth.Persons {
		t.Errorf("new persons over the sources add up to %d, not %d", news, truth.Persons)
	}
	if !strings.Contains(st.Persons.Method, "hub") {
		t.Errorf("method %q does not state the hub rule", st.Persons.Method)
	}
	got := map[string]int64{}
	for _, p := range st.Demographics.Province {
		got[p.Code] = p.CNID
		if p.Name == "" {
			t.Errorf("province %s has no name", p.Code)
		}
	}
	if len(got) != len(truth.Province) {
		t.Errorf("%d provinces, truth %d", len(got), len(truth.Province))
	}
	for c, n := range truth.Province {
		if got[c] != n {
			t.Errorf("province %s: %d unique ID numbers, truth %d", c, got[c], n)
		}
	}

	gotPref := map[string]int64{}
	for _, p := range st.Demographics.Prefecture {
		gotPref[p.Code] = p.CNID
		if p.Province == "" {
			t.Errorf("prefecture %s names no province", p.Code)
		}
	}
	if !maps.Equal(gotPref, truth.Prefecture) {
		t.Errorf("prefectures %v, truth %v", gotPref, truth.Prefecture)
	}
	gotSex := map[string]int64{}
	for _, b := range st.Demographics.Sex {
		gotSex[b.Label] = b.CNID
	}
	if !maps.Equal(gotSex, truth.Sex) {
		t.Errorf("sex %v, truth %v", gotSex, truth.Sex)
	}

	// The phone from the GBK text (no ID column) reaches its ID number
	// through the dump's e-mail.
	res := search(t, cs, truth.SearchPhone)
	if len(res.Matches) != 1 || res.Matches[0].Person == nil {
		t.Fatalf("search %s: %+v", truth.SearchPhone, res)
	}
	p := res.Matches[0].Person
	var cnids []string
	for _, id := range p.Identifiers {
		if id.Kind == "cn_id" {
			cnids = append(cnids, id.Value)
		}
	}
	if !slices.Equal(cnids, []string{truth.SearchCNID}) {
		t.Errorf("search %s: ID numbers %v, want %s", truth.SearchPhone, cnids, truth.SearchCNID)
	}
	var srcs []string
	for _, s := range p.Sources {
		srcs = append(srcs, s.Name)
	}
	if !slices.Contains(srcs, "contacts_gbk.txt") || !slices.Contains(srcs, "members.sql") {
		t.Errorf("sources %v, want the GBK text and the dump", srcs)
	}
	locSrc := map[string]bool{}
	for _, l := range p.Locations {
		locSrc[l.Source] = true
	}
	if !locSrc["contacts_gbk.txt"] || !locSrc["members.sql"] {
		t.Errorf("locations %+v: not every record's", p.Locations)
	}

	// The placeholder is a hub: no person, and nobody holds it.
	res = search(t, cs, leakgen.PlaceholderPhone)
	if len(res.Matches) != 1 || res.Matches[0].Person == nil || res.Matches[0].Person.Hub == nil || res.Matches[0].Person.Hub.People != leakgen.HubPeople {
		t.Fatalf("search placeholder: %+v", res)
	}

	// --file: found, not found, not an identifier.
	vals := filepath.Join(t.TempDir(), "victims.txt")
	os.WriteFile(vals, []byte(truth.SearchPhone+"\n13000000001\n"+truth.SearchCNID[:17]+"0\n"+truth.SearchCNID+"\n"), 0o600)
	res = search(t, cs, "--file", vals)
	if s := res.Summary; s.Values != 4 || s.Found != 2 || s.NotFound != 1 || s.NotAnIdentifier != 1 {
		// 17 digits + a wrong check digit is not an identifier, unless
		// the right one happens to be 0.
		if truth.SearchCNID[17] != '0' {
			t.Errorf("--file summary %+v, want 4 values: 2 found, 1 not found, 1 not an identifier", s)
		}
	}
	human := string(cli(t, "search", cs, "--file", vals))
	if !strings.Contains(human, "4 values: 2 found, 1 not found, 1 not an identifier") {
		t.Errorf("human --file output ends without the summary:\n%s", human)
	}

	// Sentencing counts: persons per category against art. 5's thresholds.
	cli(t, "source", "set-category", cs, "shop.sqlite", "transaction")
	var sent struct {
		Categories []struct {
			Category string  `json:"category"`
			Persons  int64   `json:"persons"`
			Serious  int64   `json:"serious"`
			Sources  []int64 `json:"sources"`
			Level    string  `json:"level"`
		} `json:"categories"`
		Combined float64 `json:"combined"`
	}
	if err := json.Unmarshal(cli(t, "source", "set-category", cs, "people.csv", "other", "--json"), &sent); err != nil {
		t.Fatal(err)
	}
	p0, p4 := truth.PersonsPerFile[0], truth.PersonsPerFile[4]
	if len(sent.Categories) != 2 || sent.Categories[0].Category != "transaction" || sent.Categories[0].Persons != p4 || sent.Categories[0].Serious != 500 ||
		sent.Categories[1].Category != "other" || sent.Categories[1].Persons != p0 || sent.Categories[1].Serious != 5000 {
		t.Errorf("sentencing %+v: want transaction %d persons (500), other %d (5000)", sent, p4, p0)
	}
	if want := float64(p4)/500 + float64(p0)/5000; sent.Combined < want-1e-9 || sent.Combined > want+1e-9 {
		t.Errorf("combined %v, want %v", sent.Combined, want)
	}
	if r := runCLI(t, "source", "set-category", cs, "people.csv", "gossip"); r.code != 2 {
		t.Errorf("unknown category: exit %d, want 2", r.code)
	}
}

// TestPersonsIncremental: loading A then B gives the persons loading A+B
// at once gives, and a relink from scratch gives the same again: the
// summary, the demographics and every person (the persons CSV byte for
// byte).
func TestPersonsIncremental(t *testing.T) {
	truth := personsCorpus(t, 11, 1500)
	inc := newPersonsCase(t)
	cli(t, append([]string{"dataset", "add", inc}, truth.Files[:2]...)...)
	if u := stats(t, inc).Persons.Unique; u != truth.PersonsUpTo[1] {
		t.Errorf("after A: %d persons, truth %d", u, truth.PersonsUpTo[1])
	}
	cli(t, append([]string{"dataset", "add", inc}, truth.Files[2:]...)...)
	once := newPersonsCase(t)
	cli(t, append([]string{"dataset", "add", once}, truth.Files...)...)

	out := t.TempDir()
	exported := func(cs, name string) (string, []byte) {
		p := filepath.Join(out, name)
		cli(t, "export", cs, "--persons", p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, b
	}
	summary := func(cs string) string {
		var v struct {
			Persons      map[string]any `json:"persons"`
			Demographics map[string]any `json:"demographics"`
		}
		if err := json.Unmarshal(cli(t, "stats", cs, "--json"), &v); err != nil {
			t.Fatal(err)
		}
		delete(v.Persons, "built")
		b, _ := json.Marshal(v)
		return string(b)
	}
	si, so := summary(inc), summary(once)
	if si != so {
		t.Errorf("A then B:\n%s\nA+B at once:\n%s", si, so)
	}
	// Person numbers follow the order records were read in, which for
	// SQLite's parallel readers differs from load to load: the two cases
	// are compared person by person without them, a relink of the same
	// case byte for byte.
	_, ci := exported(inc, "inc.csv")
	_, co := exported(once, "once.csv")
	if a, b := unnumbered(ci), unnumbered(co); a != b {
		t.Errorf("persons of A then B differ from A+B at once")
	}
	cli(t, "link", inc)
	if sr := summary(inc); sr != so {
		t.Errorf("relink from scratch:\n%s\nA+B at once:\n%s", sr, so)
	}
	_, cr := exported(inc, "relinked.csv")
	if string(cr) != string(ci) {
		t.Errorf("persons CSV after a relink from scratch differs from the incremental one")
	}
	// Preparations lost (a load cut short after keeping its records) are
	// redone from the record files, with the same persons.
	preps, _ := filepath.Glob(filepath.Join(inc, "index", "persons", "src-*.d"))
	if len(preps) != len(truth.Files) {
		t.Fatalf("%d prepared sources, want %d", len(preps), len(truth.Files))
	}
	for _, p := range preps {
		os.RemoveAll(p)
	}
	cli(t, "link", inc)
	if _, cp := exported(inc, "reprepared.csv"); string(cp) != string(ci) {
		t.Errorf("persons CSV after preparing again from the record files differs")
	}
	if n := int64(strings.Count(string(co), "\n")) - 1; n != truth.Persons {
		t.Errorf("persons CSV has %d rows, truth %d persons", n, truth.Persons)
	}
	// Removing the last source gives the persons of the others.
	cli(t, "dataset", "remove", once, "shop.sqlite", "--reason", "test")
	if u := stats(t, once).Persons.Unique; u != truth.PersonsUpTo[3] {
		t.Errorf("after removing shop.sqlite: %d persons, truth %d", u, truth.PersonsUpTo[3])
	}
}

// TestPersonsExport: one row per person with its identifiers, names and
// sources, a new file of mode 0600, its SHA-256 in the audit log; an
// existing file is refused.
func TestPersonsExport(t *testing.T) {
	truth := personsCorpus(t, 5, 400)
	cs := newPersonsCase(t)
	cli(t, append([]string{"dataset", "add", cs}, truth.Files...)...)
	p := filepath.Join(t.TempDir(), "victims.csv")
	var res struct {
		Persons int64  `json:"persons"`
		SHA256  string `json:"sha256"`
	}
	if err := json.Unmarshal(cli(t, "export", cs, "--persons", p, "--json"), &res); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if res.Persons != truth.Persons || testutil.SHA256File(t, p) != res.SHA256 {
		t.Errorf("export %+v: want %d persons and the file's SHA-256", res, truth.Persons)
	}
	f, _ := os.Open(p)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(rows)-1) != truth.Persons || strings.Join(rows[0], ",") != "person,phone,email,cn_id,bank_card,names,addresses,sources,evidence,records" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	found := false
	for _, r := range rows[1:] {
		if strings.Contains(r[1], truth.SearchPhone) {
			found = r[3] == truth.SearchCNID && strings.Contains(r[7], "contacts_gbk.txt") && strings.Contains(r[7], "members.sql") && r[5] != ""
		}
		if strings.Contains(r[1], leakgen.PlaceholderPhone) {
			t.Errorf("the hub phone is a person's identifier: %v", r)
		}
	}
	if !found {
		t.Errorf("no row with %s, %s and both sources", truth.SearchPhone, truth.SearchCNID)
	}
	audit, _ := os.ReadFile(filepath.Join(cs, "audit.log"))
	if !strings.Contains(string(audit), `"action":"export.persons"`) || !strings.Contains(string(audit), res.SHA256) {
		t.Errorf("audit log lacks the persons export and its SHA-256")
	}
	if r := runCLI(t, "export", cs, "--persons", p); r.err == nil {
		t.Errorf("export over an existing file succeeded")
	}
}

// unnumbered returns a persons CSV's rows without the person number,
// sorted.
func unnumbered(b []byte) string {
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, r := range rows {
		rows[i] = r[strings.IndexByte(r, ',')+1:]
	}
	slices.Sort(rows)
	return strings.Join(rows, "\n")
}

package leakgen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
)

// TestPeopleDistinct: person numbers map to distinct phones, IDs and
// e-mails (the bench truth relies on it), and the IDs are valid. E-mails
// once collided ("li"+"n1x" = "lin"+"1x") about once in 200,000 people at
// 70M; the person numbers here are chosen to hit such neighbours.
func TestPeopleDistinct(t *testing.T) {
	seen := map[string]bool{}
	emails := map[string]int64{}
	for i := int64(0); i < 50000; i++ {
		p := makePerson(9, i)
		// The e-mail without its domain must be unique on its own too.
		local := p.email[:strings.IndexByte(p.email, '@')]
		if j, ok := emails[local]; ok {
			t.Fatalf("people %d and %d share local part %s", j, i, local)
		}
		emails[local] = i
		for _, v := range []string{"p" + p.phone11, "i" + p.id18, "e" + p.email} {
			if seen[v] {
				t.Fatalf("person %d repeats %s", i, v)
			}
			seen[v] = true
		}
		if v, r := identity.NormalizeCNID(p.id18); r != identity.Valid || v != p.id18 {
			t.Fatalf("person %d: ID %s is %d", i, p.id18, r)
		}
		if v, r := identity.NormalizePhone(p.phone11); r != identity.Valid || v != "+86"+p.phone11 {
			t.Fatalf("person %d: phone %s", i, p.phone11)
		}
	}
}

// TestDeterministic: the same seed writes the same files and truth.
func TestDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	o := Options{Seed: 4, Rows: 2000, Formats: "csv,jsonl,text,mysql"}
	ta, err := Generate(a, o)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Generate(b, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ta.Files {
		x, _ := os.ReadFile(ta.Files[i].Path)
		y, _ := os.ReadFile(tb.Files[i].Path)
		if !bytes.Equal(x, y) || filepath.Base(ta.Files[i].Path) != filepath.Base(tb.Files[i].Path) {
			t.Errorf("%s differs between runs", ta.Files[i].Path)
		}
	}
	if ta.Unique["phone"] == 0 || ta.Unique["phone"] != tb.Unique["phone"] {
		t.Errorf("truth %v vs %v", ta.Unique, tb.Unique)
	}
}

func TestBenchCSV(t *testing.T) {
	var buf bytes.Buffer
	tr, err := WriteBenchCSV(&buf, 1, 10000, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 10001 || lines[0] != "name,phone,id_no,email,address" {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
	distinct := map[string]bool{}
	for _, l := range lines[1:] {
		distinct[l] = true
	}
	if int64(len(distinct)) != tr.Unique["phone"] {
		t.Errorf("%d distinct rows, truth says %d people", len(distinct), tr.Unique["phone"])
	}
	if d := float64(10000-len(distinct)) / 10000; d < 0.25 || d > 0.35 {
		t.Errorf("duplicate share %.2f, want about 0.3", d)
	}
}

// TestPersonsCorpusTruth: the persons corpus is a function of its seed,
// and its truth counts what the design says: the unlinkable people split
// in two, the placeholder's people apart.
func TestPersonsCorpusTruth(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ta, err := GeneratePersons(a, 3, 500)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := GeneratePersons(b, 3, 500)
	if err != nil {
		t.Fatal(err)
	}
	if ta.Persons != tb.Persons || ta.SearchPhone != tb.SearchPhone {
		t.Fatalf("same seed, different truth: %+v %+v", ta, tb)
	}
	for i := range ta.Files {
		if testutil.SHA256File(t, ta.Files[i]) != testutil.SHA256File(t, tb.Files[i]) && !strings.HasSuffix(ta.Files[i], ".sqlite") {
			t.Errorf("%s differs between runs", filepath.Base(ta.Files[i]))
		}
	}
	// Every generated person is at least one linked person; the
	// unlinkable ones (about 15%) are two.
	if ta.Persons <= ta.People || ta.Persons > ta.People+ta.People/4 {
		t.Errorf("persons %d of %d people", ta.Persons, ta.People)
	}
	if ta.SearchPhone == "" || len(ta.SearchCNID) != 18 {
		t.Errorf("no search pair: %+v", ta)
	}
}

// TestLinkCount: the truth's union-find on hand-made records: shared
// values join, a value with two ID numbers or eleven other phones is a
// hub and joins nothing, a key joins but is no person, and a record of
// hubs alone holds nobody.
func TestLinkCount(t *testing.T) {
	recs := []precord{
		{0, []string{"phone:a", "cn_id:1"}},
		{1, []string{"email:x", "cn_id:1"}},        // joins the first: 1 person
		{0, []string{"phone:hub", "cn_id:2"}},      // phone:hub has IDs 2 and 3
		{1, []string{"phone:hub", "cn_id:3"}},      // so 2 and 3 stay apart
		{1, []string{"phone:hub"}},                 // hubs alone: nobody
		{0, []string{"key:0/uid=1", "email:y"}},    // the key joins y and 4
		{0, []string{"key:0/uid=1", "cn_id:4"}},    //
		{0, []string{"key:0/uid=2", "phone:lone"}}, // one person
		{1, []string{"key:1/uid=9"}},               // a key alone: nobody
	}
	// email:many is seen beside eleven distinct phones: a hub.
	for i := range 11 {
		recs = append(recs, precord{0, []string{"email:many", "phone:p" + string(rune('a'+i))}})
	}
	n, per, hubs := linkCount(recs, 2)
	// {a,1,x} {2} {3} {y,4} {lone} and the eleven phones alone.
	if n != 5+11 || per[0] != 4+11 || per[1] != 2 || hubs != 2 {
		t.Errorf("persons %d, per file %v, %d hubs; want 16, [15 2], 2", n, per, hubs)
	}
	// Ten other phones are allowed.
	n, _, hubs = linkCount(recs[:len(recs)-1], 0)
	if n != 5+1 || hubs != 1 {
		t.Errorf("persons %d, %d hubs with ten phones; want 6, 1", n, hubs)
	}
}

// TestGenerateTruthPersons: the demo corpus's persons are at least the
// unique values of any kind (one person has one phone, ID number and
// e-mail), about as many (the data splits few people), and each file's
// persons at most its rows.
func TestGenerateTruthPersons(t *testing.T) {
	tr, err := Generate(t.TempDir(), Options{Seed: 7, Rows: 3000, Formats: "csv,mysql,sqlite,text,pgcopy"})
	if err != nil {
		t.Fatal(err)
	}
	for k, u := range tr.Unique {
		if tr.Persons < u || tr.Persons > tr.Unique["phone"]*21/20 {
			t.Errorf("persons %d against %d unique %s", tr.Persons, u, k)
		}
	}
	if tr.Hubs != 0 {
		t.Errorf("%d hubs in data whose values are each one person's", tr.Hubs)
	}
	var sum int64
	for _, f := range tr.Files {
		if f.Persons == 0 || f.Persons > f.Rows {
			t.Errorf("%s: %d persons in %d rows", filepath.Base(f.Path), f.Persons, f.Rows)
		}
		sum += f.Persons
	}
	if sum < tr.Persons {
		t.Errorf("files hold %d persons, fewer than the %d overall", sum, tr.Persons)
	}
}

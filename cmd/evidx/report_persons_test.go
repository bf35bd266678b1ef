package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// hostileShop writes a SQLite file whose join key, shared by two people,
// is a hub whose value is markup.
func hostileShop(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		"CREATE TABLE customer (cid TEXT, name TEXT, id_no TEXT)",
		"CREATE TABLE login (cid TEXT, phone TEXT)",
		"INSERT INTO customer VALUES ('<script>alert(1)</script>','张三','11010519491231002X'),('<script>alert(1)</script>','李四','110101199003074477')",
		"INSERT INTO login VALUES ('<script>alert(1)</script>','13912345678')",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

// reportStats is the part of stats --json and report.json compared.
type reportStats struct {
	Unique int64 `json:"unique"`
	Hubs   []struct {
		Kind   string `json:"kind"`
		Value  string `json:"value"`
		People int64  `json:"people"`
		Rule   string `json:"rule"`
	} `json:"hubs"`
	Method     string `json:"method"`
	Sentencing struct {
		Categories []struct {
			Category          string  `json:"category"`
			Label             string  `json:"label"`
			Persons           int64   `json:"persons"`
			Serious           int64   `json:"serious"`
			EspeciallySerious int64   `json:"especially_serious"`
			Level             string  `json:"level"`
			Sources           []int64 `json:"sources"`
		} `json:"categories"`
		Combined      float64 `json:"combined"`
		CombinedLevel string  `json:"combined_level"`
		Uncategorized int64   `json:"uncategorized"`
		Method        string  `json:"method"`
	} `json:"sentencing"`
}

type reportDemo struct {
	Province []struct {
		Code string `json:"code"`
		Name string `json:"name"`
		CNID int64  `json:"cn_id"`
	} `json:"province"`
	AgeBand []struct {
		Label string `json:"label"`
		CNID  int64  `json:"cn_id"`
	} `json:"age_band"`
	Sex []struct {
		Label string `json:"label"`
		CNID  int64  `json:"cn_id"`
	} `json:"sex"`
}

// TestReportPersons: the court report gives the persons, hubs,
// demographics and sentencing counts `stats --json` gives, in report.json
// and in both HTML reports (province chart, sentencing table), a hub
// value of markup escaped, and the case still verifies.
func TestReportPersons(t *testing.T) {
	truth := personsCorpus(t, 3, 600)
	cs := newPersonsCase(t)
	shop := filepath.Join(t.TempDir(), "hostile.sqlite")
	hostileShop(t, shop)
	testutil.Unchanged(t, shop)
	cli(t, append(append([]string{"dataset", "add", cs}, truth.Files...), shop)...)
	cli(t, "source", "set-category", cs, "shop.sqlite", "property")
	cli(t, "source", "set-category", cs, "people.csv", "other")
	cli(t, "report", cs, "--lang", "zh")

	var st struct {
		Persons      reportStats `json:"persons"`
		Demographics reportDemo  `json:"demographics"`
	}
	if err := json.Unmarshal(cli(t, "stats", cs, "--json"), &st); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Persons *struct {
			reportStats
			Demographics reportDemo `json:"demographics"`
		} `json:"persons"`
		Limitations []string `json:"limitations"`
	}
	rj, err := os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rj, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Persons == nil {
		t.Fatal("report.json has no persons")
	}
	rp := rep.Persons
	if rp.Unique != st.Persons.Unique || rp.Unique == 0 {
		t.Errorf("report persons.unique %d, stats %d", rp.Unique, st.Persons.Unique)
	}
	if !reflect.DeepEqual(rp.Hubs, st.Persons.Hubs) || len(rp.Hubs) != 2 {
		t.Errorf("report hubs %+v, stats %+v (want the placeholder phone and the markup key)", rp.Hubs, st.Persons.Hubs)
	}
	if rp.Method != st.Persons.Method {
		t.Errorf("report method %q, stats %q", rp.Method, st.Persons.Method)
	}
	if !reflect.DeepEqual(rp.Demographics, st.Demographics) || len(rp.Demographics.Province) == 0 {
		t.Errorf("report demographics %+v, stats %+v", rp.Demographics, st.Demographics)
	}
	if !reflect.DeepEqual(rp.Sentencing, st.Persons.Sentencing) || len(rp.Sentencing.Categories) != 2 {
		t.Errorf("report sentencing %+v, stats %+v", rp.Sentencing, st.Persons.Sentencing)
	}
	// 财产信息 counts from 50: the shop's persons reach 情节严重, people.csv's
	// (other, from 5,000) do not, and together in proportion they do.
	if c := rp.Sentencing.Categories; len(c) != 2 || c[0].Category != "property" || c[0].Level != "serious" || c[1].Level != "below" || rp.Sentencing.CombinedLevel != "serious" {
		t.Errorf("sentencing levels %+v", rp.Sentencing)
	}

	html := readString(t, filepath.Join(cs, "reports", "report.html"))
	zh := readString(t, filepath.Join(cs, "reports", "report.zh.html"))
	for _, want := range []string{
		`<td class="n persons-unique">` + num(rp.Unique) + `</td>`,
		`aria-label="Unique ID numbers per province"`,
		`<table class="provinces">`, `<table class="sentencing">`, `<table class="ages">`, `<table class="sex">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
	for _, p := range rp.Demographics.Province {
		row := fmt.Sprintf("<tr><td>%s</td><td>%s</td><td class=\"n\">%s</td></tr>", p.Code, p.Name, num(p.CNID))
		if !strings.Contains(html, row) || !strings.Contains(zh, row) {
			t.Errorf("a report lacks the province row %s", row)
		}
		// The chart's bar label and value.
		if !strings.Contains(html, ">"+p.Code+" "+p.Name+"</text>") || !strings.Contains(zh, ">"+p.Code+" "+p.Name+"</text>") {
			t.Errorf("a province chart lacks %s %s", p.Code, p.Name)
		}
	}
	levelsEn := map[string]string{"below": "below 情节严重", "serious": "情节严重 (serious)", "especially_serious": "情节特别严重 (especially serious)"}
	for _, c := range rp.Sentencing.Categories {
		row := fmt.Sprintf(`<td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="level-%s">%s</td></tr>`,
			num(c.Persons), num(c.Serious), num(c.EspeciallySerious), c.Level, levelsEn[c.Level])
		if !strings.Contains(html, row) || !strings.Contains(html, "<td>"+c.Label+" ("+c.Category+")</td>") {
			t.Errorf("report.html lacks the sentencing row %s", row)
		}
		if !strings.Contains(zh, fmt.Sprintf(`<td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="level-%s">`,
			num(c.Persons), num(c.Serious), num(c.EspeciallySerious), c.Level)) {
			t.Errorf("report.zh.html lacks the sentencing row of %s", c.Category)
		}
	}
	if !strings.Contains(html, "art. 11") || !strings.Contains(zh, "第十一条") || !strings.Contains(zh, "关联方法") {
		t.Errorf("a report does not state the counting method")
	}
	for name, doc := range map[string]string{"report.html": html, "report.zh.html": zh} {
		if strings.Contains(doc, "<script") {
			t.Errorf("%s holds a raw <script>", name)
		}
		if !strings.Contains(doc, "cid=&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the hub value escaped", name)
		}
	}
	cli(t, "verify", cs)
	// The report's audit line carries the person count it gave.
	found := false
	for _, l := range strings.Split(readString(t, filepath.Join(cs, "audit.log")), "\n") {
		var e struct {
			Action  string `json:"action"`
			Details struct {
				Persons *int64 `json:"persons"`
			} `json:"details"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Action == "report" && e.Details.Persons != nil && *e.Details.Persons == rp.Unique {
			found = true
		}
	}
	if !found {
		t.Errorf("no report audit line records its %d persons", rp.Unique)
	}

	// Screenshot for a human look, when asked (EVIDX_REPORT_SHOT=path.png).
	if shot := os.Getenv("EVIDX_REPORT_SHOT"); shot != "" {
		for i, f := range []string{"report.html", "report.zh.html"} {
			out := shot
			if i == 1 {
				out = strings.TrimSuffix(shot, ".png") + ".zh.png"
			}
			for _, arg := range []string{"--screenshot=" + out, "--print-to-pdf=" + strings.TrimSuffix(out, ".png") + ".pdf"} {
				cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,6000",
					"--no-pdf-header-footer", arg, "file://"+filepath.Join(cs, "reports", f))
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Logf("chromium: %v\n%s", err, b)
				}
			}
		}
	}
}

// TestReportNotLinked: a case never linked says so in its report.
func TestReportNotLinked(t *testing.T) {
	cs := newPersonsCase(t)
	cli(t, "report", cs, "--lang", "zh")
	var rep struct {
		Persons     *json.RawMessage `json:"persons"`
		Limitations []string         `json:"limitations"`
	}
	if err := json.Unmarshal([]byte(readString(t, filepath.Join(cs, "reports", "report.json"))), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Persons != nil {
		t.Errorf("persons %s in a case never linked", *rep.Persons)
	}
	if !strings.Contains(strings.Join(rep.Limitations, "\n"), "not linked into persons") {
		t.Errorf("limitations %q do not say the case was not linked", rep.Limitations)
	}
	if html := readString(t, filepath.Join(cs, "reports", "report.html")); !strings.Contains(html, "were not linked into persons") {
		t.Errorf("report.html does not say the case was not linked")
	}
	if zh := readString(t, filepath.Join(cs, "reports", "report.zh.html")); !strings.Contains(zh, "尚未关联为自然人") {
		t.Errorf("report.zh.html does not say the case was not linked")
	}
	cli(t, "verify", cs)
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// num formats n as the reports do (1,234).
func num(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

package custody

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportPersonsEscaped: every text of the persons section that comes
// from evidence (hub values, source names, even place names and labels)
// is escaped in both HTML reports.
func TestReportPersonsEscaped(t *testing.T) {
	const bad = `<script>alert(1)</script>`
	r := &Report{Persons: &ReportPersons{Unique: 3, Method: bad, HubIDs: 1, HubPhone: 10,
		Hubs:    []ReportHub{{Kind: "key", Value: "cid=" + bad, People: 3, Rule: bad}},
		Sources: []ReportSourcePersons{{ID: 1, Name: bad + ".csv", Persons: 3, Category: "other"}},
		Demographics: ReportDemographics{Province: []ReportProvince{{Code: "11", Name: bad, CNID: 2}},
			Prefecture: []ReportPlace{{Code: "1101", Name: bad, Province: bad, CNID: 2}},
			AgeBand:    []ReportBand{{Label: bad, CNID: 2}}, Sex: []ReportBand{{Label: bad, CNID: 2}}},
		Sentencing: ReportSentencing{Categories: []ReportCategory{{Category: "other", Label: bad, Serious: 5000, EspeciallySerious: 50000,
			Persons: 3, Level: "below", Sources: []int64{1}}}, CombinedLevel: "below", Method: bad}}}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"report.html":    func(b *bytes.Buffer) error { return writeHTML(b, r) },
		"report.zh.html": func(b *bytes.Buffer) error { return writeHTMLZh(b, r) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := b.String()
		if strings.Contains(s, "<script") {
			t.Errorf("%s holds a raw <script>", name)
		}
		if !strings.Contains(s, "cid=&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(s, "&lt;script&gt;alert(1)&lt;/script&gt;.csv") {
			t.Errorf("%s does not show the hub value and source name escaped", name)
		}
		if !strings.Contains(s, `class="provinces"`) || !strings.Contains(s, `class="sentencing"`) {
			t.Errorf("%s lacks the province or sentencing table", name)
		}
	}
}

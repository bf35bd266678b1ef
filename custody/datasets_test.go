package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// TestReportDatasets loads three overlapping sources into a real index in
// the case, and checks the report's per-source and case-wide unique counts
// against sets the test builds itself, the SVG charts, and that shard
// hashes recorded after the load catch a later edit of a shard.
func TestReportDatasets(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		t.Fatal(err)
	}
	// Source i holds phones i*300 .. i*300+499 (overlapping the next by
	// 200) and emails of every third of them.
	type truth struct{ phones, emails map[string]bool }
	caseWide := truth{map[string]bool{}, map[string]bool{}}
	var per []truth
	names := []string{"leak-a.csv", "leak-b.csv", "leak-c.csv"}
	for i, name := range names {
		tr := truth{map[string]bool{}, map[string]bool{}}
		var ss []identity.Sighting
		for k := i * 300; k < i*300+500; k++ {
			p := fmt.Sprintf("+86138%08d", k)
			ss = append(ss, identity.Sighting{Kind: identity.Phone, Value: p, Loc: fmt.Sprintf("line %d", k)})
			tr.phones[p] = true
			if k%3 == 0 {
				e := fmt.Sprintf("user%d@example.cn", k)
				ss = append(ss, identity.Sighting{Kind: identity.Email, Value: e, Loc: fmt.Sprintf("line %d", k)})
				tr.emails[e] = true
			}
		}
		for v := range tr.phones {
			caseWide.phones[v] = true
		}
		for v := range tr.emails {
			caseWide.emails[v] = true
		}
		per = append(per, tr)
		src := index.Source{Name: name, SHA256: fmt.Sprintf("%064x", i+1), Size: int64(len(ss) * 20)}
		if _, err := ix.AddSource(ctx, src, func(ctx context.Context, sink func([]identity.Sighting) error) (index.FileInfo, error) {
			return index.FileInfo{Rows: 500, Rejected: int64(i)}, sink(ss)
		}, nil); err != nil {
			t.Fatal(err)
		}
		// As the CLI does: the load's entry names the dataset, which
		// writes its sources row into the audit log.
		if err := c.Audit(Entry{Action: "dataset.add", Inputs: []Item{{Kind: "dataset", Path: name, SHA256: src.SHA256}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RecordShards(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteReport(ctx, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	var rep Report
	js, _ := os.ReadFile(filepath.Join(c.Dir(), ReportsDir, "report.json"))
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Datasets) != 3 {
		t.Fatalf("datasets %+v", rep.Datasets)
	}
	for i, d := range rep.Datasets {
		if d.Name != names[i] || d.Unique["phone"] != int64(len(per[i].phones)) || d.Unique["email"] != int64(len(per[i].emails)) || d.Rows != 500 || d.Rejected != int64(i) {
			t.Errorf("dataset %d: %+v, want %d phones %d emails", i, d, len(per[i].phones), len(per[i].emails))
		}
	}
	if rep.Identities.Unique["phone"] != int64(len(caseWide.phones)) || rep.Identities.Unique["email"] != int64(len(caseWide.emails)) {
		t.Fatalf("case-wide %+v, want %d phones %d emails", rep.Identities, len(caseWide.phones), len(caseWide.emails))
	}
	html, _ := os.ReadFile(filepath.Join(c.Dir(), ReportsDir, "report.html"))
	if bytes.Count(html, []byte("<svg")) != 2 || !bytes.Contains(html, []byte("leak-b.csv")) || !bytes.Contains(html, []byte("Overlap between sources")) {
		t.Fatal("report.html lacks the two charts")
	}
	vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("verify: %v %v", err, vr.Failures)
	}
	shard := ix.ShardPath(0)
	orig, _ := os.ReadFile(shard)
	mod := bytes.Clone(orig)
	mod[len(mod)-1] ^= 1
	os.WriteFile(shard, mod, 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), "index/shard-000.sqlite") {
		t.Fatalf("edited shard: %v", vr.Failures)
	}
	checkPerms(t, c.Dir())
}

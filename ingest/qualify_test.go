package ingest

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// TestQualifyDataset: every generated leak is a dataset, with a reason
// naming its identity columns or lines; high-byte binary that decodes as
// GB18030, and prose with one address in it, are not.
func TestQualifyDataset(t *testing.T) {
	testutil.NeedTool(t, "bzip2")
	dir := t.TempDir()
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: 4, Rows: 14 * 300})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range truth.Files {
		d := QualifyDataset(context.Background(), f.Path, records.Options{TmpDir: t.TempDir()})
		if !d.Dataset || d.Reason == "" {
			t.Errorf("%s: %+v, want a dataset with its reason", filepath.Base(f.Path), d)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 64<<10)
	for i := range bin {
		bin[i] = byte(0x81 + rng.IntN(0x7e))
		if i%97 == 0 {
			bin[i] = '\n'
		}
	}
	prose := strings.Repeat("The meeting is moved to Thursday; bring the printed minutes.\n", 200) + "Contact: alice@example.com\n"
	for name, b := range map[string][]byte{"fseventsd": bin, "minutes.txt": []byte(prose)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if d := QualifyDataset(context.Background(), p, records.Options{}); d.Dataset {
			t.Errorf("%s taken as a dataset: %s", name, d.Reason)
		}
	}
}

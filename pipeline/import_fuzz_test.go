package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// FuzzImportShard: any bytes as a job's shard file are split per input
// and read back without a panic; a bad line is an error naming it, and
// what is read back is what the lines said.
func FuzzImportShard(f *testing.F) {
	f.Add([]byte(`{"kind":"phone","value":"+8613800000000","file":0,"occurrences":2,"first_loc":"line 2"}` + "\n" +
		`{"kind":"email","value":"a@b.cn","file":1,"occurrences":1,"first_loc":"table \"t\" row 1"}` + "\n"))
	f.Add([]byte(`{"kind":"x","value":"","file":9,"occurrences":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "shard-000.jsonl"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		man := &index.ImportManifest{Inputs: []index.ImportInput{{Index: 0}, {Index: 1}},
			Outputs: []index.ImportOutput{{Name: "shard-000.jsonl"}}}
		parts, err := splitImport(context.Background(), dir, man, t.TempDir())
		if err != nil {
			return
		}
		for _, p := range parts {
			if err := readPart(p, func(s identity.Sighting, n int64) error {
				if n <= 0 || s.Value == "" {
					t.Fatalf("entry read back as %+v ×%d", s, n)
				}
				return nil
			}); err != nil {
				t.Fatalf("reading back %s: %v", p, err)
			}
		}
	})
}

package ingest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// TestSplitEqualsWhole: every file read as spans (small ones, so records
// cross many span ends) gives the FileStats and the sightings (with their
// locations) that ReadDataset gives for the whole file. Files of 1,500
// rows pass a 4096-sighting batch flush, where yielding rows once went
// uncounted depending on where batches ended.
func TestSplitEqualsWhole(t *testing.T) {
	dir := t.TempDir()
	if _, err := leakgen.Generate(dir, leakgen.Options{Seed: 29, Rows: 14 * 1500, Dup: 0.3}); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	testutil.Unchanged(t, paths...)
	ctx := context.Background()
	split := 0
	for _, path := range paths {
		var mu sync.Mutex
		var whole []string
		want, err := ReadDataset(ctx, path, Options{}, func(b []identity.Sighting) error {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range b {
				whole = append(whole, string(s.Kind)+"\x00"+s.Value+"\x00"+s.Loc)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{2049, 1 << 20} {
			pl, err := PlanSplit(ctx, path, Options{}, size)
			if err != nil {
				t.Fatal(err)
			}
			if pl.Spans == nil {
				continue
			}
			split++
			t.Logf("%s: %d spans of %d", filepath.Base(path), len(pl.Spans), size)
			var parts []Part
			var got []string
			for _, sp := range pl.Spans {
				pt, err := ReadSpan(ctx, path, Options{}, sp, func(b []identity.Sighting) error {
					for _, s := range b {
						got = append(got, string(s.Kind)+"\x00"+s.Value+"\x00"+s.Loc)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, pt)
			}
			st, err := MergeParts(ctx, pl, Options{}, parts)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(want)
			b, _ := json.Marshal(st)
			if string(a) != string(b) {
				t.Errorf("%s (spans of %d, %d spans): stats differ:\nwhole %s\nsplit %s", filepath.Base(path), size, len(pl.Spans), a, b)
			}
			slices.Sort(whole)
			slices.Sort(got)
			if !slices.Equal(whole, got) {
				t.Errorf("%s (spans of %d): %d sightings, whole file %d", filepath.Base(path), size, len(got), len(whole))
			}
		}
	}
	if split < 8 {
		t.Errorf("only %d plans were split", split)
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
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

// TestInOrderEqualsSpans: with InOrder and Attributes, ReadDataset on 4
// workers and small chunks hands the sink every sighting (names and keys
// too) in the order of one worker, every time, and that order is the
// spans' read one after the other: a record file written from either is
// the same file.
func TestInOrderEqualsSpans(t *testing.T) {
	dir := t.TempDir()
	if _, err := leakgen.Generate(dir, leakgen.Options{Seed: 31, Rows: 14 * 1200, Dup: 0.3}); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	testutil.Unchanged(t, paths...)
	ctx := context.Background()
	flat := func(out *[]string) func([]identity.Sighting) error {
		return func(b []identity.Sighting) error {
			for _, s := range b {
				*out = append(*out, string(s.Kind)+"\x00"+s.Value+"\x00"+s.Loc)
			}
			return nil
		}
	}
	split := 0
	for _, path := range paths {
		var one []string
		if _, err := ReadDataset(ctx, path, Options{Workers: 1, Attributes: true}, flat(&one)); err != nil {
			t.Fatal(err)
		}
		for run := range 3 {
			var many []string
			o := Options{Workers: 4, Attributes: true, InOrder: true, Records: records.Options{ChunkSize: 4 << 10, RowsPerChunk: 64}}
			if _, err := ReadDataset(ctx, path, o, flat(&many)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(one, many) {
				t.Fatalf("%s run %d: 4 workers in order give %d sightings, not the %d of one worker in its order", filepath.Base(path), run, len(many), len(one))
			}
		}
		pl, err := PlanSplit(ctx, path, Options{}, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if pl.Spans == nil {
			continue
		}
		split++
		var spans []string
		for _, sp := range pl.Spans {
			if _, err := ReadSpan(ctx, path, Options{Attributes: true}, sp, flat(&spans)); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(one, spans) {
			t.Errorf("%s: %d spans in order give %d sightings, not the whole file's %d in its order", filepath.Base(path), len(pl.Spans), len(spans), len(one))
		}
	}
	if split == 0 {
		t.Fatal("no file was split")
	}
}

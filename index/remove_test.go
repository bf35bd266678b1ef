package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// removeFixture is four overlapping datasets: b and c share part of a's
// pool, d overlaps them all.
func removeFixture() (names []string, ds map[string]genDataset) {
	ds = map[string]genDataset{
		"a": generate(11, 3000, 2000, 0),
		"b": generate(12, 3000, 2000, 1000),
		"c": generate(13, 2000, 2000, 1500),
		"d": generate(14, 2500, 3000, 500),
	}
	return []string{"a", "b", "c", "d"}, ds
}

// caseView is what stats shows of a case, keyed by source name so two
// cases with different ids compare.
type caseView struct {
	unique  map[identity.Kind]int64
	news    map[string]map[identity.Kind]int64
	uniques map[string]map[identity.Kind]int64
	overlap map[string]int64
}

func viewOf(t *testing.T, ix *Index) caseView {
	t.Helper()
	st, err := ix.Stats(context.Background(), StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := caseView{unique: st.Unique, news: map[string]map[identity.Kind]int64{}, uniques: map[string]map[identity.Kind]int64{}, overlap: map[string]int64{}}
	for _, s := range st.Sources {
		name := s.Name
		if s.Status != "done" { // left over: the source lists differ
			name += " (" + s.Status + ")"
		}
		v.news[name], v.uniques[name] = s.New, s.Unique
	}
	for _, o := range st.Overlap {
		v.overlap[o.A+"+"+o.B] = o.Shared
	}
	return v
}

func (v caseView) check(t *testing.T, what string, want caseView) {
	t.Helper()
	eqCounts(t, what+" unique", v.unique, want.unique)
	if !slices.Equal(slices.Sorted(maps.Keys(v.news)), slices.Sorted(maps.Keys(want.news))) {
		t.Errorf("%s sources %v, want %v", what, slices.Sorted(maps.Keys(v.news)), slices.Sorted(maps.Keys(want.news)))
	}
	for name, n := range want.news {
		eqCounts(t, what+" "+name+" new", v.news[name], n)
		eqCounts(t, what+" "+name+" unique", v.uniques[name], want.uniques[name])
	}
	if !maps.Equal(v.overlap, want.overlap) {
		t.Errorf("%s overlap %v, want %v", what, v.overlap, want.overlap)
	}
}

// shardUnique counts distinct identities straight from the shards'
// sightings, whatever the catalog says.
func shardUnique(t *testing.T, ix *Index) map[identity.Kind]int64 {
	t.Helper()
	out := map[identity.Kind]int64{}
	for i := range ix.n {
		db, err := ix.openShardRead(i)
		if err != nil {
			t.Fatal(err)
		}
		if db == nil {
			continue
		}
		rows, err := db.Query(`SELECT kind, count(*) FROM identities GROUP BY kind`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[identity.Kind(k)] += n
		}
		rows.Close()
		db.Close()
	}
	return out
}

// loadAll makes a case with the named datasets loaded in order.
func loadAll(t *testing.T, ds map[string]genDataset, names ...string) *Index {
	t.Helper()
	ix := testCase(t, t.TempDir(), 4)
	for _, n := range names {
		mustAdd(t, ix, n, fmt.Sprintf("%064x", n[0]), ds[n], Origin{})
	}
	return ix
}

// TestRemoveAsIfNeverLoaded removes each source of four in turn, and then
// two: every count afterwards equals that of a case the removed sources
// were never loaded into. It also checks the numbers against the
// generator's truth.
func TestRemoveAsIfNeverLoaded(t *testing.T) {
	names, ds := removeFixture()
	for _, gone := range [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"b", "a"}, {"a", "b", "c", "d"}} {
		t.Run(fmt.Sprint(gone), func(t *testing.T) {
			ix := loadAll(t, ds, names...)
			for _, g := range gone {
				list, err := ix.FindSources(context.Background(), g)
				if err != nil || len(list) != 1 {
					t.Fatalf("find %s: %v %v", g, list, err)
				}
				r, err := ix.RemoveSource(context.Background(), list[0].ID, "test")
				if err != nil {
					t.Fatal(err)
				}
				if r.Source.Name != g {
					t.Errorf("removed %q, want %q", r.Source.Name, g)
				}
			}
			var kept []string
			var keptDs []genDataset
			for _, n := range names {
				if !slices.Contains(gone, n) {
					kept = append(kept, n)
					keptDs = append(keptDs, ds[n])
				}
			}
			fresh := loadAll(t, ds, kept...)
			got := viewOf(t, ix)
			got.check(t, "after removal", viewOf(t, fresh))
			eqCounts(t, "truth", got.unique, union(keptDs...))
			eqCounts(t, "shards", shardUnique(t, ix), union(keptDs...))
			if _, err := ix.FindSources(context.Background(), gone[0]); !errors.Is(err, ErrNoSource) {
				t.Errorf("find removed %s: %v", gone[0], err)
			}
			// The same file can be loaded again, and counts as the last one.
			mustAdd(t, ix, gone[0], fmt.Sprintf("%064x", gone[0][0]), ds[gone[0]], Origin{})
			again := viewOf(t, ix)
			again.check(t, "reloaded", viewOf(t, loadAll(t, ds, append(kept, gone[0])...)))
		})
	}
}

// TestRemoveInterrupted stops a removal after each of its steps, as a kill
// would: stats stay consistent throughout, and the next writer (the same
// removal run again, or a load of another file) finishes it with the counts
// of a case b was never loaded into.
func TestRemoveInterrupted(t *testing.T) {
	names, ds := removeFixture()
	ds["e"] = generate(15, 1500, 3000, 200)
	ctx := context.Background()
	for _, step := range []string{"recorded", "applied"} {
		for _, next := range []string{"retry", "load"} {
			t.Run(step+"/"+next, func(t *testing.T) {
				ix := loadAll(t, ds, names...)
				list, _ := ix.FindSources(ctx, "b")
				id := list[0].ID
				if _, err := ix.catalog.Exec(`INSERT INTO source_removals(source_id, requested) VALUES (?, '2026-01-01T00:00:00Z')`, id); err != nil {
					t.Fatal(err)
				}
				if step == "applied" {
					gained, err := ix.removalGains(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if err := ix.applyRemoval(ctx, id, gained); err != nil {
						t.Fatal(err)
					}
					// Killed here: b's sightings are still in the shards,
					// the catalog already counts without it.
					eqCounts(t, "stats mid-removal", viewOf(t, ix).unique, union(ds["a"], ds["c"], ds["d"]))
				} else {
					eqCounts(t, "stats before removal", viewOf(t, ix).unique, union(ds["a"], ds["b"], ds["c"], ds["d"]))
				}
				kept := []string{"a", "c", "d"}
				switch next {
				case "retry":
					if _, err := ix.RemoveSource(ctx, id, "again"); err != nil {
						t.Fatal(err)
					}
				case "load":
					mustAdd(t, ix, "e", fmt.Sprintf("%064x", 'e'), ds["e"], Origin{})
					kept = append(kept, "e")
				}
				viewOf(t, ix).check(t, "finished", viewOf(t, loadAll(t, ds, kept...)))
				var keptDs []genDataset
				for _, n := range kept {
					keptDs = append(keptDs, ds[n])
				}
				eqCounts(t, "shards", shardUnique(t, ix), union(keptDs...))
				var pending int
				if err := ix.catalog.QueryRow(`SELECT count(*) FROM source_removals`).Scan(&pending); err != nil || pending != 0 {
					t.Errorf("removals pending %d (%v)", pending, err)
				}
			})
		}
	}
}

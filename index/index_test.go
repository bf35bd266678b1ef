package index

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
)

func mustAdd(t *testing.T, ix *Index, name, sha string, d genDataset, ev Origin) SourceStats {
	t.Helper()
	st, err := ix.AddSource(context.Background(), Source{Name: name, SHA256: sha, Origin: ev}, d.feed(97), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func eqCounts(t *testing.T, what string, got, want map[identity.Kind]int64) {
	t.Helper()
	g, w := maps.Clone(got), maps.Clone(want)
	maps.DeleteFunc(g, func(_ identity.Kind, v int64) bool { return v == 0 })
	maps.DeleteFunc(w, func(_ identity.Kind, v int64) bool { return v == 0 })
	if !maps.Equal(g, w) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestLoadTruth loads two overlapping generated datasets and checks every
// count against the generator's truth, then looks values up.
func TestLoadTruth(t *testing.T) {
	ix := testCase(t, t.TempDir(), 8)
	a := generate(1, 6000, 4000, 0)
	b := generate(2, 5000, 4000, 2500)
	sa := mustAdd(t, ix, "a.csv", "aa", a, Origin{})
	sb := mustAdd(t, ix, "b.csv", "bb", b, Origin{EvidenceID: "EV1", EvidencePath: "/stock/b.csv"})

	eqCounts(t, "a unique", sa.Unique, uniqueOf(a))
	eqCounts(t, "a new", sa.New, uniqueOf(a))
	eqCounts(t, "b unique", sb.Unique, uniqueOf(b))
	eqCounts(t, "b new", sb.New, newIn(a, b))
	if sa.Sightings != sightingsOf(a) || sb.Sightings != sightingsOf(b) {
		t.Errorf("sightings %d %d, want %d %d", sa.Sightings, sb.Sightings, sightingsOf(a), sightingsOf(b))
	}

	st, err := ix.Stats(context.Background(), StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eqCounts(t, "stats unique", st.Unique, union(a, b))
	if len(st.Sources) != 2 || st.Sources[1].Evidence != "EV1" || st.Sources[1].Status != "done" {
		t.Errorf("sources %+v", st.Sources)
	}
	if len(st.Overlap) != 1 || st.Overlap[0].Shared != shared(a, b) || st.Overlap[0].A != "a.csv" {
		t.Errorf("overlap %+v, want shared %d", st.Overlap, shared(a, b))
	}
	if len(st.Evidence) != 1 || st.Evidence[0].ID != "EV1" || st.Evidence[0].Rows != 5000 {
		t.Errorf("evidence %+v", st.Evidence)
	}
	eqCounts(t, "evidence unique", st.Evidence[0].Unique, uniqueOf(b))

	s := ix.NewSearcher()
	defer s.Close()
	checked := 0
	for k, m := range b.truth {
		for v, want := range m {
			if checked > 300 {
				break
			}
			checked++
			got, ok, err := s.Lookup(context.Background(), k, v)
			if err != nil || !ok {
				t.Fatalf("lookup %s %s: %v %v", k, v, ok, err)
			}
			hit := got.Sources[len(got.Sources)-1]
			if hit.Source != "b.csv" || hit.Occurrences != want.occ || hit.FirstLoc != want.first || hit.Evidence != "EV1" {
				t.Errorf("lookup %s %s: %+v, want occ %d first %s", k, v, hit, want.occ, want.first)
			}
			_, inA := a.truth[k][v]
			if inA != (len(got.Sources) == 2) {
				t.Errorf("lookup %s %s: %d sources, in a: %v", k, v, len(got.Sources), inA)
			}
		}
	}
	for _, v := range []string{"+8613000000000x", "nobody@example.cn", ""} {
		if _, ok, err := s.Lookup(context.Background(), identity.Phone, v); ok || err != nil {
			t.Errorf("lookup absent %q: %v %v", v, ok, err)
		}
	}
	// Same string, other kind: a different identity.
	v := a.rows[0][0].Value
	if _, ok, _ := s.Lookup(context.Background(), identity.Email, v); ok {
		t.Errorf("phone %s found as email", v)
	}
}

// TestReaddSkips adds the same file twice (under another name too): the
// second time is recognised by SHA-256 and changes nothing.
func TestReaddSkips(t *testing.T) {
	dir := t.TempDir()
	ix := testCase(t, dir, 4)
	d := generate(3, 3000, 2000, 0)
	p := filepath.Join(dir, "leak.tsv")
	d.writeFile(t, p)
	testutil.Unchanged(t, p)
	first, err := ix.AddDataset(context.Background(), p, "", Origin{}, readTSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != "leak.tsv" || first.Rows != 3000 || first.SHA256 != testutil.SHA256File(t, p) {
		t.Errorf("first %+v", first)
	}
	eqCounts(t, "unique", first.Unique, uniqueOf(d))
	before, _ := ix.Stats(context.Background(), StatsOptions{})
	again, err := ix.AddDataset(context.Background(), p, "other-name", Origin{}, readTSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Skipped || again.ID != first.ID || again.Name != "leak.tsv" {
		t.Errorf("again %+v", again)
	}
	after, _ := ix.Stats(context.Background(), StatsOptions{})
	if !maps.Equal(before.Unique, after.Unique) || len(after.Sources) != 1 {
		t.Errorf("stats changed: %v -> %v", before, after)
	}
	// The same bytes found on an evidence item: not loaded again, but the
	// item is recorded as holding the source (twice adds one record).
	for range 2 {
		onEv, err := ix.AddDataset(context.Background(), p, "", Origin{EvidenceID: "EV2", EvidencePath: "/x/leak.tsv"}, readTSV, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !onEv.Skipped || len(onEv.AlsoFound) != 1 || onEv.AlsoFound[0].EvidenceID != "EV2" {
			t.Errorf("found on EV2: %+v", onEv)
		}
	}
	st, _ := ix.Stats(context.Background(), StatsOptions{})
	if len(st.Evidence) != 1 || st.Evidence[0].ID != "EV2" || st.Evidence[0].Rows != 3000 || !maps.Equal(st.Evidence[0].Unique, first.Unique) || len(st.Evidence[0].New) != 0 {
		t.Errorf("evidence %+v", st.Evidence)
	}
	srch := ix.NewSearcher()
	defer srch.Close()
	m, ok, _ := srch.Lookup(context.Background(), d.rows[0][0].Kind, d.rows[0][0].Value)
	if !ok || len(m.Sources[0].AlsoFound) != 1 {
		t.Errorf("search hit %+v", m)
	}
}

// cancelAfter wraps a feed so that ctx is cancelled after n sink calls.
func cancelAfter(f Feed, n int, cancel func()) Feed {
	return func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		calls := 0
		return f(ctx, func(s []identity.Sighting) error {
			calls++
			if calls == n {
				cancel()
			}
			return sink(s)
		})
	}
}

// TestInterruptedRerun cancels loads at random points, then reruns: the
// counts equal those of a clean run, and an abandoned load does not disturb
// the next source's counts.
func TestInterruptedRerun(t *testing.T) {
	a := generate(4, 4000, 3000, 0)
	b := generate(5, 3000, 3000, 1000)
	clean := testCase(t, t.TempDir(), 4)
	ca := mustAdd(t, clean, "a", "sha-a", a, Origin{})
	cb := mustAdd(t, clean, "b", "sha-b", b, Origin{})
	want, _ := clean.Stats(context.Background(), StatsOptions{})

	r := rand.New(rand.NewPCG(9, 9))
	for trial := range 4 {
		ix := testCase(t, t.TempDir(), 4)
		// Interrupt a (maybe several times), then b once, then finish both.
		for range 1 + trial%2 {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := ix.AddSource(ctx, Source{Name: "a", SHA256: "sha-a"}, cancelAfter(a.feed(97), 1+r.IntN(40), cancel), nil)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("trial %d: interrupted load: %v", trial, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		ix.AddSource(ctx, Source{Name: "b", SHA256: "sha-b"}, cancelAfter(b.feed(97), 1+r.IntN(30), cancel), nil)
		cancel()
		if trial%2 == 1 {
			// A loading source must not count in stats meanwhile.
			mid, err := ix.Stats(context.Background(), StatsOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if mid.Total != 0 {
				t.Errorf("trial %d: stats count unfinished loads: %v", trial, mid.Unique)
			}
		}
		ga := mustAdd(t, ix, "a", "sha-a", a, Origin{})
		gb := mustAdd(t, ix, "b", "sha-b", b, Origin{})
		got, _ := ix.Stats(context.Background(), StatsOptions{})
		eqCounts(t, "stats against a scan", got.Unique, scanUnique(t, ix))
		if scanned := scanOverlap(t, ix); !slices.Equal(got.Overlap, scanned) {
			t.Errorf("trial %d: overlap from the loads %+v, from a scan %+v", trial, got.Overlap, scanned)
		}
		eqCounts(t, "a unique", ga.Unique, ca.Unique)
		eqCounts(t, "a new", ga.New, ca.New)
		eqCounts(t, "b new", gb.New, cb.New)
		eqCounts(t, "total", got.Unique, want.Unique)
		if len(got.Sources) != 2 || got.Overlap[0].Shared != want.Overlap[0].Shared {
			t.Errorf("trial %d: sources %d overlap %+v want %+v", trial, len(got.Sources), got.Overlap, want.Overlap)
		}
		if ga.Sightings != ca.Sightings || gb.Sightings != cb.Sightings {
			t.Errorf("trial %d: sightings %d %d want %d %d", trial, ga.Sightings, gb.Sightings, ca.Sightings, cb.Sightings)
		}
		// Occurrences are not doubled by the replays.
		s := ix.NewSearcher()
		for v, want := range a.truth[identity.Phone] {
			m, ok, err := s.Lookup(context.Background(), identity.Phone, v)
			if err != nil || !ok || m.Sources[0].Occurrences != want.occ || m.Sources[0].FirstLoc != want.first {
				t.Fatalf("trial %d: %s: %+v %v %v, want %+v", trial, v, m, ok, err, *want)
			}
		}
		s.Close()
	}
}

// scanUnique counts the distinct identities of done sources by scanning
// every shard: what Stats reports from the sources' new counts.
func scanUnique(t *testing.T, ix *Index) map[identity.Kind]int64 {
	t.Helper()
	srcs, err := ix.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var done []string
	for _, s := range srcs {
		if s.Status == "done" {
			done = append(done, strconv.FormatInt(s.ID, 10))
		}
	}
	got := map[identity.Kind]int64{}
	if len(done) == 0 {
		return got
	}
	for i := range ix.n {
		db, err := ix.openShardRead(i)
		if err != nil {
			t.Fatal(err)
		}
		if db == nil {
			continue
		}
		rows, err := db.Query(`SELECT kind, count(*) FROM (SELECT kind FROM sightings WHERE source_id IN (` +
			strings.Join(done, ",") + `) GROUP BY kind, value) GROUP BY kind`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			got[identity.Kind(k)] += n
		}
		rows.Close()
		db.Close()
	}
	return got
}

// scanOverlap is Stats' overlap as a catalog from an earlier version, which
// recorded no shared counts, makes it: by scanning every shard.
func scanOverlap(t *testing.T, ix *Index) []Overlap {
	t.Helper()
	if _, err := ix.catalog.Exec(`UPDATE sources SET shared_json = NULL`); err != nil {
		t.Fatal(err)
	}
	st, err := ix.Stats(context.Background(), StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Overlap
}

// cancelOnWrite cancels a load once the shard writers have reported n
// times: some shards are committed, others not.
type cancelOnWrite struct {
	n      atomic.Int64
	cancel func()
}

func (c *cancelOnWrite) Read(int64) {}
func (c *cancelOnWrite) Write(int64, int64) {
	if c.n.Add(-1) == 0 {
		c.cancel()
	}
}

// TestInterruptedWrite stops loads inside the writing phase, after some
// shards have committed part of the source (transactions of 2000 rows in
// testCase), then reruns: counts, new counts, occurrences and first
// locations equal those of a clean run, and the earlier source is intact.
func TestInterruptedWrite(t *testing.T) {
	a := generate(14, 4000, 3000, 0)
	b := generate(15, 6000, 5000, 1500)
	clean := testCase(t, t.TempDir(), 4)
	mustAdd(t, clean, "a", "sha-a", a, Origin{})
	cb := mustAdd(t, clean, "b", "sha-b", b, Origin{})
	want, _ := clean.Stats(context.Background(), StatsOptions{})
	for trial, n := range []int64{1, 2, 3, 4} {
		ix := testCase(t, t.TempDir(), 4)
		mustAdd(t, ix, "a", "sha-a", a, Origin{})
		ctx, cancel := context.WithCancel(context.Background())
		stop := &cancelOnWrite{cancel: cancel}
		stop.n.Store(n)
		_, err := ix.AddSource(ctx, Source{Name: "b", SHA256: "sha-b"}, b.feed(97), stop)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("trial %d: interrupted load: %v", trial, err)
		}
		mid, err := ix.Stats(context.Background(), StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(mid.Sources) != 2 || mid.Sources[1].Status != "loading" {
			t.Fatalf("trial %d: sources after the interrupted write: %+v", trial, mid.Sources)
		}
		eqCounts(t, "stats while b is loading", mid.Unique, scanUnique(t, ix))
		gb := mustAdd(t, ix, "b", "sha-b", b, Origin{})
		got, _ := ix.Stats(context.Background(), StatsOptions{})
		eqCounts(t, "stats against a scan", got.Unique, scanUnique(t, ix))
		if len(got.Overlap) != 1 || !slices.Equal(got.Overlap, want.Overlap) {
			t.Errorf("trial %d: overlap %+v, clean run %+v", trial, got.Overlap, want.Overlap)
		}
		eqCounts(t, "b unique", gb.Unique, cb.Unique)
		eqCounts(t, "b new", gb.New, cb.New)
		eqCounts(t, "total", got.Unique, want.Unique)
		s := ix.NewSearcher()
		for v, w := range b.truth[identity.Email] {
			m, ok, err := s.Lookup(context.Background(), identity.Email, v)
			if err != nil || !ok {
				t.Fatalf("trial %d: %s: %v %v", trial, v, ok, err)
			}
			src := m.Sources[len(m.Sources)-1]
			if src.Occurrences != w.occ || src.FirstLoc != w.first {
				t.Fatalf("trial %d: %s: %+v, want %+v", trial, v, src, *w)
			}
		}
		s.Close()
	}
}

// TestConcurrentSink calls sink from several goroutines (under -race).
func TestConcurrentSink(t *testing.T) {
	ix := testCase(t, t.TempDir(), 8)
	d := generate(6, 8000, 5000, 0)
	feed := func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < len(d.rows); i += 4 {
					if err := sink(d.rows[i]); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return FileInfo{Rows: int64(len(d.rows))}, <-errs
	}
	st, err := ix.AddSource(context.Background(), Source{Name: "c", SHA256: "c"}, feed, nil)
	if err != nil {
		t.Fatal(err)
	}
	eqCounts(t, "unique", st.Unique, uniqueOf(d))
	if st.Sightings != sightingsOf(d) {
		t.Errorf("sightings %d, want %d", st.Sightings, sightingsOf(d))
	}
}

// TestShardCountFixed: reopening with another shard count fails.
func TestShardCountFixed(t *testing.T) {
	dir := t.TempDir()
	ix := testCase(t, dir, 4)
	if _, err := Open(context.Background(), ix.catalog, ix.dir, Options{Shards: 8}); !errors.Is(err, ErrShardCount) {
		t.Errorf("reopen with 8 shards: %v", err)
	}
	again, err := Open(context.Background(), ix.catalog, ix.dir, Options{})
	if err != nil || again.Shards() != 4 {
		t.Errorf("reopen: %v %v", again, err)
	}
}

// helperEnv makes the test binary a loader process for TestSIGKILL.
const helperEnv = "EVIDX_INDEX_KILL_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(killHelper(dir))
	}
	os.Exit(m.Run())
}

// killHelper loads the dataset file in dir into the case in dir, as
// `evidx dataset add` would; the parent kills it with SIGKILL.
func killHelper(dir string) int {
	ix := testCase(&helperTB{}, dir, 4)
	_, err := ix.AddDataset(context.Background(), filepath.Join(dir, "leak.tsv"), "", Origin{}, readTSV, nil)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

// helperTB is enough of testing.TB for testCase in the helper process.
type helperTB struct{ testing.TB }

func (*helperTB) Helper()                   {}
func (*helperTB) Cleanup(func())            {}
func (*helperTB) Fatal(args ...any)         { panic(args) }
func (*helperTB) Fatalf(f string, a ...any) { panic(f) }

// TestSIGKILL kills a loader process at random moments, reruns the load in
// this process, and compares with a clean run.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocesses")
	}
	d := generate(7, 40000, 30000, 0)
	cleanDir := t.TempDir()
	d.writeFile(t, filepath.Join(cleanDir, "leak.tsv"))
	clean := testCase(t, cleanDir, 4)
	want, err := clean.AddDataset(context.Background(), filepath.Join(cleanDir, "leak.tsv"), "", Origin{}, readTSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 11))
	for trial := range 3 {
		dir := t.TempDir()
		d.writeFile(t, filepath.Join(dir, "leak.tsv"))
		killed := 0
		for range 3 {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+dir)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(50+r.IntN(int(want.Seconds*1000)+200)) * time.Millisecond)
			if cmd.Process.Signal(os.Kill) == nil {
				killed++
			}
			cmd.Wait()
		}
		ix := testCase(t, dir, 4)
		got, err := ix.AddDataset(context.Background(), filepath.Join(dir, "leak.tsv"), "", Origin{}, readTSV, nil)
		if err != nil {
			t.Fatalf("trial %d: rerun: %v", trial, err)
		}
		eqCounts(t, "trial "+strconv.Itoa(trial)+" unique", got.Unique, want.Unique)
		eqCounts(t, "trial "+strconv.Itoa(trial)+" new", got.New, want.New)
		st, _ := ix.Stats(context.Background(), StatsOptions{})
		eqCounts(t, "stats", st.Unique, uniqueOf(d))
		if got.Sightings != want.Sightings || len(st.Sources) != 1 {
			t.Errorf("trial %d: sightings %d want %d; %d sources", trial, got.Sightings, want.Sightings, len(st.Sources))
		}
		t.Logf("trial %d: %d kills, rerun skipped=%v", trial, killed, got.Skipped)
	}
}

// TestConcurrentLoads runs two loads of different sources at once (as two
// `dataset add` processes would): the lock serialises them, so the case
// ends with the union and with new counts that add up to it.
func TestConcurrentLoads(t *testing.T) {
	ix := testCase(t, t.TempDir(), 4)
	a := generate(21, 3000, 2000, 0)
	b := generate(22, 3000, 2000, 1000)
	var wg sync.WaitGroup
	res := make([]SourceStats, 2)
	errs := make([]error, 2)
	for i, d := range []genDataset{a, b} {
		wg.Go(func() {
			res[i], errs[i] = ix.AddSource(context.Background(), Source{Name: strconv.Itoa(i), SHA256: strconv.Itoa(i)}, d.feed(50), nil)
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	eqCounts(t, "a unique", res[0].Unique, uniqueOf(a))
	eqCounts(t, "b unique", res[1].Unique, uniqueOf(b))
	total := map[identity.Kind]int64{}
	for _, r := range res {
		for k, v := range r.New {
			total[k] += v
		}
	}
	eqCounts(t, "sum of new", total, union(a, b))
	st, _ := ix.Stats(context.Background(), StatsOptions{})
	eqCounts(t, "stats", st.Unique, union(a, b))
}

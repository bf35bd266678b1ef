package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"golang.org/x/sync/errgroup"
)

// querySources reads sources rows; where is appended to the SELECT.
func (ix *Index) querySources(ctx context.Context, where string, args ...any) ([]SourceStats, error) {
	rows, err := ix.catalog.QueryContext(ctx, `SELECT id, name, sha256, size, evidence_id, evidence_path, path,
		format, encoding, compression, rows, rejected, sightings, invalid_json, unique_json, new_json,
		shared_json, columns_json, problems_json, status, started, finished, seconds FROM sources `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("index: sources: %w", err)
	}
	defer rows.Close()
	var out []SourceStats
	for rows.Next() {
		var s SourceStats
		var evid, evpath, path, format, enc, comp, fin, shared, cols, probs sql.NullString
		var secs sql.NullFloat64
		var inv, uq, nw string
		if err := rows.Scan(&s.ID, &s.Name, &s.SHA256, &s.Size, &evid, &evpath, &path, &format, &enc, &comp,
			&s.Rows, &s.Rejected, &s.Sightings, &inv, &uq, &nw, &shared, &cols, &probs, &s.Status, &s.Started, &fin, &secs); err != nil {
			return nil, fmt.Errorf("index: sources: %w", err)
		}
		s.Evidence, s.EvidPath, s.Path = evid.String, evpath.String, path.String
		s.Format, s.Encoding, s.Compression, s.Finished, s.Seconds = format.String, enc.String, comp.String, fin.String, secs.Float64
		if cols.Valid && cols.String != "" && cols.String != "[]" {
			s.Columns = json.RawMessage(cols.String)
		}
		if probs.Valid && probs.String != "" {
			if err := json.Unmarshal([]byte(probs.String), &s.Problems); err != nil {
				return nil, fmt.Errorf("index: source %d problems %q: %w", s.ID, probs.String, err)
			}
		}
		if shared.Valid {
			if err := json.Unmarshal([]byte(shared.String), &s.shared); err != nil {
				return nil, fmt.Errorf("index: source %d shared counts %q: %w", s.ID, shared.String, err)
			}
			if s.shared == nil {
				s.shared = map[int64]int64{}
			}
		}
		for _, m := range []struct {
			js  string
			dst *map[identity.Kind]int64
		}{{inv, &s.Invalid}, {uq, &s.Unique}, {nw, &s.New}} {
			*m.dst = map[identity.Kind]int64{}
			if err := json.Unmarshal([]byte(m.js), m.dst); err != nil {
				return nil, fmt.Errorf("index: source %d counts %q: %w", s.ID, m.js, err)
			}
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: sources: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	byID := make(map[int64]int, len(out))
	for i, s := range out {
		byID[s.ID] = i
	}
	orows, err := ix.catalog.QueryContext(ctx, `SELECT source_id, evidence_id, evidence_path FROM source_origins ORDER BY added`)
	if err != nil {
		return nil, fmt.Errorf("index: source origins: %w", err)
	}
	defer orows.Close()
	for orows.Next() {
		var id int64
		var o Origin
		if err := orows.Scan(&id, &o.EvidenceID, &o.EvidencePath); err != nil {
			return nil, fmt.Errorf("index: source origins: %w", err)
		}
		if i, ok := byID[id]; ok {
			out[i].AlsoFound = append(out[i].AlsoFound, o)
		}
	}
	if err := orows.Err(); err != nil {
		return nil, fmt.Errorf("index: source origins: %w", err)
	}
	return out, nil
}

// Sources returns every source in the catalog, in load order.
func (ix *Index) Sources(ctx context.Context) ([]SourceStats, error) {
	return ix.querySources(ctx, `ORDER BY id`)
}

// Hit is one source where an identity was seen.
type Hit struct {
	Source       string   `json:"name"`
	SHA256       string   `json:"sha256"`
	Evidence     string   `json:"evidence,omitempty"`
	EvidencePath string   `json:"evidence_path,omitempty"`
	Occurrences  int64    `json:"occurrences"`
	FirstLoc     string   `json:"first_loc"`
	Status       string   `json:"status,omitempty"`     // "loading" while that source is being (re)loaded
	AlsoFound    []Origin `json:"also_found,omitempty"` // the same file found elsewhere too
}

// Match is an identity found in the index and every source it was seen in.
type Match struct {
	Kind    identity.Kind `json:"kind"`
	Value   string        `json:"value"`
	Sources []Hit         `json:"sources"`
}

// Searcher looks identities up, keeping the shards it opened open between
// lookups (for lists of values). Not for concurrent use; Close it.
type Searcher struct {
	ix      *Index
	dbs     map[int]*sql.DB
	stmts   map[int]*sql.Stmt
	sources map[int64]SourceStats
}

// NewSearcher returns a Searcher over the index.
func (ix *Index) NewSearcher() *Searcher {
	return &Searcher{ix: ix, dbs: map[int]*sql.DB{}, stmts: map[int]*sql.Stmt{}}
}

// Close closes the shards the Searcher opened.
func (s *Searcher) Close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	var err error
	for _, db := range s.dbs {
		if e := db.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Lookup finds one normalised identity: one query on the one shard its
// partition names. ok is false when no source holds it.
func (s *Searcher) Lookup(ctx context.Context, kind identity.Kind, value string) (m Match, ok bool, err error) {
	i := dedupe.Partition(string(kind), value, s.ix.n)
	st := s.stmts[i]
	if st == nil {
		db, err := s.ix.openShardRead(i)
		if err != nil || db == nil {
			return Match{}, false, err
		}
		st, err = db.PrepareContext(ctx, `SELECT source_id, occurrences, first_loc FROM sightings WHERE kind=? AND value=? ORDER BY source_id`)
		if err != nil {
			db.Close()
			if strings.Contains(err.Error(), "no such table") {
				return Match{}, false, nil
			}
			return Match{}, false, fmt.Errorf("index: shard %d: %w", i, err)
		}
		s.dbs[i], s.stmts[i] = db, st
	}
	rows, err := st.QueryContext(ctx, string(kind), value)
	if err != nil {
		return Match{}, false, fmt.Errorf("index: shard %d: %w", i, err)
	}
	defer rows.Close()
	m = Match{Kind: kind, Value: value}
	for rows.Next() {
		var id int64
		var h Hit
		if err := rows.Scan(&id, &h.Occurrences, &h.FirstLoc); err != nil {
			return Match{}, false, fmt.Errorf("index: shard %d: %w", i, err)
		}
		src, err := s.source(ctx, id)
		if err != nil {
			return Match{}, false, err
		}
		h.Source, h.SHA256, h.Evidence, h.EvidencePath, h.AlsoFound = src.Name, src.SHA256, src.Evidence, src.EvidPath, src.AlsoFound
		if src.Status != "done" {
			h.Status = src.Status
		}
		m.Sources = append(m.Sources, h)
	}
	if err := rows.Err(); err != nil {
		return Match{}, false, fmt.Errorf("index: shard %d: %w", i, err)
	}
	return m, len(m.Sources) > 0, nil
}

// source returns a catalog source by id, cached for the Searcher's life.
func (s *Searcher) source(ctx context.Context, id int64) (SourceStats, error) {
	if src, ok := s.sources[id]; ok {
		return src, nil
	}
	list, err := s.ix.Sources(ctx)
	if err != nil {
		return SourceStats{}, err
	}
	s.sources = make(map[int64]SourceStats, len(list))
	for _, src := range list {
		s.sources[src.ID] = src
	}
	if src, ok := s.sources[id]; ok {
		return src, nil
	}
	// A sighting whose source row is gone: a purge in progress.
	return SourceStats{ID: id, Name: "#" + strconv.FormatInt(id, 10), Status: "loading"}, nil
}

// EvidenceStats totals the sources found on one evidence item. New counts
// only sources first ingested from this item.
type EvidenceStats struct {
	ID        string                  `json:"id"`
	Sources   int                     `json:"sources"`
	Rows      int64                   `json:"rows"`
	Rejected  int64                   `json:"rejected"`
	Sightings int64                   `json:"sightings"`
	Unique    map[identity.Kind]int64 `json:"unique"`
	New       map[identity.Kind]int64 `json:"new"`
	Invalid   map[identity.Kind]int64 `json:"invalid"`
}

// Overlap is how many identities two sources share.
type Overlap struct {
	A      string `json:"a"`
	B      string `json:"b"`
	AID    int64  `json:"a_id"`
	BID    int64  `json:"b_id"`
	Shared int64  `json:"shared"`
}

// Stats is what `evidx stats` reports.
type Stats struct {
	Unique   map[identity.Kind]int64 `json:"unique"`
	Total    int64                   `json:"total"` // all kinds
	Sources  []SourceStats           `json:"sources"`
	Evidence []EvidenceStats         `json:"evidence"`
	Overlap  []Overlap               `json:"overlap"`
}

// StatsOptions choose the costlier parts of Stats.
type StatsOptions struct {
	// NoOverlap skips the source-overlap scan (a full scan of every shard's
	// sightings).
	NoOverlap bool
}

// Stats counts unique identities per kind (distinct keys of the sightings
// of sources that finished; shards scanned in parallel), lists the sources, totals them per
// evidence item (identities seen on an item counted once) and, unless
// opts.NoOverlap, the identities each pair of sources shares.
func (ix *Index) Stats(ctx context.Context, opts StatsOptions) (Stats, error) {
	srcs, err := ix.Sources(ctx)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Unique: map[identity.Kind]int64{}, Sources: srcs, Evidence: []EvidenceStats{}, Overlap: []Overlap{}}
	if st.Sources == nil {
		st.Sources = []SourceStats{}
	}
	done := map[int64]SourceStats{}
	byEvidence := map[string][]SourceStats{}
	for _, s := range srcs {
		if s.Status != "done" {
			continue
		}
		done[s.ID] = s
		seen := map[string]bool{}
		for _, ev := range append([]string{s.Evidence}, evidenceIDs(s.AlsoFound)...) {
			if ev != "" && !seen[ev] {
				seen[ev] = true
				byEvidence[ev] = append(byEvidence[ev], s)
			}
		}
	}
	// The case's unique identities are the sum of the done sources' new
	// counts: a source's new identities are those no done source held when
	// it was loaded (loads are serialised, and a killed load is purged
	// before the next one starts), so each identity is counted once, by the
	// source that brought it. A source still loading is not counted. This
	// spares a scan of every shard; the tests check it against one.
	for _, s := range done {
		for k, v := range s.New {
			st.Unique[k] += v
		}
	}
	// Queries per shard. ids in the SQL are integers from the catalog.
	// Distinct identities: GROUP BY on the key prefix streams in key order.
	type evQ struct {
		id  string
		sql string
	}
	var evQs []evQ
	evNames := slices.Sorted(func(yield func(string) bool) {
		for k := range byEvidence {
			if !yield(k) {
				return
			}
		}
	})
	evUnique := map[string]map[identity.Kind]int64{}
	for _, ev := range evNames {
		list := byEvidence[ev]
		if len(list) == 1 {
			evUnique[ev] = list[0].Unique
			continue
		}
		ids := make([]string, len(list))
		for i, s := range list {
			ids[i] = strconv.FormatInt(s.ID, 10)
		}
		evUnique[ev] = map[identity.Kind]int64{}
		evQs = append(evQs, evQ{ev, `SELECT kind, count(*) FROM (SELECT kind FROM sightings WHERE source_id IN (` + strings.Join(ids, ",") + `) GROUP BY kind, value) GROUP BY kind`})
	}
	overlap := !opts.NoOverlap && len(done) > 1
	pairs := map[[2]int64]int64{}
	// Each load records how many of its identities every earlier source
	// already held; when all done sources have that record, the pairs come
	// from the catalog and no shard is scanned for them.
	if overlap && allShared(done) {
		for id, s := range done {
			for other, n := range s.shared {
				if _, ok := done[other]; ok && n > 0 {
					pairs[[2]int64{min(id, other), max(id, other)}] += n
				}
			}
		}
		overlap = false
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ix.opts.Workers)
	for i := range ix.n {
		g.Go(func() error {
			db, err := ix.openShardRead(i)
			if err != nil || db == nil {
				return err
			}
			defer db.Close()
			var hasTables int
			if err := db.QueryRowContext(gctx, `SELECT count(*) FROM sqlite_master WHERE name = 'sightings'`).Scan(&hasTables); err != nil {
				return fmt.Errorf("index: shard %d: %w", i, err)
			}
			if hasTables < 1 {
				return nil
			}
			add := func(q string, dst map[identity.Kind]int64) error {
				rows, err := db.QueryContext(gctx, q)
				if err != nil {
					return fmt.Errorf("index: shard %d: %w", i, err)
				}
				defer rows.Close()
				for rows.Next() {
					var k string
					var n int64
					if err := rows.Scan(&k, &n); err != nil {
						return fmt.Errorf("index: shard %d: %w", i, err)
					}
					mu.Lock()
					dst[identity.Kind(k)] += n
					mu.Unlock()
				}
				return rows.Err()
			}
			for _, q := range evQs {
				if err := add(q.sql, evUnique[q.id]); err != nil {
					return err
				}
			}
			if !overlap {
				return nil
			}
			local := map[[2]int64]int64{}
			rows, err := db.QueryContext(gctx, `SELECT group_concat(source_id) FROM sightings GROUP BY kind, value HAVING count(*) > 1`)
			if err != nil {
				return fmt.Errorf("index: shard %d overlap: %w", i, err)
			}
			defer rows.Close()
			var ids []int64
			for rows.Next() {
				var list string
				if err := rows.Scan(&list); err != nil {
					return fmt.Errorf("index: shard %d overlap: %w", i, err)
				}
				ids = ids[:0]
				for f := range strings.SplitSeq(list, ",") {
					id, err := strconv.ParseInt(f, 10, 64)
					if err != nil {
						return fmt.Errorf("index: shard %d overlap %q: %w", i, list, err)
					}
					if _, ok := done[id]; ok {
						ids = append(ids, id)
					}
				}
				slices.Sort(ids)
				for a := range ids {
					for b := a + 1; b < len(ids); b++ {
						local[[2]int64{ids[a], ids[b]}]++
					}
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("index: shard %d overlap: %w", i, err)
			}
			mu.Lock()
			for k, v := range local {
				pairs[k] += v
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Stats{}, err
	}
	for _, v := range st.Unique {
		st.Total += v
	}
	for _, ev := range evNames {
		e := EvidenceStats{ID: ev, Unique: evUnique[ev], New: map[identity.Kind]int64{}, Invalid: map[identity.Kind]int64{}}
		for _, s := range byEvidence[ev] {
			e.Sources++
			e.Rows += s.Rows
			e.Rejected += s.Rejected
			e.Sightings += s.Sightings
			if s.Evidence == ev {
				// New counts where the file was first ingested; a copy found
				// on a later item added nothing new to the case.
				for k, v := range s.New {
					e.New[k] += v
				}
			}
			for k, v := range s.Invalid {
				e.Invalid[k] += v
			}
		}
		st.Evidence = append(st.Evidence, e)
	}
	for k, v := range pairs {
		st.Overlap = append(st.Overlap, Overlap{A: done[k[0]].Name, B: done[k[1]].Name, AID: k[0], BID: k[1], Shared: v})
	}
	slices.SortFunc(st.Overlap, func(a, b Overlap) int {
		if a.AID != b.AID {
			return int(a.AID - b.AID)
		}
		return int(a.BID - b.BID)
	})
	return st, nil
}

// allShared reports whether every source has its shared counts recorded.
func allShared(srcs map[int64]SourceStats) bool {
	for _, s := range srcs {
		if s.shared == nil {
			return false
		}
	}
	return true
}

func evidenceIDs(os []Origin) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.EvidenceID
	}
	return out
}

// ReadSources lists the sources recorded in a case catalog, in load order,
// for readers of the case (the report) that do not load: none when the
// catalog has never held an index.
func ReadSources(ctx context.Context, catalog *sql.DB) ([]SourceStats, error) {
	var n int
	if err := catalog.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='sources'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("index: sources: %w", err)
	}
	if n == 0 {
		return []SourceStats{}, nil
	}
	// A catalog of an earlier version gains the columns it lacks.
	if err := EnsureCatalog(ctx, catalog); err != nil {
		return nil, err
	}
	ix := &Index{catalog: catalog}
	return ix.Sources(ctx)
}

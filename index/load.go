package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/index/runs"
	"github.com/evidx/evidx/ingest/identity"
	"golang.org/x/sync/errgroup"
)

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// Origin says where a dataset file came from: an evidence item and the path
// inside it, or zero for a file handed over directly.
type Origin struct {
	EvidenceID   string `json:"evidence"`
	EvidencePath string `json:"evidence_path,omitempty"`
}

// FileInfo is what a dataset reader reports about the file it parsed. The
// datasets pipeline (package ingest) fills it; the index stores it.
type FileInfo struct {
	SHA256      string // hex SHA-256 the reader computed; "" if none. Checked against the index's own.
	Format      string
	Encoding    string
	Compression string
	Rows        int64
	Rejected    int64
	Invalid     map[identity.Kind]int64
	// Columns (a JSON array the reader defines: which column was taken as
	// which kind and why) and Problems (doubts about the counts) are
	// stored with the source as given.
	Columns  json.RawMessage
	Problems []string
}

// Feed streams one dataset's sightings into sink, in file order, and
// returns what it learnt about the file. sink may be called from one
// goroutine at a time or several; it copies the sightings, so the caller may
// reuse the slice once sink returns. sink's error (the load failed or ctx
// ended) must make Feed return.
type Feed func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error)

// ReadFunc reads a dataset file; package ingest's ReadDataset fits it once
// its options are bound.
type ReadFunc func(ctx context.Context, path string, sink func([]identity.Sighting) error) (FileInfo, error)

// Source names a dataset before it is loaded.
type Source struct {
	Name   string // shown in stats and search; defaults to the base name of Path
	SHA256 string // hex SHA-256 of the file; the key that makes re-adding a no-op
	Size   int64  // bytes
	Path   string // host path it is read from ("" when streamed)
	Origin Origin
}

// SourceStats is one row of the catalog's sources table.
type SourceStats struct {
	ID          int64                   `json:"id"`
	Name        string                  `json:"name"`
	SHA256      string                  `json:"sha256"`
	Size        int64                   `json:"size"`
	Evidence    string                  `json:"evidence,omitempty"`
	EvidPath    string                  `json:"evidence_path,omitempty"`
	Path        string                  `json:"path,omitempty"`
	Format      string                  `json:"format,omitempty"`
	Encoding    string                  `json:"encoding,omitempty"`
	Compression string                  `json:"compression,omitempty"`
	Rows        int64                   `json:"rows"`
	Rejected    int64                   `json:"rejected"`
	Sightings   int64                   `json:"sightings"`
	Invalid     map[identity.Kind]int64 `json:"invalid"`
	Unique      map[identity.Kind]int64 `json:"unique"`
	New         map[identity.Kind]int64 `json:"new"`
	Status      string                  `json:"status"`
	Columns     json.RawMessage         `json:"columns,omitempty"`  // as the reader reported them
	Problems    []string                `json:"problems,omitempty"` // doubts the reader had about the counts
	Skipped     bool                    `json:"skipped,omitempty"`  // already ingested: nothing done
	// AlsoFound lists further places the same file was found (evidence
	// items, or handed over) after it was first ingested.
	AlsoFound []Origin `json:"also_found,omitempty"`
	Started   string   `json:"started"`
	Finished  string   `json:"finished,omitempty"`
	Seconds   float64  `json:"seconds"`

	// shared counts, per source loaded before this one, the identities
	// both hold (nil when not recorded: a catalog of an earlier version).
	shared map[int64]int64
}

// Progress receives load progress: Read while the file is read (the
// sightings the reader just handed over), then Write while the shards are
// written (records merged so far, of total), from several goroutines.
type Progress interface {
	Read(sightings int64)
	Write(done, total int64)
}

// NoProgress discards progress.
type NoProgress struct{}

// Read does nothing.
func (NoProgress) Read(int64) {}

// Write does nothing.
func (NoProgress) Write(int64, int64) {}

// AddDataset ingests the dataset file at path: it skips it when a source
// with the file's SHA-256 is done, else loads it with read and records it.
// name "" means the file's base name. The file is read once: read reports
// the SHA-256 of the bytes it parsed, which is the one recorded. Only when
// a done source has the same size (the file may be one already ingested)
// is it hashed first, so that re-adding a file costs a hash, not a parse.
// A load killed at any moment is finished by calling AddDataset again on
// the same file.
func (ix *Index) AddDataset(ctx context.Context, path, name string, origin Origin, read ReadFunc, p Progress) (SourceStats, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: %w", err)
	}
	if name == "" {
		name = filepath.Base(path)
	}
	src := Source{Name: name, Size: fi.Size(), Path: path, Origin: origin}
	var sameSize bool
	if err := ix.catalog.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE size=? AND status='done')`, src.Size).Scan(&sameSize); err != nil {
		return SourceStats{}, fmt.Errorf("index: sources: %w", err)
	}
	if sameSize {
		if src.SHA256, src.Size, err = hashFile(ctx, path); err != nil {
			return SourceStats{}, err
		}
	}
	return ix.add(ctx, src, func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		return read(ctx, path, sink)
	}, p)
}

// hashFile returns the hex SHA-256 and size of a file, read-only.
func hashFile(ctx context.Context, path string) (string, int64, error) {
	sum, n, err := digest.SHA256File(ctx, path)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("index: %w", err)
	}
	return sum, n, err
}

// AddSource loads one source's sightings from feed; src.SHA256 must be
// set. See add.
func (ix *Index) AddSource(ctx context.Context, src Source, feed Feed, p Progress) (SourceStats, error) {
	if src.SHA256 == "" {
		return SourceStats{}, errors.New("index: source without SHA-256")
	}
	return ix.add(ctx, src, feed, p)
}

// add loads one source under the load lock. Steps, each safe to be killed
// at: (1) a source with src.SHA256 in status done is returned with Skipped
// set (its place recorded when new); (2) the feed is read into an external
// sort, in temporary files only; without src.SHA256 the feed's own hash
// names the source, and step 1 is taken then; (3) every source left in
// status loading by a killed run has its sightings deleted from every
// shard, and removals a killed RemoveSource left are finished; (4) the source row is inserted (or reused) in status loading;
// (5) the shards are written; (6) the row gets its counts and status done in
// one statement. Counts are therefore those of one clean run, whatever
// happened before.
func (ix *Index) add(ctx context.Context, src Source, feed Feed, p Progress) (SourceStats, error) {
	if p == nil {
		p = NoProgress{}
	}
	if src.Name == "" {
		src.Name = filepath.Base(src.Path)
	}
	unlock, err := ix.lock(ctx)
	if err != nil {
		return SourceStats{}, err
	}
	defer unlock()

	if src.SHA256 != "" {
		if prev, err := ix.skipDone(ctx, src); prev != nil || err != nil {
			return derefStats(prev), err
		}
	}
	start := time.Now().UTC()
	sorted, err := ix.sortFeed(ctx, feed, p)
	if sorted != nil {
		defer sorted.close()
	}
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: load %s: %w", src.Name, err)
	}
	info := sorted.info
	switch {
	case src.SHA256 == "" && info.SHA256 == "":
		if src.Path == "" {
			return SourceStats{}, fmt.Errorf("index: %s: no SHA-256 from the reader and no file to hash", src.Name)
		}
		if src.SHA256, src.Size, err = hashFile(ctx, src.Path); err != nil {
			return SourceStats{}, err
		}
	case src.SHA256 == "":
		src.SHA256 = strings.ToLower(info.SHA256)
	case info.SHA256 != "" && !strings.EqualFold(info.SHA256, src.SHA256):
		return SourceStats{}, fmt.Errorf("%w: %s: sha256 %s before, %s while parsing", ErrChanged, src.Name, src.SHA256, info.SHA256)
	}
	if prev, err := ix.skipDone(ctx, src); prev != nil || err != nil {
		return derefStats(prev), err
	}
	if _, err := ix.finishRemovals(ctx, src.SHA256); err != nil {
		return SourceStats{}, err
	}
	id, err := ix.beginSource(ctx, src, start)
	if err != nil {
		return SourceStats{}, err
	}
	st, err := ix.writeShards(ctx, id, sorted, p)
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: load %s: %w", src.Name, err)
	}
	end := time.Now().UTC()
	out := SourceStats{
		ID: id, Name: src.Name, SHA256: src.SHA256, Size: src.Size,
		Evidence: src.Origin.EvidenceID, EvidPath: src.Origin.EvidencePath, Path: src.Path,
		Format: info.Format, Encoding: info.Encoding, Compression: info.Compression,
		Rows: info.Rows, Rejected: info.Rejected, Sightings: st.sightings,
		Invalid: nonNil(info.Invalid), Unique: st.unique, New: st.new,
		Columns: info.Columns, Problems: info.Problems,
		Status: "done", Started: start.Format(time.RFC3339Nano), Finished: end.Format(time.RFC3339Nano),
		Seconds: end.Sub(start).Seconds(),
	}
	inv, _ := json.Marshal(out.Invalid)
	uq, _ := json.Marshal(out.Unique)
	nw, _ := json.Marshal(out.New)
	sh, _ := json.Marshal(st.shared)
	cols := "[]"
	if len(out.Columns) > 0 {
		cols = string(out.Columns)
	}
	probs, _ := json.Marshal(nonNilStrings(out.Problems))
	_, err = ix.catalog.ExecContext(ctx, `UPDATE sources SET format=?, encoding=?, compression=?,
		rows=?, rejected=?, sightings=?, invalid_json=?, unique_json=?, new_json=?, shared_json=?,
		columns_json=?, problems_json=?, status='done', finished=?, seconds=? WHERE id=?`,
		out.Format, out.Encoding, out.Compression, out.Rows, out.Rejected, out.Sightings,
		string(inv), string(uq), string(nw), string(sh), cols, string(probs), out.Finished, out.Seconds, id)
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: finish source %s: %w", src.Name, err)
	}
	return out, nil
}

func derefStats(s *SourceStats) SourceStats {
	if s == nil {
		return SourceStats{}
	}
	return *s
}

// skipDone returns the done source with src's SHA-256, marked Skipped, or
// nil. When src was found somewhere else than the recorded places, the new
// place is added to source_origins: the file is not loaded again, but
// stats per evidence item count it.
func (ix *Index) skipDone(ctx context.Context, src Source) (*SourceStats, error) {
	prev, err := ix.sourceBySHA(ctx, src.SHA256)
	if err != nil || prev == nil || prev.Status != "done" {
		return nil, err
	}
	if src.Origin != (Origin{EvidenceID: prev.Evidence, EvidencePath: prev.EvidPath}) {
		if _, err := ix.catalog.ExecContext(ctx, `INSERT OR IGNORE INTO source_origins(source_id, evidence_id, evidence_path, path, added)
			VALUES (?, ?, ?, ?, ?)`, prev.ID, src.Origin.EvidenceID, src.Origin.EvidencePath, src.Path,
			time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return nil, fmt.Errorf("index: record origin of %s: %w", src.Name, err)
		}
		if prev, err = ix.sourceBySHA(ctx, src.SHA256); err != nil {
			return nil, err
		}
	}
	prev.Skipped = true
	return prev, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNil(m map[identity.Kind]int64) map[identity.Kind]int64 {
	if m == nil {
		return map[identity.Kind]int64{}
	}
	return m
}

// beginSource inserts the source row in status loading, or reuses the row a
// killed run of the same file left (its data was purged by recover).
func (ix *Index) beginSource(ctx context.Context, src Source, start time.Time) (int64, error) {
	var evid, evpath, path any
	if src.Origin.EvidenceID != "" {
		evid = src.Origin.EvidenceID
		evpath = src.Origin.EvidencePath
	}
	if src.Path != "" {
		path = src.Path
	}
	var id int64
	err := ix.catalog.QueryRowContext(ctx, `INSERT INTO sources(name, sha256, size, evidence_id, evidence_path, path, status, started)
		VALUES (?, ?, ?, ?, ?, ?, 'loading', ?)
		ON CONFLICT(sha256) DO UPDATE SET name=excluded.name, size=excluded.size, evidence_id=excluded.evidence_id,
			evidence_path=excluded.evidence_path, path=excluded.path, started=excluded.started
		WHERE status='loading'
		RETURNING id`,
		src.Name, src.SHA256, src.Size, evid, evpath, path, start.Format(time.RFC3339Nano)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("index: begin source %s: %w", src.Name, err)
	}
	return id, nil
}

// recover purges every source left in status loading (a killed or failed
// run): its sightings go from every shard, and with them the identities
// only it held.
// The row itself stays when it is the file about to be loaded again (keep),
// and is deleted otherwise. Idempotent: being killed here is harmless.
func (ix *Index) recover(ctx context.Context, keep string) error {
	rows, err := ix.catalog.QueryContext(ctx, `SELECT id, sha256 FROM sources WHERE status='loading'`)
	if err != nil {
		return fmt.Errorf("index: recover: %w", err)
	}
	type stale struct {
		id  int64
		sha string
	}
	var list []stale
	for rows.Next() {
		var s stale
		if err := rows.Scan(&s.id, &s.sha); err != nil {
			rows.Close()
			return fmt.Errorf("index: recover: %w", err)
		}
		list = append(list, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: recover: %w", err)
	}
	for _, s := range list {
		if err := ix.purge(ctx, s.id); err != nil {
			return err
		}
		if s.sha != keep {
			if _, err := ix.catalog.ExecContext(ctx, `DELETE FROM sources WHERE id=? AND status='loading'`, s.id); err != nil {
				return fmt.Errorf("index: recover source %d: %w", s.id, err)
			}
		}
	}
	return nil
}

// purge deletes source id's sightings from every existing shard, shards in
// parallel.
func (ix *Index) purge(ctx context.Context, id int64) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ix.opts.Workers)
	for i := range ix.n {
		if _, err := os.Stat(ix.ShardPath(i)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		g.Go(func() error {
			db, err := ix.openShardWrite(gctx, i)
			if err != nil {
				return err
			}
			_, err = db.ExecContext(gctx, fmt.Sprintf(`DELETE FROM sightings WHERE source_id=%d`, id))
			if cerr := closeShardWrite(gctx, db); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("index: purge source %d from shard %d: %w", id, i, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// sourceBySHA returns the source with that SHA-256, or nil.
func (ix *Index) sourceBySHA(ctx context.Context, sum string) (*SourceStats, error) {
	list, err := ix.querySources(ctx, `WHERE sha256=?`, sum)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return &list[0], nil
}

// loadStats is what load measured.
type loadStats struct {
	info      FileInfo
	sightings int64
	unique    map[identity.Kind]int64
	new       map[identity.Kind]int64
	shared    map[int64]int64 // per earlier source: identities it shares with this one
}

// sortDirPrefix names the directories of the per-load external sort, in
// the shard directory (0700, like the shards: the runs hold the same
// personal data).
const sortDirPrefix = "sort-"

// sortedFeed is a source read into an external sort, ready to be
// written into the shards.
type sortedFeed struct {
	info   FileInfo
	sorter *runs.Sorter
	dir    string
}

func (f *sortedFeed) close() {
	f.sorter.Close()
	os.RemoveAll(f.dir)
}

// sortFeed is the first phase of a load: every sighting of the feed goes
// into an external sort (package runs) that spills key-sorted runs in the
// background, in bounded memory. The shards are not touched.
func (ix *Index) sortFeed(ctx context.Context, feed Feed, p Progress) (*sortedFeed, error) {
	// A killed load leaves its sort directory behind; loads are serialised
	// by the case lock, so any there now is stale.
	if old, err := filepath.Glob(filepath.Join(ix.dir, sortDirPrefix+"*")); err == nil {
		for _, d := range old {
			os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp(ix.dir, sortDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	sorter, err := runs.New(dir, ix.n, ix.opts.SortBytes)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("index: %w", err)
	}
	sf := &sortedFeed{sorter: sorter, dir: dir}
	var (
		mu     sync.Mutex
		closed bool
	)
	sink := func(ss []identity.Sighting) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errors.New("index: sink called after the feed returned")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range ss {
			if s.Value == "" || s.Kind == "" {
				continue
			}
			if err := sorter.Add(dedupe.Partition(string(s.Kind), s.Value, ix.n), string(s.Kind), s.Value, s.Loc); err != nil {
				return err
			}
		}
		p.Read(int64(len(ss)))
		return nil
	}
	sf.info, err = feed(ctx, sink)
	mu.Lock()
	closed = true
	mu.Unlock()
	if err != nil {
		return sf, err
	}
	if err := sorter.Finish(ctx); err != nil {
		return sf, fmt.Errorf("sort: %w", err)
	}
	return sf, nil
}

// writeShards is the second phase of a load: shards in parallel, each
// merges its part of the runs and inserts every identity once, in key
// order, in long transactions: about three times the rate of inserts in
// file order.
func (ix *Index) writeShards(ctx context.Context, srcID int64, sf *sortedFeed, p Progress) (loadStats, error) {
	var others bool
	if err := ix.catalog.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE status='done' AND id != ?)`, srcID).Scan(&others); err != nil {
		return loadStats{}, fmt.Errorf("index: sources: %w", err)
	}
	results := make([]shardResult, ix.n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ix.opts.Workers)
	for i := range ix.n {
		g.Go(func() error {
			r, err := ix.writeShard(gctx, i, srcID, others, sf.sorter, p)
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return loadStats{}, err // committed parts stay until recover purges them: the source is still "loading"
	}
	st := loadStats{info: sf.info, unique: map[identity.Kind]int64{}, new: map[identity.Kind]int64{}, shared: map[int64]int64{}}
	for _, r := range results {
		st.sightings += r.sightings
		for id, n := range r.shared {
			st.shared[id] += n
		}
		for k, v := range r.unique {
			st.unique[k] += v
		}
		for k, v := range r.new {
			st.new[k] += v
		}
	}
	return st, nil
}

// shardResult is what one shard's write counted.
type shardResult struct {
	sightings int64
	unique    map[identity.Kind]int64
	new       map[identity.Kind]int64
	shared    map[int64]int64 // per earlier source: identities it already held
}

// bulkRows is how many rows one cgo call inserts.
const bulkRows = 4096

// writeShard merges shard i's part of the sorted runs into the shard file.
// Every identity arrives once; others says whether earlier sources exist,
// whose identities make a row "already known" rather than new.
func (ix *Index) writeShard(ctx context.Context, i int, src int64, others bool, sorter *runs.Sorter, p Progress) (shardResult, error) {
	res := shardResult{unique: map[identity.Kind]int64{}, new: map[identity.Kind]int64{}}
	path := ix.ShardPath(i)
	if err := createPrivate(path); err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	b, err := openBulk(path, ix.shardSetup(i), src, others)
	if err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	defer b.close() // rolls back what is not committed
	got, err := b.queryText(shardCountQuery)
	if err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	if err := ix.checkShardCount(i, got); err != nil {
		return res, err
	}
	if err := b.exec("BEGIN"); err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	var (
		batch    bulkBatch
		sinceTx  int
		unique   [256]int64 // by kind index in kinds
		newCount [256]int64
		kinds    []string
	)
	kindIndex := func(k string) int {
		for j, x := range kinds {
			if x == k {
				return j
			}
		}
		kinds = append(kinds, k)
		return len(kinds) - 1
	}
	flush := func() error {
		if err := b.put(&batch); err != nil {
			return err
		}
		for j, k := range batch.kinds {
			ki := kindIndex(k)
			unique[ki]++
			if !others || batch.isnew[j] != 0 {
				newCount[ki]++
			}
		}
		sinceTx += batch.len()
		batch.reset()
		if sinceTx >= ix.opts.CommitRows {
			if err := b.exec("COMMIT"); err != nil {
				return err
			}
			if err := b.exec("BEGIN"); err != nil {
				return err
			}
			sinceTx = 0
		}
		p.Write(sorter.Merged(), sorter.Spilled())
		return ctx.Err()
	}
	err = sorter.Merge(ctx, i, func(e runs.Entry) error {
		batch.add(e.Kind, e.Value, e.Loc, e.Count)
		res.sightings += e.Count
		if batch.len() >= bulkRows {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = b.exec("COMMIT")
	}
	if err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	if err := b.close(); err != nil {
		return res, fmt.Errorf("index: shard %d: %w", i, err)
	}
	for j, k := range kinds {
		res.unique[identity.Kind(k)] = unique[j]
		res.new[identity.Kind(k)] = newCount[j]
	}
	res.shared = b.shared
	return res, nil
}

package index

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/evidx/evidx/dedupe"
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
	Skipped     bool                    `json:"skipped,omitempty"` // already ingested: nothing done
	// AlsoFound lists further places the same file was found (evidence
	// items, or handed over) after it was first ingested.
	AlsoFound []Origin `json:"also_found,omitempty"`
	Started   string   `json:"started"`
	Finished  string   `json:"finished,omitempty"`
	Seconds   float64  `json:"seconds"`
}

// Progress receives load progress. Stored is called by shard writers,
// possibly concurrently, with the number of sightings they just stored.
type Progress interface {
	Stored(sightings int64)
}

// NoProgress discards progress.
type NoProgress struct{}

// Stored does nothing.
func (NoProgress) Stored(int64) {}

// AddDataset ingests the dataset file at path: it hashes the file, skips it
// when a source with that SHA-256 is done, else loads it with read and
// records it. name "" means the file's base name. A load killed at any
// moment is finished by calling AddDataset again on the same file.
func (ix *Index) AddDataset(ctx context.Context, path, name string, origin Origin, read ReadFunc, p Progress) (SourceStats, error) {
	sum, size, err := hashFile(ctx, path)
	if err != nil {
		return SourceStats{}, err
	}
	if name == "" {
		name = filepath.Base(path)
	}
	src := Source{Name: name, SHA256: sum, Size: size, Path: path, Origin: origin}
	return ix.AddSource(ctx, src, func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		return read(ctx, path, sink)
	}, p)
}

// hashFile returns the hex SHA-256 and size of a file, read-only.
func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("index: read %s at %#x: %w", path, n, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// AddSource loads one source's sightings from feed. Steps, each safe to be
// killed at: (1) under the load lock, every source left in status loading
// by a killed run has its sightings deleted from every shard (which also
// removes the identities only it held); (2) a source with src.SHA256 in status done is
// returned with Skipped set; (3) the source row is inserted (or reused)
// with status loading; (4) the sightings are loaded; (5) the row gets its
// counts and status done in one statement. Counts are therefore those of one
// clean run, whatever happened before.
func (ix *Index) AddSource(ctx context.Context, src Source, feed Feed, p Progress) (SourceStats, error) {
	if p == nil {
		p = NoProgress{}
	}
	if src.SHA256 == "" {
		return SourceStats{}, errors.New("index: source without SHA-256")
	}
	if src.Name == "" {
		src.Name = filepath.Base(src.Path)
	}
	unlock, err := ix.lock(ctx)
	if err != nil {
		return SourceStats{}, err
	}
	defer unlock()

	if prev, err := ix.sourceBySHA(ctx, src.SHA256); err != nil {
		return SourceStats{}, err
	} else if prev != nil && prev.Status == "done" {
		if src.Origin != (Origin{EvidenceID: prev.Evidence, EvidencePath: prev.EvidPath}) {
			// The same bytes somewhere else: not loaded again, but where
			// they were found is recorded (stats per evidence item count it).
			if _, err := ix.catalog.ExecContext(ctx, `INSERT OR IGNORE INTO source_origins(source_id, evidence_id, evidence_path, path, added)
				VALUES (?, ?, ?, ?, ?)`, prev.ID, src.Origin.EvidenceID, src.Origin.EvidencePath, src.Path,
				time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
				return SourceStats{}, fmt.Errorf("index: record origin of %s: %w", src.Name, err)
			}
			if prev, err = ix.sourceBySHA(ctx, src.SHA256); err != nil {
				return SourceStats{}, err
			}
		}
		prev.Skipped = true
		return *prev, nil
	}
	if err := ix.recover(ctx, src.SHA256); err != nil {
		return SourceStats{}, err
	}
	start := time.Now().UTC()
	id, err := ix.beginSource(ctx, src, start)
	if err != nil {
		return SourceStats{}, err
	}
	st, err := ix.load(ctx, id, feed, p)
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: load %s: %w", src.Name, err)
	}
	if st.info.SHA256 != "" && !strings.EqualFold(st.info.SHA256, src.SHA256) {
		return SourceStats{}, fmt.Errorf("%w: %s: sha256 %s before, %s while parsing", ErrChanged, src.Name, src.SHA256, st.info.SHA256)
	}
	end := time.Now().UTC()
	out := SourceStats{
		ID: id, Name: src.Name, SHA256: src.SHA256, Size: src.Size,
		Evidence: src.Origin.EvidenceID, EvidPath: src.Origin.EvidencePath, Path: src.Path,
		Format: st.info.Format, Encoding: st.info.Encoding, Compression: st.info.Compression,
		Rows: st.info.Rows, Rejected: st.info.Rejected, Sightings: st.sightings,
		Invalid: nonNil(st.info.Invalid), Unique: st.unique, New: st.new,
		Status: "done", Started: start.Format(time.RFC3339Nano), Finished: end.Format(time.RFC3339Nano),
		Seconds: end.Sub(start).Seconds(),
	}
	inv, _ := json.Marshal(out.Invalid)
	uq, _ := json.Marshal(out.Unique)
	nw, _ := json.Marshal(out.New)
	_, err = ix.catalog.ExecContext(ctx, `UPDATE sources SET format=?, encoding=?, compression=?,
		rows=?, rejected=?, sightings=?, invalid_json=?, unique_json=?, new_json=?,
		status='done', finished=?, seconds=? WHERE id=?`,
		out.Format, out.Encoding, out.Compression, out.Rows, out.Rejected, out.Sightings,
		string(inv), string(uq), string(nw), out.Finished, out.Seconds, id)
	if err != nil {
		return SourceStats{}, fmt.Errorf("index: finish source %s: %w", src.Name, err)
	}
	return out, nil
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
}

// load routes feed's sightings to one writer goroutine per shard. At most
// opts.Workers writers run SQL at once; the router blocks while a shard's
// writer is busy, so memory stays bounded by about
// shards × 3 × BatchSize sightings (filling, being written, recycled).
func (ix *Index) load(ctx context.Context, srcID int64, feed Feed, p Progress) (loadStats, error) {
	var others bool
	if err := ix.catalog.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE status='done' AND id != ?)`, srcID).Scan(&others); err != nil {
		return loadStats{}, fmt.Errorf("index: sources: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	sem := make(chan struct{}, ix.opts.Workers)
	// free recycles batch slices from the writers back to the router:
	// a load allocates about shards × 3 batches, not one per batch.
	free := make(chan []identity.Sighting, ix.n)
	writers := make([]*shardWriter, ix.n)
	queues := make([]chan []identity.Sighting, ix.n)
	for i := range ix.n {
		db, err := ix.openShardWrite(ctx, i)
		if err != nil {
			for _, w := range writers[:i] {
				w.db.Close()
			}
			return loadStats{}, err
		}
		writers[i] = newShardWriter(db, i, srcID, others, ix.opts.CommitRows)
		queues[i] = make(chan []identity.Sighting) // unbuffered: a shard holds at most the batch filling and the one being written
	}
	for i, w := range writers {
		g.Go(func() error {
			defer func() {
				for range queues[i] { // drain so the router never blocks on a dead writer
				}
			}()
			for batch := range queues[i] {
				select {
				case sem <- struct{}{}:
				case <-gctx.Done():
					return gctx.Err()
				}
				n, err := w.write(gctx, batch)
				<-sem
				if err != nil {
					return err
				}
				p.Stored(n)
				clear(batch) // drop the strings before the slice is reused
				select {
				case free <- batch[:0]:
				default:
				}
			}
			sem <- struct{}{}
			err := w.finish(gctx)
			<-sem
			return err
		})
	}

	var (
		mu        sync.Mutex
		pending   = make([][]identity.Sighting, ix.n)
		closed    bool
		batchSize = ix.opts.BatchSize
	)
	send := func(i int, b []identity.Sighting) error {
		select {
		case queues[i] <- b:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}
	sink := func(ss []identity.Sighting) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errors.New("index: sink called after the feed returned")
		}
		if err := gctx.Err(); err != nil {
			return err
		}
		for _, s := range ss {
			if s.Value == "" || s.Kind == "" {
				continue
			}
			i := dedupe.Partition(string(s.Kind), s.Value, ix.n)
			if pending[i] == nil {
				select {
				case pending[i] = <-free:
				default:
					pending[i] = make([]identity.Sighting, 0, batchSize)
				}
			}
			pending[i] = append(pending[i], s)
			if len(pending[i]) >= batchSize {
				if err := send(i, pending[i]); err != nil {
					return err
				}
				pending[i] = nil
			}
		}
		return nil
	}
	info, ferr := feed(gctx, sink)
	mu.Lock()
	closed = true
	if ferr == nil {
		for i, b := range pending {
			if len(b) > 0 {
				if ferr = send(i, b); ferr != nil {
					break
				}
			}
		}
	}
	mu.Unlock()
	for _, q := range queues {
		close(q)
	}
	werr := g.Wait()
	var cerr error
	for i, w := range writers {
		if ferr != nil || werr != nil {
			w.abort() // uncommitted work is rolled back; the source stays "loading"
			continue
		}
		if err := closeShardWrite(ctx, w.db); err != nil && cerr == nil {
			cerr = fmt.Errorf("index: close shard %d: %w", i, err)
		}
	}
	if ferr != nil {
		if werr != nil && errors.Is(ferr, context.Canceled) && ctx.Err() == nil {
			return loadStats{}, werr // the feed stopped because a writer failed
		}
		return loadStats{}, ferr
	}
	if werr != nil {
		return loadStats{}, werr
	}
	if cerr != nil {
		return loadStats{}, cerr
	}
	st := loadStats{info: info, unique: map[identity.Kind]int64{}, new: map[identity.Kind]int64{}}
	for _, w := range writers {
		st.sightings += w.sightings
		for k, v := range w.unique {
			st.unique[k] += v
		}
		for k, v := range w.new {
			st.new[k] += v
		}
	}
	return st, nil
}

// shardWriter writes one source's sightings into one shard inside long
// transactions. Used by one goroutine.
type shardWriter struct {
	db      *sql.DB
	conn    *sql.Conn
	shard   int
	src     int64
	others  bool // other sources exist in the case: "new" needs a lookup
	inTx    bool
	sinceTx int
	commit  int

	entries  []entry
	perm     []int32
	jb1, jb2 []byte    // JSON buffers, reused
	jCount   *sql.Stmt // counts keys held by this source / by no source
	jSig     *sql.Stmt // upserts a chunk
	rCount   *sql.Stmt // the same for one row (values JSON cannot carry)
	rSig     *sql.Stmt

	sightings int64
	unique    map[identity.Kind]int64
	new       map[identity.Kind]int64
}

// entry is one distinct identity of a batch: its first location and how
// many times the batch saw it.
type entry struct {
	kind  identity.Kind
	value string
	loc   string
	count int64
}

func newShardWriter(db *sql.DB, shard int, src int64, others bool, commit int) *shardWriter {
	return &shardWriter{db: db, shard: shard, src: src, others: others, commit: commit,
		unique: map[identity.Kind]int64{}, new: map[identity.Kind]int64{}}
}

// prepare makes the writer's statements (the source id is a literal in
// them). Counting: T = keys this source already holds (seen in an earlier
// batch), N = keys no source holds. Then the chunk adds len−T identities
// to the source and N to the case. With no other source in the case,
// N = len−T and its lookup is skipped.
func (w *shardWriter) prepare(ctx context.Context) error {
	if w.jSig != nil {
		return nil
	}
	c, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	w.conn = c
	countExpr := `count(*) FILTER (WHERE EXISTS (SELECT 1 FROM sightings s WHERE s.kind = ?1 AND s.value = %[2]s AND s.source_id = %[1]d)), `
	if w.others {
		countExpr += `count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM sightings s WHERE s.kind = ?1 AND s.value = %[2]s))`
	} else {
		countExpr += `-1`
	}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.jCount, `SELECT ` + fmt.Sprintf(countExpr, w.src, "j.value") + ` FROM json_each(?2) j`},
		{&w.jSig, fmt.Sprintf(`INSERT INTO sightings(kind, value, source_id, occurrences, first_loc)
			SELECT ?1, j.value->>0, %d, j.value->>1, j.value->>2 FROM json_each(?2) j WHERE true
			ON CONFLICT(kind, value, source_id) DO UPDATE SET occurrences = occurrences + excluded.occurrences`, w.src)},
		{&w.rCount, `SELECT ` + fmt.Sprintf(countExpr, w.src, "?2")},
		{&w.rSig, fmt.Sprintf(`INSERT INTO sightings(kind, value, source_id, occurrences, first_loc) VALUES (?1, ?2, %d, ?3, ?4)
			ON CONFLICT(kind, value, source_id) DO UPDATE SET occurrences = occurrences + excluded.occurrences`, w.src)},
	} {
		st, err := w.conn.PrepareContext(ctx, q.sql)
		if err != nil {
			return err
		}
		*q.dst = st
	}
	return nil
}

func (w *shardWriter) exec(ctx context.Context, q string) error {
	if err := w.prepare(ctx); err != nil {
		return err
	}
	_, err := w.conn.ExecContext(ctx, q)
	return err
}

// write stores one batch (which it sorts in place) and returns how many
// sightings it held.
func (w *shardWriter) write(ctx context.Context, batch []identity.Sighting) (int64, error) {
	// Sort by key, then by position in the batch: the first of equal keys
	// is the first in file order, and its Loc the first location. Sorted
	// keys also make the B-tree inserts local.
	perm := w.perm[:0]
	for i := range batch {
		perm = append(perm, int32(i))
	}
	slices.SortFunc(perm, func(x, y int32) int {
		a, b := &batch[x], &batch[y]
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Value, b.Value); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	w.perm = perm
	es := w.entries[:0]
	for i := 0; i < len(perm); {
		first := &batch[perm[i]]
		j := i + 1
		for j < len(perm) && batch[perm[j]].Kind == first.Kind && batch[perm[j]].Value == first.Value {
			j++
		}
		es = append(es, entry{first.Kind, first.Value, first.Loc, int64(j - i)})
		i = j
	}
	w.entries = es
	if !w.inTx {
		if err := w.exec(ctx, "BEGIN"); err != nil {
			return 0, w.errf(err)
		}
		w.inTx = true
	}
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].kind == es[i].kind {
			j++
		}
		if err := w.writeKind(ctx, es[i:j]); err != nil {
			return 0, w.errf(err)
		}
		i = j
	}
	w.sightings += int64(len(batch))
	w.sinceTx += len(es)
	if w.sinceTx >= w.commit {
		if err := w.exec(ctx, "COMMIT"); err != nil {
			return 0, w.errf(err)
		}
		w.inTx, w.sinceTx = false, 0
	}
	return int64(len(batch)), nil
}

func (w *shardWriter) errf(err error) error {
	return fmt.Errorf("shard %d: %w", w.shard, err)
}

// jsonChunk is how many entries one JSON-array statement carries.
const jsonChunk = 2048

// writeKind stores the distinct, key-sorted entries of one kind, in chunks
// passed to SQLite as one JSON array each (json_each): two bound
// parameters per chunk instead of four per row, and SQLite does the rest
// in C. Chunks with values JSON cannot carry go row by row.
func (w *shardWriter) writeKind(ctx context.Context, es []entry) error {
	for off := 0; off < len(es); off += jsonChunk {
		chunk := es[off:min(off+jsonChunk, len(es))]
		ok, err := w.writeJSON(ctx, chunk)
		if err == nil && !ok {
			err = w.writeRows(ctx, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string. ok is false when s cannot
// make the trip through JSON unchanged (invalid UTF-8, NUL); the ASCII
// common case is checked in the same pass as the copy.
func appendJSONString(b []byte, s string) (_ []byte, ok bool) {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == 0:
			return b, false
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			ascii = ascii && c < 0x80
			b = append(b, c)
		}
	}
	return append(b, '"'), ascii || utf8.ValidString(s)
}

// count adds one chunk's counts (see prepare) to the writer's totals.
func (w *shardWriter) count(kind identity.Kind, n, held, unheld int64) {
	w.unique[kind] += n - held
	if w.others {
		w.new[kind] += unheld
	} else {
		w.new[kind] += n - held
	}
}

// writeJSON counts then upserts one chunk. ok is false, and nothing is
// written, when a value or location cannot travel as JSON.
func (w *shardWriter) writeJSON(ctx context.Context, es []entry) (ok bool, err error) {
	kind := string(es[0].kind)
	ids, sig := append(w.jb1[:0], '['), append(w.jb2[:0], '[')
	good := true
	for i := range es {
		if i > 0 {
			ids, sig = append(ids, ','), append(sig, ',')
		}
		var okV, okL bool
		start := len(ids)
		ids, okV = appendJSONString(ids, es[i].value)
		sig = append(sig, '[')
		sig = append(sig, ids[start:]...) // the value, already encoded
		sig = append(sig, ',')
		sig = strconv.AppendInt(sig, es[i].count, 10)
		sig = append(sig, ',')
		sig, okL = appendJSONString(sig, es[i].loc)
		sig = append(sig, ']')
		if !okV || !okL {
			good = false
			break
		}
	}
	ids, sig = append(ids, ']'), append(sig, ']')
	w.jb1, w.jb2 = ids, sig
	if !good {
		return false, nil
	}
	// Strings, not []byte: the driver binds []byte as a BLOB, and the JSON
	// functions want TEXT.
	var held, unheld int64
	if err := w.jCount.QueryRowContext(ctx, kind, string(ids)).Scan(&held, &unheld); err != nil {
		return false, fmt.Errorf("count sightings: %w", err)
	}
	if _, err := w.jSig.ExecContext(ctx, kind, string(sig)); err != nil {
		return false, fmt.Errorf("upsert sightings: %w", err)
	}
	w.count(es[0].kind, int64(len(es)), held, unheld)
	return true, nil
}

// writeRows counts and upserts entries one row at a time: the path for
// values JSON cannot carry (invalid UTF-8, NUL), which evidence may hold.
func (w *shardWriter) writeRows(ctx context.Context, es []entry) error {
	for _, e := range es {
		var held, unheld int64
		if err := w.rCount.QueryRowContext(ctx, string(e.kind), e.value).Scan(&held, &unheld); err != nil {
			return fmt.Errorf("count sighting: %w", err)
		}
		if _, err := w.rSig.ExecContext(ctx, string(e.kind), e.value, e.count, e.loc); err != nil {
			return fmt.Errorf("upsert sighting: %w", err)
		}
		w.count(e.kind, 1, held, unheld)
	}
	return nil
}

// abort closes the writer's connection and shard without committing.
func (w *shardWriter) abort() {
	w.closeStmts()
	w.db.Close()
}

func (w *shardWriter) closeStmts() {
	for _, s := range []*sql.Stmt{w.jCount, w.jSig, w.rCount, w.rSig} {
		if s != nil {
			s.Close()
		}
	}
	w.jCount, w.jSig, w.rCount, w.rSig = nil, nil, nil, nil
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// finish commits the open transaction and releases the statements.
func (w *shardWriter) finish(ctx context.Context) error {
	if w.inTx {
		if err := w.exec(ctx, "COMMIT"); err != nil {
			return w.errf(err)
		}
		w.inTx = false
	}
	w.closeStmts()
	return nil
}

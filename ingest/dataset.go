// Package ingest orchestrates evidx's ingestion: it turns dataset files
// into normalised identity sightings (ReadDataset) for the dedupe and the
// index shards.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
)

// Options configure ReadDataset. Zero fields take the defaults noted.
type Options struct {
	// Workers is the number of goroutines parsing and normalising chunks
	// (default GOMAXPROCS).
	Workers int
	// Rejects receives malformed rows, one line each:
	// name TAB location TAB reason TAB quoted raw text, where name is Name
	// or else the file's path. Nil discards them. ReadDataset serialises
	// its writes.
	Rejects io.Writer
	// Name, when set, names the file in rejects lines instead of its path
	// (a dataset found on evidence: the item and its path there, not the
	// stored object).
	Name string
	// ConcurrentSink lets ReadDataset call sink from several goroutines at
	// once; by default calls are serialised.
	ConcurrentSink bool
	// NoLoc leaves Sighting.Loc empty (counting needs no locations and
	// saves formatting one per row).
	NoLoc bool
	// SampleRows is how many rows of a table or file decide its column
	// roles from values (default 1000): always its first rows, whatever
	// the chunk size.
	SampleRows int
	// Columns forces column roles: keys are column names or 1-based
	// positions, values identity kinds ("" for none). See ParseColumns.
	Columns map[string]identity.Kind
	// Records bounds the record reader (chunk sizes, bomb limits, spill).
	Records records.Options
	// Progress, when set, is told how many more bytes of the file were
	// read (called from one goroutine at a time).
	Progress func(n int64)
	// Attributes adds, to each record's identities, sightings of its
	// name and address columns (kinds identity.Name, identity.Address) and,
	// in database tables (SQL dumps, SQLite), of its join keys (KindKey,
	// value "column=value"): what person linking needs. They are not
	// identities: a caller that counts must drop them (IsIdentity).
	Attributes bool
	// InOrder hands the batches to sink in the order of the file's
	// records, whatever the Workers: what a sink writing the records out
	// needs to write the same file every time (and the same as the spans
	// of ReadSpan in order). A chunk done before its turn waits (a few
	// per worker at most) while its worker goes on.
	InOrder bool
}

// KindKey is the kind of a join-key sighting (see Options.Attributes): a
// column of a database table that links rows of its tables, value
// "key=value". Columns named like a key ("cid", "user_id", "uid") join
// tables holding the same column name; a table's own "id" column is
// "<table>_id", so that login.customer_id joins customer.id.
const KindKey identity.Kind = "key"

// attrRole returns the attribute role of column name in a table (table ""
// outside databases): Name, Address, KindKey (with the key's name), or "".
func attrRole(name, table string) (identity.Kind, string) {
	// A header known as Other ("uid", "id", "user_id": no identity, never
	// sniffed) can still be a key: only identities and names are not.
	if k, ok := identity.HeaderRole(name); ok && k != identity.Other {
		if k == identity.Name || k == identity.Address {
			return k, ""
		}
		return "", ""
	}
	if table == "" {
		return "", ""
	}
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "id" {
		return KindKey, strings.ToLower(table) + "_id"
	}
	if len(n) > 2 && len(n) <= 40 && (strings.HasSuffix(n, "id") || strings.HasSuffix(n, "_no") || strings.HasSuffix(n, "_key")) {
		return KindKey, n
	}
	return "", ""
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// MemberStats describes one stream of a dataset file (a zip member, or
// the file itself).
type MemberStats struct {
	Member      string `json:"member,omitempty"`
	Format      string `json:"format"`
	Encoding    string `json:"encoding,omitempty"`
	Compression string `json:"compression"`
	Error       string `json:"error,omitempty"`
}

// FileStats is what ReadDataset learnt about a file. Format, Encoding and
// Compression are those of its first stream (Members lists all of a zip).
type FileStats struct {
	Path        string                  `json:"path"`
	SHA256      string                  `json:"sha256"`
	Size        int64                   `json:"size"`
	Format      string                  `json:"format"`
	Encoding    string                  `json:"encoding"`
	Compression string                  `json:"compression"`
	Rows        int64                   `json:"rows"`
	Rejected    int64                   `json:"rejected"`
	Invalid     map[identity.Kind]int64 `json:"invalid"`
	Members     []MemberStats           `json:"members,omitempty"`
	// Columns says which column was taken as which kind and why.
	Columns []ColumnStats `json:"columns"`
	// Yielding is how many rows gave at least one identity.
	Yielding int64 `json:"yielding_rows"`
	// Problems are doubts about the counts: rows that yield nothing,
	// columns whose values do not bear out their role.
	Problems []string `json:"problems"`
}

// ReadDataset streams the dataset file at path (opened read-only) into
// sink as batches of sightings, and hashes the file's SHA-256 in the same
// pass (zip archives, which need random access, are hashed by a second
// sequential read). Rows are parsed and normalised on Options.Workers
// goroutines. A batch and its strings are not reused: sink may keep them.
// On error the stats hold what was read before it.
func ReadDataset(ctx context.Context, path string, opts Options, sink func([]identity.Sighting) error) (FileStats, error) {
	st := FileStats{Path: path, Invalid: zeroKinds()}
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, err
	}
	if !fi.Mode().IsRegular() {
		return st, fmt.Errorf("%s: not a regular file", path)
	}
	st.Size = fi.Size()
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.SampleRows <= 0 {
		opts.SampleRows = 1000
	}
	h := sha256.New()
	var src io.Reader = f
	if opts.Progress != nil {
		src = &progressReader{r: f, fn: opts.Progress}
	}
	tee := io.TeeReader(src, h)

	p := newPipeline(opts, path, sink)
	// Chunks are numbered in the order they are sent (the reader's
	// goroutine): in order, a worker passes a chunk's batches on when
	// every chunk sent before it has passed its own.
	type job struct {
		c *records.Chunk
		n int64
	}
	work := make(chan job, opts.Workers*2)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var turnMu sync.Mutex
	turn := sync.NewCond(&turnMu)
	var next int64 // the chunk whose batches go next
	stopWait := context.AfterFunc(wctx, func() {
		turnMu.Lock()
		turn.Broadcast()
		turnMu.Unlock()
	})
	defer stopWait()
	// A chunk done before its turn waits in ahead, and its worker takes
	// the next chunk; the worker whose chunk is next passes it on with
	// the waiting ones that follow it. Workers wait only when maxAhead
	// chunks are waiting already (that bounds the memory held).
	ahead := map[int64][][]identity.Sighting{}
	maxAhead := int64(4 * opts.Workers)
	pass := func(j job, held [][]identity.Sighting) error {
		turnMu.Lock()
		defer turnMu.Unlock()
		for j.n-next >= maxAhead && wctx.Err() == nil {
			turn.Wait()
		}
		if wctx.Err() != nil {
			return nil // whoever stopped the read reports why
		}
		if j.n != next {
			ahead[j.n] = held
			return nil
		}
		for ok := true; ok; held, ok = ahead[next] {
			delete(ahead, next)
			next++
			for _, b := range held {
				if err := sink(b); err != nil {
					return fmt.Errorf("%w: %w", ErrSink, err)
				}
			}
		}
		turn.Broadcast()
		return nil
	}
	var wg sync.WaitGroup
	results := make([]workerStats, opts.Workers)
	var firstErr error
	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := &results[w]
			for j := range work {
				if wctx.Err() != nil {
					continue
				}
				if opts.InOrder {
					ws.held = nil // the last chunk's may be waiting in ahead
					ws.hold = true
				}
				err := p.process(j.c, ws)
				if err == nil && opts.InOrder {
					err = pass(j, ws.held)
				}
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	var sent int64
	send := func(c *records.Chunk) error {
		select {
		case work <- job{c, sent}:
			sent++
			return nil
		case <-wctx.Done():
			return wctx.Err()
		}
	}
	infos, rerr := records.Read(wctx, records.Input{R: tee, ReaderAt: f, Size: st.Size, Path: path}, opts.Records,
		func(c *records.Chunk) error { return p.admit(c, send) })
	if rerr == nil || wctx.Err() == nil {
		// What was read before a member or stream failed still counts.
		if err := p.finish(send); err != nil && rerr == nil {
			rerr = err
		}
	}
	close(work)
	wg.Wait()
	p.collect(&st, results, infos)
	if firstErr != nil {
		return st, firstErr
	}
	// Damage after rows were read (a truncated INSERT at the end of a
	// dump, a cut gzip stream) loses what follows it, not the rows before:
	// it is named, and the load keeps them, as count does.
	var pe *records.ParseError
	if rerr != nil && errors.As(rerr, &pe) && st.Rows > 0 && wctx.Err() == nil {
		st.Problems = append(st.Problems, fmt.Sprintf("lost from the damage on (%d rows read before it): %v", st.Rows, rerr))
		rerr = nil
	}
	if rerr != nil {
		return st, fmt.Errorf("%s: %w", path, rerr)
	}
	// Hash the rest of the file (bytes the parsers did not need, or all of
	// a zip read through ReaderAt).
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return st, fmt.Errorf("%s: hashing: %w", path, err)
	}
	st.SHA256 = hex.EncodeToString(h.Sum(nil))
	return st, nil
}

func newPipeline(opts Options, path string, sink func([]identity.Sighting) error) *pipeline {
	p := &pipeline{opts: opts, path: path, sink: sink, roles: map[string]*roles{}, schemas: map[string]*schemaState{}, today: identity.TodayOf(time.Now())}
	if !opts.ConcurrentSink {
		p.sinkMu = new(sync.Mutex)
	}
	return p
}

// collect sums the workers' counters into st and describes the streams
// read (infos), once every chunk is processed.
func (p *pipeline) collect(st *FileStats, results []workerStats, infos []*records.Info) {
	cols := map[string]colCount{}
	for i := range results {
		ws := &results[i]
		st.Rows += ws.rows
		st.Rejected += ws.rejected
		st.Yielding += ws.yielding
		for i, k := range identity.Kinds() {
			st.Invalid[k] += ws.invalid[i]
		}
		for k, c := range ws.cols {
			t := cols[k]
			t.valid += c.valid
			t.values += c.values
			cols[k] = t
		}
		for k, s := range ws.late {
			schema, col, _ := strings.Cut(k, "\x00")
			if sst := p.schemas[schema]; sst != nil {
				if sst.late == nil {
					sst.late = map[string]*identity.RoleSampler{}
				}
				if sst.late[col] == nil {
					sst.late[col] = new(identity.RoleSampler)
				}
				sst.late[col].Merge(s)
			}
		}
	}
	st.Columns, st.Problems = p.report(cols, st.Rows, st.Yielding)
	for i, in := range infos {
		m := MemberStats{Member: in.Member, Format: in.Format.Name(), Encoding: in.Encoding, Compression: in.Compression}
		where := ""
		if in.Member != "" {
			where = "member " + in.Member + ": "
		}
		if in.Err != nil {
			m.Error = in.Err.Error()
			// A member that failed while the others were read (a bomb,
			// a damaged stream) is named, never a silent 0 rows.
			if in.Member != "" {
				st.Problems = append(st.Problems, where+"not read: "+m.Error)
			}
		}
		for _, pr := range in.Problems {
			st.Problems = append(st.Problems, where+"lost: "+pr)
		}
		if i == 0 {
			st.Format, st.Encoding, st.Compression = m.Format, m.Encoding, m.Compression
			if strings.HasPrefix(in.Compression, records.CompZip) {
				st.Compression = records.CompZip
			}
		}
		st.Members = append(st.Members, m)
	}
	if len(infos) == 1 && infos[0].Member == "" {
		st.Members = nil
	}
}

// Errors of the pipeline.
var ErrSink = errors.New("ingest: sink failed")

func zeroKinds() map[identity.Kind]int64 {
	m := map[identity.Kind]int64{}
	for _, k := range identity.Kinds() {
		m[k] = 0
	}
	return m
}

// pipeline is the shared, read-mostly state of one ReadDataset.
type pipeline struct {
	opts     Options
	path     string
	sink     func([]identity.Sighting) error
	sinkMu   *sync.Mutex
	rejectMu sync.Mutex
	rolesMu  sync.RWMutex
	roles    map[string]*roles // by chunk schema
	today    identity.Today    // birth dates after it are invalid
	// schemas and schemaOrder belong to the reader goroutine (admit).
	schemas     map[string]*schemaState
	schemaOrder []*schemaState
}

// workerStats are one worker's counters, summed at the end.
type workerStats struct {
	rows, rejected, yielding int64
	invalid                  [4]int64
	cols                     map[string]colCount // by schema NUL column key
	late                     map[string]*identity.RoleSampler
	// hold keeps the chunk's batches in held instead of passing them to
	// the sink (Options.InOrder).
	hold bool
	held [][]identity.Sighting
	_    [64]byte // keep workers' counters on separate cache lines
}

// colCount counts a column's non-empty values and the valid ones.
type colCount struct{ values, valid int64 }

// report builds the file's column list and its problems once the workers
// are done.
func (p *pipeline) report(cols map[string]colCount, rows, yielding int64) ([]ColumnStats, []string) {
	out := []ColumnStats{}
	problems := []string{}
	for _, st := range p.schemaOrder {
		for i := range st.cols {
			c := &st.cols[i]
			key := columnKey(c.Name, c.Index)
			if st.roles != nil && st.roles.byIndex != nil {
				key = columnKey("", c.Index)
			}
			n := cols[st.name+"\x00"+key]
			c.Values = n.values
			if n.values > 0 {
				c.ValidShare = float64(n.valid) / float64(n.values)
			}
		}
		problems = append(problems, columnProblems(st)...)
		// Identity columns first, then the others, at most
		// maxColumnsReported per schema.
		var id, other []ColumnStats
		for _, c := range st.cols {
			if c.Kind != "" {
				id = append(id, c)
			} else {
				c.Kind = NoKind
				other = append(other, c)
			}
		}
		list := append(id, other...)
		if len(list) > maxColumnsReported {
			list = list[:maxColumnsReported]
		}
		out = append(out, list...)
	}
	if rows >= 20 && yielding*2 < rows {
		problems = append(problems, fmt.Sprintf("%d of %d rows (%.0f%%) yield no identity", rows-yielding, rows, 100*float64(rows-yielding)/float64(rows)))
	}
	return out, problems
}

// roles are the column roles of one schema: by field index when the data
// has no names, by name (JSON key path with array indices as "#") else.
type roles struct {
	byIndex []identity.Kind
	byName  map[string]identity.Kind
}

// nameKey folds a JSON key path's array indices ("phones.0" -> "phones.#")
// so all elements share one role.
func nameKey(n string) string {
	if !strings.ContainsAny(n, "0123456789") {
		return n
	}
	segs := strings.Split(n, ".")
	for i, s := range segs {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "#"
		}
	}
	return strings.Join(segs, ".")
}

// wholeLine reports whether a text line is, as a whole, one valid
// identifier, and which. Lines with letters other than an e-mail's or an
// ID's X are not tried.
func wholeLine(l string, today identity.Today) (identity.Kind, string, bool) {
	if len(l) > 64 {
		return "", "", false
	}
	return identity.NormalizeMixed(l, today)
}

// looksLike reports whether a value its normaliser calls NotKind still
// looks like kind k: digits for numbers, an "@" for e-mails. Free text
// in an identifier column ("unknown", "见备注") is not counted invalid.
func looksLike(k identity.Kind, v string) bool {
	if k == identity.Email {
		return strings.Contains(v, "@") || strings.Contains(v, "＠")
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			return true
		}
	}
	return strings.ContainsAny(v, "０１２３４５６７８９")
}

// placeholder reports values that stand for "no value" in leaks.
func placeholder(v string) bool {
	switch v {
	case "", `\N`, "NULL", "null", "None", "none", "-", "--", "无", "N/A", "n/a", "nil", "0":
		return true
	}
	return false
}

// process parses and normalises one chunk and hands its sightings to sink.
func (p *pipeline) process(c *records.Chunk, ws *workerStats) error {
	p.rolesMu.RLock()
	rs := p.roles[c.Schema]
	p.rolesMu.RUnlock()
	var cache map[string]identity.Kind
	// chunkKinds are the roles of c.Names by index, for rows sharing them.
	var chunkKinds []identity.Kind
	if rs != nil && len(c.Names) > 0 && rs.byIndex == nil {
		chunkKinds = make([]identity.Kind, len(c.Names))
		for i, n := range c.Names {
			chunkKinds[i] = rs.byName[nameKey(n)]
		}
	}
	// Batches go to the sink every batchSize sightings, while their values
	// are still in the CPU cache.
	const batchSize = 4096
	batch := make([]identity.Sighting, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if ws.hold {
			ws.held = append(ws.held, batch)
			batch = make([]identity.Sighting, 0, batchSize)
			return nil
		}
		if p.sinkMu != nil {
			p.sinkMu.Lock()
			defer p.sinkMu.Unlock()
		}
		if err := p.sink(batch); err != nil {
			return fmt.Errorf("%w: %w", ErrSink, err)
		}
		batch = make([]identity.Sighting, 0, batchSize)
		return nil
	}
	var locBuf []byte
	var arena []byte
	// attrOf caches the attribute role of a column name in this chunk.
	table := c.Table
	type attr struct {
		k   identity.Kind
		key string
	}
	var attrs map[string]attr
	attrOf := func(name string) (identity.Kind, string) {
		a, ok := attrs[name]
		if !ok {
			if attrs == nil {
				attrs = map[string]attr{}
			}
			a.k, a.key = attrRole(name, table)
			attrs[name] = a
		}
		return a.k, a.key
	}
	loc := ""
	// Per-column value counts of this chunk: by field index where the
	// roles are positional or shared by the chunk, by name key else.
	var byPos []colCount
	var byName map[string]colCount
	positional := chunkKinds != nil || rs != nil && rs.byIndex != nil
	// keyOf names field i of r as the column stats do.
	keyOf := func(i int, r *records.Row) string {
		if positional || i >= len(r.Names) {
			if chunkKinds != nil && i < len(c.Names) {
				return columnKey(c.Names[i], i+1)
			}
			return columnKey("", i+1)
		}
		return nameKey(r.Names[i])
	}
	lateAdd := func(i int, r *records.Row, v string) {
		if ws.late == nil {
			ws.late = map[string]*identity.RoleSampler{}
		}
		k := c.Schema + "\x00" + keyOf(i, r)
		s := ws.late[k]
		if s == nil {
			s = new(identity.RoleSampler)
			ws.late[k] = s
		}
		s.Add(v)
	}
	count := func(i int, r *records.Row, valid bool) {
		var cc *colCount
		if positional || i >= len(r.Names) {
			for len(byPos) <= i {
				byPos = append(byPos, colCount{})
			}
			cc = &byPos[i]
		} else {
			if byName == nil {
				byName = map[string]colCount{}
			}
			k := nameKey(r.Names[i])
			t := byName[k]
			t.values++
			if valid {
				t.valid++
			}
			byName[k] = t
			return
		}
		cc.values++
		if valid {
			cc.valid++
		}
	}
	defer func() {
		if ws.cols == nil {
			ws.cols = map[string]colCount{}
		}
		add := func(key string, n colCount) {
			k := c.Schema + "\x00" + key
			t := ws.cols[k]
			t.values += n.values
			t.valid += n.valid
			ws.cols[k] = t
		}
		for i, n := range byPos {
			if n.values == 0 {
				continue
			}
			if chunkKinds != nil && i < len(c.Names) {
				add(columnKey(c.Names[i], i+1), n)
			} else {
				add(columnKey("", i+1), n)
			}
		}
		for k, n := range byName {
			add(k, n)
		}
	}()
	err := c.Rows(func(r *records.Row) error {
		if r.Reject != "" {
			ws.rejected++
			p.reject(r)
			return nil
		}
		ws.rows++
		// Flush before taking the row's start: a flush after it would
		// hide the row's sightings and make the yielding count depend on
		// where batches end.
		if len(batch) >= batchSize-16 {
			if err := flush(); err != nil {
				return err
			}
		}
		before := len(batch)
		defer func() {
			// Attributes (names, keys) do not make a row yield.
			for j := min(before, len(batch)); j < len(batch); j++ {
				if batch[j].Kind.IsIdentity() {
					ws.yielding++
					break
				}
			}
		}()
		if !p.opts.NoLoc {
			locBuf = r.Loc.Append(locBuf[:0])
			loc = string(locBuf)
		}
		if r.Text {
			// A line that is one identifier as a whole (a list of phones
			// written "+86 138 1234 5678") is taken whole; else scanned.
			if k, cv, ok := wholeLine(r.Fields[0], p.today); ok {
				batch = append(batch, identity.Sighting{Kind: k, Value: cv, Loc: loc})
				return nil
			}
			identity.ScanTextAt(identity.Fold(r.Fields[0]), p.today, func(k identity.Kind, v string, res identity.Result) {
				if res == identity.Valid {
					batch = append(batch, identity.Sighting{Kind: k, Value: v, Loc: loc})
				} else if i := identity.KindIndex(k); i >= 0 {
					ws.invalid[i]++
				}
			})
			return nil
		}
		shared := chunkKinds != nil && len(r.Names) == len(c.Names) && &r.Names[0] == &c.Names[0]
		for i, v := range r.Fields {
			var k identity.Kind
			switch {
			case shared && i < len(chunkKinds):
				k = chunkKinds[i]
			case r.Names != nil && i < len(r.Names) && (rs == nil || rs.byIndex == nil):
				name := nameKey(r.Names[i])
				var ok bool
				if rs != nil {
					k, ok = rs.byName[name]
				}
				if !ok {
					if cache == nil {
						cache = map[string]identity.Kind{}
					}
					if k, ok = cache[name]; !ok {
						k, _ = identity.HeaderRole(name)
						if !k.IsIdentity() {
							k = ""
						}
						cache[name] = k
					}
				}
			case rs != nil && i < len(rs.byIndex):
				k = rs.byIndex[i]
			}
			if k == "" {
				if rs != nil && (r.Loc.Row+r.Loc.Line)%lateEvery == 0 {
					lateAdd(i, r, v)
				}
				if p.opts.Attributes && i < len(r.Names) && !placeholder(v) {
					ak, key := attrOf(r.Names[i])
					if ak == KindKey {
						v = key + "=" + strings.TrimSpace(v)
					} else if ak != "" {
						v = strings.Join(strings.Fields(identity.Fold(v)), " ")
					}
					if ak != "" && v != "" && len(v) <= 512 {
						batch = append(batch, identity.Sighting{Kind: ak, Value: v, Loc: loc})
					}
				}
				continue
			}
			if placeholder(v) {
				continue
			}
			if k == identity.Mixed {
				mk, cv, ok := identity.NormalizeMixed(v, p.today)
				if ok {
					batch = append(batch, identity.Sighting{Kind: mk, Value: cv, Loc: loc})
				}
				count(i, r, ok)
				continue
			}
			var cv string
			var res identity.Result
			if k == identity.Phone {
				// Phones always change (+86 prefix): build them in a shared
				// buffer instead of one allocation each. Strings made from
				// it stay valid: the buffer is replaced, never rewritten.
				if cap(arena)-len(arena) < 32 {
					arena = make([]byte, 0, 16<<10)
				}
				n := len(arena)
				arena, res = identity.AppendPhone(arena, v)
				if res == identity.Valid {
					cv = unsafe.String(&arena[n], len(arena)-n)
				}
			} else {
				cv, res = identity.NormalizeAt(k, v, p.today)
			}
			if res == identity.Valid {
				batch = append(batch, identity.Sighting{Kind: k, Value: cv, Loc: loc})
			} else if res == identity.Invalid || looksLike(k, v) && !placeholder(identity.Fold(v)) {
				ws.invalid[identity.KindIndex(k)]++
			}
			count(i, r, res == identity.Valid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// reject writes a malformed row to the rejects writer.
func (p *pipeline) reject(r *records.Row) {
	if p.opts.Rejects == nil {
		return
	}
	name := p.opts.Name
	if name == "" {
		name = p.path
	}
	line := name + "\t" + r.Loc.String() + "\t" + r.Reject + "\t" + strconv.Quote(r.Raw) + "\n"
	p.rejectMu.Lock()
	defer p.rejectMu.Unlock()
	_, _ = io.WriteString(p.opts.Rejects, line)
}

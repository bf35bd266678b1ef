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
	// roles from values (default 1000).
	SampleRows int
	// Records bounds the record reader (chunk sizes, bomb limits, spill).
	Records records.Options
	// Progress, when set, is told how many more bytes of the file were
	// read (called from one goroutine at a time).
	Progress func(n int64)
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

	p := &pipeline{opts: opts, path: path, sink: sink, roles: map[string]*roles{}, today: identity.TodayOf(time.Now())}
	if !opts.ConcurrentSink {
		p.sinkMu = new(sync.Mutex)
	}
	work := make(chan *records.Chunk, opts.Workers*2)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
			for c := range work {
				if wctx.Err() != nil {
					continue
				}
				if err := p.process(c, ws); err != nil {
					fail(err)
				}
			}
		}()
	}
	infos, rerr := records.Read(wctx, records.Input{R: tee, ReaderAt: f, Size: st.Size, Path: path}, opts.Records,
		func(c *records.Chunk) error {
			p.decideRoles(c)
			select {
			case work <- c:
				return nil
			case <-wctx.Done():
				return wctx.Err()
			}
		})
	close(work)
	wg.Wait()
	for _, ws := range results {
		st.Rows += ws.rows
		st.Rejected += ws.rejected
		for i, k := range identity.Kinds() {
			st.Invalid[k] += ws.invalid[i]
		}
	}
	for i, in := range infos {
		m := MemberStats{Member: in.Member, Format: in.Format.Name(), Encoding: in.Encoding, Compression: in.Compression}
		if in.Err != nil {
			m.Error = in.Err.Error()
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
	if firstErr != nil {
		return st, firstErr
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
}

// workerStats are one worker's counters, summed at the end.
type workerStats struct {
	rows, rejected int64
	invalid        [4]int64
	_              [64]byte // keep workers' counters on separate cache lines
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

// decideRoles settles the roles of c's schema from its header names and,
// for columns the names do not settle, from sampled values of c's rows.
// It runs on the reader goroutine before c is handed to a worker.
func (p *pipeline) decideRoles(c *records.Chunk) {
	p.rolesMu.RLock()
	_, ok := p.roles[c.Schema]
	p.rolesMu.RUnlock()
	if ok || c.Info.Format.Kind == records.KindText {
		return
	}
	samplers := map[string]*identity.RoleSampler{}
	var byIdx []*identity.RoleSampler
	n := 0
	_ = c.Rows(func(r *records.Row) error {
		if r.Reject != "" || r.Text || n >= p.opts.SampleRows {
			return nil
		}
		n++
		for i, v := range r.Fields {
			var s *identity.RoleSampler
			if r.Names != nil && i < len(r.Names) {
				k := nameKey(r.Names[i])
				if s = samplers[k]; s == nil {
					s = new(identity.RoleSampler)
					samplers[k] = s
				}
			} else {
				for len(byIdx) <= i {
					byIdx = append(byIdx, new(identity.RoleSampler))
				}
				s = byIdx[i]
			}
			s.Add(v)
		}
		return nil
	})
	rs := &roles{byName: map[string]identity.Kind{}}
	decide := func(name string, s *identity.RoleSampler) identity.Kind {
		// A header naming an identity kind decides; any other header
		// (known or not) leaves the decision to the values, which must
		// mostly validate, so decoy numeric columns are not taken.
		if name != "" {
			if k, ok := identity.HeaderRole(name); ok && k.IsIdentity() {
				return k
			}
		}
		if s == nil {
			return ""
		}
		return s.Role()
	}
	for name, s := range samplers {
		rs.byName[name] = decide(name, s)
	}
	for i, s := range byIdx {
		name := ""
		if i < len(c.Names) {
			name = c.Names[i]
		}
		rs.byIndex = append(rs.byIndex, decide(name, s))
	}
	p.rolesMu.Lock()
	p.roles[c.Schema] = rs
	p.rolesMu.Unlock()
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
	loc := ""
	err := c.Rows(func(r *records.Row) error {
		if r.Reject != "" {
			ws.rejected++
			p.reject(r)
			return nil
		}
		ws.rows++
		if len(batch) >= batchSize-16 {
			if err := flush(); err != nil {
				return err
			}
		}
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
				continue
			}
			if placeholder(v) {
				continue
			}
			if k == identity.Mixed {
				if mk, cv, ok := identity.NormalizeMixed(v, p.today); ok {
					batch = append(batch, identity.Sighting{Kind: mk, Value: cv, Loc: loc})
				}
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

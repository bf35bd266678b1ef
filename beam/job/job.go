// Package job is evidx's dataset path as an Apache Beam pipeline, so a
// count too large for one machine runs on Flink, Spark or Dataflow (and
// on Prism, in process, in the tests).
//
// The pipeline lists the input files; cuts each uncompressed UTF-8
// line-oriented file (delimited, JSON Lines, plain text) into spans at
// the record boundaries the core reader finds (ingest.PlanSplit), and
// gives every other file (compressed, zip, SQLite, SQL dump, GB18030,
// UTF-16) to one worker whole; parses and normalises each span with the
// core's records and identity packages (ingest.ReadSpan, ReadDataset);
// keys each distinct identity of a span by the index's shard partition
// (dedupe.Partition); and, per shard, decides equality by the full
// normalised bytes, combining per identity the files it was seen in and
// its occurrences. The per-file statistics are merged as ReadDataset
// would have reported the whole file (ingest.MergeParts), so the result
// is the JSON document `evidx count --json` prints, byte for byte.
//
// Files are read by path on the workers: local paths need every worker
// to see them (a shared mount). Beam filesystem URLs (gs://, s3://) are
// listed and expanded with Beam's filesystem package and copied whole to
// the worker's temporary directory before reading (no spans). Not done:
// rejected rows (--rejects) and the spill count, which is the runner's
// business here (always 0).
//
// A load (Load) also writes each input file's persons record file, the
// very bytes `evidx dataset add` records for it: each Work writes its
// records (persons.AppendRecords) as a part, and the driver joins a
// file's parts in span order, so `dataset import` links persons as
// `dataset add` does.
package job

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/internal/display"
)

// Options configure a job; they travel to the workers inside the DoFns.
type Options struct {
	// Shards is the partition count (the index's shard count; default
	// index.DefaultShards).
	Shards int
	// SplitSize is the bytes per span of a cuttable file (default 64 MiB).
	SplitSize int64
	// The parse overrides of evidx count and dataset add.
	Format, Delimiter, Encoding string
	NoHeader                    bool
	Columns                     []string // NAME_OR_INDEX=KIND
	// Work is a directory (local or a Beam filesystem URL every worker can
	// write) where the job leaves its result for the driver.
	Work string
	// Load also keeps each identity's first location per file and writes,
	// per shard, what `evidx dataset import` loads into a case, to Out,
	// and per Work its persons records (names, addresses and join keys
	// beside the identities, read in the file's order).
	Load bool
	Out  string
}

func (o *Options) defaults() {
	if o.Shards <= 0 {
		o.Shards = index.DefaultShards
	}
	if o.SplitSize <= 0 {
		o.SplitSize = 64 << 20
	}
}

// ingestOptions are the core reader's options for o.
func (o Options) ingestOptions() (ingest.Options, error) {
	ro := records.Options{Format: o.Format, Delimiter: o.Delimiter, Encoding: o.Encoding, NoHeader: o.NoHeader}
	if err := ro.Check(); err != nil {
		return ingest.Options{}, err
	}
	cols, err := ingest.ParseColumns(o.Columns)
	if err != nil {
		return ingest.Options{}, err
	}
	return ingest.Options{Records: ro, Columns: cols, NoLoc: true}, nil
}

// FileRef is one input file and its position on the command line.
type FileRef struct {
	Index int
	Path  string
}

// Work is a unit for one worker: a span of a file, or a whole file
// (Span < 0).
type Work struct {
	File   int
	Path   string
	Size   int64
	SHA256 string
	Span   int
	Start  int64
	End    int64
	Line   int64
	Header bool
}

func init() {
	beam.RegisterType(reflect.TypeOf((*FileRef)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Work)(nil)).Elem())
	register.DoFn3x1[context.Context, FileRef, func(Work), error](&planFn{})
	register.Emitter1[Work]()
	register.DoFn4x1[context.Context, Work, func(int, []byte), func(int, []byte), error](&readFn{})
	register.Emitter2[int, []byte]()
	register.DoFn3x1[int, func(*[]byte) bool, func(int, []byte), error](&shardFn{})
	register.Iter1[[]byte]()
	register.DoFn4x1[context.Context, int, func(*[]byte) bool, func(int, []byte), error](&mergeFn{})
	register.DoFn3x1[context.Context, int, func(*[]byte) bool, error](&reportFn{})
}

// remote reports a Beam filesystem URL (not a local path).
func remote(path string) bool {
	i := strings.Index(path, "://")
	return i > 0 && !strings.HasPrefix(path, "file://")
}

// planFn cuts a file into spans, or leaves it whole.
type planFn struct{ Opt Options }

func (f *planFn) ProcessElement(ctx context.Context, ref FileRef, emit func(Work)) error {
	o := f.Opt
	o.defaults()
	w := Work{File: ref.Index, Path: ref.Path, Span: -1}
	if remote(ref.Path) {
		emit(w)
		return nil
	}
	io, err := o.ingestOptions()
	if err != nil {
		return err
	}
	pl, err := ingest.PlanSplit(ctx, ref.Path, io, o.SplitSize)
	if err != nil || pl.Spans == nil {
		emit(w) // ReadDataset reads it and reports its error, as count does
		return nil
	}
	w.Size, w.SHA256 = pl.Size, pl.SHA256
	for i, sp := range pl.Spans {
		w.Span, w.Start, w.End, w.Line, w.Header = i, sp.Start, sp.End, sp.Line, sp.Header
		emit(w)
	}
	return nil
}

// partMsg is what reading one Work counted, for mergeFn.
type partMsg struct {
	Work  Work
	Part  ingest.Part
	Whole []byte // a whole file's fileResult (JSON)
}

// fileResult is one file of the report.
type fileResult struct {
	Index int
	Stats ingest.FileStats
	Err   string
}

// maxLocal bounds the distinct identities a worker holds before passing
// them on (each is combined again per shard, so flushing early is exact).
const maxLocal = 1 << 20

// batchBytes is the size of the sighting batches a worker sends on.
const batchBytes = 256 << 10

// readFn parses a Work into distinct identities keyed by shard (each once
// per Work, with its occurrences) and a part of the file's statistics.
type readFn struct{ Opt Options }

func (f *readFn) ProcessElement(ctx context.Context, w Work, sight func(int, []byte), part func(int, []byte)) error {
	o := f.Opt
	o.defaults()
	iopts, err := o.ingestOptions()
	if err != nil {
		return err
	}
	var recs *recordPart
	if o.Load {
		iopts.NoLoc = false // a case keeps each identity's first location
		// The persons records of the Work, in the file's order, as a
		// dataset add records them (names, addresses and keys too).
		iopts.Attributes, iopts.InOrder = true, true
		if recs, err = newRecordPart(ctx, o.Out, w); err != nil {
			return err
		}
		defer recs.abort()
	}
	// local holds, per distinct identity of this Work, its occurrences and
	// (loading) its first sighting: seq orders the sightings of the Work
	// across flushes, so the first in file order can be told later.
	type localIdent struct {
		n   int64
		seq uint64
		loc string
	}
	local := map[string]*localIdent{}
	var seq uint64
	span := uint64(w.Span + 1) // 0: a whole file
	// Sightings travel in batches per shard: one element per identity
	// costs a runner far more than the bytes.
	batches := make([][]byte, o.Shards)
	flush := func() {
		for k, li := range local {
			kind, value := identity.Kind(k[1:1+k[0]]), k[1+k[0]:]
			sh := dedupe.Partition(string(kind), value, o.Shards)
			rec := encodeSighting(sighting{kind: identity.KindIndex(kind), file: w.File, n: li.n, span: span, seq: li.seq, value: []byte(value), loc: li.loc})
			batches[sh] = binary.AppendUvarint(batches[sh], uint64(len(rec)))
			batches[sh] = append(batches[sh], rec...)
			if len(batches[sh]) >= batchBytes {
				sight(sh, batches[sh])
				batches[sh] = nil
			}
		}
		clear(local)
	}
	sink := func(b []identity.Sighting) error {
		if recs != nil {
			if err := recs.add(b); err != nil {
				return err
			}
		}
		for _, s := range b {
			if !s.Kind.IsIdentity() {
				continue // an attribute, for the records only
			}
			k := string([]byte{byte(len(s.Kind))}) + string(s.Kind) + s.Value
			li := local[k]
			if li == nil {
				li = &localIdent{seq: seq, loc: s.Loc}
				seq++
				local[k] = li
			}
			li.n++
		}
		if len(local) >= maxLocal {
			flush()
		}
		return nil
	}
	msg := partMsg{Work: w}
	if w.Span < 0 {
		path := w.Path
		if remote(path) {
			tmp, err := stage(ctx, path)
			if err != nil {
				return err
			}
			defer os.Remove(tmp)
			path = tmp
		}
		iopts.Workers = 1 // Beam gives the parallelism
		st, err := ingest.ReadDataset(ctx, path, iopts, sink)
		st.Path = w.Path
		fr := fileResult{Index: w.File, Stats: st}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fr.Err = display.OneLine(strings.ReplaceAll(err.Error(), path, w.Path))
		}
		if msg.Whole, err = json.Marshal(fr); err != nil {
			return err
		}
	} else {
		sp := records.Span{Start: w.Start, End: w.End, Line: w.Line, Header: w.Header}
		if msg.Part, err = ingest.ReadSpan(ctx, w.Path, iopts, sp, sink); err != nil {
			return err
		}
	}
	if recs != nil {
		if err := recs.close(); err != nil {
			return err
		}
	}
	flush()
	for sh, b := range batches {
		if len(b) > 0 {
			sight(sh, b)
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(msg); err != nil {
		return err
	}
	part(w.File, buf.Bytes())
	return nil
}

// stage copies a remote file to the local temporary directory.
func stage(ctx context.Context, url string) (string, error) {
	fs, err := filesystem.New(ctx, url)
	if err != nil {
		return "", err
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, url)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	defer r.Close()
	t, err := os.CreateTemp("", "evidx-beam-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(t, r); err != nil {
		t.Close()
		os.Remove(t.Name())
		return "", fmt.Errorf("%s: staging: %w", url, err)
	}
	return t.Name(), t.Close()
}

// sighting is one distinct identity of a Work on the wire: the kind's
// index, the file, its occurrences in the Work, the Work's span (+1; 0 for
// a whole file) and the order of its first sighting there, the normalised
// value and its first location (empty when counting).
type sighting struct {
	kind  int
	file  int
	n     int64
	span  uint64
	seq   uint64
	value []byte
	loc   string
}

func encodeSighting(s sighting) []byte {
	b := make([]byte, 0, 24+len(s.value)+len(s.loc))
	b = append(b, byte(s.kind))
	b = binary.AppendUvarint(b, uint64(s.file))
	b = binary.AppendUvarint(b, uint64(s.n))
	b = binary.AppendUvarint(b, s.span)
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, uint64(len(s.value)))
	b = append(b, s.value...)
	return append(b, s.loc...)
}

func decodeSighting(b []byte) (sighting, error) {
	bad := fmt.Errorf("job: bad sighting record (%d bytes)", len(b))
	if len(b) < 6 || int(b[0]) >= len(identity.Kinds()) {
		return sighting{}, bad
	}
	s := sighting{kind: int(b[0])}
	p := 1
	var v [5]uint64
	for i := range v {
		x, m := binary.Uvarint(b[p:])
		if m <= 0 {
			return sighting{}, bad
		}
		v[i], p = x, p+m
	}
	if v[4] > uint64(len(b)-p) {
		return sighting{}, bad
	}
	s.file, s.n, s.span, s.seq = int(v[0]), int64(v[1]), v[2], v[3]
	s.value = b[p : p+int(v[4])]
	s.loc = string(b[p+int(v[4]):])
	return s, nil
}

// counts are distinct identities per kind, overall and per file.
type counts struct {
	Unique  [4]int64
	PerFile map[int]*[4]int64
}

// shardFn deduplicates one shard: equal identities are equal normalised
// bytes (kind and value), whatever their hashes.
type shardFn struct{}

func (shardFn) ProcessElement(shard int, values func(*[]byte) bool, emit func(int, []byte)) error {
	type ident struct {
		files []int
		n     int64
	}
	seen := map[string]*ident{}
	var batch []byte
	for values(&batch) {
		for len(batch) > 0 {
			l, m := binary.Uvarint(batch)
			if m <= 0 || l > uint64(len(batch)-m) {
				return fmt.Errorf("shard %d: bad sighting batch", shard)
			}
			b := batch[m : m+int(l)]
			batch = batch[m+int(l):]
			sg, err := decodeSighting(b)
			if err != nil {
				return fmt.Errorf("shard %d: %w", shard, err)
			}
			kind, file, n, value := sg.kind, sg.file, sg.n, sg.value
			key := string(rune('0'+kind)) + string(value)
			id := seen[key]
			if id == nil {
				id = &ident{}
				seen[key] = id
			}
			id.n += n
			if i := sort.SearchInts(id.files, file); i == len(id.files) || id.files[i] != file {
				id.files = append(id.files, 0)
				copy(id.files[i+1:], id.files[i:])
				id.files[i] = file
			}
		}
	}
	c := counts{PerFile: map[int]*[4]int64{}}
	for key, id := range seen {
		k := int(key[0] - '0')
		c.Unique[k]++
		for _, f := range id.files {
			if c.PerFile[f] == nil {
				c.PerFile[f] = new([4]int64)
			}
			c.PerFile[f][k]++
		}
	}
	var buf bytes.Buffer
	buf.WriteByte('c')
	if err := gob.NewEncoder(&buf).Encode(c); err != nil {
		return err
	}
	emit(0, buf.Bytes())
	return nil
}

// mergeFn merges the parts of one file into its statistics.
type mergeFn struct{ Opt Options }

func (f *mergeFn) ProcessElement(ctx context.Context, file int, parts func(*[]byte) bool, emit func(int, []byte)) error {
	iopts, err := f.Opt.ingestOptions()
	if err != nil {
		return err
	}
	var whole []byte
	var work *Work
	var ps []ingest.Part
	var b []byte
	for parts(&b) {
		var m partMsg
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
			return fmt.Errorf("file %d: part: %w", file, err)
		}
		if m.Whole != nil {
			whole = m.Whole
			continue
		}
		w := m.Work
		work = &w
		ps = append(ps, m.Part)
	}
	if whole == nil {
		if work == nil {
			return fmt.Errorf("file %d: no parts", file)
		}
		pl := ingest.Plan{Path: work.Path, Size: work.Size, SHA256: work.SHA256}
		st, err := ingest.MergeParts(ctx, pl, iopts, ps)
		if err != nil {
			return err
		}
		if whole, err = json.Marshal(fileResult{Index: file, Stats: st}); err != nil {
			return err
		}
	}
	emit(0, append([]byte{'f'}, whole...))
	return nil
}

// CountFile and CountReport are the core's: the report is the document
// `evidx count --json` prints.
type (
	CountFile   = ingest.CountFile
	CountReport = ingest.CountReport
)

// reportFn gathers the shards' counts and the files' statistics into the
// report and writes it (JSON) to Out.
type reportFn struct {
	Out   string
	Files int
}

func (f *reportFn) ProcessElement(ctx context.Context, _ int, vals func(*[]byte) bool) error {
	kinds := identity.Kinds()
	rep := CountReport{Unique: map[identity.Kind]int64{}, Files: make([]CountFile, f.Files), Problems: []string{}}
	per := make([][4]int64, f.Files)
	var unique [4]int64
	var b []byte
	for vals(&b) {
		if len(b) == 0 {
			return fmt.Errorf("report: empty record")
		}
		switch b[0] {
		case 'c':
			var c counts
			if err := gob.NewDecoder(bytes.NewReader(b[1:])).Decode(&c); err != nil {
				return fmt.Errorf("report: counts: %w", err)
			}
			for k := range unique {
				unique[k] += c.Unique[k]
			}
			for i, n := range c.PerFile {
				if i < 0 || i >= f.Files {
					return fmt.Errorf("report: file %d of %d", i, f.Files)
				}
				for k := range n {
					per[i][k] += n[k]
				}
			}
		case 'f':
			var fr fileResult
			if err := json.Unmarshal(b[1:], &fr); err != nil {
				return fmt.Errorf("report: file: %w", err)
			}
			if fr.Index < 0 || fr.Index >= f.Files {
				return fmt.Errorf("report: file %d of %d", fr.Index, f.Files)
			}
			rep.Files[fr.Index].FileStats = fr.Stats
			rep.Files[fr.Index].Error = fr.Err
		}
	}
	for k, kind := range kinds {
		rep.Unique[kind] = unique[k]
	}
	for i := range rep.Files {
		cf := &rep.Files[i]
		cf.Unique = map[identity.Kind]int64{}
		for k, kind := range kinds {
			cf.Unique[kind] = per[i][k]
		}
		if cf.Error != "" {
			continue
		}
		members, doubts := ingest.FileProblems(cf.FileStats)
		rep.Problems = append(append(rep.Problems, members...), doubts...)
	}
	return writeFile(ctx, f.Out, func(w io.Writer) error { return WriteJSON(w, rep) })
}

// WriteJSON writes v as evidx's CLI does (indented, HTML left alone).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeFile(ctx context.Context, path string, fn func(io.Writer) error) error {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return err
	}
	defer fs.Close()
	w, err := fs.OpenWrite(ctx, path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := fn(w); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return w.Close()
}

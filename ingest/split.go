package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
)

// A file can also be read in parts on other machines (a Beam pipeline's
// workers): PlanSplit cuts it into spans at record boundaries, ReadSpan
// reads one span into sightings and a Part, and MergeParts turns the
// parts of all spans into the FileStats ReadDataset would have given.
// Each step decides the column roles again from the file's first records,
// as ReadDataset does, so every span is read with the same roles.

// Plan is how a file is read in parts. Spans is nil when the file is to be
// read whole (compressed, zip, SQLite, SQL dump, not UTF-8, or damaged).
type Plan struct {
	Path   string
	Size   int64
	SHA256 string
	Spans  []records.Span
}

// Part is what reading one span counted, to be merged by MergeParts. Its
// fields are exported so it can be encoded (gob) between machines.
type Part struct {
	Rows, Rejected, Yielding int64
	Invalid                  [4]int64
	Cols                     map[string][2]int64 // schema NUL column key: values, valid
	Late                     map[string]*identity.RoleSampler
}

// PlanSplit hashes the file at path and, when it can be cut, cuts it into
// spans of at least size bytes.
func PlanSplit(ctx context.Context, path string, opts Options, size int64) (Plan, error) {
	pl := Plan{Path: path}
	f, err := openRegular(path)
	if err != nil {
		return pl, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return pl, err
	}
	pl.Size = fi.Size()
	h := sha256.New()
	tee := io.TeeReader(f, h)
	_, spans, err := records.Spans(ctx, records.Input{R: tee}, opts.Records, size)
	if err != nil || spans == nil {
		// Damaged or not cuttable: ReadDataset reads it whole and reports
		// what it finds, as evidx count does.
		return pl, nil
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return pl, fmt.Errorf("%s: hashing: %w", path, err)
	}
	pl.SHA256 = hex.EncodeToString(h.Sum(nil))
	pl.Spans = spans
	return pl, nil
}

func openRegular(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return f, nil
}

// errHeadDone stops the head read once the roles are decided.
var errHeadDone = errors.New("ingest: roles decided")

// head decides the column roles of the file from its first records, as
// ReadDataset's admit does, and returns the stream's Info.
func (p *pipeline) head(ctx context.Context, f *os.File) ([]*records.Info, error) {
	stop := func(*records.Chunk) error { return errHeadDone }
	infos, err := records.Read(ctx, records.Input{R: f}, p.opts.Records, func(c *records.Chunk) error { return p.admit(c, stop) })
	if err == nil {
		err = p.finish(stop)
	}
	if errors.Is(err, errHeadDone) {
		err = nil
	}
	if err == nil && (len(infos) != 1 || infos[0].Member != "") {
		err = fmt.Errorf("%s: not a single stream", p.path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading the head: %w", p.path, err)
	}
	infos[0].Err = nil // the stop above, not a fault of the file
	return infos, nil
}

func splitDefaults(opts *Options) {
	if opts.SampleRows <= 0 {
		opts.SampleRows = 1000
	}
}

// ReadSpan reads span sp of the file at path (as PlanSplit cut it) into
// sink, on the caller's goroutine, and returns what it counted.
func ReadSpan(ctx context.Context, path string, opts Options, sp records.Span, sink func([]identity.Sighting) error) (Part, error) {
	splitDefaults(&opts)
	f, err := openRegular(path)
	if err != nil {
		return Part{}, err
	}
	defer f.Close()
	p := newPipeline(opts, path, sink)
	infos, err := p.head(ctx, f)
	if err != nil {
		return Part{}, err
	}
	var ws workerStats
	err = records.ReadSpan(ctx, f, infos[0], sp, opts.Records, func(c *records.Chunk) error { return p.process(c, &ws) })
	if err != nil {
		return Part{}, fmt.Errorf("%s: span at %d: %w", path, sp.Start, err)
	}
	part := Part{Rows: ws.rows, Rejected: ws.rejected, Yielding: ws.yielding, Invalid: ws.invalid, Cols: map[string][2]int64{}, Late: ws.late}
	for k, c := range ws.cols {
		part.Cols[k] = [2]int64{c.values, c.valid}
	}
	return part, nil
}

// MergeParts builds the file's FileStats from the parts of all its spans
// (in any order), as ReadDataset would have reported the whole file.
func MergeParts(ctx context.Context, pl Plan, opts Options, parts []Part) (FileStats, error) {
	splitDefaults(&opts)
	st := FileStats{Path: pl.Path, Size: pl.Size, Invalid: zeroKinds()}
	f, err := openRegular(pl.Path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	p := newPipeline(opts, pl.Path, nil)
	p.today = identity.TodayOf(time.Now())
	infos, err := p.head(ctx, f)
	if err != nil {
		return st, err
	}
	results := make([]workerStats, len(parts))
	for i, pt := range parts {
		ws := &results[i]
		ws.rows, ws.rejected, ws.yielding, ws.invalid = pt.Rows, pt.Rejected, pt.Yielding, pt.Invalid
		ws.cols = map[string]colCount{}
		for k, c := range pt.Cols {
			ws.cols[k] = colCount{values: c[0], valid: c[1]}
		}
		ws.late = pt.Late
	}
	p.collect(&st, results, infos)
	st.SHA256 = pl.SHA256
	return st, nil
}

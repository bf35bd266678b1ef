package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/persons"
)

// DatasetOptions says how LoadDatasets reads dataset files handed over
// directly (not found on evidence).
type DatasetOptions struct {
	Name    string                   // source name of the only file (default: its base name)
	Reload  bool                     // remove a file already ingested and load it again
	Records records.Options          // parsing choices (--format, --encoding, ...)
	Columns map[string]identity.Kind // forced column roles (--column)
	// Progress, if set, returns the display of one file's load.
	Progress func(file string) Progress
	// Warn, if set, receives one-line problems that do not stop the run.
	Warn func(msg string)
	// Link says how the persons are relinked after the loads.
	Link LinkOptions
	// Category, if set, tags every source loaded with this information
	// category (persons.Categories).
	Category string
}

// DatasetFailure is a file that could not be loaded.
type DatasetFailure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// DatasetsResult is what LoadDatasets did: the JSON of `dataset add`.
type DatasetsResult struct {
	Sources []index.SourceStats `json:"sources"`
	Failed  []DatasetFailure    `json:"failed"`
	// Persons are the case's persons after the loads (absent when
	// nothing new was loaded or linking was turned off).
	Persons *persons.Summary `json:"persons,omitempty"`
}

// datasetGoMemLimit is the soft Go heap limit of a dataset load, bytes.
const datasetGoMemLimit = 512 << 20

// LoadDatasets loads dataset files into case c's identity index, one
// source each, skipping files already ingested (by SHA-256) and recording
// every load in the audit log. A file that fails is reported in Failed and
// the others go on; the error is then non-nil. An interrupted run is
// finished by running it again.
func LoadDatasets(ctx context.Context, c *custody.Case, files []string, opts DatasetOptions) (*DatasetsResult, error) {
	warn := func(format string, a ...any) {
		if opts.Warn != nil {
			opts.Warn(fmt.Sprintf(format, a...))
		}
	}
	// Outside the Go heap: the load's sort buffers (index.Options.SortBytes,
	// 384 MiB, mapped) and the page caches of the shards being written
	// (CacheKiB each, two at a time). The parsers' garbage is Go heap: a
	// soft limit on it keeps the whole process under 1 GiB on any size of
	// input (the GC just works harder near the limit).
	if lim := debug.SetMemoryLimit(-1); lim > datasetGoMemLimit {
		debug.SetMemoryLimit(datasetGoMemLimit)
		defer debug.SetMemoryLimit(lim)
	}
	if _, ok := persons.LookupCategory(opts.Category); !ok && opts.Category != "" {
		return nil, fmt.Errorf("category %q: one of %v", opts.Category, persons.CategoryNames())
	}
	ix, err := openIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &DatasetsResult{Sources: []index.SourceStats{}, Failed: []DatasetFailure{}}
	loaded := false // a source was added: persons are relinked
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return res, err
		}
		if opts.Reload {
			prev, err := ix.SourceOfFile(ctx, abs)
			if err != nil {
				return res, err
			}
			if prev != nil {
				r, err := removeSource(ctx, c, ix, *prev, "reload of "+abs)
				if err != nil {
					return res, err
				}
				warn("dataset %s: removed source #%d to load it again", f, r.Source.ID)
			}
		}
		var prog Progress = NoProgress{}
		if opts.Progress != nil {
			prog = opts.Progress(f)
		}
		fp := newFileProgress(c.Dir(), "dataset add "+filepath.Base(f), prog)
		prog = fp
		size := int64(0)
		if fi, err := os.Stat(abs); err == nil {
			size = fi.Size()
		}
		prog.Stage("reading", "bytes", size)
		ro := opts.Records
		// Spills (SQLite datasets, zips read from a stream) hold personal
		// data: they go in the case's scratch directory, swept after a crash.
		if ro.TmpDir, err = c.Scratch(); err != nil {
			return res, err
		}
		st, err := loadOne(ctx, c, ix, loadJob{path: abs, name: opts.Name, input: custody.Item{Kind: "dataset", Path: abs},
			read: ingest.Options{Records: ro, Columns: opts.Columns, Progress: prog.Add}, progress: prog})
		fp.finish(err)
		if err != nil {
			if errors.Is(err, errAudit) {
				return res, err
			}
			res.Failed = append(res.Failed, DatasetFailure{Path: f, Error: err.Error()})
			warn("dataset %s: %s", f, err)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		loaded = loaded || !st.Skipped
		if opts.Category != "" {
			err := persons.SetCategory(persons.Dir(ix.Dir()), st.ID, opts.Category)
			entry := custody.Entry{Action: "source.set_category", Outcome: custody.OutcomeOK,
				Inputs:  []custody.Item{{Kind: "dataset", Path: st.Path, Size: st.Size, SHA256: st.SHA256}},
				Details: map[string]any{"source_id": st.ID, "name": st.Name, "category": opts.Category}}
			if err != nil {
				entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
			}
			if aerr := c.Audit(entry); aerr != nil {
				return res, fmt.Errorf("%w: %v", errAudit, aerr)
			}
			if err != nil {
				return res, err
			}
			loaded = true // the counts change even for a file loaded before
		}
		if !st.Skipped {
			for _, p := range st.Problems {
				warn("dataset %s: warning: %s", f, p)
			}
		}
		res.Sources = append(res.Sources, st)
	}
	if len(res.Sources) > 0 {
		// verify compares the shards with the hashes recorded here. Also
		// after files that were only skipped: a run killed after its load
		// but before this point left shards that no entry records yet.
		if _, err := c.RecordShards(ctx); err != nil {
			return res, err
		}
	}
	if loaded && !opts.Link.NoLink {
		if res.Persons, err = relink(ctx, c, ix, opts.Link); err != nil {
			return res, err
		}
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("%d of %d dataset files failed", len(res.Failed), len(files))
	}
	return res, nil
}

// errAudit marks a failure to write the audit log: nothing may go on
// unrecorded.
var errAudit = errors.New("audit log")

// loadJob is one dataset file to load as a source.
type loadJob struct {
	path     string         // the file read: a host path or a stored object
	name     string         // source name ("" = base name of path)
	origin   index.Origin   // the evidence item and path it was found at, if any
	input    custody.Item   // the audit entry's input (its Size and SHA256 are filled in)
	read     ingest.Options // how to read it (Rejects is set here)
	progress Progress
	details  map[string]any // more audit details
}

// loadOne loads one dataset file, keeps its malformed rows in the case's
// rejects file, and records the load in the audit log whatever the
// outcome. A failed load returns its error; a failed audit wraps errAudit.
func loadOne(ctx context.Context, c *custody.Case, ix *index.Index, job loadJob) (index.SourceStats, error) {
	// The records (identifiers with the names, addresses and join keys
	// beside them) are kept for person linking.
	recs, err := persons.NewRecorder(persons.Dir(ix.Dir()))
	if err != nil {
		return index.SourceStats{}, err
	}
	rej, err := c.NewRejects()
	if err != nil {
		recs.Discard()
		return index.SourceStats{}, fmt.Errorf("%w: %v", errAudit, err)
	}
	job.read.Rejects = rej
	job.read.Attributes = true
	// In the file's order: the record file (and its record numbers) is the
	// same on every load of the file, and what evidx-beam load writes.
	job.read.InOrder = true
	st, err := ix.AddDataset(ctx, job.path, job.name, job.origin, recs.Wrap(DatasetReader(job.read)), &loadProgress{p: orNone(job.progress)})
	if err == nil && !st.Skipped {
		err = recs.Commit(st.ID)
	} else {
		recs.Discard()
	}
	in := job.input
	in.Size = st.Size
	if in.SHA256 == "" {
		in.SHA256 = st.SHA256
	}
	entry := custody.Entry{Action: "dataset.add", Inputs: []custody.Item{in}}
	kept, rerr := rej.Finish(in.SHA256, err == nil && !st.Skipped)
	if err == nil {
		err = rerr
	}
	entry.Outputs = kept
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	} else {
		entry.Outcome = custody.OutcomeOK
		entry.Details = map[string]any{"source_id": st.ID, "name": st.Name, "skipped": st.Skipped,
			"rows": st.Rows, "rejected": st.Rejected, "sightings": st.Sightings,
			"unique": st.Unique, "new": st.New, "invalid": st.Invalid, "seconds": st.Seconds,
			"columns": st.Columns, "problems": st.Problems}
		for k, v := range job.details {
			entry.Details[k] = v
		}
	}
	if aerr := c.Audit(entry); aerr != nil {
		return st, fmt.Errorf("%w: %v", errAudit, aerr)
	}
	return st, err
}

// loadFound loads every dataset found on an evidence item into the index,
// each a source whose origin is the item and its path there. Candidates
// whose content does not parse as a table of people are kept in
// NotDatasets with the reason.
func loadFound(ctx context.Context, c *custody.Case, evID string, found []datasetFile, res *EvidenceResult, warn func(string, ...any), prog Progress) error {
	ix, err := openIndex(ctx, c)
	if err != nil {
		return err
	}
	loaded := false
	for _, d := range found {
		prog.Add(1)
		obj, err := c.ObjectPath(d.object)
		if err != nil {
			return err
		}
		name := d.evidencePath
		if i := strings.LastIndexAny(name, "/:"); i >= 0 {
			name = name[i+1:]
		}
		// Spill files of SQLite datasets go in the case's scratch directory.
		tmp, err := c.Scratch()
		if err != nil {
			return err
		}
		ro := records.Options{TmpDir: tmp}
		dec := ingest.QualifyDataset(ctx, obj, ro)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !dec.Dataset {
			dec.Path = d.evidencePath
			res.NotDatasets = append(res.NotDatasets, dec)
			continue
		}
		// Malformed rows are kept in the case's rejects file of the
		// dataset, named by the evidence item and the path on it.
		st, err := loadOne(ctx, c, ix, loadJob{path: obj, name: name,
			origin:  index.Origin{EvidenceID: evID, EvidencePath: d.evidencePath},
			input:   custody.Item{Kind: "dataset", ID: evID, Path: d.evidencePath, SHA256: d.object},
			read:    ingest.Options{Records: ro, Name: evID + " " + d.evidencePath},
			details: map[string]any{"reason": dec.Reason}})
		// The shards changed even when only keeping the rejects failed.
		loaded = loaded || st.ID != 0 && !st.Skipped
		switch {
		case errors.Is(err, errAudit):
			return err
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			warn("evidence %s: dataset %s: %v", evID, d.evidencePath, err)
		default:
			if !st.Skipped {
				for _, p := range st.Problems {
					warn("evidence %s: dataset %s: %s", evID, d.evidencePath, p)
				}
			}
			res.Datasets = append(res.Datasets, st)
		}
	}
	if loaded {
		if _, err = c.RecordShards(ctx); err != nil {
			return err
		}
		if res.Persons, err = relink(ctx, c, ix, LinkOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func openIndex(ctx context.Context, c *custody.Case) (*index.Index, error) {
	return index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
}

// DatasetReader adapts ingest.ReadDataset to the index's reader type.
func DatasetReader(opts ingest.Options) index.ReadFunc {
	return func(ctx context.Context, path string, sink func([]identity.Sighting) error) (index.FileInfo, error) {
		st, err := ingest.ReadDataset(ctx, path, opts, sink)
		if err != nil {
			return index.FileInfo{}, err
		}
		cols, err := json.Marshal(st.Columns)
		if err != nil {
			return index.FileInfo{}, err
		}
		return index.FileInfo{SHA256: st.SHA256, Format: st.Format, Encoding: st.Encoding, Compression: st.Compression,
			Rows: st.Rows, Rejected: st.Rejected, Invalid: st.Invalid, Columns: cols, Problems: st.Problems}, nil
	}
}

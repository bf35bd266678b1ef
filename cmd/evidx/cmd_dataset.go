package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
	"github.com/spf13/cobra"
)

// datasetOptions are the flags of `evidx dataset add`.
type datasetOptions struct {
	source string
	json   bool
	reload bool
	parse  parseOptions
}

func newDatasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Ingest leaked datasets into a case's identity index",
	}
	var opts datasetOptions
	add := &cobra.Command{
		Use:   "add DIR FILE...",
		Short: "Ingest dataset files handed over directly (skips files already ingested)",
		Long: `Ingest leaked dataset files into the case's identity index. Each file becomes
a source named after its base name (or --source NAME). A file whose SHA-256 is
already ingested is skipped; an interrupted ingestion is finished by running
the same command again, with the counts of one clean run. --reload removes a
file already ingested (as 'evidx dataset remove' does) and loads it again,
e.g. with other --column or --encoding choices; it then counts as the last
source loaded.`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runDatasetAdd(cmd.Context(), opts, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	add.Flags().StringVar(&opts.source, "source", "", "source name (only with one FILE; default: the file's base name)")
	add.Flags().BoolVar(&opts.json, "json", false, "print one JSON object on stdout")
	add.Flags().BoolVar(&opts.reload, "reload", false, "remove a file already ingested and load it again")
	opts.parse.addFlags(add.Flags())
	cmd.AddCommand(add)
	var ropts removeOptions
	remove := &cobra.Command{
		Use:   "remove DIR SOURCE...",
		Short: "Take sources out of the identity index, as if never loaded",
		Long: `Remove dataset sources from the case's identity index. SOURCE is a source id
(as 'evidx stats' lists them), a SHA-256 or a prefix of at least 8 hex digits,
or a name that only one source has. Afterwards every count (unique identities,
each source's new identities, overlaps) is what it would be had the source
never been loaded. The removal is recorded in the audit log with --reason. A
removal that is interrupted is finished by running it again, or by the next
dataset load.`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runDatasetRemove(cmd.Context(), ropts, a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	remove.Flags().StringVar(&ropts.reason, "reason", "", "why the source is removed (recorded in the audit log)")
	remove.Flags().BoolVar(&ropts.json, "json", false, "print one JSON object on stdout")
	cmd.AddCommand(remove)
	return cmd
}

// datasetGoMemLimit is the soft Go heap limit of `dataset add`, bytes.
const datasetGoMemLimit = 512 << 20

// datasetResult is the JSON of `dataset add`.
type datasetResult struct {
	Sources []index.SourceStats `json:"sources"`
	Failed  []datasetFailure    `json:"failed"`
}

type datasetFailure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

func runDatasetAdd(ctx context.Context, opts datasetOptions, a []string, stdout, stderr io.Writer) error {
	dir, files := a[0], a[1:]
	if opts.source != "" && len(files) > 1 {
		return usageError{errors.New("--source names one file; give one FILE per --source")}
	}
	ro := records.Options{}
	columns, err := opts.parse.apply(&ro)
	if err != nil {
		return usageError{err}
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", f)
		}
	}
	// Outside the Go heap: the load's sort buffers (index.Options.SortBytes,
	// 384 MiB, mapped) and the page caches of the shards being written
	// (CacheKiB each, two at a time). The parsers' garbage is Go heap: a
	// soft limit on it keeps the whole process under 1 GiB on any size of
	// input (the GC just works harder near the limit).
	if lim := debug.SetMemoryLimit(-1); lim > datasetGoMemLimit {
		debug.SetMemoryLimit(datasetGoMemLimit)
	}
	c, err := custody.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer c.Close()
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		return err
	}
	res := datasetResult{Sources: []index.SourceStats{}, Failed: []datasetFailure{}}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		// Malformed rows are kept, with their location, in the case's
		// rejects file of the dataset.
		rej, err := c.NewRejects()
		if err != nil {
			return err
		}
		// Records of SQLite datasets spill beside the shards, inside the case.
		ro.TmpDir = ix.Dir()
		read := ingest.DatasetReader(ingest.Options{Records: ro, Columns: columns, Rejects: rej})
		if opts.reload {
			prev, err := ix.SourceOfFile(ctx, abs)
			if err != nil {
				return err
			}
			if prev != nil {
				r, err := removeSource(ctx, c, ix, *prev, "reload of "+abs)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "evidx: dataset %s: removed source #%d to load it again\n", oneLine(f), r.Source.ID)
			}
		}
		prog := newLoadProgress(stderr, filepath.Base(f), abs)
		st, err := ix.AddDataset(ctx, abs, opts.source, index.Origin{}, read, prog)
		prog.stop()
		entry := custody.Entry{Action: "dataset.add", Inputs: []custody.Item{{Kind: "dataset", Path: abs, Size: st.Size, SHA256: st.SHA256}}}
		kept, rerr := rej.Finish(st.SHA256, err == nil && !st.Skipped)
		if err == nil {
			err = rerr
		}
		entry.Outputs = append(entry.Outputs, kept...)
		if err != nil {
			entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
			res.Failed = append(res.Failed, datasetFailure{Path: f, Error: err.Error()})
			fmt.Fprintf(stderr, "evidx: dataset %s: %s\n", oneLine(f), oneLine(err.Error()))
		} else {
			entry.Outcome = custody.OutcomeOK
			entry.Details = map[string]any{"source_id": st.ID, "name": st.Name, "skipped": st.Skipped,
				"rows": st.Rows, "rejected": st.Rejected, "sightings": st.Sightings,
				"unique": st.Unique, "new": st.New, "invalid": st.Invalid, "seconds": st.Seconds,
				"columns": st.Columns, "problems": st.Problems}
			if !st.Skipped {
				for _, p := range st.Problems {
					fmt.Fprintf(stderr, "evidx: dataset %s: warning: %s\n", oneLine(f), oneLine(p))
				}
			}
			res.Sources = append(res.Sources, st)
		}
		if aerr := c.Audit(entry); aerr != nil {
			return aerr
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
	}
	if len(res.Sources) > 0 {
		// verify compares the shards with the hashes recorded here. Also
		// after files that were only skipped: a run killed after its load
		// but before this point left shards that no entry records yet.
		if _, err := c.RecordShards(ctx); err != nil {
			return err
		}
	}
	if opts.json {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		for _, s := range res.Sources {
			what := "added"
			if s.Skipped {
				what = "already ingested, skipped"
			}
			fmt.Fprintf(stdout, "%s (%s): %s; rows %d, rejected %d, unique %s, new %s, %.1f s\n",
				oneLine(s.Name), s.SHA256[:12], what, s.Rows, s.Rejected, kindCounts(s.Unique), kindCounts(s.New), s.Seconds)
		}
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d of %d dataset files failed", len(res.Failed), len(files))
	}
	return nil
}

type removeOptions struct {
	reason string
	json   bool
}

// removeResult is the JSON of `dataset remove`.
type removeResult struct {
	Removed []index.Removal         `json:"removed"`
	Unique  map[identity.Kind]int64 `json:"unique"` // the case's unique identities afterwards
}

func runDatasetRemove(ctx context.Context, opts removeOptions, a []string, stdout, stderr io.Writer) error {
	dir, refs := a[0], a[1:]
	c, err := custody.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer c.Close()
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		return err
	}
	// Every reference is resolved before anything is removed: a typo
	// removes nothing.
	var todo []index.SourceStats
	for _, ref := range refs {
		list, err := ix.FindSources(ctx, ref)
		if err != nil {
			return err
		}
		if len(list) > 1 {
			ids := make([]string, len(list))
			for i, s := range list {
				ids[i] = fmt.Sprintf("#%d %s", s.ID, s.SHA256[:12])
			}
			return fmt.Errorf("%q names %d sources (%s): give an id or SHA-256", ref, len(list), strings.Join(ids, ", "))
		}
		todo = append(todo, list[0])
	}
	res := removeResult{Removed: []index.Removal{}}
	for _, s := range todo {
		r, err := removeSource(ctx, c, ix, s, opts.reason)
		if err != nil {
			return err
		}
		res.Removed = append(res.Removed, r)
	}
	if _, err := c.RecordShards(ctx); err != nil {
		return err
	}
	st, err := ix.Stats(ctx, index.StatsOptions{NoOverlap: true})
	if err != nil {
		return err
	}
	res.Unique = st.Unique
	if opts.json {
		return writeJSON(stdout, res)
	}
	for _, r := range res.Removed {
		fmt.Fprintf(stdout, "removed %s (#%d, %s): it held unique %s and brought new %s\n",
			oneLine(r.Source.Name), r.Source.ID, r.Source.SHA256[:12], kindCounts(r.Source.Unique), kindCounts(r.Source.New))
	}
	fmt.Fprintf(stdout, "case unique identities now %s\n", kindCounts(res.Unique))
	return nil
}

// removeSource removes one source from the index and records it in the
// audit log, whatever the outcome.
func removeSource(ctx context.Context, c *custody.Case, ix *index.Index, s index.SourceStats, reason string) (index.Removal, error) {
	r, err := ix.RemoveSource(ctx, s.ID, reason)
	entry := custody.Entry{Action: "dataset.remove", Inputs: []custody.Item{{Kind: "dataset", Path: s.Path, Size: s.Size, SHA256: s.SHA256}},
		Details: map[string]any{"source_id": s.ID, "name": s.Name, "reason": reason, "evidence": s.Evidence, "evidence_path": s.EvidPath,
			"unique": s.Unique, "new": s.New, "gained": r.Gained}}
	entry.Outcome = custody.OutcomeOK
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	}
	if aerr := c.Audit(entry); aerr != nil && err == nil {
		err = aerr
	}
	return r, err
}

// loadProgress prints, once a second while stderr is a terminal, how far
// the load is. Reading: identifiers read per second, percent of the file
// read (from the read offset of the reader's open descriptor of path in
// /proc/self/fdinfo) and an ETA for the reading. Writing: percent of the
// sorted records merged into the shards, with its ETA. Before the first
// identifier arrives (the file is hashed first when a source of the same
// size exists) the line shows how far the file is read.
type loadProgress struct {
	read        atomic.Int64
	done, total atomic.Int64 // writing phase
	stopc       chan struct{}
	ended       chan struct{}
}

func newLoadProgress(w io.Writer, name, path string) *loadProgress {
	p := &loadProgress{stopc: make(chan struct{}), ended: make(chan struct{})}
	if !stderrIsTerminal() {
		close(p.ended)
		return p
	}
	var size int64
	if st, err := os.Stat(path); err == nil {
		size = st.Size()
	}
	// Reading starts when the progress is made, or after hashing (only
	// when a source of the same size exists) when the first identifier
	// arrives: rates and ETAs count from there.
	readStart, hashing := time.Now(), false
	var writeStart time.Time
	eta := func(start time.Time, frac float64) string {
		if el := time.Since(start); frac > 0.01 && el > 2*time.Second {
			return ", ETA " + (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
		}
		return ""
	}
	go func() {
		defer close(p.ended)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				n, total := p.read.Load(), p.total.Load()
				line := oneLine(name) + ": "
				switch {
				case total > 0:
					if writeStart.IsZero() {
						writeStart = time.Now()
					}
					frac := float64(p.done.Load()) / float64(total)
					line += fmt.Sprintf("%d identifiers read; writing the shards %.0f%%", n, 100*frac) + eta(writeStart, frac)
				case n > 0:
					if hashing {
						readStart, hashing = time.Now().Add(-time.Second), false
					}
					line += fmt.Sprintf("%d identifiers read, %.0f/s", n, float64(n)/time.Since(readStart).Seconds())
					if pos := readOffset(path); size > 0 && pos > 0 {
						frac := float64(pos) / float64(size)
						line += fmt.Sprintf(", read %.0f%%", 100*frac) + eta(readStart, frac)
					}
				default: // hashing first (a source of the same size exists), or no identifier yet
					hashing = true
					line += "reading"
					if pos := readOffset(path); size > 0 && pos >= 0 {
						line += fmt.Sprintf(" %.0f%%", 100*float64(pos)/float64(size))
					}
				}
				fmt.Fprint(w, "\r\033[K"+line)
			}
		}
	}()
	return p
}

// readOffset returns the file offset of this process's first open
// descriptor for path, or -1. Only progress display relies on it.
func readOffset(path string) int64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || l != path {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(ln, "pos:"); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// Read counts identifiers read.
func (p *loadProgress) Read(n int64) { p.read.Add(n) }

// Write records how far the shards are written; called by shard writers
// concurrently.
func (p *loadProgress) Write(done, total int64) {
	p.total.Store(total)
	p.done.Store(done)
}

func (p *loadProgress) stop() {
	close(p.stopc)
	<-p.ended
}

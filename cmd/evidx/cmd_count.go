package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/scratch"
)

// countOptions are the flags of `evidx count`.
type countOptions struct {
	JSON    bool
	Rejects string
	Mem     string
	Tmp     string
	Workers int
	Parse   parseOptions
}

func newCountCmd() *cobra.Command {
	var opts countOptions
	cmd := &cobra.Command{
		Use:   "count FILE...",
		Short: "Count unique identities (phone, email, cn_id, ...) in leaked datasets, exactly",
		Long: `count streams each dataset (csv, tsv, any-delimiter text, JSON Lines, MySQL
and PostgreSQL dumps, SQLite, plain text; gzip/zstd/bzip2/xz/zip; UTF-8,
UTF-16, GBK/GB18030), normalises the identifiers it holds and counts the
distinct ones per kind, per file and over all files. Malformed rows are
counted as rejected and written to --rejects with their location.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCount(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object")
	f.StringVar(&opts.Rejects, "rejects", "", "write malformed rows (file, location, reason, text) to `PATH`")
	f.StringVar(&opts.Mem, "mem", "1G", "memory budget in `BYTES` (suffixes K, M, G); the dedupe spills beyond it")
	f.StringVar(&opts.Tmp, "tmp", "", "directory for spill files, in a 0700 run directory removed at the end (default $TMPDIR)")
	f.IntVar(&opts.Workers, "workers", 0, "parsing goroutines (default: number of CPUs)")
	opts.Parse.addFlags(f)
	return cmd
}

// parseBytes parses a byte count with an optional K/M/G/T suffix (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad byte count %q", s)
	}
	return v * mult, nil
}

func runCount(ctx context.Context, stdout, stderr io.Writer, opts countOptions, files []string) error {
	mem, err := parseBytes(opts.Mem)
	if err != nil {
		return usageError{fmt.Errorf("--mem: %w", err)}
	}
	if mem < 64<<20 {
		return usageError{errors.New("--mem: at least 64M")}
	}
	ro := recordsOptions(opts.Tmp)
	columns, err := opts.Parse.apply(&ro)
	if err != nil {
		return usageError{err}
	}
	// The Go heap may hold garbage up to the limit before collecting: keep
	// the whole process under the budget, the dedupe's sets at about half.
	// The soft limit makes the collector work harder near the budget
	// instead of letting the heap double past it.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(mem * 7 / 8))
	if opts.Tmp != "" {
		if fi, err := os.Stat(opts.Tmp); err != nil || !fi.IsDir() {
			return usageError{fmt.Errorf("--tmp %s: not a directory", opts.Tmp)}
		}
	}
	var rejects io.Writer
	if opts.Rejects != "" {
		f, err := os.OpenFile(opts.Rejects, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		rejects = f
	}
	// Staged sightings get a quarter of the budget (buffers grow by
	// doubling, and the final per-partition sets need room too).
	// Spills hold personal data: they live in one locked run directory
	// that this run removes, and the next run removes if this one is killed.
	tmpParent := opts.Tmp
	if tmpParent == "" {
		tmpParent = os.TempDir()
	}
	tmp, err := scratch.New(tmpParent, "evidx-count-")
	if err != nil {
		return err
	}
	defer tmp.Close()
	ro.TmpDir = tmp.Path
	counter, err := dedupe.New(dedupe.Options{MemBytes: mem / 4, TmpDir: tmp.Path})
	if err != nil {
		return err
	}
	defer counter.Close()

	rep := ingest.CountReport{Files: make([]ingest.CountFile, len(files)), Problems: []string{}}
	ok := 0
	progress, done := countProgress(files)
	defer done()
	for i, path := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := ingest.ReadDataset(ctx, path, ingest.Options{
			Workers:        opts.Workers,
			Rejects:        rejects,
			ConcurrentSink: true,
			NoLoc:          true,
			Records:        ro,
			Columns:        columns,
			Progress:       progress,
		}, func(b []identity.Sighting) error { return counter.Add(i, b) })
		rep.Files[i].FileStats = st
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Files[i].Error = oneLine(err.Error())
			fmt.Fprintf(stderr, "evidx: count: %s\n", oneLine(err.Error()))
			if st.Rows > 0 {
				ok++
			}
			continue
		}
		members, doubts := ingest.FileProblems(st)
		for _, msg := range members {
			fmt.Fprintf(stderr, "evidx: count: %s\n", msg)
		}
		for _, msg := range doubts {
			fmt.Fprintf(stderr, "evidx: count: warning: %s\n", msg)
		}
		rep.Problems = append(append(rep.Problems, members...), doubts...)
		ok++
	}
	res, err := counter.Result(len(files))
	if err != nil {
		return err
	}
	rep.Unique = res.Unique
	rep.Spills = counter.Spills()
	for i := range rep.Files {
		rep.Files[i].Unique = res.PerFile[i]
	}
	if ok == 0 {
		return errors.New("count: no file could be read")
	}
	if opts.JSON {
		return writeJSON(stdout, rep)
	}
	return ingest.WriteCountTable(stdout, rep)
}

// countProgress shows how far the bytes of all files are read; it returns
// the callback for ingest and a function that removes the line.
func countProgress(files []string) (func(int64), func()) {
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	bar := newProgress("count")
	bar.Stage("reading", "bytes", total)
	return bar.Add, bar.stop
}

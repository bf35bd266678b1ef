// Command evidx-beam runs evidx's dataset path as an Apache Beam
// pipeline: `evidx-beam count --runner prism FILES --json` prints what
// `evidx count FILES --json` prints. The runner flags are Beam's own
// (--runner, --endpoint, --environment_type, --project, ...); see the
// README for Flink, Spark and Dataflow.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/evidx/evidx/beam/job"
)

// beamx is imported for its runners and filesystems (prism, universal,
// flink, spark, dataflow; local, gs).
var _ = beamx.Run

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

var (
	jsonOut   = flag.Bool("json", false, "count: print one JSON object (as evidx count --json)")
	shards    = flag.Int("shards", 0, "partitions: the index's shard count (default 16)")
	splitSize = flag.Int64("split_size", 64<<20, "bytes per span of a large uncompressed line-oriented file")
	out       = flag.String("out", "", "load: directory (new or empty; local or a Beam filesystem URL) for the shard files and manifest 'evidx dataset import' loads")
	work      = flag.String("work", "", "directory (local, or a Beam filesystem URL the workers can write) for the job's result (default: a temporary one)")
	format    = flag.String("format", "", "read every file as FORMAT (csv, tsv, delimited, jsonl, sql, text) instead of sniffing")
	delimiter = flag.String("delimiter", "", "field separator SEP; implies delimited text")
	encoding  = flag.String("encoding", "", "character set ENC instead of detecting it")
	noHeader  = flag.Bool("no-header", false, "the first record is data, not a header")
	columns   stringList
)

func init() {
	flag.Var(&columns, "column", "force a column's role: NAME_OR_INDEX=KIND (repeatable)")
}

const usage = `usage: evidx-beam count [--runner R] [flags] FILE... [--json]
       evidx-beam load  [--runner R] [flags] --out DIR FILE...   (then: evidx dataset import CASE DIR)`

func main() {
	cmd, args := "", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	// Flags may follow the files, as with evidx: put them first for the
	// flag package (and Beam's flags, which live there too).
	if err := flag.CommandLine.Parse(flagsFirst(flag.CommandLine, args)); err != nil {
		os.Exit(2)
	}
	// A worker started by a runner (--worker) runs here and exits.
	beam.Init()
	ctx := context.Background()
	var err error
	switch cmd {
	case "count":
		err = count(ctx, os.Stdout, os.Stderr, flag.Args())
	case "load":
		err = load(ctx, os.Stdout, os.Stderr, flag.Args())
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "evidx-beam: %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// flagsFirst reorders args so that every flag (and its value) comes
// before the positional arguments.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), pos...)
}

func options() job.Options {
	return job.Options{Shards: *shards, SplitSize: *splitSize, Work: *work,
		Format: *format, Delimiter: unescapeDelimiter(*delimiter), Encoding: *encoding, NoHeader: *noHeader, Columns: columns}
}

func unescapeDelimiter(d string) string {
	switch d {
	case `\t`, "tab", "TAB":
		return "\t"
	}
	return d
}

func runner() string {
	if *runners.Runner == "" {
		return "prism"
	}
	return *runners.Runner
}

func count(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		return errors.New("no file given\n" + usage)
	}
	files, err := job.Expand(ctx, args)
	if err != nil {
		return err
	}
	res, err := job.Count(ctx, runner(), files, options())
	if err != nil {
		return err
	}
	rep, err := job.ParseCount(res.Report)
	if err != nil {
		return err
	}
	ok := 0
	for _, f := range rep.Files {
		if f.Error != "" {
			fmt.Fprintf(stderr, "evidx-beam: count: %s\n", f.Error)
		}
		if f.Error == "" || f.Rows > 0 {
			ok++
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stderr, "evidx-beam: count: %s\n", p)
	}
	if ok == 0 {
		return errors.New("no file could be read")
	}
	if *jsonOut {
		_, err = stdout.Write(res.Report)
		return err
	}
	return job.PrintCount(stdout, rep)
}

// load runs the load pipeline into --out and prints what it wrote.
func load(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 || *out == "" {
		return errors.New("no file or no --out given\n" + usage)
	}
	files, err := job.Expand(ctx, args)
	if err != nil {
		return err
	}
	res, err := job.Load(ctx, runner(), files, options(), *out, "evidx-beam")
	if err != nil {
		return err
	}
	rep, err := job.ParseCount(res.Report)
	if err != nil {
		return err
	}
	for _, f := range rep.Files {
		if f.Error != "" {
			fmt.Fprintf(stderr, "evidx-beam: load: %s\n", f.Error)
		}
	}
	fmt.Fprintf(stdout, "job %s on %s: %d files into %s; load them with: evidx dataset import CASE %s\n", res.JobID, runner(), len(files), *out, *out)
	return nil
}

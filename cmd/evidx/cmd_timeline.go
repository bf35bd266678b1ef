package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/ingest/timeline"
	"github.com/evidx/evidx/pipeline"
)

// timelineOptions are the flags of `evidx timeline`.
type timelineOptions struct {
	Format    string // "body", "csv", "json"
	Out       string // output file; "" or "-": stdout
	MD5       bool   // MD5 of each file's content in the body file
	Prefix    string // before every name, as fls -m's mount point
	Partition int    // one volume of an image; 0: all
}

func newTimelineCmd() *cobra.Command {
	opts := timelineOptions{Format: "body"}
	cmd := &cobra.Command{
		Use:   "timeline IMAGE|CASE",
		Short: "Write a timeline of every file: TSK body file (for mactime -b), or evidx's own as CSV or JSON",
		Long: `Write the times of every file, allocated and deleted, of every file system
and every layer inside it (virtual disks and images held in files).

--format body (the default) writes The Sleuth Kit's body file, as
fls -r -m does: MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime,
times in Unix seconds (0 when not recorded), deleted files named with
" (deleted)"; "mactime -b FILE" reads it. --format csv or json writes one
row (JSON: one object a line) per time of a file (kind M, A, C or B), with
its evidence and layered path, sorted by time, times in the --tz zone.

On a CASE, the files of every evidence item, from the listing stored at
evidence add (items with none are reopened read-only); names start with
the evidence id. --tz is the zone of FAT's local times (as fls -z).
Evidence is opened read-only.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runTimeline(cmd.Context(), cmd, opts, a[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Format, "format", "body", "body (TSK body file), csv or json (JSON lines)")
	f.StringVarP(&opts.Out, "out", "o", "", "write to `FILE` instead of stdout")
	f.BoolVar(&opts.MD5, "md5", false, "put each file's MD5 in the body file (reads every file; a case gives the stored MD5)")
	f.StringVar(&opts.Prefix, "prefix", "", "put `PREFIX` before every name, as fls -m's mount point")
	f.IntVar(&opts.Partition, "partition", 0, "an image's volume with this index only (pN, as ls prints it)")
	return cmd
}

func runTimeline(ctx context.Context, cmd *cobra.Command, opts timelineOptions, src string) error {
	switch opts.Format {
	case "body", "csv", "json":
	default:
		return usageError{fmt.Errorf("timeline: --format %q: want body, csv or json", opts.Format)}
	}
	loc, err := zone()
	if err != nil {
		return usageError{err}
	}
	isCase := false
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		isCase = true
		if opts.Partition != 0 {
			return usageError{errors.New("timeline: --partition goes with an IMAGE, not a CASE")}
		}
	}
	var c *custody.Case
	inputs := []string{src}
	if isCase {
		if c, err = openCaseRead(ctx, src); err != nil {
			return err
		}
		defer c.Close()
		items, err := c.Evidence(ctx)
		if err != nil {
			return err
		}
		inputs = inputs[:0]
		for _, ev := range items {
			for _, s := range ev.Segments {
				inputs = append(inputs, s.Path)
			}
		}
	}
	w, closeOut, err := timelineOut(cmd.OutOrStdout(), opts.Out, inputs)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var sorter timeline.Sorter
	emit := func(e *timeline.Entry) error {
		if opts.Format == "body" {
			return timeline.WriteBody(bw, e)
		}
		sorter.Add(e)
		return nil
	}
	topts := timeline.Options{Prefix: opts.Prefix, MD5: opts.MD5}
	var problems []string
	if isCase {
		problems, err = pipeline.CaseTimeline(ctx, c, topts, loc, emit)
	} else {
		problems, err = pipeline.ImageTimeline(ctx, src, topts, opts.Partition, -1, loc, emit)
	}
	for _, p := range problems {
		fmt.Fprintln(cmd.ErrOrStderr(), "evidx: "+oneLine(p))
	}
	if err == nil {
		switch opts.Format {
		case "csv":
			err = timeline.WriteCSV(bw, sorter.Sorted(), loc)
		case "json":
			err = timeline.WriteJSON(bw, sorter.Sorted(), loc)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	return err
}

// timelineOut opens the output: stdout for "" or "-", else the file,
// refused when it is one of the evidence files (which are never written).
func timelineOut(stdout io.Writer, out string, evidence []string) (io.Writer, func() error, error) {
	if out == "" || out == "-" {
		return stdout, func() error { return nil }, nil
	}
	if st, err := os.Stat(out); err == nil {
		for _, p := range evidence {
			if ev, err := os.Stat(p); err == nil && os.SameFile(st, ev) {
				return nil, nil, usageError{fmt.Errorf("timeline: -o %s is evidence; evidence is never written", out)}
			}
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

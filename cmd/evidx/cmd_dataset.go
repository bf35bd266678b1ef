package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/persons"
	"github.com/evidx/evidx/pipeline"
	"github.com/spf13/cobra"
)

// datasetOptions are the flags of `evidx dataset add`.
type datasetOptions struct {
	source string
	json   bool
	reload bool
	parse  parseOptions
	link   pipeline.LinkOptions
	// category tags the sources loaded (persons.Categories).
	category string
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
	add.Flags().StringVar(&opts.category, "category", "", "information category of the files for the sentencing counts of 法释〔2017〕10号 art. 5: "+strings.Join(persons.CategoryNames(), ", "))
	add.Flags().BoolVar(&opts.link.NoLink, "no-link", false, "do not relink persons after the load (stats then show the last linking)")
	add.Flags().IntVar(&opts.link.HubIDs, "hub-ids", 0, "a value seen with more than this many distinct ID numbers is a hub that links nobody (default 1, or the case's last choice)")
	add.Flags().IntVar(&opts.link.HubPhones, "hub-phones", 0, "a value seen with more than this many distinct phone numbers is a hub (default 10, or the case's last choice)")
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
	var importJSON bool
	var importLink pipeline.LinkOptions
	imp := &cobra.Command{
		Use:   "import DIR JOBDIR",
		Short: "Load datasets a Beam job counted elsewhere (evidx-beam load --out JOBDIR)",
		Long: `Load into the case DIR what 'evidx-beam load --out JOBDIR' wrote: each shard
file is checked against the SHA-256 in JOBDIR/manifest.json, then every input
file of the job becomes a source, in the job's order, with the counts 'dataset
add' of the same files in that order gives. Each file's persons records (the
job writes them as 'dataset add' records them) are checked against their
SHA-256 too, and the persons are relinked as after 'dataset add'. The job
(runner, job id, the outputs' hashes) and each source are recorded in the
audit log.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := openCase(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			defer c.Close()
			bar := newProgress(filepath.Base(a[1]))
			res, err := pipeline.ImportDatasets(cmd.Context(), c, a[1], bar, importLink)
			bar.stop()
			if res != nil {
				for _, p := range res.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), "evidx: dataset import: warning: "+oneLine(p))
				}
			}
			if err != nil || res == nil {
				return err
			}
			if importJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			for _, s := range res.Sources {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d rows, unique %v, new %v\n", oneLine(s.Name), s.Rows, s.Unique, s.New)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s on %s: %d sources\n", oneLine(res.JobID), oneLine(res.Runner), len(res.Sources))
			if p := res.Persons; p != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "persons linked: %d persons, %d hubs, from %d records\n", p.Unique, p.HubsTotal, p.Records)
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&importJSON, "json", false, "print one JSON object on stdout")
	imp.Flags().BoolVar(&importLink.NoLink, "no-link", false, "do not relink persons after the import (stats then show the last linking)")
	imp.Flags().IntVar(&importLink.HubIDs, "hub-ids", 0, "a value seen with more than this many distinct ID numbers is a hub that links nobody (default 1, or the case's last choice)")
	imp.Flags().IntVar(&importLink.HubPhones, "hub-phones", 0, "a value seen with more than this many distinct phone numbers is a hub (default 10, or the case's last choice)")
	cmd.AddCommand(imp)
	return cmd
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
	c, err := openCase(ctx, dir)
	if err != nil {
		return err
	}
	defer c.Close()
	var bar *termProgress
	defer func() {
		if bar != nil {
			bar.stop()
		}
	}()
	res, err := pipeline.LoadDatasets(ctx, c, files, pipeline.DatasetOptions{
		Name: opts.source, Reload: opts.reload, Records: ro, Columns: columns,
		Progress: func(file string) pipeline.Progress {
			if bar != nil {
				bar.stop()
			}
			bar = newProgress(filepath.Base(file))
			return bar
		},
		Warn: func(msg string) { fmt.Fprintln(stderr, "evidx: "+oneLine(msg)) },
		Link: opts.link, Category: opts.category,
	})
	if bar != nil {
		bar.stop()
	}
	if res == nil {
		return err
	}
	if opts.json {
		if werr := writeJSON(stdout, res); werr != nil {
			return werr
		}
		return err
	}
	for _, s := range res.Sources {
		what := "added"
		if s.Skipped {
			what = "already ingested, skipped"
		}
		fmt.Fprintf(stdout, "%s (%s): %s; rows %d, rejected %d, unique %s, new %s, %.1f s\n",
			oneLine(s.Name), s.SHA256[:12], what, s.Rows, s.Rejected, kindCounts(s.Unique), kindCounts(s.New), s.Seconds)
	}
	if p := res.Persons; p != nil {
		fmt.Fprintf(stdout, "persons linked: %d persons, %d hubs, from %d records\n", p.Unique, p.HubsTotal, p.Records)
	}
	return err
}

type removeOptions struct {
	reason string
	json   bool
}

func runDatasetRemove(ctx context.Context, opts removeOptions, a []string, stdout, stderr io.Writer) error {
	dir, refs := a[0], a[1:]
	c, err := openCase(ctx, dir)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := pipeline.RemoveSources(ctx, c, refs, opts.reason)
	if err != nil {
		return err
	}
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

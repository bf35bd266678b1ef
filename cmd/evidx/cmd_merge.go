package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/pipeline"
)

func newCaseMergeCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "merge DEST SRC...",
		Short: "Merge cases made by other labs or machines into DEST, exactly",
		Long: `merge brings each SRC case into DEST (made with 'evidx case init'; it may
already hold work). Each SRC must pass 'evidx verify'; it is opened read-only
and never written. Its evidence items are copied with their catalog rows and
stored objects (an id DEST already uses gets SRC's case number in front); its
datasets are loaded from its shards in its own order, so DEST's counts
(unique identities, each source's new ones, overlaps) are those of one case
that loaded everything; a dataset DEST already holds only gains SRC's places.
Each SRC's audit head is recorded in DEST's audit log.`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCaseMerge(cmd.Context(), a[0], a[1:], asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object on stdout")
	return cmd
}

func runCaseMerge(ctx context.Context, dest string, srcs []string, asJSON bool, stdout, stderr io.Writer) error {
	c, err := openCase(ctx, dest)
	if err != nil {
		return err
	}
	defer c.Close()
	out := struct {
		Merged []*pipeline.MergeResult `json:"merged"`
	}{Merged: []*pipeline.MergeResult{}}
	var firstErr error
	for _, s := range srcs {
		bar := newProgress(s)
		res, err := pipeline.MergeCase(ctx, c, s, bar)
		bar.stop()
		if res != nil {
			out.Merged = append(out.Merged, res)
			for _, p := range res.Problems {
				fmt.Fprintln(stderr, "evidx: case merge: warning: "+oneLine(p))
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "evidx: case merge: "+oneLine(err.Error()))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !asJSON {
			fmt.Fprintf(stdout, "%s (case %s, audit head %s, %d lines): %d evidence items, %d datasets\n",
				res.From, oneLine(res.CaseNumber), res.AuditHead, res.AuditLines, len(res.Evidence), len(res.Sources))
		}
	}
	if asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	}
	return firstErr
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/evidx/evidx/pipeline"
	"github.com/spf13/cobra"
)

type linkOptions struct {
	link pipeline.LinkOptions
	json bool
}

func newLinkCmd() *cobra.Command {
	var opts linkOptions
	cmd := &cobra.Command{
		Use:   "link DIR",
		Short: "Relink the case's identifiers into persons from the stored records (e.g. with other hub thresholds)",
		Long: `Link the identifiers of every loaded source into persons again, from the
records kept at load time (no dataset is parsed again): identifiers sharing a
record are one person, the tables of one database joined on their shared key
columns make one record, and persons are joined transitively across sources
and evidence items. A value seen with more distinct ID numbers than
--hub-ids, or more distinct phone numbers than --hub-phones, is a hub: it
joins nobody. Loads link by themselves; this rebuilds from scratch, with the
same result, and records it in the audit log.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runLink(cmd.Context(), opts, a, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&opts.link.HubIDs, "hub-ids", 0, "a value seen with more than this many distinct ID numbers is a hub (default 1, or the case's last choice)")
	cmd.Flags().IntVar(&opts.link.HubPhones, "hub-phones", 0, "a value seen with more than this many distinct phone numbers is a hub (default 10, or the case's last choice)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print one JSON object on stdout")
	return cmd
}

func runLink(ctx context.Context, opts linkOptions, a []string, stdout io.Writer) error {
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	sum, err := pipeline.Relink(ctx, c, opts.link)
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(stdout, sum)
	}
	fmt.Fprintf(stdout, "persons linked: %d persons, %d hubs, from %d records\n%s\n", sum.Unique, sum.HubsTotal, sum.Records, sum.Method)
	return nil
}

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
)

// verifyOptions are the flags of `evidx verify`.
type verifyOptions struct {
	Evidence bool
	JSON     bool
}

func newVerifyCmd() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify DIR [--evidence]",
		Short: "Check the audit chain, stored files, shards and reports of a case; --evidence re-hashes the media",
		Long: `Verify a case: the audit log's hash chain (and its last line against the
head recorded in the catalog), every stored extracted or carved file against
its SHA-256, every index shard against the hash recorded after its last
load, the last report's files against its audit entry, SHA256SUMS and its
signature. With --evidence every evidence image is re-read and its hashes
compared with those recorded at intake.

Each failure is one line naming what changed; exit 1 on any. The
verification itself is recorded in the audit log.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runVerify(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Evidence, "evidence", false, "re-hash every evidence image and compare with intake")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

func runVerify(ctx context.Context, cmd *cobra.Command, opts verifyOptions, a []string) error {
	c, err := custody.Open(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Verify(ctx, custody.VerifyOptions{Evidence: opts.Evidence, Rehash: rehashImage})
	if res == nil {
		return err
	}
	w := cmd.OutOrStdout()
	if opts.JSON {
		if werr := writeJSON(w, res); werr != nil {
			return werr
		}
	} else {
		for _, ch := range res.Checks {
			status := "ok  "
			if !ch.OK {
				status = "FAIL"
			}
			fmt.Fprintf(w, "%s %s: %s\n", status, ch.Name, oneLine(ch.Detail))
		}
		for _, f := range res.Failures {
			fmt.Fprintf(w, "changed: %s\n", oneLine(f))
		}
	}
	if err != nil {
		return err
	}
	if !res.OK {
		first := res.Failures[0]
		if len(res.Failures) > 1 {
			return fmt.Errorf("verify: %d failures; first: %s", len(res.Failures), first)
		}
		return fmt.Errorf("verify: %s", first)
	}
	return nil
}

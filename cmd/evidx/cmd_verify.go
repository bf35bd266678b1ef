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
	PubKey   string // examiner's public key file, kept outside the case
	JSON     bool
}

func newVerifyCmd() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify DIR [--evidence] [--pubkey PUB]",
		Short: "Check the audit chain, stored files, shards and reports of a case; --evidence re-hashes the media",
		Long: `Verify a case: the audit log's hash chain (and its last line against the
head recorded in the catalog), every stored extracted or carved file against
its SHA-256, every index shard against the hash recorded after its last
load, the last report's files against its audit entry, SHA256SUMS and its
signature. With --evidence every evidence image is re-read and its hashes
compared with those recorded at intake (as the audit log has them, so an
edited catalog is named as such and the image is not blamed). The catalog's
case, evidence and dataset source rows are compared with the rows the audit
log recorded when they were written; every report's stated audit head must
still be a line of the chain.

--pubkey PUB (PEM, as 'openssl pkey -in KEY -pubout' writes it, or the hex
of signing.pub) is the examiner's public key kept outside the case: every
audit line must carry a valid signature by it, and the case's own key must
be it. Without --pubkey a signed case is checked against its own key, which
whoever can write the case can replace; an unsigned case cannot tell a
rewritten history from the real one, so compare the printed audit head with
the head printed on the last report.

Each failure is one line naming what changed; exit 1 on any. The
verification itself is recorded in the audit log (not for a signed case
opened without --sign-key).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runVerify(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Evidence, "evidence", false, "re-hash every evidence image and compare with intake")
	f.StringVar(&opts.PubKey, "pubkey", "", "examiner's ed25519 public key `FILE` (PEM) to check every audit signature against")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

func runVerify(ctx context.Context, cmd *cobra.Command, opts verifyOptions, a []string) error {
	vo := custody.VerifyOptions{Evidence: opts.Evidence, Rehash: rehashImage}
	if opts.PubKey != "" {
		pub, err := custody.LoadPublicKey(opts.PubKey)
		if err != nil {
			return usageError{err}
		}
		vo.PubKey = pub
	}
	c, err := openCaseRead(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Verify(ctx, vo)
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
		fmt.Fprintf(w, "audit head %s (%d lines): compare with the head printed on the last report\n", res.Head, res.Lines)
		if res.NotRecorded != "" {
			fmt.Fprintf(w, "not recorded in the audit log: %s\n", oneLine(res.NotRecorded))
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

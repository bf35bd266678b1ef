package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
)

// transferOptions are the flags of `evidx custody transfer`.
type transferOptions struct {
	ID, From, To, Reason, At string
	JSON                     bool
}

func newCustodyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "custody",
		Short: "Record the chain of custody of evidence items",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return usageError{errors.New("custody: missing subcommand (transfer)")}
		},
	}
	cmd.AddCommand(newCustodyTransferCmd())
	return cmd
}

func newCustodyTransferCmd() *cobra.Command {
	var opts transferOptions
	cmd := &cobra.Command{
		Use:   "transfer DIR --id EVID --from A --to B --reason R [--at T]",
		Short: "Record that an evidence item passed from one holder to another",
		Long: `Record a transfer of the evidence item EVID of the case DIR from holder A
to holder B, for reason R, at time T (RFC 3339 with offset; default now).
The transfer is an audit line ("custody.transfer", naming the examiner
acting) and a row of the catalog; the report lists it under the item.

A must be the current holder when one is known (the receiver of the last
transfer, else --seized-by of the intake), and T may not be earlier than
the time the item came to A: the chain of custody has no gap.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCustodyTransfer(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ID, "id", "", "evidence item id (required)")
	f.StringVar(&opts.From, "from", "", "holder handing the item over (required)")
	f.StringVar(&opts.To, "to", "", "holder receiving it (required)")
	f.StringVar(&opts.Reason, "reason", "", "why it changed hands (required)")
	f.StringVar(&opts.At, "at", "", "when, RFC 3339 with offset (default: now)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

func runCustodyTransfer(ctx context.Context, cmd *cobra.Command, opts transferOptions, a []string) error {
	if opts.ID == "" || opts.From == "" || opts.To == "" || opts.Reason == "" {
		return usageError{errors.New("custody transfer: --id, --from, --to and --reason are required")}
	}
	var at time.Time
	if opts.At != "" {
		t, err := custody.ParseTime(opts.At)
		if err != nil {
			return usageError{fmt.Errorf("custody transfer: --at: %w", err)}
		}
		at = t
	}
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.AddTransfer(ctx, custody.Transfer{EvidenceID: opts.ID, From: opts.From, To: opts.To, Reason: opts.Reason, At: at})
	if err != nil {
		if errors.Is(err, custody.ErrBadTransfer) {
			return usageError{err}
		}
		return err
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), t)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s → %s at %s (%s), audit line %d\n", t.EvidenceID, oneLine(t.From), oneLine(t.To),
		t.At.Format(time.RFC3339), oneLine(t.Reason), t.AuditSeq)
	return nil
}

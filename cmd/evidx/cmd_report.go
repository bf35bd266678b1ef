package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/pipeline"
)

// reportOptions are the flags of `evidx report`.
type reportOptions struct {
	Out  string // output directory; default DIR/reports
	Sign string // ed25519 private key file
	JSON bool
	Lang string // "zh": also the Chinese report
}

func newReportCmd() *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report DIR [--out DIR] [--sign KEY]",
		Short: "Write the chain-of-custody report: HTML, JSON, DFXML per evidence item, hashdeep manifest, SHA256SUMS",
		Long: `Write the chain-of-custody report of the case DIR into DIR/reports (or
--out): report.html (one self-contained printable page), report.json (the
same content, with "schema_version"), evidence-<id>.dfxml (DFXML 2) per
evidence item, manifest.hashdeep (every extracted and carved file, names as
'evidx export' writes them) and SHA256SUMS covering them; with --sign KEY
also SHA256SUMS.sig (ed25519; the key must be the one given to 'case init
--sign-key'). Every file's SHA-256 is appended to the audit log.

When the case's identifiers were linked (every dataset add does it; evidx
link redoes it), the report gives the persons: their number, the hubs,
where the ID numbers were issued (province table and chart, age bands,
sex) and the sentencing counts per information category against the
thresholds of 法释〔2017〕10号 art. 5, with the method in words
(report.json "persons": the numbers of 'evidx stats --json').`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runReport(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "output directory (default: DIR/reports)")
	f.StringVar(&opts.Sign, "sign", "", "ed25519 private key file to sign SHA256SUMS with")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.StringVar(&opts.Lang, "lang", "", `"zh": also write report.zh.html, the Chinese record (电子数据检查笔录)`)
	return cmd
}

func runReport(ctx context.Context, cmd *cobra.Command, opts reportOptions, a []string) error {
	if opts.Lang != "" && opts.Lang != "zh" && opts.Lang != "en" {
		return usageError{fmt.Errorf("--lang %q: en or zh", opts.Lang)}
	}
	c, err := openCase(ctx, a[0], opts.Sign) // the report's key signs the audit lines too
	if err != nil {
		return err
	}
	defer c.Close()
	ps, err := pipeline.ReportPersons(ctx, c)
	if err != nil {
		return err
	}
	res, err := c.WriteReport(ctx, custody.ReportOptions{OutDir: opts.Out, SignKey: opts.Sign, Lang: opts.Lang, Persons: ps})
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if opts.JSON {
		return writeJSON(w, struct {
			*custody.ReportResult
			Signed bool `json:"signed"`
		}{res, opts.Sign != ""})
	}
	for _, f := range res.Files {
		fmt.Fprintf(w, "%s  %s\n", f.SHA256, oneLine(f.Path))
	}
	return nil
}

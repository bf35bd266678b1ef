package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/carve/scan"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/source"
)

// scanOptions are the flags of `evidx scan`.
type scanOptions struct {
	Out       string
	Overwrite bool
	JSON      bool
	Workers   int
	MaxDepth  int
}

func newScanCmd() *cobra.Command {
	var opts scanOptions
	cmd := &cobra.Command{
		Use:   "scan FILE|IMAGE --out DIR",
		Short: "Find e-mail addresses, phone numbers, ID and card numbers in raw bytes (like bulk_extractor)",
		Long: `Scan every byte of a file or disk image for identifiers: e-mail addresses,
Chinese mobile and other "+" phone numbers, resident identity numbers (MOD
11-2) and bank card numbers (Luhn), normalised as the datasets are. Text is
found as 8-bit bytes and as UTF-16LE, and inside gzip, zip (OOXML members),
bzip2, xz and zstd streams, recursively, and integers in SQLite pages.
DIR (new or empty, unless --overwrite) receives bulk_extractor feature files:
email.txt, telephone.txt, ccn.txt (bank cards) and cn_id.txt, each opening
with bulk_extractor's banner lines, then "offset-path<TAB>feature<TAB>context
<TAB>normalised" (the feature as found, escaped \xHH as bulk_extractor does;
the path names the decoders crossed, e.g. 1048576-GZIP-310), histograms
<name>_histogram.txt ("n=COUNT<TAB>value"), and report.xml, the run in
DFXML. The input is opened read-only.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runScan(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Out, "out", "o", "", "output directory for feature files (required)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "write into an output directory that is not empty")
	f.IntVar(&opts.Workers, "workers", 0, "scanning goroutines (0: one per CPU)")
	f.IntVar(&opts.MaxDepth, "max-depth", 3, "nested compressed streams decoded at most")
	return cmd
}

type scanResult struct {
	Image        string         `json:"image"`
	Size         int64          `json:"size"`
	Features     map[string]int `json:"features"`
	FeatureFiles []string       `json:"feature_files"`
	Seconds      float64        `json:"seconds"`
	MBPerSecond  float64        `json:"mb_per_s"`
	Tool         string         `json:"tool_version"`
}

func runScan(ctx context.Context, cmd *cobra.Command, opts scanOptions, a []string) error {
	if opts.Out == "" {
		return usageError{errors.New("scan: --out DIR is required")}
	}
	if opts.MaxDepth < 0 {
		return usageError{errors.New("scan: --max-depth must not be negative")}
	}
	if err := checkOutDir(a[0], opts.Out); err != nil {
		return err
	}
	img, size, err := openEvidence(a[0])
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer img.Close()
	if err := scan.CheckOutDir(opts.Out, opts.Overwrite); err != nil {
		return usageError{err}
	}
	rec, err := scan.NewRecorder(opts.Out, a[0])
	if err != nil {
		return err
	}
	start := time.Now()
	bar := newProgress("scan")
	defer bar.stop()
	bar.Stage("scanning", "bytes", size)
	sopts := scan.Options{Workers: opts.Workers, MaxDepth: opts.MaxDepth, Progress: bar.Add}
	if opts.MaxDepth == 0 {
		sopts.MaxDepth = -1
	}
	media := source.NewTolerant(img, size) // a bad chunk reads as zeros, named below; the scan goes on
	err = scan.Scan(ctx, media, size, sopts, rec.Add)
	for _, p := range media.Problems() {
		fmt.Fprintln(cmd.ErrOrStderr(), "evidx: scan: "+oneLine(p))
	}
	bar.stop()
	files, cerr := rec.Close()
	if err = errors.Join(err, cerr); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	rp, err := scan.WriteReport(opts.Out, scan.Run{Image: a[0], Size: size, Program: "evidx", Version: toolVersion(),
		CommandLine: strings.Join(os.Args, " "), Start: start, Elapsed: time.Since(start), Counts: rec.Counts()})
	if err != nil {
		return err
	}
	files = append(files, rp)
	res := scanResult{Image: a[0], Size: size, Features: map[string]int{}, FeatureFiles: files, Tool: toolVersion()}
	if res.FeatureFiles == nil {
		res.FeatureFiles = []string{}
	}
	for _, k := range identity.Kinds() {
		res.Features[string(k)] = rec.Counts()[k]
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.MBPerSecond = float64(size) / 1e6 / res.Seconds
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "scanned %d bytes in %.2fs (%.1f MB/s)\n", size, res.Seconds, res.MBPerSecond)
	for _, k := range identity.Kinds() {
		fmt.Fprintf(w, "  %-10s %d\n", k, res.Features[string(k)])
	}
	for _, f := range files {
		fmt.Fprintln(w, "  "+f)
	}
	return nil
}

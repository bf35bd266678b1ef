package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/carve"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/source"
	"github.com/evidx/evidx/pipeline"
)

// carveOptions are the flags of `evidx carve`.
type carveOptions struct {
	Out           string
	JSON          bool
	Whole         bool     // carve the whole image even when a file system is readable
	AnyOffset     bool     // try headers at every byte, not only sector starts
	Types         []string // limit to these types
	SkipRecovered bool     // do not carve deleted files the file system recovers
	NoFragments   bool
	Workers       int
}

func newCarveCmd() *cobra.Command {
	var opts carveOptions
	cmd := &cobra.Command{
		Use:   "carve IMAGE --out DIR",
		Short: "Recover files from unallocated space by their structure (like PhotoRec)",
		Long: `Carve files from a disk image: the unallocated space of every readable file
system plus everything outside them, or the whole image with --whole or
when no file system is readable. Each format is validated by its own
structure (JPEG markers, PNG CRCs, GIF blocks, PDF revisions, ZIP/OOXML
directories and CRCs, gzip/bzip2/xz/zstd streams, SQLite header size, text
datasets) so the output is the exact file; a file split around allocated
blocks is followed into the next free range. Files go to DIR/<type>/
<offset>.<ext> (0600) with DIR/manifest.json. The image (raw, split raw or E01) is opened read-only.

Types: ` + strings.Join(carve.Types(), ", "),
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCarve(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Out, "out", "o", "", "output directory (required; must not be inside the image path)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.BoolVar(&opts.Whole, "whole", false, "carve the whole image, allocated space included")
	f.BoolVar(&opts.AnyOffset, "any-offset", false, "try headers at every byte offset, not only at 512-byte sector starts")
	f.StringSliceVar(&opts.Types, "types", nil, "carve only these types (comma-separated)")
	f.BoolVar(&opts.SkipRecovered, "skip-recovered", false, "skip the extents of deleted files the file system recovers")
	f.BoolVar(&opts.NoFragments, "no-fragments", false, "do not follow a file across a gap of allocated blocks")
	f.IntVar(&opts.Workers, "workers", 0, "carving goroutines (0: one per CPU)")
	return cmd
}

// openEvidence opens an image read-only (raw, split raw or E01) and returns
// it with its media size.
func openEvidence(path string) (*source.Image, int64, error) {
	img, err := source.Open(path) // os.Open underneath: evidence is never written
	if err != nil {
		return nil, 0, err
	}
	return img, img.Size(), nil
}

// openDisk opens an image as openEvidence does and reads its partitions
// and file systems; the caller closes the image when done with the disk.
func openDisk(path string) (*source.Image, *fs.Disk, error) {
	img, _, err := openEvidence(path)
	if err != nil {
		return nil, nil, err
	}
	loc, err := zone()
	if err != nil {
		img.Close()
		return nil, nil, err
	}
	disk, err := probe.OpenDiskIn(img, img.Size(), loc)
	if err != nil {
		img.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, disk, nil
}

// checkOutDir refuses an output directory inside the evidence path as
// a usage error.
func checkOutDir(image, out string) error {
	err := pipeline.CheckOutDir(image, out)
	if errors.Is(err, pipeline.ErrOutInEvidence) {
		return usageError{err}
	}
	return err
}

func runCarve(ctx context.Context, cmd *cobra.Command, opts carveOptions, a []string) error {
	if opts.Out == "" {
		return usageError{errors.New("carve: --out DIR is required")}
	}
	if err := checkOutDir(a[0], opts.Out); err != nil {
		return err
	}
	bar := newProgress("carve")
	res, err := pipeline.CarveImage(ctx, a[0], pipeline.CarveOptions{Out: opts.Out, Whole: opts.Whole, AnyOffset: opts.AnyOffset,
		Types: opts.Types, SkipRecovered: opts.SkipRecovered, NoFragments: opts.NoFragments, Workers: opts.Workers,
		Tool: toolVersion(), Progress: bar})
	bar.stop()
	if err != nil {
		if errors.Is(err, carve.ErrUnknownType) {
			return usageError{err}
		}
		return fmt.Errorf("carve: %w", err)
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "carved %d files (%d bytes, %d fragmented) from %d bytes of %s space in %.2fs (%.1f MB/s)\n",
		len(res.Carved), res.BytesCarved, res.Fragmented, res.BytesSearched, res.Mode, res.Seconds, res.MBPerSecond)
	types := make([]string, 0, len(res.Counts))
	for t := range res.Counts {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(w, "  %-8s %d\n", t, res.Counts[t])
	}
	for _, p := range res.Problems {
		fmt.Fprintln(cmd.ErrOrStderr(), "evidx: carve: "+oneLine(p))
	}
	return nil
}

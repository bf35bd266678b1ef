package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/carve"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/source"
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

// carvedFile is one manifest entry.
type carvedFile struct {
	Offset   int64       `json:"offset"`
	Length   int64       `json:"length"`
	Type     string      `json:"type"`
	Ext      string      `json:"ext"`
	SHA256   string      `json:"sha256"`
	MD5      string      `json:"md5"`
	Path     string      `json:"path"`
	ByteRuns []carve.Run `json:"byte_runs"`
}

type carveResult struct {
	Image         string         `json:"image"`
	Size          int64          `json:"size"`
	Mode          string         `json:"mode"` // "unallocated" or "whole"
	Ranges        int            `json:"ranges"`
	BytesSearched int64          `json:"bytes_searched"`
	BytesCarved   int64          `json:"bytes_carved"`
	Seconds       float64        `json:"seconds"`
	MBPerSecond   float64        `json:"mb_per_s"`
	Counts        map[string]int `json:"counts"`
	Fragmented    int            `json:"fragmented"`
	Problems      []string       `json:"problems"`
	Carved        []carvedFile   `json:"carved"`
	Tool          string         `json:"tool_version"`
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
	disk, err := probe.OpenDisk(img, img.Size())
	if err != nil {
		img.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, disk, nil
}

// checkOutDir refuses an output directory that is the evidence path or lies
// inside it: nothing may ever be written into evidence.
func checkOutDir(image, out string) error {
	ia, err := filepath.Abs(image)
	if err != nil {
		return err
	}
	oa, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if r, _ := filepath.EvalSymlinks(ia); r != "" {
		ia = r
	}
	if r, _ := filepath.EvalSymlinks(oa); r != "" {
		oa = r
	}
	rel, err := filepath.Rel(ia, oa)
	if err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return usageError{fmt.Errorf("output directory %s lies inside the evidence path %s", out, image)}
	}
	return nil
}

func runCarve(ctx context.Context, cmd *cobra.Command, opts carveOptions, a []string) error {
	if opts.Out == "" {
		return usageError{errors.New("carve: --out DIR is required")}
	}
	if err := checkOutDir(a[0], opts.Out); err != nil {
		return err
	}
	img, size, err := openEvidence(a[0])
	if err != nil {
		return fmt.Errorf("carve: %w", err)
	}
	defer img.Close()

	res := carveResult{Image: a[0], Size: size, Mode: "whole", Counts: map[string]int{}, Problems: []string{}, Carved: []carvedFile{}, Tool: toolVersion()}
	ranges := []carve.Run{{Off: 0, Len: size}}
	var skip []carve.Run
	if !opts.Whole {
		d, err := probe.OpenDisk(img, size)
		if err != nil {
			res.Problems = append(res.Problems, "no partition table or file system readable, whole image carved: "+err.Error())
		} else if readable(d) {
			res.Mode = "unallocated"
			ranges = ranges[:0]
			for _, u := range d.Unallocated() {
				ranges = append(ranges, carve.Run{Off: u.Off, Len: u.Len})
			}
			if opts.SkipRecovered {
				err := d.Walk(ctx, func(_ int, f *fs.File) error {
					if f.Deleted && f.Recoverable && f.Type == "file" {
						for _, r := range f.Runs {
							if !r.Sparse {
								skip = append(skip, carve.Run{Off: r.Offset, Len: r.Length})
							}
						}
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("carve: %w", err)
				}
			}
			res.Problems = append(res.Problems, d.Problems()...)
		}
	}
	ranges = carve.Subtract(ranges, skip)
	res.Ranges = len(ranges)
	for _, r := range ranges {
		res.BytesSearched += r.Len
	}
	if err := os.MkdirAll(opts.Out, 0o700); err != nil {
		return fmt.Errorf("carve: %w", err)
	}
	progress, stopBar := newByteProgress("carve", res.BytesSearched)
	stop := sync.OnceFunc(stopBar) // stop draws the last line; called before printing results
	defer stop()
	copts := carve.Options{AnyOffset: opts.AnyOffset, Types: opts.Types, NoFragments: opts.NoFragments, Workers: opts.Workers, Progress: progress}
	start := time.Now()
	made := map[string]bool{}
	err = carve.Carve(ctx, img, ranges, copts, func(c carve.Carved) error {
		dir := filepath.Join(opts.Out, c.Type) // type names are ours, never from evidence
		if !made[dir] {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			made[dir] = true
		}
		name := filepath.Join(dir, strconv.FormatInt(c.Offset, 10)+"."+c.Ext)
		if err := writeCarved(name, carve.Open(img, c)); err != nil {
			return err
		}
		rel, _ := filepath.Rel(opts.Out, name)
		res.Carved = append(res.Carved, carvedFile{c.Offset, c.Length, c.Type, c.Ext, c.SHA256, c.MD5, filepath.ToSlash(rel), c.Runs})
		res.Counts[c.Type]++
		res.BytesCarved += c.Length
		if len(c.Runs) > 1 {
			res.Fragmented++
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, carve.ErrUnknownType) {
			return usageError{err}
		}
		return fmt.Errorf("carve: %w", err)
	}
	stop()
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.MBPerSecond = float64(res.BytesSearched) / 1e6 / res.Seconds
	}
	if err := writeManifest(filepath.Join(opts.Out, "manifest.json"), res); err != nil {
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

// readable reports whether any partition's file system was opened.
func readable(d *fs.Disk) bool {
	for _, p := range d.Partitions {
		if p.FS != nil {
			return true
		}
	}
	return false
}

// writeCarved writes one carved file 0600, never through a symlink.
func writeCarved(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeManifest(name string, v any) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := writeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/ingest/source"
)

// hashOptions are the flags of `evidx hash`.
type hashOptions struct {
	JSON   bool
	MD5    string // expected hashes from acquisition notes (one image only)
	SHA1   string
	SHA256 string
}

func newHashCmd() *cobra.Command {
	var opts hashOptions
	cmd := &cobra.Command{
		Use:   "hash IMAGE...",
		Short: "One-pass MD5, SHA-1 and SHA-256 of evidence media, verified against stored and expected hashes",
		Long: `Hash the media data of each image (raw/dd or block device; split raw given
its first segment, x.001 / x.000 / x.aa; EnCase E01 given its .E01) in one
pass with MD5, SHA-1 and SHA-256. The output is CSV in hashdeep's column
order, but it is not a hashdeep manifest: the hashes are of the media data
(an E01's or a virtual disk's, not its file's bytes), so hashdeep -k
cannot audit with it. For E01 images the hashes
are of the media data, every chunk checksum is checked (bad chunks are
listed by sector range, like ewfverify) and the MD5/SHA-1 stored in the
image are compared. --md5/--sha1/--sha256 are compared the same way.
Exit status 1 when any comparison fails or a chunk is bad.
Images are opened read-only.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runHash(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.StringVar(&opts.MD5, "md5", "", "expected MD5 of the media (hex)")
	f.StringVar(&opts.SHA1, "sha1", "", "expected SHA-1 of the media (hex)")
	f.StringVar(&opts.SHA256, "sha256", "", "expected SHA-256 of the media (hex)")
	return cmd
}

// hashImageOut is one image in the output: the source.Result (md5, sha1,
// sha256, size, verified, format, segments, sector_size, stored, header,
// checks, errors) with its path, or the error that stopped it.
type hashImageOut struct {
	Path string `json:"path"`
	*source.Result
	Error string `json:"error,omitempty"`
}

// hashMultiOut is the --json object for several images.
type hashMultiOut struct {
	Images   []hashImageOut `json:"images"`
	Verified *bool          `json:"verified"` // false if any image failed, true if all compared and matched
}

// hashCheckHex validates an expected hash flag.
func hashCheckHex(flag, v string, n int) error {
	if v == "" {
		return nil
	}
	if b, err := hex.DecodeString(strings.TrimSpace(v)); err != nil || len(b) != n {
		return usageError{fmt.Errorf("--%s: want %d hex digits, got %q", flag, 2*n, v)}
	}
	return nil
}

func runHash(ctx context.Context, cmd *cobra.Command, opts hashOptions, paths []string) error {
	for _, c := range []struct {
		flag, v string
		n       int
	}{{"md5", opts.MD5, 16}, {"sha1", opts.SHA1, 20}, {"sha256", opts.SHA256, 32}} {
		if err := hashCheckHex(c.flag, c.v, c.n); err != nil {
			return err
		}
	}
	want := source.Expected{MD5: opts.MD5, SHA1: opts.SHA1, SHA256: opts.SHA256}
	if want != (source.Expected{}) && len(paths) > 1 {
		return usageError{errors.New("--md5/--sha1/--sha256 apply to one IMAGE; hash images one at a time to compare")}
	}
	stdout := cmd.OutOrStdout()
	var outs []hashImageOut
	var failed []string
	// header prints the column header once, before the first line, so a
	// single image that cannot be opened leaves stdout empty.
	headerDone := false
	header := func() {
		if !opts.JSON && !headerDone {
			// Not "%%%% HASHDEEP-1.0": these are media hashes, which
			// hashdeep -k would compare with the files' bytes.
			fmt.Fprintln(stdout, "## evidx media hashes (not a hashdeep manifest: MD5, SHA-1, SHA-256 of the media data, which for E01 and virtual disks are not the file's bytes)")
			fmt.Fprintln(stdout, "## size,md5,sha1,sha256,filename")
			headerDone = true
		}
	}
	for _, p := range paths {
		res, err := hashOne(ctx, p, want)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if len(paths) == 1 {
				return err
			}
			failed = append(failed, oneLine(err.Error()))
			outs = append(outs, hashImageOut{Path: p, Error: oneLine(err.Error())})
			if !opts.JSON {
				header()
				fmt.Fprintf(stdout, "## %s: error: %s\n", oneLine(p), oneLine(err.Error()))
			}
			continue
		}
		outs = append(outs, hashImageOut{Path: p, Result: &res})
		if res.Verified != nil && !*res.Verified {
			why := "did not verify"
			if len(res.Errors) > 0 {
				why += ": " + res.Errors[0]
				if len(res.Errors) > 1 {
					why += fmt.Sprintf(" (and %d more)", len(res.Errors)-1)
				}
			}
			failed = append(failed, oneLine(p+": "+why))
		}
		if !opts.JSON {
			header()
			printHashdeep(stdout, p, &res)
		}
	}
	if opts.JSON {
		var v any
		if len(outs) == 1 {
			v = outs[0]
		} else {
			m := hashMultiOut{Images: outs}
			for _, o := range outs {
				ok := o.Error == "" && o.Verified != nil && *o.Verified
				if o.Error != "" || (o.Verified != nil && !ok) {
					f := false
					m.Verified = &f
					break
				}
				if ok {
					t := true
					m.Verified = &t
				}
			}
			v = m
		}
		if err := writeJSON(stdout, v); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("hash: %s", strings.Join(failed, "; "))
	}
	return nil
}

// hashOne opens and hashes one image, drawing a progress bar on stderr
// when it is a terminal.
func hashOne(ctx context.Context, path string, want source.Expected) (source.Result, error) {
	img, err := source.Open(path)
	if err != nil {
		return source.Result{}, err
	}
	defer img.Close()
	bar := newProgress(filepath.Base(path))
	defer bar.stop()
	bar.Stage("hashing", "bytes", img.Size())
	progress := bar.Add
	return source.Hash(ctx, img, want, progress)
}

// printHashdeep writes the CSV line of one image, then "##" comment
// lines with the container details and the verification outcome.
func printHashdeep(w io.Writer, path string, r *source.Result) {
	fmt.Fprintf(w, "%d,%s,%s,%s,%s\n", r.Size, r.MD5, r.SHA1, r.SHA256, oneLine(path))
	fmt.Fprintf(w, "## %s: format %s, %d segment(s), sector size %d\n", oneLine(path), r.Format, len(r.Segments), r.SectorSize)
	for _, k := range []string{"case_number", "evidence_number", "examiner", "description", "acquired_date"} {
		if v := r.Header[k]; v != "" {
			fmt.Fprintf(w, "##   %s: %s\n", k, oneLine(v))
		}
	}
	for _, c := range r.Checks {
		state := "ok"
		if !c.OK {
			state = "MISMATCH (want " + c.Want + ")"
		}
		fmt.Fprintf(w, "##   %s %s: %s\n", c.Source, c.Algorithm, state)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "##   error: %s\n", oneLine(e))
	}
	switch {
	case r.Verified == nil:
		fmt.Fprintln(w, "##   verified: n/a (no stored or expected hashes)")
	case *r.Verified:
		fmt.Fprintln(w, "##   verified: yes")
	default:
		fmt.Fprintln(w, "##   verified: NO")
	}
}

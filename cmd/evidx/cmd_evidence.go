package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/ingest/source"
)

// evidenceAddOptions are the flags of `evidx evidence add`.
type evidenceAddOptions struct {
	ID     string
	MD5    string
	SHA1   string
	SHA256 string
	JSON   bool
}

func newEvidenceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Register evidence items in a case",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			return usageError{errors.New("evidence: missing subcommand (add)")}
		},
	}
	cmd.AddCommand(newEvidenceAddCmd())
	return cmd
}

func newEvidenceAddCmd() *cobra.Command {
	var opts evidenceAddOptions
	cmd := &cobra.Command{
		Use:   "add DIR IMAGE... --id EVID",
		Short: "Hash, verify and register an evidence image in a case",
		Long: `Register an evidence image in the case DIR: the media are read once,
read-only, for MD5, SHA-1 and SHA-256 together, compared with the hashes the
container stores and with --md5/--sha1/--sha256 (acquisition notes), and
recorded with their segments in the catalog, with audit entries before and
after. A split raw image is given as all its segments in order.

Exit 1 when the media do not verify (a hash mismatch or a container
checksum failure); the item is still recorded, with the reason.`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runEvidenceAdd(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ID, "id", "", "evidence (exhibit) id: letters, digits, '.', '_', '-' (required)")
	f.StringVar(&opts.MD5, "md5", "", "expected MD5 of the media data (hex)")
	f.StringVar(&opts.SHA1, "sha1", "", "expected SHA-1 of the media data (hex)")
	f.StringVar(&opts.SHA256, "sha256", "", "expected SHA-256 of the media data (hex)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

// evidenceResult is the JSON of `evidence add`: the registered item with
// its computed hashes at the top level, like `evidx hash`.
type evidenceResult struct {
	ID              string            `json:"id"`
	Format          string            `json:"format"`
	Size            int64             `json:"size"`
	SectorSize      int               `json:"sector_size"`
	Segments        []custody.Segment `json:"segments"`
	MD5             string            `json:"md5"`
	SHA1            string            `json:"sha1"`
	SHA256          string            `json:"sha256"`
	Stored          custody.Hashes    `json:"stored"`
	Expected        custody.Hashes    `json:"expected"`
	Verified        *bool             `json:"verified"`
	HashReason      string            `json:"hash_reason"`
	ContainerErrors []string          `json:"container_errors"`
	Unreadable      []custody.Range   `json:"unreadable"`
	Header          map[string]string `json:"header,omitempty"`
	Seconds         float64           `json:"seconds"`
}

func checkHex(name, v string, n int) error {
	if v == "" {
		return nil
	}
	if len(v) != n || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
		return usageError{fmt.Errorf("--%s: want %d hex digits, got %q", name, n, v)}
	}
	return nil
}

func runEvidenceAdd(ctx context.Context, cmd *cobra.Command, opts evidenceAddOptions, a []string) error {
	if opts.ID == "" {
		return usageError{errors.New("evidence add: --id is required")}
	}
	if !custody.ValidID(opts.ID) {
		return usageError{fmt.Errorf("evidence add: --id %q: letters, digits, '.', '_', '-' only, at most 64", opts.ID)}
	}
	for _, h := range []struct {
		name, v string
		n       int
	}{{"md5", opts.MD5, 32}, {"sha1", opts.SHA1, 40}, {"sha256", opts.SHA256, 64}} {
		if err := checkHex(h.name, h.v, h.n); err != nil {
			return err
		}
	}
	images := a[1:]
	for _, p := range images {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("evidence add: %w", err)
		}
		if st.IsDir() {
			return fmt.Errorf("evidence add: %s is a directory, not an image", p)
		}
	}
	c, err := custody.Open(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	var total int64
	for _, p := range images {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	prog, stop := newByteProgress("hashing "+opts.ID, total)
	start := time.Now()
	ev, err := c.AddEvidenceImage(ctx, custody.Intake{
		ID:       opts.ID,
		Paths:    images,
		Expected: custody.Hashes{MD5: opts.MD5, SHA1: opts.SHA1, SHA256: opts.SHA256},
		Measure:  measureImage,
		Progress: prog,
	})
	stop()
	if ev == nil {
		return err
	}
	res := evidenceResult{ID: ev.ID, Format: ev.Format, Size: ev.Size, SectorSize: ev.SectorSize, Segments: ev.Segments,
		MD5: ev.Computed.MD5, SHA1: ev.Computed.SHA1, SHA256: ev.Computed.SHA256, Stored: ev.Stored, Expected: ev.Expected,
		Verified: ev.Verified, HashReason: ev.HashReason, ContainerErrors: ev.Container, Unreadable: ev.Unreadable,
		Header: ev.Header, Seconds: time.Since(start).Seconds()}
	if res.ContainerErrors == nil {
		res.ContainerErrors = []string{}
	}
	if res.Unreadable == nil {
		res.Unreadable = []custody.Range{}
	}
	if opts.JSON {
		if werr := writeJSON(cmd.OutOrStdout(), res); werr != nil {
			return werr
		}
	} else {
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "evidence %s: %s, %d bytes, %d-byte sectors, %d segment(s)\n", ev.ID, ev.Format, ev.Size, ev.SectorSize, len(ev.Segments))
		fmt.Fprintf(w, "MD5     %s\nSHA-1   %s\nSHA-256 %s\n", res.MD5, res.SHA1, res.SHA256)
		verdict := "not compared"
		if ev.Verified != nil {
			verdict = map[bool]string{true: "VERIFIED", false: "NOT VERIFIED"}[*ev.Verified]
		}
		fmt.Fprintf(w, "verification: %s (%s)\n", verdict, oneLine(ev.HashReason))
		for _, ce := range ev.Container {
			fmt.Fprintf(w, "container: %s\n", oneLine(ce))
		}
	}
	return err
}

// measureImage measures the media of an evidence image for custody with
// ingest/source: raw, split raw (found from its first segment) and EWF
// (E01) images, read-only, one pass. Stored hashes come from the container;
// bad EWF chunks become container errors naming their sectors, and sectors
// the imager could not read become unreadable ranges. When several paths
// are given they must be the segments source finds from the first, or,
// for names source does not recognise as a split set, raw pieces hashed
// in the order given.
func measureImage(ctx context.Context, paths []string, progress func(int64)) (*custody.Evidence, error) {
	img, err := source.Open(paths[0])
	if err != nil {
		return nil, err
	}
	defer img.Close()
	segs := img.Segments()
	if len(paths) > 1 {
		if len(segs) == 1 && img.Format() == source.FormatRaw {
			img.Close()
			return custody.RawMeasure(ctx, paths, progress)
		}
		if !samePaths(paths, segs) {
			return nil, fmt.Errorf("evidence: segments given (%d) differ from the %d found from %s; give only the first segment", len(paths), len(segs), paths[0])
		}
	}
	res, err := source.Hash(ctx, img, source.Expected{}, progress)
	if err != nil {
		return nil, err
	}
	ev := &custody.Evidence{
		Format:     res.Format,
		Size:       res.Size,
		SectorSize: res.SectorSize,
		Stored:     custody.Hashes{MD5: res.Stored.MD5, SHA1: res.Stored.SHA1},
		Computed:   res.Sums,
		Header:     res.Header,
	}
	for _, sg := range segs {
		ev.Segments = append(ev.Segments, custody.Segment{Path: sg.Path, Size: sg.Size})
	}
	if len(ev.Segments) == 1 && res.Format == source.FormatRaw {
		ev.Segments[0].SHA256 = res.SHA256
	}
	// res.Errors lists bad chunks first, then one line per failed
	// comparison with the stored hashes; custody makes its own comparisons,
	// so only the container checksum failures are kept here.
	failed := 0
	for _, ch := range res.Checks {
		if !ch.OK {
			failed++
		}
	}
	ev.Container = append(ev.Container, res.Errors[:max(len(res.Errors)-failed, 0)]...)
	ss := int64(max(res.SectorSize, 1))
	for _, r := range img.AcquisitionErrors() {
		ev.Unreadable = append(ev.Unreadable, custody.Range{Offset: int64(r.Start) * ss, Length: int64(max(r.Count, 1)) * ss})
	}
	return ev, nil
}

func samePaths(given []string, segs []source.Segment) bool {
	if len(given) != len(segs) {
		return false
	}
	for i, p := range given {
		a, _ := filepath.Abs(p)
		b, _ := filepath.Abs(segs[i].Path)
		if a != b {
			return false
		}
	}
	return true
}

// rehashImage re-hashes the media of a registered item for verify
// --evidence, through ingest/source from its first segment (or the pieces
// in order for a raw image registered as explicit pieces).
func rehashImage(ctx context.Context, ev custody.Evidence) (digest.Sums, error) {
	if len(ev.Segments) == 0 {
		return digest.Sums{}, fmt.Errorf("evidence %s has no segments recorded", ev.ID)
	}
	paths := make([]string, len(ev.Segments))
	for i, s := range ev.Segments {
		paths[i] = s.Path
	}
	img, err := source.Open(paths[0])
	if err != nil {
		return digest.Sums{}, err
	}
	defer img.Close()
	if len(paths) > 1 && len(img.Segments()) == 1 && img.Format() == source.FormatRaw {
		img.Close()
		return custody.RawRehash(ctx, paths)
	}
	if !samePaths(paths, img.Segments()) {
		return digest.Sums{}, fmt.Errorf("evidence %s: segment files now %d, %d at intake", ev.ID, len(img.Segments()), len(paths))
	}
	res, err := source.Hash(ctx, img, source.Expected{}, nil)
	if err != nil {
		return digest.Sums{}, err
	}
	// Bad chunks are read as zeros: if they are new since intake, the sums
	// differ and verify names the change.
	return res.Sums, nil
}

// newByteProgress returns a progress callback drawing "label: NN% (MiB/s)"
// on stderr when it is a terminal (else a no-op), and a stop func.
func newByteProgress(label string, total int64) (func(int64), func()) {
	if !stderrIsTerminal() || total <= 0 {
		return nil, func() {}
	}
	var done atomic.Int64
	start := time.Now()
	quit := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		n := done.Load()
		secs := time.Since(start).Seconds()
		rate := 0.0
		if secs > 0 {
			rate = float64(n) / secs / (1 << 20)
		}
		fmt.Fprintf(os.Stderr, "\r%s: %5.1f%% %8.1f MiB/s", label, 100*float64(n)/float64(total), rate)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-quit:
				draw()
				fmt.Fprintln(os.Stderr)
				return
			}
		}
	}()
	return func(n int64) { done.Add(n) }, func() { close(quit); <-finished }
}

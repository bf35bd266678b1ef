package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
	"github.com/evidx/evidx/pipeline"
)

// evidenceAddOptions are the flags of `evidx evidence add`.
type evidenceAddOptions struct {
	ID     string
	MD5    string
	SHA1   string
	SHA256 string
	JSON   bool
	// Custody facts of the item (SeizedAt is RFC 3339, checked).
	SeizedBy, SeizedAt, SeizedWhere, Seal, DeviceSerial, DeviceModel, Description string
	// NoCarve, NoScan and NoIndex leave out stages of the intake.
	NoCarve, NoScan, NoIndex bool
	Resume                   bool
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
		Short: "Hash, verify, walk, extract, carve and index an evidence image",
		Long: `Take an evidence image into the case DIR, read-only, in one command:

  1. the media are read once for MD5, SHA-1 and SHA-256 together, compared
     with the hashes the container stores (E01) and with --md5/--sha1/--sha256
     (acquisition notes), and recorded with their segments;
  2. every partition and file system is walked; every file, allocated or
     deleted, is recorded with its metadata and byte runs, and every
     recoverable file's content is stored in the case by SHA-256;
  3. the unallocated space is carved (the whole image when no file system
     is readable); carved files are stored likewise;
  4. the raw bytes are scanned for identifiers (features/<ID>/ in the case);
  5. every file or carved file that is a leaked dataset is loaded into the
     identity index, with this evidence item and its path as the origin.

Each stage writes audit entries. An image given as its first segment finds
the rest (split raw, E01); raw pieces with other names are given in order.

An intake cut short (killed, power lost) is taken up with --resume and the
same --id: the hashes recorded at intake stand, the walk and carve are done
again without counting anything twice, and datasets already loaded are
skipped by SHA-256.

Exit 1 when the media do not verify (a hash mismatch or a container
checksum failure); the item is still recorded and walked, with the reason.`,
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
	f.StringVar(&opts.SeizedBy, "seized-by", "", "custody: who seized the item (officer, badge)")
	f.StringVar(&opts.SeizedAt, "seized-at", "", "custody: when it was seized, RFC 3339 with offset (2026-03-01T14:30:00+08:00)")
	f.StringVar(&opts.SeizedWhere, "seized-where", "", "custody: where it was seized")
	f.StringVar(&opts.Seal, "seal", "", "custody: evidence bag / seal number")
	f.StringVar(&opts.DeviceSerial, "device-serial", "", "custody: serial number of the device the media came from")
	f.StringVar(&opts.DeviceModel, "device-model", "", "custody: make and model of that device")
	f.StringVar(&opts.Description, "description", "", "custody: description of the item as seized")
	f.BoolVar(&opts.NoCarve, "no-carve", false, "do not carve unallocated space")
	f.BoolVar(&opts.NoScan, "no-scan", false, "do not scan the raw bytes for identifiers")
	f.BoolVar(&opts.NoIndex, "no-index", false, "do not load the datasets found into the identity index")
	f.BoolVar(&opts.Resume, "resume", false, "take up an intake of this --id that was cut short: keep its hashes, redo the walk, carve, scan and datasets")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

// evidenceResult is the JSON of `evidence add`: the registered item with
// its computed hashes at the top level, like `evidx hash`.
type evidenceResult struct {
	ID              string                `json:"id"`
	Format          string                `json:"format"`
	Size            int64                 `json:"size"`
	SectorSize      int                   `json:"sector_size"`
	Segments        []custody.Segment     `json:"segments"`
	MD5             string                `json:"md5"`
	SHA1            string                `json:"sha1"`
	SHA256          string                `json:"sha256"`
	Stored          custody.Hashes        `json:"stored"`
	Expected        custody.Hashes        `json:"expected"`
	Verified        *bool                 `json:"verified"`
	HashReason      string                `json:"hash_reason"`
	ContainerErrors []string              `json:"container_errors"`
	Unreadable      []custody.Range       `json:"unreadable"`
	Header          map[string]string     `json:"header,omitempty"`
	Volumes         []custody.Volume      `json:"volumes"`
	Files           pipeline.FileCounts   `json:"files"`
	Carved          int                   `json:"carved"`
	Datasets        []index.SourceStats   `json:"datasets"`
	Persons         *persons.Summary      `json:"persons,omitempty"` // the case's persons after linking the datasets found
	Features        map[identity.Kind]int `json:"features"`
	FeatureFiles    []string              `json:"feature_files"`
	Problems        []string              `json:"problems"`
	Seconds         float64               `json:"seconds"`
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
	seizure := custody.Seizure{SeizedBy: opts.SeizedBy, SeizedWhere: opts.SeizedWhere, Seal: opts.Seal,
		DeviceSerial: opts.DeviceSerial, DeviceModel: opts.DeviceModel, Description: opts.Description}
	if opts.SeizedAt != "" {
		t, err := custody.ParseTime(opts.SeizedAt)
		if err != nil {
			return usageError{fmt.Errorf("evidence add: --seized-at: %w", err)}
		}
		seizure.SeizedAt = t
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
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	loc, err := zone()
	if err != nil {
		return usageError{err}
	}
	var warned int
	bar := newProgress("evidence " + opts.ID)
	start := time.Now()
	res, err := pipeline.AddEvidence(ctx, c, pipeline.EvidenceOptions{
		ID:       opts.ID,
		Paths:    images,
		Expected: custody.Hashes{MD5: opts.MD5, SHA1: opts.SHA1, SHA256: opts.SHA256},
		Seizure:  seizure,
		NoCarve:  opts.NoCarve,
		NoScan:   opts.NoScan,
		NoIndex:  opts.NoIndex,
		Resume:   opts.Resume,
		Progress: bar,
		Zone:     loc,
		Warn: func(msg string) {
			warned++
			if warned <= maxWarnings {
				fmt.Fprintln(os.Stderr, "evidx: "+oneLine(msg))
			}
		},
	})
	bar.stop()
	if warned > maxWarnings {
		fmt.Fprintf(os.Stderr, "evidx: %d more problems (see --json and the report)\n", warned-maxWarnings)
	}
	if res == nil {
		if errors.Is(err, custody.ErrDuplicate) && !opts.Resume {
			return fmt.Errorf("%w (to take up an intake that was cut short, add --resume)", err)
		}
		return err
	}
	ev := res.Evidence
	out := evidenceResult{ID: ev.ID, Format: ev.Format, Size: ev.Size, SectorSize: ev.SectorSize, Segments: ev.Segments,
		MD5: ev.Computed.MD5, SHA1: ev.Computed.SHA1, SHA256: ev.Computed.SHA256, Stored: ev.Stored, Expected: ev.Expected,
		Verified: ev.Verified, HashReason: ev.HashReason, ContainerErrors: ev.Container, Unreadable: ev.Unreadable,
		Header: ev.Header, Volumes: res.Volumes, Files: res.Files, Carved: res.Carved, Datasets: res.Datasets, Persons: res.Persons,
		Features: res.Features, FeatureFiles: res.FeatureFiles, Problems: res.Problems, Seconds: time.Since(start).Seconds()}
	if out.ContainerErrors == nil {
		out.ContainerErrors = []string{}
	}
	if out.Unreadable == nil {
		out.Unreadable = []custody.Range{}
	}
	if out.Volumes == nil {
		out.Volumes = []custody.Volume{}
	}
	if opts.JSON {
		if werr := writeJSON(cmd.OutOrStdout(), out); werr != nil {
			return werr
		}
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "evidence %s: %s, %d bytes, %d-byte sectors, %d segment(s)\n", ev.ID, ev.Format, ev.Size, ev.SectorSize, len(ev.Segments))
	fmt.Fprintf(w, "MD5     %s\nSHA-1   %s\nSHA-256 %s\n", out.MD5, out.SHA1, out.SHA256)
	verdict := "not compared"
	if ev.Verified != nil {
		verdict = map[bool]string{true: "VERIFIED", false: "NOT VERIFIED"}[*ev.Verified]
	}
	fmt.Fprintf(w, "verification: %s (%s)\n", verdict, oneLine(ev.HashReason))
	for _, ce := range ev.Container {
		fmt.Fprintf(w, "container: %s\n", oneLine(ce))
	}
	for _, v := range res.Volumes {
		fmt.Fprintf(w, "volume %d: %s at %d, %d bytes\n", v.Index, v.FileSystem, v.Start, v.Size)
	}
	fmt.Fprintf(w, "files: %d allocated, %d deleted, %d directories, %d extracted; carved: %d\n",
		res.Files.Allocated, res.Files.Deleted, res.Files.Dirs, res.Files.Extracted, res.Carved)
	for _, d := range res.Datasets {
		state := ""
		if d.Skipped {
			state = " (already in the case)"
		}
		fmt.Fprintf(w, "dataset %s: %d rows, %d rejected, unique %s%s\n", oneLine(d.EvidPath), d.Rows, d.Rejected, kindCounts(d.Unique), state)
	}
	for _, name := range slices.Sorted(maps.Keys(res.Hashsets)) {
		fmt.Fprintf(w, "hashset %s: %d files\n", oneLine(name), res.Hashsets[name])
	}
	if len(res.Features) > 0 {
		feats := map[identity.Kind]int64{}
		for k, n := range res.Features {
			feats[k] = int64(n)
		}
		fmt.Fprintf(w, "features: %s (features/%s/)\n", kindCounts(feats), ev.ID)
	}
	return err
}

// maxWarnings bounds the problems echoed to stderr; all are in --json.
const maxWarnings = 20

// rehashImage re-hashes a registered item's media for verify --evidence.
func rehashImage(ctx context.Context, ev custody.Evidence) (digest.Sums, error) {
	return pipeline.RehashImage(ctx, ev)
}

package custody

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/evidx/evidx/digest"
)

// ErrNotVerified is returned (wrapped) when an evidence item was registered
// but its hashes or container checksums did not verify.
var ErrNotVerified = errors.New("custody: evidence did not verify")

// Measurer hashes and inspects an evidence image given its path(s): it
// fills everything of Evidence except ID, Expected, Verified, HashReason and
// AddedAt. The CLI supplies one built on ingest/source; RawMeasure is the
// fallback for raw and split-raw images. progress, if not nil, receives
// byte counts.
type Measurer func(ctx context.Context, paths []string, progress func(n int64)) (*Evidence, error)

// Intake is a request to register an evidence item.
type Intake struct {
	ID       string
	Paths    []string // the image, or its first segment, or every segment in order
	Expected Hashes   // hashes given by the examiner (acquisition notes)
	Measure  Measurer // nil: RawMeasure
	Progress func(n int64)
}

// AddEvidenceImage registers an evidence item: it refuses paths that
// overlap the case directory, writes an "evidence.add" started entry,
// measures the media (one-pass MD5+SHA-1+SHA-256, container checks),
// compares the hashes, records evidence and segments, and writes the
// outcome entry with the inputs' hashes. When the media do not verify the
// item is still recorded and the error wraps ErrNotVerified.
func (c *Case) AddEvidenceImage(ctx context.Context, in Intake) (*Evidence, error) {
	if !ValidID(in.ID) {
		return nil, fmt.Errorf("%w: %q (letters, digits, '.', '_', '-'; at most 64)", ErrBadID, in.ID)
	}
	if len(in.Paths) == 0 {
		return nil, errors.New("custody: no image path")
	}
	paths := make([]string, len(in.Paths))
	for i, p := range in.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("custody: %w", err)
		}
		if err := CheckOverlap(c.dir, abs); err != nil {
			return nil, err
		}
		paths[i] = abs
	}
	var existing int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM evidence WHERE id=?`, in.ID).Scan(&existing); err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	if existing > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, in.ID)
	}
	inputs := make([]Item, len(paths))
	for i, p := range paths {
		inputs[i] = Item{Kind: "evidence", ID: in.ID, Path: p}
	}
	if err := c.Audit(Entry{Action: "evidence.add", Inputs: inputs, Outcome: OutcomeStarted,
		Details: map[string]any{"id": in.ID, "expected": in.Expected}}); err != nil {
		return nil, err
	}
	fail := func(err error) (*Evidence, error) {
		if aerr := c.Audit(Entry{Action: "evidence.add", Inputs: inputs, Outcome: OutcomeError, Error: err.Error(),
			Details: map[string]any{"id": in.ID}}); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		return nil, err
	}
	measure := in.Measure
	if measure == nil {
		measure = RawMeasure
	}
	ev, err := measure(ctx, paths, in.Progress)
	if err != nil {
		return fail(err)
	}
	ev.ID = in.ID
	ev.Expected = Hashes{MD5: strings.ToLower(in.Expected.MD5), SHA1: strings.ToLower(in.Expected.SHA1), SHA256: strings.ToLower(in.Expected.SHA256)}
	ev.Compare()
	for _, s := range ev.Segments {
		if err := CheckOverlap(c.dir, s.Path); err != nil {
			return fail(err)
		}
	}
	if err := c.AddEvidence(ctx, ev); err != nil {
		return fail(err)
	}
	outcome, msg := OutcomeOK, ""
	if ev.Verified != nil && !*ev.Verified {
		outcome, msg = OutcomeFailed, "verification failed: "+ev.HashReason
	}
	in0 := Item{Kind: "evidence", ID: ev.ID, Path: paths[0], Size: ev.Size, MD5: ev.Computed.MD5, SHA1: ev.Computed.SHA1, SHA256: ev.Computed.SHA256}
	items := []Item{in0}
	for _, s := range ev.Segments {
		items = append(items, Item{Kind: "segment", ID: ev.ID, Path: s.Path, Size: s.Size, SHA256: s.SHA256})
	}
	if err := c.Audit(Entry{Action: "evidence.add", Inputs: items, Outcome: outcome, Error: msg, Details: map[string]any{
		"id": ev.ID, "format": ev.Format, "size": ev.Size, "sector_size": ev.SectorSize,
		"stored": ev.Stored, "expected": ev.Expected, "verified": ev.Verified, "hash_reason": ev.HashReason,
		"container_errors": ev.Container, "unreadable": ev.Unreadable,
	}}); err != nil {
		return ev, err
	}
	if outcome == OutcomeFailed {
		return ev, fmt.Errorf("%w: %s: %s", ErrNotVerified, ev.ID, ev.HashReason)
	}
	return ev, nil
}

// CheckOverlap refuses an evidence path inside the case directory and a
// case directory inside an evidence path (both after resolving symlinks of
// the existing part): the case must never write where evidence lies.
func CheckOverlap(caseDir, evidencePath string) error {
	a, b := resolve(caseDir), resolve(evidencePath)
	if within(b, a) {
		return fmt.Errorf("%w: evidence %s is inside case directory %s", ErrInsideCase, evidencePath, caseDir)
	}
	if within(a, b) {
		return fmt.Errorf("%w: case directory %s is inside evidence path %s", ErrInsideCase, caseDir, evidencePath)
	}
	return nil
}

// within reports whether p lies at or below dir.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// resolve returns an absolute, symlink-free form of p; for a path that
// does not exist yet, its existing ancestor is resolved.
func resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// RawMeasure measures a raw image, or a split raw image given as every
// segment in order: the media data are the segments concatenated. Files
// are opened read-only. Sector size is taken as 512 bytes.
func RawMeasure(ctx context.Context, paths []string, progress func(n int64)) (*Evidence, error) {
	ev := &Evidence{Format: "raw", SectorSize: 512}
	if len(paths) > 1 {
		ev.Format = "split"
	}
	readers := make([]io.Reader, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p) // O_RDONLY: evidence is never written
		if err != nil {
			return nil, fmt.Errorf("custody: evidence: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("custody: evidence %s: %w", p, err)
		}
		if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
			return nil, fmt.Errorf("custody: evidence %s: not a regular file or device", p)
		}
		if st.Mode().IsRegular() && st.Size() == 0 {
			return nil, fmt.Errorf("custody: evidence %s: empty file", p)
		}
		ev.Segments = append(ev.Segments, Segment{Path: p, Size: st.Size()})
		readers = append(readers, f)
	}
	sums, err := digest.Sum(ctx, io.MultiReader(readers...), progress)
	if err != nil {
		return nil, fmt.Errorf("custody: evidence %s: %w", paths[0], err)
	}
	ev.Computed = sums
	ev.Size = sums.Size
	if len(ev.Segments) == 1 {
		ev.Segments[0].SHA256 = sums.SHA256
		ev.Segments[0].Size = sums.Size
	}
	return ev, nil
}

// RawRehash re-hashes a raw or split-raw image for verify --evidence.
func RawRehash(ctx context.Context, paths []string) (digest.Sums, error) {
	ev, err := RawMeasure(ctx, paths, nil)
	if err != nil {
		return digest.Sums{}, err
	}
	return ev.Computed, nil
}

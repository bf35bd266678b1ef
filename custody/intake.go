package custody

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	Seizure  Seizure  // custody facts: who seized the item, when, where, seal, device
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
	in.Seizure = in.Seizure.clean()
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
		Details: map[string]any{"id": in.ID, "expected": in.Expected, "seizure": in.Seizure}}); err != nil {
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
	if !in.Seizure.IsZero() {
		if err := c.setSeizure(ctx, ev.ID, in.Seizure); err != nil {
			return fail(err)
		}
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
		"container_errors": ev.Container, "unreadable": ev.Unreadable, "seizure": in.Seizure,
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

// Seizure is what the examiner records about how an evidence item came
// into custody: who seized it, when, where, under which seal, and the
// device the media came from. Every field is optional; SeizedAt is UTC.
type Seizure struct {
	SeizedBy     string    `json:"seized_by,omitempty"`
	SeizedAt     time.Time `json:"seized_at,omitzero"`
	SeizedWhere  string    `json:"seized_where,omitempty"`
	Seal         string    `json:"seal,omitempty"`
	DeviceSerial string    `json:"device_serial,omitempty"`
	DeviceModel  string    `json:"device_model,omitempty"`
	Description  string    `json:"description,omitempty"`
}

// IsZero reports whether nothing was recorded.
func (s Seizure) IsZero() bool { return s == Seizure{} }

// Transfer is one change of holder of an evidence item, as recorded by
// `evidx custody transfer`.
type Transfer struct {
	EvidenceID string    `json:"evidence_id"`
	At         time.Time `json:"at"` // UTC, when the item changed hands
	From       string    `json:"from"`
	To         string    `json:"to"`
	Reason     string    `json:"reason"`
	Examiner   string    `json:"examiner"`  // who recorded it
	AuditSeq   int64     `json:"audit_seq"` // its custody.transfer audit line
}

// custodySchema holds the custody facts; created with the catalog (see
// createSchema), so older cases gain the tables when opened.
const custodySchema = `
CREATE TABLE IF NOT EXISTS seizure(
	evidence_id   TEXT PRIMARY KEY REFERENCES evidence(id),
	seized_by     TEXT NOT NULL DEFAULT '',
	seized_at     TEXT NOT NULL DEFAULT '', -- UTC RFC 3339, '' when not given
	seized_where  TEXT NOT NULL DEFAULT '',
	seal          TEXT NOT NULL DEFAULT '',
	device_serial TEXT NOT NULL DEFAULT '',
	device_model  TEXT NOT NULL DEFAULT '',
	description   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS transfers(
	id          INTEGER PRIMARY KEY,
	evidence_id TEXT    NOT NULL REFERENCES evidence(id),
	at          TEXT    NOT NULL,          -- UTC RFC 3339
	from_holder TEXT    NOT NULL,
	to_holder   TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	examiner    TEXT    NOT NULL,          -- who recorded the transfer
	audit_seq   INTEGER NOT NULL           -- the custody.transfer audit line
);
CREATE INDEX IF NOT EXISTS transfers_evidence ON transfers(evidence_id, at, id);
`

// ParseTime parses an RFC 3339 time given on the command line (a
// date alone is refused: a seizure is recorded to the minute, with its
// offset) and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("custody: time %q is not RFC 3339 (e.g. 2026-03-01T14:30:00+08:00)", s)
	}
	return t.UTC(), nil
}

func (s Seizure) clean() Seizure {
	for _, f := range []*string{&s.SeizedBy, &s.SeizedWhere, &s.Seal, &s.DeviceSerial, &s.DeviceModel, &s.Description} {
		*f = strings.TrimSpace(*f)
	}
	if !s.SeizedAt.IsZero() {
		s.SeizedAt = s.SeizedAt.UTC()
	}
	return s
}

// setSeizure records (or replaces) the custody facts of an item.
func (c *Case) setSeizure(ctx context.Context, id string, s Seizure) error {
	at := ""
	if !s.SeizedAt.IsZero() {
		at = s.SeizedAt.UTC().Format(time.RFC3339)
	}
	_, err := c.db.ExecContext(ctx, `INSERT OR REPLACE INTO seizure(evidence_id, seized_by, seized_at, seized_where, seal, device_serial, device_model, description)
		VALUES (?,?,?,?,?,?,?,?)`, id, s.SeizedBy, at, s.SeizedWhere, s.Seal, s.DeviceSerial, s.DeviceModel, s.Description)
	if err != nil {
		return fmt.Errorf("custody: record seizure of %s: %w", id, err)
	}
	return nil
}

// Seizure returns the custody facts recorded at the intake of item id
// (zero when none were given).
func (c *Case) Seizure(ctx context.Context, id string) (Seizure, error) {
	var s Seizure
	var at string
	err := c.db.QueryRowContext(ctx, `SELECT seized_by, seized_at, seized_where, seal, device_serial, device_model, description FROM seizure WHERE evidence_id=?`, id).
		Scan(&s.SeizedBy, &at, &s.SeizedWhere, &s.Seal, &s.DeviceSerial, &s.DeviceModel, &s.Description)
	if errors.Is(err, sql.ErrNoRows) {
		return Seizure{}, nil
	}
	if err != nil {
		return s, fmt.Errorf("custody: seizure of %s: %w", id, err)
	}
	if at != "" {
		s.SeizedAt, _ = time.Parse(time.RFC3339, at)
	}
	return s, nil
}

// Transfers returns the transfers of item id in the order they happened.
func (c *Case) Transfers(ctx context.Context, id string) ([]Transfer, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT at, from_holder, to_holder, reason, examiner, audit_seq FROM transfers WHERE evidence_id=? ORDER BY at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("custody: transfers of %s: %w", id, err)
	}
	defer rows.Close()
	out := []Transfer{}
	for rows.Next() {
		t := Transfer{EvidenceID: id}
		var at string
		if err := rows.Scan(&at, &t.From, &t.To, &t.Reason, &t.Examiner, &t.AuditSeq); err != nil {
			return nil, fmt.Errorf("custody: transfers of %s: %w", id, err)
		}
		t.At, _ = time.Parse(time.RFC3339, at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Holder is who holds item id now: the receiver of its last transfer,
// else whoever seized it ("" when neither is known).
func (c *Case) Holder(ctx context.Context, id string) (string, error) {
	ts, err := c.Transfers(ctx, id)
	if err != nil {
		return "", err
	}
	if len(ts) > 0 {
		return ts[len(ts)-1].To, nil
	}
	s, err := c.Seizure(ctx, id)
	return s.SeizedBy, err
}

// ErrBadTransfer means a transfer cannot be recorded as given.
var ErrBadTransfer = errors.New("custody: bad transfer")

// AddTransfer records that item t.EvidenceID passed from t.From to t.To
// at t.At (now when zero) for t.Reason: a "custody.transfer" audit line,
// then the catalog row naming that line. From must be the current holder
// when one is known, so the chain has no gap; a time before the seizure
// or the previous transfer is refused for the same reason.
func (c *Case) AddTransfer(ctx context.Context, t Transfer) (Transfer, error) {
	t.From, t.To, t.Reason = strings.TrimSpace(t.From), strings.TrimSpace(t.To), strings.TrimSpace(t.Reason)
	if t.From == "" || t.To == "" || t.Reason == "" {
		return t, fmt.Errorf("%w: --from, --to and --reason are required", ErrBadTransfer)
	}
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM evidence WHERE id=?`, t.EvidenceID).Scan(&n); err != nil {
		return t, fmt.Errorf("custody: %w", err)
	}
	if n == 0 {
		return t, fmt.Errorf("%w: no evidence item %q in the case", ErrBadTransfer, t.EvidenceID)
	}
	if t.At.IsZero() {
		t.At = time.Now().UTC()
	}
	t.At = t.At.UTC().Truncate(time.Second)
	prev, err := c.Transfers(ctx, t.EvidenceID)
	if err != nil {
		return t, err
	}
	seiz, err := c.Seizure(ctx, t.EvidenceID)
	if err != nil {
		return t, err
	}
	holder, since := seiz.SeizedBy, seiz.SeizedAt
	if len(prev) > 0 {
		holder, since = prev[len(prev)-1].To, prev[len(prev)-1].At
	}
	if holder != "" && !strings.EqualFold(holder, t.From) {
		return t, fmt.Errorf("%w: %s is held by %q, not %q", ErrBadTransfer, t.EvidenceID, holder, t.From)
	}
	if !since.IsZero() && t.At.Before(since) {
		return t, fmt.Errorf("%w: %s at %s is before the item came to %q (%s)", ErrBadTransfer, t.EvidenceID,
			t.At.Format(time.RFC3339), holder, since.Format(time.RFC3339))
	}
	t.Examiner = c.Examiner()
	l, err := c.audit(Entry{Action: "custody.transfer", Outcome: OutcomeOK,
		Inputs:  []Item{{Kind: "evidence", ID: t.EvidenceID}},
		Details: map[string]any{"id": t.EvidenceID, "at": t.At.Format(time.RFC3339), "from": t.From, "to": t.To, "reason": t.Reason}})
	if err != nil {
		return t, err
	}
	t.AuditSeq = l.Seq
	if _, err := c.db.ExecContext(ctx, `INSERT INTO transfers(evidence_id, at, from_holder, to_holder, reason, examiner, audit_seq) VALUES (?,?,?,?,?,?,?)`,
		t.EvidenceID, t.At.Format(time.RFC3339), t.From, t.To, t.Reason, t.Examiner, t.AuditSeq); err != nil {
		return t, fmt.Errorf("custody: record transfer of %s (audit line %d written): %w", t.EvidenceID, t.AuditSeq, err)
	}
	return t, nil
}

package custody

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/evidx/evidx/digest"
	"github.com/mattn/go-sqlite3"
)

// Hashes are hex digests; an empty string means "not known".
type Hashes struct {
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Segment is one file an evidence image is stored in.
type Segment struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// Range is a byte range of the image [Offset, Offset+Length).
type Range struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Evidence is one registered evidence item as measured at intake.
type Evidence struct {
	ID         string            `json:"id"`
	Format     string            `json:"format"` // "raw", "split", "ewf"
	Size       int64             `json:"size"`   // bytes of media data
	SectorSize int               `json:"sector_size"`
	Segments   []Segment         `json:"segments"`
	Stored     Hashes            `json:"stored"`   // stored in the container
	Expected   Hashes            `json:"expected"` // given by the examiner
	Computed   digest.Sums       `json:"computed"` // over the media data at intake
	Verified   *bool             `json:"verified"` // nil: nothing to compare with
	HashReason string            `json:"hash_reason,omitempty"`
	Container  []string          `json:"container_errors,omitempty"` // container checksum failures (bad chunks, sectors)
	Unreadable []Range           `json:"unreadable,omitempty"`
	Header     map[string]string `json:"header,omitempty"` // container case text
	AddedAt    time.Time         `json:"added_at"`
}

// Compare sets e.Verified and e.HashReason from the computed hashes and
// the stored and expected ones, and from container errors: true when at
// least one hash was compared and all matched and the container is sound;
// false on any mismatch or container checksum failure; nil when there was
// nothing to compare. Unreadable (acquisition) ranges are noted, not
// failures. The reason names each comparison.
func (e *Evidence) Compare() {
	var reasons []string
	compared, bad := 0, false
	check := func(from, alg, want, got string) {
		if want == "" {
			return
		}
		compared++
		if strings.EqualFold(want, got) {
			reasons = append(reasons, fmt.Sprintf("%s %s matches", from, alg))
		} else {
			bad = true
			reasons = append(reasons, fmt.Sprintf("%s %s %s != computed %s", from, alg, strings.ToLower(want), got))
		}
	}
	for _, s := range []struct {
		from string
		h    Hashes
	}{{"stored", e.Stored}, {"expected", e.Expected}} {
		check(s.from, "MD5", s.h.MD5, e.Computed.MD5)
		check(s.from, "SHA-1", s.h.SHA1, e.Computed.SHA1)
		check(s.from, "SHA-256", s.h.SHA256, e.Computed.SHA256)
	}
	if len(e.Container) > 0 {
		bad = true
		reasons = append(reasons, fmt.Sprintf("%d container checksum failure(s)", len(e.Container)))
	}
	if len(e.Unreadable) > 0 {
		// Sectors the imager could not read are zeros in the image and
		// covered by its hashes: noted, not a verification failure.
		reasons = append(reasons, fmt.Sprintf("%d range(s) unreadable at acquisition", len(e.Unreadable)))
	}
	switch {
	case bad:
		f := false
		e.Verified = &f
	case compared > 0:
		t := true
		e.Verified = &t
	default:
		e.Verified = nil
		reasons = append(reasons, "no stored or expected hash to compare with")
	}
	e.HashReason = strings.Join(reasons, "; ")
}

// ValidID reports whether id is usable as an evidence id: 1-64 bytes of
// letters, digits, '.', '_' or '-', not starting with '.'. Ids name export
// directories and report files, so they are kept host-safe.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AddEvidence records an evidence item and its segments in one transaction.
// An id already registered is ErrDuplicate.
func (c *Case) AddEvidence(ctx context.Context, e *Evidence) error {
	if !ValidID(e.ID) {
		return fmt.Errorf("%w: %q (letters, digits, '.', '_', '-'; at most 64)", ErrBadID, e.ID)
	}
	if e.AddedAt.IsZero() {
		e.AddedAt = time.Now().UTC()
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	defer tx.Rollback()
	var verified any
	if e.Verified != nil {
		verified = boolInt(*e.Verified)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO evidence(id, format, size, sector_size, stored_md5, stored_sha1, stored_sha256,
		expected_md5, expected_sha1, expected_sha256, md5, sha1, sha256, verified, hash_reason, container_json, unreadable_json, header_json, added_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		e.ID, e.Format, e.Size, e.SectorSize, e.Stored.MD5, e.Stored.SHA1, e.Stored.SHA256,
		e.Expected.MD5, e.Expected.SHA1, e.Expected.SHA256, e.Computed.MD5, e.Computed.SHA1, e.Computed.SHA256,
		verified, e.HashReason, jsonText(e.Container, "[]"), jsonText(e.Unreadable, "[]"), jsonText(e.Header, "{}"),
		e.AddedAt.UTC().Format(time.RFC3339Nano))
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("%w: %s", ErrDuplicate, e.ID)
	}
	if err != nil {
		return fmt.Errorf("custody: add evidence %s: %w", e.ID, err)
	}
	for i, s := range e.Segments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO segments(evidence_id, seq, path, size, sha256) VALUES (?,?,?,?,?)`,
			e.ID, i, s.Path, s.Size, s.SHA256); err != nil {
			return fmt.Errorf("custody: add evidence %s segment %d: %w", e.ID, i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("custody: add evidence %s: %w", e.ID, err)
	}
	return nil
}

// Evidence returns every registered evidence item in id order.
func (c *Case) Evidence(ctx context.Context) ([]Evidence, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, format, size, sector_size, stored_md5, stored_sha1, stored_sha256,
		expected_md5, expected_sha1, expected_sha256, md5, sha1, sha256, verified, hash_reason, container_json, unreadable_json, header_json, added_at
		FROM evidence ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("custody: evidence: %w", err)
	}
	defer rows.Close()
	var out []Evidence
	for rows.Next() {
		var e Evidence
		var verified sql.NullInt64
		var cont, unr, hdr, added string
		if err := rows.Scan(&e.ID, &e.Format, &e.Size, &e.SectorSize, &e.Stored.MD5, &e.Stored.SHA1, &e.Stored.SHA256,
			&e.Expected.MD5, &e.Expected.SHA1, &e.Expected.SHA256, &e.Computed.MD5, &e.Computed.SHA1, &e.Computed.SHA256,
			&verified, &e.HashReason, &cont, &unr, &hdr, &added); err != nil {
			return nil, fmt.Errorf("custody: evidence: %w", err)
		}
		e.Computed.Size = e.Size
		if verified.Valid {
			v := verified.Int64 == 1
			e.Verified = &v
		}
		_ = json.Unmarshal([]byte(cont), &e.Container)
		_ = json.Unmarshal([]byte(unr), &e.Unreadable)
		_ = json.Unmarshal([]byte(hdr), &e.Header)
		e.AddedAt, _ = time.Parse(time.RFC3339Nano, added)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("custody: evidence: %w", err)
	}
	for i := range out {
		segs, err := c.segments(ctx, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Segments = segs
	}
	return out, nil
}

func (c *Case) segments(ctx context.Context, id string) ([]Segment, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT path, size, sha256 FROM segments WHERE evidence_id=? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("custody: segments of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		var s Segment
		if err := rows.Scan(&s.Path, &s.Size, &s.SHA256); err != nil {
			return nil, fmt.Errorf("custody: segments of %s: %w", id, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Volume is one partition or file system found on an evidence item.
type Volume struct {
	EvidenceID string   `json:"evidence_id"`
	Index      int      `json:"index"` // partition index (1 for a bare file system)
	Start      int64    `json:"start"` // bytes from the start of the image
	Size       int64    `json:"size"`
	Type       string   `json:"type"`
	FileSystem string   `json:"filesystem"`
	Problems   []string `json:"problems,omitempty"`
}

// AddVolume records a volume (replacing one with the same evidence and
// index, so a re-walk updates it).
func (c *Case) AddVolume(ctx context.Context, v Volume) error {
	_, err := c.db.ExecContext(ctx, `INSERT OR REPLACE INTO volumes(evidence_id, idx, start, size, type, filesystem, problems_json) VALUES (?,?,?,?,?,?,?)`,
		v.EvidenceID, v.Index, v.Start, v.Size, v.Type, v.FileSystem, jsonText(v.Problems, "[]"))
	if err != nil {
		return fmt.Errorf("custody: add volume %s/%d: %w", v.EvidenceID, v.Index, err)
	}
	return nil
}

// Volumes returns the volumes of evidence item id in index order.
func (c *Case) Volumes(ctx context.Context, id string) ([]Volume, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT idx, start, size, type, filesystem, problems_json FROM volumes WHERE evidence_id=? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("custody: volumes of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Volume
	for rows.Next() {
		v := Volume{EvidenceID: id}
		var probs string
		if err := rows.Scan(&v.Index, &v.Start, &v.Size, &v.Type, &v.FileSystem, &probs); err != nil {
			return nil, fmt.Errorf("custody: volumes of %s: %w", id, err)
		}
		_ = json.Unmarshal([]byte(probs), &v.Problems)
		out = append(out, v)
	}
	return out, rows.Err()
}

// Run maps Length bytes at file offset Logical to image offset Offset
// (bytes from the start of the evidence image). The JSON keys are DFXML's.
type Run struct {
	Logical int64 `json:"file_offset"`
	Offset  int64 `json:"img_offset"`
	Length  int64 `json:"len"`
	Sparse  bool  `json:"sparse,omitempty"`
}

// File is one file-system entry found on an evidence item.
type File struct {
	ID          int64     `json:"id,omitempty"` // catalog row id; set by queries
	EvidenceID  string    `json:"evidence_id"`
	Volume      int       `json:"volume"`
	Path        string    `json:"path"` // data from the evidence, never a host path
	Size        int64     `json:"size"`
	Type        string    `json:"type"` // "file", "dir", "symlink", "other"
	Deleted     bool      `json:"deleted"`
	Inode       uint64    `json:"inode"`
	Mtime       time.Time `json:"mtime,omitzero"`
	Atime       time.Time `json:"atime,omitzero"`
	Ctime       time.Time `json:"ctime,omitzero"`
	Crtime      time.Time `json:"crtime,omitzero"`
	Runs        []Run     `json:"byte_runs,omitempty"`
	MD5         string    `json:"md5,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	Recoverable bool      `json:"recoverable"`
	Err         string    `json:"error,omitempty"`
	Object      string    `json:"object,omitempty"` // SHA-256 of the stored content; "" when not extracted
	Mode        uint32    `json:"mode,omitempty"`   // Unix st_mode where the file system records one (ext), else 0
	UID         uint32    `json:"uid,omitempty"`
	GID         uint32    `json:"gid,omitempty"`
}

// Carved is one file carved from an evidence item.
type Carved struct {
	ID         int64  `json:"id,omitempty"`
	EvidenceID string `json:"evidence_id"`
	// Layer is "" for a file carved from the image, else the layered path
	// of the file holding the disk it was carved from ("p1:/VMs/a.vhd");
	// Offset and Runs are then bytes of that disk.
	Layer  string `json:"layer,omitempty"`
	Offset int64  `json:"offset"` // bytes from the start of the image (or of Layer's disk)
	Length int64  `json:"length"`
	Type   string `json:"type"`
	Runs   []Run  `json:"byte_runs,omitempty"`
	MD5    string `json:"md5,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Object string `json:"object,omitempty"`
}

// Batch writes files and carved rows in large transactions: files arrive
// by the hundred thousand, and one transaction per row would be fsync-bound.
// A Batch is not safe for concurrent use; Close commits the rest.
type Batch struct {
	c         *Case
	ctx       context.Context
	tx        *sql.Tx
	file, car *sql.Stmt
	n, every  int
}

// NewBatch starts a batch writer committing every `every` rows (0: 20000).
func (c *Case) NewBatch(ctx context.Context, every int) (*Batch, error) {
	if every <= 0 {
		every = 20000
	}
	b := &Batch{c: c, ctx: ctx, every: every}
	return b, b.begin()
}

func (b *Batch) begin() error {
	tx, err := b.c.db.BeginTx(b.ctx, nil)
	if err != nil {
		return fmt.Errorf("custody: batch: %w", err)
	}
	b.tx = tx
	if b.file, err = tx.PrepareContext(b.ctx, `INSERT INTO files(evidence_id, volume, path, size, type, deleted, inode, mtime, atime, ctime, crtime,
		byte_runs_json, md5, sha256, recoverable, error, object, mode, uid, gid) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`); err != nil {
		tx.Rollback()
		return fmt.Errorf("custody: batch: %w", err)
	}
	if b.car, err = tx.PrepareContext(b.ctx, `INSERT INTO carved(evidence_id, offset, length, type, byte_runs_json, md5, sha256, object, layer)
		VALUES (?,?,?,?,?,?,?,?,?)`); err != nil {
		tx.Rollback()
		return fmt.Errorf("custody: batch: %w", err)
	}
	return nil
}

func (b *Batch) step() error {
	b.n++
	if b.n%b.every != 0 {
		return nil
	}
	if err := b.tx.Commit(); err != nil {
		return fmt.Errorf("custody: batch commit: %w", err)
	}
	return b.begin()
}

// StoreObject stores r in the content store (see Case.StoreObject) and
// records the object in the batch's transaction.
func (b *Batch) StoreObject(r io.Reader) (digest.Sums, error) {
	sums, err := b.c.storeFile(b.ctx, r)
	if err != nil {
		return sums, err
	}
	return sums, recordObject(b.ctx, b.tx, sums)
}

// AddFile queues one file row. f.Object, when set, must have been stored
// first, with Batch.StoreObject or Case.StoreObject (foreign key).
func (b *Batch) AddFile(f File) error {
	if f.Type == "" {
		f.Type = "file"
	}
	_, err := b.file.ExecContext(b.ctx, f.EvidenceID, f.Volume, f.Path, f.Size, f.Type, boolInt(f.Deleted), int64(f.Inode),
		timeText(f.Mtime), timeText(f.Atime), timeText(f.Ctime), timeText(f.Crtime), jsonText(f.Runs, "[]"),
		f.MD5, f.SHA256, boolInt(f.Recoverable), f.Err, nullString(f.Object), f.Mode, f.UID, f.GID)
	if err != nil {
		return fmt.Errorf("custody: add file %s/%d %q: %w", f.EvidenceID, f.Volume, f.Path, err)
	}
	return b.step()
}

// AddCarved queues one carved row.
func (b *Batch) AddCarved(cv Carved) error {
	_, err := b.car.ExecContext(b.ctx, cv.EvidenceID, cv.Offset, cv.Length, cv.Type, jsonText(cv.Runs, "[]"),
		cv.MD5, cv.SHA256, nullString(cv.Object), cv.Layer)
	if err != nil {
		return fmt.Errorf("custody: add carved %s at %#x: %w", cv.EvidenceID, cv.Offset, err)
	}
	return b.step()
}

// Close commits what is queued. After an error from Add*, call Abort.
func (b *Batch) Close() error {
	if b.tx == nil {
		return nil
	}
	err := b.tx.Commit()
	b.tx = nil
	if err != nil {
		return fmt.Errorf("custody: batch commit: %w", err)
	}
	return nil
}

// Abort rolls back what is not yet committed.
func (b *Batch) Abort() {
	if b.tx != nil {
		b.tx.Rollback()
		b.tx = nil
	}
}

// AddFile records one file in its own transaction (use a Batch for many).
func (c *Case) AddFile(ctx context.Context, f File) error {
	b, err := c.NewBatch(ctx, 1<<30)
	if err != nil {
		return err
	}
	if err := b.AddFile(f); err != nil {
		b.Abort()
		return err
	}
	return b.Close()
}

// AddCarved records one carved item in its own transaction.
func (c *Case) AddCarved(ctx context.Context, cv Carved) error {
	b, err := c.NewBatch(ctx, 1<<30)
	if err != nil {
		return err
	}
	if err := b.AddCarved(cv); err != nil {
		b.Abort()
		return err
	}
	return b.Close()
}

// Files calls fn for every file row of evidence item id ("" for all) in
// (evidence, volume, id) order, streaming.
func (c *Case) Files(ctx context.Context, id string, fn func(File) error) error {
	rows, err := c.db.QueryContext(ctx, `SELECT id, evidence_id, volume, path, size, type, deleted, inode, mtime, atime, ctime, crtime,
		byte_runs_json, md5, sha256, recoverable, error, object, mode, uid, gid FROM files WHERE ?='' OR evidence_id=? ORDER BY evidence_id, volume, id`, id, id)
	if err != nil {
		return fmt.Errorf("custody: files: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f File
		var del, rec int
		var inode int64
		var mt, at, ct, bt, obj sql.NullString
		var runs string
		if err := rows.Scan(&f.ID, &f.EvidenceID, &f.Volume, &f.Path, &f.Size, &f.Type, &del, &inode, &mt, &at, &ct, &bt,
			&runs, &f.MD5, &f.SHA256, &rec, &f.Err, &obj, &f.Mode, &f.UID, &f.GID); err != nil {
			return fmt.Errorf("custody: files: %w", err)
		}
		f.Deleted, f.Recoverable, f.Inode, f.Object = del == 1, rec == 1, uint64(inode), obj.String
		f.Mtime, f.Atime, f.Ctime, f.Crtime = parseTime(mt), parseTime(at), parseTime(ct), parseTime(bt)
		_ = json.Unmarshal([]byte(runs), &f.Runs)
		if err := fn(f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// CarvedItems calls fn for every carved row of evidence item id ("" for
// all) in (evidence, offset) order.
func (c *Case) CarvedItems(ctx context.Context, id string, fn func(Carved) error) error {
	rows, err := c.db.QueryContext(ctx, `SELECT id, evidence_id, offset, length, type, byte_runs_json, md5, sha256, object, layer
		FROM carved WHERE ?='' OR evidence_id=? ORDER BY evidence_id, layer, offset, id`, id, id)
	if err != nil {
		return fmt.Errorf("custody: carved: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cv Carved
		var runs string
		var obj sql.NullString
		if err := rows.Scan(&cv.ID, &cv.EvidenceID, &cv.Offset, &cv.Length, &cv.Type, &runs, &cv.MD5, &cv.SHA256, &obj, &cv.Layer); err != nil {
			return fmt.Errorf("custody: carved: %w", err)
		}
		cv.Object = obj.String
		_ = json.Unmarshal([]byte(runs), &cv.Runs)
		if err := fn(cv); err != nil {
			return err
		}
	}
	return rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func timeText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s.String)
	return t
}

// jsonText encodes v, or returns empty for a nil or empty value.
func jsonText(v any, empty string) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return empty
	}
	return string(b)
}

// ClearFindings deletes what a walk and carve recorded for evidence item id
// (its volumes, files and carved rows) in one transaction, so an intake that
// was interrupted can be run again without counting anything twice. The
// evidence row, its segments and hashes stay, and so do stored objects:
// they are named by content and shared.
func (c *Case) ClearFindings(ctx context.Context, id string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("custody: clear findings of %s: %w", id, err)
	}
	defer tx.Rollback()
	for _, table := range []string{"hashset_hits", "hashset_carved_hits", "files", "carved", "volumes"} {
		// Table names are constants here, never input; the id is a parameter.
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE evidence_id=?`, id); err != nil {
			return fmt.Errorf("custody: clear %s of %s: %w", table, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("custody: clear findings of %s: %w", id, err)
	}
	return nil
}

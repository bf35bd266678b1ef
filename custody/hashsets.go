package custody

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/mattn/go-sqlite3"
)

// hashsetSchema records the hash sets of a case (referenced where they lie,
// by path, size and SHA-256) and which files of evidence each one holds.
const hashsetSchema = `
CREATE TABLE IF NOT EXISTS hashsets(
	name     TEXT    PRIMARY KEY,
	kind     TEXT    NOT NULL,               -- "known-good", "known-bad", or another name
	format   TEXT    NOT NULL,               -- "rdsv3", "hashdeep", "sums", "plain"
	path     TEXT    NOT NULL,               -- absolute host path when added
	size     INTEGER NOT NULL,
	sha256   TEXT    NOT NULL,               -- of the set's file when added
	entries  INTEGER NOT NULL,               -- distinct hashes, -1 when not counted (an indexed RDS)
	added_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS hashset_hits(
	hashset     TEXT    NOT NULL REFERENCES hashsets(name),
	evidence_id TEXT    NOT NULL REFERENCES evidence(id),
	file_id     INTEGER NOT NULL REFERENCES files(id),
	PRIMARY KEY(hashset, file_id)
);
CREATE INDEX IF NOT EXISTS hashset_hits_evidence ON hashset_hits(evidence_id, hashset);
CREATE TABLE IF NOT EXISTS hashset_carved_hits(
	hashset     TEXT    NOT NULL REFERENCES hashsets(name),
	evidence_id TEXT    NOT NULL REFERENCES evidence(id),
	carved_id   INTEGER NOT NULL REFERENCES carved(id),
	PRIMARY KEY(hashset, carved_id)
);
CREATE INDEX IF NOT EXISTS hashset_carved_hits_evidence ON hashset_carved_hits(evidence_id, hashset);
`

// Kinds of hash set the report orders by: known-bad first, known-good last.
const (
	HashsetKnownGood = "known-good"
	HashsetKnownBad  = "known-bad"
)

// Hashset is a hash set recorded in the case.
type Hashset struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Format  string    `json:"format"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Entries int64     `json:"entries"`
	AddedAt time.Time `json:"added_at"`
}

// ErrHashsetExists says a hash set of that name is already recorded.
var ErrHashsetExists = errors.New("a hash set of that name is already recorded")

// AddHashset records a hash set.
func (c *Case) AddHashset(ctx context.Context, h Hashset) error {
	if h.AddedAt.IsZero() {
		h.AddedAt = time.Now().UTC()
	}
	_, err := c.db.ExecContext(ctx, `INSERT INTO hashsets(name, kind, format, path, size, sha256, entries, added_at) VALUES(?,?,?,?,?,?,?,?)`,
		h.Name, h.Kind, h.Format, h.Path, h.Size, h.SHA256, h.Entries, h.AddedAt.Format(time.RFC3339Nano))
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return fmt.Errorf("custody: hashset %q: %w", h.Name, ErrHashsetExists)
	}
	if err != nil {
		return fmt.Errorf("custody: hashset %q: %w", h.Name, err)
	}
	return nil
}

// Hashsets lists the recorded hash sets by name.
func (c *Case) Hashsets(ctx context.Context) ([]Hashset, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, kind, format, path, size, sha256, entries, added_at FROM hashsets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("custody: hashsets: %w", err)
	}
	defer rows.Close()
	out := []Hashset{}
	for rows.Next() {
		var h Hashset
		var at sql.NullString
		if err := rows.Scan(&h.Name, &h.Kind, &h.Format, &h.Path, &h.Size, &h.SHA256, &h.Entries, &at); err != nil {
			return nil, fmt.Errorf("custody: hashsets: %w", err)
		}
		h.AddedAt = parseTime(at)
		out = append(out, h)
	}
	return out, rows.Err()
}

// FileHash is the content hash of one file or carved row.
type FileHash struct {
	ID          int64 // files.id, or carved.id when Carved
	Carved      bool
	EvidenceID  string
	MD5, SHA256 string
}

// FileHashes returns every file and carved row of evidence item id (""
// for all) whose content was hashed. The whole list is read before it
// returns, so the caller may write to the catalog while going through it.
func (c *Case) FileHashes(ctx context.Context, id string) ([]FileHash, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, 0, evidence_id, md5, sha256 FROM files WHERE (?1='' OR evidence_id=?1) AND sha256<>''
		UNION ALL SELECT id, 1, evidence_id, md5, sha256 FROM carved WHERE (?1='' OR evidence_id=?1) AND sha256<>'' ORDER BY 2, 1`, id)
	if err != nil {
		return nil, fmt.Errorf("custody: file hashes: %w", err)
	}
	defer rows.Close()
	var out []FileHash
	for rows.Next() {
		var f FileHash
		if err := rows.Scan(&f.ID, &f.Carved, &f.EvidenceID, &f.MD5, &f.SHA256); err != nil {
			return nil, fmt.Errorf("custody: file hashes: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// SetHashsetHits records that set holds exactly the given files and
// carved items of evidence item evID (replacing what was recorded for that
// pair), in one transaction.
func (c *Case) SetHashsetHits(ctx context.Context, set, evID string, fileIDs, carvedIDs []int64) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("custody: hashset %s hits: %w", set, err)
	}
	defer tx.Rollback()
	for _, t := range []struct {
		table, col string
		ids        []int64
	}{{"hashset_hits", "file_id", fileIDs}, {"hashset_carved_hits", "carved_id", carvedIDs}} {
		// Table and column names are constants here, never input.
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE hashset=? AND evidence_id=?`, set, evID); err != nil {
			return fmt.Errorf("custody: hashset %s hits: %w", set, err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO `+t.table+`(hashset, evidence_id, `+t.col+`) VALUES(?,?,?)`)
		if err != nil {
			return fmt.Errorf("custody: hashset %s hits: %w", set, err)
		}
		for _, id := range t.ids {
			if _, err := st.ExecContext(ctx, set, evID, id); err != nil {
				st.Close()
				return fmt.Errorf("custody: hashset %s hits: %w", set, err)
			}
		}
		st.Close()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("custody: hashset %s hits: %w", set, err)
	}
	return nil
}

// HashsetMatch is one file of evidence found in a hash set.
type HashsetMatch struct {
	Hashset    string `json:"hashset"`
	Kind       string `json:"kind"`
	EvidenceID string `json:"evidence_id"`
	Volume     int    `json:"volume"`
	Path       string `json:"path"` // in the file system, or "carved:OFFSET (TYPE)" for a carved item
	Size       int64  `json:"size"`
	Deleted    bool   `json:"deleted"`
	Carved     bool   `json:"carved,omitempty"`
	SHA256     string `json:"sha256"`
}

// kindRank orders kinds in the report: known-bad, other named kinds,
// known-good.
func kindRank(k string) int {
	switch k {
	case HashsetKnownBad:
		return 0
	case HashsetKnownGood:
		return 2
	}
	return 1
}

// HashsetMatches lists every recorded match, known-bad first, then other
// kinds, then known-good; within a kind by set, evidence and path.
func (c *Case) HashsetMatches(ctx context.Context) ([]HashsetMatch, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT h.name, h.kind, f.evidence_id, f.volume, f.path, f.size, f.deleted, 0, f.sha256
		FROM hashset_hits x JOIN hashsets h ON h.name=x.hashset JOIN files f ON f.id=x.file_id
		UNION ALL SELECT h.name, h.kind, v.evidence_id, 0, 'carved:' || v.offset || ' (' || v.type || ')', v.length, 0, 1, v.sha256
		FROM hashset_carved_hits x JOIN hashsets h ON h.name=x.hashset JOIN carved v ON v.id=x.carved_id`)
	if err != nil {
		return nil, fmt.Errorf("custody: hashset matches: %w", err)
	}
	defer rows.Close()
	out := []HashsetMatch{}
	for rows.Next() {
		var m HashsetMatch
		var del int
		if err := rows.Scan(&m.Hashset, &m.Kind, &m.EvidenceID, &m.Volume, &m.Path, &m.Size, &del, &m.Carved, &m.SHA256); err != nil {
			return nil, fmt.Errorf("custody: hashset matches: %w", err)
		}
		m.Deleted = del == 1
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("custody: hashset matches: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
			return ra < rb
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Hashset != b.Hashset {
			return a.Hashset < b.Hashset
		}
		if a.EvidenceID != b.EvidenceID {
			return a.EvidenceID < b.EvidenceID
		}
		if a.Carved != b.Carved {
			return !a.Carved // file-system files before carved items
		}
		if a.Volume != b.Volume {
			return a.Volume < b.Volume
		}
		return a.Path < b.Path
	})
	return out, nil
}

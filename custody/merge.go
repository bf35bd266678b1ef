package custody

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/evidx/evidx/digest"
)

// ErrMergeID refuses an evidence item that would take an id the
// destination case already uses.
var ErrMergeID = errors.New("custody: merge: evidence id already used in the destination")

// MergedEvidence says what MergeEvidence copied.
type MergedEvidence struct {
	From    string `json:"from"` // the item's id in the source case
	ID      string `json:"id"`   // its id here
	Files   int64  `json:"files"`
	Carved  int64  `json:"carved"`
	Objects int64  `json:"objects"`
	Bytes   int64  `json:"bytes"` // of the objects copied
}

// evidenceTables are the catalog tables keyed by evidence item, copied by
// a merge: the item row first, then what hangs from it. Transfers are
// copied apart (they name their audit line).
var evidenceTables = []struct{ table, key string }{
	{"evidence", "id"}, {"segments", "evidence_id"}, {"volumes", "evidence_id"},
	{"files", "evidence_id"}, {"carved", "evidence_id"}, {"seizure", "evidence_id"},
}

// MergeEvidence copies evidence item id of src (another case, opened
// read-only) into c as newID: its catalog rows, the stored objects its
// files and carved items name (each hashed again on the way in: a changed
// object stops the merge), and its feature files. It writes one
// "evidence.merge" audit line naming the source case, which records the
// item's row as any intake does; the item's transfers are copied with
// that line as theirs.
func (c *Case) MergeEvidence(ctx context.Context, src *Case, id, newID string) (MergedEvidence, error) {
	m := MergedEvidence{From: id, ID: newID}
	if !ValidID(newID) {
		return m, fmt.Errorf("%w: %q (letters, digits, '.', '_', '-'; at most 64)", ErrBadID, newID)
	}
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM evidence WHERE id=?`, newID).Scan(&n); err != nil {
		return m, fmt.Errorf("custody: merge: %w", err)
	}
	if n > 0 {
		return m, fmt.Errorf("%w: %s", ErrMergeID, newID)
	}

	// Objects first: the content store is keyed by hash, so a copy
	// interrupted here leaves nothing the catalog names.
	rows, err := src.db.QueryContext(ctx, `SELECT object FROM files WHERE evidence_id=? AND object IS NOT NULL
		UNION SELECT object FROM carved WHERE evidence_id=? AND object IS NOT NULL`, id, id)
	if err != nil {
		return m, fmt.Errorf("custody: merge %s: %w", id, err)
	}
	var objects []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return m, fmt.Errorf("custody: merge %s: %w", id, err)
		}
		objects = append(objects, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("custody: merge %s: %w", id, err)
	}
	for _, o := range objects {
		p, err := src.ObjectPath(o)
		if err != nil {
			return m, err
		}
		f, err := os.Open(p)
		if err != nil {
			return m, fmt.Errorf("custody: merge %s: object %s: %w", id, o, err)
		}
		sums, err := c.StoreObject(ctx, f)
		f.Close()
		if err != nil {
			return m, fmt.Errorf("custody: merge %s: object %s: %w", id, o, err)
		}
		if sums.SHA256 != o {
			return m, fmt.Errorf("custody: merge %s: object %s of %s reads as %s (changed since stored)", id, o, src.dir, sums.SHA256)
		}
		m.Objects++
		m.Bytes += sums.Size
	}

	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return m, fmt.Errorf("custody: merge %s: %w", id, err)
	}
	defer tx.Rollback()
	for _, t := range evidenceTables {
		k, err := copyRows(ctx, src.db, tx, t.table, t.key, id, newID)
		if err != nil {
			return m, fmt.Errorf("custody: merge %s: %s: %w", id, t.table, err)
		}
		switch t.table {
		case "files":
			m.Files = k
		case "carved":
			m.Carved = k
		}
	}
	if err := tx.Commit(); err != nil {
		return m, fmt.Errorf("custody: merge %s: %w", id, err)
	}

	outputs, err := c.copyFeatures(ctx, src, id, newID)
	if err != nil {
		return m, err
	}
	transfers, err := src.Transfers(ctx, id)
	if err != nil {
		return m, err
	}
	srcSeqs := make([]int64, len(transfers))
	for i, t := range transfers {
		srcSeqs[i] = t.AuditSeq
	}
	l, err := c.audit(Entry{Action: "evidence.merge", Outcome: OutcomeOK,
		Inputs: []Item{{Kind: "evidence", ID: newID}}, Outputs: outputs,
		Details: map[string]any{"from_case": src.meta.CaseNumber, "from_dir": src.dir, "from_id": id,
			"files": m.Files, "carved": m.Carved, "objects": m.Objects, "bytes": m.Bytes,
			"transfers_from_audit_lines": srcSeqs}})
	if err != nil {
		return m, err
	}
	for _, t := range transfers {
		if _, err := c.db.ExecContext(ctx, `INSERT INTO transfers(evidence_id, at, from_holder, to_holder, reason, examiner, audit_seq) VALUES (?,?,?,?,?,?,?)`,
			newID, t.At.Format(time.RFC3339), t.From, t.To, t.Reason, t.Examiner, l.Seq); err != nil {
			return m, fmt.Errorf("custody: merge %s: transfer (audit line %d written): %w", id, l.Seq, err)
		}
	}
	return m, nil
}

// identRe is what a column name read from another case's catalog must
// look like before it is put into SQL (identifiers cannot be parameters).
var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// copyRows copies the rows of table whose key column equals id from src
// into tx, with key set to newID. Columns are those both catalogs have;
// an INTEGER PRIMARY KEY "id" (files, carved) is left to take new values.
func copyRows(ctx context.Context, src *sql.DB, tx *sql.Tx, table, key, id, newID string) (int64, error) {
	dest := map[string]bool{}
	info, err := tx.QueryContext(ctx, `SELECT name, pk, type FROM pragma_table_info(?)`, table)
	if err != nil {
		return 0, err
	}
	for info.Next() {
		var name, typ string
		var pk int
		if err := info.Scan(&name, &pk, &typ); err != nil {
			info.Close()
			return 0, err
		}
		if name == "id" && pk == 1 && strings.EqualFold(typ, "INTEGER") && key != "id" {
			continue
		}
		dest[name] = true
	}
	info.Close()
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+table+` WHERE `+key+`=?`, id)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var names, marks []string
	var keep []int
	keyAt := -1
	for i, col := range cols {
		if !dest[col] || !identRe.MatchString(col) {
			continue
		}
		if col == key {
			keyAt = len(keep)
		}
		keep = append(keep, i)
		names = append(names, `"`+col+`"`)
		marks = append(marks, "?")
	}
	if keyAt < 0 {
		return 0, fmt.Errorf("no column %s", key)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO `+table+`(`+strings.Join(names, ",")+`) VALUES (`+strings.Join(marks, ",")+`)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	args := make([]any, len(keep))
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for j, i := range keep {
			args[j] = vals[i]
		}
		args[keyAt] = newID
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// copyFeatures copies the feature files of item id of src (features/ID/)
// into c under newID and returns them as audit outputs.
func (c *Case) copyFeatures(ctx context.Context, src *Case, id, newID string) ([]Item, error) {
	from := filepath.Join(src.dir, "features", id)
	to := filepath.Join(c.dir, "features", newID)
	var out []Item
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == from {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return mkdirPrivate(dst)
		}
		if !d.Type().IsRegular() {
			return nil // a link in another case's directory is not followed
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := c.writePrivate(dst, b); err != nil {
			return err
		}
		sum, size, err := digest.SHA256File(ctx, dst)
		if err != nil {
			return err
		}
		out = append(out, Item{Kind: "features", Path: c.relPath(dst), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("custody: merge %s: features: %w", id, err)
	}
	return out, nil
}

package custody

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The catalog's custody rows — case_info, evidence (with its segments),
// hashsets and the index's sources — are written into the audit log when
// they are created or changed, flattened to text fields (Line.Catalog), so
// that an edit of catalog.sqlite is named by verify. Keys are "case",
// "evidence ID", "hashset NAME" and "source SHA256". Rows of case_info,
// evidence and hashsets never change after they are written: the first
// record is authoritative and a changed row is not recorded again (verify
// flags it). A source row changes only
// through a load or removal of that dataset, so it is recorded only by an
// audit entry naming the dataset (an Item of kind "dataset" with its
// SHA-256), and not while its status is 'loading' (an unfinished load).

// auditCatalogSchema keeps, per key, the row last written to the audit
// log, so audit() writes only what changed. Verify never trusts it: it
// rebuilds the rows from the log.
const auditCatalogSchema = `
CREATE TABLE IF NOT EXISTS audit_catalog(
	key      TEXT    PRIMARY KEY, -- "case", "evidence ID", "source SHA256"
	row_json TEXT    NOT NULL,    -- the flattened row as written to the audit log
	seq      INTEGER NOT NULL     -- the audit line it was written in
);`

// catRec is one catalog row to write into an audit line; row nil: removed.
type catRec struct {
	key  string
	row  map[string]any
	json string
}

// evidenceCols and sourceCols are the columns recorded; every value is
// recorded as text (NULL as null). Counts a removal of another source
// changes (new_json, shared_json) and timings are left out.
const (
	caseCols     = `case_number, examiner, agency, description, shards, created, tool, sign_public_key`
	evidenceCols = `id, format, size, sector_size, stored_md5, stored_sha1, stored_sha256, expected_md5, expected_sha1, expected_sha256,
		md5, sha1, sha256, verified, hash_reason, container_json, unreadable_json, header_json, added_at`
	hashsetCols = `name, kind, format, path, size, sha256, entries, added_at`
	sourceCols  = `id, name, sha256, size, evidence_id, evidence_path, path, format, encoding, compression,
		rows, rejected, sightings, invalid_json, unique_json, status, started, finished`
)

// currentCatalog reads the recorded rows as they are now.
func (c *Case) currentCatalog(ctx context.Context) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	scan := func(q string, key func(map[string]any) string, args ...any) error {
		rows, err := c.db.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("custody: catalog records: %w", err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return fmt.Errorf("custody: catalog records: %w", err)
		}
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return fmt.Errorf("custody: catalog records: %w", err)
			}
			m := make(map[string]any, len(cols))
			for i, col := range cols {
				if vals[i].Valid {
					m[col] = vals[i].String
				} else {
					m[col] = nil
				}
			}
			out[key(m)] = m
		}
		return rows.Err()
	}
	if err := scan(`SELECT `+caseCols+` FROM case_info WHERE id=1`, func(map[string]any) string { return "case" }); err != nil {
		return nil, err
	}
	if err := scan(`SELECT `+evidenceCols+` FROM evidence`, func(m map[string]any) string { return "evidence " + str(m["id"]) }); err != nil {
		return nil, err
	}
	segs, err := c.db.QueryContext(ctx, `SELECT evidence_id, seq, path, CAST(size AS TEXT), sha256 FROM segments ORDER BY evidence_id, seq`)
	if err != nil {
		return nil, fmt.Errorf("custody: catalog records: %w", err)
	}
	for segs.Next() {
		var ev, seq, path, size, sum string
		if err := segs.Scan(&ev, &seq, &path, &size, &sum); err != nil {
			segs.Close()
			return nil, fmt.Errorf("custody: catalog records: %w", err)
		}
		m := out["evidence "+ev]
		if m == nil {
			m = map[string]any{"id": ev} // segments of a row that is gone: still recorded
			out["evidence "+ev] = m
		}
		m["segment."+seq+".path"], m["segment."+seq+".size"], m["segment."+seq+".sha256"] = path, size, sum
	}
	segs.Close()
	if err := segs.Err(); err != nil {
		return nil, fmt.Errorf("custody: catalog records: %w", err)
	}
	if err := scan(`SELECT `+hashsetCols+` FROM hashsets`, func(m map[string]any) string { return "hashset " + str(m["name"]) }); err != nil {
		return nil, err
	}
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='sources'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("custody: catalog records: %w", err)
	}
	if n > 0 {
		if err := scan(`SELECT `+sourceCols+` FROM sources`, func(m map[string]any) string { return "source " + str(m["sha256"]) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func rowJSON(m map[string]any) string {
	if m == nil {
		return "null"
	}
	b, _ := json.Marshal(m) // map keys sorted: one form per row
	return string(b)
}

// catalogChanges returns the rows the audit line for e must carry.
func (c *Case) catalogChanges(e Entry) ([]catRec, error) {
	ctx := context.Background()
	if _, err := c.db.ExecContext(ctx, auditCatalogSchema); err != nil {
		return nil, fmt.Errorf("custody: catalog records: %w", err)
	}
	cur, err := c.currentCatalog(ctx)
	if err != nil {
		return nil, err
	}
	saved := map[string]string{}
	rows, err := c.db.QueryContext(ctx, `SELECT key, row_json FROM audit_catalog`)
	if err != nil {
		return nil, fmt.Errorf("custody: catalog records: %w", err)
	}
	for rows.Next() {
		var k, j string
		if err := rows.Scan(&k, &j); err != nil {
			rows.Close()
			return nil, fmt.Errorf("custody: catalog records: %w", err)
		}
		saved[k] = j
	}
	rows.Close()
	named := map[string]bool{}
	for _, it := range append(append([]Item{}, e.Inputs...), e.Outputs...) {
		if it.Kind == "dataset" && it.SHA256 != "" {
			named["source "+it.SHA256] = true
		}
	}
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range saved {
		keys[k] = true
	}
	var out []catRec
	for _, k := range sortedKeys(keys) {
		row := cur[k]
		j := rowJSON(row)
		old, had := saved[k]
		if had && old == j {
			continue
		}
		if strings.HasPrefix(k, "source ") {
			if !named[k] || (row != nil && str(row["status"]) == "loading") {
				continue
			}
		} else if had || row == nil {
			continue // written once; a change is for verify to name
		}
		out = append(out, catRec{key: k, row: row, json: j})
	}
	return out, nil
}

// catalogLine is the Line.Catalog value of rows.
func catalogLine(rows []catRec) map[string]map[string]any {
	if len(rows) == 0 {
		return nil
	}
	m := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		m[r.key] = r.row
	}
	return m
}

// saveCatalogRecords notes rows as written at audit line seq.
func (c *Case) saveCatalogRecords(rows []catRec, seq int64) error {
	for _, r := range rows {
		var err error
		if r.row == nil {
			_, err = c.db.Exec(`DELETE FROM audit_catalog WHERE key=?`, r.key)
		} else {
			_, err = c.db.Exec(`INSERT OR REPLACE INTO audit_catalog(key, row_json, seq) VALUES (?,?,?)`, r.key, r.json, seq)
		}
		if err != nil {
			return fmt.Errorf("custody: catalog records: %w", err)
		}
	}
	return nil
}

// recordedRow is a catalog row as the audit log has it.
type recordedRow struct {
	row map[string]any // nil: removed
	seq int64
}

// catalogCheck is what verifyCatalog found, for the checks after it.
type catalogCheck struct {
	evidence    map[string]recordedRow // by evidence id, as recorded
	interrupted []string               // sources whose load did not finish, named
}

// verifyCatalog rebuilds the recorded rows from the audit lines and
// compares the catalog with them, naming each row and field that differs.
func (c *Case) verifyCatalog(ctx context.Context, res *VerifyResult, lines []Line) (catalogCheck, error) {
	out := catalogCheck{evidence: map[string]recordedRow{}}
	rec := map[string]recordedRow{}
	var fails []string
	covered := false
	for _, l := range lines {
		for k, row := range l.Catalog {
			covered = true
			old, had := rec[k]
			if had && !strings.HasPrefix(k, "source ") {
				if rowJSON(old.row) != rowJSON(row) {
					fails = append(fails, fmt.Sprintf("catalog: %s recorded differently at audit lines %d and %d (row edited between)", k, old.seq, l.Seq))
				}
				continue
			}
			rec[k] = recordedRow{row, l.Seq}
		}
	}
	if !covered && len(lines) > 0 {
		res.check("catalog", nil, "not covered: the audit log predates catalog records")
		return out, nil
	}
	cur, err := c.currentCatalog(ctx)
	if err != nil {
		return out, err
	}
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k, r := range rec {
		if r.row != nil {
			keys[k] = true
		}
	}
	for _, k := range sortedKeys(keys) {
		row, r := cur[k], rec[k]
		if strings.HasPrefix(k, "evidence ") && r.row != nil {
			out.evidence[strings.TrimPrefix(k, "evidence ")] = r
		}
		if rowJSON(row) == rowJSON(r.row) {
			continue
		}
		name := k
		if strings.HasPrefix(k, "source ") {
			sum := strings.TrimPrefix(k, "source ")
			if row != nil {
				name = fmt.Sprintf("source %s (%.12s)", oneLine(str(row["name"])), sum)
			} else {
				name = fmt.Sprintf("source %s (%.12s)", oneLine(str(r.row["name"])), sum)
			}
			if row != nil && str(row["status"]) == "loading" {
				out.interrupted = append(out.interrupted, name)
				fails = append(fails, fmt.Sprintf("catalog: interrupted load of %s; rerun the load (evidx dataset add), or remove it", name))
				continue
			}
		}
		switch {
		case r.seq == 0:
			fails = append(fails, fmt.Sprintf("catalog: %s is not in the audit log (row written outside evidx)", name))
		case r.row == nil:
			fails = append(fails, fmt.Sprintf("catalog: %s was removed at audit line %d but is in the catalog", name, r.seq))
		case row == nil:
			fails = append(fails, fmt.Sprintf("catalog: %s (audit line %d) is missing from the catalog", name, r.seq))
		default:
			fields := map[string]bool{}
			for f := range row {
				fields[f] = true
			}
			for f := range r.row {
				fields[f] = true
			}
			for _, f := range sortedKeys(fields) {
				now, was := row[f], r.row[f]
				if rowJSON(map[string]any{"v": now}) != rowJSON(map[string]any{"v": was}) {
					fails = append(fails, fmt.Sprintf("catalog: %s %s differs from the audit log (catalog %s, audit line %d %s)", name, f, shortVal(now), r.seq, shortVal(was)))
				}
			}
		}
	}
	sort.Strings(fails)
	res.check("catalog", fails, fmt.Sprintf("%d rows compared with the audit log", len(keys)))
	return out, nil
}

func shortVal(v any) string {
	if v == nil {
		return "null"
	}
	s := oneLine(fmt.Sprint(v))
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("%q", s)
}

package records

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)
)

// sqliteDSN is the read-only, immutable URI of an SQLite file: SQLite then
// takes no locks and writes no journal beside the evidence.
func sqliteDSN(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&immutable=1"}
	return u.String(), nil
}

// sqlite reads every table of an SQLite database. path is the database's
// own file when it can be opened in place; else the stream is copied to a
// temporary file first (bounded by MaxSpill).
func (r *reader) sqlite(br *bufio.Reader, path string, info *Info) error {
	if path == "" {
		f, _, err := spillTemp(br, r.o.TmpDir, r.o.MaxSpill)
		if err != nil {
			return &ParseError{Op: "sqlite spill", Loc: Loc{Member: info.Member}, Err: err}
		}
		f.Close()
		defer os.Remove(f.Name())
		path = f.Name()
	}
	dsn, err := sqliteDSN(path)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return &ParseError{Op: "sqlite open", Loc: Loc{Member: info.Member}, Err: err}
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tables, err := sqliteTables(db)
	if err != nil {
		return &ParseError{Op: "sqlite schema", Loc: Loc{Member: info.Member}, Err: err}
	}
	// A damaged table loses its rows from the damage on, not the file:
	// the other tables are still read, as the sqlite3 shell reads them.
	var first error
	lost := 0
	for _, t := range tables {
		err := r.sqliteTable(db, t, info)
		var ee emitError
		switch {
		case err == nil:
			continue
		case errors.As(err, &ee) || r.ctx.Err() != nil:
			return err
		}
		lost++
		if first == nil {
			first = err
		}
		info.Problems = append(info.Problems, err.Error())
	}
	if lost > 0 && lost == len(tables) {
		return first
	}
	return nil
}

func sqliteTables(db *sql.DB) ([]string, error) {
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// quoteIdent quotes an SQL identifier taken from the evidence.
func quoteIdent(s string) string {
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return string(append(b, '"'))
}

func (r *reader) sqliteTable(db *sql.DB, t string, info *Info) error {
	loc := Loc{Member: info.Member, Table: t}
	rows, err := db.QueryContext(r.ctx, "SELECT * FROM "+quoteIdent(t))
	if err != nil {
		return &ParseError{Op: "sqlite select", Loc: loc, Err: err}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return &ParseError{Op: "sqlite columns", Loc: loc, Err: err}
	}
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	schema := info.Member + "/" + t
	c := &Chunk{Info: info, Schema: schema, Names: cols, Table: t}
	n := int64(0)
	for rows.Next() {
		n++
		row := Row{Names: cols, Loc: Loc{Member: info.Member, Table: t, Row: n}}
		if err := rows.Scan(ptrs...); err != nil {
			row.Reject = err.Error()
		} else {
			row.Fields = make([]string, len(cols))
			for i, b := range raw {
				row.Fields[i] = string(b)
			}
		}
		c.rows = append(c.rows, row)
		if len(c.rows) >= r.o.RowsPerChunk {
			if err := r.send(c); err != nil {
				return err
			}
			c = &Chunk{Info: info, Schema: schema, Names: cols, Table: t}
		}
	}
	// The rows read before damage count.
	if len(c.rows) > 0 {
		if err := r.send(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return &ParseError{Op: "sqlite rows", Loc: Loc{Member: info.Member, Table: t, Row: n}, Err: fmt.Errorf("%w", err)}
	}
	return nil
}

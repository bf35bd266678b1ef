package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Info describes one stream of rows: a file, or a member of a zip.
type Info struct {
	Member      string // zip member, "" for the file itself
	Compression string // "none", "gzip", "zip+gzip", ...
	Encoding    string // "utf-8", "gb18030", ...; "" for SQLite
	Format      Format
	Err         error // set when the member could not be read
	// Problems are parts lost while the rest was read: a SQLite table
	// whose pages are damaged, with the rows before the damage kept.
	Problems []string
}

// Row is one record. Fields hold the values; Names their column names
// (header, SQL columns, JSON key paths), or nil when the data has none.
// Strings may alias the chunk's buffer, which is never modified: they stay
// valid as long as they are referenced.
type Row struct {
	Fields []string
	Names  []string
	Loc    Loc
	// Text marks a line of plain text: Fields[0] is the line, to be
	// scanned for identifiers.
	Text bool
	// Reject is non-empty for a malformed row: why; Raw is its text.
	Reject string
	Raw    string
}

// Chunk is a unit of rows that can be parsed on any goroutine, in any
// order relative to other chunks. Schema names the column layout the rows
// share ("member/table"), so roles decided for one chunk apply to others.
type Chunk struct {
	Info   *Info
	Schema string
	Names  []string // shared column names (header, table columns)
	// Table is the SQL or SQLite table the rows come from ("" for other
	// formats). Chunks carry it: Info is written by the reader while
	// chunks are parsed elsewhere.
	Table string
	// Seq numbers the chunks of one Read from 0.
	Seq int64

	data      []byte // line-based formats: whole records
	line      int64  // 1-based line of data[0]
	skipFirst bool   // data starts with the header record
	rows      []Row  // pre-parsed formats (SQL, SQLite)
}

// Rows calls fn for each row of the chunk. The *Row and its Fields slice
// are reused between calls: copy what must outlive fn (the strings
// themselves may be kept).
func (c *Chunk) Rows(fn func(*Row) error) error {
	if c.rows != nil {
		for i := range c.rows {
			if err := fn(&c.rows[i]); err != nil {
				return err
			}
		}
		return nil
	}
	switch c.Info.Format.Kind {
	case KindDelimited:
		return c.delimitedRows(fn)
	case KindJSONL:
		return c.lineRows(fn, true)
	default:
		return c.lineRows(fn, false)
	}
}

func (c *Chunk) delimitedRows(fn func(*Row) error) error {
	f := c.Info.Format
	p := delimParser{delim: []byte(f.Delim), quote: f.Quote}
	data := c.data
	var row Row
	row.Names = c.Names
	row.Loc.Member = c.Info.Member
	line := c.line
	pos := 0
	first := c.skipFirst
	for pos < len(data) {
		start := pos
		fields, next, nl, ok := p.record(data, pos, row.Fields)
		row.Fields = fields
		row.Loc.Line = line
		line += int64(nl)
		pos = next
		blank := ok && len(fields) == 1 && strings.TrimSpace(fields[0]) == ""
		if first && !blank {
			first = false // the header (the sniffer skipped blank lines too)
			continue
		}
		if !ok {
			row.Reject = "unterminated quoted field"
			row.Raw = bstr(data[start:next])
		} else if len(fields) == 1 && strings.TrimSpace(fields[0]) == "" {
			continue // blank line
		} else if len(fields) != f.Fields {
			row.Reject = fmt.Sprintf("%d fields, want %d", len(fields), f.Fields)
			row.Raw = bstr(bytes.TrimRight(data[start:next], "\r\n"))
		} else {
			row.Reject, row.Raw = "", ""
		}
		if err := fn(&row); err != nil {
			return err
		}
	}
	return nil
}

// lineRows yields each non-blank line as a text row, or (jsonl) as the
// flattened key paths and values of its JSON object.
func (c *Chunk) lineRows(fn func(*Row) error, jsonl bool) error {
	data := c.data
	var row Row
	row.Loc.Member = c.Info.Member
	line := c.line
	var kv []kvPair
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		row.Loc.Line = line
		line++
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		row.Reject, row.Raw = "", ""
		if !jsonl {
			row.Text = true
			row.Fields = append(row.Fields[:0], bstr(l))
		} else {
			var v any
			d := json.NewDecoder(bytes.NewReader(l))
			d.UseNumber()
			err := d.Decode(&v)
			obj, isObj := v.(map[string]any)
			if err != nil || !isObj || d.More() {
				row.Reject = "not a JSON object"
				if err != nil {
					row.Reject = "json: " + err.Error()
				}
				row.Raw = bstr(l)
				row.Fields, row.Names = row.Fields[:0], row.Names[:0]
			} else {
				kv = flatten(kv[:0], "", obj)
				row.Fields, row.Names = row.Fields[:0], row.Names[:0]
				for _, p := range kv {
					row.Names = append(row.Names, p.k)
					row.Fields = append(row.Fields, p.v)
				}
			}
		}
		if err := fn(&row); err != nil {
			return err
		}
	}
	return nil
}

type kvPair struct{ k, v string }

// flatten appends the leaves of a JSON value as key paths ("a.b", "a.0")
// and string values, in sorted key order; nulls are skipped.
func flatten(out []kvPair, prefix string, v any) []kvPair {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = flatten(out, join(k), t[k])
		}
	case []any:
		for i, e := range t {
			out = flatten(out, join(strconv.Itoa(i)), e)
		}
	case string:
		out = append(out, kvPair{prefix, t})
	case json.Number:
		out = append(out, kvPair{prefix, t.String()})
	case bool:
		out = append(out, kvPair{prefix, strconv.FormatBool(t)})
	}
	return out
}

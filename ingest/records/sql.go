package records

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// sqlScanner reads a SQL dump (MySQL multi-row INSERT with backslash
// escapes, column lists from INSERT or CREATE TABLE; PostgreSQL COPY ...
// FROM stdin blocks) statement by statement, byte by byte, so statements
// of any length stream in bounded memory.
type sqlScanner struct {
	r       *reader
	br      *bufio.Reader
	info    *Info
	line    int64
	cols    map[string][]string // table -> columns from CREATE TABLE
	pending map[string]*Chunk   // table -> rows not yet sent
	rowNo   map[string]int64
	buf     []byte
	dialect string
	// rejected counts garbage lines.
	rejected int64
}

var errSQLEOF = errors.New("unexpected end of dump")

func (r *reader) sql(br *bufio.Reader, info *Info) error {
	s := &sqlScanner{r: r, br: br, info: info, line: 1, cols: map[string][]string{},
		pending: map[string]*Chunk{}, rowNo: map[string]int64{}}
	info.Format = Format{Kind: "mysql"}
	err := s.run()
	for t := range s.pending {
		if ferr := s.flush(t); ferr != nil && err == nil {
			err = ferr
		}
	}
	if s.dialect != "" {
		info.Format.Kind = s.dialect
	}
	return err
}

func (s *sqlScanner) read() (byte, error) {
	c, err := s.br.ReadByte()
	if c == '\n' {
		s.line++
	}
	return c, err
}

func (s *sqlScanner) unread() {
	_ = s.br.UnreadByte()
	if b, _ := s.br.Peek(1); len(b) == 1 && b[0] == '\n' {
		s.line--
	}
}

func (s *sqlScanner) skipSpace() (byte, error) {
	for {
		c, err := s.read()
		if err != nil {
			return 0, err
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		return c, nil
	}
}

// word reads an identifier or keyword (letters, digits, _, $, or a quoted
// `name`/"name"), after the one byte c already read.
func (s *sqlScanner) word(c byte) (string, error) {
	s.buf = s.buf[:0]
	if c == '`' || c == '"' || c == '[' {
		end := c
		if c == '[' {
			end = ']'
		}
		for {
			d, err := s.read()
			if err != nil {
				return "", err
			}
			if d == end {
				return string(s.buf), nil
			}
			s.buf = append(s.buf, d)
		}
	}
	s.buf = append(s.buf, c)
	for {
		d, err := s.read()
		if err != nil {
			return string(s.buf), nil
		}
		if d == '_' || d == '$' || d >= '0' && d <= '9' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d >= 0x80 {
			s.buf = append(s.buf, d)
			continue
		}
		s.unread()
		return string(s.buf), nil
	}
}

// name reads a possibly qualified table name (db.`table`), returning the
// last part.
func (s *sqlScanner) name() (string, error) {
	c, err := s.skipSpace()
	if err != nil {
		return "", err
	}
	n, err := s.word(c)
	if err != nil {
		return "", err
	}
	for {
		c, err := s.read()
		if err != nil || c != '.' {
			if err == nil {
				s.unread()
			}
			return n, nil
		}
		c, err = s.read()
		if err != nil {
			return n, nil
		}
		if n, err = s.word(c); err != nil {
			return "", err
		}
	}
}

// skipStatement skips to the ';' ending the statement, honouring quotes.
func (s *sqlScanner) skipStatement() error {
	var q byte
	for {
		c, err := s.read()
		if err != nil {
			return err
		}
		switch {
		case q != 0 && c == '\\' && q == '\'':
			if _, err := s.read(); err != nil {
				return err
			}
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '\'' || c == '"' || c == '`'):
			q = c
		case q == 0 && c == ';':
			return nil
		}
	}
}

func (s *sqlScanner) skipLine() error {
	for {
		c, err := s.read()
		if err != nil || c == '\n' {
			return err
		}
	}
}

func (s *sqlScanner) run() error {
	for {
		c, err := s.skipSpace()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.perr("read", err)
		}
		line0 := s.line
		if c == ';' {
			continue // empty statement, or the end of a /*! ... */; line
		}
		if c == '-' || c == '#' {
			// Comments: "-- ..." and "# ...".
			if c == '#' {
				err = s.skipLine()
			} else if d, _ := s.br.Peek(1); len(d) == 1 && d[0] == '-' {
				err = s.skipLine()
			} else {
				err = s.skipStatement()
			}
		} else if c == '/' {
			err = s.skipComment()
		} else if c == '\\' {
			err = s.skipLine() // psql meta-commands (\connect, \.)
		} else if isWordStart(c) {
			w, werr := s.word(c)
			if werr != nil {
				return s.perr("statement", werr)
			}
			switch u := strings.ToUpper(w); {
			case u == "INSERT" || u == "REPLACE":
				err = s.insert()
			case u == "CREATE":
				err = s.create()
			case u == "COPY":
				err = s.copyFrom()
			case sqlKeywords[u]:
				err = s.skipStatement()
			default:
				err = s.garbage(line0)
			}
		} else {
			err = s.garbage(line0)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var ee emitError
			if errors.As(err, &ee) {
				return err
			}
			var pe *ParseError
			if errors.As(err, &pe) {
				return err
			}
			return s.perr("statement", err)
		}
	}
}

// sqlKeywords start statements a dump may hold besides INSERT, CREATE
// and COPY; they are skipped to their ';'. A line starting with anything
// else is garbage: rejected alone, so it cannot swallow the next INSERT.
var sqlKeywords = map[string]bool{
	"SET": true, "LOCK": true, "UNLOCK": true, "DROP": true, "ALTER": true, "USE": true,
	"BEGIN": true, "COMMIT": true, "START": true, "SELECT": true, "DELETE": true, "UPDATE": true,
	"GRANT": true, "REVOKE": true, "TRUNCATE": true, "ANALYZE": true, "VACUUM": true,
	"COMMENT": true, "ROLLBACK": true, "SAVEPOINT": true, "RELEASE": true, "PRAGMA": true,
	"DELIMITER": true, "FLUSH": true, "REINDEX": true, "CLUSTER": true, "REFRESH": true,
	"DECLARE": true, "END": true, "WITH": true, "VALUES": true, "SHOW": true, "DESCRIBE": true,
}

// garbage skips the rest of a line that is no SQL and records it as a
// rejected row.
func (s *sqlScanner) garbage(line int64) error {
	if err := s.skipLine(); err != nil && err != io.EOF {
		return err
	}
	s.rejected++
	c := s.chunk("")
	c.rows = append(c.rows, Row{Loc: Loc{Member: s.info.Member, Line: line}, Reject: "not SQL"})
	if len(c.rows) >= s.r.o.RowsPerChunk {
		return s.flush("")
	}
	return nil
}

func isWordStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func (s *sqlScanner) perr(op string, err error) error {
	return &ParseError{Op: "sql " + op, Loc: Loc{Member: s.info.Member, Line: s.line}, Err: err}
}

func (s *sqlScanner) skipComment() error {
	c, err := s.read()
	if err != nil {
		return err
	}
	if c != '*' {
		return s.skipStatement()
	}
	prev := byte(0)
	for {
		c, err := s.read()
		if err != nil {
			return err
		}
		if prev == '*' && c == '/' {
			return nil
		}
		prev = c
	}
}

// create reads CREATE TABLE name (col type ..., KEY ...) and records the
// column names; other CREATE statements are skipped.
func (s *sqlScanner) create() error {
	for {
		c, err := s.skipSpace()
		if err != nil {
			return err
		}
		w, err := s.word(c)
		if err != nil {
			return err
		}
		switch strings.ToUpper(w) {
		case "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL":
			continue
		case "TABLE":
		default:
			return s.skipStatement()
		}
		break
	}
	t, err := s.name()
	if err != nil {
		return err
	}
	// IF NOT EXISTS
	if strings.EqualFold(t, "IF") {
		for i := 0; i < 2; i++ {
			if _, err := s.name(); err != nil {
				return err
			}
		}
		if t, err = s.name(); err != nil {
			return err
		}
	}
	c, err := s.skipSpace()
	if err != nil {
		return err
	}
	if c != '(' {
		return s.skipStatement()
	}
	var cols []string
	depth := 1
	atItem := true
	for depth > 0 {
		c, err := s.skipSpace()
		if err != nil {
			return err
		}
		switch {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 1:
			atItem = true
			continue
		case c == '\'':
			if _, err := s.quoted('\''); err != nil {
				return err
			}
		case atItem && depth == 1 && (isWordStart(c) || c == '`' || c == '"'):
			w, err := s.word(c)
			if err != nil {
				return err
			}
			switch strings.ToUpper(w) {
			case "PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN", "FULLTEXT", "CHECK", "SPATIAL":
			default:
				if c == '`' || c == '"' || !isSQLKeyword(w) {
					cols = append(cols, w)
				}
			}
		}
		atItem = false
	}
	s.cols[t] = cols
	return s.skipStatement()
}

func isSQLKeyword(w string) bool {
	switch strings.ToUpper(w) {
	case "LIKE", "AS":
		return true
	}
	return false
}

// quoted reads a string literal after its opening quote q: backslash
// escapes (MySQL) and doubled quotes.
func (s *sqlScanner) quoted(q byte) (string, error) {
	s.buf = s.buf[:0]
	for {
		c, err := s.read()
		if err != nil {
			return "", errSQLEOF
		}
		if c == '\\' {
			d, err := s.read()
			if err != nil {
				return "", errSQLEOF
			}
			s.buf = append(s.buf, unescape(d))
			continue
		}
		if c == q {
			if n, _ := s.br.Peek(1); len(n) == 1 && n[0] == q {
				s.read()
				s.buf = append(s.buf, q)
				continue
			}
			return string(s.buf), nil
		}
		s.buf = append(s.buf, c)
	}
}

// unescape maps the byte after a backslash (MySQL and COPY escapes).
func unescape(d byte) byte {
	switch d {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case '0':
		return 0
	case 'b':
		return '\b'
	case 'Z':
		return 0x1a
	}
	return d
}

// insert reads INSERT [IGNORE] INTO name [(cols)] VALUES (...),(...);
func (s *sqlScanner) insert() error {
	var t string
	for {
		c, err := s.skipSpace()
		if err != nil {
			return err
		}
		w, err := s.word(c)
		if err != nil {
			return err
		}
		u := strings.ToUpper(w)
		if u == "IGNORE" || u == "LOW_PRIORITY" || u == "DELAYED" || u == "HIGH_PRIORITY" {
			continue
		}
		if u != "INTO" {
			// INSERT without INTO: w is the table name.
			t = w
		}
		break
	}
	if t == "" {
		var err error
		if t, err = s.name(); err != nil {
			return err
		}
	}
	cols := s.cols[t]
	c, err := s.skipSpace()
	if err != nil {
		return err
	}
	if c == '(' {
		cols = nil
		for {
			c, err := s.skipSpace()
			if err != nil {
				return err
			}
			if c == ')' {
				break
			}
			if c == ',' {
				continue
			}
			w, err := s.word(c)
			if err != nil {
				return err
			}
			cols = append(cols, w)
		}
		if c, err = s.skipSpace(); err != nil {
			return err
		}
	}
	w, err := s.word(c)
	if err != nil {
		return err
	}
	if u := strings.ToUpper(w); u != "VALUES" && u != "VALUE" {
		return s.skipStatement()
	}
	for {
		c, err := s.skipSpace()
		if err != nil {
			return err
		}
		switch c {
		case ';':
			return nil
		case ',':
			continue
		case '(':
			line := s.line
			vals, err := s.tuple()
			if err != nil {
				if err == errSQLEOF {
					return s.perr("insert", err)
				}
				if rerr := s.reject(t, line, err.Error()); rerr != nil {
					return rerr
				}
				return s.skipStatement()
			}
			if err := s.row(t, cols, vals, line); err != nil {
				return err
			}
		default:
			if err := s.reject(t, s.line, fmt.Sprintf("unexpected %q in VALUES", c)); err != nil {
				return err
			}
			return s.skipStatement()
		}
	}
}

// tuple reads the values of one (...) after its '('.
func (s *sqlScanner) tuple() ([]string, error) {
	var vals []string
	for {
		c, err := s.skipSpace()
		if err != nil {
			return nil, errSQLEOF
		}
		switch {
		case c == '\'' || c == '"':
			v, err := s.quoted(c)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		case c == ')' && len(vals) == 0:
			return vals, nil
		default:
			// Unquoted literal: number, NULL, function call up to , or ).
			s.buf = s.buf[:0]
			depth := 0
			for {
				if c == '(' {
					depth++
				} else if c == ')' && depth > 0 {
					depth--
				} else if (c == ',' || c == ')') && depth == 0 {
					break
				} else if c == ';' && depth == 0 {
					return nil, errors.New("unterminated tuple")
				}
				s.buf = append(s.buf, c)
				if c, err = s.read(); err != nil {
					return nil, errSQLEOF
				}
			}
			v := strings.TrimSpace(string(s.buf))
			if strings.EqualFold(v, "NULL") {
				v = ""
			}
			vals = append(vals, v)
			s.unread()
		}
		c, err = s.skipSpace()
		if err != nil {
			return nil, errSQLEOF
		}
		if c == ')' {
			return vals, nil
		}
		if c != ',' {
			return nil, fmt.Errorf("unexpected %q after value", c)
		}
	}
}

// copyFrom reads COPY name [(cols)] FROM stdin; and its data lines up to \.
func (s *sqlScanner) copyFrom() error {
	s.dialect = "postgres"
	t, err := s.name()
	if err != nil {
		return err
	}
	cols := s.cols[t]
	// The rest of the statement, up to ';'.
	s.buf = s.buf[:0]
	for {
		c, err := s.read()
		if err != nil {
			return err
		}
		if c == ';' {
			break
		}
		s.buf = append(s.buf, c)
	}
	stmt := string(s.buf)
	if i := strings.IndexByte(stmt, '('); i >= 0 {
		if j := strings.IndexByte(stmt[i:], ')'); j >= 0 {
			cols = nil
			for _, c := range strings.Split(stmt[i+1:i+j], ",") {
				cols = append(cols, strings.Trim(strings.TrimSpace(c), `"`))
			}
		}
	}
	if !strings.Contains(strings.ToLower(stmt), "stdin") {
		return nil
	}
	if err := s.skipLine(); err != nil {
		return err
	}
	for {
		line := s.line
		l, err := s.br.ReadString('\n')
		if len(l) > 0 && l[len(l)-1] == '\n' {
			s.line++
		}
		if err != nil && l == "" {
			return s.perr("copy", errSQLEOF)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == `\.` {
			return nil
		}
		parts := strings.Split(l, "\t")
		vals := make([]string, len(parts))
		for i, p := range parts {
			if p == `\N` {
				continue
			}
			if strings.IndexByte(p, '\\') >= 0 {
				b := make([]byte, 0, len(p))
				for j := 0; j < len(p); j++ {
					if p[j] == '\\' && j+1 < len(p) {
						j++
						b = append(b, unescape(p[j]))
						continue
					}
					b = append(b, p[j])
				}
				p = string(b)
			}
			vals[i] = p
		}
		if len(cols) > 0 && len(vals) != len(cols) {
			if err := s.reject(t, line, fmt.Sprintf("%d fields, want %d", len(vals), len(cols))); err != nil {
				return err
			}
			continue
		}
		if err := s.row(t, cols, vals, line); err != nil {
			return err
		}
		if err != nil {
			return s.perr("copy", errSQLEOF)
		}
	}
}

func (s *sqlScanner) chunk(t string) *Chunk {
	c := s.pending[t]
	if c == nil {
		c = &Chunk{Info: s.info, Schema: s.info.Member + "/" + t, Table: t}
		s.pending[t] = c
	}
	return c
}

func (s *sqlScanner) row(t string, cols, vals []string, line int64) error {
	c := s.chunk(t)
	s.rowNo[t]++
	r := Row{Fields: vals, Names: cols, Loc: Loc{Member: s.info.Member, Table: t, Row: s.rowNo[t], Line: line}}
	if len(cols) > 0 && len(cols) != len(vals) {
		r.Reject = fmt.Sprintf("%d values, want %d", len(vals), len(cols))
		r.Raw = strings.Join(vals, ",")
	}
	c.rows = append(c.rows, r)
	if len(c.rows) >= s.r.o.RowsPerChunk {
		return s.flush(t)
	}
	return nil
}

func (s *sqlScanner) reject(t string, line int64, why string) error {
	c := s.chunk(t)
	s.rowNo[t]++
	c.rows = append(c.rows, Row{Loc: Loc{Member: s.info.Member, Table: t, Row: s.rowNo[t], Line: line}, Reject: why})
	if len(c.rows) >= s.r.o.RowsPerChunk {
		return s.flush(t)
	}
	return nil
}

func (s *sqlScanner) flush(t string) error {
	c := s.pending[t]
	delete(s.pending, t)
	if c == nil || len(c.rows) == 0 {
		return nil
	}
	// Names of the chunk: the first row's (they share the table's layout).
	c.Names = c.rows[0].Names
	return s.r.send(c)
}

package records

import (
	"bytes"
	"unsafe"
)

// delimParser splits delimited text. Fields of unquoted values alias the
// chunk's bytes (which are never modified once a chunk is made); quoted
// values with doubled quotes are copied.
type delimParser struct {
	delim []byte
	quote bool // RFC 4180 quoting (only with single-byte delimiters)
}

// bstr returns b as a string without copying; b must never change after.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// record parses the record starting at data[pos]. It returns the fields
// (appended to fields[:0]), the position after the record, the number of
// newlines consumed, and ok=false for an unterminated quoted field (the
// rest of data then belongs to the bad record).
func (p *delimParser) record(data []byte, pos int, fields []string) ([]string, int, int, bool) {
	fields = fields[:0]
	n := len(data)
	lines := 0
	le := -1 // end of the current line (index of '\n' or n)
	for {
		if p.quote && pos < n && data[pos] == '"' {
			val, np, nl, closed := parseQuoted(data, pos)
			lines += nl
			if !closed {
				return fields, n, lines, false
			}
			pos = np
			// Lazy quotes: text after the closing quote up to the next
			// delimiter or line end still belongs to the field.
			if pos < n && data[pos] != '\n' && data[pos] != '\r' && !bytes.HasPrefix(data[pos:], p.delim) {
				e := pos
				for e < n && data[e] != '\n' && !bytes.HasPrefix(data[e:], p.delim) {
					e++
				}
				val += bstr(bytes.TrimRight(data[pos:e], "\r"))
				pos = e
			}
			fields = append(fields, val)
			le = -1
			if pos >= n {
				return fields, n, lines, true
			}
			if bytes.HasPrefix(data[pos:], p.delim) {
				pos += len(p.delim)
				continue
			}
			if data[pos] == '\r' {
				pos++
			}
			if pos < n && data[pos] == '\n' {
				pos++
				lines++
			}
			return fields, pos, lines, true
		}
		if le < 0 {
			if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
				le = pos + i
			} else {
				le = n
			}
		}
		var d int
		if len(p.delim) == 1 {
			d = bytes.IndexByte(data[pos:le], p.delim[0])
		} else {
			d = bytes.Index(data[pos:le], p.delim)
		}
		if d >= 0 {
			fields = append(fields, bstr(data[pos:pos+d]))
			pos += d + len(p.delim)
			continue
		}
		f := data[pos:le]
		if len(f) > 0 && f[len(f)-1] == '\r' {
			f = f[:len(f)-1]
		}
		fields = append(fields, bstr(f))
		if le < n {
			lines++
			return fields, le + 1, lines, true
		}
		return fields, n, lines, true
	}
}

// parseQuoted parses the quoted field at data[pos] (a '"'). It returns the
// value, the position after the closing quote, newlines inside, and
// whether the quote was closed.
func parseQuoted(data []byte, pos int) (string, int, int, bool) {
	i := pos + 1
	var buf []byte
	start := i
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return "", len(data), bytes.Count(data[pos:], []byte{'\n'}), false
		}
		if i+j+1 < len(data) && data[i+j+1] == '"' {
			buf = append(buf, data[start:i+j+1]...)
			i += j + 2
			start = i
			continue
		}
		end := i + j
		nl := bytes.Count(data[pos:end], []byte{'\n'})
		if buf == nil {
			return bstr(data[start:end]), end + 1, nl, true
		}
		buf = append(buf, data[start:end]...)
		return string(buf), end + 1, nl, true
	}
}

// lastBoundary returns the index just after the last record boundary in
// buf (which starts at a boundary), or -1 when buf holds no complete
// record. With quoting, newlines inside quoted fields are not boundaries;
// a quote opens a field only at the start of a record or after a delimiter.
func (p *delimParser) lastBoundary(buf []byte) int {
	if !p.quote {
		return bytes.LastIndexByte(buf, '\n')
	}
	last := -1
	i := 0
	inQ := false
	// The parser ends a record at a bare CR only right after a quoted
	// field's closing quote: a quote there opens the next record's field.
	crStart := -1
	for i < len(buf) {
		if inQ {
			j := bytes.IndexByte(buf[i:], '"')
			if j < 0 {
				return last
			}
			if i+j+1 < len(buf) && buf[i+j+1] == '"' {
				i += j + 2
				continue
			}
			if i+j+1 == len(buf) {
				// Cannot tell a closing quote from the first of a pair.
				return last
			}
			inQ = false
			i += j + 1
			if i < len(buf) && buf[i] == '\r' {
				crStart = i + 1
			}
			continue
		}
		q := bytes.IndexByte(buf[i:], '"')
		if q < 0 {
			if nl := bytes.LastIndexByte(buf[i:], '\n'); nl >= 0 {
				last = i + nl
			}
			return last
		}
		q += i
		if nl := bytes.LastIndexByte(buf[i:q], '\n'); nl >= 0 {
			last = i + nl
		}
		if q == 0 || buf[q-1] == '\n' || q == crStart || bytes.HasSuffix(buf[:q], p.delim) {
			inQ = true
		}
		i = q + 1
	}
	return last
}

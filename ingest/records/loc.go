package records

import "strconv"

// Loc is where a row was found. Zero fields are omitted from its string.
type Loc struct {
	Member string // zip member name ("" when not in a zip)
	Table  string // SQL or SQLite table
	Line   int64  // 1-based line in the decoded text of the member
	Row    int64  // 1-based row in a table (SQL, SQLite)
}

// String formats the location as "member a.csv table t row 5 line 12".
func (l Loc) String() string {
	b := make([]byte, 0, 48)
	return string(l.Append(b))
}

// Append appends the String form to b.
func (l Loc) Append(b []byte) []byte {
	sep := func() {
		if len(b) > 0 {
			b = append(b, ' ')
		}
	}
	if l.Member != "" {
		b = append(b, "member "...)
		b = append(b, strconv.Quote(l.Member)...)
	}
	if l.Table != "" {
		sep()
		b = append(b, "table "...)
		b = append(b, strconv.Quote(l.Table)...)
	}
	if l.Row > 0 {
		sep()
		b = append(b, "row "...)
		b = strconv.AppendInt(b, l.Row, 10)
	}
	if l.Line > 0 {
		sep()
		b = append(b, "line "...)
		b = strconv.AppendInt(b, l.Line, 10)
	}
	if len(b) == 0 {
		b = append(b, "start"...)
	}
	return b
}

package records

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/evidx/evidx/ingest/identity"
)

// Format kinds.
const (
	KindDelimited = "delimited"
	KindJSONL     = "jsonl"
	KindSQL       = "sql"
	KindSQLite    = "sqlite"
	KindText      = "text"
)

// Format is what the sniffer decided about a text stream.
type Format struct {
	Kind   string
	Delim  string   // delimited: the field separator, possibly several bytes
	Quote  bool     // delimited: RFC 4180 quoting is honoured
	Header []string // delimited: the header record, nil when there is none
	Fields int      // delimited: the usual number of fields per record
}

// Name is the format as reported: csv, tsv, delimited(----), jsonl,
// mysql, postgres, sqlite or text.
func (f Format) Name() string {
	switch f.Kind {
	case KindDelimited:
		switch f.Delim {
		case ",":
			return "csv"
		case "\t":
			return "tsv"
		}
		return "delimited(" + f.Delim + ")"
	}
	return f.Kind
}

// delimCandidates are tried in order; the first that splits the sample
// into a consistent number (≥ 2) of fields wins. Multi-character ones come
// first: "----" also contains "-".
var delimCandidates = []string{"----", "\t", ",", "|", ";", "||", "---", " "}

var sqlStmt = regexp.MustCompile(`(?im)^\s*(INSERT\s+(IGNORE\s+)?INTO|REPLACE\s+INTO|CREATE\s+TABLE|COPY\s+\S+.*FROM\s+stdin)`)

// FormatNames are the values Options.Format takes.
var FormatNames = []string{"csv", "tsv", "delimited", "jsonl", "sql", "text"}

// formatOf is the format of a decoded sample: sniffed, with what o
// overrides applied.
func formatOf(sample []byte, atEOF bool, o *Options) Format {
	delim := o.Delimiter
	switch o.Format {
	case "jsonl":
		return Format{Kind: KindJSONL}
	case "sql":
		return Format{Kind: KindSQL}
	case "text":
		return Format{Kind: KindText}
	case "csv":
		delim = ","
	case "tsv":
		delim = "\t"
	}
	if delim == "" {
		f := sniffFormat(sample, atEOF)
		if o.NoHeader {
			f.Header = nil
		}
		return f
	}
	if !atEOF {
		if i := bytes.LastIndexByte(sample, '\n'); i >= 0 {
			sample = sample[:i+1]
		}
	}
	p := delimParser{delim: []byte(delim), quote: len(delim) == 1 && delim != " "}
	recs := sampleRecords(&p, sample, 200)
	f := Format{Kind: KindDelimited, Delim: delim, Quote: p.quote, Fields: modeFields(recs)}
	if !o.NoHeader && len(recs) > 0 && hasHeader(recs) {
		f.Header = cloneStrings(recs[0])
	}
	return f
}

// modeFields is the most common number of fields of recs (the larger on a tie).
func modeFields(recs [][]string) int {
	counts := map[int]int{}
	for _, r := range recs {
		counts[len(r)]++
	}
	mode, best := 0, 0
	for n, c := range counts {
		if c > best || c == best && n > mode {
			mode, best = n, c
		}
	}
	return mode
}

// cloneStrings copies ss and their bytes: fields parsed from a sample
// alias a reader's buffer, which later reads overwrite.
func cloneStrings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

// sniffFormat decides the format of a decoded sample (the first bytes of
// a stream; atEOF when it is the whole stream).
func sniffFormat(sample []byte, atEOF bool) Format {
	if !atEOF {
		// Only whole lines count.
		if i := bytes.LastIndexByte(sample, '\n'); i >= 0 {
			sample = sample[:i+1]
		}
	}
	lines := sampleLines(sample, 200)
	if len(lines) == 0 {
		return Format{Kind: KindText}
	}
	if j := jsonShare(lines); j >= 0.6 {
		return Format{Kind: KindJSONL}
	}
	if loc := sqlStmt.FindIndex(sample); loc != nil {
		return Format{Kind: KindSQL}
	}
	for _, d := range delimCandidates {
		p := delimParser{delim: []byte(d), quote: len(d) == 1 && d != " "}
		recs := sampleRecords(&p, sample, 200)
		if len(recs) == 0 {
			continue
		}
		mode := modeFields(recs)
		best := 0
		for _, r := range recs {
			if len(r) == mode {
				best++
			}
		}
		share := float64(best) / float64(len(recs))
		if mode < 2 || share < 0.8 || len(recs) < 2 && !atEOF {
			continue
		}
		if d == " " && share < 0.95 {
			continue
		}
		f := Format{Kind: KindDelimited, Delim: d, Quote: p.quote, Fields: mode}
		if hasHeader(recs) {
			f.Header = cloneStrings(recs[0])
		}
		return f
	}
	return Format{Kind: KindText}
}

// sampleLines returns up to n non-empty lines of s.
func sampleLines(s []byte, n int) [][]byte {
	var out [][]byte
	for len(s) > 0 && len(out) < n {
		i := bytes.IndexByte(s, '\n')
		var l []byte
		if i < 0 {
			l, s = s, nil
		} else {
			l, s = s[:i], s[i+1:]
		}
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func jsonShare(lines [][]byte) float64 {
	ok := 0
	for _, l := range lines {
		if l[0] == '{' && json.Valid(l) {
			ok++
		}
	}
	return float64(ok) / float64(len(lines))
}

// sampleRecords parses up to n non-blank records of sample with p.
func sampleRecords(p *delimParser, sample []byte, n int) [][]string {
	var out [][]string
	pos := 0
	for pos < len(sample) && len(out) < n {
		f, next, _, ok := p.record(sample, pos, nil)
		if !ok {
			break
		}
		pos = next
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue
		}
		out = append(out, f)
	}
	return out
}

// hasHeader decides whether the first record is a header: one of its
// fields is a known column name, or none of its fields is an identifier
// while later records' fields are.
func hasHeader(recs [][]string) bool {
	first := recs[0]
	for _, f := range first {
		if _, ok := identity.HeaderRole(f); ok {
			return true
		}
	}
	if validCount(first) > 0 {
		return false
	}
	for _, f := range first {
		if isNumeric(f) {
			return false
		}
	}
	later := 0
	for _, r := range recs[1:] {
		later += validCount(r)
	}
	return later > 0
}

func validCount(rec []string) int {
	n := 0
	for _, f := range rec {
		for _, k := range identity.Kinds() {
			if _, r := identity.Normalize(k, f); r == identity.Valid {
				n++
				break
			}
		}
	}
	return n
}

func isNumeric(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' && s[i] != '-' && s[i] != '+' {
			return false
		}
	}
	return true
}

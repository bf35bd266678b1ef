package ingest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
)

// How a column's role was decided, as reported in ColumnStats.DecidedBy.
const (
	ByOverride = "override" // --column NAME_OR_INDEX=KIND
	ByHeader   = "header"   // a header synonym names the kind
	ByValues   = "values"   // most sampled values validate as the kind
)

// NoKind is the Kind reported for a column that holds no identity.
const NoKind identity.Kind = "none"

// ColumnStats says which kind a column was taken as, why, and how well its
// values bore that out over the whole file.
type ColumnStats struct {
	Schema    string        `json:"schema,omitempty"` // zip member and/or table
	Name      string        `json:"name,omitempty"`   // header, SQL column or JSON key path
	Index     int           `json:"index"`            // 1-based field position (0 for JSON key paths)
	Kind      identity.Kind `json:"kind"`             // "" when the column is no identity
	DecidedBy string        `json:"decided_by"`
	// SampleShare is the share of the sampled values that validated as
	// Kind (or, for a column left without a kind, as its best kind).
	SampleShare float64 `json:"sample_share"`
	// ValidShare is, for a column with a kind, the share of its non-empty
	// values over the whole file that were valid identities.
	ValidShare float64 `json:"valid_share"`
	Values     int64   `json:"values"` // non-empty values seen (whole file)
}

// maxColumnsReported bounds the columns listed per schema (a JSON file
// may have hundreds of key paths); identity columns always come first.
const maxColumnsReported = 64

// pendingLimit bounds the chunks held back while a schema's roles are
// sampled: a file whose first records are mostly rejects still flows.
const pendingLimit = 256

// columnKey names a column within its schema: by name when the data has
// names, else by 1-based position.
func columnKey(name string, idx int) string {
	if name != "" {
		return nameKey(name)
	}
	return "#" + strconv.Itoa(idx)
}

// schemaState is the role decision of one schema. It is touched only by
// the reader goroutine, except roles, which workers read once published.
type schemaState struct {
	name     string
	roles    *roles
	pending  []*records.Chunk
	sampled  int
	samplers map[string]*identity.RoleSampler
	order    []colRef // first-seen order of sampled columns
	// late holds the workers' samples of columns without a kind, from
	// rows over the whole file, to catch roles that would change part-way.
	late map[string]*identity.RoleSampler
	cols []ColumnStats
}

type colRef struct {
	key   string
	name  string
	index int
}

// sampleRows adds up to limit good rows of c to samplers (adding columns
// to order when it is non-nil); it returns how many rows it took.
func sampleRows(c *records.Chunk, limit int, samplers map[string]*identity.RoleSampler, order *[]colRef) int {
	n := 0
	_ = c.Rows(func(r *records.Row) error {
		if r.Reject != "" || r.Text || n >= limit {
			return nil
		}
		n++
		for i, v := range r.Fields {
			name := ""
			if r.Names != nil && i < len(r.Names) {
				name = r.Names[i]
			}
			k := columnKey(name, i+1)
			s := samplers[k]
			if s == nil {
				s = new(identity.RoleSampler)
				samplers[k] = s
				if order != nil {
					idx := i + 1
					if r.Names != nil && c.Info.Format.Kind == records.KindJSONL {
						idx = 0
					}
					*order = append(*order, colRef{key: k, name: nameKey(name), index: idx})
				}
			}
			s.Add(v)
		}
		return nil
	})
	return n
}

// admit takes each chunk from the reader. Chunks of a schema whose roles
// are not decided yet are held until SampleRows good rows have been seen
// (or pendingLimit chunks), so the decision rests on the same first rows
// whatever the chunk size; then they go to send with the rest.
func (p *pipeline) admit(c *records.Chunk, send func(*records.Chunk) error) error {
	if c.Info.Format.Kind == records.KindText {
		return send(c)
	}
	st := p.schemas[c.Schema]
	if st == nil {
		st = &schemaState{name: c.Schema, samplers: map[string]*identity.RoleSampler{}}
		p.schemas[c.Schema] = st
		p.schemaOrder = append(p.schemaOrder, st)
	}
	if st.roles != nil {
		return send(c)
	}
	st.sampled += sampleRows(c, p.opts.SampleRows-st.sampled, st.samplers, &st.order)
	st.pending = append(st.pending, c)
	if st.sampled < p.opts.SampleRows && len(st.pending) < pendingLimit {
		return nil
	}
	return p.release(st, send)
}

// finish decides the schemas still sampling at the end of the stream and
// sends what they held.
func (p *pipeline) finish(send func(*records.Chunk) error) error {
	for _, st := range p.schemaOrder {
		if st.roles == nil {
			if err := p.release(st, send); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *pipeline) release(st *schemaState, send func(*records.Chunk) error) error {
	p.decide(st)
	pending := st.pending
	st.pending = nil
	for _, c := range pending {
		if err := send(c); err != nil {
			return err
		}
	}
	return nil
}

// override returns the kind --column gave a column, by name or position.
func (p *pipeline) override(name string, index int) (identity.Kind, bool) {
	if len(p.opts.Columns) == 0 {
		return "", false
	}
	if name != "" {
		if k, ok := p.opts.Columns[name]; ok {
			return k, true
		}
		if k, ok := p.opts.Columns[nameKey(name)]; ok {
			return k, true
		}
	}
	if index > 0 {
		k, ok := p.opts.Columns[strconv.Itoa(index)]
		return k, ok
	}
	return "", false
}

// decide settles st's roles: an override, else a header naming an
// identity kind, else the sampled values (which must mostly validate, so
// decoy numeric columns are not taken).
func (p *pipeline) decide(st *schemaState) {
	rs := &roles{byName: map[string]identity.Kind{}}
	byIndex := false
	var names []string
	if len(st.pending) > 0 {
		names = st.pending[0].Names
	}
	for _, ref := range st.order {
		if ref.name == "" {
			byIndex = true
		}
	}
	for _, ref := range st.order {
		s := st.samplers[ref.key]
		name := ref.name
		if name == "" && ref.index > 0 && ref.index <= len(names) {
			name = names[ref.index-1]
		}
		cs := ColumnStats{Schema: st.name, Name: name, Index: ref.index}
		if k, ok := p.override(name, ref.index); ok {
			cs.Kind, cs.DecidedBy = k, ByOverride
		} else if k, ok := identity.HeaderRole(name); ok && k.IsIdentity() && name != "" {
			cs.Kind, cs.DecidedBy = k, ByHeader
		} else {
			cs.Kind, cs.DecidedBy = s.Role(), ByValues
		}
		if cs.Kind != "" {
			cs.SampleShare = s.Share(cs.Kind)
		} else {
			_, cs.SampleShare = s.Best()
		}
		st.cols = append(st.cols, cs)
		if byIndex {
			for len(rs.byIndex) < ref.index {
				rs.byIndex = append(rs.byIndex, "")
			}
			if ref.index > 0 {
				rs.byIndex[ref.index-1] = cs.Kind
			}
		} else {
			rs.byName[ref.key] = cs.Kind
		}
	}
	if !byIndex {
		rs.byIndex = nil
	}
	p.rolesMu.Lock()
	p.roles[st.name] = rs
	st.roles = rs
	p.rolesMu.Unlock()
}

// lateEvery: the rows whose line (or table row) number is a multiple of
// lateEvery are sampled again in the columns left without a
// kind (by line, so the same rows whatever the chunking or workers).
const lateEvery = 16

// columnProblems names what the column statistics make doubtful: a
// column whose values mostly fail the kind it was given, and one left
// without a kind whose later values validate as one (its role would have
// changed part-way through the file).
func columnProblems(st *schemaState) []string {
	var out []string
	where := ""
	if st.name != "" {
		where = " of " + st.name
	}
	for _, c := range st.cols {
		if c.Kind != "" && c.Values >= 20 && c.ValidShare < 0.5 {
			out = append(out, fmt.Sprintf("column %s%s taken as %s (%s) but only %.0f%% of its %d values are valid", c.label(), where, c.Kind, c.DecidedBy, 100*c.ValidShare, c.Values))
		}
	}
	for _, c := range st.cols {
		if c.Kind != "" || st.late == nil {
			continue
		}
		key := columnKey(c.Name, c.Index)
		if st.roles.byIndex != nil {
			key = columnKey("", c.Index)
		}
		s := st.late[key]
		if s == nil || s.Values() < 20 {
			continue
		}
		// A decoy column (order numbers, most of which look like phones)
		// is as doubtful throughout: only a share well above the one of
		// the first rows means the column changed.
		if k, share := s.Best(); k != "" && share >= 0.3 && share >= c.SampleShare+0.3 {
			out = append(out, fmt.Sprintf("column %s%s held no identity in its first rows but %.0f%% of its values sampled over the file are %s: its role would change part-way (force it with --column)", c.label(), where, 100*share, k))
		}
	}
	return out
}

func (c ColumnStats) label() string {
	switch {
	case c.Name != "" && c.Index > 0:
		return fmt.Sprintf("%d (%q)", c.Index, c.Name)
	case c.Name != "":
		return strconv.Quote(c.Name)
	}
	return strconv.Itoa(c.Index)
}

// ParseColumns parses --column values "NAME_OR_INDEX=KIND" (INDEX 1-based)
// into the map Options.Columns takes. KIND is an identity kind or "none".
func ParseColumns(specs []string) (map[string]identity.Kind, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := map[string]identity.Kind{}
	for _, s := range specs {
		i := strings.LastIndexByte(s, '=')
		if i <= 0 || i == len(s)-1 {
			return nil, fmt.Errorf("--column %q: want NAME_OR_INDEX=KIND", s)
		}
		col, kind := strings.TrimSpace(s[:i]), identity.Kind(strings.TrimSpace(s[i+1:]))
		if kind == "none" {
			kind = ""
		} else if !kind.IsIdentity() {
			var names []string
			for _, k := range identity.Kinds() {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("--column %q: kind %q is none of %s, none", s, kind, strings.Join(names, ", "))
		}
		if n, err := strconv.Atoi(col); err == nil && n <= 0 {
			return nil, fmt.Errorf("--column %q: positions start at 1", s)
		}
		out[col] = kind
	}
	return out, nil
}

package serve

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// page is what every template gets.
type page struct {
	L        string
	Title    string
	Path     string // the request path, for the language switch
	Case     custody.Meta
	Progress *progress
	Download bool
	Data     any
}

// T translates an interface string.
func (p page) T(key string) string { return translate(p.L, key) }

// Other is the language the switch leads to.
func (p page) Other() string {
	if p.L == "zh" {
		return "en"
	}
	return "zh"
}

var pageNames = []string{"overview", "search", "sources", "source", "overlap", "where", "evidence", "item", "report", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"n":     func(v any) string { return groupDigits(toInt64(v)) },
		"n64":   func(v any) string { return groupDigits(toInt64(v)) },
		"mul24": func(i int) int { return i * 24 },
		"mul18": func(i int) int { return i * 18 },
		"mul5":  func(i int) int { return i * 5 },
		"heatLegend": func() []string {
			return []string{heat(0), heat(.25), heat(.5), heat(.75), heat(1)}
		},
		"deref": func(b *bool) bool { return b != nil && *b },
		"bytes": func(n int64) string {
			const u = "KMGTPE"
			if n < 1024 {
				return strconv.FormatInt(n, 10) + " B"
			}
			f, i := float64(n)/1024, 0
			for f >= 1024 && i < len(u)-1 {
				f /= 1024
				i++
			}
			return fmt.Sprintf("%.1f %ciB", f, u[i])
		},
		"add":   func(a, b int) int { return a + b },
		"kinds": func() []identity.Kind { return identity.Kinds() },
		"get":   func(m map[identity.Kind]int64, k identity.Kind) int64 { return m[k] },
		"known": func(s index.SourceStats, k identity.Kind) int64 { return s.Unique[k] - s.New[k] },
		"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("serve: template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case int32:
		return int64(x)
	case uint64:
		return int64(x)
	}
	return 0
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// render executes a page into a buffer first, so a failure half-way
// answers 500 instead of a cut page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	p := page{L: lang(r), Title: title, Path: r.URL.Path, Case: s.c.Meta(), Progress: s.progress(), Download: s.opts.AllowDownload, Data: data}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		log.Printf("serve: %s: %v", r.URL.Path, err)
		http.Error(w, "500 page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		log.Printf("serve: %s: %v", r.URL.Path, err)
	}
	w.WriteHeader(code)
	s.render(w, r, "error", http.StatusText(code), map[string]any{"Code": code, "Err": err.Error()})
}

// overview --------------------------------------------------------------

type overviewData struct {
	Stats     index.Stats
	Kinds     []identity.Kind
	Evidence  int
	Verify    *verifyInfo
	Persons   *PersonStats
	Loading   int
	Computing bool
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.data.stats(ctx)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	d := overviewData{Stats: st, Kinds: identity.Kinds(), Verify: s.data.lastVerify()}
	for _, src := range st.Sources {
		if src.Status != "done" {
			d.Loading++
		}
	}
	if err := s.c.DB().QueryRowContext(ctx, `SELECT count(*) FROM evidence`).Scan(&d.Evidence); err != nil {
		s.fail(w, r, 500, err)
		return
	}
	if s.opts.Persons != nil {
		if ps, ok, err := s.opts.Persons.Stats(ctx); err == nil && ok {
			d.Persons = &ps
		}
	}
	s.render(w, r, "overview", translate(lang(r), "overview"), d)
}

func (s *Server) progressJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.progress())
}

// search ----------------------------------------------------------------

// maxValues bounds the values of one search.
const maxValues = 1000

type hitView struct {
	index.Hit
	SourceID int64
}

type matchView struct {
	Query   string
	Kind    identity.Kind
	Value   string
	Hits    []hitView
	Persons []Person
}

type searchData struct {
	Q        string
	Asked    int
	Matches  []matchView
	NotFound []string
	Invalid  []string
	Hidden   int // hits in sources still loading
	Millis   int64
	Truncate bool
}

// splitValues takes one value per line (also ';' and tabs, as pasted from
// a spreadsheet), trimmed, blanks dropped.
func splitValues(q string) []string {
	var out []string
	for v := range strings.FieldsFuncSeq(q, func(r rune) bool { return r == '\n' || r == '\r' || r == ';' || r == '\t' }) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	q := r.FormValue("q")
	d := searchData{Q: q}
	values := splitValues(q)
	if len(values) > maxValues {
		values, d.Truncate = values[:maxValues], true
	}
	d.Asked = len(values)
	if len(values) == 0 {
		s.render(w, r, "search", translate(lang(r), "search"), d)
		return
	}
	start := time.Now()
	ctx := r.Context()
	// Logged before anything is looked up: a lookup that cannot be
	// recorded is not made.
	if err := s.logAccess(r, "search", map[string]any{"values": values}); err != nil {
		s.fail(w, r, 500, err)
		return
	}
	srcs, err := s.ix.Sources(ctx)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	bySHA := map[string]int64{}
	for _, src := range srcs {
		bySHA[src.SHA256] = src.ID
	}
	se := s.ix.NewSearcher()
	defer se.Close()
	for _, q := range values {
		found, invalid := false, false
		for _, k := range identity.Kinds() {
			v, res := identity.Normalize(k, q)
			if res == identity.Invalid {
				invalid = true
			}
			if res != identity.Valid {
				continue
			}
			m, ok, err := se.Lookup(ctx, k, v)
			if err != nil {
				s.fail(w, r, 500, err)
				return
			}
			if !ok {
				continue
			}
			mv := matchView{Query: q, Kind: k, Value: v}
			for _, h := range m.Sources {
				if h.Status != "" { // still loading: not yet part of the case
					d.Hidden++
					continue
				}
				mv.Hits = append(mv.Hits, hitView{Hit: h, SourceID: bySHA[h.SHA256]})
			}
			if len(mv.Hits) == 0 {
				continue
			}
			if s.opts.Persons != nil {
				if ps, err := s.opts.Persons.Of(ctx, string(k), v); err == nil {
					mv.Persons = ps
				}
			}
			found = true
			d.Matches = append(d.Matches, mv)
		}
		switch {
		case found:
		case invalid:
			d.Invalid = append(d.Invalid, q)
		default:
			d.NotFound = append(d.NotFound, q)
		}
	}
	d.Millis = time.Since(start).Milliseconds()
	s.render(w, r, "search", translate(lang(r), "search"), d)
}

// sources ---------------------------------------------------------------

type sourceRow struct {
	index.SourceStats
	Roles []columnRole
}

type columnRole struct{ Name, Role string }

// roles reads the column list a reader reported: objects with a name and
// a role (other shapes are shown raw).
func roles(raw json.RawMessage) []columnRole {
	if len(raw) == 0 {
		return nil
	}
	var list []map[string]any
	if json.Unmarshal(raw, &list) != nil {
		return []columnRole{{Name: string(raw)}}
	}
	var out []columnRole
	for _, c := range list {
		name := fmt.Sprint(firstOf(c, "name", "header", "column", "index"))
		role := fmt.Sprint(firstOf(c, "role", "kind"))
		out = append(out, columnRole{Name: name, Role: role})
	}
	return out
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			return v
		}
	}
	return ""
}

func (s *Server) sources(w http.ResponseWriter, r *http.Request) {
	st, err := s.data.stats(r.Context())
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	rows := make([]sourceRow, len(st.Sources))
	for i, src := range st.Sources {
		rows[i] = sourceRow{SourceStats: src, Roles: roles(src.Columns)}
	}
	s.render(w, r, "sources", translate(lang(r), "sources"), map[string]any{"Sources": rows, "Kinds": identity.Kinds()})
}

func (s *Server) source(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, 404, errNotFound)
		return
	}
	st, err := s.data.stats(r.Context())
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	for _, src := range st.Sources {
		if src.ID == id {
			var shared []index.Overlap
			for _, o := range st.Overlap {
				if o.AID == id || o.BID == id {
					shared = append(shared, o)
				}
			}
			s.render(w, r, "source", src.Name, map[string]any{"S": sourceRow{SourceStats: src, Roles: roles(src.Columns)}, "Kinds": identity.Kinds(), "Shared": shared})
			return
		}
	}
	s.fail(w, r, 404, errNotFound)
}

// overlap ---------------------------------------------------------------

// maxMatrix bounds the sources in the heat map (the largest are kept).
const maxMatrix = 40

type cell struct {
	X, Y   int
	Shared int64
	Fill   string
	Title  string
}

type matrix struct {
	Names []string
	IDs   []int64
	Cells []cell
	Size  int // SVG width/height
	Cut   int // sources left out
	Pairs []index.Overlap
	Top   string // the share the darkest colour stands for
}

func (s *Server) overlap(w http.ResponseWriter, r *http.Request) {
	st, err := s.data.stats(r.Context())
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	var srcs []index.SourceStats
	for _, src := range st.Sources {
		if src.Status == "done" {
			srcs = append(srcs, src)
		}
	}
	total := func(s index.SourceStats) (n int64) {
		for _, v := range s.Unique {
			n += v
		}
		return n
	}
	m := matrix{}
	if len(srcs) > maxMatrix {
		slices.SortStableFunc(srcs, func(a, b index.SourceStats) int { return int(total(b) - total(a)) })
		m.Cut = len(srcs) - maxMatrix
		srcs = srcs[:maxMatrix]
		slices.SortFunc(srcs, func(a, b index.SourceStats) int { return int(a.ID - b.ID) })
	}
	pos := map[int64]int{}
	for i, src := range srcs {
		pos[src.ID] = i
		m.Names = append(m.Names, fmt.Sprintf("#%d %s", src.ID, src.Name))
		m.IDs = append(m.IDs, src.ID)
	}
	type pair struct {
		a, b int
		o    index.Overlap
		f    float64
	}
	var ps []pair
	top := 0.0
	for _, o := range st.Overlap {
		a, okA := pos[o.AID]
		b, okB := pos[o.BID]
		if !okA || !okB || o.Shared == 0 {
			continue
		}
		f := 0.0
		if small := min(total(srcs[a]), total(srcs[b])); small > 0 {
			f = float64(o.Shared) / float64(small)
		}
		top = max(top, f)
		ps = append(ps, pair{a, b, o, f})
	}
	// Colour is scaled to the largest share in the matrix, so small
	// overlaps still show; the title (and the table) give the numbers.
	for _, p := range ps {
		fill := heat(p.f / top)
		title := fmt.Sprintf("%s × %s: %s (%.1f%% of the smaller)", srcs[p.a].Name, srcs[p.b].Name, groupDigits(p.o.Shared), p.f*100)
		m.Cells = append(m.Cells, cell{X: p.b, Y: p.a, Shared: p.o.Shared, Fill: fill, Title: title}, cell{X: p.a, Y: p.b, Shared: p.o.Shared, Fill: fill, Title: title})
		m.Pairs = append(m.Pairs, p.o)
	}
	m.Top = fmt.Sprintf("%.1f%%", top*100)
	slices.SortStableFunc(m.Pairs, func(a, b index.Overlap) int { return int(b.Shared - a.Shared) })
	m.Size = len(srcs) * 24
	s.render(w, r, "overlap", translate(lang(r), "overlap"), m)
}

// heat maps 0..1 to white..dark red.
func heat(f float64) string {
	f = min(max(f, 0), 1)
	g := int(240 - 210*f)
	return fmt.Sprintf("rgb(%d,%d,%d)", 255-int(75*f), g, g)
}

// where -----------------------------------------------------------------

func (s *Server) where(w http.ResponseWriter, r *http.Request) {
	g, err := s.data.geo(r.Context())
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	rows := g.rows()
	bands := []string{"0–17", "18–29", "30–44", "45–59", "60+"}
	s.render(w, r, "where", translate(lang(r), "where"), map[string]any{"Rows": rows, "Stale": g.Stale, "Total": g.Total, "Year": g.Year, "Bands": bands, "ChartH": len(rows)*18 + 4})
}

// evidence --------------------------------------------------------------

func (s *Server) evidenceList(w http.ResponseWriter, r *http.Request) {
	evs, err := s.c.Evidence(r.Context())
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	s.render(w, r, "evidence", translate(lang(r), "evidence"), evs)
}

type fileRow struct {
	ID                   int64
	Volume               int
	Path, Type           string
	Size                 int64
	Deleted, Recoverable bool
	SHA256, Mtime        string
	Object               bool
}

type carvedRow struct {
	ID             int64
	Offset, Length int64
	Type, SHA256   string
	Object         bool
}

// filesPage is how many files one page lists.
const filesPage = 200

func (s *Server) evidenceItem(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	evs, err := s.c.Evidence(ctx)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	i := slices.IndexFunc(evs, func(e custody.Evidence) bool { return e.ID == id })
	if i < 0 {
		s.fail(w, r, 404, errNotFound)
		return
	}
	vols, err := s.c.Volumes(ctx, id)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	off, _ := strconv.Atoi(r.URL.Query().Get("from"))
	off = max(off, 0)
	onlyDeleted := r.URL.Query().Get("deleted") == "1"
	where := `evidence_id=?`
	if onlyDeleted {
		where += ` AND deleted=1`
	}
	var nFiles, nDeleted int
	s.c.DB().QueryRowContext(ctx, `SELECT count(*), coalesce(sum(deleted),0) FROM files WHERE evidence_id=?`, id).Scan(&nFiles, &nDeleted)
	files, err := queryRows(ctx, s.c.DB(), `SELECT id, volume, path, size, type, deleted, recoverable, sha256, coalesce(mtime,''), object IS NOT NULL FROM files WHERE `+where+` ORDER BY id LIMIT ? OFFSET ?`,
		func(rs *sql.Rows) (f fileRow, err error) {
			err = rs.Scan(&f.ID, &f.Volume, &f.Path, &f.Size, &f.Type, &f.Deleted, &f.Recoverable, &f.SHA256, &f.Mtime, &f.Object)
			return
		}, id, filesPage, off)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	carved, err := queryRows(ctx, s.c.DB(), `SELECT id, offset, length, type, sha256, object IS NOT NULL FROM carved WHERE evidence_id=? ORDER BY offset LIMIT 1000`,
		func(rs *sql.Rows) (c carvedRow, err error) {
			err = rs.Scan(&c.ID, &c.Offset, &c.Length, &c.Type, &c.SHA256, &c.Object)
			return
		}, id)
	if err != nil {
		s.fail(w, r, 500, err)
		return
	}
	var feats []map[string]any
	if ents, err := os.ReadDir(filepath.Join(s.c.Dir(), "features", id)); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				feats = append(feats, map[string]any{"Name": e.Name(), "Size": fi.Size()})
			}
		}
	}
	next := -1
	if len(files) == filesPage {
		next = off + filesPage
	}
	s.render(w, r, "item", id, map[string]any{"E": evs[i], "Volumes": vols, "Files": files, "NFiles": nFiles, "NDeleted": nDeleted,
		"OnlyDeleted": onlyDeleted, "From": off, "Next": next, "Prev": max(off-filesPage, 0), "Carved": carved, "Features": feats})
}

func queryRows[T any](ctx context.Context, db *sql.DB, q string, scan func(*sql.Rows) (T, error), args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("serve: catalog: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("serve: catalog: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// serveCaseFile serves a regular file of the case directory named by
// parts, none of which may be empty, "." or "..", or hold a separator;
// symbolic links are refused. Served as an attachment, never rendered.
func (s *Server) serveCaseFile(w http.ResponseWriter, r *http.Request, ctype string, inline bool, parts ...string) {
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\\\x00") {
			s.fail(w, r, 404, errNotFound)
			return
		}
	}
	p := filepath.Join(append([]string{s.c.Dir()}, parts...)...)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		s.fail(w, r, 404, errNotFound)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		s.fail(w, r, 404, errNotFound)
		return
	}
	defer f.Close()
	s.sendFile(w, r, f, fi.Name(), fi.ModTime(), ctype, inline)
}

func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, f io.ReadSeeker, name string, mod time.Time, ctype string, inline bool) {
	w.Header().Set("Content-Type", ctype)
	disp := "attachment"
	if inline {
		disp = "inline"
		// A case's own report is shown as it is, but cannot run script
		// nor reach anything.
		w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	}
	w.Header().Set("Content-Disposition", disp+"; filename*=UTF-8''"+urlPathEscape(name))
	http.ServeContent(w, r, "", mod, f)
}

func urlPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Server) feature(w http.ResponseWriter, r *http.Request) {
	s.serveCaseFile(w, r, "text/plain; charset=utf-8", true, "features", r.PathValue("id"), r.PathValue("name"))
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, table string) {
	if !s.opts.AllowDownload {
		s.fail(w, r, 403, errors.New("downloads are off: start serve with --allow-download"))
		return
	}
	row, err := strconv.ParseInt(r.PathValue("row"), 10, 64)
	if err != nil {
		s.fail(w, r, 404, errNotFound)
		return
	}
	var ev, name string
	var obj sql.NullString
	q := `SELECT evidence_id, path, object FROM files WHERE id=?`
	if table == "carved" {
		q = `SELECT evidence_id, 'carved-' || offset || '.' || type, object FROM carved WHERE id=?`
	}
	if err := s.c.DB().QueryRowContext(r.Context(), q, row).Scan(&ev, &name, &obj); err != nil || !obj.Valid {
		s.fail(w, r, 404, errNotFound)
		return
	}
	f, err := s.c.OpenObject(obj.String)
	if err != nil {
		s.fail(w, r, 404, errNotFound)
		return
	}
	defer f.Close()
	if err := s.logAccess(r, "download", map[string]any{"evidence": ev, table: row, "name": name, "sha256": obj.String}); err != nil {
		s.fail(w, r, 500, err)
		return
	}
	fi, _ := f.Stat()
	s.sendFile(w, r, f, filepath.Base(name), fi.ModTime(), "application/octet-stream", false)
}

func (s *Server) downloadFile(w http.ResponseWriter, r *http.Request)   { s.download(w, r, "files") }
func (s *Server) downloadCarved(w http.ResponseWriter, r *http.Request) { s.download(w, r, "carved") }

// report ----------------------------------------------------------------

func (s *Server) reportList(w http.ResponseWriter, r *http.Request) {
	var files []map[string]any
	if ents, err := os.ReadDir(filepath.Join(s.c.Dir(), custody.ReportsDir)); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, map[string]any{"Name": e.Name(), "Size": fi.Size(), "Mod": fi.ModTime().UTC().Format(time.RFC3339)})
			}
		}
	}
	s.render(w, r, "report", translate(lang(r), "report"), files)
}

func (s *Server) reportFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctype, inline := "application/octet-stream", false
	switch strings.ToLower(filepath.Ext(name)) {
	case ".html":
		ctype, inline = "text/html; charset=utf-8", true
	case ".json", ".jsonld":
		ctype, inline = "application/json", true
	case ".txt", ".hashdeep", ".dfxml", ".xml", ".sig", "":
		ctype, inline = "text/plain; charset=utf-8", true
	case ".pdf":
		ctype, inline = "application/pdf", true
	}
	s.serveCaseFile(w, r, ctype, inline, custody.ReportsDir, name)
}

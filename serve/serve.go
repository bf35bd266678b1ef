// Package serve is `evidx serve`: a local, read-only web application over
// a case for analysts who do not use a shell. Pages: overview (unique
// identifiers per kind, sources, evidence items, the latest verify, a
// running load's stage), search (any spelling, many values one per line),
// sources, overlap between sources (heat map), where victims are (province,
// sex and age band from the ID numbers' codes), evidence items (volumes,
// files, deleted and carved files, feature files; content downloadable only
// with AllowDownload) and the custody report files.
//
// It is read-only on the case: the catalog and shards are opened mode=ro,
// neither case.lock nor the index's load lock is taken, and what a load has
// not finished (a source in status "loading") is left out. The one thing it
// writes is the access log (custody.AppendAccess): every search and
// download, who and what, chained and checked by verify.
//
// Pages are html/template (every value escaped), assets embedded, English
// and Chinese; they work without JavaScript, which only refreshes a running
// load's progress. Not provided: editing anything, persons unless a
// Persons implementation is given, maps (a province table and bar chart).
package serve

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
)

//go:embed templates/*.html static/*
var assets embed.FS

// DefaultListen is the address served when none is given: loopback only.
const DefaultListen = "127.0.0.1:8787"

// Options configure the server.
type Options struct {
	Listen        string // host:port; DefaultListen when empty
	Token         string // required by every request when set; required to listen beyond loopback
	AllowDownload bool   // file contents may be downloaded
	Persons       Persons
}

// Identifier is one (kind, normalised value) of a person.
type Identifier struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Location is one place a person's record was seen.
type Location struct {
	Source string `json:"source"`
	Loc    string `json:"loc"` // "line 12", "table users row 5"
}

// Person is someone the identifiers of a match link to.
type Person struct {
	Identifiers []Identifier `json:"identifiers"`
	Names       []string     `json:"names"`
	Sources     []string     `json:"sources"`
	Locations   []Location   `json:"locations"`
}

// PersonStats are the case's person counts.
type PersonStats struct {
	Unique int64 `json:"unique"`
	Hubs   int64 `json:"hubs"`
}

// Persons links identifiers to persons (package persons, wired in by the
// CLI once it exists). Implementations must be safe for concurrent use.
type Persons interface {
	// Of returns the persons holding the identifier (none: unknown).
	Of(ctx context.Context, kind, value string) ([]Person, error)
	// Stats returns the person counts; ok is false when not built yet.
	Stats(ctx context.Context) (st PersonStats, ok bool, err error)
}

// CheckListen refuses an address beyond loopback without a token: the
// pages hold personal data.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: --listen %q: %w", addr, err)
	}
	if isLoopbackHost(host) || token != "" {
		return nil
	}
	return fmt.Errorf("serve: --listen %s is reachable beyond this machine: give --token", addr)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Server serves one case.
type Server struct {
	c     *custody.Case
	ix    *index.Index
	opts  Options
	pages map[string]*template.Template
	data  *cache
	mux   *http.ServeMux

	accessMu sync.Mutex
}

// New opens the case read-only.
func New(ctx context.Context, caseDir string, opts Options) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	c, err := custody.OpenReadOnly(ctx, caseDir)
	if err != nil {
		return nil, err
	}
	ix, err := index.OpenRead(c.DB(), c.IndexDir(), c.Shards())
	if err != nil {
		c.Close()
		return nil, err
	}
	if opts.Persons == nil {
		opts.Persons = CasePersons(c.IndexDir())
	}
	s := &Server{c: c, ix: ix, opts: opts}
	if s.pages, err = parsePages(); err != nil {
		c.Close()
		return nil, err
	}
	s.data = newCache(s)
	s.routes()
	return s, nil
}

// Close closes the case.
func (s *Server) Close() error { return s.c.Close() }

// Warm computes the cached statistics ahead of the first request.
func (s *Server) Warm(ctx context.Context) {
	s.data.stats(ctx)
	s.data.geo(ctx)
}

// ListenAndServe serves until ctx ends. ready, when set, is called with
// the URL once the socket listens.
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	if err := CheckListen(s.opts.Listen, s.opts.Token); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		MaxHeaderBytes: 64 << 10, BaseContext: func(net.Listener) context.Context { return ctx }}
	go s.Warm(ctx)
	if ready != nil {
		ready("http://" + ln.Addr().String() + "/")
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
}

// Handler is the whole application behind its guards.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.guard) }

// guard runs before any route: refuses paths that try to climb out
// (also percent-encoded, before the mux would clean and redirect them),
// checks the token and the Host of a loopback listen (against DNS
// rebinding), and sets headers that keep the pages from running anything
// but our own script.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if badPath(r) {
		http.Error(w, "400 bad path", http.StatusBadRequest)
		return
	}
	if s.opts.Token == "" {
		host := r.Host
		if hh, _, err := net.SplitHostPort(r.Host); err == nil {
			host = hh
		}
		if !isLoopbackHost(host) {
			http.Error(w, "403 this server answers loopback names only", http.StatusForbidden)
			return
		}
	} else if !s.authorised(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// badPath reports a request path holding a dot-dot segment, a backslash,
// a NUL or an empty segment, raw or after percent-decoding (once or twice).
func badPath(r *http.Request) bool {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		return true // absolute-form or "*"
	}
	for range 3 {
		if strings.Contains(raw, "..") || strings.ContainsAny(raw, "\\\x00") || strings.Contains(raw, "//") {
			return true
		}
		dec, err := url.PathUnescape(raw)
		if err != nil {
			return true
		}
		if dec == raw {
			break
		}
		raw = dec
	}
	return r.URL.Path != "" && !strings.HasPrefix(r.URL.Path, "/")
}

const tokenCookie = "evidx_token"

// authorised checks the token: Authorization: Bearer, the cookie, or
// ?token= (which sets the cookie and redirects to the URL without it, so
// the token does not stay in the address bar or history).
func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	ok := func(t string) bool { return subtle.ConstantTimeCompare([]byte(t), []byte(s.opts.Token)) == 1 }
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") && ok(strings.TrimPrefix(a, "Bearer ")) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && ok(c.Value) {
		return true
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" && ok(t) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="evidx"`)
	http.Error(w, "401 a token is needed (Authorization: Bearer, or ?token=)", http.StatusUnauthorized)
	return false
}

// who names the requester for the access log: the remote address, and
// which token (its SHA-256 prefix, never the token) when one is set.
func (s *Server) who(r *http.Request) string {
	w := r.RemoteAddr
	if s.opts.Token != "" {
		sum := sha256.Sum256([]byte(s.opts.Token))
		w += " token " + hex.EncodeToString(sum[:4])
	}
	return w
}

// logAccess appends to the access log; a lookup that cannot be logged is
// not answered.
func (s *Server) logAccess(r *http.Request, action string, what map[string]any) error {
	s.accessMu.Lock()
	defer s.accessMu.Unlock()
	return custody.AppendAccess(s.c.Dir(), custody.Access{Action: action, Who: s.who(r), What: what})
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.overview)
	m.HandleFunc("GET /search", s.search)
	m.HandleFunc("POST /search", s.search)
	m.HandleFunc("GET /sources", s.sources)
	m.HandleFunc("GET /sources/{id}", s.source)
	m.HandleFunc("GET /overlap", s.overlap)
	m.HandleFunc("GET /where", s.where)
	m.HandleFunc("GET /evidence", s.evidenceList)
	m.HandleFunc("GET /evidence/{id}", s.evidenceItem)
	m.HandleFunc("GET /evidence/{id}/features/{name}", s.feature)
	m.HandleFunc("GET /download/file/{row}", s.downloadFile)
	m.HandleFunc("GET /download/carved/{row}", s.downloadCarved)
	m.HandleFunc("GET /report", s.reportList)
	m.HandleFunc("GET /report/{name}", s.reportFile)
	m.HandleFunc("GET /api/progress", s.progressJSON)
	m.HandleFunc("GET /lang/{lang}", s.setLang)
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux = m
}

var errNotFound = errors.New("not found")

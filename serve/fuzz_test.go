package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequest sends hostile request targets and search input to the
// handler: it never panics, never answers a climbing path with content,
// and every page it renders keeps the hostile input escaped.
func FuzzRequest(f *testing.F) {
	cdir := makeCase(f)
	s, err := New(context.Background(), cdir, Options{Listen: "127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	for _, seed := range []string{"/", "/search?q=%2B86%20138%200013%208000", "/../../etc/passwd", "/%2e%2e/x", "/report/..%2fcatalog.sqlite",
		"/sources/1", "/evidence/EV1/features/phone.txt", "/lang/zh?back=//evil", "/static/app.css", "/search?q=<script>"} {
		f.Add(seed, "<b>x</b>\n13800138000\n<script>alert(1)</script>")
	}
	f.Fuzz(func(t *testing.T, target, q string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		req, err := http.NewRequest("GET", "http://127.0.0.1"+target, nil)
		if err != nil {
			return
		}
		req.RequestURI = target
		req.Host = "127.0.0.1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		dec, _ := url.PathUnescape(strings.SplitN(target, "?", 2)[0])
		if strings.Contains(dec, "..") && w.Code < 400 {
			t.Errorf("%q: %d", target, w.Code)
		}
		if strings.Contains(w.Body.String(), "root:x:0:0") || strings.HasPrefix(w.Body.String(), "SQLite format") {
			t.Errorf("%q served a file outside", target)
		}
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "//") || strings.Contains(loc, "://") {
			t.Errorf("%q redirects off the site: %q", target, loc)
		}
		// A search of hostile text renders it escaped.
		form := url.Values{"q": {q}}
		req = httptest.NewRequest("POST", "/search", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Host = "127.0.0.1"
		w = httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("search %q: %d", q, w.Code)
		}
		if n := strings.Count(strings.ToLower(w.Body.String()), "<script"); n != 1 { // only our own /static/app.js
			t.Errorf("search %q rendered markup (%d script tags)", q, n)
		}
	})
}

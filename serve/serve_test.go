package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
	"github.com/evidx/evidx/pipeline"
	"golang.org/x/sys/unix"
)

const hostile = `<script>document.title="pwned"</script>`

// makeCase builds a case with generated leaks, a victims file and a file
// whose source name and a field are hostile markup.
func makeCase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cdir := filepath.Join(dir, "case")
	c, err := custody.Init(ctx, cdir, custody.Meta{CaseNumber: "T-1", Examiner: "Tester", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaks := filepath.Join(dir, "leaks")
	if _, err := leakgen.Generate(leaks, leakgen.Options{Seed: 3, Rows: 1000, Formats: "users.csv,users.jsonl"}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(leaks, "users.*"))
	victims := filepath.Join(dir, "victims.csv")
	os.WriteFile(victims, []byte("name,phone,id_no\nZhang San,13800138000,11010519491231002X\nLi Si,13900001111,440301199001011234\n"), 0o600)
	if _, err := pipeline.LoadDatasets(ctx, c, append(files, victims), pipeline.DatasetOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("name,phone\n"+hostile+",13912345678\n"), 0o600)
	if _, err := pipeline.LoadDatasets(ctx, c, []string{bad}, pipeline.DatasetOptions{Name: hostile + ".csv"}); err != nil {
		t.Fatal(err)
	}
	return cdir
}

// start serves the case on a free loopback port.
func start(t *testing.T, cdir string, opts Options) (*Server, string) {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cdir, opts)
	if err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, func(u string) { urlc <- u }) }()
	var u string
	select {
	case u = <-urlc:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return s, strings.TrimSuffix(u, "/")
}

// dumpDOM renders a page in headless Chromium and returns its DOM.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin := testutil.NeedTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=2000", "--dump-dom", url).Output()
	if err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	return string(out)
}

func TestBrowser(t *testing.T) {
	cdir := makeCase(t)
	catalog := filepath.Join(cdir, custody.CatalogName)
	before := testutil.SHA256File(t, catalog)
	s, base := start(t, cdir, Options{})

	// A phone typed with +86 and spaces finds the victims file.
	dom := dumpDOM(t, base+"/search?q="+url.QueryEscape("+86 138 0013 8000\n11010519491231002x"))
	if !strings.Contains(dom, `<a href="/sources/`) || !strings.Contains(dom, ">victims.csv</a>") {
		t.Errorf("search page does not show victims.csv:\n%s", dom)
	}
	if !strings.Contains(dom, "+8613800138000") || !strings.Contains(dom, "11010519491231002X") {
		t.Errorf("search page lacks the normalised values")
	}

	// The hostile source name and field stay text: escaped in the DOM,
	// no script of theirs ran (the title would change).
	dom = dumpDOM(t, base+"/search?q=139-1234-5678")
	if !strings.Contains(dom, "&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;.csv") {
		t.Errorf("hostile source name not shown as text:\n%s", dom)
	}
	if strings.Contains(dom, "<title>pwned") || strings.Contains(dom, hostile) {
		t.Errorf("hostile markup was interpreted:\n%s", dom)
	}
	dom = dumpDOM(t, base+"/sources")
	if strings.Contains(dom, hostile) || strings.Contains(dom, "<title>pwned") {
		t.Errorf("sources page interpreted the hostile name")
	}

	// The overview's unique phones equal the index's stats.
	c, err := custody.OpenReadOnly(context.Background(), cdir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ix, _ := index.OpenRead(c.DB(), c.IndexDir(), c.Shards())
	st, err := ix.Stats(context.Background(), index.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dom = dumpDOM(t, base+"/")
	m := regexp.MustCompile(`id="unique-phone">([0-9,]+)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("overview has no phone count:\n%s", dom)
	}
	if got, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64); got != st.Unique["phone"] || got == 0 {
		t.Errorf("overview phones %s, stats %d", m[1], st.Unique["phone"])
	}

	// Chinese by the switch's cookie.
	req, _ := http.NewRequest("GET", base+"/where", nil)
	req.AddCookie(&http.Cookie{Name: langCookie, Value: "zh"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "受害人分布") || !strings.Contains(string(body), "北京") || !strings.Contains(string(body), "广东") {
		t.Errorf("Chinese where page lacks its title or provinces")
	}

	// Read-only: neither lock is held, the catalog's bytes did not change.
	for _, l := range []string{filepath.Join(cdir, custody.LockName), filepath.Join(cdir, "index", "load.lock")} {
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Errorf("%s is held while serving: %v", l, err)
		}
		f.Close()
	}
	testutil.Unchanged(t) // no evidence here; the catalog is checked below
	if after := testutil.SHA256File(t, catalog); after != before {
		t.Errorf("catalog changed while serving")
	}

	// Every search is in the access log, which verify checks.
	lines, _, err := custody.ReadAccess(cdir)
	if err != nil || len(lines) != 2 {
		t.Fatalf("access log: %d lines, %v", len(lines), err)
	}
	if v := fmt.Sprint(lines[0].Details["values"]); !strings.Contains(v, "+86 138 0013 8000") || !strings.HasPrefix(fmt.Sprint(lines[0].Details["who"]), "127.0.0.1:") {
		t.Errorf("access line 1: %v", lines[0].Details)
	}
	_ = s
}

func TestVerifyAccessLog(t *testing.T) {
	cdir := makeCase(t)
	_, base := start(t, cdir, Options{})
	for _, q := range []string{"13800138000", "a@b.c"} {
		resp, err := http.Get(base + "/search?q=" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	check := func() custody.Check {
		c, err := custody.Open(context.Background(), cdir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Verify(context.Background(), custody.VerifyOptions{NoAudit: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range res.Checks {
			if ch.Name == "access log" {
				return ch
			}
		}
		t.Fatal("verify has no access log check")
		return custody.Check{}
	}
	if ch := check(); !ch.OK || !strings.Contains(ch.Detail, "2 lookups") {
		t.Fatalf("access log check: %+v", ch)
	}
	p := filepath.Join(cdir, custody.AccessName)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "13800138000", "13800138001", 1)), 0o600)
	if ch := check(); ch.OK {
		t.Errorf("edited access log passed: %+v", ch)
	}
	// Cut the last line: chain intact, but access.head knows.
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(p, []byte(lines[0]), 0o600)
	if ch := check(); ch.OK || !strings.Contains(ch.Detail, "1 lookups") {
		t.Errorf("truncated access log passed: %+v", ch)
	}
}

// rawGet sends a request line as written, which Go's client would clean.
func rawGet(t *testing.T, base, path string, header string) (int, string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", path, addr, header)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTraversal(t *testing.T) {
	cdir := makeCase(t)
	os.WriteFile(filepath.Join(cdir, custody.ReportsDir, "report.html"), []byte("<p>report</p>"), 0o600)
	_, base := start(t, cdir, Options{})
	for _, p := range []string{
		"/../../etc/passwd", "/static/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/report/..%2f..%2f..%2fetc%2fpasswd", "/report/%2e%2e%2fcatalog.sqlite", "/report/..%252fcatalog.sqlite", "/static/..%5c..%5cetc%5cpasswd",
		"/evidence/x/features/..%2f..%2fcatalog.sqlite", "//etc/passwd", "/report/%2e%2e", "/static/%00",
	} {
		code, body := rawGet(t, base, p, "")
		if code < 400 || strings.Contains(body, "root:") || strings.Contains(body, "SQLite format") {
			t.Errorf("%s: %d %.80q", p, code, body)
		}
	}
	if code, body := rawGet(t, base, "/report/report.html", ""); code != 200 || !strings.Contains(body, "report") {
		t.Errorf("report file: %d", code)
	}
	if code, _ := rawGet(t, base, "/static/app.css", ""); code != 200 {
		t.Errorf("asset: %d", code)
	}
	// A loopback listen answers loopback names only (DNS rebinding).
	addr := strings.TrimPrefix(base, "http://")
	conn, _ := net.Dial("tcp", addr)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Errorf("foreign Host: %v %v", resp, err)
	}
	conn.Close()
	// Downloads are off unless asked for.
	if code, _ := rawGet(t, base, "/download/file/1", ""); code != 403 {
		t.Errorf("download without --allow-download: %d", code)
	}
}

func TestToken(t *testing.T) {
	if err := CheckListen("0.0.0.0:8787", ""); err == nil {
		t.Error("0.0.0.0 without token accepted")
	}
	if err := CheckListen("[::]:8787", ""); err == nil {
		t.Error(":: without token accepted")
	}
	if err := CheckListen(":8787", ""); err == nil {
		t.Error(":8787 without token accepted")
	}
	if err := CheckListen("0.0.0.0:8787", "t"); err != nil {
		t.Error(err)
	}
	for _, a := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1"} {
		if err := CheckListen(a, ""); err != nil {
			t.Error(err)
		}
	}
	cdir := makeCase(t)
	s, err := New(context.Background(), cdir, Options{Listen: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("0.0.0.0 without token: %v", err)
	}
	s.Close()

	_, base := start(t, cdir, Options{Listen: "127.0.0.1:0", Token: "s3cret"})
	if code, _ := rawGet(t, base, "/", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := rawGet(t, base, "/", "Authorization: Bearer wrong\r\n"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	if code, _ := rawGet(t, base, "/", "Authorization: Bearer s3cret\r\n"); code != 200 {
		t.Errorf("bearer: %d", code)
	}
	if code, _ := rawGet(t, base, "/search?q=13800138000", "Cookie: "+tokenCookie+"=s3cret\r\n"); code != 200 {
		t.Errorf("cookie: %d", code)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/sources?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/sources" || len(resp.Cookies()) != 1 {
		t.Errorf("?token=: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	lines, _, _ := custody.ReadAccess(cdir)
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0].Details["who"]), "token ") {
		t.Errorf("access log with token: %+v", lines)
	}
}

// A load's progress file is shown, and a source still loading is left out
// of the search and the counts.
func TestLoadingAndProgress(t *testing.T) {
	cdir := makeCase(t)
	st, ok := pipeline.ReadProgress(cdir)
	if !ok || !st.Finished || st.Work != "dataset add bad.csv" || st.Stage != "writing the shards" || st.Done != st.Total || st.Total == 0 {
		t.Fatalf("progress.json: %+v %v", st, ok)
	}
	// The victims file's source as a load cut short would leave it.
	c, err := custody.Open(context.Background(), cdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB().Exec(`UPDATE sources SET status='loading' WHERE name='victims.csv'`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, base := start(t, cdir, Options{})
	_, body := rawGet(t, base, "/search?q=13800138000", "")
	if strings.Contains(body, "victims.csv") || !strings.Contains(body, "sightings in sources still loading are not shown") {
		t.Errorf("a loading source shows in the search:\n%s", body)
	}
	_, body = rawGet(t, base, "/", "")
	if !strings.Contains(body, "Last run finished") || !strings.Contains(body, "dataset add bad.csv") || !strings.Contains(body, "(1 loading)") {
		t.Errorf("overview lacks the progress or the loading source:\n%s", body)
	}
	_, body = rawGet(t, base, "/api/progress", "")
	if !strings.Contains(body, `"finished":true`) {
		t.Errorf("/api/progress: %s", body)
	}
}

// testPersons links the victims file's two identifiers of Zhang San, as
// package persons would; names come from the evidence and are hostile.
type testPersons struct{}

func (testPersons) Of(_ context.Context, kind, value string) ([]Person, error) {
	if value != "+8613800138000" && value != "11010519491231002X" {
		return nil, nil
	}
	return []Person{{Identifiers: []Identifier{{"phone", "+8613800138000"}, {"cn_id", "11010519491231002X"}},
		Names: []string{"Zhang San", hostile}, Sources: []string{"victims.csv"}, Locations: []Location{{"victims.csv", "line 2"}}}}, nil
}

func (testPersons) Stats(context.Context) (PersonStats, bool, error) {
	return PersonStats{Unique: 4242, Hubs: 3}, true, nil
}

func TestPersons(t *testing.T) {
	cdir := makeCase(t)
	_, base := start(t, cdir, Options{Persons: testPersons{}})
	_, body := rawGet(t, base, "/search?q="+url.QueryEscape("138 0013 8000"), "")
	for _, want := range []string{"Zhang San", "&lt;script&gt;document.title=", "11010519491231002X", "victims.csv: line 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("person lacks %q", want)
		}
	}
	if strings.Contains(body, hostile) {
		t.Error("a person's name was rendered as markup")
	}
	_, body = rawGet(t, base, "/", "")
	if !strings.Contains(body, `id="persons">4,242<`) {
		t.Error("overview lacks the person count")
	}
}

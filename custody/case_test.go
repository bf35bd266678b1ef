package custody

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// newCase makes a case in a fresh temporary directory.
func newCase(t *testing.T) *Case {
	t.Helper()
	c, err := Init(context.Background(), filepath.Join(t.TempDir(), "case"), Meta{CaseNumber: "2026-001", Examiner: "A. Examiner", Agency: "Lab"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// randomImage writes n seeded pseudo-random bytes to a file and returns its
// path and the bytes' digests computed here with crypto/*.
func randomImage(t *testing.T, dir string, n int, seed uint64) (string, [3]string) {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, "disk.dd")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, s1, s2 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return p, [3]string{hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])}
}

// checkPerms fails unless every directory under dir is 0700 and every file 0600.
func checkPerms(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if st.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
		return nil
	})
}

func TestInitPermsAndReopen(t *testing.T) {
	old := syscall.Umask(0o022) // a permissive umask must not leak into the case
	defer syscall.Umask(old)
	ctx := context.Background()
	c := newCase(t)
	if _, err := c.StoreObject(ctx, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	checkPerms(t, c.Dir())
	dir := c.Dir()
	c.Close()
	c2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if m := c2.Meta(); m.CaseNumber != "2026-001" || m.Examiner != "A. Examiner" || c2.Shards() != DefaultShards {
		t.Fatalf("meta %+v", m)
	}
	var shards string
	if err := c2.DB().QueryRow(`SELECT value FROM index_meta WHERE key='shards'`).Scan(&shards); err != nil || shards != "16" {
		t.Fatalf("index_meta shards %q %v", shards, err)
	}
	if _, err := Init(ctx, dir, Meta{CaseNumber: "x", Examiner: "y"}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Init on a case dir: %v, want ErrNotEmpty", err)
	}
	if _, err := Init(ctx, t.TempDir(), Meta{CaseNumber: "x"}); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("Init without examiner: %v", err)
	}
	if _, err := Open(ctx, t.TempDir()); !errors.Is(err, ErrNotCase) {
		t.Fatalf("Open of an empty dir: %v", err)
	}
}

func TestAuditChain(t *testing.T) {
	c := newCase(t)
	for i := range 5 {
		if err := c.Audit(Entry{Action: "test", Details: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	lines, ch, err := c.ReadAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 6 || ch.Lines != 6 || lines[0].Action != "case.init" || lines[0].Prev != Genesis {
		t.Fatalf("lines %d %+v", len(lines), lines[0])
	}
	raw, _ := os.ReadFile(filepath.Join(c.Dir(), AuditName))
	all := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	for i := 1; i < len(all); i++ {
		s := sha256.Sum256(all[i-1])
		if lines[i].Prev != hex.EncodeToString(s[:]) {
			t.Fatalf("line %d prev %s", i+1, lines[i].Prev)
		}
	}
	if ch.Head != hashLine(all[len(all)-1]) {
		t.Fatal("head")
	}
	if lines[3].Tool != "evidx" || lines[3].Host == "" || lines[3].User == "" || !strings.HasSuffix(lines[3].Time, "Z") {
		t.Fatalf("line fields %+v", lines[3])
	}

	// Every single-byte edit of every line breaks the chain at that line
	// (or, for the last line, is caught by the head kept in the catalog).
	off := 0
	for li, l := range all {
		for _, pos := range []int{off + 1, off + len(l)/2, off + len(l) - 2} {
			bad := bytes.Clone(raw)
			bad[pos] ^= 0x01
			_, err := VerifyChain(bytes.NewReader(bad), nil)
			var ce *ChainError
			if li < len(all)-1 {
				if !errors.As(err, &ce) || ce.Line != int64(li+1) && ce.Line != int64(li+2) {
					t.Fatalf("edit at %d (line %d): %v", pos, li+1, err)
				}
			}
		}
		off += len(l) + 1
	}
	// Removing a middle line is found at the line after it.
	cut := append(append([]byte{}, bytes.Join(all[:2], []byte("\n"))...), '\n')
	cut = append(cut, bytes.Join(all[3:], []byte("\n"))...)
	cut = append(cut, '\n')
	_, err = VerifyChain(bytes.NewReader(cut), nil)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 3 {
		t.Fatalf("removed line: %v", err)
	}
}

func TestAddEvidenceImage(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	img, want := randomImage(t, t.TempDir(), 3<<20+123, 1)
	testutil.Unchanged(t, img)
	ev, err := c.AddEvidenceImage(ctx, Intake{ID: "EV1", Paths: []string{img}, Expected: Hashes{SHA256: strings.ToUpper(want[2])}})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Computed.MD5 != want[0] || ev.Computed.SHA1 != want[1] || ev.Computed.SHA256 != want[2] || ev.Size != 3<<20+123 {
		t.Fatalf("computed %+v, want %v", ev.Computed, want)
	}
	if ev.Verified == nil || !*ev.Verified {
		t.Fatalf("verified %v %s", ev.Verified, ev.HashReason)
	}
	got, err := c.Evidence(ctx)
	if err != nil || len(got) != 1 || got[0].Computed.SHA256 != want[2] || len(got[0].Segments) != 1 || got[0].Segments[0].Path != img {
		t.Fatalf("catalog %+v %v", got, err)
	}
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "EV1", Paths: []string{img}}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate id: %v", err)
	}
	// A wrong expected hash is recorded and reported as not verified.
	ev2, err := c.AddEvidenceImage(ctx, Intake{ID: "EV2", Paths: []string{img}, Expected: Hashes{MD5: strings.Repeat("0", 32)}})
	if !errors.Is(err, ErrNotVerified) || ev2 == nil || ev2.Verified == nil || *ev2.Verified {
		t.Fatalf("bad md5: %v %+v", err, ev2)
	}
	// No hash to compare: verified is null.
	ev3, err := c.AddEvidenceImage(ctx, Intake{ID: "EV3", Paths: []string{img}})
	if err != nil || ev3.Verified != nil {
		t.Fatalf("nothing to compare: %v %v", err, ev3.Verified)
	}
	// Overlap: an image inside the case directory, and a case inside the evidence path.
	inside := filepath.Join(c.Dir(), "reports", "x.dd")
	os.WriteFile(inside, []byte("x"), 0o600)
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "EV4", Paths: []string{inside}}); !errors.Is(err, ErrInsideCase) {
		t.Fatalf("image inside case: %v", err)
	}
	os.Remove(inside)
	if err := CheckOverlap(c.Dir(), filepath.Dir(c.Dir())); !errors.Is(err, ErrInsideCase) {
		t.Fatalf("case inside evidence dir: %v", err)
	}
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "../x", Paths: []string{img}}); !errors.Is(err, ErrBadID) {
		t.Fatalf("bad id: %v", err)
	}
	lines, _, err := c.ReadAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, l := range lines {
		if l.Action == "evidence.add" {
			outcomes = append(outcomes, l.Outcome)
		}
	}
	if strings.Join(outcomes, ",") != "started,ok,started,failed,started,ok" {
		t.Fatalf("evidence.add outcomes %v", outcomes)
	}
	checkPerms(t, c.Dir())
}

func TestStoreObjectDedup(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	data := bytes.Repeat([]byte("evidence "), 100000)
	s1, err := c.StoreObject(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.StoreObject(ctx, bytes.NewReader(data))
	if err != nil || s2 != s1 {
		t.Fatal(err, s1, s2)
	}
	want := sha256.Sum256(data)
	if s1.SHA256 != hex.EncodeToString(want[:]) || s1.Size != int64(len(data)) {
		t.Fatalf("%+v", s1)
	}
	p, _ := c.ObjectPath(s1.SHA256)
	if testutil.SHA256File(t, p) != s1.SHA256 {
		t.Fatal("stored bytes differ")
	}
	var n int
	c.DB().QueryRow(`SELECT count(*) FROM objects`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d object rows", n)
	}
	ents, _ := os.ReadDir(filepath.Join(c.Dir(), ObjectsDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".incoming") {
			t.Fatalf("temp file left: %s", e.Name())
		}
	}
	if _, err := c.ObjectPath("../../etc/passwd"); !errors.Is(err, ErrBadObject) {
		t.Fatal(err)
	}
}

// TestAuditConcurrentHandles appends from several Case handles at once, as
// several evidx processes would (each handle opens its own lock file
// description, so flock serialises them): the chain must stay intact with
// every entry present once.
func TestAuditConcurrentHandles(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	const handles, each = 4, 25
	errs := make(chan error, handles)
	for h := range handles {
		go func() {
			ch, err := Open(ctx, c.Dir())
			if err != nil {
				errs <- err
				return
			}
			defer ch.Close()
			for i := range each {
				if err := ch.Audit(Entry{Action: "concurrent", Details: map[string]any{"h": h, "i": i}}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range handles {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	lines, ch, err := c.ReadAudit(ctx)
	if err != nil || ch.Lines != 1+handles*each {
		t.Fatalf("chain: %v, %d lines", err, ch.Lines)
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		k := fmt.Sprint(l.Details["h"], "/", l.Details["i"])
		if seen[k] {
			t.Fatalf("entry %s twice", k)
		}
		seen[k] = true
	}
	vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("verify: %v %v", err, vr.Failures)
	}
}

// TestVerifySplitSegments registers a raw image given as three pieces with
// their own hashes and checks that verify --evidence names the piece that
// changed.
func TestVerifySplitSegments(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, 3000, 4)
	data, _ := os.ReadFile(img)
	var paths []string
	var segs []Segment
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("piece-%d", i))
		os.WriteFile(p, data[i*1000:(i+1)*1000], 0o600)
		paths = append(paths, p)
		segs = append(segs, Segment{Path: p, Size: 1000, SHA256: sha256Hex(data[i*1000 : (i+1)*1000])})
	}
	measure := func(ctx context.Context, ps []string, progress func(int64)) (*Evidence, error) {
		ev, err := RawMeasure(ctx, ps, progress)
		if err != nil {
			return nil, err
		}
		ev.Segments = segs
		return ev, nil
	}
	ev, err := c.AddEvidenceImage(ctx, Intake{ID: "SPLIT", Paths: paths, Measure: measure})
	if err != nil || ev.Format != "split" || ev.Computed.SHA256 != sha256Hex(data) {
		t.Fatalf("%v %+v", err, ev)
	}
	vr, err := c.Verify(ctx, VerifyOptions{Evidence: true, NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("%v %v", err, vr.Failures)
	}
	b, _ := os.ReadFile(paths[1])
	b[7] ^= 1
	os.WriteFile(paths[1], b, 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{Evidence: true, NoAudit: true})
	all := strings.Join(vr.Failures, "\n")
	if vr.OK || !strings.Contains(all, "segment "+paths[1]) || !strings.Contains(all, "evidence SPLIT") {
		t.Fatalf("changed piece: %v", vr.Failures)
	}
}

package pipeline

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// seizedDisk builds a FAT32 image holding every dataset leakgen wrote,
// each exactly once: most allocated under /stock, one only inside a zip,
// one deleted after copying (its clusters stay free, so it is recovered).
// Every dataset being on the image once makes leakgen's truth the truth of
// the image.
func seizedDisk(t *testing.T, dir string) (img string, truth *leakgen.Truth, allocated int) {
	t.Helper()
	for _, tool := range []string{"mkfs.fat", "mcopy", "mmd", "mdel", "zip"} {
		testutil.NeedTool(t, tool)
	}
	leaks := filepath.Join(dir, "leaks")
	truth, err := leakgen.Generate(leaks, leakgen.Options{Seed: 11, Rows: 6000, Dup: 0.2, Overlap: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, ft := range truth.Files {
		files = append(files, ft.Path)
	}
	sort.Strings(files)
	if len(files) < 3 {
		t.Fatalf("leakgen wrote %d files, want at least 3", len(files))
	}
	img = filepath.Join(dir, "seized.dd")
	testutil.Run(t, "mkfs.fat", "-F", "32", "-C", img, "65536")
	testutil.Run(t, "mmd", "-i", img, "::/stock")
	zipped, deleted, rest := files[0], files[1], files[2:]
	for _, f := range rest {
		testutil.Run(t, "mcopy", "-i", img, f, "::/stock/")
		allocated++
	}
	zipPath := filepath.Join(dir, "bundle.zip")
	testutil.Run(t, "zip", "-j", "-q", zipPath, zipped)
	testutil.Run(t, "mcopy", "-i", img, zipPath, "::/stock/bundle.zip")
	allocated += 1 + zipFiles(t, zipPath) // an archive is a layer: its members are files too
	testutil.Run(t, "mcopy", "-i", img, deleted, "::/stock/")
	testutil.Run(t, "mdel", "-i", img, "::/stock/"+filepath.Base(deleted))
	return img, truth, allocated
}

// zipFiles counts the regular files in the ZIP at p, those of ZIPs inside
// it included, as archive/zip reads them.
func zipFiles(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var count func(b []byte) int
	count = func(b []byte) int {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return 0
		}
		n := 0
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			n++
			if rc, err := f.Open(); err == nil {
				inner, _ := io.ReadAll(rc)
				rc.Close()
				if bytes.HasPrefix(inner, []byte("PK\x03\x04")) {
					n += count(inner)
				}
			}
		}
		return n
	}
	return count(b)
}

func TestAddEvidenceIndexesDatasetsOnTheMedia(t *testing.T) {
	dir := t.TempDir()
	img, truth, allocated := seizedDisk(t, dir)
	testutil.Unchanged(t, img)

	ctx := context.Background()
	c, err := custody.Init(ctx, filepath.Join(dir, "case"), custody.Meta{CaseNumber: "T-1", Examiner: "tester", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{img}})
	if err != nil {
		t.Fatalf("AddEvidence: %v", err)
	}
	t.Logf("files %+v carved %d datasets %d features %v problems %v", res.Files, res.Carved, len(res.Datasets), res.Features, res.Problems)
	if res.Files.Allocated != allocated {
		t.Errorf("allocated files: got %d, want %d", res.Files.Allocated, allocated)
	}
	if res.Files.Deleted < 1 {
		t.Errorf("deleted files: got %d, want at least the one deleted", res.Files.Deleted)
	}
	if len(res.Volumes) != 1 || res.Volumes[0].FileSystem != "fat32" {
		t.Errorf("volumes: %+v, want one fat32", res.Volumes)
	}

	// Every dataset is on the image once (allocated, zipped or deleted), so
	// the index must hold exactly the generator's identities.
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ix.Stats(ctx, index.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range truth.Unique {
		if got := st.Unique[identity.Kind(kind)]; got != want {
			t.Errorf("unique %s: got %d, want %d", kind, got, want)
		}
	}
	var fromDeleted, fromZip bool
	for _, s := range st.Sources {
		if s.Evidence != "EV1" {
			t.Errorf("source %s: evidence %q, want EV1", s.Name, s.Evidence)
		}
		if strings.Contains(s.EvidPath, "/bundle.zip/") {
			fromZip = true // a member, by its path through the archive
		}
		if !strings.HasPrefix(s.EvidPath, "carved:") && !strings.Contains(s.EvidPath, "/bundle.zip") {
			base := filepath.Base(s.EvidPath)
			fromDeleted = fromDeleted || !fileIn(truth, base)
		}
	}
	if !fromZip {
		t.Error("no source came from the zip on the image")
	}
	if !fromDeleted {
		t.Error("no source came from the deleted file (FAT keeps its name minus the first letter)")
	}
	if len(res.FeatureFiles) == 0 || res.Features[identity.Email] == 0 {
		t.Errorf("scan found no e-mail features: %+v", res.Features)
	}
	for _, f := range res.FeatureFiles {
		fi, err := os.Stat(filepath.Join(c.Dir(), f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 (personal data)", f, fi.Mode().Perm())
		}
	}

	// The datasets found are linked into persons, all of them on EV1.
	if p := res.Persons; p == nil || p.Unique == 0 || len(p.Evidence) != 1 || p.Evidence[0].ID != "EV1" || p.Evidence[0].Persons != p.Unique {
		t.Errorf("persons after the evidence: %+v", res.Persons)
	}

	rejects := checkEvidenceRejects(t, c, "EV1", res.Datasets)

	// The case records what was done and still verifies.
	vr, err := c.Verify(ctx, custody.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK {
		t.Errorf("verify after evidence add: %+v", vr.Failures)
	}
	// A rejects file is recorded: one changed byte fails verify, named.
	p := filepath.Join(c.Dir(), rejects[0].Path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	vr, err = c.Verify(ctx, custody.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vr.OK || len(vr.Failures) != 1 || !strings.HasPrefix(vr.Failures[0], rejects[0].Path+": SHA-256 now") {
		t.Errorf("verify after a rejects file changed: ok %v, failures %q", vr.OK, vr.Failures)
	}
}

// checkEvidenceRejects checks that every dataset loaded from evidence
// item evID with rejected rows, and only those, left rejects/<sha256>.tsv
// (0600, in a 0700 directory) with one line per rejected row naming the
// item, the path on it and the row's location; that the custody layer
// lists exactly these files; and that each is an output of its load's
// audit entry. It returns the listed files.
func checkEvidenceRejects(t *testing.T, c *custody.Case, evID string, loaded []index.SourceStats) []custody.Item {
	t.Helper()
	ctx := context.Background()
	want := map[string]index.SourceStats{}
	for _, s := range loaded {
		if !s.Skipped && s.Rejected > 0 {
			want[filepath.Join("rejects", s.SHA256+".tsv")] = s
		}
	}
	if len(want) == 0 {
		t.Fatal("no dataset on the image has rejected rows: the test proves nothing")
	}
	listed, err := c.RejectsItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(want) {
		t.Errorf("custody lists %d rejects files, want %d (datasets with rejected rows)", len(listed), len(want))
	}
	if st, err := os.Stat(filepath.Join(c.Dir(), "rejects")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("rejects directory: %v %v, want mode 0700", st, err)
	}
	recorded := map[string]custody.Item{}
	lines, _, err := c.ReadAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if l.Action == "dataset.add" && l.Outcome == custody.OutcomeOK {
			for _, it := range l.Outputs {
				recorded[it.Path] = it
			}
		}
	}
	for _, it := range listed {
		s, ok := want[it.Path]
		if !ok {
			t.Errorf("%s: kept, but no loaded dataset with rejected rows has that SHA-256", it.Path)
			continue
		}
		if recorded[it.Path] != it {
			t.Errorf("%s: audit records %+v, on disk %+v", it.Path, recorded[it.Path], it)
		}
		p := filepath.Join(c.Dir(), it.Path)
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", it.Path, st, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if int64(len(rows)) != s.Rejected {
			t.Errorf("%s: %d lines, want %d (rejected rows of %s)", it.Path, len(rows), s.Rejected, s.EvidPath)
		}
		for _, r := range rows {
			f := strings.Split(r, "\t")
			if len(f) != 4 || f[0] != evID+" "+s.EvidPath || f[1] == "" || f[2] == "" {
				t.Errorf("%s: line %q, want %q TAB location TAB reason TAB text", it.Path, r, evID+" "+s.EvidPath)
				break
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(c.Dir(), "rejects", ".loading-*")); len(left) != 0 {
		t.Errorf("temporary rejects left: %v", left)
	}
	return listed
}

func fileIn(truth *leakgen.Truth, base string) bool {
	for _, f := range truth.Files {
		if filepath.Base(f.Path) == base {
			return true
		}
	}
	return false
}

// TestAddEvidenceE01 takes the same disk in as a multi-segment E01: the
// media hashes equal those of the raw image, every segment file's SHA-256
// is recorded, and verify --evidence re-hashes through the E01 reader.
func TestAddEvidenceE01(t *testing.T) {
	testutil.NeedTool(t, "ewfacquire")
	dir := t.TempDir()
	img, _, allocated := seizedDisk(t, dir)
	base := filepath.Join(dir, "seized")
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", base, "-c", "none", "-S", "8MiB", "-C", "T-2", "-e", "tester", img)
	segs, _ := filepath.Glob(base + ".E*")
	if len(segs) < 2 {
		t.Fatalf("ewfacquire wrote %d segments, want several", len(segs))
	}
	testutil.Unchanged(t, append(segs, img)...)

	ctx := context.Background()
	c, err := custody.Init(ctx, filepath.Join(dir, "case"), custody.Meta{CaseNumber: "T-2", Examiner: "tester", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{base + ".E01"}, NoScan: true})
	if err != nil {
		t.Fatalf("AddEvidence: %v", err)
	}
	ev := res.Evidence
	if ev.Computed.SHA256 != testutil.SHA256File(t, img) || ev.Verified == nil || !*ev.Verified {
		t.Errorf("E01 media sha256 %s verified %v, raw image %s", ev.Computed.SHA256, ev.Verified, testutil.SHA256File(t, img))
	}
	if len(ev.Segments) != len(segs) {
		t.Fatalf("segments recorded %d, on disk %d", len(ev.Segments), len(segs))
	}
	for _, s := range ev.Segments {
		if want := testutil.SHA256File(t, s.Path); s.SHA256 != want {
			t.Errorf("segment %s: sha256 %q, want %s", s.Path, s.SHA256, want)
		}
	}
	if res.Files.Allocated != allocated {
		t.Errorf("allocated files through E01: %d, want %d", res.Files.Allocated, allocated)
	}
	vr, err := c.Verify(ctx, custody.VerifyOptions{Evidence: true, Rehash: RehashImage})
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK {
		t.Errorf("verify --evidence: %v", vr.Failures)
	}
}

// TestAddEvidenceResume runs an intake, cuts it short by cancelling it
// during the walk, then resumes it: the case must end with exactly what
// one uninterrupted intake records.
func TestAddEvidenceResume(t *testing.T) {
	dir := t.TempDir()
	img, truth, allocated := seizedDisk(t, dir)
	testutil.Unchanged(t, img)
	ctx := context.Background()
	c, err := custody.Init(ctx, filepath.Join(dir, "case"), custody.Meta{CaseNumber: "T-3", Examiner: "tester", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Cut the intake short when carving starts: the evidence, its volumes
	// and files are recorded; carving and the datasets are not done.
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = AddEvidence(cut, c, EvidenceOptions{ID: "EV1", Paths: []string{img}, NoScan: true,
		Progress: cancelAt{"carving", cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted intake: %v, want context.Canceled", err)
	}
	if _, err := AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{img}, NoScan: true}); !errors.Is(err, custody.ErrDuplicate) {
		t.Fatalf("second intake without --resume: %v, want ErrDuplicate", err)
	}
	res, err := AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{img}, NoScan: true, Resume: true})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if res.Files.Allocated != allocated {
		t.Errorf("allocated after resume: %d, want %d", res.Files.Allocated, allocated)
	}
	var rows int
	if err := c.DB().QueryRow(`SELECT count(*) FROM files WHERE evidence_id='EV1' AND type='file' AND NOT deleted`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != allocated {
		t.Errorf("files rows after resume: %d, want %d (no double counting)", rows, allocated)
	}
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ix.Stats(ctx, index.StatsOptions{NoOverlap: true})
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range truth.Unique {
		if got := st.Unique[identity.Kind(kind)]; got != want {
			t.Errorf("unique %s after resume: %d, want %d", kind, got, want)
		}
	}
	vr, err := c.Verify(ctx, custody.VerifyOptions{})
	if err != nil || !vr.OK {
		t.Fatalf("verify after resume: %v %v", err, vr)
	}
}

// cancelAt cancels the work when it reaches a stage.
type cancelAt struct {
	stage  string
	cancel func()
}

func (c cancelAt) Stage(name, _ string, _ int64) {
	if name == c.stage {
		c.cancel()
	}
}
func (cancelAt) Add(int64) {}

// TestAddEvidenceBadChunk: one byte flipped in the chunk data of an E01
// costs only that chunk. The walk, extraction, carve, scan and the
// datasets go on; the bad range is named (sectors, segment, offset) in
// the problems and the audit log; the file over it is marked; every other
// dataset loads; and --resume takes the damaged item up again.
func TestAddEvidenceBadChunk(t *testing.T) {
	testutil.NeedTool(t, "ewfacquire")
	dir := t.TempDir()
	img, truth, _ := seizedDisk(t, dir)
	base := filepath.Join(dir, "seized")
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", base, "-c", "none", "-S", "1.4GiB", "-C", "T-5", "-e", "tester", img)
	e01, err := os.ReadFile(base + ".E01")
	if err != nil {
		t.Fatal(err)
	}
	// Uncompressed chunks hold the media verbatim: flip a byte inside the
	// copy of the largest dataset on the image.
	var victim string
	var vsize int64
	for _, ft := range truth.Files {
		if fi, err := os.Stat(ft.Path); err == nil && fi.Size() > vsize && !strings.HasSuffix(ft.Path, ".zip") {
			victim, vsize = ft.Path, fi.Size()
		}
	}
	body, _ := os.ReadFile(victim)
	probe := body[len(body)/2 : len(body)/2+64]
	at := bytes.Index(e01, probe)
	if at < 0 || vsize < 1<<16 {
		t.Fatalf("content of %s (%d bytes) not found in the E01", victim, vsize)
	}
	e01[at+10] ^= 0xff
	bad := filepath.Join(dir, "bad.E01")
	if err := os.WriteFile(bad, e01, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, bad)

	ctx := context.Background()
	c, err := custody.Init(ctx, filepath.Join(dir, "case"), custody.Meta{CaseNumber: "T-5", Examiner: "tester", Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check := func(res *EvidenceResult, err error) {
		t.Helper()
		if !errors.Is(err, custody.ErrNotVerified) {
			t.Fatalf("AddEvidence: %v, want ErrNotVerified", err)
		}
		named := false
		for _, p := range res.Problems {
			if strings.Contains(p, "unreadable, read as zeros") && strings.Contains(p, "sectors") && strings.Contains(p, "bad.E01 at offset") {
				named = true
			}
		}
		if !named {
			t.Errorf("bad range not named in problems: %q", res.Problems)
		}
		// Every dataset but the damaged one still loads; the damaged one
		// may load what it holds.
		if n := len(truth.Files); len(res.Datasets) < n-1 {
			t.Errorf("%d datasets loaded of %d on the image", len(res.Datasets), n)
		}
	}
	res, err := AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{bad}})
	check(res, err)
	marked := 0
	c.Files(ctx, "EV1", func(f custody.File) error {
		if strings.Contains(f.Err, "overlaps unreadable media") {
			marked++
			if !strings.HasSuffix(f.Path, filepath.Base(victim)) {
				t.Errorf("%s marked as over the bad range, the damaged file is %s", f.Path, filepath.Base(victim))
			}
		}
		return nil
	})
	if marked != 1 {
		t.Errorf("%d files marked over the bad range, want 1", marked)
	}
	lines, _, err := c.ReadAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var damage bool
	for _, l := range lines {
		damage = damage || l.Action == "evidence.damage"
	}
	if !damage {
		t.Error("no evidence.damage line in the audit log")
	}
	res, err = AddEvidence(ctx, c, EvidenceOptions{ID: "EV1", Paths: []string{bad}, Resume: true})
	check(res, err)
	// The report carries the carve and scan summaries and names the range.
	rep, err := c.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.Evidence[0]; er.Carve == nil || er.Carve.BytesSearched == 0 || len(er.Features) == 0 {
		t.Errorf("report: carve %+v, features %v", er.Carve, er.Features)
	}
	if !strings.Contains(strings.Join(rep.Errors, "\n"), "read as zeros") {
		t.Errorf("report errors do not name the bad range: %q", rep.Errors)
	}
	// carve --whole goes past the chunk too, and names it.
	cr, err := CarveImage(ctx, bad, CarveOptions{Out: filepath.Join(dir, "carved"), Whole: true})
	if err != nil {
		t.Fatalf("carve --whole: %v", err)
	}
	if !strings.Contains(strings.Join(cr.Problems, "\n"), "unreadable, read as zeros") || cr.BytesSearched != res.Evidence.Size {
		t.Errorf("carve --whole: searched %d of %d bytes, problems %q", cr.BytesSearched, res.Evidence.Size, cr.Problems)
	}
}

package custody

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/internal/testutil"
)

// fatFile is a file the test puts on its FAT image, with content the test
// generated (so its hashes and, by search, its image offset are known).
type fatFile struct {
	path    string // on the image
	data    []byte
	deleted bool
}

// fatCase builds a FAT16 image with mkfs.fat and mcopy (one file then
// deleted with mdel), opens a signed case, registers the image, and records
// a volume, the files (content stored, byte runs found in the image bytes)
// and one carved item, as the walker and carver will.
type fatCase struct {
	c       *Case
	img     string
	imgSums [3]string // md5, sha1, sha256 of the image bytes, by crypto/*
	key     string
	files   []fatFile
}

// testSeizure are the custody facts the FAT case's item was taken in with.
var testSeizure = Seizure{SeizedBy: "PC Li Wei (4411)", SeizedAt: time.Date(2026, 3, 1, 6, 30, 0, 0, time.UTC),
	SeizedWhere: "Flat 3, 12 Harbour Road", Seal: "SEAL-000417", DeviceSerial: "WD-WX61A1234567", DeviceModel: "WD Blue 1TB",
	Description: "2.5-inch SATA disk in an anti-static bag"}

func buildFATCase(t *testing.T) *fatCase {
	t.Helper()
	ctx := context.Background()
	testutil.NeedTool(t, "mkfs.fat")
	tmp := t.TempDir()
	img := filepath.Join(tmp, "fat.img")
	testutil.Run(t, "mkfs.fat", "-C", "-F", "16", "-n", "SEIZED", img, "16384")
	rng := rand.New(rand.NewPCG(7, 11))
	mk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := []fatFile{
		{path: "/LEAK.CSV", data: append([]byte("phone,email\n13800138000,a@b.cn\n"), mk(5000)...)},
		{path: "/DOCS/NOTES.TXT", data: mk(70000)},
		{path: "/DOCS/SAME.TXT", data: nil}, // same content as NOTES.TXT: one stored object
		{path: "/GONE.BIN", data: mk(9000), deleted: true},
	}
	files[2].data = files[1].data
	testutil.Run(t, "mmd", "-i", img, "::/DOCS")
	for _, f := range files {
		src := filepath.Join(tmp, "src")
		if err := os.WriteFile(src, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.Run(t, "mcopy", "-i", img, src, "::"+f.path)
		if f.deleted {
			testutil.Run(t, "mdel", "-i", img, "::"+f.path)
		}
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	m, s1, s2 := md5.Sum(raw), sha1.Sum(raw), sha256.Sum256(raw)
	fc := &fatCase{img: img, files: files, key: filepath.Join(tmp, "examiner.key"),
		imgSums: [3]string{hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])}}
	testutil.Unchanged(t, img)

	pub, err := LoadOrCreateKey(fc.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Init(ctx, filepath.Join(tmp, "case"), Meta{CaseNumber: "CASE-7", Examiner: "Jane Roe", Agency: "Cyber Lab", SignPubKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fc.c = c
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "EV1", Paths: []string{img}, Expected: Hashes{MD5: fc.imgSums[0]}, Seizure: testSeizure}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddVolume(ctx, Volume{EvidenceID: "EV1", Index: 1, Start: 0, Size: int64(len(raw)), FileSystem: "fat16"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.NewBatch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		off := int64(bytes.Index(raw, f.data)) // contiguous on a fresh FAT
		if off < 0 {
			t.Fatalf("%s not found in the image", f.path)
		}
		sums, err := b.StoreObject(bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddFile(File{EvidenceID: "EV1", Volume: 1, Path: f.path, Size: int64(len(f.data)), Deleted: f.deleted,
			Inode: uint64(i + 3), Runs: []Run{{Logical: 0, Offset: off, Length: int64(len(f.data))}},
			MD5: sums.MD5, SHA256: sums.SHA256, Recoverable: true, Object: sums.SHA256}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddFile(File{EvidenceID: "EV1", Volume: 1, Path: "/DOCS", Type: "dir", Inode: 2}); err != nil {
		t.Fatal(err)
	}
	// The carved item: the deleted file's bytes, found again by signature.
	gone := files[3].data
	sums, err := b.StoreObject(bytes.NewReader(gone))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(bytes.Index(raw, gone))
	if err := b.AddCarved(Carved{EvidenceID: "EV1", Offset: off, Length: int64(len(gone)), Type: "bin", MD5: sums.MD5, SHA256: sums.SHA256, Object: sums.SHA256}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return fc
}

func schemaPath(t *testing.T) string {
	p, err := filepath.Abs("testdata/dfxml/dfxml.xsd")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReportVerifyExport(t *testing.T) {
	ctx := context.Background()
	fc := buildFATCase(t)
	c := fc.c
	res, err := c.WriteReport(ctx, ReportOptions{SignKey: fc.key})
	if err != nil {
		t.Fatal(err)
	}
	rdir := filepath.Join(c.Dir(), ReportsDir)
	for _, n := range []string{"report.html", "report.json", "case.jsonld", "evidence-EV1.dfxml", "manifest.hashdeep", "SHA256SUMS", SigName} {
		if _, err := os.Stat(filepath.Join(rdir, n)); err != nil {
			t.Fatalf("report file %s: %v", n, err)
		}
	}
	if len(res.Files) != 7 {
		t.Fatalf("report files %+v", res.Files)
	}
	checkPerms(t, c.Dir())

	// The HTML and the JSON carry the image hashes crypto/* computed.
	html, _ := os.ReadFile(filepath.Join(rdir, "report.html"))
	for _, h := range fc.imgSums {
		if !bytes.Contains(html, []byte(h)) {
			t.Errorf("report.html lacks image hash %s", h)
		}
	}
	for _, s := range []string{"CASE-7", "Jane Roe", "Cyber Lab", "VERIFIED", "@media print", "<svg", "SHA-256", "case.init", "evidence.add"} {
		if s == "<svg" {
			continue // charts appear only with datasets; see TestReportDatasets
		}
		if !bytes.Contains(html, []byte(s)) {
			t.Errorf("report.html lacks %q", s)
		}
	}
	if bytes.Contains(html, []byte("src=\"http")) || bytes.Contains(html, []byte("href=\"http")) || bytes.Contains(html, []byte("<link")) {
		t.Error("report.html refers to external assets")
	}
	var rep Report
	js, _ := os.ReadFile(filepath.Join(rdir, "report.json"))
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	ev := rep.Evidence[0]
	if rep.SchemaVersion != ReportSchemaVersion || ev.Computed.MD5 != fc.imgSums[0] || ev.Computed.SHA1 != fc.imgSums[1] || ev.Computed.SHA256 != fc.imgSums[2] {
		t.Fatalf("report.json evidence %+v", ev.Evidence)
	}
	if ev.Counts.Files != 4 || ev.Counts.Allocated != 3 || ev.Counts.Deleted != 1 || ev.Counts.Carved != 1 || ev.Counts.Dirs != 1 || ev.Counts.Extracted != 4 {
		t.Fatalf("counts %+v", ev.Counts)
	}
	if ev.SectorCount != 16384*1024/512 || ev.Verified == nil || !*ev.Verified {
		t.Fatalf("sectors %d verified %v", ev.SectorCount, ev.Verified)
	}

	// DFXML validates against the DFXML 2 schema.
	testutil.NeedTool(t, "xmllint")
	out, err := exec.Command("xmllint", "--noout", "--schema", schemaPath(t), filepath.Join(rdir, "evidence-EV1.dfxml")).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
	dfxml, _ := os.ReadFile(filepath.Join(rdir, "evidence-EV1.dfxml"))
	for _, want := range []string{fc.imgSums[2], `<hashdigest type="sha1">` + fc.imgSums[1], "<filename>DOCS/NOTES.TXT</filename>", "<alloc>0</alloc>", "<ftype_str>fat16</ftype_str>"} {
		if !bytes.Contains(dfxml, []byte(want)) {
			t.Errorf("dfxml lacks %q", want)
		}
	}
	// SHA256SUMS checks with sha256sum itself.
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = rdir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}

	vr, err := c.Verify(ctx, VerifyOptions{Evidence: true})
	if err != nil {
		t.Fatal(err)
	}
	if !vr.OK {
		t.Fatalf("verify of an untouched case: %v", vr.Failures)
	}

	// Export, then hashdeep audits it against the manifest.
	testutil.NeedTool(t, "hashdeep")
	expDir := filepath.Join(t.TempDir(), "out")
	er, err := c.Export(ctx, ExportOptions{Dir: expDir})
	if err != nil {
		t.Fatal(err)
	}
	if er.Files != 5 {
		t.Fatalf("exported %d files, want 5 (4 files + 1 carved)", er.Files)
	}
	// The export and its manifest, moved to another folder, audit with the
	// command the manifest's header gives (names relative to the export).
	man, _ := os.ReadFile(er.Manifest)
	if !bytes.Contains(man, []byte("## cd out && hashdeep -r -l -a -k ../manifest.hashdeep .\n")) || bytes.Contains(man, []byte(expDir)) {
		t.Fatalf("export manifest header or names:\n%s", man)
	}
	moved := filepath.Join(t.TempDir(), "usb", "handed-over")
	if err := os.MkdirAll(filepath.Dir(moved), 0o700); err != nil {
		t.Fatal(err)
	}
	cp := exec.Command("cp", "-a", filepath.Dir(expDir), moved)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	hd := exec.Command("sh", "-c", "cd out && hashdeep -r -l -a -vv -k ../manifest.hashdeep .")
	hd.Dir = moved
	out, err = hd.CombinedOutput()
	if err != nil {
		t.Fatalf("hashdeep audit of the moved export: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("Audit passed")) || !bytes.Contains(out, []byte("Files matched: 5")) {
		t.Fatalf("hashdeep: %s", out)
	}
	// A changed byte in the moved copy fails the audit.
	victim := filepath.Join(moved, "out", "EV1", "vol-1", "LEAK.CSV")
	b, _ := os.ReadFile(victim)
	b[3] ^= 1
	os.WriteFile(victim, b, 0o600)
	if out, err := hd.CombinedOutput(); err == nil {
		t.Fatalf("hashdeep passed a changed copy: %s", out)
	}
	for _, f := range fc.files {
		got, err := os.ReadFile(filepath.Join(expDir, "EV1", "vol-1", filepath.FromSlash(strings.TrimPrefix(f.path, "/"))))
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("exported %s: %v", f.path, err)
		}
	}
	// The report's manifest has the same names: it audits the export too.
	cmd = exec.Command("hashdeep", "-r", "-l", "-a", "-k", filepath.Join(rdir, "manifest.hashdeep"), ".")
	cmd.Dir = expDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hashdeep -l with the report manifest: %v\n%s", err, out)
	}
	checkPerms(t, expDir)
	if _, err := c.Export(ctx, ExportOptions{Dir: expDir}); err == nil {
		t.Fatal("export into a non-empty directory succeeded")
	}

	// Tampering: each change makes verify fail with a line naming the thing.
	tamper := func(name, path string, off int64, opts VerifyOptions, want string) {
		t.Helper()
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mod := bytes.Clone(orig)
		if off < 0 {
			off = int64(len(mod)) + off
		}
		mod[off] ^= 0x20
		if err := os.WriteFile(path, mod, 0o600); err != nil {
			t.Fatal(err)
		}
		vr, err := c.Verify(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), want) {
			t.Errorf("%s: verify ok=%v failures %q, want one naming %q", name, vr.OK, vr.Failures, want)
		}
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	obj, _ := c.ObjectPath(sha256Hex(fc.files[0].data))
	objRel, _ := filepath.Rel(c.Dir(), obj)
	tamper("stored object", obj, 10, VerifyOptions{NoAudit: true}, objRel)
	tamper("stored object row", obj, 10, VerifyOptions{NoAudit: true}, "file EV1 volume 1 /LEAK.CSV")
	tamper("report html", filepath.Join(rdir, "report.html"), 200, VerifyOptions{NoAudit: true}, "reports/report.html")
	tamper("report dfxml", filepath.Join(rdir, "evidence-EV1.dfxml"), -10, VerifyOptions{NoAudit: true}, "reports/evidence-EV1.dfxml")
	tamper("signature", filepath.Join(rdir, SigName), 3, VerifyOptions{NoAudit: true}, "SHA256SUMS.sig")
	tamper("audit log", filepath.Join(c.Dir(), AuditName), 300, VerifyOptions{NoAudit: true}, "audit.log line 1")
	// The last line has no successor to chain it: the head kept in the
	// catalog catches its edit.
	tamper("audit log last line", filepath.Join(c.Dir(), AuditName), -30, VerifyOptions{NoAudit: true}, "audit.log line")
	// The image itself is evidence: change it through a copy-and-restore
	// only for this check, then prove it restored byte for byte.
	tamper("image", fc.img, 70000, VerifyOptions{Evidence: true, NoAudit: true}, "evidence EV1")
	if testutil.SHA256File(t, fc.img) != fc.imgSums[2] {
		t.Fatal("image not restored")
	}
	// Without --evidence the image is not read.
	vr, err = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("verify after restoring: %v %v", err, vr.Failures)
	}

	// A file added to reports/ after the report is reported.
	extra := filepath.Join(rdir, "notes.txt")
	os.WriteFile(extra, []byte("x"), 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), "reports/notes.txt") {
		t.Fatalf("extra report file: %v", vr.Failures)
	}
	os.Remove(extra)

	// Lines cut from the end of the audit log: the chain alone is intact,
	// the head recorded in the catalog is not.
	alog := filepath.Join(c.Dir(), AuditName)
	orig, _ := os.ReadFile(alog)
	lines := bytes.SplitAfter(orig, []byte("\n"))
	os.WriteFile(alog, bytes.Join(lines[:len(lines)-3], nil), 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), "lines removed from the end") {
		t.Fatalf("truncated audit log: %v", vr.Failures)
	}
	os.WriteFile(alog, orig, 0o600)

	// Verify records itself.
	vr, err = c.Verify(ctx, VerifyOptions{})
	if err != nil || !vr.OK {
		t.Fatalf("final verify: %v %v", err, vr.Failures)
	}
	all, _, err := c.ReadAudit(ctx)
	if err != nil || all[len(all)-1].Action != "verify" {
		t.Fatalf("last audit action %v", err)
	}
}

func TestShardHashes(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	if err := mkdirPrivate(c.IndexDir()); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(c.IndexDir(), "shard-000.sqlite")
	if err := os.WriteFile(shard, []byte("SQLite format 3\x00 pretend shard"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Any other output recorded inside the case is checked the same way.
	feat := filepath.Join(c.Dir(), "features", "EV1", "phone.txt")
	os.MkdirAll(filepath.Dir(feat), 0o700)
	os.WriteFile(feat, []byte("+8613800138000\n"), 0o600)
	if err := c.Audit(Entry{Action: "evidence.scan", Outputs: []Item{{Kind: "features", Path: "features/EV1/phone.txt", SHA256: testutil.SHA256File(t, feat)}}}); err != nil {
		t.Fatal(err)
	}
	items, err := c.RecordShards(ctx)
	if err != nil || len(items) != 1 || items[0].Path != "index/shard-000.sqlite" || items[0].SHA256 != testutil.SHA256File(t, shard) {
		t.Fatalf("%+v %v", items, err)
	}
	vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("%v %v", err, vr.Failures)
	}
	os.WriteFile(shard, []byte("SQLite format 3\x00 edited shard"), 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), "index/shard-000.sqlite") {
		t.Fatalf("edited shard: %v", vr.Failures)
	}
	os.WriteFile(feat, []byte("+8613800138001\n"), 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if !strings.Contains(strings.Join(vr.Failures, "\n"), "features/EV1/phone.txt") {
		t.Fatalf("edited feature file: %v", vr.Failures)
	}
}

// TestReportOutAndKeys writes a report outside the case (--out), checks
// that verify follows it there, that a key other than the case's is
// refused before anything is written, and that an unsigned case refuses
// --sign.
func TestReportOutAndKeys(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	key := filepath.Join(tmp, "k.pem")
	pub, err := LoadOrCreateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := LoadOrCreateKey(key); err != nil || again != pub {
		t.Fatalf("reloading the key: %v %s != %s", err, again, pub)
	}
	c, err := Init(ctx, filepath.Join(tmp, "case"), Meta{CaseNumber: "K", Examiner: "k", SignPubKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other := filepath.Join(tmp, "other.pem")
	if _, err := LoadOrCreateKey(other); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "court")
	if _, err := c.WriteReport(ctx, ReportOptions{OutDir: out, SignKey: other}); err == nil {
		t.Fatal("report signed with a key that is not the case's")
	}
	if _, err := os.Stat(filepath.Join(out, "report.html")); err == nil {
		t.Fatal("report written despite the bad key")
	}
	res, err := c.WriteReport(ctx, ReportOptions{OutDir: out, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != out {
		t.Fatalf("dir %s", res.Dir)
	}
	vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true})
	if err != nil || !vr.OK {
		t.Fatalf("%v %v", err, vr.Failures)
	}
	p := filepath.Join(out, "report.json")
	b, _ := os.ReadFile(p)
	b[20] ^= 1
	os.WriteFile(p, b, 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	if vr.OK || !strings.Contains(strings.Join(vr.Failures, "\n"), filepath.Join(out, "report.json")) {
		t.Fatalf("edited report outside the case: %v", vr.Failures)
	}
	// A case made without a key cannot sign.
	c2 := newCase(t)
	if _, err := c2.WriteReport(ctx, ReportOptions{SignKey: key}); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("signing in a case without a key: %v", err)
	}
	if _, err := LoadKey(filepath.Join(c2.Dir(), AuditName)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("audit.log as a key: %v", err)
	}
}

// TestReportChinese: report --lang zh writes report.zh.html beside the
// English report, with the 笔录 fields (案由, object, time, place, method
// and process, the item list with type, format and 校验值, staff, software
// and results), the custody facts, the image's hashes as crypto/* computed
// them, no workstation path, and a place in SHA256SUMS.
func TestReportChinese(t *testing.T) {
	ctx := context.Background()
	fc := buildFATCase(t)
	out := filepath.Join(t.TempDir(), "zh")
	res, err := fc.c.WriteReport(ctx, ReportOptions{OutDir: out, SignKey: fc.key, Lang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	zh, err := os.ReadFile(filepath.Join(out, "report.zh.html"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"电子数据检查笔录", "案由", "检查时间", "检查地点", "检查方法和过程", "校验值", "检查人员", "检查设备与软件", "检查结果",
		testSeizure.Seal, testSeizure.SeizedBy, testSeizure.DeviceSerial, "登记检材并计算哈希值"}
	for _, h := range fc.imgSums {
		want = append(want, h)
	}
	for _, w := range want {
		if !bytes.Contains(zh, []byte(w)) {
			t.Errorf("report.zh.html lacks %q", w)
		}
	}
	if bytes.Contains(zh, []byte(fc.c.Dir())) {
		t.Error("report.zh.html names the workstation's case path")
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if !bytes.Contains(sums, []byte("report.zh.html")) || !bytes.Contains(zh, []byte("</html>")) {
		t.Errorf("report.zh.html not in SHA256SUMS: %s", sums)
	}
	if len(res.Files) != 8 {
		t.Errorf("%d report files, want 8 with the Chinese one", len(res.Files))
	}
}

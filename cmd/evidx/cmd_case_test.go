package main

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/internal/testutil"
)

// caseRun runs the CLI in-process: stdout and the exit code.
func caseRun(t *testing.T, argv ...string) ([]byte, int) {
	r := runCLI(t, argv...)
	return r.stdout, r.code
}

// TestCaseWorkflowCLI drives case init, evidence add, report, verify and
// export through the CLI: JSON keys, exit codes, hashes equal to crypto/*
// of the image, and verify failing (exit 1) once audit.log is edited.
func TestCaseWorkflowCLI(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.dd")
	data := make([]byte, 5<<20+77)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	os.WriteFile(img, data, 0o644)
	testutil.Unchanged(t, img)
	m, s1, s2 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data)
	wantMD5, wantSHA1, wantSHA256 := hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])
	cs := filepath.Join(dir, "case")
	key := filepath.Join(dir, "examiner.pem")

	if _, code := caseRun(t, "case", "init", cs, "--examiner", "X"); code != 2 {
		t.Fatalf("case init without --case-number: exit %d, want 2", code)
	}
	out, code := caseRun(t, "case", "init", cs, "--case-number", "CLI-1", "--examiner", "Ex Aminer", "--agency", "Lab", "--sign-key", key, "--json")
	if code != 0 {
		t.Fatalf("case init: exit %d", code)
	}
	var ci map[string]any
	if err := json.Unmarshal(out, &ci); err != nil || ci["case_number"] != "CLI-1" || ci["shards"] != float64(16) || ci["sign_public_key"] == "" {
		t.Fatalf("case init JSON %s %v", out, err)
	}
	if _, code := caseRun(t, "case", "init", cs, "--case-number", "CLI-1", "--examiner", "X"); code != 1 {
		t.Fatalf("case init on an existing case: exit %d, want 1", code)
	}

	// The case signs its audit log: a command that writes to it needs the
	// key (--sign-key or EVIDX_SIGN_KEY) and fails before doing anything.
	t.Setenv(custody.EnvSignKey, "")
	if r := runCLI(t, "evidence", "add", cs, img, "--id", "EV1"); r.code != 1 || !strings.Contains(r.err.Error(), "--sign-key") {
		t.Fatalf("evidence add on a signed case without the key: exit %d %v", r.code, r.err)
	}
	if b, _ := os.ReadFile(filepath.Join(cs, "audit.log")); bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("audit.log after a refused command:\n%s", b)
	}
	t.Setenv(custody.EnvSignKey, key)
	if _, code := caseRun(t, "evidence", "add", cs, img); code != 2 {
		t.Fatalf("evidence add without --id: exit %d", code)
	}
	if _, code := caseRun(t, "evidence", "add", cs, img, "--id", "EV1", "--md5", "xyz"); code != 2 {
		t.Fatalf("evidence add --md5 xyz: exit %d", code)
	}
	out, code = caseRun(t, "evidence", "add", cs, img, "--id", "EV1", "--sha256", strings.ToUpper(wantSHA256), "--json")
	if code != 0 {
		t.Fatalf("evidence add: exit %d %s", code, out)
	}
	var ev map[string]any
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["md5"] != wantMD5 || ev["sha1"] != wantSHA1 || ev["sha256"] != wantSHA256 || ev["size"] != float64(len(data)) || ev["verified"] != true {
		t.Fatalf("evidence add JSON %s", out)
	}
	out, code = caseRun(t, "evidence", "add", cs, img, "--id", "EV2", "--md5", strings.Repeat("0", 32), "--json")
	if code != 1 || !bytes.Contains(out, []byte(`"verified": false`)) {
		t.Fatalf("mismatching --md5: exit %d %s", code, out)
	}
	if _, code := caseRun(t, "evidence", "add", cs, filepath.Join(cs, "audit.log"), "--id", "EV3"); code != 1 {
		t.Fatalf("image inside the case: exit %d", code)
	}
	if _, code := caseRun(t, "evidence", "add", cs, dir, "--id", "EV3"); code != 1 {
		t.Fatalf("directory as image: exit %d", code)
	}

	out, code = caseRun(t, "report", cs, "--sign", key, "--json")
	if code != 0 {
		t.Fatalf("report: exit %d %s", code, out)
	}
	html, _ := os.ReadFile(filepath.Join(cs, "reports", "report.html"))
	for _, h := range []string{wantMD5, wantSHA1, wantSHA256} {
		if !bytes.Contains(html, []byte(h)) {
			t.Errorf("report.html lacks %s", h)
		}
	}
	out, code = caseRun(t, "verify", cs, "--evidence", "--json")
	var vr struct {
		OK       bool             `json:"ok"`
		Checks   []map[string]any `json:"checks"`
		Failures []string         `json:"failures"`
	}
	if err := json.Unmarshal(out, &vr); err != nil || code != 0 || !vr.OK || len(vr.Checks) < 5 || vr.Failures == nil {
		t.Fatalf("verify: exit %d %s %v", code, out, err)
	}

	exp := filepath.Join(dir, "export", "files")
	out, code = caseRun(t, "export", cs, "--files", exp, "--json")
	if code != 0 || !bytes.Contains(out, []byte(`"manifest"`)) {
		t.Fatalf("export: exit %d %s", code, out)
	}
	if _, code := caseRun(t, "export", cs); code != 2 {
		t.Fatalf("export without --files: exit %d", code)
	}

	// One edited byte of the audit log: verify exits 1 naming the line.
	alog := filepath.Join(cs, "audit.log")
	b, _ := os.ReadFile(alog)
	i := bytes.Index(b, []byte("EV1"))
	b[i+2] = '9'
	os.WriteFile(alog, b, 0o600)
	out, code = caseRun(t, "verify", cs)
	if code != 1 || !bytes.Contains(out, []byte("audit.log line")) {
		t.Fatalf("verify after editing audit.log: exit %d\n%s", code, out)
	}
	// The same through the built binary: stderr carries the one-line reason.
	bin := filepath.Join(t.TempDir(), "evidx")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "verify", cs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "audit.log line") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("binary verify: %v, stderr %q", err, stderr.String())
	}
}

// TestEvidenceAddEWFAndSplit registers an E01 made by ewfacquire (several
// 1 MiB segments) and a split raw image made by split(1) of the same random
// media: both must give crypto/* hashes of the media, the E01 verified
// against its stored hashes. A flipped byte inside an E01 chunk makes a
// later `verify --evidence` fail naming the item.
func TestEvidenceAddEWFAndSplit(t *testing.T) {
	testutil.NeedTool(t, "ewfacquire")
	dir := t.TempDir()
	raw := filepath.Join(dir, "media.raw")
	data := make([]byte, 3<<20+5*512) // not a multiple of the 32 KiB chunk
	r := rand.New(rand.NewPCG(9, 9))
	for i := range data {
		data[i] = byte(r.Uint32() & 0x0f) // compressible, so deflate chunks exist
	}
	os.WriteFile(raw, data, 0o644)
	s2 := sha256.Sum256(data)
	m := md5.Sum(data)
	wantSHA256, wantMD5 := hex.EncodeToString(s2[:]), hex.EncodeToString(m[:])
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "img"), "-c", "deflate:fast", "-S", "1MiB",
		"-C", "CASE-E", "-e", "Examiner E", "-E", "EVE", "-D", "test disk", raw)
	e01 := filepath.Join(dir, "img.E01")
	split := filepath.Join(dir, "part.")
	testutil.Run(t, "split", "-b", "1000000", "-d", "-a", "3", "--numeric-suffixes=1", raw, split)
	testutil.Unchanged(t, e01, split+"001")

	cs := filepath.Join(dir, "case")
	if _, code := caseRun(t, "case", "init", cs, "--case-number", "E-1", "--examiner", "E"); code != 0 {
		t.Fatal("case init")
	}
	out, code := caseRun(t, "evidence", "add", cs, e01, "--id", "E01", "--json")
	var ev struct {
		Format   string            `json:"format"`
		MD5      string            `json:"md5"`
		SHA256   string            `json:"sha256"`
		Verified *bool             `json:"verified"`
		Stored   map[string]string `json:"stored"`
		Segments []map[string]any  `json:"segments"`
		Header   map[string]string `json:"header"`
	}
	if err := json.Unmarshal(out, &ev); err != nil || code != 0 {
		t.Fatalf("evidence add E01: exit %d %s", code, out)
	}
	if ev.Format != "ewf" || ev.SHA256 != wantSHA256 || ev.MD5 != wantMD5 || ev.Verified == nil || !*ev.Verified || ev.Stored["md5"] != wantMD5 || len(ev.Segments) < 2 {
		t.Fatalf("E01 intake %s", out)
	}
	out, code = caseRun(t, "evidence", "add", cs, split+"001", "--id", "SPLIT", "--md5", wantMD5, "--json")
	if code != 0 || !bytes.Contains(out, []byte(wantSHA256)) || !bytes.Contains(out, []byte(`"format": "split"`)) {
		t.Fatalf("split intake: exit %d %s", code, out)
	}
	if _, code := caseRun(t, "verify", cs, "--evidence"); code != 0 {
		t.Fatalf("verify --evidence: exit %d", code)
	}
	// Flip one byte in the middle of the first segment (chunk data), then
	// verify --evidence must fail naming E01; restore afterwards.
	orig, _ := os.ReadFile(e01)
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(e01, bad, 0o644)
	out, code = caseRun(t, "verify", cs, "--evidence")
	os.WriteFile(e01, orig, 0o644)
	if code != 1 || !bytes.Contains(out, []byte("evidence E01")) {
		t.Fatalf("verify --evidence after corrupting the E01: exit %d\n%s", code, out)
	}
	// A corrupted copy registered afresh: recorded, not verified (exit 1),
	// the bad chunk listed as a container error apart from the hash result.
	bdir := t.TempDir()
	segs, _ := filepath.Glob(filepath.Join(dir, "img.E*"))
	for _, sg := range segs {
		b, _ := os.ReadFile(sg)
		if filepath.Base(sg) == "img.E01" {
			b = bad
		}
		os.WriteFile(filepath.Join(bdir, filepath.Base(sg)), b, 0o644)
	}
	out, code = caseRun(t, "evidence", "add", cs, filepath.Join(bdir, "img.E01"), "--id", "BAD", "--json")
	var bev struct {
		Verified        *bool    `json:"verified"`
		ContainerErrors []string `json:"container_errors"`
	}
	json.Unmarshal(out, &bev)
	if code != 1 || bev.Verified == nil || *bev.Verified || len(bev.ContainerErrors) == 0 || !strings.Contains(bev.ContainerErrors[0], "sectors") {
		t.Fatalf("corrupted E01 intake: exit %d %s", code, out)
	}
}

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

	"github.com/evidx/evidx/internal/testutil"
)

// caseRun runs the CLI in-process and returns stdout and the exit code
// main would use.
func caseRun(t *testing.T, argv ...string) ([]byte, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(argv)
	err := root.Execute()
	return out.Bytes(), exitCode(err)
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

// Package testutil holds helpers shared by evidx tests: finding the external
// tools that build real test images, and hashing files to prove evidence was
// not changed.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of an external program a test needs (mkfs.fat,
// ewfacquire, fls, ...). Under CI, where scripts/deps.sh installs every tool,
// a missing one fails the test; elsewhere the test is skipped.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (scripts/deps.sh installs it)", name)
	}
	t.Skipf("%s not installed; run scripts/deps.sh", name)
	return ""
}

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(NeedTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// SHA256File returns the hex SHA-256 of a file's content.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Unchanged records the SHA-256 of each evidence file and, when the test
// ends, fails it if any of them changed: evidence is never written.
func Unchanged(t testing.TB, paths ...string) {
	t.Helper()
	before := make(map[string]string, len(paths))
	for _, p := range paths {
		before[p] = SHA256File(t, p)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			if got := SHA256File(t, p); got != before[p] {
				t.Errorf("evidence %s was modified: sha256 %s, was %s", p, got, before[p])
			}
		}
	})
}

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestVerifyPubkeyOpenSSL: a case signed with a key made by openssl, and one
// with a key evidx generated, both verify against the public key as
// `openssl pkey -pubout` writes it; a forged appended line and a replaced
// signing.pub each fail `verify --pubkey`, naming what failed.
func TestVerifyPubkeyOpenSSL(t *testing.T) {
	testutil.NeedTool(t, "openssl")
	dir := t.TempDir()
	data := filepath.Join(dir, "leak.csv")
	os.WriteFile(data, []byte("name,phone\na,13812345678\nb,13912345678\n"), 0o600)

	for _, made := range []string{"openssl", "evidx"} {
		t.Run(made, func(t *testing.T) {
			key := filepath.Join(dir, made+"-key.pem")
			if made == "openssl" {
				testutil.Run(t, "openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
			}
			cs := filepath.Join(dir, made+"-case")
			if r := runCLI(t, "case", "init", cs, "--case-number", "S1", "--examiner", "Ann", "--sign-key", key); r.err != nil {
				t.Fatalf("case init: %v %s", r.err, r.stderr)
			}
			if r := runCLI(t, "dataset", "add", cs, data, "--sign-key", key); r.err != nil {
				t.Fatalf("dataset add: %v %s", r.err, r.stderr)
			}
			pub := filepath.Join(dir, made+"-pub.pem")
			testutil.Run(t, "openssl", "pkey", "-in", key, "-pubout", "-out", pub)
			if r := runCLI(t, "verify", cs, "--pubkey", pub); r.err != nil {
				t.Fatalf("verify --pubkey on the untouched case: %v\n%s\n%s", r.err, r.stdout, r.stderr)
			}

			// An appended line with a correct prev but no signature.
			audit := filepath.Join(cs, "audit.log")
			orig, _ := os.ReadFile(audit)
			lines := strings.Split(strings.TrimSuffix(string(orig), "\n"), "\n")
			// The forger copies the last line, numbers it next and chains
			// it to the last line's hash; only the signature is missing.
			var e map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
				t.Fatal(err)
			}
			e["seq"] = e["seq"].(float64) + 1
			sum := sha256.Sum256([]byte(lines[len(lines)-1]))
			e["prev"] = hex.EncodeToString(sum[:])
			delete(e, "sig")
			fb, _ := json.Marshal(e)
			forged := string(fb)
			os.WriteFile(audit, append(append([]byte{}, orig...), forged+"\n"...), 0o600)
			r := runCLI(t, "verify", cs, "--pubkey", pub)
			if r.err == nil || r.code == 0 || !strings.Contains(string(r.stdout)+r.stderr, "not signed") {
				t.Errorf("verify --pubkey on a forged appended line: %v\n%s%s", r.err, r.stdout, r.stderr)
			}
			os.WriteFile(audit, orig, 0o600)

			// signing.pub replaced by another key's.
			other := filepath.Join(dir, made+"-other.pem")
			testutil.Run(t, "openssl", "genpkey", "-algorithm", "ed25519", "-out", other)
			otherPub := testutil.Run(t, "openssl", "pkey", "-in", other, "-pubout")
			spub := filepath.Join(cs, "signing.pub")
			was, _ := os.ReadFile(spub)
			os.WriteFile(spub, otherPub, 0o600)
			if r := runCLI(t, "verify", cs, "--pubkey", pub); r.err == nil || !strings.Contains(string(r.stdout)+r.stderr, "signing.pub") {
				t.Errorf("verify --pubkey passed a replaced signing.pub: %v\n%s%s", r.err, r.stdout, r.stderr)
			}
			os.WriteFile(spub, was, 0o600)
			if r := runCLI(t, "verify", cs, "--pubkey", pub); r.err != nil {
				t.Errorf("verify after restoring: %v\n%s", r.err, r.stdout)
			}
		})
	}
}

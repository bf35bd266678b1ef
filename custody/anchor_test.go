package custody

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// signedFixture is a signed case (key outside it) with one raw evidence
// item and a signed report, closed; attacks work on copies of it.
type signedFixture struct {
	dir, key, img string
	pub           ed25519.PublicKey
	sha256        string
}

func buildSignedCase(t *testing.T) signedFixture {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	fx := signedFixture{dir: filepath.Join(tmp, "case"), key: filepath.Join(tmp, "examiner.pem")}
	if _, err := LoadOrCreateKey(fx.key); err != nil {
		t.Fatal(err)
	}
	priv, err := LoadKey(fx.key)
	if err != nil {
		t.Fatal(err)
	}
	fx.pub = priv.Public().(ed25519.PublicKey)
	if _, err := InitSigned(ctx, filepath.Join(fx.key, "case"), Meta{CaseNumber: "S", Examiner: "s"}, fx.key); err == nil {
		t.Fatal("InitSigned accepted a key inside the case directory")
	}
	c, err := InitSigned(ctx, fx.dir, Meta{CaseNumber: "S-1", Examiner: "Sig Ner"}, fx.key)
	if err != nil {
		t.Fatal(err)
	}
	var sums [3]string
	fx.img, sums = randomImage(t, tmp, 1<<20+3, 77)
	fx.sha256 = sums[2]
	if _, err := c.AddEvidenceImage(ctx, Intake{ID: "EV1", Paths: []string{fx.img}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteReport(ctx, ReportOptions{SignKey: fx.key}); err != nil {
		t.Fatal(err)
	}
	if err := c.Audit(Entry{Action: "test.after-report"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return fx
}

// copyCase copies the case directory to a new place and returns it.
func copyCase(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "case")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// verifyCopy opens dir read-only (as a checker without the private key)
// and verifies it against pub.
func verifyCopy(t *testing.T, dir string, pub ed25519.PublicKey, evidence bool) *VerifyResult {
	t.Helper()
	c, err := OpenWith(context.Background(), dir, OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Verify(context.Background(), VerifyOptions{PubKey: pub, Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	if res.NotRecorded == "" {
		t.Fatal("verify of a signed case opened without its key says it recorded itself")
	}
	return res
}

func wantFail(t *testing.T, what string, res *VerifyResult, subs ...string) {
	t.Helper()
	all := strings.Join(res.Failures, "\n")
	if res.OK {
		t.Fatalf("%s: verify passed", what)
	}
	for _, s := range subs {
		if !strings.Contains(all, s) {
			t.Fatalf("%s: no failure naming %q in:\n%s", what, s, all)
		}
	}
}

var prevRE = regexp.MustCompile(`"prev":"[0-9a-f]{64}"`)

// rewriteLog rewrites audit.log as an attacker with write access to the
// case would: each line's bytes (without its signature) go through edit,
// every prev is recomputed, and the catalog's head and seq are set to the
// new last line. With signer the lines are signed again with it (the
// attacker's own key); without, each keeps the signature it had.
func rewriteLog(t *testing.T, dir string, edit func(n int, msg []byte) []byte, signer ed25519.PrivateKey) {
	t.Helper()
	p := filepath.Join(dir, AuditName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	prev := Genesis
	n := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		n++
		msg, sig, signed := SignedMessage(line)
		if !signed {
			msg = line
		}
		msg = edit(n, msg)
		msg = prevRE.ReplaceAll(msg, []byte(`"prev":"`+prev+`"`))
		switch {
		case signer != nil:
			sig, signed = ed25519.Sign(signer, msg), true
		}
		if signed {
			msg = append(msg[:len(msg)-1], []byte(`,"sig":"`+hex.EncodeToString(sig)+`"}`)...)
		}
		out.Write(msg)
		out.WriteByte('\n')
		s := sha256.Sum256(msg)
		prev = hex.EncodeToString(s[:])
	}
	if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, dir, `UPDATE case_info SET audit_seq=?, audit_head=? WHERE id=1`, n, prev)
}

func sqlExec(t *testing.T, dir, q string, args ...any) {
	t.Helper()
	db, err := openDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

func TestSignedCaseAttacks(t *testing.T) {
	ctx := context.Background()
	fx := buildSignedCase(t)

	// The untouched case passes, against the PEM the examiner keeps.
	pem := filepath.Join(t.TempDir(), "pub.pem")
	os.WriteFile(pem, PublicKeyPEM(fx.pub), 0o600)
	pub, err := LoadPublicKey(pem)
	if err != nil || !pub.Equal(fx.pub) {
		t.Fatalf("LoadPublicKey: %v", err)
	}
	if res := verifyCopy(t, copyCase(t, fx.dir), pub, true); !res.OK {
		t.Fatalf("untouched case: %v", res.Failures)
	}
	// Every line is signed, and the signature covers the line without it.
	b, _ := os.ReadFile(filepath.Join(fx.dir, AuditName))
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		msg, sig, ok := SignedMessage(line)
		if !ok || !ed25519.Verify(fx.pub, msg, sig) || bytes.Contains(msg, []byte(`"sig"`)) {
			t.Fatalf("line %d not signed as documented: %s", i+1, line)
		}
	}

	// Writing needs the key; a key other than the case's is refused.
	if _, err := Open(ctx, fx.dir); !errors.Is(err, ErrNeedSignKey) {
		t.Fatalf("open without the key: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other.pem")
	LoadOrCreateKey(other)
	if _, err := OpenWith(ctx, fx.dir, OpenOptions{SignKey: other}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("open with another key: %v", err)
	}
	ro, err := OpenWith(ctx, copyCase(t, fx.dir), OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Audit(Entry{Action: "x"}); !errors.Is(err, ErrNeedSignKey) {
		t.Fatalf("audit without the key: %v", err)
	}
	ro.Close()
	attacker, _ := LoadKey(other)

	t.Run("appended line", func(t *testing.T) {
		dir := copyCase(t, fx.dir)
		p := filepath.Join(dir, AuditName)
		last, err := lastLine(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		n := bytes.Count(b, []byte("\n"))
		forged := fmt.Sprintf(`{"seq":%d,"time":"2026-01-01T00:00:00Z","action":"evidence.walk","command":["evidx"],"tool":"evidx","version":"x","revision":"","user":"u","host":"h","pid":1,"outcome":"ok","prev":"%s"}`, n+1, hashLine(last))
		os.WriteFile(p, append(b, forged+"\n"...), 0o600)
		sqlExec(t, dir, `UPDATE case_info SET audit_seq=?, audit_head=? WHERE id=1`, n+1, hashLine([]byte(forged)))
		wantFail(t, "appended unsigned line", verifyCopy(t, dir, pub, false), fmt.Sprintf("audit.log line %d (evidence.walk): not signed", n+1))
		// Signed with another key, it fails too; so it does without
		// --pubkey, against the case's own key.
		rewriteLog(t, dir, func(k int, m []byte) []byte { return m }, nil)
		os.WriteFile(p, append(b, []byte(forged[:len(forged)-1]+`,"sig":"`+hex.EncodeToString(ed25519.Sign(attacker, []byte(forged)))+`"}`+"\n")...), 0o600)
		wantFail(t, "appended line signed by another key", verifyCopy(t, dir, nil, false), fmt.Sprintf("audit.log line %d (evidence.walk): signature does not verify with the case's own key", n+1))
	})

	t.Run("rewritten history", func(t *testing.T) {
		// The image swapped for another: its hash changed in the
		// evidence.add line and the catalog, the chain and head recomputed.
		dir := copyCase(t, fx.dir)
		fake := strings.Repeat("ab", 32)
		rewriteLog(t, dir, func(n int, m []byte) []byte { return bytes.ReplaceAll(m, []byte(fx.sha256), []byte(fake)) }, nil)
		sqlExec(t, dir, `UPDATE evidence SET sha256=? WHERE id='EV1'`, fake)
		sqlExec(t, dir, `UPDATE segments SET sha256=? WHERE evidence_id='EV1'`, fake)
		sqlExec(t, dir, `UPDATE audit_catalog SET row_json=replace(row_json, ?, ?)`, fx.sha256, fake)
		res := verifyCopy(t, dir, pub, false)
		wantFail(t, "rewritten history", res, "signature does not verify with the --pubkey key", "is not a line of the audit log before it (history rewritten)")
		// Without --pubkey the case's own key catches it just the same.
		wantFail(t, "rewritten history, no --pubkey", verifyCopy(t, dir, nil, false), "signature does not verify with the case's own key")

		// Re-signed with the attacker's key, signing.pub and the catalog's
		// key replaced: only --pubkey (and the report heads) tell.
		dir = copyCase(t, fx.dir)
		apub := hex.EncodeToString(attacker.Public().(ed25519.PublicKey))
		rewriteLog(t, dir, func(n int, m []byte) []byte {
			m = bytes.ReplaceAll(m, []byte(fx.sha256), []byte(fake))
			return bytes.ReplaceAll(m, []byte(hex.EncodeToString(fx.pub)), []byte(apub))
		}, attacker)
		sqlExec(t, dir, `UPDATE case_info SET sign_public_key=?`, apub)
		os.WriteFile(filepath.Join(dir, PubKeyName), []byte(apub+"\n"), 0o600)
		sqlExec(t, dir, `UPDATE evidence SET sha256=? WHERE id='EV1'`, fake)
		sqlExec(t, dir, `UPDATE segments SET sha256=? WHERE evidence_id='EV1'`, fake)
		wantFail(t, "re-signed history", verifyCopy(t, dir, pub, false),
			"audit.log line 1 (case.init): signature does not verify with the --pubkey key", "signing.pub: key", "is not the --pubkey key",
			"is not a line of the audit log before it")
	})

	t.Run("edited catalog row", func(t *testing.T) {
		dir := copyCase(t, fx.dir)
		sqlExec(t, dir, `UPDATE evidence SET sha256=? WHERE id='EV1'`, strings.Repeat("0", 64))
		res := verifyCopy(t, dir, pub, true)
		wantFail(t, "edited evidence row", res, "catalog: evidence EV1 sha256 differs from the audit log")
		for _, ch := range res.Checks {
			if ch.Name == "evidence EV1" && !ch.OK {
				t.Fatalf("verify --evidence blamed the untouched image: %v", res.Failures)
			}
		}
		for _, f := range res.Failures {
			if strings.HasPrefix(f, "evidence EV1") {
				t.Fatalf("image blamed: %s", f)
			}
		}
		// A row added by hand is named too.
		dir = copyCase(t, fx.dir)
		sqlExec(t, dir, `INSERT INTO evidence(id, format, size, sector_size, md5, sha1, sha256, added_at) VALUES ('EV9','raw',1,512,'','','','')`)
		wantFail(t, "added evidence row", verifyCopy(t, dir, pub, false), "catalog: evidence EV9 is not in the audit log")
		// And the image changed, with the catalog untouched, is the image.
		dir = copyCase(t, fx.dir)
		orig, _ := os.ReadFile(fx.img)
		bad := bytes.Clone(orig)
		bad[1000] ^= 1
		os.WriteFile(fx.img, bad, 0o644)
		res = verifyCopy(t, dir, pub, true)
		os.WriteFile(fx.img, orig, 0o644)
		wantFail(t, "changed image", res, "evidence EV1 ("+fx.img+"): SHA-256 now")
	})

	t.Run("replaced signing.pub", func(t *testing.T) {
		dir := copyCase(t, fx.dir)
		os.WriteFile(filepath.Join(dir, PubKeyName), []byte(hex.EncodeToString(attacker.Public().(ed25519.PublicKey))+"\n"), 0o600)
		wantFail(t, "replaced signing.pub", verifyCopy(t, dir, pub, false), "signing.pub: key", "(replaced)")
		wantFail(t, "replaced signing.pub, no --pubkey", verifyCopy(t, dir, nil, false), "signing.pub: key", "differs from the catalog's sign_public_key")
	})
}

// TestInterruptedLoad: a shard changed while its source's load is
// unfinished (status 'loading', or a hot journal) is named as an
// interrupted load, not as a changed shard.
func TestInterruptedLoad(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		t.Fatal(err)
	}
	src := index.Source{Name: "leak.csv", SHA256: strings.Repeat("c", 64), Size: 100}
	if _, err := ix.AddSource(ctx, src, func(ctx context.Context, sink func([]identity.Sighting) error) (index.FileInfo, error) {
		return index.FileInfo{Rows: 1}, sink([]identity.Sighting{{Kind: identity.Email, Value: "a@example.org", Loc: "line 1"}})
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Audit(Entry{Action: "dataset.add", Inputs: []Item{{Kind: "dataset", SHA256: src.SHA256}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordShards(ctx); err != nil {
		t.Fatal(err)
	}
	if vr, err := c.Verify(ctx, VerifyOptions{NoAudit: true}); err != nil || !vr.OK {
		t.Fatalf("%v %v", err, vr.Failures)
	}
	shard := ix.ShardPath(0)
	orig, _ := os.ReadFile(shard)
	mod := bytes.Clone(orig)
	mod[len(mod)-1] ^= 1
	os.WriteFile(shard, mod, 0o600)
	vr, _ := c.Verify(ctx, VerifyOptions{NoAudit: true})
	wantFail(t, "edited shard", vr, "index/shard-000.sqlite: changed")

	os.WriteFile(shard+"-journal", []byte("journal"), 0o600)
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	wantFail(t, "hot journal", vr, "index/shard-000.sqlite: interrupted load (hot journal shard-000.sqlite-journal); rerun")
	os.Remove(shard + "-journal")

	if _, err := c.DB().Exec(`UPDATE sources SET status='loading'`); err != nil {
		t.Fatal(err)
	}
	vr, _ = c.Verify(ctx, VerifyOptions{NoAudit: true})
	wantFail(t, "source loading", vr, "index/shard-000.sqlite: interrupted load of source leak.csv (cccccccccccc); rerun",
		"catalog: interrupted load of source leak.csv")
	if strings.Contains(strings.Join(vr.Failures, "\n"), "changed") {
		t.Fatalf("interrupted load called a change: %v", vr.Failures)
	}
}

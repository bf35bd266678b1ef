package custody

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/index"
	"golang.org/x/sync/errgroup"
)

// Rehasher re-reads an evidence item's media for verify --evidence and
// returns the digests of its data (for E01: of the media, not the files).
type Rehasher func(ctx context.Context, ev Evidence) (digest.Sums, error)

// VerifyOptions select what Verify checks.
type VerifyOptions struct {
	Evidence bool     // also re-hash every evidence image and compare with intake
	Rehash   Rehasher // nil: the segments concatenated (raw and split raw only)
	Workers  int      // files hashed at once (default 2)
	NoAudit  bool     // do not record the verification in the audit log
	// PubKey, when set, is the examiner's public key from outside the
	// case: every audit line must carry a signature by it, and the case's
	// own key (signing.pub, case_info) must be it. Nil: a signed case is
	// checked against its own recorded key, which whoever can write the
	// case can replace.
	PubKey ed25519.PublicKey
}

// Check is one verification step.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// VerifyResult is the outcome of Verify: OK only when there is no failure.
// Each failure is one line naming what changed.
type VerifyResult struct {
	OK       bool     `json:"ok"`
	Checks   []Check  `json:"checks"`
	Failures []string `json:"failures"`
	// Head is the SHA-256 of the last audit line read and Lines the count:
	// without a key, compare Head with the head printed on the last report.
	Head  string `json:"audit_head"`
	Lines int64  `json:"audit_lines"`
	// NotRecorded says why the verification was not written to the audit
	// log ("" when it was, or when NoAudit asked so).
	NotRecorded string `json:"not_recorded,omitempty"`
}

func (r *VerifyResult) check(name string, failures []string, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: len(failures) == 0, Detail: detail})
	r.Failures = append(r.Failures, failures...)
}

// Verify checks the case: the audit chain (and its head against the
// catalog, which catches lines cut from the end), every stored object
// against its SHA-256 name and every files/carved row against its object,
// every index shard against the hash recorded after its last load, every
// report file against the last report's audit entry and SHA256SUMS (and
// its signature), and with opts.Evidence every evidence image against its
// intake hashes. The error is for failures to run, not for findings.
func (c *Case) Verify(ctx context.Context, opts VerifyOptions) (*VerifyResult, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	res := &VerifyResult{Failures: []string{}}
	au, err := c.verifyAudit(ctx, res, opts.PubKey)
	if err != nil {
		return nil, err
	}
	lines := au.lines
	cat, err := c.verifyCatalog(ctx, res, lines)
	if err != nil {
		return nil, err
	}
	if err := c.verifyObjects(ctx, res, opts.Workers); err != nil {
		return nil, err
	}
	c.verifyShards(ctx, res, lines, cat.interrupted)
	c.verifyOutputs(res, lines)
	c.verifyReports(res, au)
	c.verifyAccess(res)
	if opts.Evidence {
		if err := c.verifyEvidence(ctx, res, opts.Rehash, cat.evidence); err != nil {
			return nil, err
		}
	}
	res.OK = len(res.Failures) == 0
	if !opts.NoAudit && c.signedAudit && c.signer == nil {
		res.NotRecorded = "the case signs its audit log and was opened without its key"
		opts.NoAudit = true
	}
	if !opts.NoAudit {
		outcome := OutcomeOK
		if !res.OK {
			outcome = OutcomeFailed
		}
		if err := c.Audit(Entry{Action: "verify", Outcome: outcome, Error: strings.Join(res.Failures, "; "),
			Details: map[string]any{"evidence": opts.Evidence, "checks": res.Checks}}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// auditRead is what verifyAudit read: the good lines and, per line
// SHA-256, its seq.
type auditRead struct {
	lines []Line
	sums  map[string]int64
}

// maxSigFailures bounds the signature failures listed one by one.
const maxSigFailures = 5

// verifyAudit checks the chain, the signatures and the case's key, and
// returns the good lines.
func (c *Case) verifyAudit(ctx context.Context, res *VerifyResult, pub ed25519.PublicKey) (auditRead, error) {
	au := auditRead{sums: map[string]int64{}}
	var seq int64
	var head string
	// The catalog is read first: lines appended meanwhile by another
	// process only make the log longer than the record.
	if err := c.db.QueryRowContext(ctx, `SELECT audit_seq, audit_head FROM case_info WHERE id=1`).Scan(&seq, &head); err != nil {
		return au, fmt.Errorf("custody: verify: %w", err)
	}
	f, err := os.Open(filepath.Join(c.dir, AuditName))
	if err != nil {
		res.check("audit chain", []string{"audit.log: " + err.Error()}, "")
		return au, nil
	}
	defer f.Close()
	// Signatures are checked against the examiner's key when given, else
	// against the case's own (a signed case: its first line is signed).
	key, keyName := pub, "the --pubkey key"
	if key == nil && c.signedAudit {
		b, err := hex.DecodeString(c.meta.SignPubKey)
		if err == nil && len(b) == ed25519.PublicKeySize {
			key = b
		}
		keyName = "the case's own key"
	}
	var sigFails []string
	nSig := 0
	var sumAtSeq string
	ch, err := verifyChain(f, func(l Line, sum string, body []byte) {
		au.lines = append(au.lines, l)
		au.sums[sum] = l.Seq
		if l.Seq == seq {
			sumAtSeq = sum
		}
		if key == nil && (pub != nil || c.signedAudit) {
			nSig++
			if nSig <= maxSigFailures {
				sigFails = append(sigFails, fmt.Sprintf("audit.log line %d: cannot check its signature: the case's recorded key %.16s… is not an ed25519 key", l.Seq, c.meta.SignPubKey))
			}
			return
		}
		if key == nil {
			return
		}
		if why := checkLineSig(l, body, key); why != "" {
			nSig++
			if nSig <= maxSigFailures {
				sigFails = append(sigFails, fmt.Sprintf("audit.log line %d (%s): %s with %s (line forged, edited or re-signed)", l.Seq, l.Action, why, keyName))
			}
		}
	})
	if nSig > maxSigFailures {
		sigFails = append(sigFails, fmt.Sprintf("audit.log: %d more lines whose signature does not verify with %s", nSig-maxSigFailures, keyName))
	}
	var fails []string
	if err != nil {
		fails = append(fails, err.Error())
	} else {
		switch {
		case ch.Lines < seq:
			fails = append(fails, fmt.Sprintf("audit.log: %d lines, the catalog recorded %d (lines removed from the end)", ch.Lines, seq))
		case seq > 0 && sumAtSeq != head:
			fails = append(fails, fmt.Sprintf("audit.log line %d: edited (SHA-256 %.16s… differs from the head %.16s… recorded in the catalog)", seq, sumAtSeq, head))
		}
	}
	res.Head, res.Lines = ch.Head, ch.Lines
	res.check("audit chain", fails, fmt.Sprintf("%d lines, head SHA-256 %s", ch.Lines, ch.Head))
	switch {
	case pub != nil:
		sigFails = append(sigFails, c.checkCaseKey(pub)...)
		res.check("audit signatures", sigFails, fmt.Sprintf("every line checked against the --pubkey key %x", []byte(pub)))
	case c.signedAudit:
		sigFails = append(sigFails, c.checkCaseKey(nil)...)
		res.check("audit signatures", sigFails, "checked against the case's own key signing.pub; give --pubkey with the examiner's copy to rule out a replaced key")
	default:
		res.check("audit signatures", nil, "the audit log is not signed (case created without --sign-key): compare the head with the one printed on the last report")
	}
	return au, nil
}

// checkCaseKey compares signing.pub and case_info's key with pub (when
// given) and with each other.
func (c *Case) checkCaseKey(pub ed25519.PublicKey) []string {
	var fails []string
	b, err := os.ReadFile(filepath.Join(c.dir, PubKeyName))
	file := strings.TrimSpace(string(b))
	switch {
	case err != nil:
		fails = append(fails, fmt.Sprintf("%s: %v", PubKeyName, err))
	case file != c.meta.SignPubKey:
		fails = append(fails, fmt.Sprintf("%s: key %.16s… differs from the catalog's sign_public_key %.16s… (replaced)", PubKeyName, file, c.meta.SignPubKey))
	}
	if pub != nil {
		want := hex.EncodeToString(pub)
		if err == nil && file != want {
			fails = append(fails, fmt.Sprintf("%s: key %.16s… is not the --pubkey key %.16s… (replaced)", PubKeyName, file, want))
		}
		if c.meta.SignPubKey != want {
			fails = append(fails, fmt.Sprintf("catalog: case sign_public_key %.16s… is not the --pubkey key %.16s…", c.meta.SignPubKey, want))
		}
	}
	return fails
}

// verifyObjects re-hashes the content store with `workers` goroutines.
func (c *Case) verifyObjects(ctx context.Context, res *VerifyResult, workers int) error {
	root := filepath.Join(c.dir, ObjectsDir)
	var paths []string
	var fails []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fails = append(fails, fmt.Sprintf("objects: %v", err))
			return nil
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".incoming-") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("custody: verify objects: %w", err)
	}
	good := make(map[string]bool, len(paths))
	bad := map[string]string{} // sum -> why
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, p := range paths {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			name := filepath.Base(p)
			rel, _ := filepath.Rel(c.dir, p)
			want, _ := c.ObjectPath(name)
			sum, _, err := hashFile(p)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !isHex(name, 64) || want != p:
				fails = append(fails, fmt.Sprintf("%s: not a content-store name (file added to the store)", rel))
			case err != nil:
				bad[name] = err.Error()
				fails = append(fails, fmt.Sprintf("%s: %v", rel, err))
			case sum != name:
				bad[name] = "changed"
				fails = append(fails, fmt.Sprintf("%s: content changed (SHA-256 now %s)", rel, sum))
			default:
				good[name] = true
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("custody: verify objects: %w", err)
	}
	// Every recorded object and every row's object must be there and good.
	rows, err := c.db.QueryContext(ctx, `SELECT sha256 FROM objects`)
	if err != nil {
		return fmt.Errorf("custody: verify objects: %w", err)
	}
	recorded := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("custody: verify objects: %w", err)
		}
		recorded++
		if !good[s] && bad[s] == "" {
			fails = append(fails, fmt.Sprintf("object %s: missing from the content store", s))
		}
	}
	rows.Close()
	rowCheck := func(what string, q string) error {
		rows, err := c.db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("custody: verify %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var ev, name, sum string
			var obj sql.NullString
			if err := rows.Scan(&ev, &name, &sum, &obj); err != nil {
				return fmt.Errorf("custody: verify %s: %w", what, err)
			}
			o := obj.String
			switch {
			case sum != "" && sum != o:
				fails = append(fails, fmt.Sprintf("%s %s %s: recorded SHA-256 %s but stored object %s", what, ev, oneLine(name), sum, o))
			case bad[o] != "":
				fails = append(fails, fmt.Sprintf("%s %s %s: stored copy objects/%s/%s/%s changed", what, ev, oneLine(name), o[:2], o[2:4], o))
			case !good[o]:
				fails = append(fails, fmt.Sprintf("%s %s %s: stored copy %s missing", what, ev, oneLine(name), o))
			}
		}
		return rows.Err()
	}
	if err := rowCheck("file", `SELECT evidence_id, 'volume ' || volume || ' ' || path, sha256, object FROM files WHERE object IS NOT NULL`); err != nil {
		return err
	}
	if err := rowCheck("carved", `SELECT evidence_id, 'at offset ' || offset || ' (' || type || ')', sha256, object FROM carved WHERE object IS NOT NULL`); err != nil {
		return err
	}
	sort.Strings(fails)
	res.check("stored objects", fails, fmt.Sprintf("%d objects hashed, %d recorded", len(paths), recorded))
	return nil
}

// lastRecorded returns, per case-relative path, the last audit item of
// the given kind among the outputs.
func lastRecorded(lines []Line, kind string) map[string]recorded {
	m := map[string]recorded{}
	for _, l := range lines {
		if l.Outcome != OutcomeOK {
			continue
		}
		for _, it := range l.Outputs {
			if it.Kind == kind {
				m[it.Path] = recorded{it, l.Seq}
			}
		}
	}
	return m
}

type recorded struct {
	Item
	seq int64
}

// verifyShards compares each index shard with its last recorded SHA-256.
// A shard that differs while a load is unfinished (a source with status
// 'loading', or the shard's hot rollback journal beside it) is named as
// an interrupted load, not as tampering: rerunning the load (or opening
// the index) rolls it back or completes it.
func (c *Case) verifyShards(ctx context.Context, res *VerifyResult, lines []Line, interrupted []string) {
	rec := lastRecorded(lines, "shard")
	var fails []string
	keys := sortedKeys(rec)
	for _, rel := range keys {
		r := rec[rel]
		p := filepath.Join(c.dir, rel)
		sum, _, err := hashFile(p)
		hot := false
		if st, jerr := os.Stat(p + "-journal"); jerr == nil && st.Size() > 0 {
			hot = true
		}
		switch {
		case err == nil && sum == r.SHA256:
		case len(interrupted) > 0:
			fails = append(fails, fmt.Sprintf("%s: interrupted load of %s; rerun (not tampering: differs from audit line %d while the load is unfinished)", rel, strings.Join(interrupted, ", "), r.seq))
		case hot:
			fails = append(fails, fmt.Sprintf("%s: interrupted load (hot journal %s-journal); rerun (not tampering: differs from audit line %d while the commit is unfinished)", rel, filepath.Base(rel), r.seq))
		case err != nil:
			fails = append(fails, fmt.Sprintf("%s: %v (recorded at audit line %d)", rel, err, r.seq))
		default:
			fails = append(fails, fmt.Sprintf("%s: changed: SHA-256 now %s, recorded %s at audit line %d", rel, sum, r.SHA256, r.seq))
		}
	}
	unrec := 0
	shards, _ := index.ShardFiles(filepath.Join(c.dir, IndexDir))
	for _, p := range shards {
		rel, _ := filepath.Rel(c.dir, p)
		if _, ok := rec[rel]; !ok {
			unrec++
		}
	}
	detail := fmt.Sprintf("%d shards checked", len(keys))
	if unrec > 0 {
		detail += fmt.Sprintf("; %d shard files have no recorded hash yet", unrec)
	}
	res.check("index shards", fails, detail)
}

// verifyOutputs checks every other file an action recorded as an output
// inside the case (feature files of a scan, ...), by its last record.
// Shards, reports and files outside the case (export manifests) are not
// included: the first two have their own checks, the last are not the
// case's to keep.
func (c *Case) verifyOutputs(res *VerifyResult, lines []Line) {
	rec := map[string]recorded{}
	for _, l := range lines {
		if l.Outcome != OutcomeOK {
			continue
		}
		for _, it := range l.Outputs {
			if it.Kind == "shard" || it.Kind == "report" || it.SHA256 == "" || !filepath.IsLocal(it.Path) {
				continue
			}
			rec[it.Path] = recorded{it, l.Seq}
		}
	}
	var fails []string
	for _, rel := range sortedKeys(rec) {
		r := rec[rel]
		sum, _, err := hashFile(filepath.Join(c.dir, rel))
		switch {
		case err != nil:
			fails = append(fails, fmt.Sprintf("%s: %v (recorded at audit line %d)", rel, err, r.seq))
		case sum != r.SHA256:
			fails = append(fails, fmt.Sprintf("%s: SHA-256 now %s, recorded %s at audit line %d", rel, sum, r.SHA256, r.seq))
		}
	}
	res.check("recorded outputs", fails, fmt.Sprintf("%d files recorded by other actions", len(rec)))
}

// verifyReports checks the files of the last report against its audit
// entry, each reports directory's SHA256SUMS, and its signature.
// Every report states the audit head it covers: that head must still be
// a line of the chain before the report's own line, or the history the
// report was made from has been rewritten.
func (c *Case) verifyReports(res *VerifyResult, au auditRead) {
	lines := au.lines
	var last *Line
	var fails []string
	for i := range lines {
		l := &lines[i]
		if l.Action != "report" || l.Outcome != OutcomeOK {
			continue
		}
		last = l
		head, _ := l.Details["audit_head"].(string)
		if seq, ok := au.sums[head]; !ok || seq >= l.Seq {
			fails = append(fails, fmt.Sprintf("report at audit line %d: its head %.16s… is not a line of the audit log before it (history rewritten)", l.Seq, head))
		}
	}
	if last == nil {
		res.check("reports", nil, "no report made yet")
		return
	}
	dirs := map[string]bool{}
	n := 0
	for _, it := range last.Outputs {
		if it.Kind != "report" {
			continue // shards recorded with the report are checked by verifyShards
		}
		n++
		p := it.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.dir, p)
		}
		dirs[filepath.Dir(p)] = true
		if filepath.Base(p) == "report.json" {
			fails = append(fails, checkReportHead(it.Path, p, au.sums)...)
		}
		sum, _, err := hashFile(p)
		switch {
		case err != nil:
			fails = append(fails, fmt.Sprintf("%s: %v (recorded at audit line %d)", it.Path, err, last.Seq))
		case sum != it.SHA256:
			fails = append(fails, fmt.Sprintf("%s: changed since the report (SHA-256 now %s, recorded %s at audit line %d)", it.Path, sum, it.SHA256, last.Seq))
		}
	}
	for _, d := range sortedKeys(dirs) {
		fails = append(fails, c.verifySums(d)...)
	}
	res.check("reports", fails, fmt.Sprintf("%d files of the report at audit line %d", n, last.Seq))
}

// checkReportHead checks that the head report.json states is in the chain.
func checkReportHead(name, p string, sums map[string]int64) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil // named by the hash check
	}
	var r struct {
		Audit struct {
			Head string `json:"head_sha256"`
		} `json:"audit"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return []string{fmt.Sprintf("%s: not a report: %v", name, err)}
	}
	if _, ok := sums[r.Audit.Head]; !ok {
		return []string{fmt.Sprintf("%s: the audit head %.16s… it states is not a line of the audit log (history rewritten)", name, r.Audit.Head)}
	}
	return nil
}

// verifySums checks dir/SHA256SUMS (sha256sum format) against the files it
// lists and the directory's other files, and SHA256SUMS.sig when present
// or when the case signs its reports.
func (c *Case) verifySums(dir string) []string {
	name := func(n string) string {
		if rel, err := filepath.Rel(c.dir, filepath.Join(dir, n)); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
		return filepath.Join(dir, n)
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name("SHA256SUMS"), err)}
	}
	var fails []string
	listed := map[string]bool{"SHA256SUMS": true, SigName: true}
	for i, line := range strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n") {
		sum, file, ok := strings.Cut(line, "  ")
		if !ok || !isHex(sum, 64) || file == "" || strings.ContainsAny(file, "/\\") {
			fails = append(fails, fmt.Sprintf("%s line %d: malformed", name("SHA256SUMS"), i+1))
			continue
		}
		listed[file] = true
		got, _, err := hashFile(filepath.Join(dir, file))
		switch {
		case err != nil:
			fails = append(fails, fmt.Sprintf("%s: %v", name(file), err))
		case got != sum:
			fails = append(fails, fmt.Sprintf("%s: does not match SHA256SUMS (SHA-256 now %s)", name(file), got))
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !listed[e.Name()] && !strings.HasPrefix(e.Name(), ".tmp-") {
			fails = append(fails, fmt.Sprintf("%s: not covered by SHA256SUMS (added after the report)", name(e.Name())))
		}
	}
	sig, err := os.ReadFile(filepath.Join(dir, SigName))
	switch {
	case err == nil && c.meta.SignPubKey == "":
		fails = append(fails, fmt.Sprintf("%s: present but the case has no signing key", name(SigName)))
	case err == nil && !c.verifySig(sums, string(sig)):
		fails = append(fails, fmt.Sprintf("%s: signature does not verify SHA256SUMS with the case's key", name(SigName)))
	case err != nil && !errors.Is(err, os.ErrNotExist):
		fails = append(fails, fmt.Sprintf("%s: %v", name(SigName), err))
	}
	return fails
}

// verifyEvidence re-hashes every evidence item and compares it with its
// intake hashes as the audit log recorded them (rec), not as the catalog
// has them now: an edited catalog row is the catalog check's finding, and
// the image is not blamed for it.
func (c *Case) verifyEvidence(ctx context.Context, res *VerifyResult, rehash Rehasher, rec map[string]recordedRow) error {
	evs, err := c.Evidence(ctx)
	if err != nil {
		return err
	}
	for i := range evs {
		if r, ok := rec[evs[i].ID]; ok {
			applyRecorded(&evs[i], r.row)
		}
	}
	if rehash == nil {
		rehash = func(ctx context.Context, ev Evidence) (digest.Sums, error) {
			if ev.Format != "raw" && ev.Format != "split" {
				return digest.Sums{}, fmt.Errorf("no reader for format %q", ev.Format)
			}
			paths := make([]string, len(ev.Segments))
			for i, s := range ev.Segments {
				paths[i] = s.Path
			}
			return RawRehash(ctx, paths)
		}
	}
	for _, ev := range evs {
		var fails []string
		where := ev.ID
		if len(ev.Segments) > 0 {
			where += " (" + ev.Segments[0].Path + ")"
		}
		// Segment files with a recorded SHA-256 of their own (container
		// files, split pieces) are checked first, so a change is named by
		// the file it is in; a single raw file's hash is the media hash.
		if len(ev.Segments) > 1 || ev.Format != "raw" {
			for _, sg := range ev.Segments {
				if sg.SHA256 == "" {
					continue
				}
				sum, _, err := hashFile(sg.Path)
				switch {
				case err != nil:
					fails = append(fails, fmt.Sprintf("evidence %s segment %s: %v", ev.ID, sg.Path, err))
				case sum != sg.SHA256:
					fails = append(fails, fmt.Sprintf("evidence %s segment %s: SHA-256 now %s, was %s at intake", ev.ID, sg.Path, sum, sg.SHA256))
				}
			}
		}
		sums, err := rehash(ctx, ev)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fails = append(fails, fmt.Sprintf("evidence %s: cannot re-hash: %v", where, err))
		} else {
			for _, h := range []struct{ alg, now, was string }{
				{"MD5", sums.MD5, ev.Computed.MD5}, {"SHA-1", sums.SHA1, ev.Computed.SHA1}, {"SHA-256", sums.SHA256, ev.Computed.SHA256},
			} {
				if h.now != h.was {
					fails = append(fails, fmt.Sprintf("evidence %s: %s now %s, was %s at intake", where, h.alg, h.now, h.was))
				}
			}
			if sums.Size != ev.Size {
				fails = append(fails, fmt.Sprintf("evidence %s: size now %d bytes, was %d at intake", where, sums.Size, ev.Size))
			}
		}
		res.check("evidence "+ev.ID, fails, "SHA-256 "+ev.Computed.SHA256)
	}
	return nil
}

// applyRecorded sets ev's intake facts from its row as the audit log
// recorded it.
func applyRecorded(ev *Evidence, row map[string]any) {
	ev.Format = str(row["format"])
	ev.Computed.MD5, ev.Computed.SHA1, ev.Computed.SHA256 = str(row["md5"]), str(row["sha1"]), str(row["sha256"])
	fmt.Sscan(str(row["size"]), &ev.Size)
	var segs []Segment
	for i := 0; ; i++ {
		k := fmt.Sprintf("segment.%d.", i)
		p, ok := row[k+"path"].(string)
		if !ok {
			break
		}
		sg := Segment{Path: p, SHA256: str(row[k+"sha256"])}
		fmt.Sscan(str(row[k+"size"]), &sg.Size)
		segs = append(segs, sg)
	}
	ev.Segments = segs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// oneLine folds control characters so a name from evidence stays on one
// line of output.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

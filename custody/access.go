package custody

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Access log: who looked what up through `evidx serve`. Lookups of
// personal data by police are themselves audited, so the log is chained
// like audit.log (the same Line format: seq, prev = SHA-256 of the line
// before), and verify checks it. It is a file of its own, with its own
// lock, because the server is read-only on the case: it never takes
// case.lock nor writes the catalog. access.head, rewritten atomically
// after each append, holds the last seq and head, so lines cut from the
// end are caught as audit.log's are by the catalog's record.
const (
	AccessName     = "access.log"
	AccessHeadName = "access.head"
)

// Access is one access-log entry.
type Access struct {
	Action string         // "search", "download", ...
	Who    string         // remote address, and the token's id when one is used
	What   map[string]any // what was looked up (the values as typed)
}

// AppendAccess appends one chained line to dir's access.log under an
// exclusive flock of the log itself, fsyncs it, and rewrites access.head.
func AppendAccess(dir string, a Access) error {
	p := filepath.Join(dir, AccessName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("custody: access log: %w", err)
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("custody: access log %s: lock: %w", p, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	last, err := lastLine(p)
	if err != nil {
		return err
	}
	l := Line{Seq: 1, Prev: Genesis}
	if last != nil {
		var prev Line
		if err := json.Unmarshal(last, &prev); err != nil {
			return fmt.Errorf("%w: last line of %s: %v", ErrAuditBroken, p, err)
		}
		l.Seq, l.Prev = prev.Seq+1, hashLine(last)
	}
	t := Tool()
	l.Time = time.Now().UTC().Format(time.RFC3339Nano)
	l.Action, l.Command, l.Outcome = a.Action, os.Args, OutcomeOK
	l.Tool, l.Version, l.Revision = t.Name, t.Version, t.Revision
	l.User, l.Host, l.PID = currentUser(), hostname(), os.Getpid()
	l.Details = map[string]any{"who": a.Who}
	for k, v := range a.What {
		l.Details[k] = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return fmt.Errorf("custody: access log: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("custody: access log %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("custody: access log %s: %w", p, err)
	}
	head := hashLine(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return writeAtomic(filepath.Join(dir, AccessHeadName), []byte(strconv.FormatInt(l.Seq, 10)+" "+head+"\n"))
}

// writeAtomic replaces p with data through a temporary file and a rename,
// so a reader sees the old or the new content, never part of it.
func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), filePerm)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("custody: write %s: %w", p, werr)
	}
	return nil
}

// ReadAccess verifies dir's access log and returns its lines (none when
// no search was ever made).
func ReadAccess(dir string) ([]Line, Chain, error) {
	f, err := os.Open(filepath.Join(dir, AccessName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, Chain{Head: Genesis}, nil
	}
	if err != nil {
		return nil, Chain{}, fmt.Errorf("custody: %w", err)
	}
	defer f.Close()
	var lines []Line
	ch, err := VerifyChain(f, func(l Line, _ string) { lines = append(lines, l) })
	return lines, ch, err
}

// verifyAccess checks the access log's chain and its head file.
func (c *Case) verifyAccess(res *VerifyResult) {
	var fails []string
	sums := map[int64]string{}
	var ch Chain
	f, err := os.Open(filepath.Join(c.dir, AccessName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		ch.Head = Genesis
	case err != nil:
		fails = append(fails, AccessName+": "+err.Error())
	default:
		ch, err = VerifyChain(f, func(l Line, sum string) { sums[l.Seq] = sum })
		f.Close()
		if err != nil {
			fails = append(fails, strings.Replace(err.Error(), "audit.log", AccessName, 1))
		}
	}
	b, herr := os.ReadFile(filepath.Join(c.dir, AccessHeadName))
	switch {
	case errors.Is(herr, os.ErrNotExist) && ch.Lines == 0:
	case herr != nil:
		fails = append(fails, AccessHeadName+": "+herr.Error())
	default:
		var seq int64
		var head string
		if _, err := fmt.Sscanf(string(b), "%d %s", &seq, &head); err != nil {
			fails = append(fails, fmt.Sprintf("%s: %q is not \"SEQ SHA256\"", AccessHeadName, strings.TrimSpace(string(b))))
			break
		}
		switch {
		case ch.Lines < seq && err == nil:
			fails = append(fails, fmt.Sprintf("%s: %d lines, %s recorded %d (lines removed from the end)", AccessName, ch.Lines, AccessHeadName, seq))
		case sums[seq] != "" && sums[seq] != head:
			fails = append(fails, fmt.Sprintf("%s line %d: edited (SHA-256 %.16s… differs from the head %.16s… in %s)", AccessName, seq, sums[seq], head, AccessHeadName))
		}
	}
	res.check("access log", fails, fmt.Sprintf("%d lookups logged, head SHA-256 %s", ch.Lines, ch.Head))
}

// OpenReadOnly opens a case only to read it, as `evidx serve` does: the
// catalog through a read-only SQLite connection (mode=ro: no schema is
// created or upgraded, nothing can be written), and no key. Audit on it
// fails.
func OpenReadOnly(ctx context.Context, dir string) (*Case, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	for _, f := range []string{CatalogName, AuditName} {
		st, err := os.Stat(filepath.Join(abs, f))
		if err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNotCase, dir, f)
		}
	}
	p := filepath.Join(abs, CatalogName)
	u := url.URL{Scheme: "file", Path: p}
	db, err := sql.Open("sqlite3", u.String()+"?mode=ro&_foreign_keys=on&_busy_timeout=30000")
	if err != nil {
		return nil, fmt.Errorf("custody: open %s: %w", p, err)
	}
	c := &Case{dir: abs, db: db, readOnly: true}
	var created string
	err = db.QueryRowContext(ctx, `SELECT case_number, examiner, agency, description, shards, created, tool, sign_public_key FROM case_info WHERE id=1`).
		Scan(&c.meta.CaseNumber, &c.meta.Examiner, &c.meta.Agency, &c.meta.Description, &c.meta.Shards, &created, &c.meta.Tool, &c.meta.SignPubKey)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: case_info: %v", ErrNotCase, dir, err)
	}
	c.meta.Created, _ = time.Parse(time.RFC3339Nano, created)
	if err := c.openSigner(OpenOptions{ReadOnly: true}); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

package custody

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
)

// Genesis is the "prev" value of the first audit line: 64 zeros (the
// SHA-256 of nothing that exists). Every later line's prev is the hex
// SHA-256 of the previous line's bytes, without its newline.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// maxAuditLine bounds one audit line in bytes when reading the log back; a
// longer line is damage, not an entry.
const maxAuditLine = 16 << 20

// Outcomes of an audited action.
const (
	OutcomeOK      = "ok"
	OutcomeFailed  = "failed"  // the action ran and found a problem (verification failed)
	OutcomeError   = "error"   // the action could not complete
	OutcomeStarted = "started" // written before long work; a matching outcome line follows
)

// Item is an input or output of an audited action with its hashes.
type Item struct {
	Kind   string `json:"kind"`           // "evidence", "segment", "file", "object", "shard", "report", "dataset", "rejects"
	ID     string `json:"id,omitempty"`   // evidence id, object id
	Path   string `json:"path,omitempty"` // host path, or case-relative for files in the case
	Size   int64  `json:"size,omitempty"`
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Entry is what a caller records; Audit adds the rest of the Line.
type Entry struct {
	Action  string   // "case.init", "evidence.add", "report", "verify", ...
	Command []string // command line; nil means os.Args
	Inputs  []Item
	Outputs []Item
	Outcome string         // OutcomeOK, OutcomeFailed, OutcomeError, OutcomeStarted
	Error   string         // why, when the outcome is not ok
	Details map[string]any // action-specific facts (JSON-encodable)
}

// Line is one audit.log line as written.
type Line struct {
	Seq      int64          `json:"seq"`  // 1-based
	Time     string         `json:"time"` // UTC RFC 3339 with nanoseconds
	Action   string         `json:"action"`
	Command  []string       `json:"command"`
	Tool     string         `json:"tool"`
	Version  string         `json:"version"`
	Revision string         `json:"revision"`
	User     string         `json:"user"`     // OS account
	Examiner string         `json:"examiner"` // the examiner acting (--examiner, else the case's)
	Host     string         `json:"host"`
	PID      int            `json:"pid"`
	Inputs   []Item         `json:"inputs,omitempty"`
	Outputs  []Item         `json:"outputs,omitempty"`
	Outcome  string         `json:"outcome"`
	Error    string         `json:"error,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
	// Catalog holds catalog rows as written, flattened to scalar fields,
	// when this action created or changed them (see catalogRecords); a
	// null row was removed. Verify compares the catalog with the log.
	Catalog map[string]map[string]any `json:"catalog,omitempty"`
	Prev    string                    `json:"prev"`
	// Sig, in a case created with a signing key, is the hex ed25519
	// signature of the line's bytes without it: it is always the last
	// field, so those bytes are the line with `,"sig":"…"` cut out.
	Sig string `json:"sig,omitempty"`
}

// ToolInfo identifies the running evidx binary.
type ToolInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Revision  string `json:"revision"` // VCS revision, "+dirty" appended when built from a modified tree
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// String is "evidx VERSION (REVISION)".
func (t ToolInfo) String() string {
	if t.Revision == "" {
		return t.Name + " " + t.Version
	}
	return fmt.Sprintf("%s %s (%s)", t.Name, t.Version, t.Revision)
}

// Tool returns the running binary's identity from its build info.
func Tool() ToolInfo {
	t := ToolInfo{Name: "evidx", Version: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return t
	}
	t.Version = bi.Main.Version
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			t.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && t.Revision != "" {
		t.Revision += "+dirty"
	}
	return t
}

// Audit appends one line for e to audit.log: under an exclusive flock on
// case.lock (other evidx processes wait), it reads the last line, chains to
// it, appends with O_APPEND, fsyncs, and records the new head in the
// catalog. It is safe for concurrent use, but must not be called while a
// Batch of the same process is open: the catalog update would wait for the
// batch's write lock (up to the 30 s busy timeout) and fail.
func (c *Case) Audit(e Entry) error {
	_, err := c.audit(e)
	return err
}

func (c *Case) audit(e Entry) (Line, error) {
	if c.readOnly {
		return Line{}, fmt.Errorf("custody: %s: opened read-only: audit %s", c.dir, e.Action)
	}
	if c.signedAudit && c.signer == nil {
		return Line{}, fmt.Errorf("%w: %s: audit %s", ErrNeedSignKey, c.dir, e.Action)
	}
	unlock, err := c.lock()
	if err != nil {
		return Line{}, err
	}
	defer unlock()
	p := filepath.Join(c.dir, AuditName)
	last, err := lastLine(p)
	if err != nil {
		return Line{}, err
	}
	l := Line{Seq: 1, Prev: Genesis}
	if last != nil {
		var prev Line
		if err := json.Unmarshal(last, &prev); err != nil {
			return Line{}, fmt.Errorf("%w: last line of %s: %v", ErrAuditBroken, p, err)
		}
		l.Seq = prev.Seq + 1
		l.Prev = hashLine(last)
	}
	t := Tool()
	l.Time = time.Now().UTC().Format(time.RFC3339Nano)
	l.Action, l.Inputs, l.Outputs, l.Outcome, l.Error, l.Details = e.Action, e.Inputs, e.Outputs, e.Outcome, e.Error, e.Details
	l.Command = e.Command
	if l.Command == nil {
		l.Command = os.Args
	}
	l.Tool, l.Version, l.Revision = t.Name, t.Version, t.Revision
	l.User, l.Host, l.PID = currentUser(), hostname(), os.Getpid()
	l.Examiner = c.Examiner()
	if l.Outcome == "" {
		l.Outcome = OutcomeOK
	}
	rows, err := c.catalogChanges(e)
	if err != nil {
		return Line{}, err
	}
	l.Catalog = catalogLine(rows)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil { // Encode appends the newline
		return Line{}, fmt.Errorf("custody: audit %s: %w", e.Action, err)
	}
	if c.signer != nil {
		body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		l.Sig = hex.EncodeToString(ed25519.Sign(c.signer, body))
		signed := append(append([]byte{}, body[:len(body)-1]...), `,"sig":"`+l.Sig+`"}`+"\n"...)
		buf.Reset()
		buf.Write(signed)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return Line{}, fmt.Errorf("custody: audit: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return Line{}, fmt.Errorf("custody: audit %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Line{}, fmt.Errorf("custody: audit %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return Line{}, fmt.Errorf("custody: audit %s: %w", p, err)
	}
	head := hashLine(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if _, err := c.db.Exec(`UPDATE case_info SET audit_seq=?, audit_head=? WHERE id=1`, l.Seq, head); err != nil {
		return l, fmt.Errorf("custody: record audit head: %w", err)
	}
	if err := c.saveCatalogRecords(rows, l.Seq); err != nil {
		return l, err
	}
	return l, nil
}

// lock takes the case's exclusive flock, blocking while another process
// holds it. The returned func releases it.
func (c *Case) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.dir, LockName), os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("custody: lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("custody: lock: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// hashLine is the hex SHA-256 of one audit line without its newline.
func hashLine(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// lastLine returns the last complete line of the file at p (without its
// newline), or nil for an empty file. It reads backwards from the end in
// 64 KiB steps, so its cost does not grow with the log.
func lastLine(p string) ([]byte, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("custody: audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("custody: audit: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	const step = 64 << 10
	var tail []byte
	end := size
	for end > 0 {
		n := int64(step)
		if n > end {
			n = end
		}
		chunk := make([]byte, n)
		if _, err := f.ReadAt(chunk, end-n); err != nil {
			return nil, fmt.Errorf("custody: audit %s at %#x: %w", p, end-n, err)
		}
		tail = append(chunk, tail...)
		end -= n
		if len(tail) > maxAuditLine+1 {
			return nil, fmt.Errorf("%w: %s: last line longer than %d bytes", ErrAuditBroken, p, maxAuditLine)
		}
		if len(tail) == 0 || tail[len(tail)-1] != '\n' {
			return nil, fmt.Errorf("%w: %s: does not end with a newline (torn write at %#x)", ErrAuditBroken, p, size)
		}
		if i := bytes.LastIndexByte(tail[:len(tail)-1], '\n'); i >= 0 {
			return tail[i+1 : len(tail)-1], nil
		}
	}
	return tail[:len(tail)-1], nil
}

// ChainError says which audit line broke the chain.
type ChainError struct {
	Line   int64 // 1-based line number
	Offset int64 // byte offset of the line in the file
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit.log line %d at %#x: %s", e.Line, e.Offset, e.Reason)
}

func (e *ChainError) Unwrap() error { return ErrAuditBroken }

// Chain is what VerifyChain read.
type Chain struct {
	Lines int64  // lines read
	Head  string // SHA-256 of the last line; Genesis for an empty log
	Last  Line   // the last line
}

// VerifyChain reads an audit log and checks every line: valid JSON, seq
// counting from 1, prev equal to the SHA-256 of the line before (Genesis for
// the first), and a final newline. fn, if not nil, sees every good line
// with its SHA-256. The first break is returned as a *ChainError naming
// the line: the line that fails to parse or to count, or, when a line's
// prev does not match, the line before it (whose content changed); lines
// after the break are not read.
func VerifyChain(r io.Reader, fn func(l Line, sum string)) (Chain, error) {
	return verifyChain(r, func(l Line, sum string, _ []byte) {
		if fn != nil {
			fn(l, sum)
		}
	})
}

// verifyChain is VerifyChain whose fn also sees the line's bytes (without
// the newline; valid during the call only).
func verifyChain(r io.Reader, fn func(l Line, sum string, body []byte)) (Chain, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	ch := Chain{Head: Genesis}
	var off, prevOff int64
	for {
		raw, err := readLine(br)
		if err == io.EOF && len(raw) == 0 {
			return ch, nil
		}
		n := ch.Lines + 1
		if err == io.EOF {
			return ch, &ChainError{n, off, "last line has no newline (torn or appended by hand)"}
		}
		if err != nil {
			return ch, &ChainError{n, off, err.Error()}
		}
		body := raw[:len(raw)-1]
		var l Line
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&l); err != nil {
			return ch, &ChainError{n, off, "not a JSON audit entry: " + err.Error()}
		}
		if dec.More() {
			return ch, &ChainError{n, off, "trailing data after the JSON entry"}
		}
		if l.Seq != n {
			return ch, &ChainError{n, off, fmt.Sprintf("seq %d, expected %d (line removed or inserted)", l.Seq, n)}
		}
		if l.Prev != ch.Head {
			if n == 1 {
				return ch, &ChainError{n, off, fmt.Sprintf("prev %.16s… is not the genesis value (lines removed from the start, or this line edited)", l.Prev)}
			}
			// Line n-1 no longer hashes to what line n recorded: most
			// likely line n-1 was edited (else line n's prev field was).
			return ch, &ChainError{n - 1, prevOff, fmt.Sprintf("edited: its SHA-256 %.16s… differs from the prev %.16s… recorded in line %d", ch.Head, l.Prev, n)}
		}
		ch.Lines = n
		ch.Head = hashLine(body)
		ch.Last = l
		prevOff = off
		if fn != nil {
			fn(l, ch.Head, body)
		}
		off += int64(len(raw))
	}
}

// sigSuffixLen is the length of `,"sig":"<128 hex digits>"}`.
const sigSuffixLen = len(`,"sig":"`) + 2*ed25519.SignatureSize + len(`"}`)

// SignedMessage splits an audit line (without its newline) into the bytes
// its signature covers — the line with its final `,"sig":"…"` member cut
// out, ending in `}` — and the signature. ok is false when the line does
// not end with a sig member.
func SignedMessage(body []byte) (msg, sig []byte, ok bool) {
	n := len(body)
	if n < sigSuffixLen+2 || !bytes.HasPrefix(body[n-sigSuffixLen:], []byte(`,"sig":"`)) || !bytes.HasSuffix(body, []byte(`"}`)) {
		return nil, nil, false
	}
	sig, err := hex.DecodeString(string(body[n-sigSuffixLen+len(`,"sig":"`) : n-2]))
	if err != nil {
		return nil, nil, false
	}
	msg = append(append([]byte{}, body[:n-sigSuffixLen]...), '}')
	return msg, sig, true
}

// checkLineSig says why an audit line's signature does not verify with
// pub, or "" when it does.
func checkLineSig(l Line, body []byte, pub ed25519.PublicKey) string {
	msg, sig, ok := SignedMessage(body)
	switch {
	case l.Sig == "" && !ok:
		return "not signed"
	case !ok || hex.EncodeToString(sig) != l.Sig:
		return "sig is not the last field or not 128 hex digits"
	case !ed25519.Verify(pub, msg, sig):
		return "signature does not verify"
	}
	return ""
}

// readLine reads one line including its '\n', at most maxAuditLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if len(out) > maxAuditLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxAuditLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return out, err
	}
}

// ReadAudit verifies the case's audit log and returns its lines. Lines up
// to a break are returned with the *ChainError.
func (c *Case) ReadAudit(ctx context.Context) ([]Line, Chain, error) {
	f, err := os.Open(filepath.Join(c.dir, AuditName))
	if err != nil {
		return nil, Chain{}, fmt.Errorf("custody: %w", err)
	}
	defer f.Close()
	var lines []Line
	ch, err := VerifyChain(f, func(l Line, _ string) { lines = append(lines, l) })
	return lines, ch, err
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

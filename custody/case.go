// Package custody keeps a case: the case directory (0700, files 0600), its
// catalog SQLite DB (evidence, segments, volumes, files, carved items,
// stored objects), the content store of extracted and carved files
// (objects/ab/cd/<sha256>), the hash-chained audit log, and the court
// reports and exports made from them. It imports nothing from ingest: the
// ingest packages record what they find through the methods here.
//
// Layout of a case directory:
//
//	catalog.sqlite        catalog DB (WAL; -wal/-shm beside it while open)
//	audit.log             append-only JSON lines, each with the SHA-256 of the previous line
//	case.lock             flock(2) target serialising audit appends across processes
//	objects/ab/cd/<hex>   content store, named by SHA-256, deduplicated
//	index/                identity shards (package index)
//	rejects/<hex>.tsv     malformed rows of the dataset with that SHA-256, with their location
//	reports/              report.html, report.json, evidence-<id>.dfxml, manifest.hashdeep, SHA256SUMS
//	tmp/run-*/            one locked 0700 scratch directory per running command (spills, files being
//	                      stored or written); removed when it ends, or by the next command after a crash
//	signing.pub           ed25519 public key when the case was created with a signing key
package custody

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/internal/scratch"
	_ "github.com/mattn/go-sqlite3" // SQLite driver "sqlite3" (cgo)
)

// Sentinel errors.
var (
	ErrNotEmpty     = errors.New("custody: case directory exists and is not empty")
	ErrNotCase      = errors.New("custody: not a case directory")
	ErrInsideCase   = errors.New("custody: evidence and case directory overlap")
	ErrDuplicate    = errors.New("custody: evidence id already registered")
	ErrBadID        = errors.New("custody: bad evidence id")
	ErrBadMeta      = errors.New("custody: bad case metadata")
	ErrAuditBroken  = errors.New("custody: audit log chain broken")
	ErrNoSigningKey = errors.New("custody: case has no signing key")
	ErrNeedSignKey  = errors.New("custody: the case signs its audit log: give the examiner's signing key (--sign-key FILE or " + EnvSignKey + ")")
)

// EnvSignKey names the environment variable the CLI reads the signing key
// file from when --sign-key is not given.
const EnvSignKey = "EVIDX_SIGN_KEY"

// File and directory names inside a case directory.
const (
	CatalogName = "catalog.sqlite"
	AuditName   = "audit.log"
	LockName    = "case.lock"
	ObjectsDir  = "objects"
	IndexDir    = "index"
	ReportsDir  = "reports"
	TmpDir      = "tmp"
	PubKeyName  = "signing.pub"
)

// DefaultShards is the identity shard count of a case that does not say
// otherwise; it matches index.DefaultShards.
const DefaultShards = 16

// dirPerm and filePerm are the modes of everything in a case directory: it
// holds personal data, so only the owner may read it.
const (
	dirPerm  os.FileMode = 0o700
	filePerm os.FileMode = 0o600
)

// Meta is the case metadata recorded at creation.
type Meta struct {
	CaseNumber  string    `json:"case_number"`
	Examiner    string    `json:"examiner"`
	Agency      string    `json:"agency,omitempty"`
	Description string    `json:"description,omitempty"`
	Shards      int       `json:"shards"`                    // identity index shard count, fixed for the case's life (1..999)
	Created     time.Time `json:"created"`                   // UTC; set by Init
	Tool        string    `json:"tool"`                      // tool version that created the case; set by Init
	SignPubKey  string    `json:"sign_public_key,omitempty"` // hex ed25519 public key, when reports are signed
}

// Case is an open case directory. Its methods may be called from several
// goroutines; audit appends are also serialised across processes.
type Case struct {
	dir  string
	db   *sql.DB
	meta Meta
	// signedAudit: the case was created with a signing key, so every audit
	// line must carry a signature by signer (nil when opened without it).
	signedAudit bool
	signer      ed25519.PrivateKey
	readOnly    bool // OpenReadOnly: nothing may be written

	scratchMu sync.Mutex
	scratch   *scratch.Dir // this process's run directory under tmp/, made on first use
}

// Init creates the case directory dir (0700; it may exist only if empty)
// with its catalog, audit log and content store, records meta, and writes
// the first audit entry ("case.init"). meta.SignPubKey, when set, is the
// hex ed25519 public key reports will be signed with (see GenerateKey).
//
// Such a case signs its reports only; InitSigned makes a case whose audit
// lines are signed too.
func Init(ctx context.Context, dir string, meta Meta) (*Case, error) {
	return initCase(ctx, dir, meta, nil)
}

// InitSigned is Init for a case anchored to the examiner's ed25519 key
// (PEM PKCS#8 at keyPath, kept outside the case; see LoadOrCreateKey):
// meta.SignPubKey is set from it, and every audit line, from case.init on,
// carries a signature by it (see Line.Sig). Later commands must open the
// case with the key (OpenOptions.SignKey) to write to its audit log.
func InitSigned(ctx context.Context, dir string, meta Meta, keyPath string) (*Case, error) {
	if err := CheckOverlap(dir, keyPath); err != nil {
		return nil, fmt.Errorf("custody: keep the signing key outside the case directory: %w", err)
	}
	priv, err := LoadKey(keyPath)
	if err != nil {
		return nil, err
	}
	meta.SignPubKey = hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	return initCase(ctx, dir, meta, priv)
}

func initCase(ctx context.Context, dir string, meta Meta, signer ed25519.PrivateKey) (*Case, error) {
	meta.CaseNumber = strings.TrimSpace(meta.CaseNumber)
	meta.Examiner = strings.TrimSpace(meta.Examiner)
	if meta.CaseNumber == "" || meta.Examiner == "" {
		return nil, fmt.Errorf("%w: case number and examiner are required", ErrBadMeta)
	}
	if meta.Shards == 0 {
		meta.Shards = DefaultShards
	}
	if meta.Shards < 1 || meta.Shards > 999 {
		return nil, fmt.Errorf("%w: shards %d not in 1..999", ErrBadMeta, meta.Shards)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	if err := makeCaseDir(abs); err != nil {
		return nil, err
	}
	for _, d := range []string{ObjectsDir, ReportsDir} {
		if err := mkdirPrivate(filepath.Join(abs, d)); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{AuditName, LockName, CatalogName} {
		if err := touchPrivate(filepath.Join(abs, f)); err != nil {
			return nil, err
		}
	}
	meta.Created = time.Now().UTC()
	meta.Tool = Tool().String()
	if meta.SignPubKey != "" {
		if err := writePrivate(filepath.Join(abs, PubKeyName), []byte(meta.SignPubKey+"\n")); err != nil {
			return nil, err
		}
	}
	db, err := openDB(abs)
	if err != nil {
		return nil, err
	}
	c := &Case{dir: abs, db: db, meta: meta, signedAudit: signer != nil, signer: signer}
	if err := c.createSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO case_info(id, case_number, examiner, agency, description, shards, created, tool, sign_public_key)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`,
		meta.CaseNumber, meta.Examiner, meta.Agency, meta.Description, meta.Shards,
		meta.Created.Format(time.RFC3339Nano), meta.Tool, meta.SignPubKey); err != nil {
		db.Close()
		return nil, fmt.Errorf("custody: record case: %w", err)
	}
	// The case, not the first load, fixes the shard count: the index
	// records it in its own tables.
	if _, err := index.Open(ctx, db, filepath.Join(dir, IndexDir), index.Options{Shards: meta.Shards}); err != nil {
		db.Close()
		return nil, fmt.Errorf("custody: record shard count: %w", err)
	}
	if err := c.Audit(Entry{Action: "case.init", Outcome: OutcomeOK, Details: map[string]any{
		"case_number": meta.CaseNumber, "examiner": meta.Examiner, "agency": meta.Agency,
		"shards": meta.Shards, "sign_public_key": meta.SignPubKey,
	}}); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// actingExaminer is the examiner this process acts for (the CLI's
// --examiner); "" means the case's examiner. It is process-wide because
// one person runs one evidx command.
var actingExaminer struct {
	sync.Mutex
	name string
}

// SetActingExaminer names the examiner every audit line of this process
// records; "" restores the case default (case init --examiner).
func SetActingExaminer(name string) {
	actingExaminer.Lock()
	actingExaminer.name = strings.TrimSpace(name)
	actingExaminer.Unlock()
}

// Examiner is the examiner acting: the one set by SetActingExaminer, else
// the case's.
func (c *Case) Examiner() string {
	actingExaminer.Lock()
	defer actingExaminer.Unlock()
	if actingExaminer.name != "" {
		return actingExaminer.name
	}
	return c.meta.Examiner
}

// OpenOptions say how a case is opened.
type OpenOptions struct {
	// SignKey is the examiner's private key file. A case whose audit log
	// is signed (InitSigned) cannot be opened for writing without it, and
	// a key other than the case's is refused; other cases ignore it.
	SignKey string
	// ReadOnly is for commands that only read: a signed case opens
	// without its key (Audit fails with ErrNeedSignKey, Verify then
	// records nothing), and what killed commands left in tmp/ stays.
	ReadOnly bool
}

// Open opens an existing case directory (OpenWith without a key).
func Open(ctx context.Context, dir string) (*Case, error) {
	return OpenWith(ctx, dir, OpenOptions{})
}

// OpenWith opens an existing case directory.
func OpenWith(ctx context.Context, dir string, opts OpenOptions) (*Case, error) {
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
	db, err := openDB(abs)
	if err != nil {
		return nil, err
	}
	c := &Case{dir: abs, db: db}
	if err := c.createSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	var created string
	err = db.QueryRowContext(ctx, `SELECT case_number, examiner, agency, description, shards, created, tool, sign_public_key FROM case_info WHERE id=1`).
		Scan(&c.meta.CaseNumber, &c.meta.Examiner, &c.meta.Agency, &c.meta.Description, &c.meta.Shards, &created, &c.meta.Tool, &c.meta.SignPubKey)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: case_info: %v", ErrNotCase, dir, err)
	}
	c.meta.Created, _ = time.Parse(time.RFC3339Nano, created)
	if err := c.openSigner(opts); err != nil {
		db.Close()
		return nil, err
	}
	// A read-only open (verify, stats, another case merged from) leaves
	// the directory as it is.
	if !opts.ReadOnly {
		if err := c.sweepLeftovers(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return c, nil
}

// openSigner finds whether the case signs its audit log (its first line
// is signed) and loads the key for it.
func (c *Case) openSigner(opts OpenOptions) error {
	first, err := firstLine(filepath.Join(c.dir, AuditName))
	if err != nil {
		return err
	}
	_, _, c.signedAudit = SignedMessage(first)
	if !c.signedAudit {
		return nil
	}
	if opts.SignKey == "" {
		if opts.ReadOnly {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrNeedSignKey, c.dir)
	}
	priv, err := LoadKey(opts.SignKey)
	if err != nil {
		return err
	}
	if hex.EncodeToString(priv.Public().(ed25519.PublicKey)) != c.meta.SignPubKey {
		return fmt.Errorf("%w: %s is not the key the case %s was created with", ErrBadKey, opts.SignKey, c.dir)
	}
	c.signer = priv
	return nil
}

// SignedAudit reports whether the case signs its audit lines, and whether
// it was opened with the key to do so.
func (c *Case) SignedAudit() (signed, haveKey bool) { return c.signedAudit, c.signer != nil }

// Close removes this process's scratch directory and closes the catalog DB.
func (c *Case) Close() error {
	c.scratchMu.Lock()
	if c.scratch != nil {
		c.scratch.Close()
		c.scratch = nil
	}
	c.scratchMu.Unlock()
	return c.db.Close()
}

// Scratch returns this process's scratch directory inside the case
// (tmp/run-*, 0700, on the case's file system so its files can be renamed
// into place), made on first use. Its files hold personal data: it is
// removed by Close, and by the next command if this one is killed.
func (c *Case) Scratch() (string, error) {
	c.scratchMu.Lock()
	defer c.scratchMu.Unlock()
	if c.scratch == nil {
		d, err := scratch.New(filepath.Join(c.dir, TmpDir), "run-")
		if err != nil {
			return "", fmt.Errorf("custody: %w", err)
		}
		c.scratch = d
	}
	return c.scratch.Path, nil
}

// sweepLeftovers removes what a killed command left: run directories under
// tmp/ whose command is gone, and the temporary files older versions put
// beside their targets. Nothing there is listed in the catalog.
func (c *Case) sweepLeftovers() error {
	if _, err := scratch.Sweep(filepath.Join(c.dir, TmpDir), "run-"); err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	return nil
}

// DB returns the catalog DB. Other packages (index) add their own tables.
func (c *Case) DB() *sql.DB { return c.db }

// Dir returns the absolute case directory.
func (c *Case) Dir() string { return c.dir }

// Meta returns the case metadata.
func (c *Case) Meta() Meta { return c.meta }

// Shards returns the identity shard count fixed at case creation.
func (c *Case) Shards() int { return c.meta.Shards }

// IndexDir returns the directory of the identity shards.
func (c *Case) IndexDir() string { return filepath.Join(c.dir, IndexDir) }

// openDB opens the catalog with WAL, foreign keys and a busy timeout (other
// evidx processes may write it at the same time). SQLite gives the -wal and
// -shm files the mode of the DB file, which Init created 0600.
func openDB(dir string) (*sql.DB, error) {
	p := filepath.Join(dir, CatalogName)
	u := url.URL{Scheme: "file", Path: p}
	dsn := u.String() + "?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=30000&_synchronous=NORMAL"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("custody: open %s: %w", p, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("custody: open %s: %w", p, err)
	}
	return db, nil
}

// makeCaseDir creates dir 0700, or accepts an existing empty directory
// (and sets it to 0700).
func makeCaseDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("custody: %w", err)
		}
		if err := os.Mkdir(dir, dirPerm); err != nil {
			return fmt.Errorf("custody: %w", err)
		}
	case err != nil:
		return fmt.Errorf("custody: %w", err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrNotEmpty, dir)
	default:
		f, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("custody: %w", err)
		}
		names, err := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("custody: %w", err)
		}
	}
	return chmod(dir, dirPerm)
}

// mkdirPrivate creates dir and missing parents 0700 regardless of umask.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	return chmod(dir, dirPerm)
}

// touchPrivate creates an empty file 0600 if it does not exist.
func touchPrivate(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	return chmod(p, filePerm)
}

// writePrivate writes a whole file 0600 via a temporary file and rename, so
// a reader never sees it half-written.
func writePrivate(p string, data []byte) error {
	return writeStream(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func chmod(p string, m os.FileMode) error {
	if err := os.Chmod(p, m); err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	return nil
}

// firstLine returns the first line of the file at p without its newline
// (nil for an empty or missing file), at most maxAuditLine bytes.
func firstLine(p string) ([]byte, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("custody: audit: %w", err)
	}
	defer f.Close()
	l, err := readLine(bufio.NewReaderSize(f, 64<<10))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("custody: audit %s: %w", p, err)
	}
	return bytes.TrimSuffix(l, []byte("\n")), nil
}

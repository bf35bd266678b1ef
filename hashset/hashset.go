// Package hashset opens hash sets read-only and tells whether a file's
// hashes are in them, as examiners use NSRL and known-bad lists in
// Autopsy and TSK's hfind.
//
// Formats read:
//   - NIST NSRL RDSv3 (SQLite, table FILE(sha256, sha1, md5, crc32,
//     file_name, file_size, package_id, ...), hex upper-case as NIST ships
//     it; a set in lower-case, told by its first row, is matched too).
//     Looked up by SHA-256 only. When FILE
//     has an index SQLite searches by sha256, lookups use it; otherwise the
//     SHA-256 column is read once into a sorted side file (never into the
//     RDS file, which is opened with mode=ro&immutable=1).
//   - hashdeep lists (%%%% HASHDEEP-1.0 with its "%%%% size,md5,sha256,
//     filename" column line; the md5, sha1 and sha256 columns are used,
//     tiger and whirlpool ignored).
//   - md5sum, sha1sum and sha256sum output ("HEX  NAME", "HEX *NAME",
//     "\HEX  NAME"), and plain lists of one hash per line; the algorithm
//     is told by the hex length (32, 40, 64), so one list may mix them.
//
// Not read: RDS 2.x text (NSRLFile.txt), EnCase .hash, Autopsy's .kdb and
// .idx files, BSD-style "SHA256 (name) = HEX" lines; the RDS PKG, OS and
// MFG tables are not consulted (a match says "in the set", not which
// product).
//
// Lookups never scan: a text list is held as a sorted array of binary
// hashes, in memory up to Options.MemLimit bytes per algorithm, else in a
// sorted side file (an external sort) binary-searched with ReadAt through
// a small in-memory fence. A Set may be used from several goroutines.
package hashset

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/mattn/go-sqlite3" // SQLite driver "sqlite3" (cgo)
)

// Kinds of hash set; any other non-empty name is allowed too.
const (
	KnownGood = "known-good"
	KnownBad  = "known-bad"
)

// Alg is a hash algorithm a set may hold.
type Alg int

// The algorithms, as md5sum, sha1sum and sha256sum compute them.
const (
	MD5 Alg = iota
	SHA1
	SHA256
	nAlgs
)

// Size is the digest length in bytes.
func (a Alg) Size() int { return [...]int{16, 20, 32}[a] }

func (a Alg) String() string { return [...]string{"md5", "sha1", "sha256"}[a] }

// Sums are the lower- or upper-case hex digests of one file's content; an
// empty field is not known.
type Sums struct {
	MD5, SHA1, SHA256 string
}

// DefaultMemLimit is the default bound, in bytes, of one algorithm's
// hashes held in memory (2 Mi SHA-256); larger lists go to a side file.
const DefaultMemLimit = 64 << 20

// Options say how a set is named and where its side files go.
type Options struct {
	Name string // default: the file's base name without its extension
	Kind string // KnownGood, KnownBad or another name; "" when not said
	// CacheDir, if set, keeps the RDS side file (named by the RDS file's
	// path, size and modification time) for later opens; else side files
	// go into a temporary directory removed by Close.
	CacheDir string
	TempDir  string // parent of that temporary directory ("": os.TempDir)
	MemLimit int    // bytes per algorithm in memory; 0: DefaultMemLimit
}

// Set is an open hash set.
type Set struct {
	Name   string
	Kind   string
	Format string // FormatRDS, FormatHashdeep, FormatSums, FormatPlain
	Path   string
	// Entries counts the distinct hashes held (of all algorithms), -1 for
	// an RDS searched through its own index (not counted: a full scan).
	Entries int64
	// Indexed is how RDS lookups run: "sqlite index NAME" or "side file".
	Indexed string

	tables [nAlgs]*table
	db     *sql.DB
	stmt   *sql.Stmt
	lower  bool   // the indexed RDS holds lower-case hex
	tmp    string // temporary directory to remove on Close
}

// Open opens the hash set at path, telling its format from its first
// bytes. The file is only read.
func Open(path string, opts Options) (*Set, error) {
	if opts.MemLimit <= 0 {
		opts.MemLimit = DefaultMemLimit
	}
	s := &Set{Name: opts.Name, Kind: opts.Kind, Path: path}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hashset: %w", err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("hashset: %s: %w", path, err)
	}
	if string(head[:n]) == "SQLite format 3\x00" {
		s.Format = FormatRDS
		err = s.openRDS(path, opts)
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("hashset: %s: %w", path, err)
		}
		err = s.openText(f, path, opts)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("hashset: %w", err)
	}
	return s, nil
}

// tempDir makes (once) the directory for side files that Close removes.
func (s *Set) tempDir(opts Options) (string, error) {
	if s.tmp == "" {
		d, err := os.MkdirTemp(opts.TempDir, "evidx-hashset-*")
		if err != nil {
			return "", err
		}
		s.tmp = d
	}
	return s.tmp, nil
}

func (s *Set) openText(r io.Reader, path string, opts Options) error {
	var bs [nAlgs]*builder
	defer func() {
		for _, b := range bs {
			if b != nil {
				b.abort()
			}
		}
	}()
	format, err := parseText(r, path, func(a Alg, h []byte) error {
		if bs[a] == nil {
			bs[a] = newBuilder(a.Size(), opts.MemLimit, func() (string, error) { return s.tempDir(opts) })
		}
		return bs[a].add(h)
	})
	if err != nil {
		return err
	}
	s.Format = format
	for a, b := range bs {
		if b == nil {
			continue
		}
		t, err := b.finish("")
		if err != nil {
			return fmt.Errorf("%s: %s side file: %w", path, Alg(a), err)
		}
		s.tables[a] = t
		s.Entries += t.n
	}
	return nil
}

// openRDS opens an RDSv3 database read-only and picks how to search it.
func (s *Set) openRDS(path string, opts Options) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// immutable: SQLite takes no lock and writes no journal or WAL file
	// beside the RDS file, so its directory may be read-only media.
	u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	s.db = db
	var hasSHA int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('FILE') WHERE lower(name)='sha256'`).Scan(&hasSHA); err != nil {
		return fmt.Errorf("%s: not a readable SQLite database: %w", path, err)
	}
	if hasSHA == 0 {
		return fmt.Errorf("%s: SQLite without a FILE table holding sha256: not an NSRL RDSv3", path)
	}
	// Is there an index SQLite would search by sha256? The query plan
	// says so whatever the index is called (or a WITHOUT ROWID key).
	const q = `SELECT 1 FROM FILE WHERE sha256 = ? LIMIT 1`
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, "")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	plan := ""
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			rows.Close()
			return fmt.Errorf("%s: query plan: %w", path, err)
		}
		plan += detail + "; "
	}
	rows.Close()
	if strings.HasPrefix(plan, "SEARCH ") && strings.Contains(strings.ToLower(plan), "(sha256=?)") {
		// NIST ships upper-case hex; a set made with lower-case is told by
		// its first row, so the index is searched in the case it holds.
		var first string
		if err := db.QueryRow(`SELECT sha256 FROM FILE LIMIT 1`).Scan(&first); err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("%s: FILE row 1: %w", path, err)
		}
		s.lower = first != strings.ToUpper(first)
		s.stmt, err = db.Prepare(q)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s.Entries = -1
		s.Indexed = "sqlite " + strings.TrimSpace(strings.TrimSuffix(plan, "; "))
		return nil
	}
	t, err := s.rdsSideFile(db, path, abs, opts)
	if err != nil {
		return err
	}
	s.tables[SHA256] = t
	s.Entries = t.n
	s.Indexed = "side file " + t.f.Name()
	db.Close()
	s.db = nil
	return nil
}

// rdsSideFile reads FILE.sha256 once into a sorted file of binary hashes:
// in CacheDir under a name made of the RDS file's path, size and
// modification time (reused when present), else in a temporary directory.
func (s *Set) rdsSideFile(db *sql.DB, path, abs string, opts Options) (*table, error) {
	out, dir := "", opts.CacheDir
	if dir != "" {
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		key := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano()))
		out = filepath.Join(dir, "rds-"+hex.EncodeToString(key[:12])+".sha256")
		if t, err := openTable(out, SHA256.Size()); err == nil {
			return t, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	} else {
		var err error
		if dir, err = s.tempDir(opts); err != nil {
			return nil, err
		}
	}
	b := newBuilder(SHA256.Size(), opts.MemLimit, func() (string, error) { return dir, nil })
	rows, err := db.Query(`SELECT sha256 FROM FILE`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	var h [32]byte
	var row int64
	for rows.Next() {
		row++
		var v sql.RawBytes
		if err := rows.Scan(&v); err != nil {
			b.abort()
			return nil, fmt.Errorf("%s: FILE row %d: %w", path, row, err)
		}
		if len(v) != 64 {
			b.abort()
			return nil, fmt.Errorf("%s: FILE row %d: sha256 of %d characters, not 64 hex digits", path, row, len(v))
		}
		if _, err := hex.Decode(h[:], v); err != nil {
			b.abort()
			return nil, fmt.Errorf("%s: FILE row %d: sha256 %q: %w", path, row, v, err)
		}
		if err := b.add(h[:]); err != nil {
			b.abort()
			return nil, fmt.Errorf("%s: side file: %w", path, err)
		}
	}
	if err := rows.Err(); err != nil {
		b.abort()
		return nil, fmt.Errorf("%s: FILE row %d: %w", path, row+1, err)
	}
	if out == "" {
		out = filepath.Join(dir, "rds.sha256")
	}
	t, err := b.finish(out)
	if err != nil {
		return nil, fmt.Errorf("%s: side file: %w", path, err)
	}
	return t, nil
}

// Contains reports whether any hash of sums is in the set.
func (s *Set) Contains(sums Sums) (bool, error) {
	for a, h := range [nAlgs]string{sums.MD5, sums.SHA1, sums.SHA256} {
		if h == "" {
			continue
		}
		if Alg(a) == SHA256 && s.stmt != nil {
			var one int
			key := strings.ToUpper(h)
			if s.lower {
				key = strings.ToLower(h)
			}
			err := s.stmt.QueryRow(key).Scan(&one)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("hashset %s: %s: %w", s.Name, s.Path, err)
			}
			return true, nil
		}
		t := s.tables[a]
		if t == nil || len(h) != 2*t.size {
			continue
		}
		var key [32]byte
		if _, err := hex.Decode(key[:t.size], []byte(h)); err != nil {
			return false, fmt.Errorf("hashset %s: %s digest %q: %w", s.Name, Alg(a), h, err)
		}
		ok, err := t.contains(key[:t.size])
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Algs are the algorithms the set can match on.
func (s *Set) Algs() []Alg {
	if s.Format == FormatRDS {
		return []Alg{SHA256}
	}
	var out []Alg
	for a, t := range s.tables {
		if t != nil {
			out = append(out, Alg(a))
		}
	}
	return out
}

// Close releases the set and removes its temporary side files.
func (s *Set) Close() error {
	var errs []error
	if s.stmt != nil {
		errs = append(errs, s.stmt.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	for _, t := range s.tables {
		if t != nil {
			errs = append(errs, t.close())
		}
	}
	if s.tmp != "" {
		errs = append(errs, os.RemoveAll(s.tmp))
	}
	return errors.Join(errs...)
}

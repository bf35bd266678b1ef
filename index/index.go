// Package index stores the identities found in leaked datasets in SQLite
// shards (index/shard-NNN.sqlite; shard = dedupe.Partition(kind, value, n))
// and records each ingested dataset file as a source in the case catalog. It
// answers the analyst's questions: how many unique identities per kind, in
// which sources and on which evidence item, and where one value was seen.
//
// Loads are serialised per case by a lock file; searches and stats read
// concurrently with a load (they see its committed part, and report the
// source as "loading").
package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver "sqlite3" (cgo)
	"golang.org/x/sys/unix"
)

// Sentinel errors.
var (
	ErrShardCount = errors.New("index: shard count differs from the case's")
	ErrNoShards   = errors.New("index: shard count must be between 1 and 999")
	ErrChanged    = errors.New("index: file changed while it was read")
)

// DefaultShards is the shard count of a case that does not say otherwise.
const DefaultShards = 16

// Index is a case's identity index: the shard directory and the catalog DB
// holding the sources table. Its methods may be called concurrently; loads
// take an exclusive lock on the directory (also against other processes).
type Index struct {
	catalog *sql.DB
	dir     string
	n       int
	opts    Options
	ro      bool // OpenRead: shards opened mode=ro
}

// Options tune the index. Zero values take the documented defaults.
type Options struct {
	// Shards is the shard count fixed at case creation. 0 means: the count
	// recorded in the catalog (index_meta), else DefaultShards. A value that
	// differs from a recorded one is ErrShardCount.
	Shards int
	// Workers bounds how many shard writers run SQL at once (default
	// GOMAXPROCS: SQLite work is CPU-bound).
	Workers int
	// SortBytes is the memory of a load's external sort (default 384 MiB):
	// sightings are buffered up to a third of it, then sorted and spilled
	// as a run while the next third fills. Bigger means fewer runs to merge.
	SortBytes int
	// CacheKiB is the SQLite page cache of a shard being written (default
	// 16384 KiB; Workers shards are written at a time). Key-ordered inserts
	// need little: they touch each page once.
	CacheKiB int
	// CommitRows is how many distinct rows a shard writer inserts per
	// transaction (default 1<<20).
	CommitRows int
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = defaultWorkers()
	}
	if o.SortBytes <= 0 {
		o.SortBytes = 384 << 20
	}
	if o.CacheKiB <= 0 {
		o.CacheKiB = 16384
	}
	if o.CommitRows <= 0 {
		o.CommitRows = 1 << 20
	}
}

// Open opens the index of a case: dir is the shard directory (created 0700
// if missing), catalog the case catalog DB, where Open creates the sources
// table. The shard count is recorded in the catalog's index_meta on first use.
func Open(ctx context.Context, catalog *sql.DB, dir string, opts Options) (*Index, error) {
	opts.defaults()
	if err := EnsureCatalog(ctx, catalog); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var stored string
	err := catalog.QueryRowContext(ctx, `SELECT value FROM index_meta WHERE key='shards'`).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		n := opts.Shards
		if n == 0 {
			n = DefaultShards
		}
		if n < 1 || n > 999 {
			return nil, ErrNoShards
		}
		if _, err := catalog.ExecContext(ctx, `INSERT OR IGNORE INTO index_meta(key, value) VALUES ('shards', ?)`, strconv.Itoa(n)); err != nil {
			return nil, fmt.Errorf("index: record shard count: %w", err)
		}
		opts.Shards = n
	case err != nil:
		return nil, fmt.Errorf("index: read shard count: %w", err)
	default:
		n, err := strconv.Atoi(stored)
		if err != nil || n < 1 || n > 999 {
			return nil, fmt.Errorf("index: catalog index_meta shards=%q: %w", stored, ErrNoShards)
		}
		if opts.Shards != 0 && opts.Shards != n {
			return nil, fmt.Errorf("%w: case has %d, asked for %d", ErrShardCount, n, opts.Shards)
		}
		opts.Shards = n
	}
	return &Index{catalog: catalog, dir: dir, n: opts.Shards, opts: opts}, nil
}

// OpenRead returns the index of a case for reading only (evidx serve):
// nothing is created in the catalog or the shard directory, and shards
// are opened read-only (mode=ro). shards is the case's shard count.
// Loads through it fail.
func OpenRead(catalog *sql.DB, dir string, shards int) (*Index, error) {
	if shards < 1 || shards > 999 {
		return nil, ErrNoShards
	}
	opts := Options{Shards: shards}
	opts.defaults()
	return &Index{catalog: catalog, dir: dir, n: shards, opts: opts, ro: true}, nil
}

// Shards returns the shard count.
func (ix *Index) Shards() int { return ix.n }

// Dir returns the shard directory.
func (ix *Index) Dir() string { return ix.dir }

// ShardPath returns the file of shard i.
func (ix *Index) ShardPath(i int) string {
	return filepath.Join(ix.dir, fmt.Sprintf("shard-%03d.sqlite", i))
}

// lock takes the exclusive load lock (index/load.lock), waiting while another
// process or goroutine holds it, until ctx ends. The returned func releases it.
func (ix *Index) lock(ctx context.Context) (func(), error) {
	if ix.ro {
		return nil, fmt.Errorf("index: %s: opened read-only", ix.dir)
	}
	f, err := os.OpenFile(filepath.Join(ix.dir, "load.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("index: lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("index: lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// shardPageSize is the page size of a new shard: with 64 KiB pages a key-ordered
// bulk insert ran about 20% faster than with 4 KiB, and a lookup still
// reads three pages at most.
const shardPageSize = 65536

// shardSetup is what every writer of shard i runs first, through either
// connection: a new file gets its page size and schema. Rollback journal
// with synchronous=OFF: a killed process leaves a hot journal that the next
// open rolls back (power loss is not the risk we pay fsyncs for: a load can
// be redone), and pages appended to the file are never journaled, so a
// first load writes each page once (a WAL wrote it twice: WAL, then
// checkpoint).
func (ix *Index) shardSetup(i int) []string {
	return []string{
		fmt.Sprintf(`PRAGMA page_size=%d`, shardPageSize),
		`PRAGMA journal_mode=DELETE`,
		`PRAGMA synchronous=OFF`,
		fmt.Sprintf(`PRAGMA cache_size=-%d`, ix.opts.CacheKiB),
		`PRAGMA temp_store=MEMORY`,
		shardSchema,
		fmt.Sprintf(`INSERT OR IGNORE INTO shard_meta(key, value) VALUES ('shard', '%d'), ('shards', '%d')`, i, ix.n),
	}
}

// checkShardCount returns ErrShardCount when shard i was made for another
// shard count than the case's.
func (ix *Index) checkShardCount(i int, got string) error {
	if got != strconv.Itoa(ix.n) {
		return fmt.Errorf("%w: %s was made for %s shards, case has %d", ErrShardCount, ix.ShardPath(i), got, ix.n)
	}
	return nil
}

const shardCountQuery = `SELECT value FROM shard_meta WHERE key='shards'`

// openShardWrite opens shard i (created 0600 if missing) for writing
// through database/sql: one connection only.
func (ix *Index) openShardWrite(ctx context.Context, i int) (*sql.DB, error) {
	p := ix.ShardPath(i)
	if err := createPrivate(p); err != nil {
		return nil, fmt.Errorf("index: shard %d: %w", i, err)
	}
	db, err := sql.Open("sqlite3", shardDSN(p, "_busy_timeout=30000"))
	if err != nil {
		return nil, fmt.Errorf("index: shard %d: %w", i, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	for _, s := range ix.shardSetup(i) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("index: shard %d %s: %w", i, p, err)
		}
	}
	var got string
	if err := db.QueryRowContext(ctx, shardCountQuery).Scan(&got); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: shard %d %s: %w", i, p, err)
	}
	if err := ix.checkShardCount(i, got); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// createPrivate makes an empty file 0600 unless it exists: SQLite would
// create it with the umask's mode.
func createPrivate(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// closeShardWrite closes a shard opened by openShardWrite. A shard an
// earlier version left in WAL mode is switched to a rollback journal, so it
// is one self-contained file an analyst can open with the sqlite3 shell,
// even read-only (while a search holds it the switch fails and it stays in
// WAL mode, just as consistent).
func closeShardWrite(ctx context.Context, db *sql.DB) error {
	db.ExecContext(ctx, `PRAGMA journal_mode=DELETE`)
	return db.Close()
}

// shardDSN is the SQLite URI of a shard file: the path escaped so that a
// case directory holding '?' or '#' still names the right file.
func shardDSN(path, params string) string {
	u := url.URL{Scheme: "file", Path: path}
	return u.String() + "?" + params
}

// openShardRead opens shard i for queries, or returns (nil, nil) when the
// shard file does not exist yet (no load has reached it).
func (ix *Index) openShardRead(i int) (*sql.DB, error) {
	p := ix.ShardPath(i)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	params := "_query_only=1&_busy_timeout=30000"
	if ix.ro {
		params = "mode=ro&" + params
	}
	db, err := sql.Open("sqlite3", shardDSN(p, params))
	if err != nil {
		return nil, fmt.Errorf("index: shard %d: %w", i, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// OpenShardRead opens shard i for the caller's own read-only queries
// (mode=ro with OpenRead), or returns (nil, nil) when it does not exist
// yet. The caller closes it.
func (ix *Index) OpenShardRead(i int) (*sql.DB, error) { return ix.openShardRead(i) }

// ShardFiles lists the shard files in a shard directory, in shard order:
// what verify and the audit log hash.
func ShardFiles(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "shard-[0-9][0-9][0-9].sqlite"))
	if err != nil {
		return nil, fmt.Errorf("index: shards: %w", err)
	}
	sort.Strings(paths)
	return paths, nil
}

package index

/*
// The few SQLite C API functions a bulk load needs, declared here rather
// than through a header: the library is the one github.com/mattn/go-sqlite3
// compiles into the binary (or the system's, with its libsqlite3 tag).
#include <stdlib.h>

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(sqlite3 *db);
int sqlite3_busy_timeout(sqlite3 *db, int ms);
int sqlite3_exec(sqlite3 *db, const char *sql, void *callback, void *arg, char **errmsg);
const char *sqlite3_errmsg(sqlite3 *db);
int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_text(sqlite3_stmt *stmt, int i, const char *s, int n, void (*destructor)(void *));
int sqlite3_bind_int64(sqlite3_stmt *stmt, int i, long long v);
int sqlite3_step(sqlite3_stmt *stmt);
int sqlite3_reset(sqlite3_stmt *stmt);
int sqlite3_column_int(sqlite3_stmt *stmt, int i);
long long sqlite3_column_int64(sqlite3_stmt *stmt, int i);
const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i);
int sqlite3_finalize(sqlite3_stmt *stmt);

#define BULK_OPEN_READWRITE 0x2
#define BULK_ROW 100
#define BULK_DONE 101

#define BULK_OPEN_CREATE 0x4
#define BULK_OPEN_NOMUTEX 0x8000

int sqlite3_config(int op, ...);

// bulk_no_memstatus turns off SQLite's memory statistics, whose global
// mutex every allocation of every connection takes. It only works before
// SQLite is initialised (else SQLITE_MISUSE, ignored).
static int bulk_no_memstatus(void) { return sqlite3_config(9, 0); } // SQLITE_CONFIG_MEMSTATUS

static sqlite3 *bulk_open(const char *path, int *rc) {
	sqlite3 *db = 0;
	// NOMUTEX: a bulk connection is used by one goroutine at a time.
	*rc = sqlite3_open_v2(path, &db, BULK_OPEN_READWRITE|BULK_OPEN_CREATE|BULK_OPEN_NOMUTEX, 0);
	if (*rc == 0) sqlite3_busy_timeout(db, 30000);
	return db;
}

static sqlite3_stmt *bulk_prepare(sqlite3 *db, const char *sql, int *rc) {
	sqlite3_stmt *st = 0;
	*rc = sqlite3_prepare_v2(db, sql, -1, &st, 0);
	return st;
}

// bulk_put inserts n sightings packed in buf (kind, value, location back to
// back; meta holds their three lengths and the count), rows statements
// at a time through insn (a VALUES list of rows rows), the rest through
// ins1. When ex is not NULL it first lists, per row, the sources already
// holding the identity: isnew[i] says whether there were none, and their
// ids go to holders (capacity cap; *nholders of them). It stops at the
// first error and returns the SQLite code, or BULK_FULL when holders is
// too small (nothing inserted: call again with more room); *done is the
// row it was at.
#define BULK_FULL (-1)

static int bulk_put(sqlite3_stmt *ins1, sqlite3_stmt *insn, int rows, sqlite3_stmt *ex,
                    const char *buf, const long long *meta, int n, unsigned char *isnew,
                    long long *holders, int cap, int *nholders, int *done) {
	int rc;
	if (ex) {
		const char *p = buf;
		int h = 0;
		for (int i = 0; i < n; i++) {
			int kl = (int)meta[4*i], vl = (int)meta[4*i+1], ll = (int)meta[4*i+2];
			sqlite3_bind_text(ex, 1, p, kl, 0);
			sqlite3_bind_text(ex, 2, p + kl, vl, 0);
			p += kl + vl + ll;
			isnew[i] = 1;
			while ((rc = sqlite3_step(ex)) == BULK_ROW) {
				isnew[i] = 0;
				if (h == cap) { sqlite3_reset(ex); *done = i; return BULK_FULL; }
				holders[h++] = sqlite3_column_int64(ex, 0);
			}
			sqlite3_reset(ex);
			if (rc != BULK_DONE) { *done = i; return rc; }
		}
		*nholders = h;
	}
	for (int i = 0; i < n; ) {
		sqlite3_stmt *st = n - i >= rows ? insn : ins1;
		int m = st == insn ? rows : 1;
		for (int r = 0; r < m; r++, i++) {
			int kl = (int)meta[4*i], vl = (int)meta[4*i+1], ll = (int)meta[4*i+2];
			const char *k = buf, *v = buf + kl, *l = v + vl;
			buf = l + ll;
			sqlite3_bind_text(st, 4*r+1, k, kl, 0);
			sqlite3_bind_text(st, 4*r+2, v, vl, 0);
			sqlite3_bind_int64(st, 4*r+3, meta[4*i+3]);
			sqlite3_bind_text(st, 4*r+4, l, ll, 0);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != BULK_DONE) { *done = i - m; return rc; }
	}
	*done = n;
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

func init() { C.bulk_no_memstatus() }

// bulkConn is a shard connection for one source's load, driven through
// SQLite's C API: a batch of rows costs one cgo call, where a database/sql
// Exec per row cost about three times the SQLite work itself, and passing
// rows as one JSON array per statement about twice. Its statements bind
// the batch's bytes without copying them. Used by one goroutine.
type bulkConn struct {
	path string
	db   *C.sqlite3
	ins  *C.sqlite3_stmt // one row
	insN *C.sqlite3_stmt // rowsPerInsert rows
	ex   *C.sqlite3_stmt // nil when the case held no other source: every identity is new

	// shared counts, per earlier source, the identities of this load it
	// already held.
	shared map[int64]int64
}

// openBulk opens the shard file at path for loading source src, running
// setup first. checkNew asks for the "already in the case" lookup per row.
func openBulk(path string, setup []string, src int64, checkNew bool) (*bulkConn, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var rc C.int
	b := &bulkConn{path: path, shared: map[int64]int64{}}
	b.db = C.bulk_open(cpath, &rc)
	if rc != 0 {
		err := b.errf("open", rc)
		b.close()
		return nil, err
	}
	for _, q := range setup {
		if err := b.exec(q); err != nil {
			b.close()
			return nil, err
		}
	}
	var err error
	b.ins, err = b.prepare(insertSQL(src, 1))
	if err == nil {
		b.insN, err = b.prepare(insertSQL(src, rowsPerInsert))
	}
	if err == nil && checkNew {
		b.ex, err = b.prepare(`SELECT source_id FROM sightings WHERE kind = ?1 AND value = ?2`)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// rowsPerInsert is how many rows one INSERT statement carries. Inserted
// by one statement, key-ordered rows are appended to the B-tree without a
// search from the root (SQLite keeps the cursor on the last leaf between
// them); a statement per row searched from the root every time.
const rowsPerInsert = 128

// insertSQL is an INSERT of rows sightings of source src.
func insertSQL(src int64, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO sightings(kind, value, source_id, occurrences, first_loc) VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(?%d, ?%d, %d, ?%d, ?%d)", 4*r+1, 4*r+2, src, 4*r+3, 4*r+4)
	}
	return b.String()
}

func (b *bulkConn) errf(what string, rc C.int) error {
	msg := "unknown error"
	if b.db != nil {
		msg = C.GoString(C.sqlite3_errmsg(b.db))
	}
	return fmt.Errorf("%s %s: %s (SQLite code %d)", what, b.path, msg, int(rc))
}

func (b *bulkConn) prepare(q string) (*C.sqlite3_stmt, error) {
	cq := C.CString(q)
	defer C.free(unsafe.Pointer(cq))
	var rc C.int
	st := C.bulk_prepare(b.db, cq, &rc)
	if rc != 0 {
		return nil, b.errf("prepare", rc)
	}
	return st, nil
}

// queryText returns the first column of the first row of q, "" when q
// returns no row.
func (b *bulkConn) queryText(q string) (string, error) {
	st, err := b.prepare(q)
	if err != nil {
		return "", err
	}
	defer C.sqlite3_finalize(st)
	switch rc := C.sqlite3_step(st); rc {
	case C.BULK_ROW:
		return C.GoString((*C.char)(unsafe.Pointer(C.sqlite3_column_text(st, 0)))), nil
	case C.BULK_DONE:
		return "", nil
	default:
		return "", b.errf(q, rc)
	}
}

func (b *bulkConn) exec(q string) error {
	cq := C.CString(q)
	defer C.free(unsafe.Pointer(cq))
	if rc := C.sqlite3_exec(b.db, cq, nil, nil, nil); rc != 0 {
		return b.errf(q, rc)
	}
	return nil
}

// bulkBatch packs rows for bulkConn.put.
type bulkBatch struct {
	buf     []byte
	meta    []int64 // per row: len kind, len value, len location, occurrences
	kinds   []string
	isnew   []byte
	holders []int64
}

func (t *bulkBatch) add(kind string, value, loc []byte, count int64) {
	t.buf = append(t.buf, kind...)
	t.buf = append(t.buf, value...)
	t.buf = append(t.buf, loc...)
	t.meta = append(t.meta, int64(len(kind)), int64(len(value)), int64(len(loc)), count)
	t.kinds = append(t.kinds, kind)
}

func (t *bulkBatch) len() int { return len(t.kinds) }

func (t *bulkBatch) reset() {
	t.buf, t.meta, t.kinds = t.buf[:0], t.meta[:0], t.kinds[:0]
}

// put inserts the batch's rows; with the lookup on, t.isnew[i] says
// whether row i's identity was new to the shard, and b.shared counts the
// sources that already held the batch's identities.
func (b *bulkConn) put(t *bulkBatch) error {
	n := t.len()
	if n == 0 {
		return nil
	}
	t.buf = append(t.buf, 0) // never an empty buffer: &buf[0] must exist
	if cap(t.isnew) < n {
		t.isnew = make([]byte, n)
	}
	t.isnew = t.isnew[:n]
	if len(t.holders) < n {
		t.holders = make([]int64, 2*n)
	}
	var done, nholders C.int
	rc := C.int(C.BULK_FULL)
	for rc == C.BULK_FULL {
		rc = C.bulk_put(b.ins, b.insN, rowsPerInsert, b.ex, (*C.char)(unsafe.Pointer(&t.buf[0])), (*C.longlong)(unsafe.Pointer(&t.meta[0])),
			C.int(n), (*C.uchar)(unsafe.Pointer(&t.isnew[0])),
			(*C.longlong)(unsafe.Pointer(&t.holders[0])), C.int(len(t.holders)), &nholders, &done)
		if rc == C.BULK_FULL {
			t.holders = make([]int64, 2*len(t.holders))
		}
	}
	t.buf = t.buf[:len(t.buf)-1]
	if rc != 0 {
		return b.errf(fmt.Sprintf("insert at row %d of %d", int(done)+1, n), rc)
	}
	if b.ex != nil {
		for _, id := range t.holders[:nholders] {
			b.shared[id]++
		}
	}
	return nil
}

// close finalizes the statements and closes the connection; an open
// transaction is rolled back.
func (b *bulkConn) close() error {
	if b == nil || b.db == nil {
		return nil
	}
	for _, st := range []**C.sqlite3_stmt{&b.ins, &b.insN, &b.ex} {
		if *st != nil {
			C.sqlite3_finalize(*st)
			*st = nil
		}
	}
	rc := C.sqlite3_close_v2(b.db)
	b.db = nil
	if rc != 0 {
		return errors.New("close " + b.path + ": SQLite code " + fmt.Sprint(int(rc)))
	}
	return nil
}

package custody

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/evidx/evidx/digest"
)

// hashFile returns the hex SHA-256 and size of a file of the case.
func hashFile(p string) (string, int64, error) { return digest.SHA256File(context.Background(), p) }

// ErrBadObject means an object name is not a lower-case hex SHA-256.
var ErrBadObject = errors.New("custody: bad object name")

// ObjectPath returns where the object with hex SHA-256 sum is stored:
// objects/ab/cd/<sum>, where ab and cd are its first four hex digits.
func (c *Case) ObjectPath(sum string) (string, error) {
	if !isHex(sum, 64) {
		return "", fmt.Errorf("%w: %q", ErrBadObject, sum)
	}
	return filepath.Join(c.dir, ObjectsDir, sum[0:2], sum[2:4], sum), nil
}

// StoreObject copies r into the content store and returns its digests. The
// bytes stream to a temporary file (0600) while the three hashes run, then
// the file is renamed to its SHA-256 name; content already stored is not
// stored twice. The object is recorded in the objects table. Safe for
// concurrent use; while a Batch is open, use Batch.StoreObject (SQLite
// allows one writer, and the batch holds it).
func (c *Case) StoreObject(ctx context.Context, r io.Reader) (digest.Sums, error) {
	sums, err := c.storeFile(ctx, r)
	if err != nil {
		return sums, err
	}
	return sums, recordObject(ctx, c.db, sums)
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func recordObject(ctx context.Context, db execer, sums digest.Sums) error {
	if _, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO objects(sha256, md5, sha1, size, stored_at) VALUES (?, ?, ?, ?, ?)`,
		sums.SHA256, sums.MD5, sums.SHA1, sums.Size, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("custody: record object %s: %w", sums.SHA256, err)
	}
	return nil
}

// smallObject is the size below which an object is hashed in one buffer
// on the calling goroutine (bytes).
const smallObject = 4 << 20

// smallPool holds smallObject-byte read buffers.
var smallPool = sync.Pool{New: func() any { b := make([]byte, smallObject); return &b }}

// storeFile puts r's bytes into the content store without recording them.
func (c *Case) storeFile(ctx context.Context, r io.Reader) (digest.Sums, error) {
	tmpDir, err := c.Scratch()
	if err != nil {
		return digest.Sums{}, err
	}
	tmp, err := os.CreateTemp(tmpDir, "incoming-*")
	if err != nil {
		return digest.Sums{}, fmt.Errorf("custody: store: %w", err)
	}
	defer os.Remove(tmp.Name())
	// Small objects (most files) are hashed on this goroutine: digest.Sum's
	// parallel hashers and 8 MiB of buffers only pay off for large streams.
	bp := smallPool.Get().(*[]byte)
	defer smallPool.Put(bp)
	var sums digest.Sums
	n, err := io.ReadFull(r, *bp)
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		w := digest.NewWriter()
		w.Write((*bp)[:n])
		sums = w.Sums()
		_, err = tmp.Write((*bp)[:n])
	case err != nil:
	default:
		// Large objects keep their zero blocks as holes.
		sf := newSparseFile(tmp)
		sums, err = digest.Sum(ctx, io.TeeReader(io.MultiReader(bytes.NewReader((*bp)[:n]), r), sf), nil)
		if err == nil {
			err = sf.finish()
		}
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return sums, fmt.Errorf("custody: store: %w", err)
	}
	dst, err := c.ObjectPath(sums.SHA256)
	if err != nil {
		return sums, err
	}
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
			return sums, err
		}
		if err := chmod(tmp.Name(), filePerm); err != nil {
			return sums, err
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return sums, fmt.Errorf("custody: store: %w", err)
		}
	} else if err != nil {
		return sums, fmt.Errorf("custody: store: %w", err)
	}
	return sums, nil
}

// OpenObject opens a stored object read-only.
func (c *Case) OpenObject(sum string) (*os.File, error) {
	p, err := c.ObjectPath(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("custody: object %s: %w", sum, err)
	}
	return f, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

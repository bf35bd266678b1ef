// Package zipfs reads a ZIP archive as a file system, so that an archive
// on evidence opens as a layer like a disk image does: its members are
// listed with paths through the archive ("p1:/mail/leak.zip/users.csv"),
// extracted, hashed and walked for datasets, and an archive or disk image
// stored inside it opens as the next layer.
//
// Read: the central directory (ZIP64 included, as archive/zip reads it),
// stored and deflated members, directories, member times (the extended
// timestamp in UTC when present; else the DOS local time, read as UTC
// and said so once in Problems). Not read: encrypted members (named as
// problems), multi-disk archives. Office documents (OOXML, ODF, EPUB:
// ZIPs whose first member is "mimetype" or that hold "[Content_Types].xml")
// are files, not archives to expand: Open refuses them with ErrDocument.
//
// Bounds: a member's declared size is distrusted; its content is cut at
// that size and one that declares more than maxRatio times its compressed
// size above minBomb bytes is refused as a bomb, named in Problems.
package zipfs

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/evidx/evidx/ingest/fs"
)

// Errors of Open.
var (
	ErrDocument = errors.New("zipfs: an office document (OOXML, ODF, EPUB), not an archive")
	ErrBomb     = errors.New("zipfs: member expands beyond the bound (zip bomb)")
)

const (
	maxRatio  = 1000     // declared uncompressed / compressed size
	minBomb   = 64 << 20 // sizes below this are never a bomb
	maxBuffer = 32 << 20 // deflated members up to this are read into memory, for random access
	maxFiles  = 1 << 20  // members listed per archive
)

// FS is an opened archive.
type FS struct {
	ra    io.ReaderAt
	files []*zip.File // by Inode-1

	mu       sync.Mutex
	problems []string
	dosTime  bool
}

// Open opens the ZIP archive r of size bytes.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("zipfs: central directory: %w", err)
	}
	if len(zr.File) > 0 && zr.File[0].Name == "mimetype" {
		return nil, ErrDocument
	}
	for _, f := range zr.File {
		if f.Name == "[Content_Types].xml" {
			return nil, ErrDocument
		}
	}
	z := &FS{ra: r, files: zr.File}
	if len(z.files) > maxFiles {
		z.problem("%d members; the first %d listed", len(z.files), maxFiles)
		z.files = z.files[:maxFiles]
	}
	return z, nil
}

func (z *FS) problem(format string, a ...any) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.problems) < 1000 {
		z.problems = append(z.problems, fmt.Sprintf(format, a...))
	}
}

// Type returns "zip".
func (z *FS) Type() string { return "zip" }

// Problems lists what could not be read, each naming the member.
func (z *FS) Problems() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.problems...)
}

// Unallocated returns nothing: an archive has no free space of its own
// (the bytes around its members are the disk's to carve).
func (z *FS) Unallocated() ([]fs.Range, error) { return nil, nil }

// Walk lists every member, directories included, in central-directory
// order; Inode is the member's position there, from 1.
func (z *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	for i, zf := range z.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &fs.File{Path: z.memberPath(zf, i), Inode: uint64(i + 1), Type: "file", Recoverable: true,
			Mtime: zf.Modified.UTC()}
		// archive/zip gives a time with the extended timestamp's offset
		// as its zone, and a DOS time (local, zone unknown) in UTC.
		if !zf.Modified.IsZero() && zf.Modified.Location() == time.UTC {
			z.mu.Lock()
			if !z.dosTime {
				z.dosTime = true
				z.problems = append(z.problems, "member times are DOS local times without a zone, shown as UTC")
			}
			z.mu.Unlock()
		}
		switch {
		case zf.FileInfo().IsDir():
			f.Type = "dir"
		case zf.Mode()&0o170000 == 0o120000:
			f.Type = "symlink"
		}
		// A directory entry has no data, unless someone hid some there:
		// its declared size is kept, so the bytes are not passed off as none.
		f.Size = int64(min(zf.UncompressedSize64, 1<<62))
		if zf.Flags&0x1 != 0 {
			f.Recoverable = false
			f.Err = "encrypted member"
			z.problem("%s: encrypted, not read", f.Path)
		} else if zf.Method == zip.Store && f.Type == "file" {
			if off, err := zf.DataOffset(); err == nil {
				f.Runs = []fs.Run{{Logical: 0, Offset: off, Length: int64(zf.CompressedSize64)}}
			}
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// memberPath makes a member name a path: '/'-separated components, each
// escaped as fs.NameComponent does ('..' cannot climb out), "\" read as
// a separator as Windows archivers write it.
func (z *FS) memberPath(zf *zip.File, i int) string {
	name := strings.ReplaceAll(strings.TrimSuffix(zf.Name, "/"), "\\", "/")
	var parts []string
	for _, c := range strings.Split(name, "/") {
		if c == "" {
			continue
		}
		esc, odd := fs.NameComponent(c)
		if odd {
			z.problem("member %d %q: name component %q escaped as %q", i+1, zf.Name, c, esc)
		}
		parts = append(parts, esc)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("/%%00-%d", i+1)
	}
	return "/" + path.Join(parts...)
}

// Open returns a member's content: random access for stored members and
// for deflated ones up to 32 MiB, a stream beyond.
func (z *FS) Open(f *fs.File) (io.Reader, error) {
	if f.Inode == 0 || f.Inode > uint64(len(z.files)) {
		return nil, fmt.Errorf("zipfs: %s: no member %d", f.Path, f.Inode)
	}
	zf := z.files[f.Inode-1]
	if zf.Flags&0x1 != 0 {
		return nil, fmt.Errorf("zipfs: %s: encrypted member", f.Path)
	}
	size := zf.UncompressedSize64
	if size > minBomb && size/maxRatio > zf.CompressedSize64 {
		z.problem("%s: declares %d bytes from %d: %v", f.Path, size, zf.CompressedSize64, ErrBomb)
		return nil, fmt.Errorf("%s: %w", f.Path, ErrBomb)
	}
	if zf.Method == zip.Store {
		if off, err := zf.DataOffset(); err == nil && zf.CompressedSize64 == size {
			return io.NewSectionReader(z.ra, off, int64(size)), nil
		}
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("zipfs: %s: %w", f.Path, err)
	}
	lr := &limited{rc: rc, r: io.LimitReader(rc, int64(size)+1), max: int64(size), name: f.Path}
	if size <= maxBuffer {
		b, err := io.ReadAll(lr)
		rc.Close()
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(b), nil
	}
	return lr, nil
}

// limited reads a member stream to its declared size and fails past it.
type limited struct {
	rc   io.ReadCloser
	r    io.Reader
	n    int64
	max  int64
	name string
}

func (l *limited) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.rc.Close()
		return n - int(l.n-l.max), fmt.Errorf("zipfs: %s: more than its declared %d bytes: %w", l.name, l.max, ErrBomb)
	}
	if err == io.EOF {
		l.rc.Close()
	}
	return n, err
}

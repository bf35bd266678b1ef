// Package records turns a leaked dataset's bytes into rows, whatever shape
// the seller left them in: it undoes compression (by magic bytes), decodes
// the character set to UTF-8, sniffs the format (delimited text with any
// delimiter, JSON Lines, SQL dumps, SQLite files, plain text) and yields
// chunks of rows that can be parsed on any goroutine, each row carrying its
// location (member, table, line).
package records

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Sentinel errors.
var (
	ErrBomb      = errors.New("records: expansion ratio too high (decompression bomb)")
	ErrTooLarge  = errors.New("records: record too large")
	ErrSpill     = errors.New("records: embedded database larger than the spill limit")
	ErrNested    = errors.New("records: compression nested too deep")
	ErrMalformed = errors.New("records: malformed")
)

// ParseError is an error at a location in a dataset.
type ParseError struct {
	Op  string // what was being read ("gzip", "sql insert", ...)
	Loc Loc
	Err error
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s at %s: %v", e.Op, e.Loc, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// Magic numbers of the containers recognised, at offset 0.
var (
	magicGzip   = []byte{0x1f, 0x8b}
	magicZstd   = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2  = []byte("BZh")
	magicXz     = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZip    = []byte("PK\x03\x04")
	magicZipEnd = []byte("PK\x05\x06")
	magicSQLite = []byte("SQLite format 3\x00")
)

// Compression names, as reported in FileStats.
const (
	CompNone  = "none"
	CompGzip  = "gzip"
	CompZstd  = "zstd"
	CompBzip2 = "bzip2"
	CompXz    = "xz"
	CompZip   = "zip"
)

// sniffCompression names the container whose magic starts head.
func sniffCompression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return CompGzip
	case bytes.HasPrefix(head, magicZstd):
		return CompZstd
	case bytes.HasPrefix(head, magicBzip2) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return CompBzip2
	case bytes.HasPrefix(head, magicXz):
		return CompXz
	case bytes.HasPrefix(head, magicZip) || bytes.HasPrefix(head, magicZipEnd):
		return CompZip
	}
	return CompNone
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader stops a decompressed stream whose output outgrows MaxRatio
// times its compressed input once past a floor of MinBombBytes.
type ratioReader struct {
	r        io.Reader
	in       *countReader
	out      int64
	maxRatio int64
	floor    int64
}

func (b *ratioReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.out += int64(n)
	if b.out > b.floor && b.out > b.maxRatio*(b.in.n+1) {
		return n, ErrBomb
	}
	return n, err
}

// decompress wraps r (whose first bytes are in br) by its container type.
// It returns the decompressed reader and a close function.
func decompress(comp string, r io.Reader, o *Options) (io.Reader, func(), error) {
	cr := &countReader{r: r}
	var dr io.Reader
	closer := func() {}
	switch comp {
	case CompGzip:
		g, err := gzip.NewReader(cr)
		if err != nil {
			return nil, nil, err
		}
		dr = g
	case CompZstd:
		z, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, nil, err
		}
		dr, closer = z, z.Close
	case CompBzip2:
		dr = bzip2.NewReader(cr)
	case CompXz:
		x, err := xz.NewReader(cr)
		if err != nil {
			return nil, nil, err
		}
		dr = x
	default:
		return nil, nil, fmt.Errorf("records: no decompressor for %s", comp)
	}
	return &ratioReader{r: dr, in: cr, maxRatio: o.MaxRatio, floor: o.MinBombBytes}, closer, nil
}

// peek returns up to n bytes at the head of br without consuming them.
func peek(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n)
	return b
}

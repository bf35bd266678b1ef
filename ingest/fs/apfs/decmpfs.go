package apfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest/fs"
)

// decmpfs (com.apple.decmpfs) compression types.
const (
	cmpInlineRaw   = 1
	cmpZlibInline  = 3
	cmpZlibFork    = 4
	cmpLZVNInline  = 7
	cmpLZVNFork    = 8
	cmpLZFSEInline = 11
	cmpLZFSEFork   = 12

	decmpfsMagic  = 0x636d7066 // "fpmc" read little-endian
	chunkSize     = 65536      // every resource-fork chunk decodes to this (the last to less)
	maxInlineSize = 1 << 24    // an inline file is one chunk; far more is damage
	maxChunks     = 1 << 20    // 64 GiB of chunks
)

// ErrUnsupported says a file is compressed with a method this package does
// not decode.
var ErrUnsupported = errors.New("apfs: compression method not supported")

// compressed is what Open needs to decode one decmpfs file.
type compressed struct {
	typ    uint32
	size   int64
	inline []byte   // data after the decmpfs header (inline types)
	fork   []fs.Run // the resource fork (fork types)
	forkSz int64
}

func (a *FS) compression(v *volume, t *tree, id uint64, ino *inode) (*compressed, error) {
	h := ino.decmpfs
	c := &compressed{typ: le32(h, 4), size: int64(le64(h, 8))}
	if le32(h, 0) != decmpfsMagic {
		return c, fmt.Errorf("%w: decmpfs header magic %#x", ErrCorrupt, le32(h, 0))
	}
	if c.size < 0 || c.size > int64(maxChunks)*chunkSize {
		return &compressed{}, fmt.Errorf("%w: decmpfs uncompressed size %d", ErrCorrupt, c.size)
	}
	switch c.typ {
	case cmpInlineRaw, cmpZlibInline, cmpLZVNInline, cmpLZFSEInline:
		if c.size > maxInlineSize {
			return c, fmt.Errorf("%w: inline compressed file of %d bytes", ErrCorrupt, c.size)
		}
		c.inline = h[16:]
	case cmpZlibFork, cmpLZVNFork, cmpLZFSEFork:
		if ino.rsrc == nil {
			return c, fmt.Errorf("%w: decmpfs type %d without a resource fork", ErrCorrupt, c.typ)
		}
		runs, bad := a.runs(t.extents[ino.rsrc.oid], ino.rsrc.size)
		if bad != "" {
			return c, fmt.Errorf("%w: resource fork: %s", ErrCorrupt, bad)
		}
		c.fork, c.forkSz = runs, ino.rsrc.size
	default:
		return c, fmt.Errorf("%w: decmpfs type %d", ErrUnsupported, c.typ)
	}
	return c, nil
}

// reader decodes the file.
func (c *compressed) reader(a *FS, path string) (io.Reader, error) {
	switch c.typ {
	case cmpInlineRaw, cmpZlibInline, cmpLZVNInline, cmpLZFSEInline:
		out, err := decodeChunk(c.typ, c.inline, int(c.size))
		if err != nil {
			return nil, fmt.Errorf("%s: inline compressed data: %w", path, err)
		}
		if int64(len(out)) != c.size {
			return nil, fmt.Errorf("%s: %w: inline data decodes to %d bytes, want %d", path, ErrCorrupt, len(out), c.size)
		}
		return bytes.NewReader(out), nil
	}
	fork := fs.NewRunReaderAt(a.r, c.fork, c.forkSz, path+" resource fork")
	chunks, err := chunkTable(c.typ, fork, c.forkSz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want := (c.size + chunkSize - 1) / chunkSize; int64(len(chunks)) < want {
		return nil, fmt.Errorf("%s: %w: %d compressed chunks for %d bytes", path, ErrCorrupt, len(chunks), c.size)
	}
	return &chunkReader{typ: c.typ, src: fork, chunks: chunks, size: c.size, path: path}, nil
}

type chunk struct{ off, n int64 }

// chunkTable reads the chunk offsets at the head of a resource fork: for
// zlib, a resource-fork header and a block table; for LZVN/LZFSE, a table of
// little-endian offsets whose first entry is its own size.
func chunkTable(typ uint32, r io.ReaderAt, size int64) ([]chunk, error) {
	rd := func(off int64, n int) ([]byte, error) {
		if off < 0 || off+int64(n) > size {
			return nil, fmt.Errorf("%w: resource fork offset %#x+%d past its end %d", ErrCorrupt, off, n, size)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, err
		}
		return b, nil
	}
	var out []chunk
	if typ == cmpZlibFork {
		h, err := rd(0, 16)
		if err != nil {
			return nil, err
		}
		dataOff := int64(binary.BigEndian.Uint32(h))
		t, err := rd(dataOff+4, 4)
		if err != nil {
			return nil, err
		}
		n := int64(binary.LittleEndian.Uint32(t))
		if n > maxChunks {
			return nil, fmt.Errorf("%w: %d chunks in the resource fork", ErrCorrupt, n)
		}
		tab, err := rd(dataOff+8, int(n*8))
		if err != nil {
			return nil, err
		}
		for i := int64(0); i < n; i++ {
			o, l := int64(binary.LittleEndian.Uint32(tab[i*8:])), int64(binary.LittleEndian.Uint32(tab[i*8+4:]))
			out = append(out, chunk{dataOff + 4 + o, l})
		}
		return out, nil
	}
	first, err := rd(0, 4)
	if err != nil {
		return nil, err
	}
	tsz := int64(binary.LittleEndian.Uint32(first))
	if tsz < 8 || tsz%4 != 0 || tsz/4 > maxChunks {
		return nil, fmt.Errorf("%w: chunk table of %d bytes", ErrCorrupt, tsz)
	}
	tab, err := rd(0, int(tsz))
	if err != nil {
		return nil, err
	}
	for i := int64(0); i+1 < tsz/4; i++ {
		o, e := int64(binary.LittleEndian.Uint32(tab[i*4:])), int64(binary.LittleEndian.Uint32(tab[i*4+4:]))
		if e < o {
			return nil, fmt.Errorf("%w: chunk %d ends at %d before it starts at %d", ErrCorrupt, i, e, o)
		}
		out = append(out, chunk{o, e - o})
	}
	return out, nil
}

// chunkReader decodes a resource-fork-compressed file one 64 KiB chunk at
// a time, so memory stays bounded whatever the file's size.
type chunkReader struct {
	typ    uint32
	src    io.ReaderAt
	chunks []chunk
	size   int64
	path   string
	pos    int64
	next   int
	cur    []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.pos >= c.size {
			return 0, io.EOF
		}
		if c.next >= len(c.chunks) {
			return 0, fmt.Errorf("%s: %w: content ends at %d of %d bytes", c.path, ErrCorrupt, c.pos, c.size)
		}
		ch := c.chunks[c.next]
		if ch.n > 2*chunkSize+1024 {
			return 0, fmt.Errorf("%s: %w: compressed chunk %d of %d bytes", c.path, ErrCorrupt, c.next, ch.n)
		}
		in := make([]byte, ch.n)
		if _, err := c.src.ReadAt(in, ch.off); err != nil {
			return 0, fmt.Errorf("%s: chunk %d: %w", c.path, c.next, err)
		}
		want := int(min(chunkSize, c.size-c.pos))
		out, err := decodeChunk(c.typ, in, want)
		if err != nil {
			return 0, fmt.Errorf("%s: chunk %d at fork offset %#x: %w", c.path, c.next, ch.off, err)
		}
		if len(out) != want {
			return 0, fmt.Errorf("%s: %w: chunk %d decodes to %d bytes, want %d", c.path, ErrCorrupt, c.next, len(out), want)
		}
		c.next++
		c.cur = out
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	c.pos += int64(n)
	return n, nil
}

// decodeChunk decodes one chunk of at most want bytes.
func decodeChunk(typ uint32, in []byte, want int) ([]byte, error) {
	if len(in) == 0 {
		if want == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: empty compressed chunk", ErrCorrupt)
	}
	switch typ {
	case cmpInlineRaw:
		return in[:min(len(in), want)], nil
	case cmpZlibInline, cmpZlibFork:
		if in[0]&0x0f == 0x0f { // stored uncompressed after a marker byte
			return in[1:min(len(in), want+1)], nil
		}
		zr, err := zlib.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(want)))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		return out, nil
	case cmpLZVNInline, cmpLZVNFork:
		if in[0] == 0x06 { // stored uncompressed after the LZVN end marker
			return in[1:min(len(in), want+1)], nil
		}
		return lzvnDecode(in, want)
	case cmpLZFSEInline, cmpLZFSEFork:
		if in[0] == 0xff {
			return in[1:min(len(in), want+1)], nil
		}
		return lzfseDecode(in, want)
	}
	return nil, fmt.Errorf("%w: decmpfs type %d", ErrUnsupported, typ)
}

// lzfseDecode reads an LZFSE container: raw ("bvx-") and LZVN ("bvxn")
// blocks are decoded; FSE blocks ("bvx1", "bvx2") are not supported.
func lzfseDecode(in []byte, want int) ([]byte, error) {
	out := make([]byte, 0, want)
	for len(in) >= 4 {
		magic := string(in[:4])
		switch magic {
		case "bvx$":
			return out, nil
		case "bvx-":
			if len(in) < 8 {
				return nil, fmt.Errorf("%w: lzfse raw block header cut", ErrCorrupt)
			}
			n := int(le32(in, 4))
			if n > len(in)-8 || len(out)+n > want {
				return nil, fmt.Errorf("%w: lzfse raw block of %d bytes", ErrCorrupt, n)
			}
			out = append(out, in[8:8+n]...)
			in = in[8+n:]
		case "bvxn":
			if len(in) < 12 {
				return nil, fmt.Errorf("%w: lzfse lzvn block header cut", ErrCorrupt)
			}
			n, p := int(le32(in, 4)), int(le32(in, 8))
			if p > len(in)-12 || len(out)+n > want {
				return nil, fmt.Errorf("%w: lzfse lzvn block of %d bytes from %d", ErrCorrupt, n, p)
			}
			b, err := lzvnDecode(in[12:12+p], n)
			if err != nil {
				return nil, err
			}
			if len(b) != n {
				return nil, fmt.Errorf("%w: lzfse lzvn block decodes to %d bytes, want %d", ErrCorrupt, len(b), n)
			}
			out = append(out, b...)
			in = in[12+p:]
		case "bvx1", "bvx2":
			return nil, fmt.Errorf("%w: LZFSE entropy-coded (FSE) block", ErrUnsupported)
		default:
			return nil, fmt.Errorf("%w: lzfse block magic %q", ErrCorrupt, magic)
		}
	}
	return nil, fmt.Errorf("%w: lzfse stream without an end block", ErrCorrupt)
}

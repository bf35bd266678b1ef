// Package decmpfs decodes files compressed by macOS's decmpfs
// (com.apple.decmpfs extended attribute), as HFS+ and APFS store them:
// types 1 (inline, stored), 3/4 (zlib, inline or in the resource fork),
// 7/8 (LZVN) and 11/12 (LZFSE: its raw and LZVN blocks; the entropy-coded
// FSE blocks are not supported). Memory stays bounded: a resource-fork
// file is decoded one 64 KiB chunk at a time.
package decmpfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Compression types of the decmpfs header.
const (
	InlineRaw   = 1
	ZlibInline  = 3
	ZlibFork    = 4
	LZVNInline  = 7
	LZVNFork    = 8
	LZFSEInline = 11
	LZFSEFork   = 12

	magic         = 0x636d7066 // "fpmc" read little-endian
	HeaderLen     = 16
	chunkSize     = 65536   // every resource-fork chunk decodes to this (the last to less)
	maxInlineSize = 1 << 24 // an inline file is one chunk; far more is damage
	maxChunks     = 1 << 20 // 64 GiB of chunks
)

// Sentinel errors.
var (
	ErrCorrupt     = errors.New("decmpfs: corrupt compressed data")
	ErrUnsupported = errors.New("decmpfs: compression method not supported")
)

// Header is a decmpfs attribute's header.
type Header struct {
	Type uint32
	Size int64 // uncompressed size
}

// ParseHeader checks a com.apple.decmpfs attribute value and returns its
// header and the data after it (the inline compressed content).
func ParseHeader(b []byte) (Header, []byte, error) {
	if len(b) < HeaderLen {
		return Header{}, nil, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, len(b))
	}
	le := binary.LittleEndian
	h := Header{Type: le.Uint32(b[4:]), Size: int64(le.Uint64(b[8:]))}
	if le.Uint32(b) != magic {
		return h, nil, fmt.Errorf("%w: header magic %#x", ErrCorrupt, le.Uint32(b))
	}
	if h.Size < 0 || h.Size > int64(maxChunks)*chunkSize {
		return Header{}, nil, fmt.Errorf("%w: uncompressed size %d", ErrCorrupt, h.Size)
	}
	switch h.Type {
	case InlineRaw, ZlibInline, LZVNInline, LZFSEInline:
		if h.Size > maxInlineSize {
			return h, nil, fmt.Errorf("%w: inline compressed file of %d bytes", ErrCorrupt, h.Size)
		}
	case ZlibFork, LZVNFork, LZFSEFork:
	default:
		return h, nil, fmt.Errorf("%w: decmpfs type %d", ErrUnsupported, h.Type)
	}
	return h, b[HeaderLen:], nil
}

// InFork says the compressed content is in the resource fork.
func (h Header) InFork() bool {
	return h.Type == ZlibFork || h.Type == LZVNFork || h.Type == LZFSEFork
}

// Inline decodes the content of an inline type from the data after the header.
func Inline(h Header, data []byte) ([]byte, error) {
	out, err := decodeChunk(h.Type, data, int(h.Size))
	if err != nil {
		return nil, fmt.Errorf("inline compressed data: %w", err)
	}
	if int64(len(out)) != h.Size {
		return nil, fmt.Errorf("%w: inline data decodes to %d bytes, want %d", ErrCorrupt, len(out), h.Size)
	}
	return out, nil
}

// NewForkReader decodes a resource-fork type from fork (forkSize bytes).
// path names the file in errors.
func NewForkReader(h Header, fork io.ReaderAt, forkSize int64, path string) (io.Reader, error) {
	chunks, err := chunkTable(h.Type, fork, forkSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want := (h.Size + chunkSize - 1) / chunkSize; int64(len(chunks)) < want {
		return nil, fmt.Errorf("%s: %w: %d compressed chunks for %d bytes", path, ErrCorrupt, len(chunks), h.Size)
	}
	return &chunkReader{typ: h.Type, src: fork, chunks: chunks, size: h.Size, path: path}, nil
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
	if typ == ZlibFork {
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
	case InlineRaw:
		return in[:min(len(in), want)], nil
	case ZlibInline, ZlibFork:
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
	case LZVNInline, LZVNFork:
		if in[0] == 0x06 { // stored uncompressed after the LZVN end marker
			return in[1:min(len(in), want+1)], nil
		}
		return lzvnDecode(in, want)
	case LZFSEInline, LZFSEFork:
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
			n := int(binary.LittleEndian.Uint32(in[4:]))
			if n > len(in)-8 || len(out)+n > want {
				return nil, fmt.Errorf("%w: lzfse raw block of %d bytes", ErrCorrupt, n)
			}
			out = append(out, in[8:8+n]...)
			in = in[8+n:]
		case "bvxn":
			if len(in) < 12 {
				return nil, fmt.Errorf("%w: lzfse lzvn block header cut", ErrCorrupt)
			}
			n, p := int(binary.LittleEndian.Uint32(in[4:])), int(binary.LittleEndian.Uint32(in[8:]))
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

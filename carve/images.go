package carve

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/evidx/evidx/internal/parse"
)

// result is what a validator found: the exact length of the file from the
// candidate offset, and a refined type and extension (a ZIP may be a DOCX).
type result struct {
	n        int64
	typ, ext string
}

// ParseError says which part of a candidate file failed validation, at
// which image offset.
type ParseError = parse.Error

var (
	// ErrBadStructure is wrapped by every validator failure that is not a
	// truncation: the bytes are not a file of that type.
	ErrBadStructure = fmt.Errorf("carve: bad structure")
	// ErrTooBig is returned when a file exceeds its type's size cap.
	ErrTooBig = fmt.Errorf("carve: file exceeds the size cap")
)

func bad(op string, off int64, format string, a ...any) error {
	return &ParseError{Format: "carve", Op: op, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{ErrBadStructure}, a...)...)}
}

// fail turns a cursor error into the validator's error.
func fail(op string, c *cursor) error {
	if c.err == errTruncated || c.err == nil {
		return errTruncated
	}
	return &ParseError{Format: "carve", Op: op, Offset: c.pos, Err: c.err}
}

// JPEG markers (ITU T.81 table B.1).
const (
	jpegSOI  = 0xD8
	jpegEOI  = 0xD9
	jpegSOS  = 0xDA
	jpegTEM  = 0x01
	jpegRST0 = 0xD0
	jpegRST7 = 0xD7
)

func magicJPEG(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xFF && b[1] == jpegSOI && b[2] == 0xFF && b[3] >= 0xC0 && b[3] != 0xFF
}

// validateJPEG walks the marker segments from SOI; segment lengths carry it
// over APP1 (EXIF) so an embedded thumbnail's EOI is not taken as the end.
// After SOS it scans the entropy-coded data for the next marker, which must
// be one a progressive or sequential scan may contain there.
func validateJPEG(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	c.skip(2)
	sawFrame, sawScan := false, false
	for {
		b := c.next(2)
		if b == nil {
			return result{}, fail("jpeg marker", c)
		}
		for b[0] == 0xFF && b[1] == 0xFF { // fill bytes before a marker
			c.pos--
			if b = c.next(2); b == nil {
				return result{}, fail("jpeg marker", c)
			}
		}
		if b[0] != 0xFF {
			return result{}, bad("jpeg marker", c.pos-2, "byte %#x is not a marker", b[0])
		}
		m := b[1]
		switch {
		case m == jpegEOI:
			if !sawFrame || !sawScan {
				return result{}, bad("jpeg", c.pos, "EOI before frame and scan")
			}
			return result{n: c.pos, typ: "jpeg", ext: "jpg"}, nil
		case m == jpegTEM || (m >= jpegRST0 && m <= jpegRST7):
			continue
		case m < 0xC0 || m == jpegSOI:
			return result{}, bad("jpeg marker", c.pos-2, "invalid marker %#x", m)
		}
		lb := c.next(2)
		if lb == nil {
			return result{}, fail("jpeg segment", c)
		}
		l := int64(binary.BigEndian.Uint16(lb))
		if l < 2 {
			return result{}, bad("jpeg segment", c.pos-2, "length %d", l)
		}
		switch {
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			sawFrame = true
		}
		if !c.skip(l - 2) {
			return result{}, fail("jpeg segment", c)
		}
		if m != jpegSOS {
			continue
		}
		if !sawFrame {
			return result{}, bad("jpeg", c.pos, "scan before frame")
		}
		sawScan = true
		// Entropy-coded data: 0xFF is followed by 0x00 (stuffing), RSTn, or
		// a marker that ends the scan.
		for {
			p := c.peek(1)
			if p == nil {
				return result{}, fail("jpeg scan", c)
			}
			i := c.pos - c.bufAt
			j := bytes.IndexByte(c.buf[i:], 0xFF)
			if j < 0 || i+int64(j)+1 >= int64(len(c.buf)) {
				adv := int64(len(c.buf)) - i
				if j >= 0 {
					adv = int64(j)
				}
				if adv == 0 { // 0xFF is the last buffered byte
					if c.peek(2) == nil {
						return result{}, fail("jpeg scan", c)
					}
					continue
				}
				c.pos += adv
				continue
			}
			c.pos += int64(j)
			nb := c.buf[i+int64(j)+1]
			if nb == 0x00 || (nb >= jpegRST0 && nb <= jpegRST7) || nb == 0xFF {
				c.pos++
				continue
			}
			switch {
			case nb == jpegEOI, nb == jpegSOS, nb == 0xC4, nb == 0xDB, nb == 0xDD, nb == 0xFE, nb >= 0xE0 && nb <= 0xEF:
			default:
				return result{}, bad("jpeg scan", c.pos, "marker %#x inside scan data", nb)
			}
			break
		}
	}
}

var pngSig = []byte("\x89PNG\r\n\x1a\n")

func magicPNG(b []byte) bool {
	return bytes.HasPrefix(b, pngSig) && len(b) >= 16 && string(b[12:16]) == "IHDR"
}

// pngMaxChunk caps one chunk's length (the spec allows 2^31-1).
const pngMaxChunk = 1 << 28

// validatePNG walks chunks (length, type, data, CRC-32 of type+data) from
// the signature to IEND, checking every CRC: a wrong continuation of a
// fragmented file fails here.
func validatePNG(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	c.skip(8)
	first := true
	for {
		start := c.pos
		h := c.next(8)
		if h == nil {
			return result{}, fail("png chunk", c)
		}
		l := int64(binary.BigEndian.Uint32(h))
		typ := string(h[4:8])
		if l > pngMaxChunk {
			return result{}, bad("png chunk", start, "length %d", l)
		}
		for _, ch := range []byte(typ) {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
				return result{}, bad("png chunk", start, "type %q", typ)
			}
		}
		if first && typ != "IHDR" {
			return result{}, bad("png chunk", start, "first chunk %q", typ)
		}
		first = false
		crc := crc32.NewIEEE()
		crc.Write(h[4:8])
		for rem := l; rem > 0; {
			n := int64(bufSize)
			if n > rem {
				n = rem
			}
			d := c.next(int(n))
			if d == nil {
				return result{}, fail("png chunk data", c)
			}
			crc.Write(d)
			rem -= n
		}
		cb := c.next(4)
		if cb == nil {
			return result{}, fail("png crc", c)
		}
		if binary.BigEndian.Uint32(cb) != crc.Sum32() {
			return result{}, bad("png crc", c.pos-4, "chunk %q checksum mismatch", typ)
		}
		if typ == "IEND" {
			return result{n: c.pos, typ: "png", ext: "png"}, nil
		}
	}
}

func magicGIF(b []byte) bool {
	return len(b) >= 13 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a") && (b[6] != 0 || b[7] != 0) && (b[8] != 0 || b[9] != 0)
}

// validateGIF walks the block stream: screen descriptor, colour tables,
// extensions and images as length-prefixed sub-blocks, to the 0x3B trailer.
func validateGIF(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	c.skip(6)
	sd := c.next(7)
	if sd == nil {
		return result{}, fail("gif screen", c)
	}
	if sd[4]&0x80 != 0 {
		c.skip(3 << (sd[4]&7 + 1))
	}
	subBlocks := func() bool {
		for {
			n := c.byte1()
			if c.err != nil {
				return false
			}
			if n == 0 {
				return true
			}
			if !c.skip(int64(n)) {
				return false
			}
		}
	}
	images := 0
	for {
		at := c.pos
		t := c.byte1()
		if c.err != nil {
			return result{}, fail("gif block", c)
		}
		switch t {
		case 0x3B:
			if images == 0 {
				return result{}, bad("gif", at, "trailer before any image")
			}
			return result{n: c.pos, typ: "gif", ext: "gif"}, nil
		case 0x21:
			c.byte1() // label
			if !subBlocks() {
				return result{}, fail("gif extension", c)
			}
		case 0x2C:
			d := c.next(9)
			if d == nil {
				return result{}, fail("gif image", c)
			}
			if d[8]&0x80 != 0 {
				c.skip(3 << (d[8]&7 + 1))
			}
			lzw := c.byte1()
			if c.err == nil && (lzw < 1 || lzw > 12) {
				return result{}, bad("gif image", c.pos-1, "LZW code size %d", lzw)
			}
			if !subBlocks() {
				return result{}, fail("gif image data", c)
			}
			images++
		default:
			return result{}, bad("gif block", at, "introducer %#x", t)
		}
	}
}

func magicBMP(b []byte) bool {
	if len(b) < 30 || b[0] != 'B' || b[1] != 'M' {
		return false
	}
	switch binary.LittleEndian.Uint32(b[14:]) {
	case 12, 40, 52, 56, 64, 108, 124:
	default:
		return false
	}
	return true
}

// validateBMP checks the file and DIB headers against each other: the file
// size must hold the pixel array the dimensions and bit depth imply. BMP has
// no checksum, so it is never tried across a fragment gap.
func validateBMP(r io.ReaderAt, size int64) (result, error) {
	var h [54]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return result{}, errTruncated
	}
	fsize := int64(binary.LittleEndian.Uint32(h[2:]))
	pix := int64(binary.LittleEndian.Uint32(h[10:]))
	dib := int64(binary.LittleEndian.Uint32(h[14:]))
	var w, ht, bpp, comp int64
	if dib == 12 {
		w, ht = int64(binary.LittleEndian.Uint16(h[18:])), int64(binary.LittleEndian.Uint16(h[20:]))
		bpp = int64(binary.LittleEndian.Uint16(h[24:]))
		if binary.LittleEndian.Uint16(h[22:]) != 1 {
			return result{}, bad("bmp", 22, "planes")
		}
	} else {
		w = int64(int32(binary.LittleEndian.Uint32(h[18:])))
		ht = int64(int32(binary.LittleEndian.Uint32(h[22:])))
		if binary.LittleEndian.Uint16(h[26:]) != 1 {
			return result{}, bad("bmp", 26, "planes")
		}
		bpp = int64(binary.LittleEndian.Uint16(h[28:]))
		comp = int64(binary.LittleEndian.Uint32(h[30:]))
	}
	if ht < 0 {
		ht = -ht
	}
	switch bpp {
	case 1, 4, 8, 16, 24, 32:
	default:
		return result{}, bad("bmp", 28, "bit depth %d", bpp)
	}
	if w <= 0 || ht <= 0 || w > 1<<16 || ht > 1<<16 {
		return result{}, bad("bmp", 18, "dimensions %dx%d", w, ht)
	}
	if pix < 14+dib || pix > fsize {
		return result{}, bad("bmp", 10, "pixel offset %d", pix)
	}
	if comp == 0 || comp == 3 || comp == 6 {
		row := (bpp*w + 31) / 32 * 4
		if pix+row*ht > fsize || fsize > pix+row*ht+4096 {
			return result{}, bad("bmp", 2, "size %d does not fit %dx%dx%d", fsize, w, ht, bpp)
		}
	} else if comp > 6 {
		return result{}, bad("bmp", 30, "compression %d", comp)
	}
	if fsize > size {
		return result{}, errTruncated
	}
	return result{n: fsize, typ: "bmp", ext: "bmp"}, nil
}

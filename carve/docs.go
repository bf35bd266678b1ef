package carve

import (
	"bytes"
	"encoding/binary"
	"io"
	"strconv"
)

func magicPDF(b []byte) bool {
	return bytes.HasPrefix(b, []byte("%PDF-1.")) || bytes.HasPrefix(b, []byte("%PDF-2."))
}

// pdfEOF is the end-of-file marker every PDF revision ends with.
var pdfEOF = []byte("%%EOF")

// validatePDF scans for "%%EOF" markers. The file ends after the first one
// not followed by another revision (an incremental update starts with an
// object, "xref" or a comment). The last revision's startxref must point at
// an xref table or xref stream object, which is what checks a fragmented
// PDF's continuation.
func validatePDF(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	const win = 1 << 20
	var tail []byte // last bytes before the marker, for startxref
	for {
		// Search forward in windows with a small overlap.
		at := c.pos
		n := int64(win)
		if at+n > size {
			n = size - at
		}
		if n < int64(len(pdfEOF)) {
			return result{}, errTruncated
		}
		buf := c.peek(int(n))
		if buf == nil {
			return result{}, fail("pdf", c)
		}
		i := bytes.Index(buf, pdfEOF)
		if i < 0 {
			c.pos += n - int64(len(pdfEOF)) + 1
			tail = append(tail[:0], buf[max(0, len(buf)-2048):]...)
			continue
		}
		lo := max(0, i-2048)
		tail = append(tail[:0], buf[lo:i]...)
		end := at + int64(i) + int64(len(pdfEOF))
		// Optional end-of-line after the marker.
		c.pos = end
		if e := c.peek(2); e != nil && e[0] == '\r' && e[1] == '\n' {
			end += 2
		} else if e := c.peek(1); e != nil && (e[0] == '\n' || e[0] == '\r') {
			end++
		}
		c.err = nil
		c.pos = end
		if pdfContinues(c) {
			// An earlier revision (or a linearized file's first-page
			// section, whose startxref may be 0): the last one decides.
			c.pos = end
			continue
		}
		if err := checkStartxref(r, size, tail); err != nil {
			return result{}, err
		}
		return result{n: end, typ: "pdf", ext: "pdf"}, nil
	}
}

// checkStartxref finds "startxref N" in the bytes before a %%EOF and checks
// that offset N of the file holds "xref" or "<num> <gen> obj".
func checkStartxref(r io.ReaderAt, size int64, tail []byte) error {
	i := bytes.LastIndex(tail, []byte("startxref"))
	if i < 0 {
		return bad("pdf startxref", 0, "missing before %%%%EOF")
	}
	f := bytes.Fields(tail[i+len("startxref"):])
	if len(f) == 0 {
		return bad("pdf startxref", 0, "no offset")
	}
	off, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || off < 0 || off >= size {
		if err == nil && off >= size {
			return errTruncated
		}
		return bad("pdf startxref", 0, "offset %q", f[0])
	}
	var b [32]byte
	n, _ := r.ReadAt(b[:], off)
	s := bytes.TrimLeft(b[:n], " \r\n\t")
	if bytes.HasPrefix(s, []byte("xref")) || isObjHeader(s) {
		return nil
	}
	return bad("pdf startxref", off, "does not point at a cross-reference section")
}

// isObjHeader reports whether s starts "<digits> <digits> obj".
func isObjHeader(s []byte) bool {
	f := bytes.Fields(s)
	if len(f) < 3 {
		return false
	}
	for _, x := range f[:2] {
		if _, err := strconv.Atoi(string(x)); err != nil {
			return false
		}
	}
	return bytes.HasPrefix(f[2], []byte("obj"))
}

// pdfContinues reports whether the bytes at c.pos start another revision.
func pdfContinues(c *cursor) bool {
	n := int64(64)
	if c.pos+n > c.size {
		n = c.size - c.pos
	}
	if n <= 0 {
		return false
	}
	b := c.peek(int(n))
	c.err = nil
	s := bytes.TrimLeft(b, " \r\n\t")
	return isObjHeader(s) || bytes.HasPrefix(s, []byte("xref")) || (bytes.HasPrefix(s, []byte("%")) && !bytes.HasPrefix(s, []byte("%PDF")))
}

var sqliteMagic = []byte("SQLite format 3\x00")

func magicSQLite(b []byte) bool { return bytes.HasPrefix(b, sqliteMagic) }

// validateSQLite takes the length from the header: page size (offset 16,
// 1 means 65536) times the in-header page count (offset 28), trusted only
// when the change counter (24) equals version-valid-for (92), as SQLite
// itself requires. Fixed header fields and the first page's b-tree type are
// checked so a stray magic is not carved.
func validateSQLite(r io.ReaderAt, size int64) (result, error) {
	var h [112]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return result{}, errTruncated
	}
	ps := int64(binary.BigEndian.Uint16(h[16:]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return result{}, bad("sqlite header", 16, "page size %d", ps)
	}
	if h[18] < 1 || h[18] > 2 || h[19] < 1 || h[19] > 2 || h[21] != 64 || h[22] != 32 || h[23] != 32 {
		return result{}, bad("sqlite header", 18, "fixed fields")
	}
	if binary.BigEndian.Uint32(h[24:]) != binary.BigEndian.Uint32(h[92:]) {
		return result{}, bad("sqlite header", 28, "in-header page count is stale")
	}
	pages := int64(binary.BigEndian.Uint32(h[28:]))
	if pages == 0 {
		return result{}, bad("sqlite header", 28, "zero pages")
	}
	switch h[100] {
	case 0x0D, 0x05:
	default:
		return result{}, bad("sqlite page 1", 100, "b-tree type %#x", h[100])
	}
	n := pages * ps
	if n > size {
		return result{}, errTruncated
	}
	// Across a fragment gap the header says nothing about the bytes that
	// follow: every page starting after the gap must look like a SQLite
	// page (a b-tree page type, or a freelist/overflow page whose first
	// four bytes are a page number or zero).
	if v, ok := r.(*view); ok && len(v.runs) > 1 {
		gap := v.runs[0].Len
		first := (gap + ps - 1) / ps * ps
		if first >= n {
			return result{}, bad("sqlite", gap, "no whole page after the gap")
		}
		var b [4]byte
		for off := first; off < n; off += ps {
			if _, err := r.ReadAt(b[:], off); err != nil {
				return result{}, errTruncated
			}
			switch {
			case b[0] == 0x02 || b[0] == 0x05 || b[0] == 0x0A || b[0] == 0x0D:
			case int64(binary.BigEndian.Uint32(b[:])) <= pages:
			default:
				return result{}, bad("sqlite page", off, "page %d is not a SQLite page", off/ps+1)
			}
		}
	}
	return result{n: n, typ: "sqlite", ext: "sqlite"}, nil
}

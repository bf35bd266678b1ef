package fat

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strconv"
)

// Results of a structure check of recovered content (see fs.File.Recovery).
const (
	checkNone      = ""          // no check for this type, or too large to check
	checkVerified  = "verified"  // the format's checksums cover every byte and match
	checkPlausible = "plausible" // head and tail structure match; no content checksums
	checkMismatch  = "mismatch"  // the structure contradicts the content
)

// maxInflate bounds the bytes a check decompresses (ZIP members, gzip), so
// a deleted archive bomb cannot stall the walk. Past it the check gives up
// without a verdict.
const maxInflate = 1 << 30

// checkContent tells the type of recovered content from its first bytes
// and checks it by the type's own structure. It returns the type name, the
// result and, for a mismatch or a skipped check, why (offsets are in the
// file). Reading errors are mismatches: content that cannot be read is not
// proven.
func checkContent(r io.ReaderAt, size int64) (kind, result, why string) {
	head := make([]byte, 8)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	var err error
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		kind = "zip"
		result, err = checkZIP(r, size)
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		kind = "png"
		result, err = checkPNG(r, size)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 8}):
		kind = "gzip"
		result, err = checkGzip(r, size)
	case bytes.HasPrefix(head, []byte("%PDF-")):
		kind = "pdf"
		result, err = checkPDF(r, size)
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}):
		kind = "jpeg"
		result, err = checkJPEG(r, size)
	default:
		return "", checkNone, ""
	}
	if err != nil {
		why = err.Error()
	}
	return kind, result, why
}

func mismatch(format string, a ...any) (string, error) {
	return checkMismatch, fmt.Errorf(format, a...)
}

// checkZIP requires the end-of-central-directory record to end the file
// and the central directory to end exactly where that record (or its
// ZIP64 form) begins, then inflates every member against its CRC-32.
func checkZIP(r io.ReaderAt, size int64) (string, error) {
	const eocdLen = 22
	tailLen := min(size, eocdLen+65535)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil {
		return mismatch("zip: tail unreadable: %v", err)
	}
	eocd := int64(-1)
	for p := tailLen - eocdLen; p >= 0; p-- {
		if bytes.Equal(tail[p:p+4], []byte("PK\x05\x06")) && p+eocdLen+int64(binary.LittleEndian.Uint16(tail[p+20:])) == tailLen {
			eocd = p
			break
		}
	}
	if eocd < 0 {
		return mismatch("zip: no end-of-central-directory record ends the file")
	}
	e := tail[eocd:]
	eocdOff := size - tailLen + eocd
	cdSize := int64(binary.LittleEndian.Uint32(e[12:]))
	cdOff := int64(binary.LittleEndian.Uint32(e[16:]))
	dirEnd := eocdOff
	if cdOff == 0xffffffff || cdSize == 0xffffffff || binary.LittleEndian.Uint16(e[10:]) == 0xffff {
		// ZIP64: the locator (20 bytes) right before names the ZIP64 record.
		loc := make([]byte, 20)
		if eocdOff < 20 {
			return mismatch("zip: ZIP64 locator missing before 0x%x", eocdOff)
		}
		if _, err := r.ReadAt(loc, eocdOff-20); err != nil || !bytes.Equal(loc[:4], []byte("PK\x06\x07")) {
			return mismatch("zip: ZIP64 locator missing at 0x%x", eocdOff-20)
		}
		z64 := int64(binary.LittleEndian.Uint64(loc[8:]))
		rec := make([]byte, 56)
		if z64 < 0 || z64 > size-56 {
			return mismatch("zip: ZIP64 record offset 0x%x outside the file", z64)
		}
		if _, err := r.ReadAt(rec, z64); err != nil || !bytes.Equal(rec[:4], []byte("PK\x06\x06")) {
			return mismatch("zip: no ZIP64 record at 0x%x", z64)
		}
		cdSize = int64(binary.LittleEndian.Uint64(rec[40:]))
		cdOff = int64(binary.LittleEndian.Uint64(rec[48:]))
		dirEnd = z64
	}
	if cdOff < 0 || cdSize < 0 || cdOff+cdSize != dirEnd {
		return mismatch("zip: central directory at 0x%x of %d bytes does not end at its end record (0x%x)", cdOff, cdSize, dirEnd)
	}
	zr, err := zip.NewReader(io.NewSectionReader(r, 0, size), size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return mismatch("zip: %v", err)
	}
	var total uint64
	for _, m := range zr.File {
		total += m.UncompressedSize64
	}
	if total > maxInflate {
		return checkNone, fmt.Errorf("zip: %d bytes to inflate, more than the %d checked", total, maxInflate)
	}
	result := checkVerified
	for _, m := range zr.File {
		if m.Flags&1 != 0 || (m.Method != zip.Store && m.Method != zip.Deflate) {
			result = checkPlausible // encrypted or an unknown method: offsets checked, content not
			continue
		}
		off, err := m.DataOffset()
		if err != nil {
			return mismatch("zip: member %q: %v", m.Name, err)
		}
		rc, err := m.Open()
		if err != nil {
			return mismatch("zip: member %q at 0x%x: %v", m.Name, off, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return mismatch("zip: member %q (data at 0x%x): %v", m.Name, off, err)
		}
	}
	return result, nil
}

// checkPNG walks the chunks from the signature, checking each CRC, and
// requires IEND to end the file.
func checkPNG(r io.ReaderAt, size int64) (string, error) {
	pos := int64(8)
	hdr := make([]byte, 8)
	crcb := make([]byte, 4)
	for pos+12 <= size {
		if _, err := r.ReadAt(hdr, pos); err != nil {
			return mismatch("png: chunk at 0x%x unreadable: %v", pos, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		if n > size-pos-12 {
			return mismatch("png: chunk %q at 0x%x of %d bytes runs past the end", hdr[4:8], pos, n)
		}
		h := crc32.NewIEEE()
		h.Write(hdr[4:8])
		if _, err := io.Copy(h, io.NewSectionReader(r, pos+8, n)); err != nil {
			return mismatch("png: chunk at 0x%x unreadable: %v", pos, err)
		}
		if _, err := r.ReadAt(crcb, pos+8+n); err != nil {
			return mismatch("png: chunk CRC at 0x%x unreadable: %v", pos+8+n, err)
		}
		if got := binary.BigEndian.Uint32(crcb); got != h.Sum32() {
			return mismatch("png: chunk %q at 0x%x: CRC %08x, content gives %08x", hdr[4:8], pos, got, h.Sum32())
		}
		pos += 12 + n
		if string(hdr[4:8]) == "IEND" {
			if pos != size {
				return mismatch("png: IEND ends at 0x%x, %d bytes before the file's end", pos, size-pos)
			}
			return checkVerified, nil
		}
	}
	return mismatch("png: no IEND chunk before the end (0x%x)", pos)
}

// checkGzip inflates every member; the reader checks each member's CRC-32
// and length trailer.
func checkGzip(r io.ReaderAt, size int64) (string, error) {
	cr := &countReader{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		return mismatch("gzip: header: %v", err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, maxInflate+1))
	if err != nil {
		return mismatch("gzip: near compressed byte 0x%x: %v", cr.n, err)
	}
	if n > maxInflate {
		return checkNone, fmt.Errorf("gzip: more than %d bytes to inflate", maxInflate)
	}
	return checkVerified, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var (
	pdfStartXref = regexp.MustCompile(`startxref\s+(\d{1,15})\s+%%EOF[\r\n\x00 \t]*$`)
	pdfObj       = regexp.MustCompile(`^(\d{1,10})\s+(\d{1,5})\s+obj`)
	pdfXrefSub   = regexp.MustCompile(`^(\d{1,10}) (\d{1,10})\s*\r?\n`)
)

// checkPDF requires "%%EOF" to end the file after a startxref that points
// at a cross-reference table or stream, and every in-use entry of a table
// to point at the header of the object it names. PDF has no content
// checksum, so a changed byte inside a stream goes unseen: plausible at
// best.
func checkPDF(r io.ReaderAt, size int64) (string, error) {
	tailLen := min(size, 1024)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil {
		return mismatch("pdf: tail unreadable: %v", err)
	}
	m := pdfStartXref.FindSubmatch(tail)
	if m == nil {
		return mismatch("pdf: no startxref and %%%%EOF end the file")
	}
	xref, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if xref >= size {
		return mismatch("pdf: startxref 0x%x past the end", xref)
	}
	buf := make([]byte, min(size-xref, 64))
	r.ReadAt(buf, xref)
	if pdfObj.Match(buf) {
		return checkPlausible, nil // a cross-reference stream: its object header is where startxref says
	}
	if !bytes.HasPrefix(buf, []byte("xref")) {
		return mismatch("pdf: startxref 0x%x points at neither xref nor an object", xref)
	}
	// Read the table: subsections "first count" then 20-byte entries.
	br := bufio.NewReader(io.NewSectionReader(r, xref+4, size-xref-4))
	line := func() ([]byte, error) {
		for {
			b, err := br.ReadSlice('\n')
			if t := bytes.TrimSpace(b); len(t) > 0 || err != nil {
				return b, err
			}
		}
	}
	obj := make([]byte, 32)
	for {
		b, err := line()
		if bytes.HasPrefix(bytes.TrimSpace(b), []byte("trailer")) {
			return checkPlausible, nil
		}
		sm := pdfXrefSub.FindSubmatch(bytes.TrimLeft(b, " \r\n"))
		if err != nil || sm == nil {
			return mismatch("pdf: cross-reference table at 0x%x unreadable", xref)
		}
		first, _ := strconv.ParseInt(string(sm[1]), 10, 64)
		count, _ := strconv.ParseInt(string(sm[2]), 10, 64)
		if count > size/20 {
			return mismatch("pdf: cross-reference subsection of %d entries in a %d-byte file", count, size)
		}
		ent := make([]byte, 20)
		for i := range count {
			if _, err := io.ReadFull(br, ent); err != nil {
				return mismatch("pdf: cross-reference entry %d unreadable", first+i)
			}
			if ent[17] != 'n' {
				continue
			}
			off, err := strconv.ParseInt(string(ent[:10]), 10, 64)
			if err != nil || off >= size {
				return mismatch("pdf: object %d at %q outside the file", first+i, ent[:10])
			}
			n, _ := r.ReadAt(obj, off)
			om := pdfObj.FindSubmatch(obj[:n])
			if om == nil || string(om[1]) != strconv.FormatInt(first+i, 10) {
				return mismatch("pdf: object %d: no \"%d 0 obj\" at 0x%x", first+i, first+i, off)
			}
		}
	}
}

// checkJPEG walks the markers from SOI, scans the entropy-coded data for
// byte stuffing (0xFF is followed by 0x00 or a restart marker) and
// requires EOI to end the file. No checksum: plausible at best.
func checkJPEG(r io.ReaderAt, size int64) (string, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 2, size-2), 64<<10)
	pos := int64(2)
	next := func() (byte, error) {
		b, err := br.ReadByte()
		pos++
		return b, err
	}
	var pending byte // a marker the entropy scan already read, 0 if none
	for {
		mk := pending
		pending = 0
		if mk == 0 {
			b, err := next()
			if err != nil {
				return mismatch("jpeg: no EOI before the end")
			}
			if b != 0xff {
				return mismatch("jpeg: 0x%02x at 0x%x where a marker was due", b, pos-1)
			}
			for mk = 0xff; mk == 0xff; { // fill bytes
				if mk, err = next(); err != nil {
					return mismatch("jpeg: no EOI before the end")
				}
			}
		}
		switch {
		case mk == 0xd9:
			if pos != size {
				return mismatch("jpeg: EOI at 0x%x, %d bytes before the file's end", pos-2, size-pos)
			}
			return checkPlausible, nil
		case mk == 0x01 || (mk >= 0xd0 && mk <= 0xd7):
			continue
		case mk < 0xc0:
			return mismatch("jpeg: marker 0xff%02x at 0x%x", mk, pos-2)
		}
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return mismatch("jpeg: marker 0xff%02x at 0x%x cut short", mk, pos-2)
		}
		pos += 2
		n := int64(binary.BigEndian.Uint16(l[:]))
		if n < 2 || n-2 > size-pos {
			return mismatch("jpeg: marker 0xff%02x at 0x%x: length %d", mk, pos-4, n)
		}
		if _, err := br.Discard(int(n - 2)); err != nil {
			return mismatch("jpeg: marker 0xff%02x at 0x%x cut short", mk, pos-4)
		}
		pos += n - 2
		if mk != 0xda {
			continue
		}
		// Entropy-coded data up to the next marker that is not a restart.
		for pending == 0 {
			b, err := next()
			if err != nil {
				return mismatch("jpeg: entropy data runs to the end without EOI")
			}
			if b != 0xff {
				continue
			}
			c, err := next()
			for err == nil && c == 0xff { // fill bytes before a marker
				c, err = next()
			}
			switch {
			case err != nil:
				return mismatch("jpeg: entropy data runs to the end without EOI")
			case c == 0x00 || (c >= 0xd0 && c <= 0xd7):
			case c < 0xc0:
				return mismatch("jpeg: 0xff%02x at 0x%x inside entropy data", c, pos-2)
			default:
				pending = c
			}
		}
	}
}

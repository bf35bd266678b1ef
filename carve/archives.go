package carve

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxInflate caps the decompressed bytes a validator will produce for one
// stream, against decompression bombs (bytes).
const maxInflate = 4 << 30

// seqReader reads a ReaderAt sequentially from 0 and counts what it read;
// under a bufio.Reader, pos - Buffered() is the exact number of bytes a
// decompressor consumed, which is the compressed stream's length.
type seqReader struct {
	r    io.ReaderAt
	pos  int64
	size int64
}

func (s *seqReader) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if rem := s.size - s.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.r.ReadAt(p, s.pos)
	s.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// streamAt starts a buffered sequential reader at logical offset off.
func streamAt(r io.ReaderAt, off, size int64) (*seqReader, *bufio.Reader) {
	s := &seqReader{r: r, pos: off, size: size}
	return s, bufio.NewReaderSize(s, 64<<10)
}

// truncErr maps a decompressor's early end to errTruncated (the stream may
// continue in the next free range) and anything else to ErrBadStructure.
func truncErr(op string, off int64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errTruncated
	}
	if errors.Is(err, ErrTooBig) {
		return err
	}
	return &ParseError{Format: "carve", Op: op, Offset: off, Err: errors.Join(ErrBadStructure, err)}
}

// drain copies r to a CRC-32 up to maxInflate bytes, returning count and CRC.
func drain(r io.Reader) (int64, uint32, error) {
	h := crc32.NewIEEE()
	n, err := io.Copy(h, io.LimitReader(r, maxInflate+1))
	if err == nil && n > maxInflate {
		err = ErrTooBig
	}
	return n, h.Sum32(), err
}

func magicGzip(b []byte) bool {
	return len(b) >= 10 && b[0] == 0x1F && b[1] == 0x8B && b[2] == 8 && b[3]&0xE0 == 0 && (b[9] <= 13 || b[9] == 255)
}

// validateGzip decompresses one gzip member; the reader checks the trailer
// CRC-32 and size, and the bytes consumed are the file's length.
func validateGzip(r io.ReaderAt, size int64) (result, error) {
	s, br := streamAt(r, 0, size)
	z, err := gzip.NewReader(br)
	if err != nil {
		return result{}, truncErr("gzip header", 0, err)
	}
	z.Multistream(false)
	if _, _, err := drain(z); err != nil {
		return result{}, truncErr("gzip stream", s.pos-int64(br.Buffered()), err)
	}
	return result{n: s.pos - int64(br.Buffered()), typ: "gzip", ext: "gz"}, nil
}

func magicBzip2(b []byte) bool {
	return len(b) >= 10 && string(b[:3]) == "BZh" && b[3] >= '1' && b[3] <= '9' &&
		(string(b[4:10]) == "\x31\x41\x59\x26\x53\x59" || string(b[4:10]) == "\x17\x72\x45\x38\x50\x90")
}

// validateBzip2 decompresses the stream (block and stream CRCs are checked
// by compress/bzip2). That reader, after the end-of-stream CRC, reads two
// more bytes looking for a concatenated "BZ"; they are not part of the file.
func validateBzip2(r io.ReaderAt, size int64) (result, error) {
	s, br := streamAt(r, 0, size)
	_, _, err := drain(bzip2.NewReader(br))
	used := s.pos - int64(br.Buffered())
	var se bzip2.StructuralError
	switch {
	case err == nil:
		// stream ended exactly at the view end
	case errors.As(err, &se) && strings.Contains(string(se), "continuation file"):
		used -= 2
	default:
		return result{}, truncErr("bzip2 stream", used, err)
	}
	return result{n: used, typ: "bzip2", ext: "bz2"}, nil
}

var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

func magicZstd(b []byte) bool { return len(b) >= 5 && bytes.HasPrefix(b, zstdMagic) && b[4]&0x08 == 0 }

// validateZstd measures the frame from its block headers (RFC 8878 §3.1.1),
// then decodes exactly those bytes, checking the content checksum if any.
func validateZstd(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	c.skip(4)
	fhd := c.byte1()
	if c.err != nil {
		return result{}, fail("zstd header", c)
	}
	single := fhd&0x20 != 0
	hdr := int64([]int{0, 1, 2, 4}[fhd&3])
	if !single {
		hdr++
	}
	switch fhd >> 6 {
	case 0:
		if single {
			hdr++
		}
	case 1:
		hdr += 2
	case 2:
		hdr += 4
	case 3:
		hdr += 8
	}
	c.skip(hdr)
	for blocks := 0; ; blocks++ {
		b := c.next(3)
		if b == nil {
			return result{}, fail("zstd block", c)
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, typ, bs := h&1 == 1, (h>>1)&3, int64(h>>3)
		switch typ {
		case 0, 2:
			if bs > 128<<10 {
				return result{}, bad("zstd block", c.pos-3, "size %d", bs)
			}
			c.skip(bs)
		case 1:
			c.skip(1)
		default:
			return result{}, bad("zstd block", c.pos-3, "reserved block type")
		}
		if c.err != nil {
			return result{}, fail("zstd block", c)
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 {
		c.skip(4)
	}
	if c.err != nil {
		return result{}, fail("zstd checksum", c)
	}
	n := c.pos
	d, err := zstd.NewReader(bufio.NewReaderSize(io.NewSectionReader(r, 0, n), 64<<10), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return result{}, truncErr("zstd", 0, err)
	}
	defer d.Close()
	if _, _, err := drain(d); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("stream shorter than its blocks")
		}
		return result{}, truncErr("zstd frame", 0, err)
	}
	return result{n: n, typ: "zstd", ext: "zst"}, nil
}

var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

func magicXz(b []byte) bool {
	return len(b) >= 12 && bytes.HasPrefix(b, xzMagic) && b[6] == 0 && b[7]&0xF0 == 0 &&
		crc32.ChecksumIEEE(b[6:8]) == binary.LittleEndian.Uint32(b[8:12])
}

// validateXz finds the stream footer (12 bytes ending "YZ", 4-byte aligned)
// whose CRC, flags and backward size point at a valid index, then decodes
// the stream to check every block.
func validateXz(r io.ReaderAt, size int64) (result, error) {
	var hdr [12]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return result{}, errTruncated
	}
	c := newCursor(r, size)
	c.skip(12)
	for {
		at := c.pos
		n := int64(1 << 20)
		if at+n > size {
			n = size - at
		}
		if n < 2 {
			return result{}, errTruncated
		}
		buf := c.peek(int(n))
		if buf == nil {
			return result{}, fail("xz", c)
		}
		for i := 0; ; {
			j := bytes.Index(buf[i:], []byte("YZ"))
			if j < 0 {
				break
			}
			p := at + int64(i+j) // offset of "Y"
			i += j + 1
			if (p+2)%4 != 0 || p < 22 {
				continue
			}
			if end, ok := xzFooter(r, p-10, hdr[6:8]); ok {
				d, err := xz.NewReader(bufio.NewReaderSize(io.NewSectionReader(r, 0, end), 64<<10))
				if err != nil {
					return result{}, truncErr("xz", 0, err)
				}
				if _, _, err := drain(d); err != nil {
					return result{}, truncErr("xz stream", 0, err)
				}
				return result{n: end, typ: "xz", ext: "xz"}, nil
			}
		}
		c.pos += n - 1
	}
}

// xzFooter checks a candidate stream footer at f and the index it names;
// it returns the stream end.
func xzFooter(r io.ReaderAt, f int64, flags []byte) (int64, bool) {
	var ft [12]byte
	if _, err := r.ReadAt(ft[:], f); err != nil {
		return 0, false
	}
	if crc32.ChecksumIEEE(ft[4:10]) != binary.LittleEndian.Uint32(ft[:4]) || ft[8] != flags[0] || ft[9] != flags[1] {
		return 0, false
	}
	bsize := (int64(binary.LittleEndian.Uint32(ft[4:8])) + 1) * 4
	if bsize > f-12 || bsize > 1<<24 {
		return 0, false
	}
	idx := make([]byte, bsize)
	if _, err := r.ReadAt(idx, f-bsize); err != nil || idx[0] != 0 {
		return 0, false
	}
	if crc32.ChecksumIEEE(idx[:bsize-4]) != binary.LittleEndian.Uint32(idx[bsize-4:]) {
		return 0, false
	}
	return f + 12, true
}

// ZIP signatures and fixed record sizes (APPNOTE 6.3.10 §4.3).
const (
	zipLocalSig   = 0x04034b50
	zipCentralSig = 0x02014b50
	zipEOCDSig    = 0x06054b50
	zip64EOCDSig  = 0x06064b50
	zip64LocSig   = 0x07064b50
	zipDescSig    = 0x08074b50
	zipLocalLen   = 30
	zipCentralLen = 46
	zipEOCDLen    = 22
	zipMaxEntries = 1 << 20
)

func magicZip(b []byte) bool {
	return len(b) >= 30 && binary.LittleEndian.Uint32(b) == zipLocalSig && b[5] < 0x40 && binary.LittleEndian.Uint16(b[26:]) > 0
}

// validateZip walks local headers and member data (stored members CRC'd,
// deflated ones inflated and CRC'd; the inflater stops at the deflate end,
// which also sizes members that use data descriptors), then the central
// directory to the end record. The type comes from the member names:
// OOXML, ODF, JAR, APK.
func validateZip(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	var names []string
	var mimetype string
	locals, centrals := 0, 0
	for {
		at := c.pos
		sb := c.peek(4)
		if sb == nil {
			return result{}, fail("zip record", c)
		}
		switch binary.LittleEndian.Uint32(sb) {
		case zipLocalSig:
			if centrals > 0 || locals >= zipMaxEntries {
				return result{}, bad("zip local header", at, "out of place")
			}
			h := c.next(zipLocalLen)
			if h == nil {
				return result{}, fail("zip local header", c)
			}
			flags := binary.LittleEndian.Uint16(h[6:])
			method := binary.LittleEndian.Uint16(h[8:])
			crc := binary.LittleEndian.Uint32(h[14:])
			csize := int64(binary.LittleEndian.Uint32(h[18:]))
			usize := int64(binary.LittleEndian.Uint32(h[22:]))
			nlen := int(binary.LittleEndian.Uint16(h[26:]))
			xlen := int(binary.LittleEndian.Uint16(h[28:]))
			nb := c.next(nlen)
			if nb == nil {
				return result{}, fail("zip name", c)
			}
			name := string(nb)
			ex := c.next(xlen)
			if ex == nil {
				return result{}, fail("zip extra", c)
			}
			if csize == 0xFFFFFFFF || usize == 0xFFFFFFFF {
				usize, csize = zip64Sizes(ex, usize, csize)
			}
			if len(names) < 64 {
				names = append(names, name)
			}
			locals++
			dataAt := c.pos
			desc := flags&8 != 0
			switch {
			case flags&1 != 0 || (method != 0 && method != 8):
				// Encrypted or another method: cannot check, trust the sizes.
				if desc && csize == 0 {
					return result{}, bad("zip member", at, "unsized member with method %d", method)
				}
				if !c.skip(csize) {
					return result{}, fail("zip member", c)
				}
			case method == 0 && desc && csize == 0:
				// Streamed stored member: its end is the data descriptor
				// whose CRC and size match the bytes before it.
				n, sum, err := storedEnd(c, dataAt)
				if err != nil {
					return result{}, err
				}
				crc, csize, usize = sum, n, n
			case method == 0:
				h := crc32.NewIEEE()
				for rem := csize; rem > 0; {
					n := min(rem, bufSize)
					d := c.next(int(n))
					if d == nil {
						return result{}, fail("zip stored data", c)
					}
					h.Write(d)
					if name == "mimetype" && len(d) < 128 {
						mimetype = string(d)
					}
					rem -= n
				}
				if !desc && h.Sum32() != crc {
					return result{}, bad("zip stored data", dataAt, "member %q CRC mismatch", name)
				}
				crc = h.Sum32()
			case method == 8:
				s, br := streamAt(r, dataAt, size)
				n, sum, err := drain(flate.NewReader(br))
				if err != nil {
					return result{}, truncErr("zip deflate", dataAt, err)
				}
				used := s.pos - int64(br.Buffered()) - dataAt
				if !desc && (sum != crc || n != usize || used != csize) {
					return result{}, bad("zip deflate", dataAt, "member %q CRC or size mismatch", name)
				}
				crc, csize, usize = sum, used, n
				c.pos = dataAt + used
			}
			if desc {
				d := c.peek(4)
				if d == nil {
					return result{}, fail("zip data descriptor", c)
				}
				if binary.LittleEndian.Uint32(d) == zipDescSig {
					c.skip(4)
				}
				d = c.next(8)
				if d == nil {
					return result{}, fail("zip data descriptor", c)
				}
				if binary.LittleEndian.Uint32(d) != crc {
					return result{}, bad("zip data descriptor", c.pos-8, "member %q CRC mismatch", name)
				}
				if int64(binary.LittleEndian.Uint32(d[4:])) != csize&0xFFFFFFFF {
					return result{}, bad("zip data descriptor", c.pos-8, "member %q size mismatch", name)
				}
				// 32-bit usize, or 64-bit csize+usize (zip64).
				if d := c.peek(4); d != nil && int64(binary.LittleEndian.Uint32(d)) == usize&0xFFFFFFFF {
					c.skip(4)
				} else {
					c.err = nil
					c.skip(12)
				}
			}
		case zipCentralSig:
			if locals == 0 {
				return result{}, bad("zip central directory", at, "no members before it")
			}
			h := c.next(zipCentralLen)
			if h == nil {
				return result{}, fail("zip central header", c)
			}
			if !c.skip(int64(binary.LittleEndian.Uint16(h[28:])) + int64(binary.LittleEndian.Uint16(h[30:])) + int64(binary.LittleEndian.Uint16(h[32:]))) {
				return result{}, fail("zip central header", c)
			}
			centrals++
		case zip64EOCDSig:
			h := c.next(12)
			if h == nil {
				return result{}, fail("zip64 end record", c)
			}
			n := int64(binary.LittleEndian.Uint64(h[4:]))
			if n < 44 || n > 1<<20 || !c.skip(n) {
				return result{}, bad("zip64 end record", at, "size %d", n)
			}
		case zip64LocSig:
			if !c.skip(20) {
				return result{}, fail("zip64 locator", c)
			}
		case zipEOCDSig:
			h := c.next(zipEOCDLen)
			if h == nil {
				return result{}, fail("zip end record", c)
			}
			total := int(binary.LittleEndian.Uint16(h[10:]))
			if centrals == 0 || (total != 0xFFFF && total != centrals) || centrals != locals {
				return result{}, bad("zip end record", at, "%d entries, %d central, %d local", total, centrals, locals)
			}
			if !c.skip(int64(binary.LittleEndian.Uint16(h[20:]))) {
				return result{}, fail("zip comment", c)
			}
			typ, ext := zipKind(names, mimetype)
			return result{n: c.pos, typ: typ, ext: ext}, nil
		default:
			// An APK signing block sits between the last member and the
			// central directory: u64 size, pairs, u64 size, magic.
			if locals > 0 && centrals == 0 {
				h := c.peek(8)
				if h != nil {
					n := int64(binary.LittleEndian.Uint64(h))
					var m [16]byte
					if n > 24 && n < 1<<26 {
						if _, err := r.ReadAt(m[:], at+8+n-16); err == nil && string(m[:]) == "APK Sig Block 42" {
							c.skip(8 + n)
							continue
						}
					}
				}
				c.err = nil
			}
			return result{}, bad("zip record", at, "unknown signature %#x", sb)
		}
	}
}

// zip64Sizes reads the zip64 extended-information extra field (id 1).
func zip64Sizes(ex []byte, usize, csize int64) (int64, int64) {
	for len(ex) >= 4 {
		id, l := binary.LittleEndian.Uint16(ex), int(binary.LittleEndian.Uint16(ex[2:]))
		if 4+l > len(ex) {
			break
		}
		d := ex[4 : 4+l]
		if id == 1 {
			if usize == 0xFFFFFFFF && len(d) >= 8 {
				usize, d = int64(binary.LittleEndian.Uint64(d)), d[8:]
			}
			if csize == 0xFFFFFFFF && len(d) >= 8 {
				csize = int64(binary.LittleEndian.Uint64(d))
			}
		}
		ex = ex[4+l:]
	}
	return usize, csize
}

// zipKind names a ZIP by what its members say it is.
func zipKind(names []string, mimetype string) (string, string) {
	has := func(prefix string) bool {
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(mimetype, "application/vnd.oasis.opendocument.text"):
		return "odf", "odt"
	case strings.HasPrefix(mimetype, "application/vnd.oasis.opendocument.spreadsheet"):
		return "odf", "ods"
	case strings.HasPrefix(mimetype, "application/vnd.oasis.opendocument.presentation"):
		return "odf", "odp"
	case strings.HasPrefix(mimetype, "application/epub"):
		return "zip", "epub"
	case has("word/"):
		return "ooxml", "docx"
	case has("xl/"):
		return "ooxml", "xlsx"
	case has("ppt/"):
		return "ooxml", "pptx"
	case has("AndroidManifest.xml"), has("classes.dex"):
		return "apk", "apk"
	case has("META-INF/MANIFEST.MF"):
		return "jar", "jar"
	}
	return "zip", "zip"
}

// storedEnd scans from dataAt for a data descriptor signature preceded by
// exactly the bytes its CRC-32 and size describe; it leaves c at the
// descriptor and returns the member's size and CRC.
func storedEnd(c *cursor, dataAt int64) (int64, uint32, error) {
	var crc uint32
	sig := []byte{'P', 'K', 7, 8}
	for {
		b := c.peek(int(min(c.size-c.pos, bufSize)))
		if b == nil || len(b) < 16 {
			return 0, 0, fail("zip stored data", c)
		}
		lim := len(b) - 15 // a whole descriptor must be in b
		i := 0
		for i < lim {
			j := bytes.Index(b[i:lim+3], sig)
			if j < 0 || i+j >= lim {
				break
			}
			crc = crc32.Update(crc, crc32.IEEETable, b[i:i+j])
			i += j
			p := c.pos + int64(i)
			if binary.LittleEndian.Uint32(b[i+4:]) == crc && int64(binary.LittleEndian.Uint32(b[i+8:])) == p-dataAt {
				c.pos = p
				return p - dataAt, crc, nil
			}
			crc = crc32.Update(crc, crc32.IEEETable, b[i:i+1])
			i++
		}
		crc = crc32.Update(crc, crc32.IEEETable, b[i:lim])
		c.pos += int64(lim)
	}
}

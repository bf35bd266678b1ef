// Package ewf reads Expert Witness Compression Format (EWF v1, EnCase
// ".E01") images: the format written by EnCase, FTK Imager and libewf's
// ewfacquire. It was written from the libyal format description, not from
// any existing reader, and checks every checksum the format carries:
// section descriptors, volume, table, hash and digest sections (Adler-32),
// uncompressed chunks (trailing Adler-32) and compressed chunks (the zlib
// stream's own Adler-32). A chunk that fails is reported as a *ChunkError
// naming its sectors, never read as zeros.
//
// Layout of one segment file (all integers little-endian):
//
//	0   file header (13 bytes): signature "EVF\x09\x0d\x0a\xff\x00",
//	    0x01, segment number (uint16, from 1), 0x0000
//	13  sections, back to back, each a 76-byte descriptor followed by
//	    its data: header2, header, volume (or disk; "data" in later
//	    segments), sectors (chunk data), table, table2 (a copy), ...,
//	    error2, digest, hash, and finally "next" (more segments follow)
//	    or "done" (last segment).
package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/evidx/evidx/internal/parse"
	"github.com/klauspost/compress/zlib"
)

// Signatures and field sizes of EWF v1, from the libyal description.
const (
	fileHeaderSize     = 13 // signature(8) + fields start(1) + segment number(2) + fields end(2)
	sectionDescSize    = 76 // type(16) next(8) size(8) padding(40) adler32(4)
	volumeDataSize     = 1052
	volumeChecksumAt   = 1048 // Adler-32 of the first 1048 bytes of the volume data
	smartVolumeSize    = 94   // EWF-S01 / original EWF volume data
	smartChecksumAt    = 90
	tableHeaderSize    = 24 // entries(4) padding(4) base offset(8) padding(4) adler32(4)
	tableEntrySize     = 4
	hashDataSize       = 36 // md5(16) unknown(16) adler32(4)
	digestDataSize     = 80 // md5(16) sha1(20) padding(40) adler32(4)
	error2HeaderSize   = 520
	maxHeaderText      = 4 << 20  // bytes of inflated header text kept; real ones are < 4 KiB
	maxChunkSize       = 16 << 20 // 32768 sectors of 512 bytes: the largest chunk EnCase writes
	compressedFlag     = 1 << 31  // table entry bit 31: chunk is zlib-compressed
	entryOffsetMask    = compressedFlag - 1
	maxSectionsPerFile = 1 << 20 // stops a crafted section chain from looping forever
)

var signature = []byte("EVF\x09\x0d\x0a\xff\x00")

// Errors wrapped by *ParseError and *ChunkError; test them with errors.Is.
var (
	ErrSignature       = errors.New("ewf: not an EWF segment (bad signature)")
	ErrTruncated       = errors.New("ewf: truncated")
	ErrSectionChecksum = errors.New("ewf: bad section checksum")
	ErrTableChecksum   = errors.New("ewf: bad table checksum")
	ErrChunkChecksum   = errors.New("ewf: bad chunk checksum")
	ErrInflate         = errors.New("ewf: chunk does not inflate")
	ErrCorrupt         = errors.New("ewf: corrupt structure")
	ErrForeignSegment  = errors.New("ewf: segment belongs to another image")
	ErrMissingSegment  = errors.New("ewf: missing segment")
)

// ParseError locates a structural problem: the segment file (Path, filled in
// by the caller that knows it), what was being read and the byte offset in
// that file.
type ParseError = parse.Error

// perr builds a *ParseError; detail, when given, is added to the sentinel.
func perr(op string, off int64, sentinel error, detail string, a ...any) error {
	err := sentinel
	if detail != "" {
		err = fmt.Errorf("%w: "+detail, append([]any{sentinel}, a...)...)
	}
	return &ParseError{Format: "ewf", Op: op, Offset: off, Err: err}
}

// Volume is the media geometry from a volume, disk or data section.
type Volume struct {
	MediaType       uint8
	ChunkCount      uint32
	SectorsPerChunk uint32
	BytesPerSector  uint32
	SectorCount     uint64
	MediaFlags      uint8
	Compression     uint8
	SetID           [16]byte // segment file set identifier GUID (zero when the writer left it empty)
	raw             []byte   // the whole section data, compared across segments
}

// ChunkSize is the media bytes per chunk.
func (v *Volume) ChunkSize() int { return int(v.SectorsPerChunk) * int(v.BytesPerSector) }

// table is one table section: entry i describes chunk i of the table.
// The entries themselves (4 bytes per chunk: 128 MiB for a 1 TiB image) are
// not kept; the Reader re-reads and re-checks them on demand, a few tables
// at a time.
type table struct {
	Base      int64 // added to every entry's 31-bit offset
	N         int   // number of entries
	EntriesAt int64 // file offset of the entries array
	HasSum    bool  // an Adler-32 of the entries follows them
	End       int64 // where the last entry's chunk data ends (end of its sectors section)
	At        int64 // offset of the table section descriptor, for messages
}

// SectorRange is a run of sectors, as in error2 sections (acquisition read
// errors the imager filled with zeros).
type SectorRange struct {
	Start, Count uint64
}

// Segment is one parsed segment file: its number, sections and chunk
// tables. Chunk data stays in the file and is read on demand.
type Segment struct {
	r      io.ReaderAt
	size   int64
	Number uint16
	Last   bool // ends with a "done" section
	Volume *Volume
	tables []table
	chunks int // sum of table entries

	HeaderText  string // header2 (UTF-16 decoded) or header text, first seen
	headerIsNew bool   // HeaderText came from header2
	MD5, SHA1   []byte // from hash / digest sections
	AcqErrors   []SectorRange
}

// Chunks is the number of chunks whose table entries are in this segment.
func (s *Segment) Chunks() int { return s.chunks }

// Size is the segment file size given to NewSegment.
func (s *Segment) Size() int64 { return s.size }

// NewSegment parses the file header and section chain of one segment file
// of size bytes. Counts and offsets read from r are checked against size
// before anything is allocated.
func NewSegment(r io.ReaderAt, size int64) (*Segment, error) {
	if size < fileHeaderSize {
		return nil, perr("file header", 0, ErrTruncated, "%d bytes", size)
	}
	var fh [fileHeaderSize]byte
	if _, err := r.ReadAt(fh[:], 0); err != nil {
		return nil, &ParseError{Format: "ewf", Op: "file header", Offset: 0, Err: err}
	}
	if !bytes.Equal(fh[:8], signature) || fh[8] != 1 {
		return nil, perr("file header", 0, ErrSignature, "")
	}
	s := &Segment{r: r, size: size, Number: binary.LittleEndian.Uint16(fh[9:11])}
	if s.Number == 0 {
		return nil, perr("file header", 9, ErrCorrupt, "segment number 0")
	}
	if err := s.walk(); err != nil {
		return nil, err
	}
	return s, nil
}

// descriptor is a parsed section descriptor.
type descriptor struct {
	Type       string
	Next, Size int64
	At         int64
}

func (s *Segment) readDesc(off int64) (descriptor, error) {
	if off+sectionDescSize > s.size {
		return descriptor{}, perr("section descriptor", off, ErrTruncated, "needs %d bytes, file has %d", sectionDescSize, s.size)
	}
	var b [sectionDescSize]byte
	if _, err := s.r.ReadAt(b[:], off); err != nil {
		return descriptor{}, &ParseError{Format: "ewf", Op: "section descriptor", Offset: off, Err: err}
	}
	if got, want := adler32.Checksum(b[:72]), binary.LittleEndian.Uint32(b[72:]); got != want {
		return descriptor{}, perr("section descriptor", off, ErrSectionChecksum, "adler-32 %#08x, stored %#08x", got, want)
	}
	t := string(bytes.TrimRight(b[:16], "\x00"))
	next := binary.LittleEndian.Uint64(b[16:24])
	sz := binary.LittleEndian.Uint64(b[24:32])
	if next > uint64(s.size) || sz > uint64(s.size) {
		return descriptor{}, perr("section "+printable(t), off, ErrTruncated, "next %#x size %d beyond file end %#x", next, sz, s.size)
	}
	return descriptor{Type: t, Next: int64(next), Size: int64(sz), At: off}, nil
}

// printable keeps a section type from evidence safe to print.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// data reads the section's data (after the descriptor), at most max bytes.
func (s *Segment) data(d descriptor, max int64) ([]byte, error) {
	n := d.Size - sectionDescSize
	if n < 0 {
		n = 0
	}
	if n > max {
		n = max
	}
	if d.At+sectionDescSize+n > s.size {
		return nil, perr(d.Type+" section", d.At, ErrTruncated, "data runs past file end")
	}
	b := make([]byte, n)
	if _, err := s.r.ReadAt(b, d.At+sectionDescSize); err != nil {
		return nil, &ParseError{Format: "ewf", Op: d.Type + " section", Offset: d.At, Err: err}
	}
	return b, nil
}

// walk follows the section chain from the file header to next/done.
func (s *Segment) walk() error {
	off := int64(fileHeaderSize)
	var sectorsEnd int64 // end of the latest sectors section: where its last chunk stops
	var pendingBad error // a table whose checksum failed, waiting for table2
	for i := 0; ; i++ {
		if i >= maxSectionsPerFile {
			return perr("section chain", off, ErrCorrupt, "more than %d sections", maxSectionsPerFile)
		}
		d, err := s.readDesc(off)
		if err != nil {
			return err
		}
		switch d.Type {
		case "next", "done":
			if pendingBad != nil {
				return pendingBad
			}
			s.Last = d.Type == "done"
			// Later segments of EWF and SMART images carry no volume copy.
			if s.Volume == nil && s.Number == 1 {
				return perr("segment", off, ErrCorrupt, "no volume section before %s", d.Type)
			}
			return nil
		case "header2", "header":
			if err := s.parseHeader(d); err != nil {
				return err
			}
		case "volume", "disk", "data":
			if err := s.parseVolume(d); err != nil {
				return err
			}
		case "sectors":
			sectorsEnd = d.At + d.Size
		case "table", "table2":
			if d.Type == "table2" && pendingBad == nil {
				break // the table was good; table2 is its mirror
			}
			t, err := s.parseTable(d, sectorsEnd)
			if err != nil {
				if d.Type == "table" && errors.Is(err, ErrTableChecksum) {
					pendingBad = err // table2 may hold a good copy
					break
				}
				return err
			}
			if d.Type == "table" || pendingBad != nil {
				s.tables = append(s.tables, t)
				s.chunks += t.N
				pendingBad = nil
			}
		case "hash":
			b, err := s.data(d, hashDataSize)
			if err != nil {
				return err
			}
			if len(b) < hashDataSize {
				return perr("hash section", d.At, ErrTruncated, "%d bytes", len(b))
			}
			if got, want := adler32.Checksum(b[:32]), binary.LittleEndian.Uint32(b[32:]); got != want {
				return perr("hash section", d.At, ErrSectionChecksum, "adler-32 %#08x, stored %#08x", got, want)
			}
			s.MD5 = b[:16]
		case "digest":
			b, err := s.data(d, digestDataSize)
			if err != nil {
				return err
			}
			if len(b) < digestDataSize {
				return perr("digest section", d.At, ErrTruncated, "%d bytes", len(b))
			}
			if got, want := adler32.Checksum(b[:76]), binary.LittleEndian.Uint32(b[76:]); got != want {
				return perr("digest section", d.At, ErrSectionChecksum, "adler-32 %#08x, stored %#08x", got, want)
			}
			s.MD5 = b[:16]
			if !allZero(b[16:36]) {
				s.SHA1 = b[16:36]
			}
		case "error2":
			if err := s.parseError2(d); err != nil {
				return err
			}
		}
		if d.Next <= off {
			return perr("section "+printable(d.Type), off, ErrCorrupt, "next section offset %#x does not move forward", d.Next)
		}
		off = d.Next
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (s *Segment) parseVolume(d descriptor) error {
	b, err := s.data(d, volumeDataSize)
	if err != nil {
		return err
	}
	op := d.Type + " section"
	var v *Volume
	switch {
	case len(b) >= volumeDataSize: // EnCase, FTK, linen (EWF-E01)
		if got, want := adler32.Checksum(b[:volumeChecksumAt]), binary.LittleEndian.Uint32(b[volumeChecksumAt:]); got != want {
			return perr(op, d.At, ErrSectionChecksum, "adler-32 %#08x, stored %#08x", got, want)
		}
		v = &Volume{
			MediaType:       b[0],
			ChunkCount:      binary.LittleEndian.Uint32(b[4:8]),
			SectorsPerChunk: binary.LittleEndian.Uint32(b[8:12]),
			BytesPerSector:  binary.LittleEndian.Uint32(b[12:16]),
			SectorCount:     binary.LittleEndian.Uint64(b[16:24]),
			MediaFlags:      b[36],
			Compression:     b[52],
			raw:             b,
		}
		copy(v.SetID[:], b[64:80])
	case len(b) >= smartVolumeSize: // original EWF and SMART (EWF-S01): 32-bit sector count
		b = b[:smartVolumeSize]
		if got, want := adler32.Checksum(b[:smartChecksumAt]), binary.LittleEndian.Uint32(b[smartChecksumAt:]); got != want {
			return perr(op, d.At, ErrSectionChecksum, "adler-32 %#08x, stored %#08x", got, want)
		}
		v = &Volume{
			ChunkCount:      binary.LittleEndian.Uint32(b[4:8]),
			SectorsPerChunk: binary.LittleEndian.Uint32(b[8:12]),
			BytesPerSector:  binary.LittleEndian.Uint32(b[12:16]),
			SectorCount:     uint64(binary.LittleEndian.Uint32(b[16:20])),
			raw:             b,
		}
	default:
		return perr(op, d.At, ErrTruncated, "%d bytes of %d", len(b), volumeDataSize)
	}
	bps := v.BytesPerSector
	if bps < 256 || bps > 65536 || bps&(bps-1) != 0 {
		return perr(op, d.At+sectionDescSize+12, ErrCorrupt, "bytes per sector %d", bps)
	}
	if v.SectorsPerChunk == 0 || int64(v.SectorsPerChunk)*int64(bps) > maxChunkSize {
		return perr(op, d.At+sectionDescSize+8, ErrCorrupt, "sectors per chunk %d", v.SectorsPerChunk)
	}
	if v.SectorCount > uint64(v.ChunkCount)*uint64(v.SectorsPerChunk) {
		return perr(op, d.At+sectionDescSize+16, ErrCorrupt, "%d sectors do not fit in %d chunks", v.SectorCount, v.ChunkCount)
	}
	if s.Volume == nil {
		s.Volume = v
	} else if !bytes.Equal(s.Volume.raw, v.raw) {
		return perr(op, d.At, ErrCorrupt, "differs from the earlier volume section")
	}
	return nil
}

// parseTable reads a table or table2 section. sectorsEnd is where the
// preceding sectors section ends; the last entry's chunk runs up to it (or,
// when the chunks follow the entries as in EnCase 1, up to the section end).
func (s *Segment) parseTable(d descriptor, sectorsEnd int64) (table, error) {
	op := d.Type + " section"
	body := d.At + sectionDescSize
	if d.Size < sectionDescSize+tableHeaderSize || body+tableHeaderSize > s.size {
		return table{}, perr(op, d.At, ErrTruncated, "no room for the table header")
	}
	var h [tableHeaderSize]byte
	if _, err := s.r.ReadAt(h[:], body); err != nil {
		return table{}, &ParseError{Format: "ewf", Op: op, Offset: body, Err: err}
	}
	if got, want := adler32.Checksum(h[:20]), binary.LittleEndian.Uint32(h[20:]); got != want {
		return table{}, perr(op, body, ErrTableChecksum, "header adler-32 %#08x, stored %#08x", got, want)
	}
	n := int64(binary.LittleEndian.Uint32(h[0:4]))
	base := binary.LittleEndian.Uint64(h[8:16])
	if base > uint64(s.size) {
		return table{}, perr(op, body+8, ErrCorrupt, "base offset %#x past file end %#x", base, s.size)
	}
	// n is distrusted: the entries must lie inside the section and the file.
	room := (d.Size - sectionDescSize - tableHeaderSize) / tableEntrySize
	if n > room || body+tableHeaderSize+n*tableEntrySize > s.size {
		return table{}, perr(op, body, ErrCorrupt, "%d entries do not fit in a %d-byte section", n, d.Size)
	}
	raw := make([]byte, n*tableEntrySize)
	if _, err := s.r.ReadAt(raw, body+tableHeaderSize); err != nil {
		return table{}, &ParseError{Format: "ewf", Op: op, Offset: body + tableHeaderSize, Err: err}
	}
	// The entries' Adler-32 follows them when the section has room for it
	// (EnCase 2 and later); older writers (EWF, SMART) put the first
	// chunk right after the entries instead.
	t := table{Base: int64(base), N: int(n), EntriesAt: body + tableHeaderSize, At: d.At}
	sumAt := t.EntriesAt + n*tableEntrySize
	chunkAtSum := n > 0 && t.Base+int64(binary.LittleEndian.Uint32(raw)&entryOffsetMask) == sumAt
	t.HasSum = !chunkAtSum && (n+1)*tableEntrySize <= d.Size-sectionDescSize-tableHeaderSize && sumAt+4 <= s.size
	t.End = sectorsEnd
	if n > 0 && (sectorsEnd == 0 || t.Base+int64(binary.LittleEndian.Uint32(raw[(n-1)*4:])&entryOffsetMask) >= sectorsEnd) {
		t.End = d.At + d.Size // chunks stored inside the table section
	}
	if t.HasSum {
		raw = raw[:len(raw):len(raw)]
		var c [4]byte
		if _, err := s.r.ReadAt(c[:], sumAt); err != nil {
			return table{}, &ParseError{Format: "ewf", Op: op, Offset: sumAt, Err: err}
		}
		raw = append(raw, c[:]...)
	}
	if _, err := t.decode(raw, s.size); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Op = op
		}
		return table{}, err
	}
	return t, nil
}

// decode checks and decodes the entries array raw (followed by its
// Adler-32 when t.HasSum): every chunk must start inside the file, after
// the one before it, and before t.End — a table pointing past the end is
// rejected here.
func (t *table) decode(raw []byte, fileSize int64) ([]uint32, error) {
	n := int64(t.N)
	if int64(len(raw)) < n*tableEntrySize {
		return nil, &ParseError{Format: "ewf", Op: "table section", Offset: t.EntriesAt, Err: ErrTruncated}
	}
	if t.HasSum {
		if int64(len(raw)) < n*tableEntrySize+4 {
			return nil, &ParseError{Format: "ewf", Op: "table section", Offset: t.EntriesAt, Err: ErrTruncated}
		}
		ents := raw[:n*tableEntrySize]
		if got, want := adler32.Checksum(ents), binary.LittleEndian.Uint32(raw[n*tableEntrySize:]); got != want {
			return nil, perr("table section", t.EntriesAt+n*tableEntrySize, ErrTableChecksum, "entries adler-32 %#08x, stored %#08x", got, want)
		}
	}
	out := make([]uint32, n)
	prev := int64(-1)
	for i := range out {
		e := binary.LittleEndian.Uint32(raw[i*4:])
		off := t.Base + int64(e&entryOffsetMask)
		if off <= prev || off >= t.End || off > fileSize {
			return nil, perr("table section", t.EntriesAt+int64(i)*tableEntrySize, ErrCorrupt,
				"entry %d points to %#x (previous %#x, data ends %#x, file %#x)", i, off, prev, t.End, fileSize)
		}
		prev = off
		out[i] = e
	}
	return out, nil
}

func (s *Segment) parseError2(d descriptor) error {
	b, err := s.data(d, error2HeaderSize)
	if err != nil {
		return err
	}
	if len(b) < error2HeaderSize {
		return perr("error2 section", d.At, ErrTruncated, "%d bytes", len(b))
	}
	if got, want := adler32.Checksum(b[:516]), binary.LittleEndian.Uint32(b[516:]); got != want {
		return perr("error2 section", d.At, ErrSectionChecksum, "header adler-32 %#08x, stored %#08x", got, want)
	}
	n := int64(binary.LittleEndian.Uint32(b[:4]))
	if n*8+4 > d.Size-sectionDescSize-error2HeaderSize {
		return perr("error2 section", d.At, ErrCorrupt, "%d entries do not fit", n)
	}
	ents := make([]byte, n*8+4)
	at := d.At + sectionDescSize + error2HeaderSize
	if _, err := s.r.ReadAt(ents, at); err != nil {
		return &ParseError{Format: "ewf", Op: "error2 section", Offset: at, Err: err}
	}
	if got, want := adler32.Checksum(ents[:n*8]), binary.LittleEndian.Uint32(ents[n*8:]); got != want {
		return perr("error2 section", at, ErrSectionChecksum, "entries adler-32 %#08x, stored %#08x", got, want)
	}
	for i := int64(0); i < n; i++ {
		s.AcqErrors = append(s.AcqErrors, SectorRange{
			Start: uint64(binary.LittleEndian.Uint32(ents[i*8:])),
			Count: uint64(binary.LittleEndian.Uint32(ents[i*8+4:])),
		})
	}
	return nil
}

// parseHeader inflates a header (ASCII, CRLF lines) or header2 (UTF-16 with
// BOM) section. header2 is preferred: it is Unicode and has more fields.
func (s *Segment) parseHeader(d descriptor) error {
	if s.headerIsNew || (s.HeaderText != "" && d.Type == "header") {
		return nil
	}
	b, err := s.data(d, maxChunkSize)
	if err != nil {
		return err
	}
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return perr(d.Type+" section", d.At, ErrInflate, "%v", err)
	}
	text, err := io.ReadAll(io.LimitReader(zr, maxHeaderText))
	if err != nil {
		return perr(d.Type+" section", d.At, ErrInflate, "%v", err)
	}
	if d.Type == "header2" {
		s.HeaderText = decodeUTF16(text)
		s.headerIsNew = true
	} else {
		s.HeaderText = string(bytes.ToValidUTF8(text, []byte("\uFFFD")))
	}
	return nil
}

// decodeUTF16 decodes header2 text by its byte order mark (little-endian
// when there is none).
func decodeUTF16(b []byte) string {
	be := false
	if len(b) >= 2 {
		switch {
		case b[0] == 0xff && b[1] == 0xfe:
			b = b[2:]
		case b[0] == 0xfe && b[1] == 0xff:
			b, be = b[2:], true
		}
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if be {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		} else {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
	}
	return string(utf16.Decode(u))
}

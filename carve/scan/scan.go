// Package scan finds identifiers (e-mail addresses, phone numbers, resident
// ID numbers, bank card numbers) in the raw bytes of an image, the way
// bulk_extractor does: in 8-bit text, in UTF-16LE text (at even and odd
// offsets), and inside what is found on the way, recursively: gzip, zip
// (OOXML and ODF members), bzip2, xz and zstd streams; PDF streams
// (FlateDecode, ASCIIHex, ASCII85, object streams) and the text their
// strings show (pdf.go); OLE2 compound files (.doc, .xls, .ppt): text across
// the joins of fragmented streams and Excel strings split by CONTINUE
// records (ole.go); RTF text (rtf.go); base64 blocks (base64.go) and
// quoted-printable MIME parts (qp.go). Every decoder reads under the decode
// budget (Options.MaxDecoded, all streams of a block together) and the
// depth bound, and its output is capped. Not decoded: PDF LZW, RunLength
// and image filters, encrypted PDFs, fonts' glyph codes without a
// ToUnicode map (Type0/Identity-H text), Word's piece table (text out of
// stream order, fast-saved files), compressed RTF (\pict data, .msg's
// LZFu), uuencode, yEnc.
// Values are normalised by ingest/identity. Blocks are scanned on all cores
// with margins on both sides, and a feature belongs to the block holding
// its first byte, so features straddling a boundary are reported once.
package scan

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/evidx/evidx/internal/ordered"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Feature is one identifier found. Path is the bulk_extractor forensic
// path: the decimal image offset, with the decoder's name ("-GZIP-",
// "-ZIP-", "-BZIP2-", "-XZ-", "-ZSTD-", "-PDF-", "-BASE64-") and the offset
// inside the decoded stream for each decoder crossed ("1048576-GZIP-310");
// derived text has its own names with the offset in that text ("-PDFTEXT-"
// for a PDF stream's shown strings, "-RTF-", "-QP-"), and "-OLE-" is
// followed by the offset in the compound file of the feature's first byte. Value is the normalised identifier; Context the
// bytes around it, escaped (\xHH for non-printable bytes).
type Feature struct {
	Kind  identity.Kind
	Path  string
	Value string // normalised, as the datasets' identities
	// Found is the text as it stood in the data, escaped as Context is
	// (a UTF-16 or full-width find as its ASCII text): bulk_extractor's
	// feature column.
	Found   string
	Context string
	// At is the image offset of the feature, or of the outermost stream
	// holding it.
	At int64
}

// Options control a scan. The zero value uses all CPUs, 2 MiB blocks, and
// decodes streams three levels deep, up to 256 MiB each.
type Options struct {
	Workers    int
	BlockSize  int   // bytes per unit of parallel work
	MaxDepth   int   // nested decoders crossed at most; 0 means 3, negative none
	MaxDecoded int64 // bytes decoded at most for the streams starting in one block, nested ones included
	// Progress, if set, is called from Scan's goroutine with the bytes of
	// each finished block.
	Progress func(n int64)
}

// margin is the bytes of context read on each side of a block; it exceeds
// what any finder looks at around a feature (identity.LookAround, ×2 for UTF-16).
const margin = 2 * identity.LookAround

// contextLen is the bytes of context on each side of a feature.
const contextLen = 16

// Scan reads r[0:size) and calls emit for each feature, from the calling
// goroutine, block by block and in At order within a block (a SQLite page
// is reported by the block holding its start, so its features may run a
// little ahead). It stops at the first error from emit
// or reading r, or when ctx is cancelled.
func Scan(ctx context.Context, r io.ReaderAt, size int64, opts Options, emit func(Feature) error) error {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BlockSize <= 0 {
		opts.BlockSize = 2 << 20
	}
	if opts.BlockSize < 4*margin {
		opts.BlockSize = 4 * margin
	}
	switch {
	case opts.MaxDepth == 0:
		opts.MaxDepth = 3
	case opts.MaxDepth < 0:
		opts.MaxDepth = 0
	}
	if opts.MaxDecoded <= 0 {
		opts.MaxDecoded = 256 << 20
	}
	today := identity.TodayOf(time.Now())
	nblocks := int((size + int64(opts.BlockSize) - 1) / int64(opts.BlockSize))
	type done struct {
		feats []Feature
		err   error
	}
	// Blocks are scanned in parallel and emitted in block order.
	type state struct {
		s   *scanner
		buf []byte
	}
	return ordered.Map(ctx, nblocks, opts.Workers,
		func() state {
			return state{&scanner{opts: &opts, src: r, srcSize: size, today: today}, make([]byte, min(int64(opts.BlockSize), size)+2*margin)}
		},
		func(ctx context.Context, st state, k int) done {
			s := st.s
			start := int64(k) * int64(opts.BlockSize)
			bs := max(0, start-margin)
			be := min(size, start+int64(opts.BlockSize)+margin)
			b := st.buf[:be-bs]
			if m, rerr := r.ReadAt(b, bs); m < len(b) {
				return done{err: fmt.Errorf("scan: read image at %#x: %w", bs+int64(m), rerr)}
			}
			s.feats = nil
			s.budget = opts.MaxDecoded
			lo := int(start - bs)
			hi := int(min(size, start+int64(opts.BlockSize)) - bs)
			s.scanBuf(ctx, b, bs, lo, hi, "", 0, -1)
			slices.SortStableFunc(s.feats, func(a, b Feature) int { return int(a.At - b.At) })
			return done{feats: s.feats}
		},
		func(k int, d done) error {
			if d.err != nil {
				return d.err
			}
			for _, f := range d.feats {
				if err := emit(f); err != nil {
					return err
				}
			}
			if opts.Progress != nil {
				opts.Progress(min(int64(opts.BlockSize), size-int64(k)*int64(opts.BlockSize)))
			}
			return nil
		})
}

// scanner holds one worker's state; never shared between goroutines.
type scanner struct {
	opts    *Options
	src     io.ReaderAt // the image, for streams starting in it
	srcSize int64
	today   identity.Today // for ID birth dates
	feats   []Feature
	hits    []identity.Hit
	u16     []byte
	page    []byte // scratch for SQLite pages read from src
	// budget is what may still be decoded for the current image block, all
	// streams and nesting levels together: a stream whose decoded bytes hold
	// further streams (a recursive bomb) would otherwise multiply the work
	// at every level.
	budget int64
	// plain is set while scanning a view of bytes the raw scan reads
	// otherwise (the joins of a fragmented stream): text finders only.
	// remap, if set, turns a stream offset into the path's offset.
	plain   bool
	remap   func(int64) int64
	windows [][]byte // decoded's window for each depth
}

// budgetReader reads from r while the scanner's decode budget lasts.
type budgetReader struct {
	r io.Reader
	s *scanner
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.s.budget <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.s.budget {
		p = p[:b.s.budget]
	}
	n, err := b.r.Read(p)
	b.s.budget -= int64(n)
	return n, err
}

// scanBuf scans buf, whose byte 0 is at offset base of the stream named by
// path, reporting features that start in [lo, hi). top is the image offset
// of the outermost stream (-1 when buf is image bytes itself).
func (s *scanner) scanBuf(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	field := sqliteField(int(base % 512))
	s.hits = identity.FindText(buf, lo, hi, s.today, field, s.hits[:0])
	for _, h := range s.hits {
		if h.Invalid {
			continue
		}
		s.add(buf, base, h.Start, h.End, h, path, top)
	}
	s.utf16(buf, base, lo, hi, path, top)
	s.fullWidth(buf, base, lo, hi, path, top)
	if s.plain {
		return
	}
	s.sqlitePages(buf, base, lo, hi, path, top)
	if depth < s.opts.MaxDepth && ctx.Err() == nil {
		s.streams(ctx, buf, base, lo, hi, path, depth, top)
	}
}

// add records hit h found in buf (positions start..end in buf).
func (s *scanner) add(buf []byte, base int64, start, end int, h identity.Hit, path string, top int64) {
	at := base + int64(start)
	if top < 0 {
		top = at
	}
	s.feats = append(s.feats, Feature{
		Kind:    h.Kind,
		Path:    s.pathAt(path, at),
		Value:   h.Value,
		Found:   escape(buf[start:end]),
		Context: escape(buf[max(0, start-contextLen):min(len(buf), end+contextLen)]),
		At:      top,
	})
}

// pathAt is the forensic path of the byte at offset at of the stream path.
func (s *scanner) pathAt(path string, at int64) string {
	if s.remap != nil {
		at = s.remap(at)
	}
	return path + strconv.FormatInt(at, 10)
}

// utf16 decodes runs of UTF-16LE ASCII-range text (at even and odd
// stream offsets) and scans them; feature offsets are those of the UTF-16 bytes.
func (s *scanner) utf16(buf []byte, base int64, lo, hi int, path string, top int64) {
	const minRun = 6 // code units
	n := len(buf) - 1
	for q0 := range 2 {
		if legacyOnly && q0 != int(base&1) {
			continue
		}
		s.utf16At(buf, q0, n, minRun, base, lo, hi, path, top)
	}
}

// utf16At is utf16 for the runs at buffer positions of q's parity: both
// are tried, since a file stored at an odd offset (a zip member, a decoded
// attachment, a file carved at a byte offset) has its text there.
func (s *scanner) utf16At(buf []byte, q, n, minRun int, base int64, lo, hi int, path string, top int64) {
	for q < n {
		// Find a run start quickly: a printable byte followed by 0x00.
		if buf[q+1] != 0 || !u16ok(buf[q]) {
			q += 2
			continue
		}
		a := q
		for q < n && buf[q+1] == 0 && u16ok(buf[q]) {
			q += 2
		}
		if (q-a)/2 < minRun || q <= lo || a >= hi+2*identity.MaxLocal+2 {
			continue
		}
		u := s.u16[:0]
		for x := a; x < q; x += 2 {
			u = append(u, buf[x])
		}
		s.u16 = u
		// The decoded run's index k is buffer position a+2k.
		ulo, uhi := max(0, (lo-a+1)/2), min(len(u), (hi-a+1)/2)
		if uhi <= ulo && (hi-a) <= 0 {
			continue
		}
		hs := identity.FindText(u, ulo, max(ulo, uhi), s.today, nil, nil)
		for _, h := range hs {
			p := a + 2*h.Start
			if p < lo || p >= hi || h.Invalid {
				continue
			}
			at := base + int64(p)
			t := top
			if t < 0 {
				t = at
			}
			s.feats = append(s.feats, Feature{
				Kind: h.Kind, Path: s.pathAt(path, at), Value: h.Value, Found: escape(u[h.Start:h.End]),
				Context: escape(u[max(0, h.Start-contextLen):min(len(u), h.End+contextLen)]), At: t,
			})
		}
	}
}

func u16ok(c byte) bool { return c >= 0x20 && c < 0x7F || c == '\t' || c == '\n' || c == '\r' }

var (
	gzipMagic  = []byte{0x1F, 0x8B, 0x08}
	zipMagic   = []byte("PK\x03\x04")
	zstdMagic  = []byte{0x28, 0xB5, 0x2F, 0xFD}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
)

// streams decodes gzip, deflated zip members, bzip2, xz and zstd streams
// starting in buf[lo:hi) and scans what they hold. Streams in the image are read
// through src to their end; nested ones only as far as buf holds them.
func (s *scanner) streams(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	open := func(i int) io.Reader { return s.open(buf, base, i, top) }
	topOf := func(i int) int64 { return topOf(base, i, top) }
	each := func(magic []byte, f func(i int)) { each(buf, lo, hi, magic, f) }
	each(gzipMagic, func(i int) {
		if i+10 > len(buf) || buf[i+3]&0xE0 != 0 {
			return
		}
		z, err := gzip.NewReader(open(i))
		if err != nil {
			return
		}
		z.Multistream(false)
		s.decoded(ctx, z, fmt.Sprintf("%s%d-GZIP-", path, base+int64(i)), depth+1, topOf(i))
	})
	each(zipMagic, func(i int) {
		if i+30 > len(buf) {
			return
		}
		h := buf[i:]
		flags, method := binary.LittleEndian.Uint16(h[6:]), binary.LittleEndian.Uint16(h[8:])
		if method != 8 || flags&1 != 0 {
			return // stored members are scanned as raw bytes already
		}
		data := 30 + int(binary.LittleEndian.Uint16(h[26:])) + int(binary.LittleEndian.Uint16(h[28:]))
		if i+data > len(buf) {
			return
		}
		fr := flate.NewReader(open(i + data))
		defer fr.Close()
		s.decoded(ctx, fr, fmt.Sprintf("%s%d-ZIP-", path, base+int64(i)), depth+1, topOf(i))
	})
	each(bzip2Magic, func(i int) {
		if i+10 > len(buf) || buf[i+3] < '1' || buf[i+3] > '9' || string(buf[i+4:i+10]) != "\x31\x41\x59\x26\x53\x59" {
			return
		}
		s.decoded(ctx, bzip2.NewReader(open(i)), fmt.Sprintf("%s%d-BZIP2-", path, base+int64(i)), depth+1, topOf(i))
	})
	each(xzMagic, func(i int) {
		d, err := xz.NewReader(open(i))
		if err != nil {
			return
		}
		s.decoded(ctx, d, fmt.Sprintf("%s%d-XZ-", path, base+int64(i)), depth+1, topOf(i))
	})
	each(zstdMagic, func(i int) {
		if i+5 > len(buf) || buf[i+4]&0x08 != 0 {
			return
		}
		d, err := zstd.NewReader(open(i), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(s.opts.MaxDecoded)))
		if err != nil {
			return
		}
		defer d.Close()
		s.decoded(ctx, d, fmt.Sprintf("%s%d-ZSTD-", path, base+int64(i)), depth+1, topOf(i))
	})
	if legacyOnly {
		return
	}
	s.pdfStreams(ctx, buf, base, lo, hi, path, depth, top)
	s.oleFiles(ctx, buf, base, lo, hi, path, depth, top)
	s.rtfDocs(ctx, buf, base, lo, hi, path, top)
	s.mimeParts(ctx, buf, base, lo, hi, path, depth, top)
	s.base64Runs(ctx, buf, base, lo, hi, path, depth, top)
}

// legacyOnly, set by the benchmark alone, turns off what issue 15 added
// (PDF, OLE2, RTF, base64, QP, odd-offset UTF-16) to measure its cost.
var legacyOnly bool

// open returns a reader of the stream starting at buf[i]: the image from
// there to its end for top-level streams, else what buf holds.
func (s *scanner) open(buf []byte, base int64, i int, top int64) io.Reader {
	if top < 0 && s.src != nil {
		return bufio.NewReaderSize(io.NewSectionReader(s.src, base+int64(i), s.srcSize-(base+int64(i))), 64<<10)
	}
	return bytes.NewReader(buf[i:])
}

// topOf is the image offset of the outermost stream holding buf[i].
func topOf(base int64, i int, top int64) int64 {
	if top < 0 {
		return base + int64(i)
	}
	return top
}

// each calls f with every position of magic starting in buf[lo:hi).
func each(buf []byte, lo, hi int, magic []byte, f func(i int)) {
	for i := lo; i < hi; {
		j := bytes.Index(buf[i:min(len(buf), hi+len(magic)-1)], magic)
		if j < 0 {
			return
		}
		f(i + j)
		i += j + 1
	}
}

// decodedBlock is the unit a decoded stream is scanned in (bytes).
const decodedBlock = 1 << 20

// decoded scans a decoded stream sequentially in overlapping windows. A
// decoder error ends the stream: corrupt data yields what was readable.
func (s *scanner) decoded(ctx context.Context, rd io.Reader, path string, depth int, top int64) {
	rd = &budgetReader{r: rd, s: s}
	// One window per depth, reused: a PDF holds thousands of streams.
	// Derived text (PDF, RTF, QP) is scanned at MaxDepth, never while a
	// stream of that depth is being scanned.
	for len(s.windows) <= depth {
		s.windows = append(s.windows, nil)
	}
	if s.windows[depth] == nil {
		s.windows[depth] = make([]byte, 0, decodedBlock+2*margin)
	}
	buf := s.windows[depth][:0]
	var base int64
	lo := 0
	for ctx.Err() == nil {
		n, err := io.ReadFull(rd, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := err != nil
		hi := len(buf) - margin
		if eof {
			hi = len(buf)
		}
		if hi > lo {
			// Nested streams cannot be re-read from src: top stays set.
			s.scanBuf(ctx, buf, base, lo, hi, path, depth, top)
		}
		if eof || hi <= margin {
			if eof {
				return
			}
			continue
		}
		keep := len(buf) - (hi - margin)
		copy(buf, buf[hi-margin:])
		buf = buf[:keep]
		base += int64(hi - margin)
		lo = margin
	}
}

// escape renders context bytes bulk_extractor style: printable ASCII and
// valid UTF-8 as is, everything else (and backslash) as \xHH.
func escape(b []byte) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c < 0x7F && c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if c >= 0x80 {
			if r, n := utf8.DecodeRune(b[i:]); n > 1 && r != 0xFFFD {
				out = append(out, b[i:i+n]...)
				i += n
				continue
			}
		}
		out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		i++
	}
	return string(out)
}

// foldFW maps a UTF-8 full-width form (EF BC xx / EF BD xx, U+FF01-U+FF5E)
// at b to its ASCII character, as NFKC does; ok is false for anything else.
func foldFW(b []byte) (byte, bool) {
	if len(b) < 3 || b[0] != 0xEF {
		return 0, false
	}
	var r int
	switch b[1] {
	case 0xBC:
		r = 0xFF00 + int(b[2]) - 0x80
	case 0xBD:
		r = 0xFF40 + int(b[2]) - 0x80
	default:
		return 0, false
	}
	if r < 0xFF01 || r > 0xFF5E {
		return 0, false
	}
	return byte(r - 0xFF01 + '!'), true
}

// fullWidth finds identifiers written with full-width digits, letters and
// "＠" (common in Chinese text): windows around such characters are folded
// to ASCII and scanned; a feature is reported only if it has a full-width
// character (others the 8-bit scan reports), at its raw offset.
func (s *scanner) fullWidth(buf []byte, base int64, lo, hi int, path string, top int64) {
	end := min(len(buf), hi+identity.LookAround)
	var folded []byte
	var raw []int // raw position of each folded byte
	seen := map[int]bool{}
	for i := lo; i < end; {
		j := bytes.IndexByte(buf[i:end], 0xEF)
		if j < 0 {
			return
		}
		p := i + j
		if _, ok := foldFW(buf[p:]); !ok {
			i = p + 1
			continue
		}
		// Window: identity.LookAround on each side of a cluster of full-width text.
		wlo, whi := max(0, p-identity.LookAround), min(len(buf), p+identity.LookAround)
		for q := p; q < whi; q++ {
			if _, ok := foldFW(buf[q:]); ok {
				whi = min(len(buf), q+identity.LookAround)
			}
		}
		folded, raw = folded[:0], raw[:0]
		for q := wlo; q < whi; {
			if c, ok := foldFW(buf[q:]); ok {
				folded = append(folded, c)
				raw = append(raw, q)
				q += 3
				continue
			}
			folded = append(folded, buf[q])
			raw = append(raw, q)
			q++
		}
		raw = append(raw, whi)
		for _, h := range identity.FindText(folded, 0, len(folded), s.today, nil, nil) {
			rs, re := raw[h.Start], raw[h.End]
			if h.Invalid || rs < lo || rs >= hi || seen[rs] || !bytes.Contains(buf[rs:re], []byte{0xEF}) {
				continue
			}
			hasFW := false
			for q := rs; q < re; q++ {
				if _, ok := foldFW(buf[q:]); ok {
					hasFW = true
					break
				}
			}
			if !hasFW {
				continue
			}
			seen[rs] = true
			s.add(buf, base, rs, re, h, path, top)
		}
		i = whi
	}
}

// sqlitePages finds SQLite table-leaf pages starting at 512-byte multiples
// of the stream in buf[lo:hi) and reports the phone and card numbers stored
// in them as integers. A page belongs to the block holding its start; when
// it runs past buf, it is read from the image (top-level streams only).
func (s *scanner) sqlitePages(buf []byte, base int64, lo, hi int, path string, top int64) {
	first := lo + int((512-(base+int64(lo))%512)%512)
	for p := first; p < hi; p += 512 {
		h := p
		if buf[p] != 0x0D {
			if buf[p] != 'S' || p+116 > len(buf) || string(buf[p:p+16]) != "SQLite format 3\x00" {
				continue
			}
			h = p + 100
		}
		// Cheap header test on what buf holds before reading a page.
		if h+8 > len(buf) || buf[h] != 0x0D {
			continue
		}
		nc := int(binary.BigEndian.Uint16(buf[h+3:]))
		cs := int(binary.BigEndian.Uint16(buf[h+5:]))
		if cs == 0 {
			cs = 65536
		}
		if nc == 0 || nc > 8192 || h-p+8+2*nc > cs || h+8+2*nc > len(buf) {
			continue
		}
		maxPtr := 0
		ok := true
		for c := range nc {
			cp := int(binary.BigEndian.Uint16(buf[h+8+2*c:]))
			if cp < cs {
				ok = false
				break
			}
			maxPtr = max(maxPtr, cp)
		}
		if !ok {
			continue
		}
		need := min(maxPtr+4096+16, 65536)
		var page []byte
		switch {
		case p+need <= len(buf):
			page = buf[p : p+need]
		case top < 0 && s.src != nil:
			at := base + int64(p)
			n := int(min(int64(need), s.srcSize-at))
			if cap(s.page) < n {
				s.page = make([]byte, n)
			}
			page = s.page[:n]
			if m, _ := s.src.ReadAt(page, at); m < n {
				page = page[:m]
			}
		default:
			page = buf[p:]
		}
		leafInts(page, h-p, func(off int, v int64) {
			if hh, ok := intIdentifier(v); ok {
				const l = 8 // at most 8 bytes of integer: context shows them all
				at := base + int64(p+off)
				t := top
				if t < 0 {
					t = at
				}
				ctx := page[max(0, off-contextLen):min(len(page), off+l+contextLen)]
				s.feats = append(s.feats, Feature{Kind: hh.Kind, Path: path + strconv.FormatInt(at, 10), Value: hh.Value, Found: hh.Value, Context: escape(ctx), At: t})
			}
		})
	}
}

package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/evidx/evidx/ingest/identity"
)

// OLE2 compound files (Word .doc, Excel .xls, PowerPoint .ppt, .msg, ...).
// A compound file's streams are its own bytes in sector order: where a
// stream's sectors (or its 64-byte mini sectors) follow each other on disk,
// the raw scan (8-bit and UTF-16LE) already reads its text. What it cannot
// read is text straddling the join of two fragments that are not adjacent
// on disk; so the header, FAT, DIFAT, mini FAT and directory are parsed,
// every stream's chain is followed, and only the bytes around each such
// join are scanned (8-bit and UTF-16LE, at both parities), reporting the
// features near it that the raw scan of the same bytes on disk does not
// find there. Likewise an Excel workbook's shared strings (SST) split by
// CONTINUE records are read whole. The path is "OFF-OLE-N": OFF the image
// (or decoded stream) offset of the compound file, N the offset in the
// file of the feature's first byte. Chains are never trusted: they end at
// a bad or repeated sector, the sectors walked per file are bounded, and
// the header, FAT and directory reads are charged to the decode budget.
// Not done: Word's piece table (text out of stream order in fast-saved
// files), PowerPoint's text atoms as such (their text is found as any
// stream's), encrypted documents.

var oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

const (
	oleEnd      = 0xFFFFFFFE // ENDOFCHAIN
	oleMaxFAT   = 1 << 20    // FAT entries kept at most (a 512 MiB file of 512-byte sectors)
	oleMaxWalk  = 1 << 22    // chain steps per file
	oleMaxDir   = 1 << 16    // directory entries
	oleMaxSeams = 1 << 16    // joins scanned per file
)

// oleFile is a compound file being read.
type oleFile struct {
	r      io.ReaderAt
	size   int64 // bytes of r that exist
	ss     int64 // sector size
	fat    []uint32
	mfat   []uint32
	mini   []int64 // file offset of each sector of the mini stream
	walked int
	stamp  []uint32 // per FAT entry: the chain number that visited it
	gen    uint32
	// budget is the scanner's decode budget, charged for the FAT,
	// directory and mini FAT sectors read: an image of forged headers
	// claiming huge FATs costs what any decoding does.
	budget *int64
}

func (s *scanner) oleFiles(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	each(buf, lo, hi, oleMagic, func(i int) {
		var r io.ReaderAt
		var size int64
		if top < 0 && s.src != nil {
			size = s.srcSize - (base + int64(i))
			r = io.NewSectionReader(s.src, base+int64(i), size)
		} else {
			r, size = bytes.NewReader(buf[i:]), int64(len(buf)-i)
		}
		f, err := openOLE(r, size, &s.budget)
		if err != nil {
			return
		}
		p := fmt.Sprintf("%s%d-OLE-", path, base+int64(i))
		s.oleSeams(ctx, f, p, topOf(base, i, top))
	})
}

// openOLE reads a compound file's header, DIFAT, FAT and mini FAT.
func openOLE(r io.ReaderAt, size int64, budget *int64) (*oleFile, error) {
	var h [512]byte
	if n, _ := r.ReadAt(h[:], 0); n < len(h) {
		return nil, fmt.Errorf("ole: short header")
	}
	le := binary.LittleEndian
	if !bytes.Equal(h[:8], oleMagic) || le.Uint16(h[0x1C:]) != 0xFFFE || le.Uint16(h[0x20:]) != 6 {
		return nil, fmt.Errorf("ole: bad header")
	}
	shift := le.Uint16(h[0x1E:])
	if shift != 9 && shift != 12 {
		return nil, fmt.Errorf("ole: sector shift %d", shift)
	}
	f := &oleFile{r: r, size: size, ss: 1 << shift, budget: budget}
	per := int(f.ss / 4)
	nsect := size/f.ss - 1 // sectors that exist after the header's
	// DIFAT: 109 entries in the header, then a chain of DIFAT sectors.
	var difat []uint32
	for k := range 109 {
		difat = append(difat, le.Uint32(h[0x4C+4*k:]))
	}
	next := le.Uint32(h[0x44:])
	sec := make([]byte, f.ss)
	for k := 0; k < int(le.Uint32(h[0x48:])) && next < oleEnd-2 && int64(next) < nsect && len(difat) < oleMaxFAT/per; k++ {
		if !f.sector(next, sec) {
			break
		}
		for j := range per - 1 {
			difat = append(difat, le.Uint32(sec[4*j:]))
		}
		next = le.Uint32(sec[f.ss-4:])
	}
	nfat := int(le.Uint32(h[0x2C:]))
	for _, d := range difat {
		if nfat == 0 || len(f.fat) >= oleMaxFAT {
			break
		}
		if d >= oleEnd-2 || int64(d) >= nsect {
			continue
		}
		nfat--
		if !f.sector(d, sec) {
			break
		}
		for j := range per {
			f.fat = append(f.fat, le.Uint32(sec[4*j:]))
		}
	}
	if len(f.fat) == 0 {
		return nil, fmt.Errorf("ole: no FAT")
	}
	f.stamp = make([]uint32, len(f.fat))
	// Mini FAT.
	for _, m := range f.chain(le.Uint32(h[0x3C:]), int(le.Uint32(h[0x40:]))) {
		if !f.sector(m, sec) {
			break
		}
		for j := range per {
			f.mfat = append(f.mfat, le.Uint32(sec[4*j:]))
		}
	}
	return f, nil
}

// sector reads sector n into b; false if it is not in the file.
func (f *oleFile) sector(n uint32, b []byte) bool {
	off := (int64(n) + 1) * f.ss
	if off+f.ss > f.size || *f.budget <= 0 {
		return false
	}
	*f.budget -= f.ss
	m, _ := f.r.ReadAt(b, off)
	return m == len(b)
}

// chain follows the FAT from start for at most max sectors (0: any),
// stopping at a free, reserved, out-of-range or repeated entry.
func (f *oleFile) chain(start uint32, max int) []uint32 {
	f.gen++
	var out []uint32
	for n := start; n < uint32(len(f.fat)) && f.stamp[n] != f.gen && f.walked < oleMaxWalk; n = f.fat[n] {
		if max > 0 && len(out) >= max {
			break
		}
		if (int64(n)+2)*f.ss > f.size {
			break
		}
		f.stamp[n] = f.gen
		f.walked++
		out = append(out, n)
	}
	return out
}

// miniChain follows the mini FAT likewise.
func (f *oleFile) miniChain(start uint32, max int) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for n := start; n < uint32(len(f.mfat)) && !seen[n] && len(out) < max && f.walked < oleMaxWalk; n = f.mfat[n] {
		seen[n] = true
		f.walked++
		out = append(out, n)
	}
	return out
}

// oleStream is a stream as file offsets of its fragments, each chunk bytes.
type oleStream struct {
	name  string
	frag  []int64
	chunk int64
	size  int64
}

// at is the file offset of stream offset o.
func (st *oleStream) at(o int64) int64 { return st.frag[o/st.chunk] + o%st.chunk }

// read fills b from stream offset o; it returns the bytes read.
func (st *oleStream) read(f *oleFile, b []byte, o int64) int {
	n := 0
	for n < len(b) && o < st.size {
		k := min(int64(len(b)-n), st.chunk-o%st.chunk, st.size-o)
		m, _ := f.r.ReadAt(b[n:n+int(k)], st.at(o))
		n += m
		if m < int(k) {
			break
		}
		o += k
	}
	return n
}

// streams lists the compound file's streams.
func (f *oleFile) streams() []oleStream {
	var root []byte
	for _, d := range f.chain(f.dirStart(), oleMaxDir*128/int(f.ss)) {
		b := make([]byte, f.ss)
		if !f.sector(d, b) {
			break
		}
		root = append(root, b...)
	}
	le := binary.LittleEndian
	var out []oleStream
	cutoff := int64(4096)
	for e := 0; e+128 <= len(root); e += 128 {
		d := root[e : e+128]
		typ := d[0x42]
		start := le.Uint32(d[0x74:])
		var name []rune
		for k := 0; k+1 < min(64, int(le.Uint16(d[0x40:]))); k += 2 {
			if c := le.Uint16(d[k:]); c != 0 {
				name = append(name, rune(c))
			}
		}
		size := int64(le.Uint32(d[0x78:])) // the high half is 0 or junk in v3 files
		if f.ss == 4096 {
			size = int64(le.Uint64(d[0x78:]) & (1<<40 - 1))
		}
		switch {
		case typ == 5 && e == 0: // root: the mini stream
			for _, n := range f.chain(start, int((size+f.ss-1)/f.ss)) {
				f.mini = append(f.mini, (int64(n)+1)*f.ss)
			}
		case typ == 2 && size > 0 && size < cutoff:
			st := oleStream{name: string(name), chunk: 64, size: size}
			for _, m := range f.miniChain(start, int((size+63)/64)) {
				mo := int64(m) * 64
				if mo/f.ss >= int64(len(f.mini)) {
					break
				}
				st.frag = append(st.frag, f.mini[mo/f.ss]+mo%f.ss)
			}
			st.size = min(st.size, int64(len(st.frag))*64)
			out = append(out, st)
		case typ == 2 && size >= cutoff:
			st := oleStream{name: string(name), chunk: f.ss, size: size}
			for _, n := range f.chain(start, int(min(size, f.size)/f.ss)+1) {
				st.frag = append(st.frag, (int64(n)+1)*f.ss)
			}
			st.size = min(st.size, int64(len(st.frag))*f.ss)
			out = append(out, st)
		}
	}
	return out
}

func (f *oleFile) dirStart() uint32 {
	var h [4]byte
	f.r.ReadAt(h[:], 0x30)
	return binary.LittleEndian.Uint32(h[:])
}

// oleSeams scans the bytes around every join of non-adjacent fragments of
// every stream (and of Excel's split strings).
func (s *scanner) oleSeams(ctx context.Context, f *oleFile, path string, top int64) {
	seams := 0
	reported := map[string]bool{} // paths: a feature may be near two joins
	for _, st := range f.streams() {
		var joins []int64
		for k := 1; k < len(st.frag) && seams < oleMaxSeams; k++ {
			if st.frag[k] != st.frag[k-1]+st.chunk {
				joins = append(joins, int64(k)*st.chunk)
				seams++
			}
		}
		s.joins(ctx, f, st.size, func(b []byte, o int64) int { return st.read(f, b, o) }, joins, st.at, path, top, reported)
		if st.name == "Workbook" || st.name == "Book" {
			s.biffJoins(ctx, f, st, path, top, reported)
		}
	}
}

// joins scans a view (size bytes, read by read) around each join offset:
// the features starting within identity.LookAround of a join, whose
// context the raw scan does not see, are reported unless the raw scan
// finds the same at the same place (at maps a view offset to the file
// offset), each once.
func (s *scanner) joins(ctx context.Context, f *oleFile, size int64, read func([]byte, int64) int, joins []int64, at func(int64) int64, path string, top int64, reported map[string]bool) {
	const l = identity.LookAround
	win := make([]byte, 4*l)
	defer func() { s.plain, s.remap = false, nil }()
	for _, q := range joins {
		if s.budget <= 0 || ctx.Err() != nil {
			return
		}
		lo := max(0, q-2*l)
		n := read(win[:min(int64(len(win)), size-lo)], lo)
		s.budget -= int64(n)
		flo, fhi := int(max(0, q-l-lo)), min(n, int(q+l-lo))
		if fhi <= flo {
			continue
		}
		s.plain, s.remap = true, at
		mark := len(s.feats)
		s.scanBuf(ctx, win[:n], lo, flo, fhi, path, s.opts.MaxDepth, top)
		cand := append([]Feature(nil), s.feats[mark:]...)
		s.feats = s.feats[:mark]
		for _, ft := range cand {
			if reported[ft.Path] {
				continue
			}
			reported[ft.Path] = true
			phys, err := strconv.ParseInt(ft.Path[strings.LastIndexByte(ft.Path, '-')+1:], 10, 64)
			if err != nil || s.rawFinds(ctx, f, phys, ft) {
				continue
			}
			s.feats = append(s.feats, ft)
		}
	}
}

// rawFinds reports whether the raw scan of the file's own bytes finds
// feature ft at file offset phys.
func (s *scanner) rawFinds(ctx context.Context, f *oleFile, phys int64, ft Feature) bool {
	lo := max(0, phys-margin)
	b := make([]byte, min(2*margin, f.size-lo))
	n, _ := f.r.ReadAt(b, lo)
	if phys-lo >= int64(n) {
		return false
	}
	s.plain, s.remap = true, nil
	mark := len(s.feats)
	s.scanBuf(ctx, b[:n], lo, int(phys-lo), int(phys-lo)+1, "", s.opts.MaxDepth, top0)
	found := false
	for _, r := range s.feats[mark:] {
		if r.Kind == ft.Kind && r.Value == ft.Value {
			found = true
		}
	}
	s.feats = s.feats[:mark]
	return found
}

// top0 is a top offset for scans whose features are dropped.
const top0 = 0

// oleMaxBIFF bounds the workbook stream read to rejoin its strings.
const oleMaxBIFF = 64 << 20

// biffJoins reads an Excel workbook's shared strings (SST) as Excel does:
// a string whose characters a CONTINUE record splits goes on after that
// record's header and a new option byte (which may switch between 8-bit
// and UTF-16LE characters). Each string so split is scanned whole.
func (s *scanner) biffJoins(ctx context.Context, f *oleFile, st oleStream, path string, top int64, reported map[string]bool) {
	size := min(st.size, oleMaxBIFF, max(0, s.budget))
	data := make([]byte, size)
	data = data[:st.read(f, data, 0)]
	s.budget -= int64(len(data))
	le := binary.LittleEndian
	var pieces [][2]int // SST and CONTINUE bodies: [start, end) in data
	for p := 0; p+4 <= len(data) && ctx.Err() == nil; {
		typ, n := le.Uint16(data[p:]), int(le.Uint16(data[p+2:]))
		body := p + 4
		if body+n > len(data) {
			break
		}
		switch {
		case typ == 0x00FC:
			s.sstStrings(ctx, f, st, data, pieces, path, top, reported)
			pieces = append(pieces[:0], [2]int{body, body + n})
		case typ == 0x003C && len(pieces) > 0:
			pieces = append(pieces, [2]int{body, body + n})
		default:
			s.sstStrings(ctx, f, st, data, pieces, path, top, reported)
			pieces = pieces[:0]
		}
		p = body + n
	}
	s.sstStrings(ctx, f, st, data, pieces, path, top, reported)
}

// sstStrings parses one SST (its record bodies in pieces) and scans the
// strings split across records.
func (s *scanner) sstStrings(ctx context.Context, f *oleFile, st oleStream, data []byte, pieces [][2]int, path string, top int64, reported map[string]bool) {
	if len(pieces) < 2 {
		return
	}
	k, p := 0, pieces[0][0]+8 // cstTotal, cstUnique
	next := func() bool {     // moves to the next record body; false at the end
		if k+1 >= len(pieces) {
			return false
		}
		k++
		p = pieces[k][0]
		return p < pieces[k][1]
	}
	// byteAt returns the next byte and its stream offset, crossing records.
	byteAt := func() (byte, int, bool) {
		for p >= pieces[k][1] {
			if !next() {
				return 0, 0, false
			}
		}
		p++
		return data[p-1], p - 1, true
	}
	u16 := func() (int, bool) {
		a, _, ok1 := byteAt()
		b, _, ok2 := byteAt()
		return int(a) | int(b)<<8, ok1 && ok2
	}
	skip := func(n int) bool {
		for ; n > 0; n-- {
			if _, _, ok := byteAt(); !ok {
				return false
			}
		}
		return true
	}
	var text []byte
	var pos []int
	defer func() { s.plain, s.remap = false, nil }()
	for ctx.Err() == nil {
		cch, ok := u16()
		flags, _, ok2 := byteAt()
		if !ok || !ok2 {
			return
		}
		runs, ext := 0, 0
		if flags&8 != 0 {
			if runs, ok = u16(); !ok {
				return
			}
		}
		if flags&4 != 0 {
			a, ok1 := u16()
			b, ok2 := u16()
			if !ok1 || !ok2 {
				return
			}
			ext = a | b<<16
		}
		high := flags&1 != 0
		text, pos = text[:0], pos[:0]
		split := false
		for c := 0; c < cch; c++ {
			if p >= pieces[k][1] { // the record ends inside the characters
				if !next() || p >= pieces[k][1] {
					return
				}
				high = data[p]&1 != 0
				p++
				split = true
			}
			lo, at, ok := byteAt()
			if !ok {
				return
			}
			r := rune(lo)
			if high {
				hb, _, ok := byteAt()
				if !ok {
					return
				}
				r |= rune(hb) << 8
			}
			n := len(text)
			text = utf8.AppendRune(text, r)
			for range len(text) - n {
				pos = append(pos, at)
			}
		}
		if !skip(4*runs) || !skip(min(ext, len(data))) {
			return
		}
		if !split || len(text) == 0 {
			continue
		}
		s.plain, s.remap = true, func(o int64) int64 { return st.at(int64(pos[o])) }
		mark := len(s.feats)
		s.scanBuf(ctx, text, 0, 0, len(text), path, s.opts.MaxDepth, top)
		cand := append([]Feature(nil), s.feats[mark:]...)
		s.feats = s.feats[:mark]
		for _, ft := range cand {
			phys, err := strconv.ParseInt(ft.Path[strings.LastIndexByte(ft.Path, '-')+1:], 10, 64)
			if err != nil || reported[ft.Path] || s.rawFinds(ctx, f, phys, ft) {
				continue
			}
			reported[ft.Path] = true
			s.feats = append(s.feats, ft)
		}
	}
}

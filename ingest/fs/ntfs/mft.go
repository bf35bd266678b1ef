package ntfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf16"

	"github.com/evidx/evidx/ingest/fs"
)

// MFT record header layout (FILE record).
const (
	recMagic       = "FILE"
	recUSAOffset   = 0x04 // u16: update sequence array offset
	recUSACount    = 0x06 // u16: 1 + number of sectors
	recSeq         = 0x10 // u16: sequence number
	recLinks       = 0x12 // u16
	recAttrsOffset = 0x14 // u16: first attribute
	recFlags       = 0x16 // u16: 0x1 in use, 0x2 directory
	recBytesUsed   = 0x18 // u32
	recBaseRef     = 0x20 // u64: base record of an extension record, 0 for a base

	flagInUse = 0x1
	flagDir   = 0x2

	// fixupStride is the update-sequence stride: the last two bytes of
	// every 512 bytes of a record hold the sequence number on disk.
	fixupStride = 512
)

// Attribute header layout.
const (
	attrType       = 0x00 // u32
	attrLength     = 0x04 // u32
	attrNonRes     = 0x08 // u8
	attrNameLen    = 0x09 // u8, UTF-16 code units
	attrNameOff    = 0x0A // u16
	attrFlagsOff   = 0x0C // u16: 0x1 compressed, 0x4000 encrypted, 0x8000 sparse
	attrValueLen   = 0x10 // u32, resident
	attrValueOff   = 0x14 // u16, resident
	attrStartVCN   = 0x10 // u64, non-resident
	attrRunsOff    = 0x20 // u16, non-resident
	attrDataSize   = 0x30 // u64, non-resident
	attrInitSize   = 0x38 // u64, non-resident
	attrEnd        = 0xFFFFFFFF
	attrCompressed = 0x1
	attrEncrypted  = 0x4000

	attrStdInfo  = 0x10
	attrAttrList = 0x20
	attrFileName = 0x30
	attrData     = 0x80
)

// attr is one attribute of a record: a view over the fixed-up record bytes.
type attr struct {
	typ         uint32
	name        string
	flags       uint16
	nonResident bool
	off         int64  // volume offset of the attribute header
	value       []byte // resident value (aliases the record buffer)
	valueOff    int64  // volume offset of the resident value
	startVCN    int64
	dataSize    int64
	initSize    int64
	runList     []byte // non-resident mapping pairs (aliases the record buffer)
	runListOff  int64
	fix         fixups // of the record holding the attribute
}

// fixups locates a record's update sequence: the on-disk record has the
// sequence number in the last two bytes of every 512, and the true bytes
// at usa+2*i in the update sequence array.
type fixups struct {
	recOff int64 // volume offset of the record
	usa    int64 // offset of the update sequence array in the record
	count  int   // entries, the sequence number included
}

// runs maps length bytes at volume offset off, inside the record, to
// where they lie on disk: split around each fixed-up pair of bytes, which
// live in the update sequence array instead.
func (fx fixups) runs(off, length int64) []fs.Run {
	var out []fs.Run
	logical := int64(0)
	end := off + length
	for i := 1; i < fx.count && off < end; i++ {
		fix := fx.recOff + int64(i)*fixupStride - 2
		if fix+2 <= off || fix >= end {
			continue
		}
		if fix > off {
			out = append(out, fs.Run{Logical: logical, Offset: off, Length: fix - off})
			logical += fix - off
			off = fix
		}
		k := min(fix+2, end) - off
		out = append(out, fs.Run{Logical: logical, Offset: fx.recOff + fx.usa + 2*int64(i) + (off - fix), Length: k})
		logical += k
		off += k
	}
	if off < end {
		out = append(out, fs.Run{Logical: logical, Offset: off, Length: end - off})
	}
	return out
}

// record is one parsed MFT record.
type record struct {
	num     uint64
	off     int64 // volume offset of the record
	seq     uint16
	flags   uint16
	baseRef uint64
	attrs   []*attr
	hasList bool
	list    *attr // the $ATTRIBUTE_LIST, if any
	// expanded is set once expand has added the extension records'
	// attributes to attrs.
	expanded bool
}

func (r *record) inUse() bool { return r.flags&flagInUse != 0 }
func (r *record) isDir() bool { return r.flags&flagDir != 0 }

// parseRecord applies the fixups to raw (in place) and decodes its
// attributes. Damage after the header ends the attribute list and is
// returned along with what was decoded.
func (n *FS) parseRecord(raw []byte, num uint64, off int64) (*record, error) {
	le := binary.LittleEndian
	op := fmt.Sprintf("mft entry %d", num)
	if string(raw[:4]) != recMagic {
		return nil, &ParseError{Format: "ntfs", Op: op, Offset: off, Err: fmt.Errorf("%w: no FILE signature", ErrCorrupt)}
	}
	usaOff := int(le.Uint16(raw[recUSAOffset:]))
	usaCount := int(le.Uint16(raw[recUSACount:]))
	if usaCount == 0 || usaOff+2*usaCount > len(raw) || (usaCount-1)*fixupStride > len(raw) {
		return nil, &ParseError{Format: "ntfs", Op: op + " update sequence", Offset: off + recUSAOffset, Err: fmt.Errorf("%w: offset %d count %d", ErrCorrupt, usaOff, usaCount)}
	}
	usn := raw[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i*fixupStride - 2
		if raw[end] != usn[0] || raw[end+1] != usn[1] {
			// A torn write: the sector does not belong with the rest.
			return nil, &ParseError{Format: "ntfs", Op: op + " fixup", Offset: off + int64(end), Err: fmt.Errorf("%w: sector %d does not match the update sequence number", ErrCorrupt, i-1)}
		}
		copy(raw[end:end+2], raw[usaOff+2*i:usaOff+2*i+2])
	}
	rec := &record{num: num, off: off, seq: le.Uint16(raw[recSeq:]), flags: le.Uint16(raw[recFlags:]), baseRef: le.Uint64(raw[recBaseRef:]) & refMask}
	used := int(le.Uint32(raw[recBytesUsed:]))
	if used > len(raw) || used < 0x30 {
		used = len(raw)
	}
	p := int(le.Uint16(raw[recAttrsOffset:]))
	for count := 0; ; count++ {
		if p+8 > used || count > len(raw)/16 {
			return rec, &ParseError{Format: "ntfs", Op: op + " attributes", Offset: off + int64(p), Err: fmt.Errorf("%w: no end marker", ErrCorrupt)}
		}
		typ := le.Uint32(raw[p:])
		if typ == attrEnd {
			return rec, nil
		}
		length := int(le.Uint32(raw[p+attrLength:]))
		if length < 0x18 || length%8 != 0 || p+length > used {
			return rec, &ParseError{Format: "ntfs", Op: op + " attribute", Offset: off + int64(p), Err: fmt.Errorf("%w: type %#x length %d", ErrCorrupt, typ, length)}
		}
		a, err := parseAttr(raw[p:p+length], off+int64(p))
		if err != nil {
			return rec, &ParseError{Format: "ntfs", Op: op + " attribute", Offset: off + int64(p), Err: err}
		}
		a.fix = fixups{recOff: off, usa: int64(usaOff), count: usaCount}
		rec.attrs = append(rec.attrs, a)
		if a.typ == attrAttrList {
			rec.hasList, rec.list = true, a
		}
		p += length
	}
}

// parseAttr decodes one attribute b found at volume offset off.
func parseAttr(b []byte, off int64) (*attr, error) {
	le := binary.LittleEndian
	a := &attr{typ: le.Uint32(b), off: off, flags: le.Uint16(b[attrFlagsOff:]), nonResident: b[attrNonRes] != 0}
	if nl := int(b[attrNameLen]); nl > 0 {
		no := int(le.Uint16(b[attrNameOff:]))
		if no+2*nl > len(b) {
			return nil, fmt.Errorf("%w: name past the attribute", ErrCorrupt)
		}
		a.name = utf16le(b[no : no+2*nl])
	}
	if !a.nonResident {
		vl := int(le.Uint32(b[attrValueLen:]))
		vo := int(le.Uint16(b[attrValueOff:]))
		if vo > len(b) || vl > len(b)-vo {
			return nil, fmt.Errorf("%w: resident value of %d bytes at %d past the attribute", ErrCorrupt, vl, vo)
		}
		a.value, a.valueOff, a.dataSize, a.initSize = b[vo:vo+vl], off+int64(vo), int64(vl), int64(vl)
		return a, nil
	}
	if len(b) < 0x40 {
		return nil, fmt.Errorf("%w: non-resident header of %d bytes", ErrCorrupt, len(b))
	}
	a.startVCN = int64(le.Uint64(b[attrStartVCN:]))
	a.dataSize = int64(le.Uint64(b[attrDataSize:]))
	a.initSize = int64(le.Uint64(b[attrInitSize:]))
	ro := int(le.Uint16(b[attrRunsOff:]))
	if ro > len(b) || a.startVCN < 0 || a.dataSize < 0 || a.initSize < 0 {
		return nil, fmt.Errorf("%w: run list at %d, start VCN %d, size %d", ErrCorrupt, ro, a.startVCN, a.dataSize)
	}
	a.runList, a.runListOff = b[ro:], off+int64(ro)
	return a, nil
}

// utf16le decodes little-endian UTF-16 (NTFS names); bad surrogates
// become U+FFFD.
func utf16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// refMask keeps the 48-bit entry number of an MFT reference (the top 16
// bits are the sequence number).
const refMask = 1<<48 - 1

// decodeRuns decodes the mapping pairs of a non-resident attribute into
// byte runs, starting at its start VCN. Each pair is a header byte (low
// nibble: length field size, high nibble: offset field size), a length in
// clusters and a signed cluster delta from the previous run; no offset field
// means a sparse run.
func (n *FS) decodeRuns(a *attr, op string) ([]fs.Run, error) {
	cs := n.bt.clusterSize
	var runs []fs.Run
	vcn := a.startVCN
	lcn := int64(0)
	b := a.runList
	for p := 0; p < len(b); {
		h := b[p]
		if h == 0 {
			return runs, nil
		}
		ls, os := int(h&0xF), int(h>>4)
		if ls == 0 || ls > 8 || os > 8 || p+1+ls+os > len(b) {
			return runs, &ParseError{Format: "ntfs", Op: op + " run list", Offset: a.runListOff + int64(p), Err: fmt.Errorf("%w: header %#x", ErrCorrupt, h)}
		}
		length := int64(0)
		for i := ls - 1; i >= 0; i-- {
			length = length<<8 | int64(b[p+1+i])
		}
		var delta int64
		for i := os - 1; i >= 0; i-- {
			delta = delta<<8 | int64(b[p+1+ls+i])
		}
		if os > 0 && os < 8 && b[p+ls+os]&0x80 != 0 {
			delta -= 1 << (8 * os) // sign-extend
		}
		if length <= 0 || length > n.bt.clusters || vcn > n.bt.clusters<<8 {
			return runs, &ParseError{Format: "ntfs", Op: op + " run list", Offset: a.runListOff + int64(p), Err: fmt.Errorf("%w: run of %d clusters", ErrCorrupt, length)}
		}
		r := fs.Run{Logical: vcn * cs, Length: length * cs}
		if os == 0 {
			r.Sparse = true
		} else {
			lcn += delta
			if lcn < 0 || lcn+length > n.bt.clusters {
				return runs, &ParseError{Format: "ntfs", Op: op + " run list", Offset: a.runListOff + int64(p), Err: fmt.Errorf("%w: clusters %d..%d outside the volume of %d", ErrCorrupt, lcn, lcn+length, n.bt.clusters)}
			}
			r.Offset = lcn * cs
		}
		runs = append(runs, r)
		vcn += length
		p += 1 + ls + os
	}
	return runs, &ParseError{Format: "ntfs", Op: op + " run list", Offset: a.runListOff, Err: fmt.Errorf("%w: no terminator", ErrCorrupt)}
}

// stream is one $DATA stream of a file, assembled from all its pieces.
type stream struct {
	name       string
	size       int64
	initSize   int64
	resident   []byte // resident content (aliases a record buffer)
	residentAt int64  // volume offset of the resident content
	fix        fixups // of the record holding the resident content
	nonRes     bool
	runs       []fs.Run // clipped to size; past initSize reads as zeros
	flags      uint16
}

// stream assembles the $DATA stream name of rec from its attributes (those
// of extension records included once expand has run). Pieces are ordered
// by start VCN.
func (n *FS) stream(rec *record, name string) (*stream, error) {
	op := fmt.Sprintf("mft entry %d stream %q", rec.num, name)
	var pieces []*attr
	for _, a := range rec.attrs {
		if a.typ == attrData && a.name == name {
			pieces = append(pieces, a)
		}
	}
	var firstErr error
	if len(pieces) == 0 {
		return nil, &ParseError{Format: "ntfs", Op: op, Offset: rec.off, Err: fmt.Errorf("%w: no such stream", ErrCorrupt)}
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].startVCN < pieces[j].startVCN })
	first := pieces[0]
	st := &stream{name: name, size: first.dataSize, initSize: first.initSize, flags: first.flags}
	if !first.nonResident {
		st.resident, st.residentAt, st.fix = first.value, first.valueOff, first.fix
		return st, firstErr
	}
	st.nonRes = true
	seen := map[int64]bool{}
	for _, a := range pieces {
		if !a.nonResident || seen[a.startVCN] {
			continue
		}
		seen[a.startVCN] = true
		runs, err := n.decodeRuns(a, op)
		st.runs = append(st.runs, runs...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	st.runs = clipRuns(st.runs, st.size, st.initSize)
	return st, firstErr
}

// clipRuns cuts runs at size and turns what lies past the initialized size
// into sparse (zero) runs.
func clipRuns(runs []fs.Run, size, init int64) []fs.Run {
	init = min(init, size)
	var out []fs.Run
	for _, r := range runs {
		if r.Logical >= size {
			break
		}
		r.Length = min(r.Length, size-r.Logical)
		if !r.Sparse && r.Logical+r.Length > init {
			if r.Logical < init {
				head := r
				head.Length = init - r.Logical
				out = append(out, head)
				r.Offset += head.Length
				r.Logical += head.Length
				r.Length -= head.Length
			}
			r.Sparse, r.Offset = true, 0
		}
		out = append(out, r)
	}
	return out
}

// $ATTRIBUTE_LIST entry layout.
const (
	alType    = 0x00 // u32
	alRecLen  = 0x04 // u16
	alNameLen = 0x06 // u8
	alNameOff = 0x07 // u8
	alBaseRef = 0x10 // u64: the record holding the attribute
)

// maxExtensions bounds the extension records one $ATTRIBUTE_LIST may name.
const maxExtensions = 4096

// expand appends to rec.attrs the attributes its $ATTRIBUTE_LIST places in
// extension records (ntfs-3g and Windows move $DATA pieces, named streams
// and even $FILE_NAME there when the base record is full). Each extension
// record is read once and must name rec as its base.
func (n *FS) expand(rec *record) error {
	if rec.list == nil || rec.expanded {
		return nil
	}
	rec.expanded = true
	le := binary.LittleEndian
	la := rec.list
	op := fmt.Sprintf("mft entry %d $ATTRIBUTE_LIST", rec.num)
	b := la.value
	if la.nonResident {
		if la.dataSize > 1<<20 {
			return &ParseError{Format: "ntfs", Op: op, Offset: la.off, Err: fmt.Errorf("%w: %d bytes", ErrCorrupt, la.dataSize)}
		}
		runs, err := n.decodeRuns(la, op)
		if err != nil {
			return err
		}
		b = make([]byte, la.dataSize)
		rr := fs.NewRunReader(n.r, clipRuns(runs, la.dataSize, la.initSize), la.dataSize, "stream content")
		if _, err := io.ReadFull(rr, b); err != nil {
			return err
		}
	}
	done := map[uint64]bool{rec.num: true}
	var firstErr error
	for p := 0; p+0x1A <= len(b); {
		rl := int(le.Uint16(b[p+alRecLen:]))
		if rl < 0x1A || p+rl > len(b) {
			return &ParseError{Format: "ntfs", Op: op + " entry", Offset: la.off, Err: fmt.Errorf("%w: length %d at %d", ErrCorrupt, rl, p)}
		}
		ref := le.Uint64(b[p+alBaseRef:]) & refMask
		p += rl
		if done[ref] {
			continue
		}
		if done[ref] = true; len(done) > maxExtensions {
			return &ParseError{Format: "ntfs", Op: op, Offset: la.off, Err: fmt.Errorf("%w: more than %d extension records", ErrCorrupt, maxExtensions)}
		}
		raw := make([]byte, n.bt.recordSize)
		off, err := n.readRecord(ref, raw)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ext, err := n.parseRecord(raw, ref, off)
		if ext == nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ext.baseRef != rec.num {
			if firstErr == nil {
				firstErr = &ParseError{Format: "ntfs", Op: fmt.Sprintf("mft entry %d", ref), Offset: off, Err: fmt.Errorf("%w: extension record of entry %d, not %d", ErrCorrupt, ext.baseRef, rec.num)}
			}
			continue
		}
		for _, a := range ext.attrs {
			if a.typ != attrAttrList {
				rec.attrs = append(rec.attrs, a)
			}
		}
	}
	return firstErr
}

// fileName is a decoded $FILE_NAME attribute.
type fileName struct {
	parent    uint64
	parentSeq uint16
	name      string
	namespace uint8 // 0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS
}

// $FILE_NAME layout.
const (
	fnParent    = 0x00
	fnNameLen   = 0x40
	fnNamespace = 0x41
	fnName      = 0x42
	nsDOS       = 2
)

// parseFileName decodes a resident $FILE_NAME value; false when too short.
func parseFileName(v []byte) (fileName, bool) {
	if len(v) < fnName {
		return fileName{}, false
	}
	nl := int(v[fnNameLen])
	if fnName+2*nl > len(v) || nl == 0 {
		return fileName{}, false
	}
	ref := binary.LittleEndian.Uint64(v[fnParent:])
	return fileName{parent: ref & refMask, parentSeq: uint16(ref >> 48), name: utf16le(v[fnName : fnName+2*nl]), namespace: v[fnNamespace]}, true
}

// names returns the record's $FILE_NAMEs, without DOS 8.3 names when a long
// name exists (Win32 and POSIX names are the ones users see).
func (rec *record) names() []fileName {
	var all []fileName
	for _, a := range rec.attrs {
		if a.typ != attrFileName || a.nonResident {
			continue
		}
		if fn, ok := parseFileName(a.value); ok {
			all = append(all, fn)
		}
	}
	var long []fileName
	for _, fn := range all {
		if fn.namespace != nsDOS {
			long = append(long, fn)
		}
	}
	if len(long) > 0 {
		return long
	}
	return all
}

// $STANDARD_INFORMATION times: four FILETIMEs (100 ns since 1601-01-01
// UTC): created, modified, MFT entry changed, accessed.
func (rec *record) times() (m, a, c, b time.Time, ok bool) {
	for _, at := range rec.attrs {
		if at.typ == attrStdInfo && !at.nonResident && len(at.value) >= 32 {
			le := binary.LittleEndian
			v := at.value
			return filetime(le.Uint64(v[8:])), filetime(le.Uint64(v[24:])), filetime(le.Uint64(v[16:])), filetime(le.Uint64(v[0:])), true
		}
	}
	return
}

// filetimeEpoch is 1601-01-01 in Unix seconds.
const filetimeEpoch = -11644473600

// filetime converts a FILETIME; 0 and absurd values give the zero time.
func filetime(ft uint64) time.Time {
	if ft == 0 || ft > 1<<62 {
		return time.Time{}
	}
	return time.Unix(filetimeEpoch+int64(ft/1e7), int64(ft%1e7)*100).UTC()
}

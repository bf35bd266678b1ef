package runs

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// A run section is a sequence of records in key order, coded against the
// record before it (the state starts empty in every section):
//
//	kind      1 byte, the kind's index
//	shared    uvarint: leading bytes shared with the previous value
//	suffix    uvarint length, then the value's remaining bytes
//	count     uvarint
//	location  one of
//	            locRaw:    uvarint length, bytes
//	            locNumber: uvarint length, prefix bytes, uvarint number
//	            locSame:   uvarint number (the previous locNumber's prefix)
//
// Sorted values share long prefixes ("+86138…"), and locations are a
// fixed text and a row number ("line 1234567"): the records are about half
// the bytes of plain ones, for no more CPU than copying them, where a
// general compressor (s2) cost more CPU than the writes it saved.
const (
	locRaw byte = iota
	locNumber
	locSame
)

// recordWriter appends records to a section.
type recordWriter struct {
	prev       []byte // previous value
	prevKind   int
	prevPrefix []byte // previous locNumber prefix
	hasPrefix  bool
}

func (w *recordWriter) reset() {
	w.prev, w.prevKind, w.prevPrefix, w.hasPrefix = w.prev[:0], -1, w.prevPrefix[:0], false
}

func (w *recordWriter) append(out []byte, kind byte, value []byte, count int64, loc []byte) []byte {
	out = w.appendValue(out, kind, value, count)
	if prefix, num, ok := splitNumber(loc); ok {
		return w.appendNumber(out, string(prefix), num)
	}
	out = append(out, locRaw)
	out = binary.AppendUvarint(out, uint64(len(loc)))
	return append(out, loc...)
}

// appendNumbered appends a record whose location is text + num.
func (w *recordWriter) appendNumbered(out []byte, kind byte, value []byte, count int64, text string, num uint64) []byte {
	return w.appendNumber(w.appendValue(out, kind, value, count), text, num)
}

// appendValue appends the kind, value and count of a record.
func (w *recordWriter) appendValue(out []byte, kind byte, value []byte, count int64) []byte {
	shared := 0
	if int(kind) == w.prevKind {
		for shared < len(value) && shared < len(w.prev) && value[shared] == w.prev[shared] {
			shared++
		}
	}
	out = append(out, kind)
	out = binary.AppendUvarint(out, uint64(shared))
	out = binary.AppendUvarint(out, uint64(len(value)-shared))
	out = append(out, value[shared:]...)
	out = binary.AppendUvarint(out, uint64(count))
	w.prev, w.prevKind = append(w.prev[:0], value...), int(kind)
	return out
}

// appendNumber appends a text + number location.
func (w *recordWriter) appendNumber(out []byte, prefix string, num uint64) []byte {
	if w.hasPrefix && string(prefix) == string(w.prevPrefix) {
		out = append(out, locSame)
		return binary.AppendUvarint(out, num)
	}
	out = append(out, locNumber)
	out = binary.AppendUvarint(out, uint64(len(prefix)))
	out = append(out, prefix...)
	w.prevPrefix, w.hasPrefix = append(w.prevPrefix[:0], prefix...), true
	return binary.AppendUvarint(out, num)
}

// splitNumber splits loc into a prefix and a trailing decimal number that
// prints back the same: at most 19 digits, no leading zero.
func splitNumber[T ~string | ~[]byte](loc T) (prefix T, num uint64, ok bool) {
	i := len(loc)
	for i > 0 && loc[i-1] >= '0' && loc[i-1] <= '9' {
		i--
	}
	d := loc[i:]
	if len(d) == 0 || len(d) > 19 || d[0] == '0' && len(d) > 1 {
		return prefix, 0, false
	}
	for j := 0; j < len(d); j++ {
		num = num*10 + uint64(d[j]-'0')
	}
	return loc[:i], num, true
}

// recordReader decodes the records of a section from a byte slice that
// holds at least one whole record (see cursor.fill).
type recordReader struct {
	kind     byte
	value    []byte // owned: the next record builds on it
	count    int64
	rawLoc   []byte // the location when raw
	prefix   []byte // the last locNumber prefix
	num      uint64
	raw      bool
	hasPfx   bool
	prevKind int
}

func (r *recordReader) reset() {
	r.value, r.prefix, r.hasPfx, r.prevKind = r.value[:0], r.prefix[:0], false, -1
}

var errRecord = errors.New("malformed record")

// decode reads one record at b[0:] and returns its length, or 0 with
// errRecord when b does not hold a whole valid record.
func (r *recordReader) decode(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, errRecord
	}
	p := 0
	kind := b[p]
	p++
	shared, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, errRecord
	}
	p += n
	slen, n := binary.Uvarint(b[p:])
	if n <= 0 || slen > maxLen || uint64(len(b)-p-n) < slen {
		return 0, errRecord
	}
	p += n
	if int(kind) != r.prevKind && shared != 0 || shared > uint64(len(r.value)) || shared+slen > maxLen {
		return 0, errRecord
	}
	r.value = append(r.value[:shared], b[p:p+int(slen)]...)
	r.kind, r.prevKind = kind, int(kind)
	p += int(slen)
	cnt, n := binary.Uvarint(b[p:])
	if n <= 0 || cnt > 1<<62 {
		return 0, errRecord
	}
	r.count = int64(cnt)
	p += n
	if p >= len(b) {
		return 0, errRecord
	}
	tag := b[p]
	p++
	switch tag {
	case locRaw, locNumber:
		l, n := binary.Uvarint(b[p:])
		if n <= 0 || l > maxLen || uint64(len(b)-p-n) < l {
			return 0, errRecord
		}
		p += n
		if tag == locRaw {
			r.rawLoc = append(r.rawLoc[:0], b[p:p+int(l)]...)
			r.raw = true
			return p + int(l), nil
		}
		r.prefix = append(r.prefix[:0], b[p:p+int(l)]...)
		p += int(l)
		r.raw, r.hasPfx = false, true
	case locSame:
		if !r.hasPfx {
			return 0, errRecord
		}
		r.raw = false
	default:
		return 0, errRecord
	}
	num, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, errRecord
	}
	r.num = num
	return p + n, nil
}

// appendLoc appends the record's location to dst.
func (r *recordReader) appendLoc(dst []byte) []byte {
	if r.raw {
		return append(dst, r.rawLoc...)
	}
	return strconv.AppendUint(append(dst, r.prefix...), r.num, 10)
}

// maxRecord bounds the encoded size of one record.
const maxRecord = 1 + 3*binary.MaxVarintLen64 + maxLen + 1 + 2*binary.MaxVarintLen64 + maxLen

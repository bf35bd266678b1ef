package scan

import (
	"encoding/binary"
	"strconv"

	"github.com/evidx/evidx/ingest/identity"
)

// sqliteField finds the SQLite table-leaf cell holding buf[p] and returns
// the bounds of its record field there. A page is recognised by its header
// (type 0x0D, cell count, content start, cell pointers in range) at a
// 512-byte multiple of the stream offset (pageBase is buf[0]'s offset
// modulo 512, so page starts line up with the image's sectors).
func sqliteField(pageBase int) identity.FieldFunc {
	// The page found last is tried first: records come page by page.
	lastS, lastH, lastPS := -1, 0, 0
	return func(buf []byte, p int) (int, int, bool) {
		if lastS >= 0 && p >= lastS && p < lastS+lastPS && lastS+lastPS <= len(buf)+lastPS {
			if lo, hi, ok := cellField(buf, lastS, lastH, lastPS, p); ok {
				return lo, hi, true
			}
		}
		// A record header holds small binary bytes; text never does.
		bin := false
		for i := max(0, p-identity.LookAround+8); i < p; i++ {
			if c := buf[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				bin = true
				break
			}
		}
		if !bin {
			return 0, 0, false
		}
		first := p - (p+pageBase)%512
		for _, ps := range []int{4096, 1024, 512, 2048, 8192, 16384, 32768, 65536} {
			for s := first; s > p-ps && s >= 0; s -= 512 {
				h := s
				if s+100 <= len(buf) && string(buf[s:s+16]) == "SQLite format 3\x00" {
					h = s + 100
				}
				if lo, hi, ok := cellField(buf, s, h, ps, p); ok {
					lastS, lastH, lastPS = s, h, ps
					return lo, hi, true
				}
			}
		}
		return 0, 0, false
	}
}

// cellField checks a table-leaf page of size ps at buf[s] (b-tree header at
// buf[h]) and returns the field of the cell that covers p.
func cellField(buf []byte, s, h, ps, p int) (int, int, bool) {
	if h+8 > len(buf) || buf[h] != 0x0D || p >= s+ps {
		return 0, 0, false
	}
	nc := int(binary.BigEndian.Uint16(buf[h+3:]))
	cs := int(binary.BigEndian.Uint16(buf[h+5:]))
	if cs == 0 {
		cs = 65536
	}
	if nc == 0 || h+8+2*nc > s+cs || cs > ps || s+cs > p || buf[h+7] > 64 || h+8+2*nc > len(buf) {
		return 0, 0, false
	}
	for c := 0; c < nc; c++ {
		cp := int(binary.BigEndian.Uint16(buf[h+8+2*c:]))
		if cp < cs || cp >= ps {
			return 0, 0, false
		}
		cell := s + cp
		if cell > p {
			continue
		}
		q := cell
		plen, n := uvarint(buf, q)
		if n == 0 {
			continue
		}
		q += n
		if _, n = uvarint(buf, q); n == 0 { // rowid
			continue
		}
		q += n
		body := q
		if plen <= 0 || int64(body)+plen <= int64(p) || plen > int64(ps) {
			continue
		}
		hsz, n := uvarint(buf, body)
		if n == 0 || hsz < 1 || hsz > plen {
			continue
		}
		off := body + int(hsz)
		for t := body + n; t < body+int(hsz); {
			st, n := uvarint(buf, t)
			if n == 0 {
				break
			}
			t += n
			l := serialLen(st)
			if l < 0 {
				break
			}
			if p >= off && p < off+l {
				if st >= 13 && st%2 == 1 && off+l <= len(buf) {
					return off, off + l, true
				}
				return 0, 0, false
			}
			off += l
		}
	}
	return 0, 0, false
}

// serialLen is the byte length of a SQLite record value of serial type st.
func serialLen(st int64) int {
	switch {
	case st >= 0 && st <= 4:
		return int(st)
	case st == 5:
		return 6
	case st == 6 || st == 7:
		return 8
	case st == 8 || st == 9:
		return 0
	case st >= 12:
		return int((st - 12) / 2)
	}
	return -1
}

// uvarint decodes a SQLite big-endian varint at buf[i]; n is 0 on failure.
func uvarint(buf []byte, i int) (int64, int) {
	var v int64
	for k := 0; k < 9; k++ {
		if i+k >= len(buf) {
			return 0, 0
		}
		c := buf[i+k]
		if k == 8 {
			return v<<8 | int64(c), 9
		}
		v = v<<7 | int64(c&0x7F)
		if c < 0x80 {
			return v, k + 1
		}
	}
	return 0, 0
}

// leafInts checks that page (starting at a table-leaf b-tree page, header
// at page[h]) is a consistent SQLite table-leaf page — every cell's record
// header accounts exactly for its payload — and calls fn with the page
// offset and value of every integer field (serial types 1-6). Phone and
// card numbers stored as INTEGER are binary on disk; only this finds them.
// It returns false, calling nothing, when the page is not consistent.
func leafInts(page []byte, h int, fn func(off int, v int64)) bool {
	if h+8 > len(page) || page[h] != 0x0D {
		return false
	}
	nc := int(binary.BigEndian.Uint16(page[h+3:]))
	cs := int(binary.BigEndian.Uint16(page[h+5:]))
	if cs == 0 {
		cs = 65536
	}
	if nc == 0 || nc > 8192 || h+8+2*nc > cs || h+8+2*nc > len(page) || page[h+7] > 64 {
		return false
	}
	type field struct {
		off int
		st  int64
	}
	var fields []field
	for c := range nc {
		cp := int(binary.BigEndian.Uint16(page[h+8+2*c:]))
		if cp < cs || cp >= len(page) {
			return false
		}
		plen, n := uvarint(page, cp)
		if n == 0 || plen <= 0 || plen > 4096 {
			return false // overflowing or absurd payloads: not checked here
		}
		q := cp + n
		if _, n = uvarint(page, q); n == 0 {
			return false
		}
		body := q + n
		if body+int(plen) > len(page) {
			return false
		}
		hs, n := uvarint(page, body)
		if n == 0 || hs < int64(n) || hs > plen {
			return false
		}
		off := body + int(hs)
		for t := body + n; t < body+int(hs); {
			st, m := uvarint(page, t)
			if m == 0 || st == 10 || st == 11 {
				return false
			}
			t += m
			if t > body+int(hs) {
				return false
			}
			if st >= 1 && st <= 6 {
				fields = append(fields, field{off, st})
			}
			off += serialLen(st)
		}
		if off != body+int(plen) {
			return false
		}
	}
	for _, f := range fields {
		l := serialLen(f.st)
		var v int64
		for _, b := range page[f.off : f.off+l] {
			v = v<<8 | int64(b)
		}
		if l < 8 && page[f.off]&0x80 != 0 { // sign-extend
			v -= 1 << (8 * l)
		}
		fn(f.off, v)
	}
	return true
}

// intIdentifier classifies an INTEGER from a record: a Chinese mobile
// number or a Luhn-valid card number, else nothing.
func intIdentifier(v int64) (identity.Hit, bool) {
	if v <= 0 {
		return identity.Hit{}, false
	}
	d := strconv.FormatInt(v, 10)
	if len(d) == 11 {
		if p, r := identity.NormalizePhone("+86" + d); r == identity.Valid {
			return identity.Hit{Kind: identity.Phone, Value: p}, true
		}
	}
	if len(d) >= 13 && len(d) <= 19 && d[0] >= '2' && d[0] <= '6' {
		if c, r := identity.NormalizeBankCard(d); r == identity.Valid {
			return identity.Hit{Kind: identity.BankCard, Value: c}, true
		}
	}
	return identity.Hit{}, false
}

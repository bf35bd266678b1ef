package scan

import (
	"encoding/binary"
	"strconv"

	"github.com/evidx/evidx/ingest/identity"
)

// hit is one identifier found in a text buffer: [start, end) in that
// buffer, its kind and canonical value.
type hit struct {
	start, end int
	kind       identity.Kind
	value      string
}

// Length limits (bytes) of the parts of an address, RFC 5321 §4.5.3.1.
const (
	maxLocal  = 64
	maxDomain = 253
	maxLabel  = 63
	maxTLD    = 24
	// lookAround is how far a finder may look outside the feature it
	// reports; block margins must exceed it so block edges change nothing.
	lookAround = 400
)

const (
	cDigit = 1 << iota
	cLower
	cUpper
	cLocal  // may appear in an address local part
	cDomain // may appear in a domain
	cSep    // separator between digit groups
	cStart  // may start a numeric token
	cBin    // control byte: never in text, common in record headers
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cLocal | cDomain | cStart
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cLower | cLocal | cDomain
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= cUpper | cLocal | cDomain
	}
	for _, c := range "._%+-" {
		t[c] |= cLocal
	}
	t['.'] |= cDomain
	t['-'] |= cDomain
	t[' '] |= cSep
	t['-'] |= cSep
	t['.'] |= cSep
	t['+'] |= cStart
	t['('] |= cStart
	for c := 0; c < 0x20; c++ {
		if c != '\t' && c != '\n' && c != '\r' {
			t[c] |= cBin
		}
	}
	return t
}()

func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isAlpha(c byte) bool { return class[c]&(cLower|cUpper) != 0 }

// fieldFunc returns the bounds [lo, hi) of the record field holding
// position p of buf when buf there is a recognisable structure (a SQLite
// table-leaf cell), or ok=false.
type fieldFunc func(buf []byte, p int) (lo, hi int, ok bool)

// findEmail examines the '@' at buf[at] and returns the address around it.
// Local part: up to 64 address characters to the left, no leading dot or
// "..". Domain: labels of letters, digits and '-', at least two, the last
// (TLD) alphabetic: a TLD glued to following digits or a capitalised word
// ("example.com13800138000", "example.comAlice", fields a SQLite record
// stores without separators) is cut where the letters end, and version
// strings like "fips140@v1.0.0" are rejected. field, if set, clips the
// address to the record field that holds the '@'.
func findEmail(buf []byte, at int, field fieldFunc) (hit, bool) {
	h, ok := emailIn(buf, at, 0, len(buf))
	if !ok || field == nil {
		return h, ok
	}
	// Only a plausible address pays for the record-structure probe.
	if lo, hi, ok := field(buf, at); ok {
		return emailIn(buf, at, lo, hi)
	}
	return h, true
}

// emailIn finds the address around buf[at] within buf[flo:fhi].
func emailIn(buf []byte, at, flo, fhi int) (hit, bool) {
	l := at
	for l > flo && at-l < maxLocal && class[buf[l-1]]&cLocal != 0 {
		l--
	}
	for l < at && (buf[l] == '.' || buf[l] == '-' || buf[l] == '+') {
		l++
	}
	if l == at {
		return hit{}, false
	}
	// The local part must not continue past the length limit.
	if l > flo && class[buf[l-1]]&cLocal != 0 && at-l >= maxLocal {
		return hit{}, false
	}
	for i := l; i < at-1; i++ {
		if buf[i] == '.' && buf[i+1] == '.' {
			return hit{}, false
		}
	}
	if at-1 >= l && buf[at-1] == '.' {
		return hit{}, false
	}
	// Domain labels.
	r := at + 1
	labels := 0
	lastLabel := r
	for {
		s := r
		for r < fhi && r-at <= maxDomain && class[buf[r]]&(cLower|cUpper|cDigit) != 0 || r < fhi && r > s && buf[r] == '-' {
			r++
		}
		if r == s || r-s > maxLabel || buf[s] == '-' || buf[r-1] == '-' {
			if labels >= 2 && r == s {
				r = s - 1 // drop the trailing dot
				break
			}
			return hit{}, false
		}
		labels++
		lastLabel = s
		if r+1 < fhi && buf[r] == '.' && class[buf[r+1]]&(cLower|cUpper|cDigit) != 0 {
			r++
			continue
		}
		break
	}
	if labels < 2 {
		return hit{}, false
	}
	// TLD: letters only; cut glued digits or a capitalised word.
	t := lastLabel
	for t < r && isAlpha(buf[t]) {
		if t > lastLabel && class[buf[t]]&cUpper != 0 && class[buf[t-1]]&cLower != 0 {
			break
		}
		t++
	}
	if !knownTLD(buf[lastLabel:t]) {
		return hit{}, false
	}
	// The name before the TLD: at least two characters in all.
	if lastLabel-(at+1) < 3 {
		return hit{}, false
	}
	if t < r && buf[t] == '-' {
		return hit{}, false
	}
	r = t
	v, res := identity.NormalizeEmail(string(buf[l:r]))
	if res != identity.Valid {
		return hit{}, false
	}
	return hit{start: l, end: r, kind: identity.Email, value: v}, true
}

// group is a run of digits in a numeric token.
type group struct {
	s, e int
	sep  byte // separator before this group (0 for the first)
}

// maxGroups bounds how many digit groups one token may hold.
const maxGroups = 8

// findNumbers parses the numeric token starting at buf[i] (a digit, '+' or
// '(' not preceded by a digit or a digit and separator) and returns the
// identifiers in it and the token end. Digits of an identifier are never
// part of a longer digit run: groups are maximal runs, and an identifier is
// made of whole groups in the layouts people write (3-4-4 mobiles, 4-4-4-4
// cards, 6-8-4 IDs), '.' joining groups only in a full layout.
func findNumbers(buf []byte, i int, out []hit) ([]hit, int) {
	n := len(buf)
	start := i
	plus, cc86 := false, false
	switch {
	case buf[i] == '+':
		plus = true
		i++
	case buf[i] == '(':
		// (+86) (86) (0086) before a mobile number.
		j := i + 1
		if j < n && buf[j] == '+' {
			j++
		}
		switch {
		case j+3 <= n && string(buf[j:j+3]) == "86)":
			i = j + 3
		case j+5 <= n && string(buf[j:j+5]) == "0086)":
			i = j + 5
		default:
			return out, i + 1
		}
		cc86 = true
		for i < n && (buf[i] == ' ' || buf[i] == '-') {
			i++
		}
	}
	if i >= n || !isDigit(buf[i]) {
		return out, max(i, start+1)
	}
	var gs [maxGroups]group
	k := 0
	var sep byte
	for i < n && k < maxGroups {
		s := i
		for i < n && isDigit(buf[i]) {
			i++
		}
		gs[k] = group{s, i, sep}
		k++
		if i+1 < n && class[buf[i]]&cSep != 0 && isDigit(buf[i+1]) {
			sep = buf[i]
			i++
			continue
		}
		break
	}
	end := i
	if k == maxGroups { // swallow the rest of an endless run
		for end < n && (isDigit(buf[end]) || class[buf[end]]&cSep != 0 && end+1 < n && isDigit(buf[end+1])) {
			end++
		}
	}
	// ID check character.
	xAt := -1
	if end < n && (buf[end] == 'X' || buf[end] == 'x') && gs[k-1].e-gs[k-1].s == 17 && (end+1 >= n || !isAlpha(buf[end+1]) && !isDigit(buf[end+1])) {
		xAt = end
		end++
	}
	// A token glued to an address or a decimal fraction is not a number.
	if end < n && (buf[end] == '@' || buf[end] == '.' && end+1 < n && isDigit(buf[end+1])) {
		return out, end
	}
	if start > 0 && buf[start-1] == '.' && start > 1 && isDigit(buf[start-2]) {
		return out, end
	}
	glen := func(j int) int { return gs[j].e - gs[j].s }
	// Cards and IDs glued to letters are fragments of hex or base64 runs.
	alnum := func(c byte) bool { return class[c]&(cDigit|cLower|cUpper) != 0 }
	free := (start == 0 || !alnum(buf[start-1])) && (end >= n || !alnum(buf[end]))
	// Between two hex letters the digits are part of a hex string.
	hexLetter := func(c byte) bool { return c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	inHex := start > 0 && hexLetter(buf[start-1]) && end < n && hexLetter(buf[end])
	// A lone group joined by '.' to its neighbours is part of something
	// else (a version, an address, a decimal).
	loneOK := func(j int) bool {
		return gs[j].sep != '.' && (j+1 >= k || gs[j+1].sep != '.')
	}
	if plus && !cc86 {
		// "+<country> <number>": the whole token is one phone number.
		// Take the longest run of groups that is a valid number.
		if xAt < 0 {
			for g := k; g >= 1; g-- {
				if g < k && gs[g].sep == '.' {
					continue
				}
				if v, r := identity.NormalizePhone(string(buf[start:gs[g-1].e])); r == identity.Valid {
					return append(out, hit{start, gs[g-1].e, identity.Phone, v}), end
				}
			}
		}
		return out, end
	}
	for j := 0; j < k; {
		// Resident ID: 18 characters, or 6-8-4 groups.
		if free && (j == k-1 && glen(j) == 17 && xAt >= 0 || glen(j) == 18 && loneOK(j)) {
			e := gs[j].e
			if xAt >= 0 && j == k-1 {
				e = xAt + 1
			}
			if buf[gs[j].s] >= '1' && buf[gs[j].s] <= '8' {
				if v, r := identity.NormalizeCNID(string(buf[gs[j].s:e])); r == identity.Valid {
					out = append(out, hit{gs[j].s, e, identity.CNID, v})
					j++
					continue
				}
			}
		}
		// Chinese mobile, optionally after 86 / 0086 (or "(+86)" / "+86").
		s := j
		if j+1 < k && (string(buf[gs[j].s:gs[j].e]) == "86" || string(buf[gs[j].s:gs[j].e]) == "0086") && gs[j+1].sep != '.' {
			s = j + 1
		}
		if m, ok := mobileAt(buf, gs[:k], s, loneOK); ok && m.d[0] == '1' && m.d[1] >= '3' && !inHex {
			from := gs[j].s
			if cc86 && j == 0 || plus && j == 0 {
				from = start
			}
			if s == j+1 || cc86 && j == 0 || len(m.d) == 11 {
				if v, r := identity.NormalizePhone("+86" + m.d); r == identity.Valid {
					out = append(out, hit{from, gs[m.last].e, identity.Phone, v})
					j = m.last + 1
					continue
				}
			}
		}
		if glen(j) == 13 && loneOK(j) && string(buf[gs[j].s:gs[j].s+2]) == "86" || glen(j) == 15 && loneOK(j) && string(buf[gs[j].s:gs[j].s+4]) == "0086" {
			if v, r := identity.NormalizePhone(string(buf[gs[j].s:gs[j].e])); r == identity.Valid {
				out = append(out, hit{gs[j].s, gs[j].e, identity.Phone, v})
				j++
				continue
			}
		}
		// Bank card: 13-19 digits alone, or 4-4-4-4(-1..3) / 4-6-5 groups
		// with one separator; issuer digit 2-6.
		if c, last, ok := cardAt(buf, gs[:k], j, loneOK); ok && free {
			if v, r := identity.NormalizeBankCard(c); r == identity.Valid {
				if _, idr := identity.NormalizeCNID(c); idr != identity.Valid {
					out = append(out, hit{gs[j].s, gs[last].e, identity.BankCard, v})
					j = last + 1
					continue
				}
			}
		}
		j++
	}
	return out, end
}

type mobile struct {
	d    string
	last int
}

// mobileAt reads an 11-digit mobile number from groups starting at j: one
// group of 11, 3-8 or 7-4, or 3-4-4 with one separator kind.
func mobileAt(buf []byte, gs []group, j int, loneOK func(int) bool) (mobile, bool) {
	l := func(x int) int { return gs[x].e - gs[x].s }
	if j >= len(gs) {
		return mobile{}, false
	}
	if l(j) == 11 && loneOK(j) {
		return mobile{string(buf[gs[j].s:gs[j].e]), j}, true
	}
	// 3-8 and 7-4 with a space or dash.
	if j+1 < len(gs) && (l(j) == 3 && l(j+1) == 8 || l(j) == 7 && l(j+1) == 4) && gs[j+1].sep != '.' &&
		(j+2 >= len(gs) || gs[j+2].sep == ' ') {
		return mobile{string(buf[gs[j].s:gs[j].e]) + string(buf[gs[j+1].s:gs[j+1].e]), j + 1}, true
	}
	if j+2 < len(gs) && l(j) == 3 && l(j+1) == 4 && l(j+2) == 4 && gs[j+1].sep == gs[j+2].sep &&
		(j+3 >= len(gs) || gs[j+3].sep != gs[j+1].sep || gs[j+3].sep == ' ') {
		d := string(buf[gs[j].s:gs[j].e]) + string(buf[gs[j+1].s:gs[j+1].e]) + string(buf[gs[j+2].s:gs[j+2].e])
		return mobile{d, j + 2}, true
	}
	return mobile{}, false
}

// cardAt reads a bank card number from groups starting at j.
func cardAt(buf []byte, gs []group, j int, loneOK func(int) bool) (string, int, bool) {
	l := func(x int) int { return gs[x].e - gs[x].s }
	issuer := func(c byte) bool { return c >= '2' && c <= '6' }
	if !issuer(buf[gs[j].s]) {
		return "", 0, false
	}
	if l(j) >= 13 && l(j) <= 19 && loneOK(j) {
		return string(buf[gs[j].s:gs[j].e]), j, true
	}
	if l(j) != 4 || j+2 >= len(gs) || gs[j+1].sep == '.' {
		return "", 0, false
	}
	sep := gs[j+1].sep
	// 4-6-5 (American Express layout).
	if l(j+1) == 6 && l(j+2) == 5 && gs[j+2].sep == sep {
		return string(buf[gs[j].s:gs[j].e]) + string(buf[gs[j+1].s:gs[j+1].e]) + string(buf[gs[j+2].s:gs[j+2].e]), j + 2, true
	}
	// 4-4-4-4 and an optional short tail.
	last := j
	d := string(buf[gs[j].s:gs[j].e])
	for x := j + 1; x < len(gs) && gs[x].sep == sep && len(d) < 16; x++ {
		if l(x) != 4 {
			return "", 0, false
		}
		d += string(buf[gs[x].s:gs[x].e])
		last = x
	}
	if len(d) != 16 {
		return "", 0, false
	}
	if x := last + 1; x < len(gs) && gs[x].sep == sep && l(x) <= 3 {
		d += string(buf[gs[x].s:gs[x].e])
		last = x
	}
	return d, last, true
}

// tokenStart reports whether buf[i] may start a numeric token: a digit, '+'
// or '(' that is not inside a digit run or a separated group sequence.
func tokenStart(buf []byte, i int) bool {
	c := buf[i]
	if class[c]&cStart == 0 {
		return false
	}
	if c == '+' && (i+1 >= len(buf) || !isDigit(buf[i+1])) {
		return false
	}
	if i == 0 {
		return true
	}
	p := buf[i-1]
	if isDigit(p) || p == '+' || p == '(' && c == '+' {
		return false
	}
	if class[p]&cSep != 0 && i >= 2 && isDigit(buf[i-2]) {
		return false
	}
	if (p == ' ' || p == '-') && i >= 2 && buf[i-2] == ')' && i >= 4 && string(buf[i-4:i-2]) == "86" {
		return false // continuation of "(+86) "
	}
	if p == ')' && i >= 3 && string(buf[i-3:i-1]) == "86" {
		return false
	}
	// Letters glued before digits: an identifier ("user13800138000") is
	// still reported, but not a hex or base64 run.
	return true
}

// sqliteField finds the SQLite table-leaf cell holding buf[p] and returns
// the bounds of its record field there. A page is recognised by its header
// (type 0x0D, cell count, content start, cell pointers in range) at a
// 512-byte multiple of the stream offset (pageBase is buf[0]'s offset
// modulo 512, so page starts line up with the image's sectors).
func sqliteField(pageBase int) fieldFunc {
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
		for i := max(0, p-lookAround+8); i < p; i++ {
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
func intIdentifier(v int64) (hit, bool) {
	if v <= 0 {
		return hit{}, false
	}
	d := strconv.FormatInt(v, 10)
	if len(d) == 11 {
		if p, r := identity.NormalizePhone("+86" + d); r == identity.Valid {
			return hit{kind: identity.Phone, value: p}, true
		}
	}
	if len(d) >= 13 && len(d) <= 19 && d[0] >= '2' && d[0] <= '6' {
		if c, r := identity.NormalizeBankCard(d); r == identity.Valid {
			return hit{kind: identity.BankCard, value: c}, true
		}
	}
	return hit{}, false
}

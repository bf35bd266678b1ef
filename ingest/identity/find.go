package identity

import (
	"bytes"
	"strings"
)

// Hit is one identifier found in a text buffer: [start, end) in that
// buffer, its kind and canonical value.
type Hit struct {
	Start, End int
	Kind       Kind
	Value      string
	Invalid    bool // counted as an invalid value of Kind, never an identity
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

// LookAround is how far FindText looks outside the features it reports,
// and MaxLocal the longest local part of an address: callers scanning
// blocks read margins past them so block edges change nothing.
const (
	LookAround = lookAround
	MaxLocal   = maxLocal
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

// FieldFunc returns the bounds [lo, hi) of the record field holding
// position p of buf when buf there is a recognisable structure (a SQLite
// table-leaf cell), or ok=false.
type FieldFunc func(buf []byte, p int) (lo, hi int, ok bool)

// findEmail examines the '@' at buf[at] and returns the address around it.
// Local part: up to 64 address characters to the left, no leading dot or
// "..". Domain: labels of letters, digits, '-' and '_', at least two, the last
// (TLD) alphabetic: a TLD glued to following digits or a capitalised word
// ("example.com13800138000", "example.comAlice", fields a SQLite record
// stores without separators) is cut where the letters end, and version
// strings like "fips140@v1.0.0" are rejected. field, if set, clips the
// address to the record field that holds the '@'.
func findEmail(buf []byte, at int, field FieldFunc) (Hit, bool) {
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
func emailIn(buf []byte, at, flo, fhi int) (Hit, bool) {
	l := at
	for l > flo && at-l < maxLocal && class[buf[l-1]]&cLocal != 0 {
		l--
	}
	for l < at && (buf[l] == '.' || buf[l] == '-' || buf[l] == '+') {
		l++
	}
	if l == at {
		return Hit{}, false
	}
	// The local part must not continue past the length limit.
	if l > flo && class[buf[l-1]]&cLocal != 0 && at-l >= maxLocal {
		return Hit{}, false
	}
	for i := l; i < at-1; i++ {
		if buf[i] == '.' && buf[i+1] == '.' {
			return Hit{}, false
		}
	}
	if at-1 >= l && buf[at-1] == '.' {
		return Hit{}, false
	}
	// Domain labels.
	r := at + 1
	labels := 0
	lastLabel := r
	for {
		s := r
		for r < fhi && r-at <= maxDomain && class[buf[r]]&(cLower|cUpper|cDigit) != 0 || r < fhi && r > s && (buf[r] == '-' || buf[r] == '_') {
			r++
		}
		if r == s || r-s > maxLabel || buf[s] == '-' || buf[r-1] == '-' {
			if labels >= 2 && r == s {
				r = s - 1 // drop the trailing dot
				break
			}
			return Hit{}, false
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
		return Hit{}, false
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
		return Hit{}, false
	}
	// The name before the TLD: at least two characters in all.
	if lastLabel-(at+1) < 3 {
		return Hit{}, false
	}
	if t < r && buf[t] == '-' {
		return Hit{}, false
	}
	r = t
	// Run-on: an address glued to another ("a@b.comfoo@c.com", two
	// fields without a delimiter) has no knowable boundary; neither half
	// is reported rather than a bogus joined one.
	if r < fhi && buf[r] == '@' || l > flo && buf[l-1] == '@' {
		return Hit{}, false
	}
	v, res := NormalizeEmail(string(buf[l:r]))
	if res != Valid {
		return Hit{}, false
	}
	return Hit{Start: l, End: r, Kind: Email, Value: v}, true
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
func findNumbers(buf []byte, i int, today Today, out []Hit) ([]Hit, int) {
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
				if v, r := NormalizePhone(string(buf[start:gs[g-1].e])); r == Valid {
					return append(out, Hit{start, gs[g-1].e, Phone, v, false}), end
				}
			}
		}
		return out, end
	}
	for j := 0; j < k; {
		// Legacy 15-digit ID: alone it is ambiguous (an order or account
		// number), so only where the text names it just before.
		if free && glen(j) == 15 && loneOK(j) && xAt < 0 && idContext(buf, gs[j].s) {
			if v, r := NormalizeCNIDAt(string(buf[gs[j].s:gs[j].e]), today); r == Valid {
				out = append(out, Hit{gs[j].s, gs[j].e, CNID, v, false})
				j++
				continue
			}
		}
		// Resident ID: 18 characters, or 6-8-4 groups.
		if free && (j == k-1 && glen(j) == 17 && xAt >= 0 || glen(j) == 18 && loneOK(j)) {
			e := gs[j].e
			if xAt >= 0 && j == k-1 {
				e = xAt + 1
			}
			if buf[gs[j].s] >= '1' && buf[gs[j].s] <= '8' {
				v, r := NormalizeCNIDAt(string(buf[gs[j].s:e]), today)
				if r == Valid {
					out = append(out, Hit{gs[j].s, e, CNID, v, false})
					j++
					continue
				}
				// A failed check on an ID-shaped value: an invalid ID,
				// never a card or anything else.
				if r == Invalid && IDShaped(buf[gs[j].s:e]) {
					out = append(out, Hit{gs[j].s, e, CNID, "", true})
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
				if v, r := NormalizePhone("+86" + m.d); r == Valid {
					out = append(out, Hit{from, gs[m.last].e, Phone, v, false})
					j = m.last + 1
					continue
				}
			}
		}
		if glen(j) == 13 && loneOK(j) && string(buf[gs[j].s:gs[j].s+2]) == "86" || glen(j) == 15 && loneOK(j) && string(buf[gs[j].s:gs[j].s+4]) == "0086" {
			if v, r := NormalizePhone(string(buf[gs[j].s:gs[j].e])); r == Valid {
				out = append(out, Hit{gs[j].s, gs[j].e, Phone, v, false})
				j++
				continue
			}
		}
		// Bank card: 13-16 or 19 digits alone, or 4-4-4-4(-1..3) / 4-6-5 groups
		// with one separator; issuer digit 2-6.
		if c, last, ok := cardAt(buf, gs[:k], j, loneOK); ok && free {
			if v, r := NormalizeBankCard(c); r == Valid {
				if _, idr := NormalizeCNIDAt(c, today); idr != Valid {
					out = append(out, Hit{gs[j].s, gs[last].e, BankCard, v, false})
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
	// A lone run of 17 or 18 digits is not taken: cards in circulation are
	// 13-16 or 19 digits (17 and 18 are rare issues), while 18-digit runs
	// in leaks are ID numbers with a wrong check, order and serial numbers,
	// one in ten of which passes Luhn. A column a header names as cards
	// still takes them (NormalizeBankCard).
	if n := l(j); (n >= 13 && n <= 16 || n == 19) && loneOK(j) {
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

// idContextLen is how far before a 15-digit number idContext looks for
// a word naming it.
const idContextLen = 32

// idWords name a resident identity number in text ("身份证", "sfz", "ID",
// a column-like "id_no", matched without regard to ASCII case).
var idWords = []string{"身份证", "sfz", "id", "id_no", "idno", "id_card", "idcard"}

// idContext reports whether one of idWords ends at most idContextLen bytes
// before buf[i], separated from it by punctuation or spaces only (the
// word itself not ending a longer ASCII word: "paid" is no "ID").
func idContext(buf []byte, i int) bool {
	for j := i; j > 0 && i-j <= idContextLen; j-- {
		c := buf[j-1]
		if c < 0x80 && isAlpha(c) || c >= 0x80 {
			for _, w := range idWords {
				if j >= len(w) && strings.EqualFold(string(buf[j-len(w):j]), w) {
					a := j - len(w)
					return a == 0 || buf[a-1] >= 0x80 || !isAlpha(buf[a-1]) || w[0] >= 0x80
				}
			}
			if c < 0x80 {
				return false // another word in between
			}
			continue // UTF-8 text (a colon "：", an "号") may come between
		}
		if isDigit(c) {
			return false
		}
	}
	return false
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

// FindText finds the identifiers starting in buf[lo:hi) of 8-bit text (the
// finder of every path: dataset text lines, count, and the raw-byte scan),
// looking at most LookAround bytes outside. It appends Valid hits, and
// Invalid ones for 18-character values shaped like a resident identity
// number whose check fails (they are counted, never identities). field, if
// set, gives the bounds of a binary record's field around a position, so
// fields stored without separators are not read as one value.
func FindText(buf []byte, lo, hi int, today Today, field FieldFunc, out []Hit) []Hit {
	// Addresses: every '@' whose address could start in [lo, hi).
	end := min(len(buf), hi+maxLocal+1)
	for i := lo; i < end; {
		j := bytes.IndexByte(buf[i:end], '@')
		if j < 0 {
			break
		}
		at := i + j
		if h, ok := findEmail(buf, at, field); ok && h.Start >= lo && h.Start < hi {
			out = append(out, h)
		}
		i = at + 1
	}
	// Numbers. Near a control byte a token may sit in a SQLite record
	// whose fields are glued together, and is parsed within its field (a
	// name's digits and a phone's run on). nearBin looks back lazily: only
	// long digit runs ask.
	nearBin := func(i int) bool {
		for j := i - 1; j >= 0 && j > i-lookAround+8; j-- {
			if class[buf[j]]&cBin != 0 {
				return true
			}
		}
		return false
	}
	force := -1
	for i := lo; i < hi; i++ {
		if class[buf[i]]&cStart == 0 {
			continue
		}
		if i != force && !tokenStart(buf, i) {
			// At a block start, a glued run may begin a record field here.
			if i != lo || field == nil || !isDigit(buf[i]) || !nearBin(i) {
				continue
			}
			if flo, _, ok := field(buf, i); !ok || flo != i {
				continue
			}
		}
		// Most tokens in binary data are a digit or two: skip any token
		// with fewer digits than the shortest phone number.
		if d, e := tokenDigits(buf, i); d < 7 {
			if e > i+1 {
				i = e - 1
			}
			continue
		}
		if field != nil && digitRun(buf, i) > 11 && nearBin(i) {
			if flo, fhi, ok := field(buf, i); ok {
				n0 := len(out)
				var e int
				out, e = findNumbers(buf[flo:fhi], i-flo, today, out)
				for k := n0; k < len(out); k++ {
					out[k].Start += flo
					out[k].End += flo
				}
				e += flo
				if e == fhi && fhi < len(buf) && isDigit(buf[fhi]) {
					force = fhi // the next field starts with digits
				}
				if e > i+1 {
					i = e - 1
				}
				continue
			}
		}
		var e int
		out, e = findNumbers(buf, i, today, out)
		if e > i+1 {
			i = e - 1
		}
	}
	return out
}

// tokenDigits counts the digits of the numeric token at buf[i] (digit
// groups joined by single separators, after an optional "+" or "(+86)")
// and returns where the digits end; findNumbers never reports from a token
// with fewer than 7.
func tokenDigits(buf []byte, i int) (int, int) {
	if buf[i] == '+' || buf[i] == '(' {
		return 7, i + 1 // rare: let findNumbers decide
	}
	d := 0
	for i < len(buf) {
		if isDigit(buf[i]) {
			d++
			i++
			continue
		}
		if d < 7 && i+1 < len(buf) && class[buf[i]]&cSep != 0 && isDigit(buf[i+1]) {
			i++
			continue
		}
		break
	}
	return d, i
}

// digitRun is the number of digits from buf[i] on (after a leading '+').
func digitRun(buf []byte, i int) int {
	if i < len(buf) && buf[i] == '+' {
		i++
	}
	n := 0
	for i+n < len(buf) && isDigit(buf[i+n]) {
		n++
	}
	return n
}

// tlds lists the top-level domains an address found in raw bytes may end
// in: every ISO 3166 country-code TLD and the common generic ones. Random
// bytes satisfy "letters '.' letters" every few megabytes; a known TLD cuts
// that to about one false address per gigabyte of random data, while the
// addresses of leaked datasets (mostly .com, .cn, .net, ...) all pass.
var tlds = func() map[string]bool {
	cc := "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz " +
		"ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr " +
		"ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp " +
		"ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz " +
		"na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw " +
		"sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz " +
		"ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
	g := "com net org edu gov mil int info biz name pro mobi asia tel travel jobs museum aero coop cat post xxx " +
		"xyz top site online club shop store vip app dev io tech cloud email live life world today link work " +
		"ltd group space website fun wang ink ren kim cool xin beer art blog news media" // common new gTLDs
	m := map[string]bool{}
	for _, t := range strings.Fields(cc + " " + g) {
		m[t] = true
	}
	return m
}()

// knownTLD reports whether b (ASCII letters, all lower- or all upper-case)
// may end an address: a listed TLD, or any of four letters or more (random
// bytes almost never hold four letters of one case; new generic TLDs and
// the reserved .test, .example, .local are long).
func knownTLD(b []byte) bool {
	if len(b) < 2 || len(b) > maxTLD {
		return false
	}
	long := len(b) >= 4
	up := b[0] >= 'A' && b[0] <= 'Z'
	var s [maxTLD]byte
	for i, c := range b {
		if (c >= 'A' && c <= 'Z') != up {
			return false
		}
		s[i] = c | 0x20
	}
	return long || tlds[string(s[:len(b)])]
}

package identity

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
)

// More kinds and record attributes. Name and Address are attributes of a
// record, never identities on their own; they exist so column roles can
// say "this column is a name" and keep it away from value sniffing.
const (
	Name    Kind = "name"
	Address Kind = "address"
)

// kinds lists the identity kinds in a fixed order (the order of counters
// in arrays indexed by KindIndex).
var kinds = [...]Kind{Phone, Email, CNID, BankCard}

// Kinds returns the identity kinds evidx counts, in a fixed order (a new
// slice each call).
func Kinds() []Kind { return append([]Kind(nil), kinds[:]...) }

// KindIndex returns the position of k in Kinds(), or -1.
func KindIndex(k Kind) int {
	switch k {
	case Phone:
		return 0
	case Email:
		return 1
	case CNID:
		return 2
	case BankCard:
		return 3
	}
	return -1
}

// IsIdentity reports whether k is a kind that is counted as an identity.
func (k Kind) IsIdentity() bool { return KindIndex(k) >= 0 }

// Result is the verdict of a normaliser on one value.
type Result uint8

const (
	// NotKind: the value does not look like this kind at all.
	NotKind Result = iota
	// Invalid: the value looks like this kind but fails its validation
	// (check digit, date, prefix); it is counted, never an identity.
	Invalid
	// Valid: the value is an identity; the returned string is canonical.
	Valid
)

// MaxValueLen is the longest canonical value (bytes) accepted: longer
// values are Invalid. It keeps dedupe records' length in one byte.
const MaxValueLen = 254

// Normalize applies the normaliser of kind k to s.
func Normalize(k Kind, s string) (string, Result) {
	return NormalizeAt(k, s, TodayOf(time.Now()))
}

// NormalizeAt is Normalize with dates checked against today.
func NormalizeAt(k Kind, s string, today Today) (string, Result) {
	switch k {
	case Phone:
		return NormalizePhone(s)
	case Email:
		return NormalizeEmail(s)
	case CNID:
		return NormalizeCNIDAt(s, today)
	case BankCard:
		return NormalizeBankCard(s)
	}
	return "", NotKind
}

// isASCII reports whether s holds only 7-bit bytes (NFKC is then identity).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Fold applies the rules every value gets: Unicode NFKC (folding full-width
// digits and ＠) and trimming of white space. ASCII input is not copied.
func Fold(s string) string {
	if !isASCII(s) {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		s = norm.NFKC.String(s)
	}
	return strings.TrimSpace(s)
}

// isMobile11 reports whether d is 11 ASCII digits matching 1[3-9]\d{9}.
func isMobile11(d []byte) bool {
	if len(d) != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9' {
		return false
	}
	for _, c := range d[2:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// NormalizePhone returns the canonical phone number: a Chinese mobile as
// "+86" and 11 digits (decorations +86, 86, 0086, (+86), and spaces, dashes,
// dots and parentheses between digits accepted); another number written
// with a leading "+" and valid for its country as E.164. Values of 7 to 20
// digits that are neither are Invalid; anything else is NotKind.
func NormalizePhone(s string) (string, Result) {
	var buf [16]byte
	b, r := AppendPhone(buf[:0], s)
	if r != Valid {
		return "", r
	}
	return string(b), r
}

// AppendPhone is NormalizePhone appending the canonical form to dst (so
// callers can keep many values in one buffer); dst is returned unchanged
// unless the result is Valid.
func AppendPhone(dst []byte, s string) ([]byte, Result) {
	s = Fold(s)
	if s == "" {
		return dst, NotKind
	}
	var buf [24]byte
	d := buf[:0]
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if len(d) == cap(buf) {
				return dst, NotKind
			}
			d = append(d, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+' && len(d) == 0 && !plus:
			plus = true
		default:
			return dst, NotKind
		}
	}
	if len(d) < 5 {
		return dst, NotKind
	}
	var m []byte
	switch {
	case plus:
		if len(d) == 13 && d[0] == '8' && d[1] == '6' {
			m = d[2:]
		}
	case len(d) == 11:
		m = d
	case len(d) == 13 && d[0] == '8' && d[1] == '6':
		m = d[2:]
	case len(d) == 15 && string(d[:4]) == "0086":
		m = d[4:]
	}
	if m != nil && isMobile11(m) {
		dst = append(dst, "+86"...)
		return append(dst, m...), Valid
	}
	if plus {
		if len(d) > 15 {
			return dst, Invalid
		}
		num, err := phonenumbers.Parse("+"+string(d), "")
		if err == nil && phonenumbers.IsValidNumber(num) {
			return append(dst, phonenumbers.Format(num, phonenumbers.E164)...), Valid
		}
		return dst, Invalid
	}
	if len(d) >= 7 && len(d) <= 20 {
		return dst, Invalid
	}
	return dst, NotKind
}

// hasSpace reports ASCII white space or an ideographic space in s.
func hasSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n', '\v', '\f':
			return true
		case 0xE3: // first byte of U+3000 in UTF-8
			if strings.HasPrefix(s[i:], "\u3000") {
				return true
			}
		}
	}
	return false
}

// NormalizeEmail lower-cases the whole address; it must have exactly one
// "@", a non-empty local part and a domain with a dot, and no spaces ("_"
// is allowed in the domain, as mail systems accept it). A "mailto:" scheme
// and enclosing punctuation ("(", "<", quotes, trailing ")", ">", ",", ".",
// ";") are not part of the address: "(mailto:x@example.com)" is
// x@example.com. Values with an "@" that fail are Invalid; values without
// are NotKind.
func NormalizeEmail(s string) (string, Result) {
	s = Fold(s)
	if strings.IndexByte(s, '@') < 0 { // stripping never adds one
		return "", NotKind
	}
	s = stripEmail(s)
	at := strings.IndexByte(s, '@')
	if at == 0 || strings.IndexByte(s[at+1:], '@') >= 0 || len(s) > MaxValueLen {
		return "", Invalid
	}
	dom := s[at+1:]
	// Spaces are refused in the local part too: unquoted, no address has
	// them, and free text around an "@" must not become an address.
	if strings.IndexByte(dom, '.') < 0 || hasSpace(s) {
		return "", Invalid
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s), Valid
		} else if c >= 0x80 {
			return strings.ToLower(s), Valid
		}
	}
	return s, Valid
}

// emailOpen and emailClose are the punctuation that may enclose an address
// in text or in a field ("<x@y.com>", "(mailto:x@y.com)", "'x@y.com',").
const (
	emailOpen  = "(<[{\"'`"
	emailClose = ")>]}\"'`,.;:"
)

var emailOpenSet, emailCloseSet = byteSet(emailOpen), byteSet(emailClose)

func byteSet(chars string) (set [256]bool) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return set
}

// stripEmail removes enclosing punctuation and a "mailto:" scheme (any
// case) around an address, repeatedly ("(<mailto:x@y.com>)").
func stripEmail(s string) string {
	for range 8 {
		if s == "" || !emailOpenSet[s[0]] && !emailCloseSet[s[len(s)-1]] && s[0] != 'm' && s[0] != 'M' &&
			s[0] > ' ' && s[len(s)-1] > ' ' && s[0] < 0x80 && s[len(s)-1] < 0x80 {
			return s // nothing to strip: the common case, without allocating
		}
		t := strings.TrimLeft(s, emailOpen)
		t = strings.TrimRight(t, emailClose)
		if len(t) >= 7 && strings.EqualFold(t[:7], "mailto:") {
			t = t[7:]
		}
		t = strings.TrimSpace(t)
		if t == s {
			break
		}
		s = t
	}
	return s
}

// cnidWeights are the ISO 7064 MOD 11-2 weights of the first 17 digits.
var cnidWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// CNIDCheck returns the check character of a resident identity number
// whose first 17 characters are the ASCII digits in d17.
func CNIDCheck(d17 []byte) byte {
	sum := 0
	for i, w := range cnidWeights {
		sum += int(d17[i]-'0') * w
	}
	return "10X98765432"[sum%11]
}

// Today is a date as the number YYYYMMDD, the form birth dates are
// compared in.
type Today int

// TodayOf returns t's date (UTC) as a Today.
func TodayOf(t time.Time) Today {
	t = t.UTC()
	return Today(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

// validBirth reports whether the 8 ASCII digits YYYYMMDD are a real date
// from 1800 on and not after today.
func validBirth(b []byte, today Today) bool {
	y := int(b[0]-'0')*1000 + int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0')
	m := int(b[4]-'0')*10 + int(b[5]-'0')
	d := int(b[6]-'0')*10 + int(b[7]-'0')
	if y < 1800 || m < 1 || m > 12 || d < 1 {
		return false
	}
	dim := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		dim = 29
	}
	if d > dim {
		return false
	}
	return Today(y*10000+m*100+d) <= today
}

// NormalizeCNID returns the canonical 18-character resident identity number
// (check character X upper-cased). A 15-digit legacy number becomes 18
// digits (19 inserted before the year, check computed). The MOD 11-2 check
// and the birth date (real, not in the future) must hold, else Invalid.
func NormalizeCNID(s string) (string, Result) {
	return NormalizeCNIDAt(s, TodayOf(time.Now()))
}

// NormalizeCNIDAt is NormalizeCNID with birth dates checked against today
// (callers normalising many values take the date once).
func NormalizeCNIDAt(s string, now Today) (string, Result) {
	s = Fold(s)
	var out [18]byte
	switch len(s) {
	case 18:
		for i := 0; i < 17; i++ {
			if s[i] < '0' || s[i] > '9' {
				return "", NotKind
			}
			out[i] = s[i]
		}
		c := s[17]
		if c == 'x' {
			c = 'X'
		}
		if (c < '0' || c > '9') && c != 'X' {
			return "", NotKind
		}
		out[17] = c
		if CNIDCheck(out[:17]) != c || !validBirth(out[6:14], now) {
			return "", Invalid
		}
		if c == s[17] {
			return s, Valid // already canonical: no copy
		}
		return string(out[:]), Valid
	case 15:
		for i := 0; i < 15; i++ {
			if s[i] < '0' || s[i] > '9' {
				return "", NotKind
			}
		}
		copy(out[:6], s[:6])
		out[6], out[7] = '1', '9'
		copy(out[8:17], s[6:15])
		if !validBirth(out[6:14], now) {
			return "", Invalid
		}
		out[17] = CNIDCheck(out[:17])
		return string(out[:]), Valid
	}
	return "", NotKind
}

// NormalizeBankCard returns the digits of a bank card number (spaces and
// dashes between them allowed) when its issuer range (IIN) and length fit
// a card brand (CardBrand) and the Luhn check holds. A value shaped like a
// resident identity number (IDShaped) is never a card. 13 to 19 digits
// that fail are Invalid; anything else is NotKind.
func NormalizeBankCard(s string) (string, Result) {
	s = Fold(s)
	var buf [19]byte
	d := buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if len(d) == cap(buf) {
				return "", NotKind
			}
			d = append(d, c)
		case c == ' ' || c == '-':
		default:
			return "", NotKind
		}
	}
	if len(d) < 13 {
		return "", NotKind
	}
	if IDShaped(d) || CardBrand(d) == "" || !luhn(d) {
		return "", Invalid
	}
	return string(d), Valid
}

// cardRange is an issuer range: numbers whose first len(lo) digits lie in
// [lo, hi] belong to brand and have one of the lengths in lens (a bit set).
type cardRange struct {
	lo, hi string
	lens   uint32
	brand  string
}

func lens(ls ...int) uint32 {
	var m uint32
	for _, l := range ls {
		m |= 1 << l
	}
	return m
}

// cardRanges are the issuer ranges of the card brands (ISO/IEC 7812 IINs
// as the brands publish them). Maestro takes what the others leave of
// 50 and 56-69 at 12-19 digits in principle; only 5018, 5020, 5038, 5893,
// 6304, 6759, 6761-6763 are taken, since "6" alone is too weak a prefix.
var cardRanges = []cardRange{
	{"4", "4", lens(13, 16, 19), "visa"},
	{"51", "55", lens(16), "mastercard"},
	{"2221", "2720", lens(16), "mastercard"},
	{"62", "62", lens(16, 17, 18, 19), "unionpay"},
	{"34", "34", lens(15), "amex"},
	{"37", "37", lens(15), "amex"},
	{"3528", "3589", lens(16, 17, 18, 19), "jcb"},
	{"6011", "6011", lens(16, 17, 18, 19), "discover"},
	{"644", "649", lens(16, 17, 18, 19), "discover"},
	{"65", "65", lens(16, 17, 18, 19), "discover"},
	{"36", "36", lens(14, 15, 16, 17, 18, 19), "diners"},
	{"300", "305", lens(14, 15, 16, 17, 18, 19), "diners"},
	{"38", "39", lens(14, 15, 16, 17, 18, 19), "diners"},
	{"5018", "5018", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"5020", "5020", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"5038", "5038", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"5893", "5893", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"6304", "6304", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"6759", "6759", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
	{"6761", "6763", lens(13, 14, 15, 16, 17, 18, 19), "maestro"},
}

// CardBrand returns the brand whose issuer range and lengths fit the ASCII
// digits d ("visa", "unionpay", ...), or "".
func CardBrand(d []byte) string {
	for _, r := range cardRanges {
		n := len(r.lo)
		if len(d) <= n || r.lens&(1<<len(d)) == 0 {
			continue
		}
		if p := string(d[:n]); p >= r.lo && p <= r.hi {
			return r.brand
		}
	}
	return ""
}

// IDShaped reports whether d has the shape of an 18-character resident
// identity number, valid check or not: 17 digits and a digit or X, the
// first six a plausible region code (province 11-65, 71, 81, 82) and
// characters 7-14 a plausible birth date (1800-2099, month 01-12, day
// 01-31). Such a value is never taken for a bank card.
func IDShaped(d []byte) bool {
	if len(d) != 18 {
		return false
	}
	for _, c := range d[:17] {
		if c < '0' || c > '9' {
			return false
		}
	}
	if c := d[17]; (c < '0' || c > '9') && c != 'X' && c != 'x' {
		return false
	}
	prov := int(d[0]-'0')*10 + int(d[1]-'0')
	if !(prov >= 11 && prov <= 65 || prov == 71 || prov == 81 || prov == 82) {
		return false
	}
	cent := string(d[6:8])
	m := int(d[10]-'0')*10 + int(d[11]-'0')
	day := int(d[12]-'0')*10 + int(d[13]-'0')
	return (cent == "18" || cent == "19" || cent == "20") && m >= 1 && m <= 12 && day >= 1 && day <= 31
}

// luhn reports whether the ASCII digits d pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	dbl := false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if dbl {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		dbl = !dbl
	}
	return sum%10 == 0
}

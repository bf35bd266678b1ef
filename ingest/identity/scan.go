package identity

import "time"

// ScanText finds identifiers in unstructured text and calls emit for each
// candidate with its verdict (Valid with the canonical value, or Invalid).
// Candidates: e-mail addresses (around an "@"), and tokens of digits (with
// an optional leading "+", dashes inside, an ID number's trailing X) that
// are shaped like a phone number or resident identity number. Other
// numbers are ignored: free text is full of order numbers and dates.
// line must already be folded (NFKC) when it may hold full-width forms.
func ScanText(line string, emit func(k Kind, v string, r Result)) {
	ScanTextAt(line, TodayOf(time.Now()), emit)
}

// ScanTextAt is ScanText with ID birth dates checked against today.
func ScanTextAt(line string, today Today, emit func(k Kind, v string, r Result)) {
	n := len(line)
	for i := 0; i < n; {
		c := line[i]
		switch {
		case c == '@':
			// Expand left and right over address characters.
			l := i
			for l > 0 && isLocalChar(line[l-1]) {
				l--
			}
			r := i + 1
			for r < n && isDomainChar(line[r]) {
				r++
			}
			for r > i+1 && line[r-1] == '.' {
				r--
			}
			if l < i && r > i+1 {
				if v, res := NormalizeEmail(line[l:r]); res != NotKind {
					emit(Email, v, res)
				}
			}
			i = r
			if i == n || i <= l {
				i++
			}
		case c >= '0' && c <= '9' || c == '+':
			if i > 0 && isTokenGlue(line[i-1]) {
				// Inside a word or an e-mail local part: skip the run.
				for i < n && (isDigit(line[i]) || line[i] == '+') {
					i++
				}
				continue
			}
			j := i + 1
			for j < n && (isDigit(line[j]) || line[j] == '-' && j+1 < n && isDigit(line[j+1])) {
				j++
			}
			if j < n && (line[j] == 'X' || line[j] == 'x') {
				j++
			}
			if j < n && (isTokenGlue(line[j]) || line[j] == '@') {
				for j < n && (isTokenGlue(line[j]) || line[j] == '@' || isDigit(line[j])) {
					j++
				}
				i = j
				continue
			}
			scanNumber(line[i:j], today, emit)
			i = j
		default:
			i++
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isTokenGlue reports bytes that make a digit run part of a larger word.
func isTokenGlue(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.' || c == '%'
}

func isLocalChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '.' || c == '-'
}

// scanNumber classifies one numeric token found in text.
func scanNumber(tok string, today Today, emit func(Kind, string, Result)) {
	digits := 0
	for i := 0; i < len(tok); i++ {
		if isDigit(tok[i]) {
			digits++
		}
	}
	last := tok[len(tok)-1]
	if tok[0] != '+' && (len(tok) == 18 && digits >= 17 || len(tok) == 15 && digits == 15 && tok[:4] != "0086") {
		if last == 'x' || last == 'X' || digits == len(tok) {
			if v, r := NormalizeCNIDAt(tok, today); r == Valid || len(tok) == 18 && r == Invalid {
				emit(CNID, v, r)
				return
			}
		}
	}
	if last == 'x' || last == 'X' {
		return
	}
	if v, r := NormalizePhone(tok); r == Valid {
		emit(Phone, v, r)
	}
}

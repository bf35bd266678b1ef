package carve

import (
	"io"
	"unicode/utf8"
)

// Text dataset limits.
const (
	textMinSize  = 1024     // bytes: shorter runs are left to the scanner
	textMinLines = 8        // lines in a dataset
	textMaxLine  = 64 << 10 // bytes: longer "lines" are not a record
	textProbe    = 64       // leading bytes that must be text to try at all
)

// textByte classes: 1 = ASCII text byte, 0 = not text, 2 = may start a
// multi-byte UTF-8 or GBK character.
var textClass = func() (t [256]uint8) {
	for b := 0x20; b < 0x7F; b++ {
		t[b] = 1
	}
	t['\t'], t['\n'], t['\r'] = 1, 1, 1
	for b := 0x81; b <= 0xFE; b++ {
		t[b] = 2
	}
	return t
}()

// nonText returns the index of the first byte of b[:textProbe] that cannot
// be text, or -1 when they all can (and b is long enough to tell).
func nonText(b []byte) int {
	for i, x := range b[:min(len(b), textProbe)] {
		if textClass[x] == 0 {
			return i
		}
	}
	if len(b) < textProbe {
		return len(b)
	}
	return -1
}

// magicText accepts a candidate whose first textProbe bytes are text with
// valid multi-byte characters, at least a third of them ASCII: random
// bytes pass the byte-class test alone every few kilobytes.
func magicText(b []byte) bool {
	if len(b) < textProbe {
		return false
	}
	p := b[:textProbe]
	if n, _ := textLen(p); n < textProbe-3 { // a character may straddle the end
		return false
	}
	ascii := 0
	for _, x := range p {
		if textClass[x] == 1 {
			ascii++
		}
	}
	return ascii*3 >= textProbe
}

// textLen returns the length of the run of text bytes at the start of b:
// printable ASCII, tab/CR/LF, valid UTF-8 sequences and GBK double-byte
// characters (lead 0x81-0xFE, trail 0x40-0xFE except 0x7F). more reports
// whether the run may continue past b (it was cut by the buffer end).
func textLen(b []byte) (n int, more bool) {
	i := 0
	for i < len(b) {
		switch textClass[b[i]] {
		case 1:
			i++
			continue
		case 0:
			return i, false
		}
		if r, sz := utf8.DecodeRune(b[i:]); r != utf8.RuneError && sz > 1 {
			i += sz
			continue
		}
		if i+1 >= len(b) || i+4 > len(b) && b[i] >= 0xC2 {
			return i, true // a character may straddle the buffer end
		}
		if t := b[i+1]; t >= 0x40 && t <= 0xFE && t != 0x7F {
			i += 2
			continue
		}
		return i, false
	}
	return i, true
}

// validateText accepts a run of text lines that looks like a dataset: at
// least textMinSize bytes and textMinLines lines, no overlong line, and most
// lines carrying a delimiter or an identifier-like token (a digit run or an
// '@'). The file ends after its last newline; trailing lines that break the
// dominant field count are slack, not data.
func validateText(r io.ReaderAt, size int64) (result, error) {
	c := newCursor(r, size)
	var n int64
	for {
		rem := size - c.pos
		if rem <= 0 {
			break
		}
		b := c.peek(int(min(rem, bufSize)))
		if b == nil {
			return result{}, fail("text", c)
		}
		k, more := textLen(b)
		n += int64(k)
		c.pos += int64(k)
		if !more || k == 0 {
			break
		}
	}
	if n < textMinSize {
		return result{}, bad("text", n, "run of %d bytes", n)
	}
	// Second pass: line structure, counted in one streaming walk.
	c = newCursor(r, n)
	var (
		lines, structured int
		lineLen           int64
		lastNL            int64 = -1
		prevNL            []int64
		delims            = map[int]int{} // comma+tab+semicolon+pipe count -> lines
		lastCounts        []int
		cur, digits       int
		id                bool
	)
	for c.pos < n {
		b := c.peek(int(min(n-c.pos, bufSize)))
		if b == nil {
			return result{}, fail("text", c)
		}
		for i, x := range b {
			switch {
			case x == '\n':
				if lineLen > 0 {
					lines++
					if cur > 0 || id {
						structured++
					}
					if len(delims) < 4096 {
						delims[cur]++
					}
				}
				lastCounts = append(lastCounts, cur)
				if len(lastCounts) > 3 {
					lastCounts = lastCounts[1:]
				}
				prevNL = append(prevNL, c.pos+int64(i))
				if len(prevNL) > 3 {
					prevNL = prevNL[1:]
				}
				lastNL = c.pos + int64(i)
				lineLen, cur, digits, id = 0, 0, 0, false
				continue
			case x == ',' || x == '\t' || x == ';' || x == '|':
				cur++
			case x == '@':
				id = true
			}
			if x >= '0' && x <= '9' {
				if digits++; digits >= 5 {
					id = true
				}
			} else {
				digits = 0
			}
			if lineLen++; lineLen > textMaxLine {
				return result{}, bad("text", c.pos+int64(i), "line longer than %d bytes", textMaxLine)
			}
		}
		c.pos += int64(len(b))
	}
	if lastNL < 0 || lines < textMinLines || structured*2 < lines {
		return result{}, bad("text", n, "%d lines, %d structured", lines, structured)
	}
	end := lastNL + 1
	// Dominant delimiter count; drop up to two trailing lines that break it.
	dom, domN := 0, 0
	for k, v := range delims {
		if v > domN || v == domN && k < dom {
			dom, domN = k, v
		}
	}
	ext := "txt"
	if dom > 0 && domN*5 >= lines*4 {
		ext = "csv"
		for j := len(lastCounts) - 1; j >= 1 && len(lastCounts)-j <= 2; j-- {
			if lastCounts[j] == dom {
				break
			}
			end = prevNL[j-1] + 1
		}
	}
	if end < textMinSize {
		return result{}, bad("text", n, "run of %d bytes", end)
	}
	return result{n: end, typ: "text", ext: ext}, nil
}

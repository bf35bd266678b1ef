package scan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klauspost/compress/zlib"
)

// PDF streams. A stream is found by its "stream" keyword after a
// dictionary (<< ... >>) whose /Filter is FlateDecode, ASCIIHexDecode or
// ASCII85Decode, alone or chained in an array; other filters (DCT, JBIG2,
// LZW, ...) and unfiltered streams are left to the raw scan. The decoded
// bytes are scanned as any decoded stream ("OFF-PDF-N", OFF the offset of
// the "stream" keyword, N the offset in the decoded stream; object streams
// are just that). The strings of the decoded stream (literal and hex,
// UTF-16BE with a BOM decoded) are then joined into text the way they are
// shown, TJ arrays' pieces glued, and that text is scanned too
// ("OFF-PDFTEXT-N", N the offset in the text), so "(a@b.c)6(om)" is found as
// bulk_extractor's scan_pdf finds it. A text feature whose value the
// stream's bytes already yielded is not reported again.

var pdfStreamTag = []byte("stream")

// pdfDictMax is how far before "stream" its dictionary may start: what
// the margin before a block holds, so block size changes nothing.
const pdfDictMax = margin

// pdfTextMax bounds the text taken from one stream.
const pdfTextMax = 8 << 20

func (s *scanner) pdfStreams(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	each(buf, lo, hi, pdfStreamTag, func(i int) {
		if i >= 3 && string(buf[i-3:i]) == "end" {
			return
		}
		data := i + len(pdfStreamTag)
		switch {
		case data+1 < len(buf) && buf[data] == '\r' && buf[data+1] == '\n':
			data += 2
		case data < len(buf) && (buf[data] == '\n' || buf[data] == '\r'):
			data++
		default:
			return
		}
		dict := pdfDictBefore(buf, i)
		if dict == nil {
			return
		}
		filters, ok := pdfFilters(dict)
		if !ok || len(filters) == 0 {
			return
		}
		var r io.Reader = s.open(buf, base, data, top)
		for _, f := range filters {
			switch f {
			case "FlateDecode", "Fl":
				z, err := zlib.NewReader(r)
				if err != nil {
					return
				}
				r = z
			case "ASCIIHexDecode", "AHx":
				r = &hexReader{r: r}
			case "ASCII85Decode", "A85":
				r = newA85Reader(r)
			}
		}
		at := base + int64(i)
		t := topOf(base, i, top)
		mark := len(s.feats)
		tx := &pdfText{}
		s.decoded(ctx, io.TeeReader(r, tx), fmt.Sprintf("%s%d-PDF-", path, at), depth+1, t)
		tx.flush()
		if len(tx.out) == 0 || ctx.Err() != nil {
			return
		}
		seen := map[string]bool{}
		for _, f := range s.feats[mark:] {
			seen[string(f.Kind)+":"+f.Value] = true
		}
		s.extra(ctx, tx.out, fmt.Sprintf("%s%d-PDFTEXT-", path, at), t, seen)
	})
}

// extra scans text derived from a stream already scanned (PDF text,
// reassembled strings): no nested decoding, and features whose kind and
// value are in seen are dropped, since the stream's own scan reported them.
func (s *scanner) extra(ctx context.Context, text []byte, path string, top int64, seen map[string]bool) {
	mark := len(s.feats)
	s.decoded(ctx, bytes.NewReader(text), path, s.opts.MaxDepth, top)
	kept := s.feats[:mark]
	for _, f := range s.feats[mark:] {
		if !seen[string(f.Kind)+":"+f.Value] {
			kept = append(kept, f)
		}
	}
	s.feats = kept
}

// pdfDictBefore returns the dictionary ending just before buf[i] (the
// "stream" keyword), or nil.
func pdfDictBefore(buf []byte, i int) []byte {
	e := i
	for e > 0 && pdfSpace(buf[e-1]) {
		e--
	}
	if e < 2 || buf[e-1] != '>' || buf[e-2] != '>' {
		return nil
	}
	nest := 0
	for p := e - 1; p > 0 && p >= e-pdfDictMax; p-- {
		switch {
		case buf[p] == '>' && buf[p-1] == '>':
			nest++
			p--
		case buf[p] == '<' && buf[p-1] == '<':
			nest--
			p--
			if nest == 0 {
				return buf[p:e]
			}
		}
	}
	return nil
}

// pdfFilters returns the filter names of a stream dictionary; ok is false
// if one is not decoded here.
func pdfFilters(dict []byte) ([]string, bool) {
	k := bytes.Index(dict, []byte("/Filter"))
	if k < 0 {
		return nil, true
	}
	p := k + len("/Filter")
	for p < len(dict) && pdfSpace(dict[p]) {
		p++
	}
	var names []string
	name := func() bool {
		if p >= len(dict) || dict[p] != '/' {
			return false
		}
		q := p + 1
		for q < len(dict) && !pdfSpace(dict[q]) && !bytes.ContainsRune([]byte("/[]<>()"), rune(dict[q])) {
			q++
		}
		n := string(dict[p+1 : q])
		p = q
		switch n {
		case "FlateDecode", "Fl", "ASCIIHexDecode", "AHx", "ASCII85Decode", "A85":
			names = append(names, n)
			return true
		}
		return false
	}
	if p < len(dict) && dict[p] == '[' {
		p++
		for {
			for p < len(dict) && pdfSpace(dict[p]) {
				p++
			}
			if p < len(dict) && dict[p] == ']' {
				break
			}
			if !name() || len(names) > 4 {
				return nil, false
			}
		}
		return names, true
	}
	if !name() {
		return nil, false
	}
	return names, true
}

func pdfSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

// hexReader decodes ASCIIHexDecode data up to its '>'.
type hexReader struct {
	r    io.Reader
	in   [4096]byte
	done bool
	half int // pending high nibble + 1, or 0
}

func (h *hexReader) Read(p []byte) (int, error) {
	n := 0
	for n == 0 {
		if h.done {
			return 0, io.EOF
		}
		m, err := h.r.Read(h.in[:min(len(h.in), 2*len(p))])
		for _, c := range h.in[:m] {
			v := unhex(c)
			if v < 0 {
				if c == '>' || !pdfSpace(c) {
					h.done = true
					break
				}
				continue
			}
			if h.half == 0 {
				h.half = v + 1
				continue
			}
			p[n] = byte((h.half-1)<<4 | v)
			n++
			h.half = 0
		}
		if h.done && h.half != 0 && n < len(p) {
			p[n] = byte((h.half - 1) << 4)
			n++
			h.half = 0
		}
		if err != nil {
			h.done = true
			if n == 0 {
				return 0, io.EOF
			}
		}
	}
	return n, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// a85Reader decodes ASCII85Decode data up to its "~>" ('z' for four
// zero bytes, a short last group padded as the filter says).
type a85Reader struct {
	r    io.Reader
	in   [4096]byte
	grp  [5]byte
	n    int
	out  []byte
	done bool
}

func newA85Reader(r io.Reader) *a85Reader { return &a85Reader{r: r} }

func (a *a85Reader) Read(p []byte) (int, error) {
	for len(a.out) == 0 {
		if a.done {
			return 0, io.EOF
		}
		m, err := a.r.Read(a.in[:])
		for _, c := range a.in[:m] {
			switch {
			case c == 'z' && a.n == 0:
				a.out = append(a.out, 0, 0, 0, 0)
			case c >= '!' && c <= 'u':
				a.grp[a.n] = c - '!'
				a.n++
				if a.n == 5 {
					a.emit(4)
				}
			case pdfSpace(c):
			default: // '~' or junk ends the data
				a.done = true
			}
			if a.done {
				break
			}
		}
		if err != nil {
			a.done = true
		}
		if a.done && a.n > 1 {
			k := a.n - 1
			for a.n < 5 {
				a.grp[a.n] = 84
				a.n++
			}
			a.emit(k)
		}
	}
	n := copy(p, a.out)
	a.out = a.out[n:]
	return n, nil
}

func (a *a85Reader) emit(k int) {
	var v uint32
	for _, d := range a.grp {
		v = v*85 + uint32(d)
	}
	b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	a.out = append(a.out, b[:k]...)
	a.n = 0
}

// pdfText extracts the strings of a content stream as it is written to,
// byte by byte (the stream is decoded in windows), into out: the strings
// of one TJ array and of consecutive Tj operators are glued (a kerning of
// more than 150/1000 em inside an array is a space), anything else between
// two strings (a positioning operator, a name) puts a line break. Streams
// whose first KiB is not mostly printable (fonts, images) yield nothing.
type pdfText struct {
	out   []byte
	head  []byte // first bytes, until the printable test is made
	off   bool
	st    int // 0 tokens, 1 literal string, 2 hex string, 3 comment
	nest  int
	esc   int // 0, 1 after '\', 2-4 inside an octal escape (digits+1)
	oct   int
	half  int
	lt    bool // a '<' seen in state 0
	inArr bool
	sep   bool
	str   []byte
	tok   []byte
}

const pdfTextHead = 1024

func (t *pdfText) Write(p []byte) (int, error) {
	n := len(p)
	if t.off {
		return n, nil
	}
	if len(t.head) < pdfTextHead {
		k := min(len(p), pdfTextHead-len(t.head))
		t.head = append(t.head, p[:k]...)
		p = p[k:]
		if len(t.head) < pdfTextHead {
			return n, nil
		}
		if !t.printable() {
			return n, nil
		}
		t.feed(t.head)
	}
	t.feed(p)
	return n, nil
}

// flush processes what is held back for the printable test.
func (t *pdfText) flush() {
	if !t.off && len(t.head) < pdfTextHead && t.printable() {
		t.feed(t.head)
	}
	t.off = true // nothing more
}

func (t *pdfText) printable() bool {
	k := 0
	for _, c := range t.head {
		if c >= 0x20 && c < 0x7F || c == '\n' || c == '\r' || c == '\t' {
			k++
		}
	}
	if k*10 < len(t.head)*9 {
		t.off = true
	}
	return !t.off
}

func (t *pdfText) feed(p []byte) {
	for _, c := range p {
		if len(t.out) >= pdfTextMax {
			t.off = true
			return
		}
		switch t.st {
		case 1:
			t.literal(c)
		case 2:
			if v := unhex(c); v >= 0 {
				if t.half == 0 {
					t.half = v + 1
				} else {
					t.char(byte((t.half-1)<<4 | v))
					t.half = 0
				}
			} else if !pdfSpace(c) {
				if t.half != 0 {
					t.char(byte((t.half - 1) << 4))
				}
				t.endString()
			}
		case 3:
			if c == '\n' || c == '\r' {
				t.st = 0
			}
		default:
			t.token(c)
		}
	}
}

func (t *pdfText) token(c byte) {
	if t.lt {
		t.lt = false
		if c != '<' {
			t.st, t.half, t.str = 2, 0, t.str[:0]
			t.feed([]byte{c})
			return
		}
		t.sep = true // a dictionary
		return
	}
	switch c {
	case '(':
		t.endTok()
		t.st, t.nest, t.esc, t.str = 1, 1, 0, t.str[:0]
	case '<':
		t.endTok()
		t.lt = true
	case '[':
		t.endTok()
		t.inArr = true
	case ']':
		t.endTok()
		t.inArr = false
	case '%':
		t.endTok()
		t.st = 3
	case '/':
		t.endTok()
		t.tok = append(t.tok, c)
	case '>', '{', '}', ')':
		t.endTok()
		t.sep = true
	default:
		if pdfSpace(c) {
			t.endTok()
		} else if len(t.tok) < 32 {
			t.tok = append(t.tok, c)
		}
	}
}

func (t *pdfText) endTok() {
	tok := t.tok
	t.tok = t.tok[:0]
	if len(tok) == 0 {
		return
	}
	switch string(tok) {
	case "Tj", "TJ":
		return
	}
	if num, ok := pdfNumber(tok); ok {
		if t.inArr && num < -150 {
			t.out = append(t.out, ' ')
		}
		return
	}
	t.sep = true
}

// pdfNumber parses a PDF number's integer part.
func pdfNumber(tok []byte) (int, bool) {
	neg := false
	i := 0
	if tok[0] == '-' || tok[0] == '+' {
		neg = tok[0] == '-'
		i++
	}
	v, digits := 0, 0
	for ; i < len(tok) && tok[i] != '.'; i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
		if v < 1e6 {
			v = v*10 + int(tok[i]-'0')
		}
		digits++
	}
	for i++; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func (t *pdfText) literal(c byte) {
	switch {
	case t.esc == 1:
		t.esc = 0
		switch c {
		case 'n':
			t.char('\n')
		case 'r':
			t.char('\r')
		case 't':
			t.char('\t')
		case 'b':
			t.char('\b')
		case 'f':
			t.char('\f')
		case '\r', '\n': // line continuation
		default:
			if c >= '0' && c <= '7' {
				t.esc, t.oct = 2, int(c-'0')
				return
			}
			t.char(c)
		}
		return
	case t.esc >= 2:
		if c >= '0' && c <= '7' && t.esc < 4 {
			t.oct = t.oct*8 + int(c-'0')
			t.esc++
			if t.esc == 4 {
				t.char(byte(t.oct))
				t.esc = 0
			}
			return
		}
		t.char(byte(t.oct))
		t.esc = 0
	}
	switch c {
	case '\\':
		t.esc = 1
	case '(':
		t.nest++
		t.char(c)
	case ')':
		t.nest--
		if t.nest == 0 {
			t.endString()
			return
		}
		t.char(c)
	default:
		t.char(c)
	}
}

func (t *pdfText) char(c byte) {
	if len(t.str) < 1<<16 {
		t.str = append(t.str, c)
	}
}

// endString appends the string ended to out, UTF-16BE (BOM FE FF) as UTF-8.
func (t *pdfText) endString() {
	t.st = 0
	if t.sep && len(t.out) > 0 && t.out[len(t.out)-1] != '\n' {
		t.out = append(t.out, '\n')
	}
	t.sep = false
	s := t.str
	if len(s) >= 2 && s[0] == 0xFE && s[1] == 0xFF {
		u := make([]uint16, 0, len(s)/2)
		for i := 2; i+1 < len(s); i += 2 {
			u = append(u, uint16(s[i])<<8|uint16(s[i+1]))
		}
		for _, r := range utf16.Decode(u) {
			t.out = utf8.AppendRune(t.out, r)
		}
		return
	}
	t.out = append(t.out, s...)
}

package scan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
)

// Base64 blocks: a MIME part whose header says
// "Content-Transfer-Encoding: base64", or any run of two or more base64
// lines of one length (60 characters or more, as MIME, PEM and uuencode-less
// mailers write them), is decoded from its first line to the first line
// that is not base64 (64 MiB of text at most) and the bytes are scanned as
// any decoded stream ("OFF-BASE64-N", OFF the offset of the first line),
// nested streams included: a zipped attachment is opened too.

const b64Max = 64 << 20

// b64MinLine and b64MaxLine bound the line length a header-less run is
// taken from (the longest fits in the margin before a block, so the line
// before a run's first is always seen).
const (
	b64MinLine = 60
	b64MaxLine = 200
)

// cteTag is what a Content-Transfer-Encoding header is found by, in any
// case: one search serves base64 and quoted-printable.
var cteTag = []byte("ransfer-")

// cteAt returns the encoding (lower case) named by the
// Content-Transfer-Encoding header whose cteTag is at buf[i], or "".
func cteAt(buf []byte, i int) string {
	if i < 9 || !bytes.EqualFold(buf[i-9:i], []byte("content-t")) {
		return ""
	}
	p := i + len(cteTag)
	if p+9 > len(buf) || !bytes.EqualFold(buf[p:p+9], []byte("encoding:")) {
		return ""
	}
	p += 9
	for p < len(buf) && (buf[p] == ' ' || buf[p] == '\t') {
		p++
	}
	q := p
	for q < len(buf) && q-p < 20 && (b64Alpha[buf[q]] || buf[q] == '-') {
		q++
	}
	return string(bytes.ToLower(buf[p:q]))
}

// mimeParts decodes the MIME parts whose header starts in buf[lo:hi).
func (s *scanner) mimeParts(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	each(buf, lo, hi, cteTag, func(i int) {
		enc := cteAt(buf, i)
		if enc != "base64" && enc != "quoted-printable" {
			return
		}
		b := partBody(buf, i)
		switch {
		case b < 0:
		case enc == "base64":
			s.base64At(ctx, buf, base, b, path, depth, top)
		default:
			s.qpAt(ctx, buf, base, b, path, top)
		}
	})
}

var b64Alpha = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return
}()

// b64Line returns the length of the base64 line at b[i:] (its characters,
// '=' padding included) and where the next line starts; n is 0 if the line
// is not base64.
func b64Line(b []byte, i int) (n, next int) {
	j := i
	for j < len(b) && b64Alpha[b[j]] {
		j++
	}
	k := j
	for k < len(b) && k-j < 2 && b[k] == '=' {
		k++
	}
	n = k - i
	if k < len(b) && b[k] == '\r' {
		k++
	}
	if k >= len(b) || b[k] != '\n' || n == 0 {
		return 0, 0
	}
	return n, k + 1
}

// base64Runs decodes header-less base64 runs starting in buf[lo:hi).
func (s *scanner) base64Runs(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	// Header-less runs: a line of b64MinLine+ characters after a line
	// break, the next line as long, the previous line not.
	for i := lo; i < hi; {
		j := bytes.IndexByte(buf[i:hi], '\n')
		if j < 0 {
			break
		}
		p := i + j + 1
		i = p
		n, next := b64Line(buf, p)
		if n < b64MinLine || n > b64MaxLine {
			continue
		}
		if n2, _ := b64Line(buf, next); n2 != n {
			continue
		}
		// The previous line, if it is in buf, must not be of the run.
		q := bytes.LastIndexByte(buf[:p-1], '\n')
		if q >= 0 {
			if m, nx := b64Line(buf, q+1); m == n && nx == p {
				continue
			}
		}
		// A MIME part's body is decoded from its header's block.
		if headerBodyAt(buf, p) {
			continue
		}
		s.base64At(ctx, buf, base, p, path, depth, top)
	}
}

// partBody returns where the body of the MIME part whose header line is at
// buf[i] starts: after the blank line ending the header, within margin
// bytes (so a block sees it whatever its size), or -1.
func partBody(buf []byte, i int) int {
	end := min(len(buf), i+margin)
	if k := bytes.Index(buf[i:end], []byte("\n\r\n")); k >= 0 {
		return i + k + 3
	}
	if k := bytes.Index(buf[i:end], []byte("\n\n")); k >= 0 {
		return i + k + 2
	}
	return -1
}

// headerBodyAt reports whether a base64 part's header before buf[p]
// (within margin) has its body at p.
func headerBodyAt(buf []byte, p int) bool {
	w0 := max(0, p-margin)
	for k := w0; k < p; {
		j := bytes.Index(buf[k:p], cteTag)
		if j < 0 {
			return false
		}
		if cteAt(buf, k+j) == "base64" && partBody(buf, k+j) == p {
			return true
		}
		k += j + 1
	}
	return false
}

// base64At decodes the base64 lines starting at buf[i] and scans them.
func (s *scanner) base64At(ctx context.Context, buf []byte, base int64, i int, path string, depth int, top int64) {
	br := bufio.NewReaderSize(s.open(buf, base, i, top), 64<<10)
	var text []byte
	width := 0
	for len(text) < b64Max && int64(len(text)) < s.budget*4/3 {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && !(err == io.EOF && len(line) > 0) {
			break
		}
		if err == bufio.ErrBufferFull {
			break
		}
		n, _ := b64Line(append(line[:len(line):len(line)], '\n'), 0)
		if n == 0 {
			break
		}
		if width == 0 {
			width = n
		}
		text = append(text, line[:n]...)
		if n != width || line[n-1] == '=' {
			break // the last line
		}
		if err != nil {
			break
		}
	}
	text = text[:len(text)/4*4]
	if len(text) < 8 {
		return
	}
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(dec, text)
	if err != nil && n == 0 {
		return
	}
	s.decoded(ctx, bytes.NewReader(dec[:n]), fmt.Sprintf("%s%d-BASE64-", path, base+int64(i)), depth+1, topOf(base, i, top))
}

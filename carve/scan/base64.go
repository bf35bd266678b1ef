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

var cteBase64 = [][]byte{[]byte("Content-Transfer-Encoding: base64"), []byte("Content-Transfer-Encoding: Base64"),
	[]byte("content-transfer-encoding: base64"), []byte("Content-Transfer-Encoding: BASE64")}

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

func (s *scanner) base64Blocks(ctx context.Context, buf []byte, base int64, lo, hi int, path string, depth int, top int64) {
	for _, h := range cteBase64 {
		each(buf, lo, hi, h, func(i int) {
			if b := partBody(buf, i); b >= 0 {
				s.base64At(ctx, buf, base, b, path, depth, top)
			}
		})
	}
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
		if headerBodyAt(buf, p, cteBase64) {
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

// headerBodyAt reports whether one of the headers before buf[p] (within
// margin) has its part's body at p.
func headerBodyAt(buf []byte, p int, headers [][]byte) bool {
	w := buf[max(0, p-margin):p]
	for _, h := range headers {
		for k := 0; ; {
			j := bytes.Index(w[k:], h)
			if j < 0 {
				break
			}
			if partBody(buf, max(0, p-margin)+k+j) == p {
				return true
			}
			k += j + 1
		}
	}
	return false
}

// base64At decodes the base64 lines starting at buf[i] and scans them.
func (s *scanner) base64At(ctx context.Context, buf []byte, base int64, i int, path string, depth int, top int64) {
	br := bufio.NewReaderSize(s.open(buf, base, i, top), 64<<10)
	var text []byte
	width := 0
	for len(text) < b64Max {
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

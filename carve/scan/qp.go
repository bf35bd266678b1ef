package scan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
)

// Quoted-printable MIME parts ("Content-Transfer-Encoding:
// quoted-printable"): the body, from the blank line after the header to
// the next MIME boundary line ("--...") or 4 MiB, is decoded (=XX bytes,
// soft line breaks "=" at line end removed) and scanned as "OFF-QP-N", OFF
// the body's offset, N the offset in the decoded text; values the raw
// body yields are not reported again.

const qpMax = 4 << 20

// qpAt decodes the quoted-printable body at buf[body] and scans it.
func (s *scanner) qpAt(ctx context.Context, buf []byte, base int64, body int, path string, top int64) {
	raw := readQPBody(bufio.NewReaderSize(s.open(buf, base, body, top), 64<<10), min(qpMax, max(0, s.budget)))
	s.budget -= int64(len(raw))
	dec := qpDecode(raw)
	if len(dec) == 0 {
		return
	}
	s.extra(ctx, dec, fmt.Sprintf("%s%d-QP-", path, base+int64(body)), topOf(base, body, top), s.rawValues(ctx, raw))
}

// readQPBody reads lines up to a MIME boundary line or max bytes.
func readQPBody(br *bufio.Reader, max int64) []byte {
	var out []byte
	for int64(len(out)) < max {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("--")) {
			break
		}
		out = append(out, line...)
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	return out[:min(int64(len(out)), max)]
}

// qpDecode decodes quoted-printable text.
func qpDecode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			i++
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			i += 2
		case i+2 < len(b) && unhex(b[i+1]) >= 0 && unhex(b[i+2]) >= 0:
			out = append(out, byte(unhex(b[i+1])<<4|unhex(b[i+2])))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

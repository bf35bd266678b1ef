package scan

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"unicode/utf8"
)

// RTF documents ("{\rtf" to its closing brace, 16 MiB at most). Their text
// is read as a reader would: control words dropped, \'hh bytes (as Latin-1)
// and \uN characters decoded (their \ucN fallback skipped), font and colour
// tables, pictures and \bin data skipped, and line breaks (ignored by RTF)
// dropped, so an identifier that a writer wrapped, formatted mid-word or
// wrote in escapes is whole again. The text is scanned as "OFF-RTF-N", N
// the offset in the text; values the raw RTF yields are not reported
// again.

var rtfMagic = []byte(`{\rtf`)

const rtfMax = 16 << 20

func (s *scanner) rtfDocs(ctx context.Context, buf []byte, base int64, lo, hi int, path string, top int64) {
	each(buf, lo, hi, rtfMagic, func(i int) {
		raw := readGroup(s.open(buf, base, i, top), min(rtfMax, max(0, s.budget)))
		s.budget -= int64(len(raw))
		text := rtfText(raw)
		if len(text) == 0 {
			return
		}
		s.extra(ctx, text, fmt.Sprintf("%s%d-RTF-", path, base+int64(i)), topOf(base, i, top), s.rawValues(ctx, raw))
	})
}

// readGroup reads a brace group from r: up to its closing brace, at most
// max bytes.
func readGroup(r io.Reader, max int64) []byte {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []byte
	depth := 0
	for int64(len(out)) < max {
		c, err := br.ReadByte()
		if err != nil {
			break
		}
		out = append(out, c)
		switch c {
		case '\\': // an escaped brace does not count
			if d, err := br.ReadByte(); err == nil {
				out = append(out, d)
			}
		case '{':
			depth++
		case '}':
			depth--
			if depth <= 0 {
				return out
			}
		}
	}
	return out
}

// rawValues returns the kind:value of the features the text finders see
// in raw, the stream a derived text comes from.
func (s *scanner) rawValues(ctx context.Context, raw []byte) map[string]bool {
	plain := s.plain
	s.plain = true
	mark := len(s.feats)
	s.scanBuf(ctx, raw, 0, 0, len(raw), "", s.opts.MaxDepth, top0)
	seen := map[string]bool{}
	for _, f := range s.feats[mark:] {
		seen[string(f.Kind)+":"+f.Value] = true
	}
	s.feats = s.feats[:mark]
	s.plain = plain
	return seen
}

// rtfSkip are destinations whose content is no text.
var rtfSkip = map[string]bool{"fonttbl": true, "colortbl": true, "stylesheet": true, "pict": true,
	"object": true, "themedata": true, "datastore": true, "listtable": true, "listoverridetable": true,
	"rsidtbl": true, "xmlnstbl": true, "generator": true, "latentstyles": true, "colorschememapping": true}

// rtfText extracts the text of an RTF document.
func rtfText(b []byte) []byte {
	var out []byte
	type group struct {
		skip bool
		uc   int
	}
	stack := []group{{uc: 1}}
	cur := &stack[0]
	over := 0    // groups deeper than the stack keeps
	pending := 0 // fallback characters still to skip after \u
	emit := func(r rune) {
		if pending > 0 {
			pending--
			return
		}
		if !cur.skip {
			out = utf8.AppendRune(out, r)
		}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '{':
			if len(stack) < 256 {
				stack = append(stack, *cur)
				cur = &stack[len(stack)-1]
			} else {
				over++
			}
			pending = 0
			if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == '*' {
				cur.skip = true
			}
		case '}':
			if over > 0 {
				over--
			} else if len(stack) > 1 {
				stack = stack[:len(stack)-1]
				cur = &stack[len(stack)-1]
			}
			pending = 0
		case '\r', '\n':
		case '\\':
			if i+1 >= len(b) {
				break
			}
			d := b[i+1]
			switch {
			case d == '\'':
				if i+3 < len(b) && unhex(b[i+2]) >= 0 && unhex(b[i+3]) >= 0 {
					emit(rune(unhex(b[i+2])<<4 | unhex(b[i+3])))
					i += 3
				} else {
					i++
				}
			case d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z':
				j := i + 1
				for j < len(b) && j-i < 32 && (b[j] >= 'a' && b[j] <= 'z' || b[j] >= 'A' && b[j] <= 'Z') {
					j++
				}
				word := string(b[i+1 : j])
				k := j
				if k < len(b) && b[k] == '-' {
					k++
				}
				for k < len(b) && k-j < 10 && b[k] >= '0' && b[k] <= '9' {
					k++
				}
				num, hasNum := 0, k > j && b[k-1] >= '0' && b[k-1] <= '9'
				if hasNum {
					neg := b[j] == '-'
					for _, x := range b[j:k] {
						if x != '-' {
							num = num*10 + int(x-'0')
						}
					}
					if neg {
						num = -num
					}
				}
				if k < len(b) && b[k] == ' ' {
					k++
				}
				i = k - 1
				switch {
				case word == "u" && hasNum:
					r := num
					if r < 0 {
						r += 65536
					}
					if !cur.skip {
						out = utf8.AppendRune(out, rune(r))
					}
					pending = cur.uc
				case word == "uc" && hasNum:
					cur.uc = max(0, min(num, 8))
				case word == "bin" && hasNum:
					i += max(0, min(num, len(b)-1-i))
				case word == "par" || word == "line" || word == "sect" || word == "page" || word == "row":
					emit('\n')
				case word == "tab" || word == "cell":
					emit('\t')
				case rtfSkip[word]:
					cur.skip = true
				}
			default: // \{ \} \\ and control symbols
				if d == '{' || d == '}' || d == '\\' {
					emit(rune(d))
				} else if d == '~' {
					emit(' ')
				}
				i++
			}
		default:
			emit(rune(c))
		}
	}
	return out
}

package records

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encoding names, as reported in FileStats.
const (
	EncUTF8    = "utf-8"
	EncUTF8BOM = "utf-8-bom"
	EncUTF16LE = "utf-16le"
	EncUTF16BE = "utf-16be"
	EncGB18030 = "gb18030"
)

// EncodingNames are the values Options.Encoding takes ("gbk" and
// "gb2312" read as GB18030, their superset).
var EncodingNames = []string{EncUTF8, EncUTF8BOM, EncUTF16LE, EncUTF16BE, EncGB18030, "gbk", "gb2312"}

// canonicalEncoding maps an encoding name to the one decode knows, "" when
// it is none.
func canonicalEncoding(name string) string {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "utf-8", "utf8":
		return EncUTF8
	case "utf-8-bom", "utf8-bom", "utf-8-sig":
		return EncUTF8BOM
	case "utf-16le", "utf16le", "utf-16":
		return EncUTF16LE
	case "utf-16be", "utf16be":
		return EncUTF16BE
	case "gb18030", "gbk", "gb2312", "cp936":
		return EncGB18030
	}
	return ""
}

// detectEncoding names the character set of a sample taken at the start
// of a stream: a BOM decides; else valid UTF-8 (ignoring a rune cut at the
// sample's end) is UTF-8; else GB18030, a superset of GBK and GB2312.
func detectEncoding(sample []byte, atEOF bool) string {
	switch {
	case bytes.HasPrefix(sample, []byte{0xEF, 0xBB, 0xBF}):
		return EncUTF8BOM
	case bytes.HasPrefix(sample, []byte{0xFF, 0xFE}):
		return EncUTF16LE
	case bytes.HasPrefix(sample, []byte{0xFE, 0xFF}):
		return EncUTF16BE
	}
	s := sample
	if !atEOF {
		// Drop a possibly cut multi-byte sequence at the end (up to 3 bytes).
		for i := 0; i < 3 && len(s) > 0; i++ {
			if utf8.Valid(s) {
				break
			}
			s = s[:len(s)-1]
		}
	}
	if utf8.Valid(s) || mostlyUTF8(s) {
		return EncUTF8
	}
	return EncGB18030
}

// mostlyUTF8 reports whether at least 95% of the non-ASCII bytes of s
// form valid UTF-8 sequences: a UTF-8 file with a few garbage bytes is
// still UTF-8 (decoding it as GB18030 would ruin its full-width digits),
// while GBK text forms valid UTF-8 only by accident, for a minority of
// its byte pairs.
func mostlyUTF8(s []byte) bool {
	good, bad := 0, 0
	for i := 0; i < len(s); {
		if s[i] < 0x80 {
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n <= 1 {
			bad++
			i++
			continue
		}
		good += n
		i += n
	}
	return good > 0 && bad*20 <= good+bad
}

// decode returns a reader of r's text as UTF-8, without any BOM.
func decode(enc string, r io.Reader) io.Reader {
	switch enc {
	case EncUTF8BOM:
		return transform.NewReader(r, unicode.UTF8BOM.NewDecoder())
	case EncUTF16LE:
		// UseBOM: a BOM is dropped (and obeyed), its absence tolerated when
		// the encoding was given rather than detected.
		return transform.NewReader(r, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder())
	case EncUTF16BE:
		return transform.NewReader(r, unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder())
	case EncGB18030:
		return transform.NewReader(r, simplifiedchinese.GB18030.NewDecoder())
	}
	return r
}

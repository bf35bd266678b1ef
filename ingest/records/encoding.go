package records

import (
	"bytes"
	"io"
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
	if utf8.Valid(s) {
		return EncUTF8
	}
	return EncGB18030
}

// decode returns a reader of r's text as UTF-8, without any BOM.
func decode(enc string, r io.Reader) io.Reader {
	switch enc {
	case EncUTF8BOM:
		return transform.NewReader(r, unicode.UTF8BOM.NewDecoder())
	case EncUTF16LE:
		return transform.NewReader(r, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder())
	case EncUTF16BE:
		return transform.NewReader(r, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder())
	case EncGB18030:
		return transform.NewReader(r, simplifiedchinese.GB18030.NewDecoder())
	}
	return r
}

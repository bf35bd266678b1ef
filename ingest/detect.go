package ingest

import (
	"bytes"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/evidx/evidx/ingest/identity"
)

// datasetMagic are container formats the record reader opens.
var datasetMagic = [][]byte{
	{0x1f, 0x8b},                  // gzip
	{0x28, 0xb5, 0x2f, 0xfd},      // zstd
	[]byte("BZh"),                 // bzip2
	{0xfd, '7', 'z', 'X', 'Z', 0}, // xz
	[]byte("SQLite format 3\x00"), // SQLite database
	{'P', 'K', 0x03, 0x04},        // zip
}

// notDatasets are names whose zip or text content is a document or code,
// not a table of people.
var notDatasets = map[string]bool{
	".docx": true, ".xlsm": true, ".pptx": true, ".odt": true, ".ods": true, ".odp": true, ".jar": true, ".apk": true,
	".epub": true, ".html": true, ".htm": true, ".xml": true, ".js": true, ".css": true, ".go": true, ".c": true, ".h": true,
	".py": true, ".sh": true, ".pdf": true,
}

// LooksLikeDataset decides from a file's name and first bytes whether to
// load it as a leaked dataset: a compressed stream, zip or SQLite file, or
// text in which identifiers occur. The index keeps the result only when
// rows parse, so a wrong yes costs time, never counts.
func LooksLikeDataset(name string, head []byte) bool {
	if notDatasets[strings.ToLower(path.Ext(name))] {
		return false
	}
	for _, m := range datasetMagic {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	if len(head) == 0 || bytes.IndexByte(head, 0) >= 0 && !bytes.HasPrefix(head, []byte{0xff, 0xfe}) && !bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		return false
	}
	if bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		return true // UTF-16 text with a BOM
	}
	// Cut at the last newline so a multi-byte character or a row is not split.
	if i := bytes.LastIndexByte(head, '\n'); i > 0 {
		head = head[:i]
	}
	if utf8.Valid(head) || printableRatio(head) > 0.9 {
		found := 0
		for _, line := range strings.Split(string(head), "\n") {
			identity.ScanText(line, func(identity.Kind, string, identity.Result) { found++ })
			if found >= 2 {
				return true
			}
		}
	}
	return false
}

// printableRatio is the share of bytes that are printable ASCII, line
// breaks or high bytes (GBK text is mostly high bytes).
func printableRatio(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c >= 0x20 && c != 0x7f || c == '\n' || c == '\r' || c == '\t' {
			n++
		}
	}
	return float64(n) / float64(len(b))
}

package hashset

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a text list in bytes (a hashdeep line holds
// a path, at most PATH_MAX 4096 on Linux); a longer line is not a list.
const maxLine = 64 << 10

// Text list formats, as Set.Format names them.
const (
	FormatRDS      = "rdsv3"    // NIST NSRL RDSv3 SQLite
	FormatHashdeep = "hashdeep" // %%%% HASHDEEP-1.0 with its column header
	FormatSums     = "sums"     // md5sum / sha1sum / sha256sum output: HEX  NAME
	FormatPlain    = "plain"    // one hash per line
)

// algBySize names the algorithm of a hex hash by its length.
func algBySize(hexLen int) (Alg, bool) {
	switch hexLen {
	case 32:
		return MD5, true
	case 40:
		return SHA1, true
	case 64:
		return SHA256, true
	}
	return 0, false
}

// parseText reads a hashdeep, md5sum/sha*sum or plain list from r and
// calls add for every hash (binary, of its algorithm's size). name is the
// file named in errors. It returns the format found. Blank lines and
// lines starting with '#' are skipped; any other line that is not of the
// format is an error naming its line number and byte offset, so a list
// that does not parse is never taken as a smaller one.
func parseText(r io.Reader, name string, add func(Alg, []byte) error) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	format := ""
	var cols []string // hashdeep columns
	var off int64
	buf := make([]byte, 32)
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(br)
		start := off
		off += int64(len(line))
		if err == errLong {
			return format, fmt.Errorf("%s: line %d at %#x: longer than %d bytes", name, lineNo, start, maxLine)
		}
		if err != nil && err != io.EOF {
			return format, fmt.Errorf("%s: line %d at %#x: %w", name, lineNo, start, err)
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		text := strings.TrimRight(string(line), "\r\n")
		bad := func(why string) error {
			return fmt.Errorf("%s: line %d at %#x: %s", name, lineNo, start, why)
		}
		if lineNo == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		switch {
		case format == "" && strings.HasPrefix(text, "%%%% HASHDEEP-"):
			format = FormatHashdeep
			continue
		case format == FormatHashdeep && strings.HasPrefix(text, "%%%% "):
			cols = strings.Split(strings.TrimPrefix(text, "%%%% "), ",")
			if cols[len(cols)-1] != "filename" {
				return format, bad("hashdeep column header does not end in filename")
			}
			continue
		case strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#"):
			continue // blank, a comment, or hashdeep's "##" lines
		}
		add1 := func(field string) error {
			a, ok := algBySize(len(field))
			if !ok {
				return bad(fmt.Sprintf("%d hex digits is no MD5, SHA-1 or SHA-256", len(field)))
			}
			b := buf[:a.Size()]
			if _, err := hex.Decode(b, []byte(field)); err != nil {
				return bad("not hex: " + err.Error())
			}
			return add(a, b)
		}
		if format == FormatHashdeep {
			if cols == nil {
				return format, bad("hashdeep line before the column header")
			}
			fields := strings.SplitN(text, ",", len(cols))
			if len(fields) != len(cols) {
				return format, bad(fmt.Sprintf("%d fields, the header names %d", len(fields), len(cols)))
			}
			for i, c := range cols {
				if c != "md5" && c != "sha1" && c != "sha256" {
					continue // size, filename, and hashes evidx does not compute (tiger, whirlpool)
				}
				if err := add1(fields[i]); err != nil {
					return format, err
				}
			}
			continue
		}
		// md5sum and sha*sum write "HEX  NAME" (a '*' for binary mode, a
		// leading '\' when the name was escaped); a plain list "HEX".
		text = strings.TrimPrefix(text, "\\")
		h, rest, named := strings.Cut(text, " ")
		if !named {
			h, rest, named = strings.Cut(text, "\t")
		}
		h = strings.TrimSpace(h)
		f := FormatPlain
		if named && strings.TrimSpace(rest) != "" {
			f = FormatSums
		}
		if format == "" || f == FormatSums {
			format = f // one named line makes a sums list
		}
		if err := add1(h); err != nil {
			return format, err
		}
	}
	if format == "" {
		return format, fmt.Errorf("%s: no hashes", name)
	}
	if format == FormatHashdeep && cols == nil {
		return format, fmt.Errorf("%s: hashdeep header without its column line", name)
	}
	return format, nil
}

var errLong = errors.New("line too long")

// readLine returns the next line with its newline, at most maxLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return line, errLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil && !bytes.HasSuffix(line, []byte("\n")) {
			continue
		}
		return line, err
	}
}

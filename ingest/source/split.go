package source

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// splitScheme describes a segment naming scheme found in a file name: the
// part before the suffix, the suffix's alphabet and width, and the index of
// the given file in that scheme.
type splitScheme struct {
	stem   string // everything before the suffix, including any '.'
	digits bool   // numeric suffix (.000, .001, .01) or letters (.aa, .ab)
	upper  bool   // letter suffixes in upper case
	width  int
	index  int // value of the given file's suffix
}

// name returns the file name of segment index i in the scheme, or "" when
// the suffix would overflow its width.
func (s splitScheme) name(i int) string {
	if s.digits {
		v := fmt.Sprintf("%0*d", s.width, i)
		if len(v) > s.width {
			return ""
		}
		return s.stem + v
	}
	b := make([]byte, s.width)
	for k := s.width - 1; k >= 0; k-- {
		c := byte('a' + i%26)
		if s.upper {
			c = byte('A' + i%26)
		}
		b[k] = c
		i /= 26
	}
	if i != 0 {
		return ""
	}
	return s.stem + string(b)
}

// parseSplitName recognises the names split(1) and imagers give to raw
// segments: "x.001" / "x.000" / "x.01" (2 or more digits after a dot) and
// "x.aa" / "x.aaa" (2 or 3 letters after a dot, as `split -b N img img.`
// makes). ok is false for any other name.
func parseSplitName(path string) (splitScheme, bool) {
	dot := strings.LastIndexByte(path, '.')
	if dot < 0 || strings.ContainsRune(path[dot:], filepath.Separator) {
		return splitScheme{}, false
	}
	suf := path[dot+1:]
	if len(suf) < 2 || len(suf) > 6 {
		return splitScheme{}, false
	}
	s := splitScheme{stem: path[:dot+1], width: len(suf)}
	allDigits, allLower, allUpper := true, true, true
	for _, c := range []byte(suf) {
		allDigits = allDigits && c >= '0' && c <= '9'
		allLower = allLower && c >= 'a' && c <= 'z'
		allUpper = allUpper && c >= 'A' && c <= 'Z'
	}
	switch {
	case allDigits:
		s.digits = true
		for _, c := range []byte(suf) {
			s.index = s.index*10 + int(c-'0')
		}
	case (allLower || allUpper) && len(suf) <= 3:
		s.upper = allUpper
		for _, c := range []byte(suf) {
			base := byte('a')
			if allUpper {
				base = 'A'
			}
			s.index = s.index*26 + int(c-base)
		}
	default:
		return splitScheme{}, false
	}
	return s, true
}

// maxSplitSegments bounds the segment search (a 3-letter suffix has 17,576).
const maxSplitSegments = 100000

// exists reports whether a regular file (or device) is at path.
type statFunc func(string) (os.FileInfo, error)

// findSplit lists the segments of a split raw image given its first
// segment. It returns just path when the name is not a split name or no
// second segment exists. A file numbered before path makes path not the
// first segment; a segment missing between two present ones is named.
func findSplit(path string, stat statFunc) ([]string, error) {
	s, ok := parseSplitName(path)
	if !ok {
		return []string{path}, nil
	}
	// A numeric set starts at 0 or 1, a letter set at "aa".
	if s.index > 1 || (!s.digits && s.index > 0) {
		if prev := s.name(s.index - 1); prev != "" {
			if _, err := stat(prev); err == nil {
				return nil, fmt.Errorf("%s: %w: %s exists; open the first segment", path, ErrNotFirstSegment, prev)
			}
		}
	}
	if s.digits && s.index == 1 {
		if zero := s.name(0); zero != "" {
			if _, err := stat(zero); err == nil {
				return nil, fmt.Errorf("%s: %w: %s exists; open the first segment", path, ErrNotFirstSegment, zero)
			}
		}
	}
	paths := []string{path}
	for i := s.index + 1; i < s.index+maxSplitSegments; i++ {
		next := s.name(i)
		if next == "" {
			break
		}
		if _, err := stat(next); err != nil {
			// A gap: some later segment exists, so this one is missing.
			for j := i + 1; j < i+8; j++ {
				if later := s.name(j); later != "" {
					if _, err := stat(later); err == nil {
						return nil, fmt.Errorf("%s: %w: %s (found %s after it)", path, ErrMissingSegment, next, later)
					}
				}
			}
			break
		}
		paths = append(paths, next)
	}
	return paths, nil
}

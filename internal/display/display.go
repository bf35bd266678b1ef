// Package display makes text from evidence safe to print on one line of
// a terminal or a report: names and error texts carry whatever bytes the
// evidence held.
package display

import "strings"

// OneLine replaces line breaks and tabs with spaces and other control
// characters with '?', so a value from evidence cannot break a table row
// or forge a line of output.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

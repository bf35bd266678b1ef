package ewf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// headerKeys maps the one- or two-letter identifiers of the header and
// header2 "main" category to stable snake_case names. Unknown identifiers
// are kept under their own (sanitised) name.
var headerKeys = map[string]string{
	"a":   "description",
	"c":   "case_number",
	"n":   "evidence_number",
	"e":   "examiner",
	"t":   "notes",
	"md":  "model",
	"sn":  "serial_number",
	"l":   "device_label",
	"av":  "acquiry_software_version",
	"ov":  "acquiry_os",
	"m":   "acquired_date",
	"u":   "system_date",
	"p":   "password_hash",
	"pid": "process_id",
	"dc":  "unknown_dc",
	"ext": "extents",
	"r":   "compression_level",
}

// ParseHeader turns header or header2 text into a map with stable keys
// (case_number, evidence_number, examiner, description, notes, model,
// serial_number, acquiry_software_version, acquiry_os, acquired_date,
// system_date, ...). Dates from header2 (Unix seconds) become RFC 3339 UTC;
// dates from the old header ("2026 11 27 3 20 31", the acquiring machine's
// local time, zone unknown) become "2026-11-27 03:20:31". Empty values and
// the password hash "0" (no password) are left out.
func ParseHeader(text string) map[string]string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	out := map[string]string{}
	// Find the "main" category: the keys are on the next line, the values
	// on the one after.
	for i := 0; i+2 < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "main" {
			continue
		}
		keys := strings.Split(lines[i+1], "\t")
		vals := strings.Split(lines[i+2], "\t")
		for k, id := range keys {
			if k >= len(vals) {
				break
			}
			v := strings.TrimSpace(vals[k])
			id = strings.TrimSpace(id)
			name, ok := headerKeys[id]
			if !ok {
				name = "x_" + sanitizeKey(id)
			}
			if v == "" || (name == "password_hash" && v == "0") {
				continue
			}
			if name == "acquired_date" || name == "system_date" {
				v = formatDate(v)
			}
			out[name] = v
		}
		break
	}
	return out
}

func sanitizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, s)
}

// formatDate normalises the two date styles EWF headers use.
func formatDate(v string) string {
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
		return time.Unix(secs, 0).UTC().Format(time.RFC3339)
	}
	f := strings.Fields(v)
	if len(f) == 6 {
		var n [6]int
		for i, s := range f {
			x, err := strconv.Atoi(s)
			if err != nil {
				return v
			}
			n[i] = x
		}
		return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", n[0], n[1], n[2], n[3], n[4], n[5])
	}
	return v
}

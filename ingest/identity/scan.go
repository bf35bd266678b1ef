package identity

import "time"

// ScanText finds identifiers in unstructured text and calls emit for each
// candidate with its verdict (Valid with the canonical value, or Invalid).
// It is FindText over the line: the same finder as the raw-byte scan, so
// the same text yields the same identities in a dataset and in a scan.
// line must already be folded (NFKC) when it may hold full-width forms.
func ScanText(line string, emit func(k Kind, v string, r Result)) {
	ScanTextAt(line, TodayOf(time.Now()), emit)
}

// ScanTextAt is ScanText with ID birth dates checked against today.
func ScanTextAt(line string, today Today, emit func(k Kind, v string, r Result)) {
	var buf [16]Hit
	for _, h := range FindText([]byte(line), 0, len(line), today, nil, buf[:0]) {
		if h.Invalid {
			emit(h.Kind, "", Invalid)
		} else {
			emit(h.Kind, h.Value, Valid)
		}
	}
}

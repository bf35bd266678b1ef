package runs

import (
	"bytes"
	"testing"
)

// FuzzRecord checks that records round-trip through recordWriter and
// recordReader, and that decoding arbitrary bytes fails cleanly.
func FuzzRecord(f *testing.F) {
	f.Add([]byte("+8613812345678"), []byte("line 12"), []byte("+8613812345699"), []byte("line 7"), uint8(0), int64(3))
	f.Add([]byte("a"), []byte("table users row 007"), []byte("a\x00"), []byte(""), uint8(1), int64(1))
	f.Add([]byte(""), []byte("0"), []byte("b"), []byte("x18446744073709551615"), uint8(2), int64(1<<40))
	f.Fuzz(func(t *testing.T, v1, l1, v2, l2 []byte, kind uint8, count int64) {
		if len(v1) > maxLen || len(v2) > maxLen || len(l1) > maxLen || len(l2) > maxLen || count < 0 {
			return
		}
		var w recordWriter
		w.reset()
		k2 := kind % 3
		out := w.append(nil, 0, v1, count, l1)
		out = w.append(out, k2, v2, 1, l2)
		out = w.append(out, k2, v2, 2, l1)
		r := recordReader{prevKind: -1}
		want := []struct {
			kind  byte
			v, l  []byte
			count int64
		}{{0, v1, l1, count}, {k2, v2, l2, 1}, {k2, v2, l1, 2}}
		for i, w := range want {
			n, err := r.decode(out)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			out = out[n:]
			if r.kind != w.kind || !bytes.Equal(r.value, w.v) || r.count != w.count || !bytes.Equal(r.appendLoc(nil), w.l) {
				t.Fatalf("record %d: got %d %q %d %q, want %d %q %d %q", i, r.kind, r.value, r.count, r.appendLoc(nil), w.kind, w.v, w.count, w.l)
			}
		}
		if len(out) != 0 {
			t.Fatalf("%d bytes left", len(out))
		}
		// Arbitrary bytes: an error or a record, never a panic.
		junk := append(append([]byte{}, v1...), l2...)
		r.reset()
		for len(junk) > 0 {
			n, err := r.decode(junk)
			if err != nil {
				break
			}
			junk = junk[n:]
		}
	})
}

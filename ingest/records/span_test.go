package records

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// rowsOf reads data whole (Read) or as spans of size bytes (Spans, then
// ReadSpan on each) and lists every row with its location, as text.
func rowsOf(t testing.TB, data []byte, o Options, size int64) (whole, split string, spans int) {
	t.Helper()
	dump := func(sb *strings.Builder) func(*Chunk) error {
		return func(c *Chunk) error {
			return c.Rows(func(r *Row) error {
				fmt.Fprintf(sb, "%s|%q|%q|%v|%q|%q\n", r.Loc, r.Fields, r.Names, r.Text, r.Reject, r.Raw)
				return nil
			})
		}
	}
	var w, s strings.Builder
	infos, err := Read(context.Background(), Input{R: bytes.NewReader(data)}, o, dump(&w))
	info, sps, serr := Spans(context.Background(), Input{R: bytes.NewReader(data)}, o, size)
	if sps == nil {
		return "", "", 0
	}
	if err != nil || serr != nil {
		t.Fatalf("a file with spans failed: read %v, spans %v", err, serr)
	}
	if len(infos) != 1 || infos[0].Format.Name() != info.Format.Name() {
		t.Fatalf("spans sniffed %s, read %v", info.Format.Name(), infos)
	}
	var end int64
	for _, sp := range sps {
		if sp.Start != end || sp.End < sp.Start {
			t.Fatalf("span %+v after %d", sp, end)
		}
		end = sp.End
		if err := ReadSpan(context.Background(), bytes.NewReader(data), info, sp, o, dump(&s)); err != nil {
			t.Fatalf("span %+v: %v", sp, err)
		}
	}
	if end != int64(len(data)) {
		t.Fatalf("spans end at %d of %d bytes", end, len(data))
	}
	return w.String(), s.String(), len(sps)
}

// TestSpansEqualRead: spans as small as 1 byte (every record its own
// span) give the rows, locations and rejects of the whole-file read, for
// each line-based format; compressed and non-UTF-8 input is not cut.
func TestSpansEqualRead(t *testing.T) {
	csv := "name,phone,note\n" + strings.Repeat("张三,13812345678,\"two\nlines\"\n\n李四,+86 139 1234 5678,x\nbad,row\n", 40)
	cases := map[string]string{
		"csv":   csv,
		"jsonl": strings.Repeat("{\"phone\":\"13812345678\",\"a\":{\"b\":[1,2]}}\nnot json\n\n", 50),
		"text":  strings.Repeat("call 13812345678 or mail a@b.cn\n\r\n", 60),
		"dash":  strings.Repeat("13812345678----a@b.cn----张三\n", 80),
	}
	for name, data := range cases {
		for _, size := range []int64{1, 97, 4096, 1 << 20} {
			whole, split, n := rowsOf(t, []byte(data), Options{}, size)
			if n == 0 {
				t.Fatalf("%s: not cut", name)
			}
			if whole != split {
				t.Errorf("%s, spans of %d (%d spans): rows differ:\nwhole\n%s\nsplit\n%s", name, size, n, whole, split)
			}
			if size == 1 && n < 40 {
				t.Errorf("%s: only %d spans of 1 byte", name, n)
			}
		}
	}
	gb := []byte{0xd5, 0xc5, 0xc8, 0xfd, ',', '1', '3', '8', '1', '2', '3', '4', '5', '6', '7', '8', '\n'}
	for name, data := range map[string][]byte{"gzip": {0x1f, 0x8b, 8, 0}, "gb18030": bytes.Repeat(gb, 50), "bom": append([]byte{0xEF, 0xBB, 0xBF}, csv...)} {
		if _, sps, _ := Spans(context.Background(), Input{R: bytes.NewReader(data)}, Options{}, 1); sps != nil {
			t.Errorf("%s: cut into %d spans", name, len(sps))
		}
	}
}

// FuzzSpans: whatever the bytes, a file that is cut reads as spans exactly
// as it reads whole.
func FuzzSpans(f *testing.F) {
	f.Add([]byte("a,b\n1,\"x\ny\"\n2,3\n"), uint16(3))
	f.Add([]byte("{\"a\":\"1\"}\n{\"a\":2}\n"), uint16(1))
	f.Add([]byte("x\"y,\"\"\"\n,\r\n\"a\"\rb\n"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		whole, split, _ := rowsOf(t, data, Options{SampleSize: 4096, MaxRecord: 1 << 16}, int64(size%512)+1)
		if whole != split {
			t.Fatalf("rows differ:\nwhole\n%s\nsplit\n%s", whole, split)
		}
	})
}

package scan

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// scanBytes scans b as an image and returns "kind:value" strings.
func scanBytes(t testing.TB, b []byte, opts Options) []string {
	t.Helper()
	var out []string
	err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), opts, func(f Feature) error {
		out = append(out, string(f.Kind)+":"+f.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFinders(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"mail Alice.Smith@Example.COM now", []string{"email:alice.smith@example.com"}},
		{"go.googlesource.com/fips140@v1.0.0 and golang.org/x/net@v0.1.0", nil},
		{"user@host", nil},
		{"a@mail.example.test b@xy.localdomain c@yy.zq", []string{"email:a@mail.example.test", "email:b@xy.localdomain"}},
		{"a@b.c", nil},
		{"x@example.com13800138000", []string{"email:x@example.com", "phone:+8613800138000"}},
		{"bob@example.comAlice", []string{"email:bob@example.com"}},
		{"tel 138-0013-8000, +86 139 1234 5678; (+86)13712345678", []string{"phone:+8613800138000", "phone:+8613912345678", "phone:+8613712345678"}},
		{"0086 13800138000 and 8613800138000", []string{"phone:+8613800138000", "phone:+8613800138000"}},
		{"a 138-00138000 b 1380013 8000 c 0086-138-0013-8000", []string{"phone:+8613800138000", "phone:+8613800138000", "phone:+8613800138000"}},
		{"call +1 202-456-1111 or +44 20 7946 0958", []string{"phone:+12024561111", "phone:+442079460958"}},
		{"order 213800138000 and 13800138000123", nil},
		{"pi 3.13800138000 v1.13800138000.2", nil},
		{"id 11010519491231002X, 110105194912310021x", []string{"cn_id:11010519491231002X"}},
		{"card 4111 1111 1111 1111 and 4444444444444448 and 6222021234567890128", []string{"bank_card:4111111111111111", "bank_card:4444444444444448", "bank_card:6222021234567890128"}},
		{"notacard 4111111111111112", nil},
		{"user13800138000@qq.com", []string{"email:user13800138000@qq.com"}},
		{"hex 0a8f7b1ae487b74f02792633154dfe74 and f13912345678d, fixed 02792633154", nil},
		{"全角 张三zhang.san@163.com 李四", []string{"email:zhang.san@163.com"}},
		{"手机：１３８００１３８０００，邮箱：ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ", []string{"phone:+8613800138000", "email:wang@example.cn"}},
		{"mixed 138０0138000 and plain 13900139000", []string{"phone:+8613800138000", "phone:+8613900139000"}},
		// Issue 15: '_' in domains (Excel's sample address); adjacent fields never merge.
		{"xls_cell@microsoft_excel.com", []string{"email:xls_cell@microsoft_excel.com"}},
		{"a@b.comc@d.com", nil},
		{"a@bb.com\tc@dd.com\x00e@ff.com", []string{"email:a@bb.com", "email:c@dd.com", "email:e@ff.com"}},
	} {
		got := scanBytes(t, []byte(tc.in), Options{})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSQLiteGluedRecord builds a table-leaf page by hand the way SQLite
// stores a row ("Alice", "alice.0000@example.com") with no separator
// between the fields, and checks the address is cut at the field bounds.
func TestSQLiteGluedRecord(t *testing.T) {
	page := make([]byte, 4096)
	name, mail := "Alice", "alice.0000@example.com"
	rec := []byte{3, byte(13 + 2*len(name)), byte(13 + 2*len(mail))}
	rec = append(rec, name...)
	rec = append(rec, mail...)
	cell := append([]byte{byte(len(rec)), 1}, rec...)
	at := 4096 - len(cell)
	copy(page[at:], cell)
	page[0] = 0x0D
	page[3], page[4] = 0, 1
	page[5], page[6] = byte(at>>8), byte(at)
	page[8], page[9] = byte(at>>8), byte(at)
	img := append(bytes.Repeat([]byte{0xAA}, 512), page...)
	got := scanBytes(t, img, Options{})
	if want := []string{"email:" + mail}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestBlockEdges scans the same bytes with many block sizes: features that
// straddle a block boundary must be reported exactly once.
func TestBlockEdges(t *testing.T) {
	var b bytes.Buffer
	for i := range 3000 {
		b.WriteString("x")
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString("user")
		b.WriteString(string(rune('a' + i%20)))
		b.WriteString("@example.cn,1390013")
		b.WriteString([]string{"8000", "8001", "8002"}[i%3])
		b.WriteString(" \x00\x01")
	}
	want := scanBytes(t, b.Bytes(), Options{BlockSize: 1 << 30})
	if len(want) != 6000 {
		t.Fatalf("one block: %d features, want 6000", len(want))
	}
	for _, bs := range []int{4 * margin, 4*margin + 1, 4*margin + 7, 10007} {
		for _, w := range []int{1, 2} {
			got := scanBytes(t, b.Bytes(), Options{BlockSize: bs, Workers: w})
			if !slices.Equal(got, want) {
				t.Errorf("block %d workers %d: %d features, want %d", bs, w, len(got), len(want))
			}
		}
	}
}

func TestUTF16(t *testing.T) {
	s := "contact: wang.wei@example.cn / 13912345678 "
	var b []byte
	b = append(b, 0xFF, 0xFE)
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	got := scanBytes(t, b, Options{})
	want := []string{"email:wang.wei@example.cn", "phone:+8613912345678"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	_ = identity.Email
}

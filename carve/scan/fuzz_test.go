package scan

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"
	"unicode/utf8"
)

// FuzzScan feeds arbitrary bytes to the scanner: no panic, every feature
// has a valid UTF-8 value and a path, and splitting the input into small
// blocks finds exactly what one block finds.
func FuzzScan(f *testing.F) {
	f.Add([]byte("x alice.0000@example.com, +86 138-0013-8000 11010519491231002X 4111 1111 1111 1111"))
	f.Add([]byte("fips140@v1.0.0 (+86)13912345678 a\x00b\x00c\x00"))
	f.Add([]byte("手机：１３８００１３８０００，邮箱：ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ"))
	var gz bytes.Buffer
	z := gzip.NewWriter(&gz)
	z.Write([]byte("bob@example.cn 13800138000\n"))
	z.Close()
	f.Add(gz.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		collect := func(bs int) []string {
			var out []string
			Scan(context.Background(), bytes.NewReader(b), int64(len(b)), Options{BlockSize: bs, Workers: 1, MaxDecoded: 1 << 20}, func(ft Feature) error {
				if !utf8.ValidString(ft.Value) || ft.Path == "" {
					t.Fatalf("bad feature %+v", ft)
				}
				out = append(out, ft.Path+"\t"+ft.Value)
				return nil
			})
			return out
		}
		one := collect(1 << 20)
		small := collect(4 * margin)
		if len(one) != len(small) {
			t.Fatalf("one block: %d features, small blocks: %d", len(one), len(small))
		}
	})
}

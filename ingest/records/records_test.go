package records

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// collect reads all rows of data with small chunks and returns them as
// "loc|f1|f2..." strings, rejects as "loc|REJECT reason".
func collect(t testing.TB, data []byte, o Options) ([]string, []*Info, error) {
	t.Helper()
	var out []string
	if o.ChunkSize == 0 {
		o.ChunkSize = 64
	}
	infos, err := Read(context.Background(), Input{R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data))}, o,
		func(c *Chunk) error {
			return c.Rows(func(r *Row) error {
				if r.Reject != "" {
					out = append(out, r.Loc.String()+"|REJECT "+r.Reject)
					return nil
				}
				s := r.Loc.String()
				for i, f := range r.Fields {
					if r.Names != nil && i < len(r.Names) {
						s += "|" + r.Names[i] + "=" + f
					} else {
						s += "|" + f
					}
				}
				out = append(out, s)
				return nil
			})
		})
	return out, infos, err
}

func TestDelimitedFormats(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		format string
		want   []string
	}{
		{"csv header quoted newline", "name,phone\n\"Li, \"\"Jr\"\"\",138\n\"a\nb\",139\n", "csv",
			[]string{"line 2|name=Li, \"Jr\"|phone=138", "line 3|name=a\nb|phone=139"}},
		{"dash no header", "张三----13812345678----a@b.com\n李四----13912345678----c@d.com\n", "delimited(----)",
			[]string{"line 1|张三|13812345678|a@b.com", "line 2|李四|13912345678|c@d.com"}},
		{"tsv garbage crlf", "x\t13812345678\r\ny\t13912345678\r\n@@@@\r\nz\t13712345678\r\nw\t13612345678\r\n", "tsv",
			[]string{"line 1|x|13812345678", "line 2|y|13912345678", "line 3|REJECT 1 fields, want 2", "line 4|z|13712345678", "line 5|w|13612345678"}},
		{"blank lines before header", "\n\r\nname,tel\n1,2\n", "csv",
			[]string{"line 4|name=1|tel=2"}},
		{"unterminated quote", "name,tel\n1,2\n3,\"4\n", "csv",
			[]string{"line 2|name=1|tel=2", "line 3|REJECT unterminated quoted field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cs := range []int{8, 64, 1 << 20} {
				got, infos, err := collect(t, []byte(tt.in), Options{ChunkSize: cs})
				if err != nil {
					t.Fatal(err)
				}
				if f := infos[0].Format.Name(); f != tt.format {
					t.Errorf("format %s, want %s", f, tt.format)
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("chunk %d:\n got %q\nwant %q", cs, got, tt.want)
				}
			}
		})
	}
}

func TestEncodings(t *testing.T) {
	text := "姓名----手机\n张三----13812345678\n|\\@[_----x\n"
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(text)
	u16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(text)
	u16be, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().String(text)
	for _, tc := range []struct{ enc, data string }{
		{EncUTF8, text}, {EncUTF8BOM, "\xEF\xBB\xBF" + text}, {EncGB18030, gbk},
		{EncUTF16LE, u16}, {EncUTF16BE, u16be},
	} {
		got, infos, err := collect(t, []byte(tc.data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if infos[0].Encoding != tc.enc {
			t.Errorf("encoding %s, want %s", infos[0].Encoding, tc.enc)
		}
		want := "line 2|姓名=张三|手机=13812345678\nline 3|姓名=|\\@[_|手机=x"
		if strings.Join(got, "\n") != want {
			t.Errorf("%s: got %q", tc.enc, got)
		}
	}
}

// TestEncodingMostlyUTF8: a UTF-8 file with a garbage line of raw bytes
// stays UTF-8; GBK text does not pass as UTF-8.
func TestEncodingMostlyUTF8(t *testing.T) {
	utf := strings.Repeat("张三,１３８１２３４５６７８,a＠b.com\n", 50) + "\xff\xfe\x80 garbage\n"
	if e := detectEncoding([]byte(utf), true); e != EncUTF8 {
		t.Errorf("UTF-8 with garbage detected as %s", e)
	}
	gbk, _ := simplifiedchinese.GBK.NewEncoder().String(strings.Repeat("张三李四王五赵六，北京市朝阳区建设路１号\n", 50))
	if e := detectEncoding([]byte(gbk), true); e != EncGB18030 {
		t.Errorf("GBK detected as %s", e)
	}
}

func TestJSONL(t *testing.T) {
	in := `{"user":{"name":"A","phones":["138",139]},"email":"a@b.c","n":null}
{broken
{"email":"x@y.z"}
`
	got, infos, err := collect(t, []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Format.Kind != KindJSONL {
		t.Fatalf("format %v", infos[0].Format)
	}
	want := []string{"line 1|email=a@b.c|user.name=A|user.phones.0=138|user.phones.1=139",
		"line 2|REJECT json: invalid character 'b' looking for beginning of object key string", "line 3|email=x@y.z"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestMySQLDump(t *testing.T) {
	in := "-- dump\n/*!40101 SET NAMES utf8 */;\nCREATE TABLE `u` (\n  `id` int NOT NULL,\n  `name` varchar(10) DEFAULT 'x,y',\n  `tel` varchar(20),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n" +
		"INSERT INTO `u` VALUES (1,'O\\'Brien','138'),(2,'a\\nb;c','139'),(3,NULL,'13\\\\7');\n" +
		"lorem ipsum garbage\n" +
		"INSERT INTO u (tel, name) VALUES ('140', 'Z');\n"
	got, infos, err := collect(t, []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Format.Name() != "mysql" {
		t.Fatalf("format %v", infos[0].Format.Name())
	}
	want := []string{
		`table "u" row 1 line 9|id=1|name=O'Brien|tel=138`,
		"table \"u\" row 2 line 9|id=2|name=a\nb;c|tel=139",
		`table "u" row 3 line 9|id=3|name=|tel=13\7`,
		`table "u" row 4 line 11|tel=140|name=Z`,
		`line 10|REJECT not SQL`,
	}
	// A rejected statement may be emitted before or after the rows of its
	// neighbours' chunks: compare as sets, each item carries its location.
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestPostgresCopy(t *testing.T) {
	in := "SET x = 1;\nCOPY public.c (id, phone, email) FROM stdin;\n1\t138\ta@b.c\n2\t\\N\tx\\ty\n3\tbad\n\\.\n"
	got, infos, err := collect(t, []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Format.Name() != "postgres" {
		t.Fatalf("format %v", infos[0].Format.Name())
	}
	want := []string{`table "c" row 1 line 3|id=1|phone=138|email=a@b.c`, "table \"c\" row 2 line 4|id=2|phone=|email=x\ty",
		`table "c" row 3 line 5|REJECT 2 fields, want 3`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestCompressionAndZip(t *testing.T) {
	csv := []byte("a,b\n1,2\n3,4\n")
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("x.csv")
	w.Write(csv)
	w, _ = zw.Create("y.csv.gz")
	w.Write(gz(csv))
	zw.Close()
	zs, _ := zstd.NewWriter(nil)
	for name, data := range map[string][]byte{
		"gzip": gz(csv), "zstd": zs.EncodeAll(csv, nil), "gzip+zip": gz(zbuf.Bytes()), "zip": zbuf.Bytes(),
	} {
		got, infos, err := collect(t, data, Options{TmpDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// "a,b" is no header (no known name, no identifiers below it).
		n := 3
		if name == "zip" || name == "gzip+zip" {
			n = 6
		}
		if len(got) != n {
			t.Errorf("%s: rows %q", name, got)
		}
		if !strings.HasPrefix(infos[0].Compression, strings.Split(name, "+")[0]) {
			t.Errorf("%s: compression %s", name, infos[0].Compression)
		}
	}
}

// TestBomb: a small gzip that inflates far beyond the ratio limit is
// stopped, not read to the end.
func TestBomb(t *testing.T) {
	zeros := bytes.Repeat([]byte("0000000000\n"), 1<<20) // 11 MiB of lines
	_, _, err := collect(t, gz(zeros), Options{MaxRatio: 50, MinBombBytes: 1 << 20, ChunkSize: 1 << 20})
	if !errors.Is(err, ErrBomb) {
		t.Fatalf("err %v, want ErrBomb", err)
	}
	// A zip member declaring an absurd size is refused before reading.
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("bomb.txt")
	w.Write(zeros)
	w, _ = zw.Create("ok.csv")
	w.Write([]byte("a,b\n1,2\n"))
	zw.Close()
	got, infos, err := collect(t, zbuf.Bytes(), Options{MaxRatio: 50, MinBombBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(infos[0].Err, ErrBomb) || len(got) != 2 {
		t.Errorf("member errors %v, rows %q", infos[0].Err, got)
	}
}

func TestSQLiteInPlace(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "tiny.sqlite"))
	if err != nil {
		t.Skip("no fixture")
	}
	got, _, err := collect(t, b, Options{TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("no rows")
	}
}

// seeds are the inputs every parser fuzz target starts from.
func seeds() [][]byte {
	s := [][]byte{
		[]byte("name,phone\n\"a\"\"b\",138\n\"x\ny\",1\n"),
		[]byte("a----b----c\n1----2----3\n"),
		[]byte("{\"a\":{\"b\":[1,\"x\"]}}\n{bad\n"),
		[]byte("CREATE TABLE `t` (`a` int, `b` text);\nINSERT INTO `t` VALUES (1,'x\\'y'),(2,NULL);\n"),
		[]byte("COPY t (a, b) FROM stdin;\n1\t\\N\n\\.\n"),
		[]byte("plain text 13812345678 a@b.com\n"),
		[]byte("\xFF\xFEa\x00,\x00b\x00\n\x00"),
		gz([]byte("a,b\n1,2\n")),
	}
	if ents, err := os.ReadDir("testdata"); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil && len(b) < 1<<16 {
				s = append(s, b)
			}
		}
	}
	return s
}

// FuzzRead runs the whole reader (sniffing, decoding, every parser) on
// arbitrary bytes: it must not panic, and every row must carry a location.
func FuzzRead(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := Options{ChunkSize: 256, MaxRecord: 1 << 16, MaxSpill: 1 << 20, MinBombBytes: 1 << 20, TmpDir: t.TempDir()}
		_, _ = Read(context.Background(), Input{R: bytes.NewReader(data), ReaderAt: bytes.NewReader(data), Size: int64(len(data))}, o,
			func(c *Chunk) error {
				return c.Rows(func(r *Row) error {
					if r.Loc.String() == "" {
						t.Fatal("row without location")
					}
					return nil
				})
			})
	})
}

// FuzzSniff: the format sniffer on arbitrary samples.
func FuzzSniff(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, sample []byte, atEOF bool) {
		fm := sniffFormat(sample, atEOF)
		if fm.Kind == KindDelimited && (fm.Delim == "" || fm.Fields < 2) {
			t.Fatalf("bad delimited format %+v", fm)
		}
		_ = detectEncoding(sample, atEOF)
	})
}

// FuzzDelimited: the record splitter and the chunk boundary finder agree:
// parsing a buffer whole or cut at lastBoundary gives the same records.
func FuzzDelimited(f *testing.F) {
	f.Add([]byte("a,\"b\nc\",d\n1,2,3\n"), byte(','))
	f.Add([]byte("x\"y,\"\"\"\n,\n"), byte(','))
	f.Fuzz(func(t *testing.T, data []byte, d byte) {
		if d == '"' || d == '\n' || d == '\r' {
			return
		}
		p := delimParser{delim: []byte{d}, quote: true}
		whole := parseAll(&p, data)
		if b := p.lastBoundary(data); b >= 0 {
			parts := append(parseAll(&p, data[:b+1]), parseAll(&p, data[b+1:])...)
			if fmt.Sprint(parts) != fmt.Sprint(whole) {
				t.Fatalf("cut at %d changes records:\n%q\n%q", b, whole, parts)
			}
		}
	})
}

func parseAll(p *delimParser, data []byte) [][]string {
	var out [][]string
	for pos := 0; pos < len(data); {
		f, next, _, _ := p.record(data, pos, nil)
		if next <= pos {
			panic("no progress")
		}
		out = append(out, append([]string(nil), f...))
		pos = next
	}
	return out
}

// FuzzSQL drives the SQL dump parser directly (whatever the sniffer
// would say about the bytes).
func FuzzSQL(f *testing.F) {
	f.Add([]byte("CREATE TABLE `t` (`a` int, `b` text);\nINSERT INTO `t` VALUES (1,'x\\'y'),(2,NULL);\n"))
	f.Add([]byte("COPY t (a, b) FROM stdin;\n1\t\\N\n\\.\n"))
	f.Add([]byte("/* c */; -- x\n# y\nINSERT t VALUES ((1),'a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{ctx: context.Background(), o: Options{}, emit: func(c *Chunk) error {
			return c.Rows(func(*Row) error { return nil })
		}}
		r.o.defaults()
		_ = r.sql(bufio.NewReader(bytes.NewReader(data)), &Info{})
	})
}

// FuzzJSONL drives the JSON Lines row parser directly.
func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,"x",{"c":null}]},"d":true}` + "\n{bad\n[1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Chunk{Info: &Info{Format: Format{Kind: KindJSONL}}, data: data, line: 1}
		_ = c.Rows(func(r *Row) error {
			if r.Reject == "" && len(r.Names) != len(r.Fields) {
				t.Fatalf("names %v fields %v", r.Names, r.Fields)
			}
			return nil
		})
	})
}

// TestHeaderOutlivesSample reads a header CSV through readers that return
// short reads (gzip, UTF-16, a BOM), so the sniffer's sample buffer is
// refilled many times: every chunk, parsed after the whole read, must still
// carry the header as written. The header once aliased that buffer and was
// overwritten, so files past one chunk lost their column roles.
func TestHeaderOutlivesSample(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("姓名,手机号,邮箱\n")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "name%d,1380000%04d,u%d@example.com\n", i, i%10000, i)
	}
	plain := b.Bytes()
	u16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes(plain)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{
		"gzip":    gz(plain),
		"bom":     append([]byte{0xEF, 0xBB, 0xBF}, plain...),
		"utf16":   u16,
		"utf16gz": gz(u16),
		"plain":   plain,
	}
	want := []string{"姓名", "手机号", "邮箱"}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			var chunks []*Chunk
			_, err := Read(context.Background(), Input{R: iotest.HalfReader(bytes.NewReader(data))},
				Options{ChunkSize: 4096, SampleSize: 4096}, func(c *Chunk) error {
					chunks = append(chunks, c)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if len(chunks) < 50 {
				t.Fatalf("%d chunks, want many", len(chunks))
			}
			rows := 0
			for _, c := range chunks {
				if !slices.Equal(c.Names, want) {
					t.Fatalf("chunk %d names %q, want %q", c.Seq, c.Names, want)
				}
				_ = c.Rows(func(r *Row) error { rows++; return nil })
			}
			if rows != 20000 {
				t.Fatalf("%d rows, want 20000", rows)
			}
		})
	}
}

package scan

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

// plantSet generates n people with a mobile and an address each, with the
// canonical values the scan must report.
type person struct{ name, mail, phone, id string }

func people(rng *rand.Rand, n int, tag string) []person {
	var out []person
	for i := range n {
		p := person{
			name:  fmt.Sprintf("Name%s%d", strings.ToUpper(tag), i),
			mail:  fmt.Sprintf("%s.%04d@example.com", tag, i),
			phone: fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1e9)),
		}
		out = append(out, p)
	}
	return out
}

func TestScanPlantedImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]bool{} // kind:value of everything planted
	var parts [][]byte
	plant := func(ps []person) {
		for _, p := range ps {
			want["email:"+p.mail] = true
			want["phone:+86"+p.phone] = true
		}
	}
	// Plain text log.
	txt := people(rng, 100, "plain")
	plant(txt)
	var b bytes.Buffer
	for _, p := range txt {
		fmt.Fprintf(&b, "%s login from %s tel %s\n", p.name, p.mail, p.phone[:3]+"-"+p.phone[3:7]+"-"+p.phone[7:])
	}
	parts = append(parts, append([]byte{}, b.Bytes()...))
	// gzip'd log.
	gz := people(rng, 100, "gz")
	plant(gz)
	b.Reset()
	zw := gzip.NewWriter(&b)
	for _, p := range gz {
		fmt.Fprintf(zw, "%s,%s,+86 %s\n", p.name, p.mail, p.phone)
	}
	zw.Close()
	parts = append(parts, append([]byte{}, b.Bytes()...))
	// zstd stream.
	zs := people(rng, 50, "zst")
	plant(zs)
	b.Reset()
	ze, _ := zstd.NewWriter(&b)
	for _, p := range zs {
		fmt.Fprintf(ze, "%s\t%s\t%s\n", p.name, p.mail, p.phone)
	}
	ze.Close()
	parts = append(parts, append([]byte{}, b.Bytes()...))
	// xz and bzip2 logs, made by the tools.
	for _, tool := range []string{"xz", "bzip2"} {
		if tp, err := exec.LookPath(tool); err == nil {
			ps := people(rng, 40, tool)
			plant(ps)
			var in bytes.Buffer
			for _, p := range ps {
				fmt.Fprintf(&in, "%s %s %s\n", p.name, p.mail, p.phone)
			}
			cmd := exec.Command(tp, "-c")
			cmd.Stdin = &in
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, out)
		}
	}
	// DOCX: deflated word/document.xml.
	dx := people(rng, 50, "docx")
	plant(dx)
	b.Reset()
	z := zip.NewWriter(&b)
	w, _ := z.Create("[Content_Types].xml")
	w.Write([]byte(`<?xml version="1.0"?><Types/>`))
	w, _ = z.Create("word/document.xml")
	w.Write([]byte(`<w:document><w:body>`))
	for _, p := range dx {
		fmt.Fprintf(w, `<w:p><w:r><w:t>%s %s %s</w:t></w:r></w:p>`, p.name, p.mail, p.phone)
	}
	w.Write([]byte(`</w:body></w:document>`))
	z.Close()
	parts = append(parts, append([]byte{}, b.Bytes()...))
	// UTF-16LE text.
	u := people(rng, 30, "utf")
	plant(u)
	b.Reset()
	b.Write([]byte{0xFF, 0xFE})
	for _, p := range u {
		for _, c := range []byte(p.name + " <" + p.mail + "> " + p.phone + "\r\n") {
			b.Write([]byte{c, 0})
		}
	}
	parts = append(parts, append([]byte{}, b.Bytes()...))
	// SQLite table: name and address glued in each record.
	if p, err := exec.LookPath("sqlite3"); err == nil {
		sq := people(rng, 200, "alice")
		plant(sq)
		db := filepath.Join(t.TempDir(), "u.db")
		var sql strings.Builder
		// Records glue the fields: "Alice" "alice.0000@example.com" and
		// "user12" "13912345678" "alice.0012@..." run together on disk.
		// t3 stores phones and cards as INTEGER: binary on disk.
		sql.WriteString("CREATE TABLE users(name TEXT, email TEXT, phone TEXT);CREATE TABLE t2(name TEXT, phone TEXT, email TEXT);CREATE TABLE t3(name TEXT, phone INTEGER, card INTEGER);BEGIN;")
		for i, x := range people(rng, 100, "int") {
			want["phone:+86"+x.phone] = true
			card := luhnComplete(fmt.Sprintf("62%013d", rng.Int64N(1e13)))
			want["bank_card:"+card] = true
			fmt.Fprintf(&sql, "INSERT INTO t3 VALUES('n%d',%s,%s);", i, x.phone, card)
		}
		for i, x := range sq {
			if i%2 == 0 {
				fmt.Fprintf(&sql, "INSERT INTO users VALUES('Alice','%s','%s');", x.mail, x.phone)
			} else {
				fmt.Fprintf(&sql, "INSERT INTO t2 VALUES('user%d','%s','%s');", i, x.phone, x.mail)
			}
		}
		sql.WriteString("COMMIT;")
		if out, err := exec.Command(p, db, sql.String()).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
		d, _ := os.ReadFile(db)
		parts = append(parts, d)
	} else if os.Getenv("CI") != "" {
		t.Fatal("sqlite3 not installed")
	}
	// Image: parts at sector offsets over a random fill.
	var img []byte
	fill := func(n int) {
		for range n {
			img = append(img, byte(rng.Uint32()))
		}
	}
	fill(1 << 20)
	for _, p := range parts {
		img = append(img, p...)
		fill((512-len(img)%512)%512 + 512*(1+rng.IntN(64)))
	}
	fill(1 << 20)
	path := filepath.Join(t.TempDir(), "planted.img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	got := map[string]bool{}
	paths := map[string]bool{}
	err = Scan(context.Background(), f, int64(len(img)), Options{BlockSize: 256 << 10}, func(ft Feature) error {
		k := string(ft.Kind) + ":" + ft.Value
		if !want[k] {
			t.Errorf("reported %s at %s (context %q): not planted", k, ft.Path, ft.Context)
		}
		if got[k] && ft.Kind == identity.Email {
			// Each planted address appears once on the image.
			t.Errorf("reported %s twice (%s %q)", k, ft.Path, ft.Context)
		}
		got[k] = true
		for _, dec := range []string{"GZIP", "ZIP", "ZSTD", "XZ", "BZIP2"} {
			if strings.Contains(ft.Path, "-"+dec+"-") {
				paths[dec] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missed := 0
	for k := range want {
		if !got[k] {
			missed++
			if missed < 100 {
				t.Logf("missed %s", k)
			}
		}
	}
	recall := float64(len(want)-missed) / float64(len(want))
	t.Logf("planted %d, found %d, recall %.3f, decoders %v", len(want), len(want)-missed, recall, paths)
	if recall < 0.95 {
		t.Errorf("recall %.3f < 0.95", recall)
	}
	for _, dec := range []string{"GZIP", "ZIP", "ZSTD", "XZ", "BZIP2"} {
		if !paths[dec] {
			t.Errorf("no feature found through %s", dec)
		}
	}
}

// BenchmarkScan measures scanning throughput over a seeded random fill
// with a sprinkling of text (MB/s is reported by SetBytes).
func BenchmarkScan(b *testing.B) {
	for _, mode := range []string{"before", "after"} {
		b.Run(mode, func(b *testing.B) {
			legacyOnly = mode == "before"
			defer func() { legacyOnly = false }()
			benchmarkScan(b)
		})
	}
}

func benchmarkScan(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	img := make([]byte, 64<<20)
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	line := []byte("zhang.san@example.com,13800138000,110105194912310021\n")
	for off := 0; off+len(line) < len(img); off += 4096 {
		copy(img[off:], line)
	}
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		Scan(context.Background(), bytes.NewReader(img), int64(len(img)), Options{}, func(Feature) error { n++; return nil })
	}
}

// BenchmarkScanText measures scanning 64 MiB of random-ish text (words,
// numbers, identifiers, line breaks), without ("before": the decoders of
// before issue 15) and with the PDF, OLE2, RTF, base64 and QP decoders.
func BenchmarkScanText(b *testing.B) {
	img := textImage(64 << 20)
	for _, mode := range []string{"before", "after"} {
		b.Run(mode, func(b *testing.B) {
			legacyOnly = mode == "before"
			defer func() { legacyOnly = false }()
			b.SetBytes(int64(len(img)))
			for b.Loop() {
				Scan(context.Background(), bytes.NewReader(img), int64(len(img)), Options{}, func(Feature) error { return nil })
			}
		})
	}
}

// TestThroughputRatio: the decoders of issue 15 must not slow the scan of
// text (where their triggers are looked for) by half; the two modes run
// interleaved, the best of three each.
func TestThroughputRatio(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("timing: not under -short or -race")
	}
	img := textImage(4 << 20)
	best := map[bool]time.Duration{}
	for range 3 {
		for _, legacy := range []bool{true, false} {
			legacyOnly = legacy
			t0 := time.Now()
			Scan(context.Background(), bytes.NewReader(img), int64(len(img)), Options{}, func(Feature) error { return nil })
			if d := time.Since(t0); best[legacy] == 0 || d < best[legacy] {
				best[legacy] = d
			}
			legacyOnly = false
		}
	}
	mbs := func(d time.Duration) float64 { return float64(len(img)) / 1e6 / d.Seconds() }
	t.Logf("before %.1f MB/s, after %.1f MB/s (ratio %.2f)", mbs(best[true]), mbs(best[false]), float64(best[true])/float64(best[false]))
	if best[false] > 2*best[true] {
		t.Errorf("the new decoders halve the scan speed")
	}
}

// textImage is n bytes of random-ish text: words (some that the decoders
// look for), numbers, identifiers and line breaks.
func textImage(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	words := []string{"the", "stream", "data", "客户", "login", "from", "tel", "Content-Type:", "text/plain", "user", "error", "{", "}", "=", "--", "\\par", "<<", ">>", "obj"}
	var img []byte
	for len(img) < n {
		switch rng.IntN(20) {
		case 0:
			img = fmt.Appendf(img, "u%d@example.com ", rng.IntN(1e6))
		case 1:
			img = fmt.Appendf(img, "13%09d ", rng.IntN(1e9))
		case 2:
			img = append(img, '\n')
		case 3:
			img = fmt.Appendf(img, "%d ", rng.IntN(1e6))
		default:
			img = append(append(img, words[rng.IntN(len(words))]...), ' ')
		}
	}
	return img[:n]
}

// luhnComplete appends the Luhn check digit to d.
func luhnComplete(d string) string {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-1-i)%2 == 0 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return d + string(rune('0'+(10-sum%10)%10))
}

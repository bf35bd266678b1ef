package carve

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// planted is one file the test generator put into an image.
type planted struct {
	name string
	data []byte
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// testImage draws a deterministic picture, noisy enough that JPEG entropy
// data contains 0xFF bytes (stuffing) and markers are exercised.
func testImage(rng *rand.Rand, w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8(rng.IntN(256)), 255})
		}
	}
	return m
}

// exifJPEG wraps thumb (a whole JPEG with its own EOI) into an APP1 Exif
// segment placed after the SOI of main: the carver must not stop at the
// thumbnail's EOI.
func exifJPEG(main, thumb []byte) []byte {
	payload := append([]byte("Exif\x00\x00II*\x00\x08\x00\x00\x00"), thumb...)
	var seg []byte
	seg = append(seg, 0xFF, 0xE1)
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, main[:2]...)
	out = append(out, seg...)
	return append(out, main[2:]...)
}

// bmpFile writes an uncompressed 24-bit BMP.
func bmpFile(rng *rand.Rand, w, h int) []byte {
	row := (24*w + 31) / 32 * 4
	size := 54 + row*h
	b := make([]byte, 54, size)
	b[0], b[1] = 'B', 'M'
	binary.LittleEndian.PutUint32(b[2:], uint32(size))
	binary.LittleEndian.PutUint32(b[10:], 54)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	binary.LittleEndian.PutUint16(b[26:], 1)
	binary.LittleEndian.PutUint16(b[28:], 24)
	binary.LittleEndian.PutUint32(b[34:], uint32(row*h))
	for range row * h {
		b = append(b, byte(rng.IntN(256)))
	}
	return b
}

// pdfFile writes a minimal valid PDF with a correct xref table, plus an
// incremental update when update is set (two %%EOF markers).
func pdfFile(title string, update bool) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	var offs []int
	obj := func(s string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), s)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>")
	content := "BT /F1 12 Tf 20 100 Td (" + title + ") Tj ET"
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	if update {
		o := b.Len()
		fmt.Fprintf(&b, "5 0 obj\n<< /Title (%s v2) >>\nendobj\n", title)
		x2 := b.Len()
		fmt.Fprintf(&b, "xref\n0 1\n0000000000 65535 f \n5 1\n%010d 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R /Info 5 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", o, xref, x2)
	}
	return b.Bytes()
}

// datasetCSV writes a leaked-dataset-like CSV: name, mobile, email, id.
func datasetCSV(rng *rand.Rand, rows int) []byte {
	var b bytes.Buffer
	b.WriteString("name,mobile,email,city\n")
	for i := range rows {
		fmt.Fprintf(&b, "user%d,1%d%09d,user%d@example.com,city%d\n", i, 3+rng.IntN(7), rng.IntN(1e9), i, rng.IntN(100))
	}
	return b.Bytes()
}

// corpus builds the planted files: generated ones (ground truth is the
// generator's bytes) and real files from the Go toolchain when present.
func corpus(t testing.TB, rng *rand.Rand) []planted {
	t.Helper()
	var out []planted
	add := func(name string, b []byte) { out = append(out, planted{name, b}) }
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	img := testImage(rng, 96, 64)
	thumb := enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, testImage(rng, 16, 16), nil) })
	add("photo.jpg", exifJPEG(enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 90}) }), thumb))
	add("plain.jpg", enc(func(b *bytes.Buffer) error { return jpeg.Encode(b, testImage(rng, 200, 120), nil) }))
	add("pic.png", enc(func(b *bytes.Buffer) error { return png.Encode(b, testImage(rng, 80, 50)) }))
	anim := &gif.GIF{}
	for i := range 3 {
		p := image.NewPaletted(image.Rect(0, 0, 40, 30), palette.Plan9)
		for j := range p.Pix {
			p.Pix[j] = uint8(rng.IntN(256) + i)
		}
		anim.Image = append(anim.Image, p)
		anim.Delay = append(anim.Delay, 10)
	}
	add("anim.gif", enc(func(b *bytes.Buffer) error { return gif.EncodeAll(b, anim) }))
	add("bitmap.bmp", bmpFile(rng, 33, 21))
	add("doc.pdf", pdfFile("hello", false))
	add("updated.pdf", pdfFile("revised", true))
	add("data.csv", datasetCSV(rng, 300))
	// A GBK-encoded dataset (Chinese names): text carving must accept
	// double-byte characters that are not UTF-8.
	var gbk bytes.Buffer
	gbkEnc := simplifiedchinese.GBK.NewEncoder()
	for i := range 200 {
		line, _ := gbkEnc.String(fmt.Sprintf("张伟%d----1%d%09d----北京市朝阳区%d号\r\n", i, 3+rng.IntN(7), rng.IntN(1e9), i))
		gbk.WriteString(line)
	}
	add("gbk.txt", gbk.Bytes())
	add("archive.zip", enc(func(b *bytes.Buffer) error {
		z := zip.NewWriter(b)
		w, _ := z.CreateHeader(&zip.FileHeader{Name: "stored.txt", Method: zip.Store})
		w.Write([]byte(strings.Repeat("stored member ", 50)))
		w, _ = z.Create("deflated.csv")
		w.Write(datasetCSV(rng, 50))
		return z.Close()
	}))
	add("report.docx", enc(func(b *bytes.Buffer) error {
		z := zip.NewWriter(b)
		w, _ := z.Create("[Content_Types].xml")
		w.Write([]byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`))
		w, _ = z.Create("word/document.xml")
		w.Write([]byte(`<w:document><w:body><w:p><w:r><w:t>contact alice@example.org 13800138000</w:t></w:r></w:p></w:body></w:document>`))
		return z.Close()
	}))
	add("log.gz", enc(func(b *bytes.Buffer) error {
		z := gzip.NewWriter(b)
		z.Write(datasetCSV(rng, 100))
		return z.Close()
	}))
	add("log.zst", enc(func(b *bytes.Buffer) error {
		z, _ := zstd.NewWriter(b)
		z.Write(datasetCSV(rng, 100))
		return z.Close()
	}))
	raw := datasetCSV(rng, 120)
	for _, tool := range []struct{ name, ext string }{{"bzip2", "bz2"}, {"xz", "xz"}} {
		if p, err := exec.LookPath(tool.name); err == nil {
			cmd := exec.Command(p, "-c")
			cmd.Stdin = bytes.NewReader(raw)
			b, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			add("log."+tool.ext, b)
		}
	}
	if p, err := exec.LookPath("sqlite3"); err == nil {
		// Not t.TempDir: fuzz workers are killed before their cleanups run.
		dir, err := os.MkdirTemp("", "evidx-carve-corpus")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		db := filepath.Join(dir, "c.sqlite")
		sql := "CREATE TABLE users(name TEXT, email TEXT, phone TEXT);"
		for i := range 200 {
			sql += fmt.Sprintf("INSERT INTO users VALUES('Name%d','name%d@example.net','139%08d');", i, i, i)
		}
		if out, err := exec.Command(p, db, sql).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
		b, _ := os.ReadFile(db)
		add("users.sqlite", b)
	}
	// Real files shipped with the Go toolchain.
	root := runtime.GOROOT()
	for _, p := range []string{
		"src/image/testdata/video-001.progressive.jpeg",
		"src/image/testdata/video-001.restart2.jpeg",
		"src/image/testdata/video-001.png",
		"src/image/testdata/video-001.gif",
		"src/image/png/testdata/benchPaletted.png",
		"src/archive/zip/testdata/test.zip",
		"src/archive/zip/testdata/winxp.zip",
		"src/archive/zip/testdata/zip64.zip",
		"src/archive/zip/testdata/dd.zip",
		"src/compress/bzip2/testdata/e.txt.bz2",
		"src/internal/zstd/testdata/1890a371.gettysburg.txt-100x.zst",
		"src/crypto/ed25519/testdata/sign.input.gz",
	} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err == nil {
			add(filepath.Base(p), b)
		}
	}
	return out
}

// placement records where a planted file went in an image.
type placement struct {
	planted
	runs []Run
}

// buildRaw lays files at sector offsets over a seeded pseudo-random fill,
// with random gaps of 1-16 sectors between them, and returns the image.
func buildRaw(rng *rand.Rand, files []planted) ([]byte, []placement) {
	var img []byte
	fill := func(n int) {
		for range n {
			img = append(img, byte(rng.Uint32()))
		}
	}
	fill(512 * (1 + rng.IntN(8)))
	var pl []placement
	for _, f := range files {
		off := int64(len(img))
		img = append(img, f.data...)
		pad := (512 - len(img)%512) % 512
		fill(pad + 512*(1+rng.IntN(16)))
		pl = append(pl, placement{f, []Run{{off, int64(len(f.data))}}})
	}
	return img, pl
}

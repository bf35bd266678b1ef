package scan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// pdfFiles makes, with abiword and qpdf, a PDF of a text file holding the
// identifiers (Flate content streams whose TJ arrays split words), the same
// with object streams, and a qpdf'd PDF whose Info dictionary (in an object
// stream) holds a UTF-16BE hex string and an escaped literal one.
func pdfFiles(t *testing.T, ids []ident, infoMail, titleMail string) [][]byte {
	testutil.NeedTool(t, "abiword")
	testutil.NeedTool(t, "qpdf")
	dir := t.TempDir()
	var txt strings.Builder
	for i := 0; i+2 < len(ids); i += 3 {
		fmt.Fprintf(&txt, "Customer %d: mail %s, mobile %s-%s-%s, ID %s.\n", i/3, ids[i].text, ids[i+1].text[:3], ids[i+1].text[3:7], ids[i+1].text[7:], ids[i+2].text)
	}
	os.WriteFile(filepath.Join(dir, "doc.txt"), []byte(txt.String()), 0o600)
	testutil.Run(t, "abiword", "--to=pdf", "-o", filepath.Join(dir, "doc.pdf"), filepath.Join(dir, "doc.txt"))
	testutil.Run(t, "qpdf", "--object-streams=generate", "--compress-streams=y", filepath.Join(dir, "doc.pdf"), filepath.Join(dir, "os.pdf"))
	// The real tool must show the identifiers: they are in the PDF.
	shown := bytes.ReplaceAll(testutil.Run(t, "pdftotext", filepath.Join(dir, "doc.pdf"), "-"), []byte("-"), nil)
	for _, id := range ids {
		if !bytes.Contains(shown, []byte(id.text)) {
			t.Fatalf("pdftotext does not show %s", id.text)
		}
	}
	var hexMail strings.Builder
	hexMail.WriteString("FEFF")
	for _, c := range infoMail {
		fmt.Fprintf(&hexMail, "00%02X", c)
	}
	esc := strings.ReplaceAll(strings.ReplaceAll(titleMail, "@", `\100`), ".", `\056`)
	obj := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		"<< /Length 17 >>\nstream\nBT (Hello) Tj ET\nendstream",
		"<< /Author <" + hexMail.String() + "> /Title (" + esc + ") >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	var xref []int
	for i, o := range obj {
		xref = append(xref, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(obj)+1)
	for _, o := range xref {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(obj)+1, x)
	os.WriteFile(filepath.Join(dir, "info.pdf"), b.Bytes(), 0o600)
	testutil.Run(t, "qpdf", "--object-streams=generate", "--compress-streams=y", filepath.Join(dir, "info.pdf"), filepath.Join(dir, "info2.pdf"))
	var out [][]byte
	for _, n := range []string{"doc.pdf", "os.pdf", "info2.pdf"} {
		d, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if n == "info2.pdf" && (bytes.Contains(d, []byte("Author")) || !bytes.Contains(d, []byte("/ObjStm"))) {
			t.Fatal("qpdf did not put the Info dictionary in an object stream")
		}
		out = append(out, d)
	}
	return out
}

func TestPDFStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 1))
	ids := idents(rng, 40, "pdf")
	info := "info.0001@example.org"
	title := "title.0002@example.net"
	files := pdfFiles(t, ids, info, title)
	path, _ := plantFiles(t, rng, files...)
	feats := scanImage(t, path)
	want := append(ids, ident{"email:" + info, info}, ident{"email:" + title, title})
	decs := checkFound(t, feats, want, func(k, p string) bool {
		if k == "email:"+info { // only in a UTF-16BE hex string
			return strings.Contains(p, "-PDFTEXT-")
		}
		return strings.Contains(p, "-PDF")
	})
	if decs["PDF"] == 0 || decs["PDFTEXT"] == 0 {
		t.Errorf("want features through both PDF and PDFTEXT: %v", decs)
	}
}

func FuzzPDF(f *testing.F) {
	f.Add([]byte("1 0 obj\n<< /Filter /FlateDecode >>\nstream\nx\x9c\x0b\xc9\xc8,V\x00\xa2D\x85\xe2\x92\xa2\xd4\xc4\\\x00H\x8e\x07\x1f\nendstream"))
	f.Add([]byte("<< /Filter [/AHx /Fl] /Length 9 >>stream\r\n78 9c 4b 4c 04 00 >\nendstream [(a@b.c)6(om)]TJ"))
	f.Add([]byte("<</Filter/A85>>stream\n87cURD]i,\"Ebo80~>endstream <</Filter /ASCIIHexDecode>>\nstream\n2861406578616d706c652e636f6d29546a>"))
	fuzzDecoder(f)
}

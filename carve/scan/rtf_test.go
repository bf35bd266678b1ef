package scan

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// fullWidth writes ASCII as its full-width form (U+FF01-U+FF5E).
func fullWidthOf(s string) string {
	var b strings.Builder
	for _, c := range s {
		b.WriteRune(c - '!' + 0xFF01)
	}
	return b.String()
}

// TestRTF: abiword writes a text file as RTF, non-ASCII text as \uN
// escapes; identifiers written in full-width characters are only found
// by decoding them, the ASCII ones by the raw scan (once: not again
// through RTF).
func TestRTF(t *testing.T) {
	testutil.NeedTool(t, "abiword")
	rng := rand.New(rand.NewPCG(23, 3))
	ids := idents(rng, 30, "rtf")
	dir := t.TempDir()
	var txt strings.Builder
	wide := map[string]bool{}
	for i, id := range ids {
		v := id.text
		if i%2 == 1 {
			v = fullWidthOf(v)
			wide[id.key] = true
		}
		fmt.Fprintf(&txt, "客户%d 资料 %s ；\n", i, v)
	}
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte(txt.String()), 0o600)
	out := filepath.Join(dir, "doc.rtf")
	testutil.Run(t, "abiword", "--to=rtf", "-o", out, in)
	rtf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rtf), `\u-1`) {
		t.Fatal("abiword wrote no \\u escapes for full-width text")
	}
	path, _ := plantFiles(t, rng, rtf)
	feats := scanImage(t, path)
	n := map[string]int{}
	for _, f := range feats {
		n[string(f.Kind)+":"+f.Value]++
	}
	checkFound(t, feats, ids, func(k, p string) bool {
		if n[k] != 1 {
			t.Errorf("%s reported %d times", k, n[k])
		}
		return wide[k] == strings.Contains(p, "-RTF-")
	})
}

func FuzzRTF(f *testing.F) {
	f.Add([]byte(`{\rtf1\ansi{\fonttbl{\f0 Arial;}}\uc1\u65345?\u65312?b.com zhang\'2esan@exa{\b mple}.c` + "\n" + `om \bin3 abc {\*\x y}\par}`))
	fuzzDecoder(f)
}

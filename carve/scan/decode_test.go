package scan

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
)

// ident is one planted identifier: kind:value as the scan reports it, and
// the text written into the document.
type ident struct{ key, text string }

// idents makes n people's e-mail, mobile and 18-digit ID number (valid
// check digit), distinct per tag.
func idents(rng *rand.Rand, n int, tag string) []ident {
	var out []ident
	for i := range n {
		mail := fmt.Sprintf("%s.%04d@example.com", tag, i)
		ph := fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1e9))
		d17 := fmt.Sprintf("%s%04d%02d%02d%03d", []string{"110105", "440304", "310104"}[rng.IntN(3)], 1950+rng.IntN(50), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(1000))
		id := d17 + string(identity.CNIDCheck([]byte(d17)))
		out = append(out, ident{"email:" + mail, mail}, ident{"phone:+86" + ph, ph}, ident{"cn_id:" + id, id})
	}
	return out
}

// plantFiles writes an image of the files at odd offsets over a random
// fill, and returns its path and the image offset of each file.
func plantFiles(t *testing.T, rng *rand.Rand, files ...[]byte) (string, []int64) {
	var img []byte
	fill := func(n int) {
		for range n {
			img = append(img, byte(rng.Uint32()))
		}
	}
	fill(300001)
	var offs []int64
	for _, f := range files {
		offs = append(offs, int64(len(img)))
		img = append(img, f...)
		fill(1 + 2*rng.IntN(50000))
	}
	p := filepath.Join(t.TempDir(), "img.raw")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, offs
}

// scanImage scans the image at path with small blocks (so streams cross
// block boundaries) and returns its features.
func scanImage(t *testing.T, path string) []Feature {
	testutil.Unchanged(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var out []Feature
	if err := Scan(context.Background(), f, st.Size(), Options{BlockSize: 64 << 10}, func(ft Feature) error {
		out = append(out, ft)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFound asserts that every planted identifier is reported, each
// through a path matching pathOK, and that nothing else is; it returns
// the count per decoder name seen in the paths.
func checkFound(t *testing.T, feats []Feature, want []ident, pathOK func(key, path string) bool) map[string]int {
	t.Helper()
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w.key] = true
	}
	got := map[string]bool{}
	decs := map[string]int{}
	for _, f := range feats {
		k := string(f.Kind) + ":" + f.Value
		if !wantSet[k] {
			t.Errorf("reported %s at %s (context %q): not planted", k, f.Path, f.Context)
			continue
		}
		if !pathOK(k, f.Path) {
			t.Errorf("%s at %s: wrong decoder path", k, f.Path)
		}
		got[k] = true
		for _, part := range strings.Split(f.Path, "-") {
			if part != "" && (part[0] < '0' || part[0] > '9') {
				decs[part]++
			}
		}
	}
	for _, w := range want {
		if !got[w.key] {
			t.Errorf("missed %s", w.key)
		}
	}
	t.Logf("%d features, %d planted, decoders %v", len(feats), len(want), decs)
	return decs
}

// fuzzDecoder is the body of the decoders' fuzz targets: no panic, valid
// features, and the same features whatever the block size.
func fuzzDecoder(f *testing.F) {
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
		one, small := collect(1<<20), collect(4*margin)
		if len(one) != len(small) {
			t.Fatalf("one block: %q, small blocks: %q", one, small)
		}
	})
}

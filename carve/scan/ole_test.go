package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
)

// xlsFile makes an Excel workbook of the identifiers with ssconvert, one
// column of text cells holding them (some with Chinese, so Excel stores
// those strings UTF-16LE), and returns it and the CSV ssconvert reads back.
func xlsFile(t *testing.T, dir string, ids []ident) ([]byte, string) {
	testutil.NeedTool(t, "ssconvert")
	var csv strings.Builder
	csv.WriteString("n,value\n")
	for i, id := range ids {
		v := id.text
		if i%5 == 0 {
			v = "客户 " + v
		}
		if !strings.HasPrefix(id.key, "email:") {
			v = "#" + v // text, not a number
		}
		fmt.Fprintf(&csv, "%d,%s\n", i, v)
	}
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte(csv.String()), 0o600)
	xls := filepath.Join(dir, "book.xls")
	testutil.Run(t, "ssconvert", in, xls)
	b, err := os.ReadFile(xls)
	if err != nil {
		t.Fatal(err)
	}
	return b, xlsCSV(t, xls)
}

func xlsCSV(t *testing.T, xls string) string {
	out := xls + ".csv"
	testutil.Run(t, "ssconvert", xls, out)
	b, _ := os.ReadFile(out)
	return string(b)
}

// fragmentOLE rewrites a compound file with its sectors in a random order,
// every sector number (FAT, header, directory start sectors) mapped: a
// fragmented file such as editing leaves. The real tool must read it.
func fragmentOLE(t *testing.T, rng *rand.Rand, b []byte) []byte {
	le := binary.LittleEndian
	if le.Uint16(b[0x1E:]) != 9 || le.Uint32(b[0x48:]) != 0 {
		t.Fatal("fragmentOLE handles 512-byte sectors without DIFAT sectors")
	}
	const ss = 512
	n := (len(b) - 512 + ss - 1) / ss
	b = append(b, make([]byte, (n+1)*ss-len(b))...)
	perm := rng.Perm(n)
	mp := func(x uint32) uint32 {
		if x < uint32(n) {
			return uint32(perm[x])
		}
		return x
	}
	sec := func(buf []byte, i int) []byte { return buf[(i+1)*ss : (i+2)*ss] }
	// The FAT, gathered, then mapped and reordered.
	var fatSecs []int
	for k := range 109 {
		if d := le.Uint32(b[0x4C+4*k:]); d < uint32(n) {
			fatSecs = append(fatSecs, int(d))
		}
	}
	var fat []uint32
	for _, d := range fatSecs {
		for j := range ss / 4 {
			fat = append(fat, le.Uint32(sec(b, d)[4*j:]))
		}
	}
	nfat := make([]uint32, len(fat))
	for i := range nfat {
		nfat[i] = 0xFFFFFFFF
	}
	for i := 0; i < n && i < len(fat); i++ {
		nfat[perm[i]] = mp(fat[i])
	}
	out := make([]byte, len(b))
	copy(out, b[:512])
	for i := range n {
		copy(sec(out, perm[i]), sec(b, i))
	}
	for k, d := range fatSecs {
		for j := range ss / 4 {
			le.PutUint32(sec(out, perm[d])[4*j:], nfat[k*ss/4+j])
		}
		le.PutUint32(out[0x4C+4*k:], mp(uint32(d)))
	}
	for _, o := range []int{0x30, 0x3C, 0x44} {
		le.PutUint32(out[o:], mp(le.Uint32(out[o:])))
	}
	// Directory entries: big-stream and root start sectors are FAT sectors.
	for d := le.Uint32(b[0x30:]); d < uint32(n); d = fat[d] {
		ds := sec(out, perm[d])
		for e := 0; e < ss; e += 128 {
			typ, size := ds[e+0x42], le.Uint32(ds[e+0x78:])
			if typ == 5 || typ == 2 && size >= 4096 {
				le.PutUint32(ds[e+0x74:], mp(le.Uint32(ds[e+0x74:])))
			}
		}
	}
	return out
}

// TestOLE2: a workbook written by ssconvert, once as written and once
// with its sectors shuffled (ssconvert reads it back the same), on an
// image. Large: the workbook stream is in big sectors and its SST has
// CONTINUE records; small: it is in the mini stream.
func TestOLE2(t *testing.T) {
	t.Run("large", func(t *testing.T) { testOLE2(t, 300, true) })
	t.Run("small", func(t *testing.T) { testOLE2(t, 8, false) })
}

func testOLE2(t *testing.T, people int, sst bool) {
	rng := rand.New(rand.NewPCG(22, uint64(people)))
	ids := idents(rng, people, "xls")
	dir := t.TempDir()
	xls, csv := xlsFile(t, dir, ids)
	frag := fragmentOLE(t, rng, xls)
	if !sst {
		f, err := openOLE(bytes.NewReader(xls), int64(len(xls)), new(int64(1<<30)))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range f.streams() {
			if st.name == "Workbook" && st.chunk != 64 {
				t.Fatalf("workbook of %d bytes is not in the mini stream", st.size)
			}
		}
	}
	fp := filepath.Join(dir, "frag.xls")
	os.WriteFile(fp, frag, 0o600)
	if got := xlsCSV(t, fp); got != csv {
		t.Fatalf("ssconvert reads the fragmented workbook differently")
	}
	for _, id := range ids[:3] {
		if !strings.Contains(csv, id.text) {
			t.Fatalf("ssconvert does not show %s", id.text)
		}
	}
	// The fragmented copy also as a MIME-style base64 attachment (coreutils
	// base64, 76-character lines): decoded, then parsed from the decoded
	// bytes ("OFF-BASE64-N-OLE-M").
	cmd := exec.Command(testutil.NeedTool(t, "base64"), "-w", "76")
	cmd.Stdin = bytes.NewReader(frag)
	b64, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	b64 = append([]byte("Content-Type: application/vnd.ms-excel\r\nContent-Transfer-Encoding: base64\r\n\r\n"), b64...)
	path, offs := plantFiles(t, rng, xls, frag, b64)
	feats := scanImage(t, path)
	planted := map[string]bool{}
	for _, id := range ids {
		planted[id.key] = true
	}
	// Every identifier of both copies: the intact copy's strings split by
	// CONTINUE records and the fragmented copy's cut by a join through OLE.
	count := map[string]int{}
	intactOLE, fragOLE, b64OLE := 0, 0, 0
	for _, f := range feats {
		k := string(f.Kind) + ":" + f.Value
		ole := strings.Contains(f.Path, "-OLE-")
		inFrag := f.At >= offs[1] && f.At < offs[1]+int64(len(frag)) || f.At >= offs[2] && f.At < offs[2]+int64(len(b64))
		if !planted[k] {
			// The raw scan reading across a join of the fragmented copy
			// may glue foreign bytes on; anything else is a false hit.
			if ole || !inFrag {
				t.Errorf("reported %s at %s (%q): not planted", k, f.Path, f.Context)
			} else {
				t.Logf("raw scan across a join: %s at %s", k, f.Path)
			}
			continue
		}
		count[k]++
		switch {
		case ole && strings.HasPrefix(f.Path, fmt.Sprint(offs[0])+"-OLE-"):
			intactOLE++
		case ole && strings.HasPrefix(f.Path, fmt.Sprint(offs[1])+"-OLE-"):
			fragOLE++
		case ole && strings.HasPrefix(f.Path, fmt.Sprint(offs[2]+int64(bytes.Index(b64, []byte("\r\n\r\n"))+4))+"-BASE64-"):
			b64OLE++
		case ole:
			t.Errorf("%s: OLE path of no planted file", f.Path)
		}
	}
	for _, id := range ids {
		if count[id.key] != 3 {
			t.Errorf("%s reported %d times, want 3 (one per copy)", id.key, count[id.key])
			for _, f := range feats {
				if string(f.Kind)+":"+f.Value == id.key {
					t.Logf("  at %s %q", f.Path, f.Context)
				}
			}
		}
	}
	if sst && intactOLE == 0 || fragOLE == 0 || b64OLE != fragOLE {
		t.Errorf("through OLE: %d in the intact copy (SST joins), %d in the fragmented one, %d in its base64 copy", intactOLE, fragOLE, b64OLE)
	}
	t.Logf("%d features, through OLE %d (intact copy) %d (fragmented) %d (fragmented, base64)", len(feats), intactOLE, fragOLE, b64OLE)
}

func FuzzOLE(f *testing.F) {
	b, err := os.ReadFile("testdata/small.xls")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	fuzzDecoder(f)
}

// TestSSTEncodingSwitch: Excel may write a UTF-16 string's characters
// after a CONTINUE record as 8-bit (the record's option byte says so);
// the string is read across it whole. BIFF records made by hand: no tool
// here writes that split on demand.
func TestSSTEncodingSwitch(t *testing.T) {
	le := binary.LittleEndian
	head := []rune("客户 zhang")
	tail := ".san@example.com"
	var sst []byte
	sst = le.AppendUint32(sst, 1)
	sst = le.AppendUint32(sst, 1)
	sst = le.AppendUint16(sst, uint16(len(head)+len(tail)))
	sst = append(sst, 1) // UTF-16LE characters
	for _, r := range head {
		sst = le.AppendUint16(sst, uint16(r))
	}
	var data []byte
	rec := func(typ uint16, body []byte) {
		data = le.AppendUint16(data, typ)
		data = le.AppendUint16(data, uint16(len(body)))
		data = append(data, body...)
	}
	rec(0x0809, make([]byte, 16)) // BOF
	rec(0x00FC, sst)
	rec(0x003C, append([]byte{0}, tail...)) // 8-bit from here
	rec(0x000A, nil)                        // EOF
	s := &scanner{opts: &Options{MaxDepth: 3}, today: identity.TodayOf(time.Now()), budget: 1 << 20}
	budget := int64(1 << 20)
	f := &oleFile{r: bytes.NewReader(data), size: int64(len(data)), ss: 512, budget: &budget}
	st := oleStream{name: "Workbook", frag: []int64{0}, chunk: int64(len(data)), size: int64(len(data))}
	s.biffJoins(context.Background(), f, st, "0-OLE-", 0, map[string]bool{})
	if len(s.feats) != 1 || s.feats[0].Value != "zhang.san@example.com" {
		t.Fatalf("features %+v", s.feats)
	}
	// The path names the file offset of the first character ('z').
	if want := fmt.Sprintf("0-OLE-%d", bytes.Index(data, []byte{'z', 0})); s.feats[0].Path != want {
		t.Errorf("path %s, want %s", s.feats[0].Path, want)
	}
	// The raw scan alone does not find it (only the fragment after the split).
	if got := scanBytes(t, data, Options{MaxDepth: -1}); slices.Contains(got, "email:zhang.san@example.com") {
		t.Errorf("raw scan found %q", got)
	}
}

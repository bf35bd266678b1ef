package fat

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// Typed content for the recovery test: each generator makes a valid file
// of about n bytes of its type from rng.

func genBin(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// genText is compressible but not trivially: words from a small alphabet.
func genText(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		for range 2 + rng.IntN(8) {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		b.WriteByte(" \n"[rng.IntN(2)])
	}
	return b.Bytes()[:n]
}

func genZIP(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; b.Len() < n; i++ {
		m := zip.Deflate
		if i%3 == 2 {
			m = zip.Store
		}
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("word/part%02d.xml", i), Method: m})
		w.Write(genText(rng, 2000+rng.IntN(6000)))
	}
	zw.Close()
	return b.Bytes()
}

func noise(rng *rand.Rand, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	return img
}

func genPNG(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	side := 8
	for side*side*4 < n {
		side++
	}
	png.Encode(&b, noise(rng, side, side))
	return b.Bytes()
}

func genJPEG(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 128, 32+n/200))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	img.Set(0, 0, color.Gray{})
	jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	return b.Bytes()
}

func genGzip(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(genText(rng, n*3))
	zw.Close()
	return b.Bytes()
}

// genPDF writes a PDF of small content-stream objects (so every cluster
// holds an object header) with a classic cross-reference table.
func genPDF(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	var offs []int
	obj := func(body string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	nStreams := max(1, n/500)
	kids := []string{}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	for i := range nStreams {
		kids = append(kids, fmt.Sprintf("%d 0 R", 3+2*i))
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), nStreams))
	for i := range nStreams {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>", 4+2*i))
		s := "BT /F1 12 Tf 72 712 Td (" + string(genText(rng, 200+rng.IntN(300))) + ") Tj ET"
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(s), s))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

var typedGens = []struct {
	ext string
	gen func(*rand.Rand, int) []byte
}{
	{"zip", genZIP}, {"docx", genZIP}, {"png", genPNG}, {"pdf", genPDF}, {"gz", genGzip}, {"jpg", genJPEG}, {"bin", genBin},
}

// checkedType says which generated types carry checksums over every byte
// (a wrong recovery of them must be found) and which only a structure.
func checkedType(ext string) string {
	switch ext {
	case "zip", "docx", "png", "gz":
		return checkVerified
	case "pdf", "jpg":
		return checkPlausible
	}
	return checkNone
}

func genTyped(rng *rand.Rand, prefix string, n, minSize, maxSize int) []genFile {
	var out []genFile
	for i := range n {
		g := typedGens[rng.IntN(len(typedGens))]
		out = append(out, genFile{path: fmt.Sprintf("%s%02d %s.%s", prefix, i, g.ext, g.ext), data: g.gen(rng, minSize+rng.IntN(maxSize-minSize))})
	}
	return out
}

// copyInOrder copies files one mcopy at a time, in slice order, so the
// allocation order (and so the fragmentation) follows the generator.
func copyInOrder(t *testing.T, img string, files []genFile) {
	t.Helper()
	dir := writeTree(t, files)
	for _, f := range files {
		testutil.Run(t, "mcopy", "-o", "-i", img, filepath.Join(dir, f.path), "::/"+f.path)
	}
}

// sectorAlloc reads TSK's per-sector allocation (blkls -l -e).
func sectorAlloc(t *testing.T, img string) map[int64]bool {
	t.Helper()
	out := testutil.Run(t, "blkls", "-l", "-e", img)
	alloc := map[int64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a, s, ok := strings.Cut(sc.Text(), "|")
		if n, err := strconv.ParseInt(a, 10, 64); ok && err == nil {
			alloc[n] = s == "a"
		}
	}
	return alloc
}

// TestRecoverDeleted builds a FAT32 volume where deleted files were
// fragmented around files that still exist (tsk_recover's rule recovers
// them) and others were partly overwritten after deletion (its rule then
// reads other files' clusters), and checks evidx against the generator's
// truth and against tsk_recover.
func TestRecoverDeleted(t *testing.T) {
	testutil.NeedTool(t, "mkfs.fat")
	testutil.NeedTool(t, "tsk_recover")
	dir := t.TempDir()
	img := filepath.Join(dir, "rec.img")
	testutil.Run(t, "mkfs.fat", "-F", "32", "-C", img, "40000")
	testutil.Run(t, "mmd", "-i", img, "::/R") // made first: R's entries never reuse the root's deleted slots
	rng := rand.New(rand.NewPCG(13, 4))
	// P: a row of files, then a filler up to a few KiB of free space, so
	// mtools (which allocates next-fit) must wrap round into the holes.
	p := genTyped(rng, "P", 24, 3000, 15000)
	copyInOrder(t, img, p)
	if free := freeBytes(t, img); free > 8<<10 {
		copyInOrder(t, img, []genFile{{path: "filler.bin", data: bytes.Repeat([]byte("F"), int(free-4<<10))}})
	}
	// Every third P file deleted leaves holes.
	var holes int
	for i := 0; i < len(p); i += 3 {
		testutil.Run(t, "mdel", "-i", img, "::/"+p[i].path)
		holes += len(p[i].data)
	}
	// Q: files larger than most holes fill them in turn and continue past
	// the P files between them: fragmented around clusters that stay
	// allocated. Their total stays within the free space.
	var q []genFile
	for total := 0; ; {
		g := genTyped(rng, fmt.Sprintf("Q%02d-", len(q)), 1, 6000, 14000)[0]
		if total+len(g.data)+512*2 > holes {
			break
		}
		total += len(g.data) + 512
		q = append(q, g)
	}
	copyInOrder(t, img, q)
	// Snapshot the layout: the runs every file had while allocated.
	snap, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]*fs.File{}
	fb, err := New(bytes.NewReader(snap), int64(len(snap)))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range walkAll(t, fb) {
		if !l.file.Deleted {
			before[l.file.Path] = l.file
		}
	}
	// Delete 16: all of Q but four, and some surviving P files.
	truth := map[string][]byte{} // deleted path -> original content
	var victims []genFile
	for i, f := range q {
		if i%4 != 1 && len(victims) < 10 {
			victims = append(victims, f)
		}
	}
	// Then P files: first those outside the span of every deleted Q file
	// (the Q file stays recoverable by the rule), then any (it does not).
	span := func(f *fs.File) (int64, int64) {
		return f.Runs[0].Offset, f.Runs[len(f.Runs)-1].Offset + f.Runs[len(f.Runs)-1].Length
	}
	inSpan := func(pf genFile) bool {
		a, _ := span(before["/"+pf.path])
		for _, v := range victims {
			if lo, hi := span(before["/"+v.path]); a >= lo && a < hi {
				return true
			}
		}
		return false
	}
	chosen := map[int]bool{}
	for pass := range 2 {
		for i := 1; len(victims) < 16 && i < len(p); i++ {
			if i%3 != 0 && !chosen[i] && (pass == 1 || !inSpan(p[i])) {
				chosen[i] = true
				victims = append(victims, p[i])
			}
		}
	}
	if len(victims) != 16 {
		t.Fatalf("%d files to delete, want 16", len(victims))
	}
	for _, f := range victims {
		testutil.Run(t, "mdel", "-i", img, "::/"+f.path)
		truth["/"+f.path] = f.data
	}
	// R: new files partly reuse the freed clusters.
	r := genTyped(rng, "R/R", 5, 1000, 5000)
	copyInOrder(t, img, r)
	testutil.Unchanged(t, img)

	// The truth of what can be recovered: a deleted file is intact when
	// none of its clusters is allocated now (TSK's blkls), and TSK's rule
	// finds exactly its clusters when, in addition, they ascend and every
	// other cluster between its first and last is allocated now.
	alloc := sectorAlloc(t, img)
	bps := int64(512)
	allocated := func(off int64) bool { return alloc[off/bps] }
	intact, byRule := 0, 0
	ruleOK := map[string]bool{}
	for p := range truth {
		f := before[p]
		if f == nil {
			t.Fatalf("%s not in the snapshot", p)
		}
		own := map[int64]bool{}
		ok := true
		for _, r := range f.Runs {
			for o := r.Offset; o < r.Offset+r.Length; o += bps {
				own[o] = true
				ok = ok && !allocated(o)
			}
		}
		if !ok {
			continue
		}
		intact++
		first, last := f.Runs[0].Offset, f.Runs[len(f.Runs)-1].Offset+f.Runs[len(f.Runs)-1].Length
		for i := 1; i < len(f.Runs); i++ {
			ok = ok && f.Runs[i].Offset > f.Runs[i-1].Offset // no wrap round the volume's end: the rule reads forward
		}
		for o := first; o < last && ok; o += bps {
			ok = own[o] || allocated(o)
		}
		if ok {
			byRule++
			ruleOK[p] = true
		}
	}

	// tsk_recover: how many deleted files come out byte-identical.
	out := filepath.Join(dir, "tsk")
	testutil.Run(t, "tsk_recover", img, out)
	tskOK := map[string]bool{}
	for p, data := range truth {
		if b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p))); err == nil && bytes.Equal(b, data) {
			tskOK[p] = true
		}
	}

	fh, size := openImage(t, img)
	f, err := New(fh, size)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]listed{}
	for _, l := range walkAll(t, f) {
		if l.file.Deleted {
			if _, dup := got[l.file.Path]; !dup {
				got[l.file.Path] = l
			}
		}
	}
	ours, skipOK, flaggedWrong := 0, 0, 0
	for p, data := range truth {
		l, ok := got[p]
		if !ok {
			t.Errorf("deleted %s not listed", p)
			continue
		}
		rec := l.file.Recovery
		ext := p[strings.LastIndexByte(p, '.')+1:]
		same := l.file.Recoverable && l.err == nil && l.sha == sha(data)
		if same {
			ours++
			if strings.HasPrefix(rec, "skip-allocated") {
				skipOK++
			}
			if want := checkedType(ext); want != checkNone && !strings.HasSuffix(rec, "+"+want) {
				t.Errorf("%s recovered byte-identical but marked %q (Err %q), want +%s", p, rec, l.file.Err, want)
			}
		} else if l.file.Recoverable {
			if strings.HasSuffix(rec, "+"+checkVerified) {
				t.Errorf("%s: recovered bytes differ from the original but marked %q", p, rec)
			}
			if checkedType(ext) == checkVerified && (!strings.HasSuffix(rec, "+"+checkMismatch) || l.file.Err == "") {
				t.Errorf("%s: recovered bytes differ, a %s check must say so: recovery %q, Err %q", p, ext, rec, l.file.Err)
			}
			if strings.HasSuffix(rec, "+"+checkMismatch) {
				flaggedWrong++
			}
		}
		t.Logf("%-16s recoverable %-5v identical %-5v tsk %-5v %-26q %s", p, l.file.Recoverable, same, tskOK[p], rec, l.file.Err)
		if tskOK[p] && !same {
			t.Errorf("%s: tsk_recover recovers it byte-identical, we do not (recoverable %v, %q, %q)", p, l.file.Recoverable, rec, l.file.Err)
		}
		if ruleOK[p] && !same {
			t.Errorf("%s: intact and laid out for the rule, not recovered (%q, %q)", p, rec, l.file.Err)
		}
		if l.file.Recoverable {
			for _, r := range l.file.Runs {
				for o := r.Offset; o < r.Offset+r.Length; o += bps {
					if allocated(o) {
						t.Errorf("%s: recovered from sector %d, which is allocated", p, o/bps)
					}
				}
			}
		}
	}
	if ours < len(tskOK) {
		t.Errorf("we recover %d deleted files byte-identical, tsk_recover %d", ours, len(tskOK))
	}
	if ours < byRule {
		t.Errorf("we recover %d byte-identical, the truth allows %d by the rule", ours, byRule)
	}
	// The scenario must exercise both sides of the rule.
	if skipOK == 0 {
		t.Errorf("no deleted file recovered by stepping over allocated clusters: the scenario lost its point")
	}
	if intact == len(truth) {
		t.Errorf("no deleted file overwritten: the scenario lost its point")
	}
	t.Logf("%d deleted: %d intact, %d recoverable by the rule (truth); tsk_recover %d byte-identical, evidx %d (%d of them by skip-allocated); %d wrong recoveries flagged as mismatch",
		len(truth), intact, byRule, len(tskOK), ours, skipOK, flaggedWrong)
}

// TestFATCopyFallback zeroes FAT 1 with dd (as a wiper or a failed write
// would): every file must still come out whole from FAT 2, with a problem
// naming both copies. Then only the FAT sector holding one file's chain is
// zeroed in FAT 1: that file is read from FAT 2's whole chain.
func TestFATCopyFallback(t *testing.T) {
	testutil.NeedTool(t, "dd")
	for _, bits := range []int{12, 16, 32} {
		t.Run(fmt.Sprintf("fat%d", bits), func(t *testing.T) {
			testutil.NeedTool(t, "mkfs.fat")
			dir := t.TempDir()
			img := filepath.Join(dir, "copies.img")
			testutil.Run(t, "mkfs.fat", "-F", strconv.Itoa(bits), "-C", img, map[int]string{12: "1440", 16: "20000", 32: "40000"}[bits])
			rng := rand.New(rand.NewPCG(uint64(bits), 8))
			// A 600 KiB file first puts the other chains past FAT 1's first sector.
			files := append([]genFile{{path: "F big.bin", data: genBin(rng, 600<<10)}}, genTyped(rng, "F", 7, 3000, 20000)...)
			copyInOrder(t, img, files)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			b := readBPB(t, raw)
			testutil.Run(t, "dd", "if=/dev/zero", "of="+img, "bs="+strconv.FormatInt(b.bps, 10),
				"seek="+strconv.FormatInt(b.rsvd, 10), "count="+strconv.FormatInt(b.fatSz, 10), "conv=notrunc", "status=none")
			testutil.Unchanged(t, img)
			fh, size := openImage(t, img)
			f, err := New(fh, size)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]listed{}
			for _, l := range walkAll(t, f) {
				got[l.file.Path] = l
			}
			for _, w := range files {
				if l := got["/"+w.path]; l.sha != sha(w.data) || l.err != nil || l.file.Err != "" {
					t.Errorf("%s: sha %s (%v, %q), want %s", w.path, l.sha, l.err, l.file.Err, sha(w.data))
				}
			}
			// The same with FATs too large to hold twice: copy 2 is still
			// chosen by its entry 0.
			saved := maxKeptFAT
			maxKeptFAT = 1
			fb, err := New(fh, size)
			maxKeptFAT = saved
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range walkAll(t, fb) {
				if l.file.Type == "file" && (l.err != nil || l.sha != got[l.file.Path].sha) {
					t.Errorf("large-FAT path: %s: sha %s (%v)", l.file.Path, l.sha, l.err)
				}
			}
			if !hasProblem(fb, "FAT copy 2 at") || !hasProblem(fb, "differs from the FAT in use (copy 2") {
				t.Errorf("large-FAT path: problems %q", fb.Problems())
			}
			fat1, fat2 := b.rsvd*b.bps, (b.rsvd+b.fatSz)*b.bps
			if want := fmt.Sprintf("FAT copy 1 at %#x is damaged (entry 0 is 0x0, not the media descriptor %#02x with the high bits set); FAT copy 2 at %#x used instead", fat1, raw[21], fat2); !hasProblem(f, want) {
				t.Errorf("no problem %q: %q", want, f.Problems())
			}
			if un, _ := f.Unallocated(); len(un) == 0 || un[0].Off < got["/"+files[len(files)-1].path].file.Runs[0].Offset {
				t.Errorf("unallocated space not from FAT 2: %v", un[:min(len(un), 3)])
			}

			// One FAT sector zeroed in FAT 1 only: entry 0 stays right, so
			// FAT 1 stays in use, and the broken chain is read from FAT 2.
			victim := got["/"+files[4].path].file
			c := uint32((victim.Runs[0].Offset-((b.rsvd+b.nfats*b.fatSz)*b.bps+b.rootSec*b.bps))/(b.spc*b.bps)) + 2
			entryAt := map[int]int64{12: int64(c) * 3 / 2, 16: int64(c) * 2, 32: int64(c) * 4}[bits]
			sec := (fat1 + entryAt) / b.bps
			if sec == b.rsvd || sec >= b.rsvd+b.fatSz {
				t.Fatalf("the victim's chain is in FAT 1's first sector; pick another file")
			}
			img2 := filepath.Join(dir, "partial.img")
			if err := os.WriteFile(img2, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			testutil.Run(t, "dd", "if=/dev/zero", "of="+img2, "bs="+strconv.FormatInt(b.bps, 10),
				"seek="+strconv.FormatInt(sec, 10), "count=1", "conv=notrunc", "status=none")
			fh2, size2 := openImage(t, img2)
			f2, err := New(fh2, size2)
			if err != nil {
				t.Fatal(err)
			}
			got = map[string]listed{}
			for _, l := range walkAll(t, f2) {
				got[l.file.Path] = l
			}
			for _, w := range files {
				if l := got["/"+w.path]; l.sha != sha(w.data) || l.err != nil {
					t.Errorf("partial: %s: sha %s (%v), want %s", w.path, l.sha, l.err, sha(w.data))
				}
			}
			if !hasProblem(f2, fmt.Sprintf("/%s: entry at", files[4].path)) || !hasProblem(f2, fmt.Sprintf("read from FAT copy 2 at %#x", fat2)) {
				t.Errorf("partial: fallback for %s not named: %q", files[4].path, f2.Problems())
			}
		})
	}
}

// TestTimeZone: FAT times read in a named zone give the instants fls -m -z
// gives for that zone; read without one they are UTC, with the problem
// saying so.
func TestTimeZone(t *testing.T) {
	testutil.NeedTool(t, "mkfs.fat")
	img := filepath.Join(t.TempDir(), "tz.img")
	testutil.Run(t, "mkfs.fat", "-C", img, "1440")
	rng := rand.New(rand.NewPCG(3, 3))
	copyInOrder(t, img, genTyped(rng, "T", 4, 100, 2000))
	fh, size := openImage(t, img)
	for _, zone := range []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Skipf("no zone data: %v", err)
		}
		fsys, err := OpenIn(loc)(fh, size)
		if err != nil {
			t.Fatal(err)
		}
		ours := map[string]*fs.File{}
		fsys.Walk(context.Background(), func(f *fs.File) error { ours[f.Path] = f; return nil })
		if p := fsys.Problems(); len(p) != 0 {
			t.Errorf("%s: problems %q", zone, p)
		}
		out := testutil.Run(t, "fls", "-r", "-m", "/", "-z", zone, img)
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			c := strings.Split(line, "|") // md5|name|inode|mode|uid|gid|size|atime|mtime|ctime|crtime
			f := ours[c[1]]
			if len(c) != 11 || f == nil {
				continue
			}
			n++
			for i, tm := range map[int]time.Time{7: f.Atime, 8: f.Mtime, 10: f.Btime} {
				if want, _ := strconv.ParseInt(c[i], 10, 64); tm.Unix() != want || tm.Location() != time.UTC {
					t.Errorf("%s %s field %d: %v (%d), fls %d", zone, c[1], i, tm, tm.Unix(), want)
				}
			}
		}
		if n != 4 {
			t.Errorf("%s: %d files compared, want 4", zone, n)
		}
	}
	f, err := New(fh, size)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Problems(); len(p) != 1 || p[0] != tzProblem {
		t.Errorf("no zone: problems %q, want %q", p, tzProblem)
	}
}

// FuzzCheck feeds the structure checks mutated files of every type they
// know: they must not panic, and must never call content verified that a
// second, independent decoder rejects (checked for gzip).
func FuzzCheck(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, g := range typedGens {
		f.Add(g.gen(rng, 1500))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, res, _ := checkContent(bytes.NewReader(data), int64(len(data)))
		if kind == "gzip" && res == checkVerified {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err == nil {
				_, err = io.Copy(io.Discard, zr)
			}
			if err != nil {
				t.Fatalf("gzip verified but: %v", err)
			}
		}
	})
}

// TestCheckContent: every generated type passes its check whole, and fails
// it with one byte changed in the middle (for the types whose checksums
// cover every byte) or with the last cluster swapped for another file's.
func TestCheckContent(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, g := range typedGens {
		data := g.gen(rng, 9000)
		want := checkedType(g.ext)
		kind, res, why := checkContent(bytes.NewReader(data), int64(len(data)))
		if res != want {
			t.Errorf("%s: %s %q (%s), want %q", g.ext, kind, res, why, want)
		}
		if want == checkNone {
			continue
		}
		bad := bytes.Clone(data)
		bad[len(bad)/2] ^= 0x40
		if _, res, _ := checkContent(bytes.NewReader(bad), int64(len(bad))); want == checkVerified && res != checkMismatch {
			t.Errorf("%s: a changed middle byte gives %q", g.ext, res)
		}
		tail := bytes.Clone(data)
		copy(tail[len(tail)-512:], genBin(rng, 512))
		if _, res, why := checkContent(bytes.NewReader(tail), int64(len(tail))); res != checkMismatch {
			t.Errorf("%s: a foreign last cluster gives %q (%s)", g.ext, res, why)
		}
	}
}

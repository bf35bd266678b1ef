package carve

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// fatImage is a FAT32 image built by mkfs.fat and mtools over a seeded
// random fill, holding deleted planted files, some of them fragmented
// around kept files.
type fatImage struct {
	path    string
	deleted []planted // the files deleted from it: the carving truth
	frag    map[string]bool
}

// buildFAT writes files into a fresh FAT32 image (512-byte clusters), every
// fragEvery-th one split in two around a kept file, then deletes them all.
// Fragmenting works the way it happens on real disks: a hole left by a
// deleted file is refilled first (the FSInfo next-free hint is reset so
// mtools searches from the start of the FAT, as Windows does).
func buildFAT(t *testing.T, rng *rand.Rand, files []planted, fragEvery int) fatImage {
	t.Helper()
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat32.img")
	fill := make([]byte, 40<<20)
	for i := range fill {
		fill[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(img, fill, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mkfs.fat", "-F", "32", "-s", "1", "-S", "512", img)
	// put queues a file; flush copies the queue in one mcopy call (in
	// order, so allocation stays sequential) to keep process starts few.
	var queue []string
	flush := func() {
		if len(queue) > 0 {
			testutil.Run(t, "mcopy", append(append([]string{"-i", img}, queue...), "::/")...)
			queue = queue[:0]
		}
	}
	put := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		queue = append(queue, p)
	}
	resetHint := func() {
		f, err := os.OpenFile(img, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{0xFF, 0xFF, 0xFF, 0xFF}, 512+492); err != nil { // FSInfo next free
			t.Fatal(err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	fi := fatImage{path: img, frag: map[string]bool{}}
	var names []string
	for i, f := range files {
		name := fmt.Sprintf("F%03d.BIN", i)
		if fragEvery > 0 && i%fragEvery == 0 && len(f.data) > 2048 {
			hole := fmt.Sprintf("H%03d.BIN", i)
			put(hole, random(len(f.data)/2))
			put(fmt.Sprintf("K%03d.BIN", i), random(1024+rng.IntN(4096)))
			flush()
			testutil.Run(t, "mdel", "-i", img, "::"+hole)
			resetHint()
			put(name, f.data)
			flush()
			fi.frag[f.name] = true
		} else {
			put(name, f.data)
		}
		put(fmt.Sprintf("K%03dB.BIN", i), random(512+rng.IntN(2048)))
		names = append(names, name)
		fi.deleted = append(fi.deleted, f)
	}
	flush()
	del := []string{"-i", img}
	for _, n := range names {
		del = append(del, "::"+n)
	}
	testutil.Run(t, "mdel", del...)
	return fi
}

// fatFree parses the FAT32 boot sector and first FAT of the image and
// returns the free clusters as image byte ranges: the test's own ground
// truth of unallocated space (the product gets it from ingest/fs).
func fatFree(t *testing.T, path string) []Run {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bs [512]byte
	if _, err := f.ReadAt(bs[:], 0); err != nil {
		t.Fatal(err)
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	nfat := int64(bs[16])
	total := int64(binary.LittleEndian.Uint32(bs[32:]))
	fatSz := int64(binary.LittleEndian.Uint32(bs[36:]))
	data := (reserved + nfat*fatSz) * bps
	csize := spc * bps
	clusters := (total*bps - data) / csize
	fat := make([]byte, fatSz*bps)
	if _, err := f.ReadAt(fat, reserved*bps); err != nil {
		t.Fatal(err)
	}
	var free []Run
	for c := int64(2); c < clusters+2; c++ {
		if binary.LittleEndian.Uint32(fat[c*4:])&0x0FFFFFFF != 0 {
			continue
		}
		off := data + (c-2)*csize
		if n := len(free); n > 0 && free[n-1].End() == off {
			free[n-1].Len += csize
		} else {
			free = append(free, Run{off, csize})
		}
	}
	return free
}

// dirHashes returns the SHA-256 of every regular file under dir.
func dirHashes(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || filepath.Ext(p) == ".xml" || filepath.Base(p) == "audit.txt" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		out = append(out, hex.EncodeToString(h.Sum(nil)))
		return nil
	})
	return out
}

// score counts distinct planted files among hashes, and hashes that match
// no planted file.
func score(truth map[string]bool, hashes []string) (identical, other int) {
	seen := map[string]bool{}
	for _, h := range hashes {
		switch {
		case truth[h] && !seen[h]:
			identical++
			seen[h] = true
		case !truth[h]:
			other++
		}
	}
	return
}

func TestCarveFAT32DeletedAndFragmented(t *testing.T) {
	testutil.NeedTool(t, "mkfs.fat")
	testutil.NeedTool(t, "mcopy")
	rng := rand.New(rand.NewPCG(7, 11))
	files := corpus(t, rng)
	fi := buildFAT(t, rng, files, 3)
	testutil.Unchanged(t, fi.path)
	img, err := os.Open(fi.path) // read-only: evidence is never written
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	free := fatFree(t, fi.path)

	truth := map[string]bool{}
	for _, f := range fi.deleted {
		truth[sha(f.data)] = true
	}
	var got []Carved
	var hashes []string
	var total int64
	err = Carve(t.Context(), img, free, Options{ChunkSize: 1 << 20}, func(c Carved) error {
		got = append(got, c)
		hashes = append(hashes, c.SHA256)
		total += c.Length
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]Carved{}
	for _, c := range got {
		byHash[c.SHA256] = c
	}
	fragmented := 0
	for _, f := range fi.deleted {
		c, ok := byHash[sha(f.data)]
		if !ok {
			t.Errorf("deleted %s (%d bytes, fragmented %v) not recovered", f.name, len(f.data), fi.frag[f.name])
			continue
		}
		if fi.frag[f.name] {
			if len(c.Runs) != 2 {
				t.Errorf("fragmented %s carved as %d runs", f.name, len(c.Runs))
			}
			fragmented++
		}
	}
	identical, other := score(truth, hashes)
	if other > 0 {
		for _, c := range got {
			if !truth[c.SHA256] {
				t.Errorf("carved %s at %#x (%d bytes) matches no deleted file", c.Type, c.Offset, c.Length)
			}
		}
	}
	t.Logf("evidx: %d/%d deleted files byte-identical (%d fragmented), %d other, %d bytes out", identical, len(fi.deleted), fragmented, other, total)
	if fragmented == 0 {
		t.Error("no fragmented file recovered")
	}

	// The same image through PhotoRec and foremost.
	if p, err := exec.LookPath("photorec"); err == nil {
		out := filepath.Join(t.TempDir(), "pr")
		cmd := exec.Command(p, "/log", "/d", out, "/cmd", fi.path, "partition_none,options,paranoid,fileopt,everything,enable,wholespace,search")
		cmd.Dir = t.TempDir()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("photorec: %v\n%.2000s", err, b)
		}
		pi, po := score(truth, dirHashes(t, out+".1"))
		t.Logf("photorec: %d byte-identical, %d other", pi, po)
		if identical <= pi {
			t.Errorf("evidx recovered %d byte-identical files, photorec %d: want strictly more", identical, pi)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("photorec not installed")
	}
	// scalpel, with the stock configuration's image, PDF and ZIP rules
	// enabled: logged for comparison, not asserted.
	if p, err := exec.LookPath("scalpel"); err == nil {
		if conf, err := os.ReadFile("/etc/scalpel/scalpel.conf"); err == nil {
			var rules []string
			for _, l := range strings.Split(string(conf), "\n") {
				f := strings.Fields(strings.TrimLeft(strings.TrimSpace(l), "#"))
				if len(f) >= 4 && (f[0] == "gif" || f[0] == "jpg" || f[0] == "png" || f[0] == "pdf" || f[0] == "zip" || f[0] == "bmp") {
					rules = append(rules, strings.TrimLeft(strings.TrimSpace(l), "#"))
				}
			}
			cf := filepath.Join(t.TempDir(), "scalpel.conf")
			os.WriteFile(cf, []byte(strings.Join(rules, "\n")+"\n"), 0o600)
			out := filepath.Join(t.TempDir(), "sc")
			if b, err := exec.Command(p, "-c", cf, "-o", out, fi.path).CombinedOutput(); err != nil {
				t.Logf("scalpel: %v\n%.500s", err, b)
			} else {
				si, so := score(truth, dirHashes(t, out))
				t.Logf("scalpel: %d byte-identical, %d other", si, so)
			}
		}
	}
	if p, err := exec.LookPath("foremost"); err == nil {
		out := filepath.Join(t.TempDir(), "fm")
		if b, err := exec.Command(p, "-t", "all", "-i", fi.path, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("foremost: %v\n%.2000s", err, b)
		}
		fi2, fo := score(truth, dirHashes(t, out))
		t.Logf("foremost: %d byte-identical, %d other", fi2, fo)
		if other >= fo {
			t.Errorf("evidx emitted %d non-matching files, foremost %d: want fewer", other, fo)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("foremost not installed")
	}
}

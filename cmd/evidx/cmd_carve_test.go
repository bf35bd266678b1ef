package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// carveFATImage makes a FAT16 image (8 MiB: small enough for -race runs;
// FAT32 is covered in package carve) over a seeded random fill holding a
// kept PNG and a deleted PNG and CSV dataset; it returns the image path
// and the contents by name.
func carveFATImage(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	rng := rand.New(rand.NewPCG(21, 22))
	dir := t.TempDir()
	img := filepath.Join(dir, "carve.img")
	fill := make([]byte, 8<<20)
	for i := range fill {
		fill[i] = byte(rng.Uint32())
	}
	os.WriteFile(img, fill, 0o600)
	testutil.Run(t, "mkfs.fat", "-F", "16", "-s", "2", img)
	pic := func(w, h int) []byte {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = byte(rng.Uint32())
		}
		m.Set(0, 0, color.White)
		var b bytes.Buffer
		png.Encode(&b, m)
		return b.Bytes()
	}
	var csv bytes.Buffer
	csv.WriteString("name,phone,email\n")
	for i := range 200 {
		fmt.Fprintf(&csv, "n%d,139%08d,n%d@example.cn\n", i, i*7, i)
	}
	files := map[string][]byte{"KEPT.PNG": pic(40, 30), "GONE.PNG": pic(50, 20), "LEAK.CSV": csv.Bytes()}
	src := t.TempDir()
	for _, n := range []string{"KEPT.PNG", "GONE.PNG", "LEAK.CSV"} {
		p := filepath.Join(src, n)
		os.WriteFile(p, files[n], 0o600)
		testutil.Run(t, "mcopy", "-i", img, p, "::/"+n)
	}
	testutil.Run(t, "mdel", "-i", img, "::/GONE.PNG", "::/LEAK.CSV")
	return img, files
}

func TestCarveCLI(t *testing.T) {
	img, files := carveFATImage(t)
	testutil.Unchanged(t, img)
	sha := func(b []byte) string { return testutil.SHA256File(t, writeTemp(t, b)) }
	for _, tc := range []struct {
		args []string
		want []string // names expected among the carved files
		not  []string
		mode string
	}{
		{nil, []string{"GONE.PNG", "LEAK.CSV"}, []string{"KEPT.PNG"}, "unallocated"},
		{[]string{"--whole"}, []string{"GONE.PNG", "LEAK.CSV", "KEPT.PNG"}, nil, "whole"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		stdout, err := lsRun(t, append([]string{"carve", img, "--out", out, "--json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Mode   string `json:"mode"`
			Carved []struct {
				Offset int64  `json:"offset"`
				Length int64  `json:"length"`
				Type   string `json:"type"`
				SHA256 string `json:"sha256"`
				Path   string `json:"path"`
			} `json:"carved"`
		}
		if err := json.Unmarshal(stdout, &res); err != nil {
			t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
		}
		if res.Mode != tc.mode {
			t.Errorf("%v: mode %q, want %q", tc.args, res.Mode, tc.mode)
		}
		got := map[string]bool{}
		for _, c := range res.Carved {
			p := filepath.Join(out, filepath.FromSlash(c.Path))
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", c.Path, st.Mode().Perm())
			}
			if h := testutil.SHA256File(t, p); h != c.SHA256 || st.Size() != c.Length {
				t.Errorf("%s: content does not match the manifest", c.Path)
			}
			if !strings.HasPrefix(c.Path, c.Type+"/") {
				t.Errorf("%s not under its type %s", c.Path, c.Type)
			}
			got[c.SHA256] = true
		}
		for _, n := range tc.want {
			if !got[sha(files[n])] {
				t.Errorf("%v: %s not carved byte-identical", tc.args, n)
			}
		}
		for _, n := range tc.not {
			if got[sha(files[n])] {
				t.Errorf("%v: allocated %s carved from unallocated space", tc.args, n)
			}
		}
		if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("output directory mode: %v %v", st.Mode().Perm(), err)
		}
		if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
			t.Error("no manifest.json")
		}
	}
	// Bad usage exits 2: no --out, output inside the evidence path, unknown type.
	for _, argv := range [][]string{
		{"carve", img},
		{"carve", img, "--out", filepath.Join(img, "x")},
		{"carve", img, "--out", t.TempDir(), "--types", "nosuch"},
		{"carve"},
	} {
		_, err := lsRun(t, argv...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error", argv, err)
		}
	}
	if _, err := lsRun(t, "carve", filepath.Join(t.TempDir(), "missing.img"), "--out", t.TempDir()); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("missing image: %v, want a failure (exit 1)", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, b, 0o600)
	return p
}

func TestScanCLI(t *testing.T) {
	img, _ := carveFATImage(t)
	testutil.Unchanged(t, img)
	out := filepath.Join(t.TempDir(), "features")
	stdout, err := lsRun(t, "scan", img, "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Features     map[string]int `json:"features"`
		FeatureFiles []string       `json:"feature_files"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	// The deleted CSV holds 200 addresses and 200 mobiles (139 + 8 digits).
	if res.Features["email"] != 200 || res.Features["phone"] != 200 {
		t.Errorf("features %v, want 200 emails and 200 phones", res.Features)
	}
	// bulk_extractor's file names, banners and columns, the normalised
	// value beside the feature as found.
	for _, k := range []string{"email", "telephone", "cn_id", "ccn"} {
		for _, f := range []string{k + ".txt", k + "_histogram.txt"} {
			p := filepath.Join(out, f)
			st, err := os.Stat(p)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "telephone.txt"))
	for _, want := range []string{"# Feature-Recorder: telephone\n", "# Filename: " + img + "\n", "# Feature-File-Version: 1.1\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("telephone.txt has no banner line %q", want)
		}
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 4 || !strings.HasPrefix(f[1], "139") || f[3] != "+86"+f[1] || !strings.Contains(f[2], f[1]) {
			t.Fatalf("feature line %q: want offset, the number as found, context holding it, +86 form", l)
		}
		n++
	}
	if n != 200 {
		t.Errorf("%d telephone lines, want 200", n)
	}
	h, _ := os.ReadFile(filepath.Join(out, "telephone_histogram.txt"))
	if !strings.Contains(string(h), "# Histogram-File-Version: 1.1\nn=1\t+86139") {
		t.Errorf("histogram starts %.200q", h)
	}
	// report.xml: the run in DFXML, valid against the schema.
	rx := filepath.Join(out, "report.xml")
	if testutil.NeedTool(t, "xmllint") != "" {
		if o, err := exec.Command("xmllint", "--noout", "--schema", "../../custody/testdata/dfxml/dfxml.xsd", rx).CombinedOutput(); err != nil {
			t.Errorf("report.xml does not validate: %v\n%s", err, o)
		}
	}
	if x, _ := os.ReadFile(rx); !strings.Contains(string(x), "<be:name>telephone</be:name><be:count>200</be:count>") {
		t.Errorf("report.xml counts: %s", x)
	}
	// A second run into the same directory is refused unless told.
	if _, err := lsRun(t, "scan", img, "--out", out); !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second scan into %s: %v, want a refusal", out, err)
	}
	if _, err := lsRun(t, "scan", img, "--out", out, "--overwrite"); err != nil {
		t.Errorf("scan --overwrite: %v", err)
	}
	if _, err := lsRun(t, "scan", img); !errors.As(err, new(usageError)) {
		t.Errorf("scan without --out: %v, want usage error", err)
	}
}

// TestCarveCLIExt4 deletes files from an ext4 file system (debugfs rm frees
// the blocks without wiping them) and carves its unallocated blocks.
func TestCarveCLIExt4(t *testing.T) {
	testutil.NeedTool(t, "mkfs.ext4")
	testutil.NeedTool(t, "debugfs")
	rng := rand.New(rand.NewPCG(31, 32))
	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	fill := make([]byte, 24<<20)
	for i := range fill {
		fill[i] = byte(rng.Uint32())
	}
	os.WriteFile(img, fill, 0o600)
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o700)
	m := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range m.Pix {
		m.Pix[i] = byte(rng.Uint32())
	}
	var pb bytes.Buffer
	png.Encode(&pb, m)
	var csv bytes.Buffer
	for i := range 500 {
		fmt.Fprintf(&csv, "%d|user%d@example.org|1370000%04d\n", i, i, i)
	}
	files := map[string][]byte{"gone.png": pb.Bytes(), "leak.txt": csv.Bytes(), "kept.bin": fill[:5000]}
	for n, b := range files {
		os.WriteFile(filepath.Join(src, n), b, 0o600)
	}
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-E", "nodiscard", "-d", src, img)
	testutil.Run(t, "debugfs", "-w", "-R", "rm /gone.png", img)
	testutil.Run(t, "debugfs", "-w", "-R", "rm /leak.txt", img)
	testutil.Unchanged(t, img)
	out := filepath.Join(t.TempDir(), "out")
	stdout, err := lsRun(t, "carve", img, "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Mode   string `json:"mode"`
		Carved []struct {
			SHA256 string `json:"sha256"`
		} `json:"carved"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range res.Carved {
		got[c.SHA256] = true
	}
	for _, n := range []string{"gone.png", "leak.txt"} {
		if !got[testutil.SHA256File(t, filepath.Join(src, n))] {
			t.Errorf("deleted %s not carved byte-identical (mode %s, %d carved)", n, res.Mode, len(res.Carved))
		}
	}
	if res.Mode != "unallocated" {
		t.Errorf("mode %q: the ext4 file system was not read", res.Mode)
	}
}

// TestCarveScanE01 acquires the FAT image with ewfacquire and checks carve
// and scan give over the E01 what they give over the raw image.
func TestCarveScanE01(t *testing.T) {
	testutil.NeedTool(t, "ewfacquire")
	raw, _ := carveFATImage(t)
	target := filepath.Join(t.TempDir(), "disk")
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", target, "-f", "encase6", "-c", "deflate:fast", raw)
	e01 := target + ".E01"
	testutil.Unchanged(t, e01)
	hashes := func(img string) (string, map[string]int) {
		stdout, err := lsRun(t, "carve", img, "--out", filepath.Join(t.TempDir(), "c"), "--json")
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Carved []struct {
				Offset int64  `json:"offset"`
				SHA256 string `json:"sha256"`
			} `json:"carved"`
		}
		json.Unmarshal(stdout, &c)
		var s []string
		for _, x := range c.Carved {
			s = append(s, fmt.Sprint(x.Offset, x.SHA256))
		}
		stdout, err = lsRun(t, "scan", img, "--out", filepath.Join(t.TempDir(), "s"), "--json")
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Features map[string]int `json:"features"`
		}
		json.Unmarshal(stdout, &f)
		return strings.Join(s, ","), f.Features
	}
	rc, rf := hashes(raw)
	ec, ef := hashes(e01)
	if rc != ec || rc == "" {
		t.Errorf("carved from E01 %q, from raw %q", ec, rc)
	}
	if fmt.Sprint(rf) != fmt.Sprint(ef) {
		t.Errorf("features from E01 %v, from raw %v", ef, rf)
	}
}

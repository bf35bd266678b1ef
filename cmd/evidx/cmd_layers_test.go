package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/internal/testutil"
)

type lsListing struct {
	Files []struct {
		Path   string  `json:"path"`
		Size   int64   `json:"size"`
		SHA256 *string `json:"sha256"`
		Layer  string  `json:"layer"`
	} `json:"files"`
	Problems []string `json:"problems"`
}

func lsFiles(t *testing.T, img string) (map[string]string, lsListing) {
	t.Helper()
	out, err := lsRun(t, "ls", "--json", img)
	if err != nil {
		t.Fatalf("ls %s: %v\n%s", img, err, out)
	}
	var l lsListing
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range l.Files {
		if f.SHA256 != nil {
			m[f.Path] = *f.SHA256
		}
	}
	return m, l
}

type mediaHashJSON struct {
	SHA256 string `json:"sha256"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
}

// TestVirtualDisks: a FAT disk in every VHD, VHDX, VMDK and qcow2 subformat lists exactly the
// files, with the same SHA-256, that its raw form lists, and `hash` gives
// the SHA-256 of qemu-img's raw conversion; the containers are unchanged.
func TestVirtualDisks(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	raw, _ := lsFATImage(t)
	want, _ := lsFiles(t, raw)
	if len(want) < 2 {
		t.Fatalf("raw listing: %v", want)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ fmt, opts, format string }{
		{"vpc", "subformat=fixed,force_size=on", "vhd-fixed"},
		{"vpc", "subformat=dynamic,force_size=on", "vhd-dynamic"},
		{"vpc", "subformat=dynamic", "vhd-dynamic"},
		{"vhdx", "subformat=fixed", "vhdx-fixed"},
		{"vhdx", "subformat=dynamic", "vhdx-dynamic"},
		{"vhdx", "subformat=dynamic,block_size=1M", "vhdx-dynamic"},
		{"vmdk", "subformat=monolithicSparse", "vmdk-monolithicSparse"},
		{"vmdk", "subformat=streamOptimized", "vmdk-streamOptimized"},
		{"vmdk", "subformat=monolithicFlat", "vmdk-monolithicFlat"},
		{"vmdk", "subformat=twoGbMaxExtentSparse", "vmdk-twoGbMaxExtentSparse"},
		{"qcow2", "compat=0.10", "qcow2-v2"},
		{"qcow2", "compat=1.1", "qcow2-v3"},
		{"qcow2", "compat=1.1,cluster_size=4096,-c", "qcow2-v3"},
		{"qcow2", "compat=1.1,compression_type=zstd,-c", "qcow2-v3"},
	} {
		c := filepath.Join(dir, strings.NewReplacer("=", "", ",", "-").Replace(tc.opts)+"."+tc.fmt)
		args := []string{"convert", "-f", "raw", "-O", tc.fmt}
		if opts, ok := strings.CutSuffix(tc.opts, ",-c"); ok {
			args = append(args, "-c", "-o", opts)
		} else {
			args = append(args, "-o", tc.opts)
		}
		testutil.Run(t, "qemu-img", append(args, raw, c)...)
		back := c + ".raw"
		testutil.Run(t, "qemu-img", "convert", "-O", "raw", c, back)
		testutil.Unchanged(t, c)
		got, l := lsFiles(t, c)
		if len(got) != len(want) {
			t.Errorf("%s: %d files, raw lists %d (problems %v)", tc.opts, len(got), len(want), l.Problems)
		}
		for p, h := range want {
			if got[p] != h {
				t.Errorf("%s: %s sha256 %s, raw %s", tc.opts, p, got[p], h)
			}
		}
		out, err := lsRun(t, "hash", "--json", c)
		if err != nil {
			t.Fatalf("hash %s: %v", c, err)
		}
		var hj mediaHashJSON
		json.Unmarshal(out, &hj)
		if hj.Format != tc.format {
			t.Errorf("%s: format %q", tc.opts, hj.Format)
		}
		// The media is the footer's disk size, which libvhdi gives too;
		// qemu-img's raw conversion is that (dynamic), or for fixed disks
		// the whole file, footer included. Both must agree with evidx where
		// they are the same size, and the input disk is always its start.
		qemuRaw, _ := os.ReadFile(back)
		input, _ := os.ReadFile(raw)
		switch {
		case hj.Size == int64(len(qemuRaw)):
			if hj.SHA256 != testutil.SHA256File(t, back) {
				t.Errorf("%s: media sha256 %s, qemu-img raw %s", tc.opts, hj.SHA256, testutil.SHA256File(t, back))
			}
		case hj.Size == int64(len(input)):
			if hj.SHA256 != testutil.SHA256File(t, raw) {
				t.Errorf("%s: media sha256 %s, the raw disk %s", tc.opts, hj.SHA256, testutil.SHA256File(t, raw))
			}
		default:
			t.Errorf("%s: media %d bytes, qemu-img raw %d, input %d", tc.opts, hj.Size, len(qemuRaw), len(input))
		}
	}
}

// TestVHDOnNTFS: a dynamic VHD stored as a file on an NTFS volume opens as
// a layer: its files are listed with a path through the .vhd and their
// SHA-256 equal those of the disk listed alone.
func TestVHDOnNTFS(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkntfs")
	testutil.NeedTool(t, "ntfscp")
	raw, _ := lsFATImage(t)
	want, _ := lsFiles(t, raw)
	dir := t.TempDir()
	vhd := filepath.Join(dir, "win.vhd")
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, vhd)
	vol := filepath.Join(dir, "ntfs.img")
	f, _ := os.Create(vol)
	f.Truncate(64 << 20)
	f.Close()
	testutil.Run(t, "mkntfs", "-F", "-Q", "-q", vol)
	testutil.Run(t, "ntfscp", "-f", vol, vhd, "win.vhd")
	testutil.Unchanged(t, vol)
	got, l := lsFiles(t, vol)
	n := 0
	for p, h := range want {
		var found, at string
		for gp, gh := range got {
			if strings.HasPrefix(gp, "/win.vhd/p") && strings.HasSuffix(gp, ":"+p) {
				found, at = gh, gp
			}
		}
		if found != h {
			t.Errorf("%s through /win.vhd: sha256 %q, want %s", p, found, h)
		}
		n++
		// cat reaches the file by its layered path, as ls prints it.
		if at != "" && n <= 3 {
			out, err := lsRun(t, "cat", vol, at)
			if err != nil {
				t.Errorf("cat %s: %v", at, err)
			} else if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != h {
				t.Errorf("cat %s: sha256 %x, want %s", at, sum, h)
			}
		}
	}
	if _, err := lsRun(t, "cat", vol, "/win.vhd/p1:/no such file"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("cat of a missing file inside the VHD: %v", err)
	}
	var layered int
	for _, f := range l.Files {
		if f.Layer != "" {
			layered++
			if !strings.HasPrefix(f.Layer, "vhd-dynamic /win.vhd") {
				t.Errorf("layer %q", f.Layer)
			}
		}
	}
	if n == 0 || layered < n {
		t.Errorf("%d files inside the VHD listed, want at least %d: %v", layered, n, got)
	}
}

// TestUnreadVolumeNamed: an XFS volume (evidx reads none) is named in ls
// --json problems, in evidence add's problems, its audit line and the
// report, never shown as an empty disk; the image is unchanged.
func TestUnreadVolumeNamed(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/mkfs.xfs"); err != nil {
		testutil.NeedTool(t, "mkfs.xfs")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	f, _ := os.Create(img)
	f.Truncate(320 << 20)
	f.Close()
	testutil.Run(t, "mkfs.xfs", "-q", "-f", img)
	testutil.Unchanged(t, img)
	named := func(where string, ps []string) {
		t.Helper()
		for _, p := range ps {
			if strings.Contains(p, "XFS recognised") && strings.Contains(p, "0x") {
				return
			}
		}
		t.Errorf("%s does not name the XFS volume: %q", where, ps)
	}
	_, l := lsFiles(t, img)
	named("ls --json", l.Problems)

	cs := filepath.Join(dir, "case")
	if _, err := idxRun(t, "case", "init", cs, "--case-number", "X-1", "--examiner", "tester"); err != nil {
		t.Fatal(err)
	}
	out, err := idxRun(t, "evidence", "add", cs, img, "--id", "X1", "--no-carve", "--no-scan", "--json")
	if err != nil {
		t.Fatalf("evidence add: %v\n%s", err, out)
	}
	var ev struct {
		Problems []string `json:"problems"`
	}
	json.Unmarshal(out, &ev)
	named("evidence add --json", ev.Problems)
	alog, _ := os.ReadFile(filepath.Join(cs, "audit.log"))
	if !strings.Contains(string(alog), "XFS recognised") {
		t.Error("audit log does not name the XFS volume")
	}
	if _, err := idxRun(t, "report", cs); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Errors []string `json:"errors"`
	}
	rj, _ := os.ReadFile(filepath.Join(cs, "reports", "report.json"))
	json.Unmarshal(rj, &rep)
	named("report errors", rep.Errors)
}

// TestE01InsideVolume: an E01 stored on an ext4 volume (an image on a
// seized external drive) opens as a layer: its files are listed through
// the .E01 with the SHA-256 their raw form lists, and cat reaches them.
// One segment of a larger set is named as a problem, not read as raw.
func TestE01InsideVolume(t *testing.T) {
	for _, tool := range []string{"ewfacquire", "mkfs.ext4"} {
		testutil.NeedTool(t, tool)
	}
	raw, _ := lsFATImage(t)
	want, _ := lsFiles(t, raw)
	if len(want) < 2 {
		t.Fatalf("the raw image lists %d hashed files", len(want))
	}
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	os.MkdirAll(filepath.Join(content, "images"), 0o755)
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(content, "images", "stick"), "-c", "fast", "-S", "1.4GiB", "-C", "T-9", "-e", "tester", raw)
	// A set of two segments, only the second kept on the volume.
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "split"), "-c", "none", "-S", "32MiB", "-C", "T-9", "-e", "tester", raw)
	e02, _ := os.ReadFile(filepath.Join(dir, "split.E02"))
	if len(e02) == 0 {
		t.Fatal("ewfacquire wrote no second segment")
	}
	os.WriteFile(filepath.Join(content, "images", "other.E02"), e02, 0o644)
	vol := filepath.Join(dir, "ext4.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", content, vol, "96M")
	testutil.Unchanged(t, vol)
	got, l := lsFiles(t, vol)
	for p, h := range want {
		at := "/images/stick.E01/p1:" + p
		if got[at] != h {
			t.Errorf("%s: sha256 %q, want %s", at, got[at], h)
			continue
		}
		out, err := lsRun(t, "cat", vol, at)
		if sum := sha256.Sum256(out); err != nil || hex.EncodeToString(sum[:]) != h {
			t.Errorf("cat %s: %v, sha256 %x, want %s", at, err, sum, h)
		}
	}
	var named bool
	for _, p := range l.Problems {
		if strings.Contains(p, "/images/other.E02") && strings.Contains(p, "segment 2") {
			named = true
		}
	}
	if !named {
		t.Errorf("the lone second segment is not named in problems: %q", l.Problems)
	}
}

// TestTimeZoneFlag: FAT stores local times; --tz reads them in that zone
// (8 hours earlier in UTC for Asia/Shanghai), and only without it is the
// assumption of UTC named as a problem.
func TestTimeZoneFlag(t *testing.T) {
	img, _ := lsFATImage(t)
	listing := func(args ...string) (map[string]time.Time, []string) {
		t.Helper()
		out, err := lsRun(t, append([]string{"ls", "--json"}, append(args, img)...)...)
		if err != nil {
			t.Fatalf("ls %v: %v", args, err)
		}
		var l struct {
			Files []struct {
				Path  string    `json:"path"`
				Mtime time.Time `json:"mtime"`
			} `json:"files"`
			Problems []string `json:"problems"`
		}
		if err := json.Unmarshal(out, &l); err != nil {
			t.Fatal(err)
		}
		m := map[string]time.Time{}
		for _, f := range l.Files {
			m[f.Path] = f.Mtime
		}
		return m, l.Problems
	}
	utc, p1 := listing()
	sh, p2 := listing("--tz", "Asia/Shanghai")
	n := 0
	for p, t0 := range utc {
		if t0.IsZero() {
			continue
		}
		n++
		if d := t0.Sub(sh[p]); d != 8*time.Hour {
			t.Errorf("%s: mtime %v without --tz, %v with Asia/Shanghai (%v apart, want 8h)", p, t0, sh[p], d)
		}
	}
	if n == 0 {
		t.Fatal("no file with a modification time")
	}
	joined := func(ps []string) string { return strings.Join(ps, "\n") }
	if !strings.Contains(joined(p1), "read as UTC") || strings.Contains(joined(p2), "read as UTC") {
		t.Errorf("problems without --tz %q, with --tz %q", p1, p2)
	}
	if r := runCLI(t, "ls", "--tz", "Mars/Olympus", img); r.code != 2 {
		t.Errorf("unknown zone: exit %d, want 2", r.code)
	}
}

// TestCarveInsideVHD: a PNG in the free clusters of a FAT volume inside a
// dynamic VHD stored on ext4 is carved from the VHD's disk, not missed
// because the VHD's blocks are allocated on the outer volume: one carved
// row names the layer, its export holds the PNG's bytes, the DFXML names
// it under the VHD's path, and the image is unchanged.
func TestCarveInsideVHD(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	testutil.NeedTool(t, "mkfs.fat")
	testutil.NeedTool(t, "mkfs.ext4")
	dir := t.TempDir()
	raw := filepath.Join(dir, "inner.img")
	f, _ := os.Create(raw)
	f.Truncate(8 << 20)
	f.Close()
	testutil.Run(t, "mkfs.fat", "-F", "16", "-s", "2", raw)
	rng := rand.New(rand.NewPCG(5, 6))
	m := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range m.Pix {
		m.Pix[i] = byte(rng.Uint32())
	}
	var pb bytes.Buffer
	png.Encode(&pb, m)
	f, _ = os.OpenFile(raw, os.O_WRONLY, 0)
	f.WriteAt(pb.Bytes(), 6<<20) // free clusters of the empty volume
	f.Close()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o700)
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", raw, filepath.Join(src, "win.vhd"))
	outer := filepath.Join(dir, "outer.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-d", src, outer, "32M")
	testutil.Unchanged(t, outer)

	cs := filepath.Join(dir, "case")
	if _, err := idxRun(t, "case", "init", cs, "--case-number", "L1", "--examiner", "x"); err != nil {
		t.Fatal(err)
	}
	if out, err := idxRun(t, "evidence", "add", cs, outer, "--id", "E1", "--no-scan", "--json"); err != nil {
		t.Fatalf("evidence add: %v\n%s", err, out)
	}
	sum := sha256.Sum256(pb.Bytes())
	want := hex.EncodeToString(sum[:])
	exp := filepath.Join(dir, "export")
	if out, err := idxRun(t, "export", cs, "--files", exp); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	var found []string
	filepath.WalkDir(exp, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.Contains(p, "/carved/") {
			if b, _ := os.ReadFile(p); sha256.Sum256(b) == sum {
				found = append(found, p)
			}
		}
		return nil
	})
	if len(found) != 1 || !strings.Contains(found[0], "win.vhd") {
		t.Fatalf("exported carved copies of the PNG (sha256 %s): %q, want one under the VHD's layer", want, found)
	}
	if out, err := idxRun(t, "report", cs); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	dfxml, err := os.ReadFile(filepath.Join(cs, "reports", "evidence-E1.dfxml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`<filename>p\d+:/win\.vhd/carved/[0-9a-f]{12}-png</filename>`).Match(dfxml) {
		t.Errorf("DFXML names no carved file under /win.vhd:\n%s", dfxml)
	}

	// `evidx carve` does the same, into OUT/layers/<escaped path>/.
	cout := filepath.Join(dir, "carved")
	out, err := idxRun(t, "carve", outer, "--out", cout, "--json")
	if err != nil {
		t.Fatalf("carve: %v\n%s", err, out)
	}
	var man struct {
		Carved []struct{ Layer, SHA256, Path string }
	}
	decodeOne(t, out, &man)
	var hits []string
	for _, c := range man.Carved {
		if c.SHA256 == want {
			hits = append(hits, c.Layer+" "+c.Path)
			b, _ := os.ReadFile(filepath.Join(cout, c.Path))
			if sha256.Sum256(b) != sum || !strings.HasPrefix(c.Path, "layers/") || !strings.Contains(c.Layer, "/win.vhd") {
				t.Errorf("carve: %+v", c)
			}
		}
	}
	if len(hits) != 1 {
		t.Errorf("carve found the PNG %d times: %q", len(hits), hits)
	}
	testutil.Unchanged(t, outer)
}

// TestZipOnEvidence: a ZIP on a FAT volume opens as a layer: ls lists its
// members (and those of a ZIP inside it) with paths through it and their
// SHA-256, and evidence add loads each member dataset once, named by its
// path through the archives, not the archive again as a whole.
func TestZipOnEvidence(t *testing.T) {
	testutil.NeedTool(t, "zip")
	testutil.NeedTool(t, "mcopy")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o700)
	users := []byte("name,phone\nzhang,13812345678\nli,13912345678\n")
	more := []byte("email\nwang@example.cn\nzhao@example.cn\n")
	os.WriteFile(filepath.Join(src, "users.csv"), users, 0o600)
	os.WriteFile(filepath.Join(src, "more.csv"), more, 0o600)
	run := func(args ...string) {
		cmd := exec.Command("zip", args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("zip %v: %v\n%s", args, err, out)
		}
	}
	run("-q", "-0", "inner.zip", "more.csv")
	run("-q", "leak.zip", "users.csv", "inner.zip")
	img := filepath.Join(dir, "fat.img")
	f, _ := os.Create(img)
	f.Truncate(16 << 20)
	f.Close()
	testutil.Run(t, "mkfs.fat", "-F", "16", img)
	testutil.Run(t, "mcopy", "-i", img, filepath.Join(src, "leak.zip"), "::/LEAK.ZIP")
	testutil.Unchanged(t, img)

	got, _ := lsFiles(t, img)
	for p, b := range map[string][]byte{"/LEAK.ZIP/p1:/users.csv": users, "/LEAK.ZIP/p1:/inner.zip/p1:/more.csv": more} {
		s := sha256.Sum256(b)
		if got[p] != hex.EncodeToString(s[:]) {
			t.Errorf("%s: sha256 %q, want %x (listing %v)", p, got[p], s, got)
		}
	}

	cs := filepath.Join(dir, "case")
	idxRun(t, "case", "init", cs, "--case-number", "Z1", "--examiner", "x")
	out, err := idxRun(t, "evidence", "add", cs, img, "--id", "E1", "--no-carve", "--no-scan", "--json")
	if err != nil {
		t.Fatalf("evidence add: %v\n%s", err, out)
	}
	var res struct {
		Datasets []struct {
			EvidencePath string           `json:"evidence_path"`
			Unique       map[string]int64 `json:"unique"`
		} `json:"datasets"`
	}
	decodeOne(t, out, &res)
	var paths []string
	for _, d := range res.Datasets {
		paths = append(paths, d.EvidencePath)
	}
	sort.Strings(paths)
	if want := []string{"p1:/LEAK.ZIP/p1:/inner.zip/p1:/more.csv", "p1:/LEAK.ZIP/p1:/users.csv"}; strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Errorf("datasets loaded %q, want %q", paths, want)
	}
	var st statsJSON
	sout, _ := idxRun(t, "stats", cs, "--json")
	decodeOne(t, sout, &st)
	if st.Unique["phone"] != 2 || st.Unique["email"] != 2 {
		t.Errorf("unique %v, want 2 phones and 2 emails", st.Unique)
	}
}

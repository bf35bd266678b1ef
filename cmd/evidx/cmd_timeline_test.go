package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/internal/testutil"
)

// tsk runs a Sleuth Kit tool with TZ=UTC (FAT's local times read as evidx
// reads them without --tz) and returns its stdout.
func tsk(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testutil.NeedTool(t, name), args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return out
}

// tlFAT makes a FAT32 image with files in a subdirectory, an empty file
// and one deleted with mdel.
func tlFAT(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat32.img")
	testutil.Run(t, "mkfs.vfat", "-F", "32", "-C", img, "40000")
	src := t.TempDir()
	files := map[string][]byte{
		"a.txt":          []byte("alpha\n"),
		"big.bin":        bytes.Repeat([]byte("0123456789abcdef"), 9000),
		"empty":          nil,
		"Long Name.docx": bytes.Repeat([]byte{7}, 3000),
		"gone.txt":       bytes.Repeat([]byte("gone "), 300),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Run(t, "mmd", "-i", img, "::/sub")
	testutil.Run(t, "mcopy", "-i", img, filepath.Join(src, "a.txt"), filepath.Join(src, "empty"), "::/")
	testutil.Run(t, "mcopy", "-i", img, filepath.Join(src, "big.bin"), filepath.Join(src, "Long Name.docx"), filepath.Join(src, "gone.txt"), "::/sub/")
	testutil.Run(t, "mdel", "-i", img, "::/sub/gone.txt")
	return img
}

// tlExt makes an ext4 image with mkfs.ext4 -d (modes, an owner, setuid and
// sticky bits) and a file deleted with debugfs.
func tlExt(t *testing.T) string {
	t.Helper()
	testutil.NeedTool(t, "debugfs")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "dir", "deep"), 0o755)
	os.WriteFile(filepath.Join(src, "dir", "deep", "x.txt"), []byte("x\n"), 0o640)
	os.WriteFile(filepath.Join(src, "suid"), []byte("#!/bin/sh\n"), 0o4755)
	os.WriteFile(filepath.Join(src, "big.bin"), bytes.Repeat([]byte("ext4 "), 20000), 0o644)
	os.WriteFile(filepath.Join(src, "doomed"), bytes.Repeat([]byte("doomed "), 1000), 0o600)
	os.Chmod(filepath.Join(src, "dir"), 0o1777)
	os.Chown(filepath.Join(src, "suid"), 1234, 70000) // only as root; fls checks the owner either way
	img := filepath.Join(t.TempDir(), "ext4.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-E", "nodiscard", "-d", src, img, "8M")
	testutil.Run(t, "debugfs", "-w", "-R", "rm /doomed", img)
	return img
}

// bodyLines splits a body file into its lines, without TSK's virtual
// entries ($MBR, $FAT1, $OrphanFiles: not files evidx lists).
func bodyLines(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 11 {
			t.Fatalf("body line %q: %d fields, want 11", l, len(f))
		}
		if strings.HasPrefix(f[3], "v/v") || strings.HasPrefix(f[3], "V/V") {
			continue
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// regularKeys are the (name, inode, size, mtime) of a body file's
// regular-file lines.
func regularKeys(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Split(l, "|")
		if strings.HasPrefix(f[3], "r/r") {
			out = append(out, strings.Join([]string{f[1], f[2], f[6], f[8]}, "|"))
		}
	}
	sort.Strings(out)
	return out
}

func TestTimelineFAT32BodyAgainstFls(t *testing.T) {
	img := tlFAT(t)
	testutil.Unchanged(t, img)
	r := runCLI(t, "timeline", img)
	if r.err != nil {
		t.Fatal(r.err)
	}
	got, want := bodyLines(t, r.stdout), bodyLines(t, tsk(t, "fls", "-r", "-m", "/", img))
	gk, wk := regularKeys(got), regularKeys(want)
	if len(gk) != 5 || !slices.Equal(gk, wk) {
		t.Fatalf("regular files (name|inode|size|mtime):\nevidx %q\nfls   %q", gk, wk)
	}
	if !slices.ContainsFunc(gk, func(s string) bool { return strings.HasPrefix(s, "/sub/_one.txt (deleted)|") }) {
		t.Errorf("no deleted line as fls names it: %q", gk)
	}
	// Every field of every line, directories, modes and other times too.
	if !slices.Equal(got, want) {
		t.Errorf("body file:\nevidx %q\nfls   %q", got, want)
	}

	// --tz reads FAT's local times in a zone, as fls -z does.
	if _, err := os.Stat("/usr/share/zoneinfo/Asia/Shanghai"); err == nil {
		z := runCLI(t, "--tz", "Asia/Shanghai", "timeline", img)
		zk := regularKeys(bodyLines(t, z.stdout))
		if fk := regularKeys(bodyLines(t, tsk(t, "fls", "-z", "Asia/Shanghai", "-r", "-m", "/", img))); z.err != nil || !slices.Equal(zk, fk) || slices.Equal(zk, gk) {
			t.Errorf("--tz Asia/Shanghai (%v):\nevidx %q\nfls   %q", z.err, zk, fk)
		}
	}

	// ls -m is the same body file; -o writes it to a file mactime reads.
	if ls := runCLI(t, "ls", "-m", "/", img); ls.err != nil || !slices.Equal(bodyLines(t, ls.stdout), got) {
		t.Errorf("ls -m / differs from timeline (%v):\n%s", ls.err, ls.stdout)
	}
	out := filepath.Join(t.TempDir(), "body.txt")
	if r := runCLI(t, "timeline", img, "-o", out); r.err != nil {
		t.Fatal(r.err)
	}
	mac := tsk(t, "mactime", "-b", out)
	if n := bytes.Count(mac, []byte("\n")); n < 5 || !bytes.Contains(mac, []byte("/sub/big.bin")) || !bytes.Contains(mac, []byte("(deleted)")) {
		t.Errorf("mactime -b read %d lines:\n%s", n, mac)
	}
	// Evidence is never the output.
	if r := runCLI(t, "timeline", img, "-o", img); r.code != 2 {
		t.Errorf("timeline -o IMAGE: exit %d (%v), want a usage error", r.code, r.err)
	}
}

func TestTimelineCSVJSON(t *testing.T) {
	img := tlFAT(t)
	testutil.Unchanged(t, img)
	body := bodyLines(t, runCLI(t, "timeline", img).stdout)
	want := 0 // known times: non-zero atime, mtime, ctime, crtime
	for _, l := range body {
		for _, v := range strings.Split(l, "|")[7:] {
			if v != "0" {
				want++
			}
		}
	}
	r := runCLI(t, "timeline", "--format", "csv", img)
	if r.err != nil {
		t.Fatal(r.err)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows)-1 != want || strings.Join(rows[0], ",") != "time,unix,kind,evidence,partition,path,layer,inode,type,deleted,size,md5" {
		t.Fatalf("csv: %d rows, want %d events; header %q", len(rows)-1, want, rows[0])
	}
	last := int64(0)
	kinds := map[string]int{}
	for _, row := range rows[1:] {
		u, _ := strconv.ParseInt(row[1], 10, 64)
		if u < last {
			t.Fatalf("csv not sorted by time at %q", row)
		}
		last = u
		kinds[row[2]]++
		if row[3] != img || row[4] != "1" {
			t.Errorf("row %q: evidence or partition wrong", row)
		}
	}
	if kinds["M"] == 0 || kinds["A"] == 0 || kinds["B"] == 0 || kinds["C"] != 0 {
		t.Errorf("kinds %v: FAT has M, A and B times, no C", kinds)
	}
	j := runCLI(t, "timeline", "--format", "json", img)
	lines := bytes.Split(bytes.TrimSpace(j.stdout), []byte("\n"))
	if j.err != nil || len(lines) != want {
		t.Fatalf("json: %d lines, want %d (%v)", len(lines), want, j.err)
	}
	var ev struct {
		Time, Kind, Path, Evidence string
		Unix                       int64
		Inode                      uint64
	}
	if err := json.Unmarshal(lines[len(lines)-1], &ev); err != nil || ev.Unix != last || ev.Path == "" || ev.Evidence != img {
		t.Errorf("last json event %s: %+v %v", lines[len(lines)-1], ev, err)
	}
}

func TestTimelineExtBodyAgainstFls(t *testing.T) {
	img := tlExt(t)
	testutil.Unchanged(t, img)
	r := runCLI(t, "timeline", img)
	if r.err != nil {
		t.Fatal(r.err)
	}
	got, want := bodyLines(t, r.stdout), bodyLines(t, tsk(t, "fls", "-r", "-m", "/", img))
	if !slices.Equal(got, want) {
		t.Fatalf("body file:\nevidx %q\nfls   %q", got, want)
	}
	if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "/doomed (deleted)|") }) {
		t.Errorf("deleted file missing: %q", got)
	}
	md := runCLI(t, "timeline", "--md5", img)
	if md.err != nil || !bytes.Contains(md.stdout, []byte(fmt.Sprintf("%x|/big.bin|", md5Sum(bytes.Repeat([]byte("ext4 "), 20000))))) {
		t.Errorf("--md5: %v\n%s", md.err, md.stdout)
	}
}

// inodes lists fls -r -p's entries as "type inode path", without TSK's
// virtual ones.
func flsEntries(t *testing.T, args ...string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(tsk(t, "fls", append([]string{"-r", "-p"}, args...)...))), "\n") {
		head, name, ok := strings.Cut(l, ":\t")
		if !ok {
			t.Fatalf("fls line %q", l)
		}
		typ, ino, _ := strings.Cut(strings.TrimSpace(head), " ")
		ino = strings.TrimPrefix(ino, "* ")
		if typ == "v/v" || typ == "V/V" || strings.HasPrefix(name, "$OrphanFiles") {
			continue
		}
		out = append(out, typ+" "+ino+" /"+name)
	}
	sort.Strings(out)
	return out
}

// checkICat compares cat --inode with icat for every file and directory
// fls lists (a directory: its blocks, as icat writes them).
func checkICat(t *testing.T, img string, vol ...string) {
	t.Helper()
	n := 0
	for _, e := range flsEntries(t, append(vol, img)...) {
		f := strings.Fields(e)
		if f[0] != "r/r" && f[0] != "d/d" {
			continue
		}
		want := tsk(t, "icat", append(append(vol, img), f[1])...)
		r := runCLI(t, append([]string{"cat", img, "--inode", f[1]}, vol...)...)
		if r.err != nil || !bytes.Equal(r.stdout, want) {
			t.Errorf("cat --inode %s %v (%s): %d bytes (%v), icat %d bytes", f[1], vol, e, len(r.stdout), r.err, len(want))
		}
		n++
	}
	if n < 3 {
		t.Fatalf("only %d inodes compared", n)
	}
}

func TestCatInodeAgainstICat(t *testing.T) {
	fat, ext := tlFAT(t), tlExt(t)
	testutil.Unchanged(t, fat, ext)
	checkICat(t, fat)
	checkICat(t, ext)
	if r := runCLI(t, "cat", fat, "--inode", "999999"); r.err == nil {
		t.Error("cat --inode of no file succeeded")
	}
	if r := runCLI(t, "cat", fat); r.code != 2 {
		t.Errorf("cat IMAGE without PATH or --inode: exit %d, want 2", r.code)
	}
}

// tlPartitioned makes an MBR disk (sfdisk) with a FAT16 volume at sector
// 2048 and an ext4 one at sector 22528.
func tlPartitioned(t *testing.T) (img string, starts [2]int64) {
	t.Helper()
	starts = [2]int64{2048, 22528}
	dir := t.TempDir()
	img = filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, (22528+20480+64)*512), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.NeedTool(t, "sfdisk"), "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=20480, type=6\nstart=22528, size=20480, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	fat := filepath.Join(dir, "p1.img")
	testutil.Run(t, "mkfs.vfat", "-F", "16", "-C", fat, "10240")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "one.txt"), []byte("partition one\n"), 0o644)
	os.WriteFile(filepath.Join(src, "two.txt"), bytes.Repeat([]byte("two "), 2000), 0o644)
	os.WriteFile(filepath.Join(src, "del.bin"), bytes.Repeat([]byte{9}, 5000), 0o644)
	testutil.Run(t, "mmd", "-i", fat, "::/d")
	testutil.Run(t, "mcopy", "-i", fat, filepath.Join(src, "one.txt"), filepath.Join(src, "two.txt"), filepath.Join(src, "del.bin"), "::/d/")
	testutil.Run(t, "mdel", "-i", fat, "::/d/del.bin")
	ext := tlExt(t)
	for i, part := range []string{fat, ext} {
		b, err := os.ReadFile(part)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_WRONLY, 0) // the test's own image, being built
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(b[:min(len(b), 20480*512)], starts[i]*512)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return img, starts
}

func TestLsOffsetPartitionAgainstFls(t *testing.T) {
	img, starts := tlPartitioned(t)
	testutil.Unchanged(t, img)
	for i, s := range starts {
		sec := strconv.FormatInt(s, 10)
		want := flsEntries(t, "-o", sec, img)
		for _, sel := range [][]string{{"-o", sec}, {"--partition", strconv.Itoa(i + 1)}} {
			r := runCLI(t, append([]string{"ls", "--json", "--no-hash", img}, sel...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			var res struct {
				Partitions []struct{ Index int }
				Files      []struct {
					Path, Type string
					Inode      uint64
				}
				Unallocated []struct{ Offset, Length int64 }
			}
			if err := json.Unmarshal(r.stdout, &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Files {
				typ := map[string]string{"file": "r/r", "dir": "d/d"}[f.Type]
				got = append(got, fmt.Sprintf("%s %d %s", typ, f.Inode, f.Path))
			}
			sort.Strings(got)
			for _, u := range res.Unallocated { // the free space of that volume only
				if u.Offset < s*512 || u.Offset+u.Length > (s+20480)*512 || len(res.Unallocated) == 0 {
					t.Errorf("ls %v: unallocated %+v outside the volume", sel, u)
				}
			}
			if len(res.Unallocated) == 0 {
				t.Errorf("ls %v: no unallocated space", sel)
			}
			if !slices.Equal(got, want) || len(res.Partitions) != 1 || res.Partitions[0].Index != i+1 {
				t.Errorf("ls %v:\nevidx %q (partitions %v)\nfls   %q", sel, got, res.Partitions, want)
			}
		}
		checkICat(t, img, "-o", sec)
		mb := runCLI(t, "ls", "-m", "/", "-o", sec, img)
		got, want := bodyLines(t, mb.stdout), bodyLines(t, tsk(t, "fls", "-r", "-m", "/", "-o", sec, img))
		if mb.err != nil || len(got) < 3 || !slices.Equal(got, want) {
			t.Errorf("ls -m / -o %s differs from fls (%v):\n%s", sec, mb.err, mb.stdout)
		}
	}
	if r := runCLI(t, "ls", img, "-o", "7"); r.code != 2 || !strings.Contains(r.err.Error(), "sector 2048") {
		t.Errorf("ls -o 7: exit %d %v, want a usage error naming the volumes", r.code, r.err)
	}
	if r := runCLI(t, "cat", img, "/d/one.txt", "-o", "2048"); r.err != nil || string(r.stdout) != "partition one\n" {
		t.Errorf("cat PATH -o 2048: %q %v", r.stdout, r.err)
	}
	if r := runCLI(t, "cat", img, "/d/one.txt", "--partition", "2"); r.err == nil {
		t.Errorf("cat PATH --partition 2 found a file of partition 1")
	}
	if r := runCLI(t, "cat", img, "--inode", "4"); r.code != 2 {
		t.Errorf("cat --inode on two volumes without -o: exit %d %v, want 2", r.code, r.err)
	}
	// The whole disk's timeline names each volume's files pN:, after
	// ls -m's prefix too.
	r := runCLI(t, "timeline", img)
	if r.err != nil || !bytes.Contains(r.stdout, []byte("|p1:/d/one.txt|")) || !bytes.Contains(r.stdout, []byte("|p2:/big.bin|")) {
		t.Errorf("timeline of two volumes (%v):\n%s", r.err, r.stdout)
	}
	if m := runCLI(t, "ls", "-m", "/mnt/", img); m.err != nil || !bytes.Contains(m.stdout, []byte("|/mnt/p1:/d/one.txt|")) || !bytes.Contains(m.stdout, []byte("|/mnt/p2:/big.bin|")) {
		t.Errorf("ls -m /mnt/ of two volumes (%v):\n%s", m.err, m.stdout)
	}
	p2 := runCLI(t, "timeline", img, "--partition", "2")
	if p2.err != nil || bytes.Contains(p2.stdout, []byte("|p1:")) || !bytes.Contains(p2.stdout, []byte("|/big.bin|")) {
		t.Errorf("timeline --partition 2 (%v):\n%s", p2.err, p2.stdout)
	}
}

func md5Sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

// TestTimelineCase: a case's timeline holds every evidence item's files,
// from the stored listing, or from the image reopened for an item whose
// listing is gone; names start with the evidence id.
func TestTimelineCase(t *testing.T) {
	fat, ext := tlFAT(t), tlExt(t)
	testutil.Unchanged(t, fat, ext)
	cs := filepath.Join(t.TempDir(), "case")
	t.Setenv(custody.EnvSignKey, "")
	if r := runCLI(t, "case", "init", cs, "--case-number", "TL-1", "--examiner", "X"); r.err != nil {
		t.Fatal(r.err)
	}
	for id, img := range map[string]string{"EV1": fat, "EV2": ext} {
		if r := runCLI(t, "evidence", "add", cs, img, "--id", id, "--no-carve", "--no-scan", "--no-index"); r.err != nil {
			t.Fatalf("evidence add %s: %v\n%s", id, r.err, r.stderr)
		}
	}
	prefixed := func(id, img string) []string {
		var out []string
		for _, k := range regularKeys(bodyLines(t, tsk(t, "fls", "-r", "-m", "/", img))) {
			out = append(out, id+":"+k)
		}
		return out
	}
	want := append(prefixed("EV1", fat), prefixed("EV2", ext)...)
	sort.Strings(want)
	r := runCLI(t, "timeline", cs)
	if got := regularKeys(bodyLines(t, r.stdout)); r.err != nil || len(got) < 8 || !slices.Equal(got, want) {
		t.Fatalf("case timeline (%v):\nevidx %q\nfls   %q", r.err, got, want)
	}
	// The stored listing keeps ext's modes and owners: each item's lines
	// are fls -m's, field for field.
	checkItems(t, r.stdout, map[string]string{"EV1": fat, "EV2": ext})

	// Without EV2's stored listing, EV2 is reopened read-only.
	c, err := custody.Open(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB().Exec(`DELETE FROM files WHERE evidence_id='EV2'`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	r = runCLI(t, "timeline", cs)
	if got := regularKeys(bodyLines(t, r.stdout)); r.err != nil || !slices.Equal(got, want) {
		t.Fatalf("case timeline, EV2 reopened (%v):\nevidx %q\nfls   %q", r.err, got, want)
	}
	checkItems(t, r.stdout, map[string]string{"EV1": fat, "EV2": ext})
	j := runCLI(t, "timeline", cs, "--format", "csv")
	if j.err != nil || !bytes.Contains(j.stdout, []byte(",EV1,1,/sub/big.bin,")) || !bytes.Contains(j.stdout, []byte(",EV2,1,/big.bin,")) {
		t.Errorf("case csv (%v):\n%s", j.err, j.stdout)
	}
}

// checkItems checks that a case's body file holds, for each evidence id,
// the lines fls -r -m / gives for its image, under "ID:".
func checkItems(t *testing.T, body []byte, items map[string]string) {
	t.Helper()
	lines := bodyLines(t, body)
	for id, img := range items {
		var got []string
		for _, l := range lines {
			if rest, ok := strings.CutPrefix(l, "0|"+id+":"); ok {
				got = append(got, "0|"+rest)
			}
		}
		if want := bodyLines(t, tsk(t, "fls", "-r", "-m", "/", img)); !slices.Equal(got, want) {
			t.Errorf("%s:\nevidx %q\nfls   %q", id, got, want)
		}
	}
}

// TestTimelineLayers: the files of an image held in a file are in the
// timeline under their layered path, with the layer named in the CSV.
func TestTimelineLayers(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner.img")
	testutil.Run(t, "mkfs.vfat", "-C", inner, "1024")
	secret := filepath.Join(dir, "secret.txt")
	os.WriteFile(secret, []byte("inside the inner image\n"), 0o644)
	testutil.Run(t, "mcopy", "-i", inner, secret, "::/secret.txt")
	outer := filepath.Join(dir, "outer.img")
	testutil.Run(t, "mkfs.vfat", "-F", "32", "-C", outer, "40000")
	testutil.Run(t, "mcopy", "-i", outer, inner, "::/inner.img")
	testutil.Unchanged(t, outer)

	r := runCLI(t, "timeline", outer)
	if r.err != nil || !bytes.Contains(r.stdout, []byte("|/inner.img|")) || !bytes.Contains(r.stdout, []byte("|/inner.img/p1:/secret.txt|")) {
		t.Fatalf("timeline (%v):\n%s", r.err, r.stdout)
	}
	c := runCLI(t, "timeline", "--format", "csv", outer)
	rows, err := csv.NewReader(bytes.NewReader(c.stdout)).ReadAll()
	if err != nil || c.err != nil {
		t.Fatal(err, c.err)
	}
	n := 0
	for _, row := range rows[1:] {
		if row[5] == "/inner.img/p1:/secret.txt" {
			n++
			if row[6] != "raw /inner.img" || row[3] != outer {
				t.Errorf("row %q: layer or evidence wrong", row)
			}
		}
	}
	if n == 0 {
		t.Errorf("no csv event of the inner file:\n%s", c.stdout)
	}
}

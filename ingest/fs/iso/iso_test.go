package iso

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// buildTree writes a tree with long mixed-case names, nesting, an empty
// file and a multi-sector file, and returns the host dir and path->content.
func buildTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 9))
	files := map[string][]byte{
		"/empty.dat":          nil,
		"/A Dir/file one.txt": []byte("one\n"),
		"/A Dir/Deeper dir/Long Name of a random file.bin": nil,
		"/zz/notes.TXT": []byte("notes"),
	}
	big := make([]byte, 70001)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files["/A Dir/Deeper dir/Long Name of a random file.bin"] = big
	for p, b := range files {
		hp := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, files
}

var flsLine = regexp.MustCompile(`^(\S+) (\* )?(\d+):\t(.*)$`)

// tskFiles returns fls's allocated regular files with icat's SHA-256.
func tskFiles(t *testing.T, img string) map[string]string {
	t.Helper()
	out := testutil.Run(t, "fls", "-r", "-p", img)
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := flsLine.FindStringSubmatch(sc.Text())
		if m == nil || m[2] != "" || strings.HasPrefix(m[4], "$") || m[1] != "r/r" {
			continue
		}
		b, err := exec.Command(testutil.NeedTool(t, "icat"), img, m[3]).Output()
		if err != nil {
			t.Fatalf("icat %s: %v", m[3], err)
		}
		got["/"+m[4]] = sha(b)
	}
	return got
}

func listAll(t *testing.T, f *FS) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := f.Walk(context.Background(), func(file *fs.File) error {
		if file.Type != "file" {
			return nil
		}
		r, err := f.Open(file)
		if err != nil {
			t.Errorf("%s: %v", file.Path, err)
			return nil
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Errorf("%s: %v", file.Path, err)
		}
		got[file.Path] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAgainstTSK(t *testing.T) {
	src, files := buildTree(t)
	for _, tc := range []struct {
		name, tree string
		args       []string
		exact      bool // names equal what was written (long names survive)
	}{
		{"rockridge+joliet", "joliet", []string{"-R", "-J"}, true},
		{"joliet", "joliet", []string{"-J"}, true},
		{"rockridge", "rockridge", []string{"-R"}, true}, // fls shows 8.3 names here: contents compared, not paths
		{"plain", "primary", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "x.iso")
			testutil.Run(t, "genisoimage", append(append([]string{"-quiet", "-o", img}, tc.args...), src)...)
			testutil.Unchanged(t, img)
			fh, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _ := fh.Stat()
			f, err := New(fh, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if f.Tree() != tc.tree {
				t.Errorf("tree %s, want %s", f.Tree(), tc.tree)
			}
			ours := listAll(t, f)
			theirs := tskFiles(t, img)
			if len(ours) != len(theirs) {
				t.Errorf("%d files, fls %d: %v vs %v", len(ours), len(theirs), ours, theirs)
			}
			if tc.tree == "rockridge" {
				ourSums, tskSums := map[string]int{}, map[string]int{}
				for _, h := range ours {
					ourSums[h]++
				}
				for _, h := range theirs {
					tskSums[h]++
				}
				if fmt.Sprint(ourSums) != fmt.Sprint(tskSums) {
					t.Errorf("contents differ from icat: %v vs %v", ourSums, tskSums)
				}
			} else {
				for p, h := range theirs {
					if ours[p] != h {
						t.Errorf("%s: sha %q, icat %s", p, ours[p], h)
					}
				}
			}
			if tc.exact {
				for p, b := range files {
					if ours[p] != sha(b) {
						t.Errorf("%s: sha %q, wrote %s", p, ours[p], sha(b))
					}
				}
			}
			if un, _ := f.Unallocated(); len(un) != 0 {
				t.Errorf("unallocated %v on ISO9660", un)
			}
		})
	}
}

// tinyISO builds a minimal ISO9660 image in memory for fuzz seeds: system
// area, primary descriptor (sector 16), terminator (17), root directory
// (18) with one file whose data is in sector 19.
func tinyISO() []byte {
	img := make([]byte, 20*sectorSize)
	both32 := func(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v); binary.BigEndian.PutUint32(b[4:], v) }
	both16 := func(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v); binary.BigEndian.PutUint16(b[2:], v) }
	rec := func(b []byte, name string, lba, size uint32, flags byte) int {
		n := 33 + len(name)
		if n%2 == 1 {
			n++
		}
		b[0] = byte(n)
		both32(b[2:], lba)
		both32(b[10:], size)
		copy(b[18:], []byte{125, 6, 1, 12, 0, 0, 0}) // 2025-06-01 12:00:00 GMT
		b[25] = flags
		both16(b[28:], 1)
		b[32] = byte(len(name))
		copy(b[33:], name)
		return n
	}
	pvd := img[16*sectorSize:]
	pvd[0] = vdPrimary
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	both32(pvd[80:], 20)
	both16(pvd[vdBlockSize:], sectorSize)
	rec(pvd[vdRootRecord:], "\x00", 18, sectorSize, flagDir)
	term := img[17*sectorSize:]
	term[0] = vdTerminator
	copy(term[1:], "CD001")
	dir := img[18*sectorSize:]
	o := rec(dir, "\x00", 18, sectorSize, flagDir)
	o += rec(dir[o:], "\x01", 18, sectorSize, flagDir)
	rec(dir[o:], "HELLO.TXT;1", 19, 12, 0)
	copy(img[19*sectorSize:], "hello, world")
	return img
}

func TestTinyISO(t *testing.T) {
	img := tinyISO()
	f, err := New(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	got := listAll(t, f)
	if len(got) != 1 || got["/HELLO.TXT"] != sha([]byte("hello, world")) {
		t.Errorf("got %v", got)
	}
}

func TestDirectoryCycle(t *testing.T) {
	img := tinyISO()
	dir := img[18*sectorSize:]
	n := int(dir[0]) + int(dir[int(dir[0])])
	// A subdirectory record pointing back at the root's own extent (LBA 18).
	sub := dir[n+int(dir[n]):]
	copy(sub, dir[:34])
	sub[32], sub[33] = 1, 'D'
	sub[0] = 34
	f, err := New(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	listAll(t, f)
	if p := f.Problems(); len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "cycle") {
		t.Errorf("cycle not reported: %v", p)
	}
}

func FuzzISO(f *testing.F) {
	f.Add(tinyISO())
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		fsys.Walk(context.Background(), func(file *fs.File) error {
			if r, err := fsys.Open(file); err == nil {
				io.Copy(io.Discard, r)
			}
			return nil
		})
	})
}

// TestRockRidgeLongName: a 229-byte name does not fit a directory record's
// system use area; genisoimage continues its NM entry in a CE area.
func TestRockRidgeLongName(t *testing.T) {
	src := t.TempDir()
	name := strings.Repeat("a very long rock ridge name ", 8) + ".txt"
	body := []byte("long name in a continuation area")
	if err := os.WriteFile(filepath.Join(src, name), body, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "rr.iso")
	testutil.Run(t, "genisoimage", "-quiet", "-R", "-o", img, src)
	testutil.Unchanged(t, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := listAll(t, f)
	if got["/"+name] != sha(body) {
		t.Errorf("long name not read whole: %v", got)
	}
}

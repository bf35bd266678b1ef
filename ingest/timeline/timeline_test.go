package timeline

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestModeString(t *testing.T) {
	for _, c := range []struct {
		typ  string
		mode uint32
		want string
	}{
		{"file", 0, "r/rrwxrwxrwx"}, // no permissions recorded (FAT, NTFS): as TSK
		{"dir", 0o40755, "d/drwxr-xr-x"},
		{"file", 0o100640, "r/rrw-r-----"},
		{"file", 0o104755, "r/rrwsr-xr-x"},
		{"file", 0o104644, "r/rrwSr--r--"},
		{"dir", 0o41777, "d/drwxrwxrwt"},
		{"dir", 0o41776, "d/drwxrwxrwT"},
		{"file", 0o102750, "r/rrwxr-s---"},
		{"symlink", 0o120777, "l/lrwxrwxrwx"},
		{"other", 0o10644, "-/-rw-r--r--"},
		{"file", 0o100000, "r/r---------"},
	} {
		if got := ModeString(c.typ, c.mode); got != c.want {
			t.Errorf("ModeString(%s, %#o) = %s, want %s", c.typ, c.mode, got, c.want)
		}
	}
}

func TestWriteBody(t *testing.T) {
	m := time.Date(2024, 5, 6, 7, 8, 9, 990_000_000, time.UTC)
	e := &Entry{Name: "C:/a|b\n.txt", Type: "file", Deleted: true, Inode: 42, Size: 7, Mtime: m, Btime: m.Add(-time.Hour), UID: 5, GID: 6, Mode: 0o100600}
	var b bytes.Buffer
	if err := WriteBody(&b, e); err != nil {
		t.Fatal(err)
	}
	want := "0|C:/a\\x7cb\\x0a.txt (deleted)|42|r/rrw-------|5|6|7|0|" + strconv.FormatInt(m.Unix(), 10) + "|0|" + strconv.FormatInt(m.Unix()-3600, 10) + "\n"
	if b.String() != want {
		t.Errorf("body line %q, want %q", b.String(), want)
	}
	e.MD5 = "d41d8cd98f00b204e9800998ecf8427e"
	b.Reset()
	WriteBody(&b, e)
	if !strings.HasPrefix(b.String(), e.MD5+"|") {
		t.Errorf("MD5 not first: %q", b.String())
	}
}

func TestSorter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var s Sorter
	s.Add(&Entry{Name: "/b", Mtime: t0.Add(2 * time.Second), Atime: t0, Ctime: t0.Add(2 * time.Second)})
	s.Add(&Entry{Name: "/a", Btime: t0.Add(2 * time.Second), Mtime: t0.Add(time.Second)})
	s.Add(&Entry{Name: "/none"})
	var got []string
	for _, ev := range s.Sorted() {
		got = append(got, strconv.FormatInt(ev.Time.Unix()-1000, 10)+ev.Kind+ev.Entry.Name)
	}
	if want := "0A/b 1M/a 2B/a 2M/b 2C/b"; strings.Join(got, " ") != want {
		t.Errorf("sorted %q, want %q", strings.Join(got, " "), want)
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct {
		prefix string
		multi  bool
		want   string
	}{{"", false, "/d/x"}, {"", true, "p2:/d/x"}, {"/", true, "p2:/d/x"}, {"/", false, "/d/x"}, {"/mnt/", false, "/mnt/d/x"},
		{"/mnt/", true, "/mnt/p2:/d/x"}, {"C:", false, "C:/d/x"}, {"C:", true, "C:/p2:/d/x"}} {
		if got := Name(c.prefix, c.multi, 2, "/d/x"); got != c.want {
			t.Errorf("Name(%q, %v) = %q, want %q", c.prefix, c.multi, got, c.want)
		}
	}
}

// FuzzEscape: an escaped name never breaks a body-file field or line, is
// valid UTF-8, and two different names never escape alike.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"/dir/a.txt", "a|b", "x\ny", `back\slash`, "\xff\xfe", "\u0085", "\\x7c", "日本語"} {
		f.Add(s, "a|b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea := Escape(a)
		if strings.ContainsAny(ea, "|\n\r") || !utf8.ValidString(ea) {
			t.Fatalf("Escape(%q) = %q", a, ea)
		}
		if a != b && ea == Escape(b) {
			t.Fatalf("Escape(%q) == Escape(%q) == %q", a, b, ea)
		}
	})
}

// Package timeline turns file listings into timelines: The Sleuth Kit's
// body file (what `fls -m` writes and `mactime -b` reads), and evidx's own
// event timeline, one row per (time, kind) with the evidence and layered
// path, sorted by time, as CSV or JSON lines.
//
// The body file has TSK 3's eleven fields,
// MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime, times as Unix
// seconds (0 when the file system does not record one, e.g. FAT's ctime),
// deleted entries named with TSK's " (deleted)" suffix, and the mode as fls
// prints it ("r/rrwxrwxrwx"). Readers that know no permissions (FAT, NTFS,
// ISO 9660, as TSK shows them) get rwxrwxrwx, as fls gives them; owners are
// 0 where the reader records none. TSK's virtual entries ($MBR, $FAT1,
// $OrphanFiles) are not files evidx lists, so they have no lines.
//
// Names come from the evidence: '|' and control characters would break the
// body file's fields and lines, so they are escaped (\x7c, \x0a), and a
// backslash is doubled so the escaping stays reversible.
//
// Not done: the event timeline is sorted in memory (about 100 bytes per
// event plus the entries), symlink targets (fls's " -> target") are not
// printed, and NTFS's $FILE_NAME times are not separate entries.
package timeline

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/layer"
)

// Entry is one file of a timeline, from any source (a disk walk, a case's
// stored listing).
type Entry struct {
	Evidence  string    `json:"evidence"`        // the image path, or the case's evidence id
	Partition int       `json:"partition"`       // top-level partition index
	Path      string    `json:"path"`            // layered path as ls prints it ("/VMs/a.vhd/p1:/x")
	Layer     string    `json:"layer,omitempty"` // inner layer's format and path, "" on the top disk
	Name      string    `json:"-"`               // the body file's name: Prefix + Path
	Type      string    `json:"type"`            // "file", "dir", "symlink", "other"
	Deleted   bool      `json:"deleted"`
	Inode     uint64    `json:"inode"`
	Mode      uint32    `json:"-"` // Unix st_mode when the reader knows it, else 0
	UID, GID  uint32    `json:"-"`
	Size      int64     `json:"size"`
	MD5       string    `json:"md5,omitempty"` // "" unless computed
	Mtime     time.Time `json:"-"`
	Atime     time.Time `json:"-"`
	Ctime     time.Time `json:"-"`
	Btime     time.Time `json:"-"`
}

// FromFile makes the entry of a file as a reader reports it.
func FromFile(f *fs.File) *Entry {
	return &Entry{Path: f.Path, Name: f.Path, Type: f.Type, Deleted: f.Deleted, Inode: f.Inode, Size: f.Size, Mode: f.Mode, UID: f.UID, GID: f.GID,
		Mtime: f.Mtime, Atime: f.Atime, Ctime: f.Ctime, Btime: f.Btime}
}

// Options say how WalkDisk names and measures entries.
type Options struct {
	Evidence string // Entry.Evidence of every entry
	// Prefix goes before every name, as fls -m's mount point ("/" adds
	// nothing; "C:" gives "C:/dir/x"). When the disk has more than one
	// readable volume and Partition is 0, "pN:" follows it (see Name).
	Prefix string
	MD5    bool // read every recoverable regular file and put its MD5 in the line (fls -m writes 0)
	// Partition, when not 0, keeps only that top-level partition.
	Partition int
}

// WalkDisk calls fn for every file, allocated and deleted, of every file
// system of disk and of every layer inside it (layer.Walk). It returns the
// problems met: the inner layers', and content that could not be read for
// --md5 (such a file's MD5 stays 0); an error from fn stops it.
func WalkDisk(ctx context.Context, disk *fs.Disk, opts Options, fn func(*Entry) error) ([]string, error) {
	readable := 0
	for _, p := range disk.Partitions {
		if p.FS != nil {
			readable++
		}
	}
	var unread []string
	problems, err := layer.Walk(ctx, disk, func(lf *layer.File) error {
		if opts.Partition != 0 && lf.Partition != opts.Partition {
			return nil
		}
		e := FromFile(lf.File)
		e.Evidence, e.Partition, e.Layer = opts.Evidence, lf.Partition, lf.Layer
		e.Name = Name(opts.Prefix, readable > 1 && opts.Partition == 0, lf.Partition, lf.Path)
		if opts.MD5 && lf.Type == "file" && lf.Recoverable {
			sum, err := md5Of(lf)
			if err != nil {
				unread = append(unread, fmt.Sprintf("p%d:%s: MD5 not taken: %v", lf.Partition, lf.Path, err))
			}
			e.MD5 = sum
		}
		return fn(e)
	})
	return append(problems, unread...), err
}

// Name is the body-file name of the file at path of partition part:
// prefix before it (as fls -m's mount point: "/" adds nothing, "C:"
// gives "C:/dir/x"), and "pN:" after the prefix when the disk has several
// volumes and all are listed (multi), so their files stay apart
// ("p2:/dir/x", "/mnt/p2:/dir/x").
func Name(prefix string, multi bool, part int, path string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if !multi {
		return prefix + path
	}
	if prefix != "" {
		prefix += "/"
	}
	return prefix + "p" + strconv.Itoa(part) + ":" + path
}

func md5Of(f *layer.File) (string, error) {
	r, err := f.Open()
	if err != nil {
		return "", err
	}
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("content: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unix is a body-file time: Unix seconds, 0 when unknown.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// WriteBody writes e as one body-file line.
func WriteBody(w io.Writer, e *Entry) error {
	md := e.MD5
	if md == "" {
		md = "0"
	}
	name := Escape(e.Name)
	if e.Deleted {
		name += " (deleted)"
	}
	_, err := fmt.Fprintf(w, "%s|%s|%d|%s|%d|%d|%d|%d|%d|%d|%d\n", md, name, e.Inode, ModeString(e.Type, e.Mode),
		e.UID, e.GID, e.Size, unix(e.Atime), unix(e.Mtime), unix(e.Ctime), unix(e.Btime))
	return err
}

// Unix file-type bits of st_mode.
const (
	modeType    = 0o170000
	modeSetuid  = 0o4000
	modeSetgid  = 0o2000
	modeSticky  = 0o1000
	defaultPerm = 0o777
)

// ModeString is the mode as fls -m prints it: the name type and meta type
// ("r/r", "d/d", "l/l", "-/-") and the nine permission characters with
// setuid, setgid and sticky as ls shows them. mode 0 means the reader
// records no permissions: rwxrwxrwx, as TSK gives FAT and NTFS files.
func ModeString(typ string, mode uint32) string {
	t := "-/-"
	switch typ {
	case "file":
		t = "r/r"
	case "dir":
		t = "d/d"
	case "symlink":
		t = "l/l"
	}
	if mode == 0 {
		mode = defaultPerm
	}
	b := []byte("rwxrwxrwx")
	for i := range 9 {
		if mode&(1<<(8-i)) == 0 {
			b[i] = '-'
		}
	}
	special := func(bit uint32, i int, c byte) {
		if mode&bit == 0 {
			return
		}
		if b[i] == 'x' {
			b[i] = c
		} else {
			b[i] = c - 'a' + 'A'
		}
	}
	special(modeSetuid, 2, 's')
	special(modeSetgid, 5, 's')
	special(modeSticky, 8, 't')
	return t + string(b)
}

// Escape makes a name safe for one body-file field and one line: '|',
// control characters and DEL become \xNN (C1 controls \u00NN), invalid
// UTF-8 bytes \xNN, a backslash \\.
func Escape(s string) string {
	if !strings.ContainsAny(s, "|\\\x7f") && !hasControl(s) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '|' || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x80 && r < 0xa0 {
			return true
		}
	}
	return false
}

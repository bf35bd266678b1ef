package custody

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// DFXMLVersion is the DFXML schema version the files declare.
const DFXMLVersion = "2.0.0-beta.0"

const dfxmlNS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"

// xw writes XML by hand, streaming: a DFXML file holds one fileobject per
// file and may be large. The first write error sticks and is returned by err.
type xw struct {
	w   io.Writer
	e   error
	ind int
}

func (x *xw) raw(s string) {
	if x.e == nil {
		_, x.e = io.WriteString(x.w, s)
	}
}

func (x *xw) open(tag string, attrs ...string) {
	x.raw(strings.Repeat("  ", x.ind) + "<" + tag + attrText(attrs) + ">\n")
	x.ind++
}

func (x *xw) close(tag string) {
	x.ind--
	x.raw(strings.Repeat("  ", x.ind) + "</" + tag + ">\n")
}

// elem writes <tag attrs>text</tag>; an empty text with no attributes is skipped.
func (x *xw) elem(tag, text string, attrs ...string) {
	if text == "" && len(attrs) == 0 {
		return
	}
	x.raw(strings.Repeat("  ", x.ind) + "<" + tag + attrText(attrs) + ">" + xmlText(text) + "</" + tag + ">\n")
}

func (x *xw) empty(tag string, attrs ...string) {
	x.raw(strings.Repeat("  ", x.ind) + "<" + tag + attrText(attrs) + "/>\n")
}

func attrText(kv []string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(" " + kv[i] + `="` + xmlText(kv[i+1]) + `"`)
	}
	return b.String()
}

// xmlText escapes s for XML text and attributes. Characters XML cannot
// carry at all (control characters, invalid UTF-8) are first written as
// %XX, as in export names, so names from evidence stay readable and valid.
func xmlText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			i++
			continue
		}
		r, n := decodeRune(s[i:])
		if n == 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			i++
			continue
		}
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '\t':
			b.WriteString("&#9;")
		case '\n':
			b.WriteString("&#10;")
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// decodeRune returns the rune at the start of s and its length, or n=0
// when it is not valid UTF-8 or not an XML 1.0 character.
func decodeRune(s string) (rune, int) {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 || r == 0xFFFE || r == 0xFFFF {
		return 0, 0
	}
	return r, n
}

func itoa(n int64) string { return fmt.Sprint(n) }

func xmlTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// writeDFXML writes the DFXML 2 document of one evidence item: the creator
// and its execution environment, the image with its hashes as a byte_run
// over the whole media, a volume per file system with a fileobject per file
// (byte_runs in image offsets, MD5 and SHA-256 of the content), and a
// fileobject per carved item.
func (c *Case) writeDFXML(ctx context.Context, w io.Writer, rep *Report, ev EvidenceReport) error {
	x := &xw{w: w}
	x.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.open("dfxml", "xmlns", dfxmlNS, "xmlns:dc", "http://purl.org/dc/elements/1.1/", "version", DFXMLVersion)
	x.open("metadata")
	x.elem("dc:type", "Disk Image")
	x.elem("dc:title", "evidx evidence "+ev.ID+", case "+rep.Case.CaseNumber)
	x.elem("dc:creator", rep.Case.Examiner)
	x.elem("dc:publisher", rep.Case.Agency)
	x.elem("dc:date", xmlTime(rep.Generated))
	x.close("metadata")
	x.open("creator")
	x.elem("program", rep.Tool.Name)
	x.elem("version", strings.TrimSpace(rep.Tool.Version+" "+rep.Tool.Revision))
	x.open("build_environment")
	x.elem("compiler", rep.Tool.GoVersion)
	x.close("build_environment")
	x.open("execution_environment")
	env := rep.Environment
	x.elem("os_sysname", env.OSSysname)
	x.elem("os_release", env.OSRelease)
	x.elem("os_version", env.OSVersion)
	x.elem("host", env.Host)
	x.elem("arch", env.Arch)
	x.elem("command_line", env.Command)
	x.elem("username", env.User)
	x.elem("start_time", xmlTime(rep.Generated))
	x.close("execution_environment")
	x.close("creator")
	x.open("source")
	for _, s := range ev.Segments {
		x.elem("image_filename", s.Path)
	}
	x.close("source")

	x.open("diskimageobject")
	x.open("byte_runs")
	x.open("byte_run", "img_offset", "0", "len", itoa(max(ev.Size, 0)))
	x.elem("hashdigest", ev.Computed.MD5, "type", "md5")
	x.elem("hashdigest", ev.Computed.SHA1, "type", "sha1")
	x.elem("hashdigest", ev.Computed.SHA256, "type", "sha256")
	x.close("byte_run")
	x.close("byte_runs")
	if ev.SectorSize > 0 {
		x.elem("sector_size", itoa(int64(ev.SectorSize)))
	}
	// One pass over the files (ordered by volume) merged with the volumes
	// (ordered by index): each volume element holds its files; files of a
	// volume the walker did not record get a volume element of their own.
	vols := ev.Volumes
	cur, open := 0, false
	openVol := func(v Volume) {
		v.Start, v.Size = max(v.Start, 0), max(v.Size, 0)
		x.open("volume", "offset", itoa(v.Start))
		x.open("byte_runs")
		x.empty("byte_run", "img_offset", itoa(v.Start), "len", itoa(v.Size))
		x.close("byte_runs")
		x.elem("partition_offset", itoa(v.Start))
		if ev.SectorSize > 0 {
			x.elem("sector_size", itoa(int64(ev.SectorSize)))
		}
		x.elem("ftype_str", v.FileSystem)
		cur, open = v.Index, true
	}
	var problems string
	closeVol := func() {
		if open {
			x.elem("error", problems)
			x.close("volume")
			open, problems = false, ""
		}
	}
	// flushTo writes the recorded volumes with an index below idx (with
	// no files) and opens the one equal to idx, or an unrecorded one.
	flushTo := func(idx int) {
		closeVol()
		for len(vols) > 0 && vols[0].Index < idx {
			openVol(vols[0])
			problems = strings.Join(vols[0].Problems, "; ")
			closeVol()
			vols = vols[1:]
		}
		if len(vols) > 0 && vols[0].Index == idx {
			openVol(vols[0])
			problems = strings.Join(vols[0].Problems, "; ")
			vols = vols[1:]
			return
		}
		openVol(Volume{Index: idx, FileSystem: "unrecorded volume"})
	}
	if err := c.Files(ctx, ev.ID, func(f File) error {
		if !open || f.Volume != cur {
			flushTo(f.Volume)
		}
		writeFileObject(x, f, f.Volume)
		return x.e
	}); err != nil {
		return err
	}
	closeVol()
	for _, v := range vols { // recorded volumes after the last one with files
		openVol(v)
		problems = strings.Join(v.Problems, "; ")
		closeVol()
	}
	if err := c.CarvedItems(ctx, ev.ID, func(cv Carved) error {
		x.open("fileobject")
		name := fmt.Sprintf("carved/%012x-%s", cv.Offset, cv.Type)
		if cv.Layer != "" {
			name = cv.Layer + "/" + name
		}
		x.elem("filename", name)
		x.elem("id", "carved-"+itoa(cv.ID))
		x.elem("name_type", "r")
		x.elem("filesize", itoa(cv.Length))
		x.elem("alloc", "0")
		x.elem("libmagic", cv.Type)
		runs := cv.Runs
		if len(runs) == 0 {
			runs = []Run{{Logical: 0, Offset: cv.Offset, Length: cv.Length}}
		}
		// Runs of a file carved inside a layer are offsets in that layer's
		// disk, not img_offset: the filename says where, the runs are left out.
		if cv.Layer == "" {
			writeRuns(x, runs)
		}
		md5 := cv.MD5
		if md5 == "" && cv.Object != "" {
			c.db.QueryRowContext(ctx, `SELECT md5 FROM objects WHERE sha256=?`, cv.Object).Scan(&md5)
		}
		x.elem("hashdigest", md5, "type", "md5")
		x.elem("hashdigest", cv.SHA256, "type", "sha256")
		x.close("fileobject")
		return x.e
	}); err != nil {
		return err
	}
	if len(ev.Container) > 0 || len(ev.Unreadable) > 0 {
		var errs []string
		errs = append(errs, ev.Container...)
		for _, u := range ev.Unreadable {
			errs = append(errs, fmt.Sprintf("bytes %d..%d unreadable", u.Offset, u.Offset+u.Length))
		}
		x.elem("error", strings.Join(errs, "; "))
	}
	x.close("diskimageobject")
	x.close("dfxml")
	return x.e
}

// nameType maps File.Type to DFXML's name_type letters.
func nameType(t string) string {
	switch t {
	case "file":
		return "r"
	case "dir":
		return "d"
	case "symlink":
		return "l"
	default:
		return "-"
	}
}

func writeFileObject(x *xw, f File, part int) {
	x.open("fileobject")
	x.elem("filename", strings.TrimPrefix(f.Path, "/"))
	x.elem("error", f.Err)
	if part > 0 {
		x.elem("partition", itoa(int64(part)))
	}
	x.elem("id", itoa(f.ID))
	x.elem("name_type", nameType(f.Type))
	x.elem("filesize", itoa(f.Size))
	if f.Deleted {
		x.elem("alloc", "0")
	} else {
		x.elem("alloc", "1")
	}
	x.elem("inode", fmt.Sprint(f.Inode))
	x.elem("mtime", xmlTime(f.Mtime))
	x.elem("ctime", xmlTime(f.Ctime))
	x.elem("atime", xmlTime(f.Atime))
	x.elem("crtime", xmlTime(f.Crtime))
	if len(f.Runs) > 0 {
		writeRuns(x, f.Runs)
	}
	x.elem("hashdigest", f.MD5, "type", "md5")
	x.elem("hashdigest", f.SHA256, "type", "sha256")
	x.close("fileobject")
}

func writeRuns(x *xw, runs []Run) {
	x.open("byte_runs")
	for _, r := range runs {
		if r.Logical < 0 || r.Length < 0 || r.Offset < 0 {
			continue // damage from the walker; not representable in DFXML
		}
		if r.Sparse {
			x.empty("byte_run", "file_offset", itoa(r.Logical), "len", itoa(r.Length), "fill", "0")
			continue
		}
		x.empty("byte_run", "file_offset", itoa(r.Logical), "img_offset", itoa(r.Offset), "len", itoa(r.Length))
	}
	x.close("byte_runs")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

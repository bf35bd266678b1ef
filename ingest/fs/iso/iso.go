// Package iso reads ISO9660 file systems read-only: the Joliet tree (UCS-2
// names) when present, else the primary tree with Rock Ridge names (NM),
// else the primary 8.3-style names with ";1" removed.
// The format is parsed directly: it is small and go-diskfs needs a path.
// ISO9660 has no deleted files and no free space, so Unallocated is empty.
package iso

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/evidx/evidx/ingest/fs"
)

// Layout constants (ECMA-119; byte offsets within a volume descriptor or a
// directory record).
const (
	sectorSize   = 2048
	vdStart      = 16 // first volume descriptor sector
	vdMax        = 64 // descriptors read before giving up on a terminator
	vdPrimary    = 1
	vdSupplement = 2
	vdTerminator = 255
	vdBlockSize  = 128 // logical block size, both-endian 16-bit
	vdRootRecord = 156 // 34-byte root directory record
	vdEscapes    = 88  // Joliet escape sequences in a supplementary descriptor

	drLen      = 0
	drExtent   = 2  // LBA, little-endian half of the both-endian pair
	drSize     = 10 // data length
	drDate     = 18 // 7-byte recording date
	drFlags    = 25
	drNameLen  = 32
	drName     = 33
	flagDir    = 0x02
	flagMulti  = 0x80     // more extents of this file follow
	maxDirSize = 64 << 20 // directory bytes read at most
	maxDepth   = 256
	maxProbs   = 10000
)

// Sentinel errors.
var (
	ErrNotISO = errors.New("iso: not an ISO9660 file system")
	ErrIsDir  = errors.New("iso: is a directory")
)

// FS is an opened ISO9660 volume. Open may be called concurrently; Walk
// must not run concurrently with itself.
type FS struct {
	r     io.ReaderAt
	size  int64
	block int64 // logical block size in bytes (2048 in practice)
	root  []byte
	tree  string // "rockridge", "joliet" or "primary": where names come from
	susp  int    // bytes to skip in each system use area (SUSP SP entry)

	mu       sync.Mutex
	problems []string
}

// Open reads the volume descriptors of the image of size bytes in r.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	f, err := New(r, size)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// New is Open returning the concrete type.
func New(r io.ReaderAt, size int64) (*FS, error) {
	f := &FS{r: r, size: size, tree: "primary"}
	var primary, joliet []byte
	vd := make([]byte, sectorSize)
	for i := int64(vdStart); i < vdStart+vdMax; i++ {
		off := i * sectorSize
		if _, err := r.ReadAt(vd, off); err != nil {
			return nil, &fs.ParseError{Op: "iso volume descriptor", Offset: off, Err: err}
		}
		if string(vd[1:6]) != "CD001" {
			return nil, &fs.ParseError{Op: "iso volume descriptor", Offset: off, Err: fmt.Errorf("%w: no CD001", ErrNotISO)}
		}
		switch vd[0] {
		case vdPrimary:
			if primary == nil {
				primary = bytes.Clone(vd)
			}
		case vdSupplement:
			esc := string(vd[vdEscapes : vdEscapes+3])
			if joliet == nil && (esc == "%/@" || esc == "%/C" || esc == "%/E") {
				joliet = bytes.Clone(vd)
			}
		}
		if vd[0] == vdTerminator {
			break
		}
	}
	if primary == nil {
		return nil, &fs.ParseError{Op: "iso volume descriptor", Offset: vdStart * sectorSize, Err: fmt.Errorf("%w: no primary volume descriptor", ErrNotISO)}
	}
	f.block = int64(binary.LittleEndian.Uint16(primary[vdBlockSize:]))
	switch f.block {
	case 512, 1024, 2048:
	default:
		return nil, &fs.ParseError{Op: "iso primary descriptor", Offset: vdStart*sectorSize + vdBlockSize, Err: fmt.Errorf("%w: block size %d", ErrNotISO, f.block)}
	}
	f.root = bytes.Clone(primary[vdRootRecord : vdRootRecord+34])
	// Joliet first: it is what Windows shows and what fls/icat read, so
	// listings cross-check with TSK; Rock Ridge when it is the only source
	// of real names (TSK shows 8.3 names there).
	if joliet != nil {
		f.tree = "joliet"
		f.root = bytes.Clone(joliet[vdRootRecord : vdRootRecord+34])
	} else if skip, ok := f.rockRidge(); ok {
		f.tree, f.susp = "rockridge", skip
	}
	return f, nil
}

// Tree says where names come from: "rockridge", "joliet" or "primary".
func (f *FS) Tree() string { return f.tree }

// rockRidge looks for the SUSP "SP" entry in the root's "." record, which
// marks Rock Ridge, and returns its skip count.
func (f *FS) rockRidge() (int, bool) {
	ext := int64(binary.LittleEndian.Uint32(f.root[drExtent:]))
	rec := make([]byte, 255)
	if _, err := f.r.ReadAt(rec, ext*f.block); err != nil {
		return 0, false
	}
	n := int(rec[drLen])
	if n < 34 || n > len(rec) {
		return 0, false
	}
	su := systemUse(rec[:n])
	if len(su) >= 7 && string(su[:2]) == "SP" && su[4] == 0xbe && su[5] == 0xef {
		return int(su[6]), true
	}
	return 0, false
}

// systemUse returns the system use area of a directory record.
func systemUse(rec []byte) []byte {
	nl := int(rec[drNameLen])
	start := drName + nl
	if nl%2 == 0 {
		start++ // padding byte after an even-length name
	}
	if start > len(rec) {
		return nil
	}
	return rec[start:]
}

func (f *FS) problem(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) < maxProbs {
		f.problems = append(f.problems, fmt.Sprintf(format, a...))
	}
}

// Type implements fs.FileSystem.
func (f *FS) Type() string { return "iso9660" }

// Problems implements fs.FileSystem.
func (f *FS) Problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.problems...)
}

// Unallocated implements fs.FileSystem: ISO9660 has no allocation map and
// no free space.
func (f *FS) Unallocated() ([]fs.Range, error) { return nil, nil }

// Open implements fs.FileSystem.
func (f *FS) Open(file *fs.File) (io.Reader, error) {
	if file.Type == "dir" {
		return nil, fmt.Errorf("%s: %w", file.Path, ErrIsDir)
	}
	rs := make([]io.Reader, 0, len(file.Runs))
	var got int64
	for _, r := range file.Runs {
		rs = append(rs, io.NewSectionReader(f.r, r.Offset, r.Length))
		got += r.Length
	}
	if got < file.Size {
		return nil, fmt.Errorf("%s: only %d of %d bytes mapped", file.Path, got, file.Size)
	}
	return io.MultiReader(rs...), nil
}

type walker struct {
	f       *FS
	ctx     context.Context
	fn      func(*fs.File) error
	visited map[int64]bool // directory extents walked: cycle guard
}

// Walk implements fs.FileSystem. Inode is the LBA of the file's first
// extent (directories: of their own extent).
func (f *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	w := &walker{f: f, ctx: ctx, fn: fn, visited: map[int64]bool{}}
	return w.dir(f.root, "", 0)
}

func (w *walker) dir(self []byte, path string, depth int) error {
	f := w.f
	ext := int64(binary.LittleEndian.Uint32(self[drExtent:]))
	size := int64(binary.LittleEndian.Uint32(self[drSize:]))
	off := ext * f.block
	if w.visited[off] {
		f.problem("directory %q at %#x: already walked (directory cycle), not descended", path+"/", off)
		return nil
	}
	w.visited[off] = true
	if size > maxDirSize || off+size > f.size {
		f.problem("directory %q at %#x: %d bytes, beyond the image or the %d-byte cap", path+"/", off, size, maxDirSize)
		size = max(0, min(size, maxDirSize, f.size-off))
	}
	data := make([]byte, size)
	if n, err := f.r.ReadAt(data, off); err != nil && n < len(data) {
		f.problem("directory %q at %#x: read %d of %d bytes: %v", path+"/", off, n, size, err)
		data = data[:n]
	}
	var pending *fs.File // a multi-extent file collecting its extents
	for i := 0; i < len(data); {
		n := int(data[i])
		if n == 0 {
			// Records never cross a sector: skip to the next one.
			i = (i/sectorSize + 1) * sectorSize
			continue
		}
		if n < drName+1 || i+n > len(data) {
			f.problem("directory %q: bad record length %d at %#x", path+"/", n, off+int64(i))
			i = (i/sectorSize + 1) * sectorSize
			continue
		}
		rec := data[i : i+n]
		i += n
		nl := int(rec[drNameLen])
		if drName+nl > len(rec) {
			f.problem("directory %q: name length %d overruns record at %#x", path+"/", nl, off+int64(i-n))
			continue
		}
		raw := rec[drName : drName+nl]
		if nl == 1 && (raw[0] == 0 || raw[0] == 1) {
			continue // "." and ".."
		}
		name := w.name(rec, raw)
		flags := rec[drFlags]
		extLBA := int64(binary.LittleEndian.Uint32(rec[drExtent:]))
		dlen := int64(binary.LittleEndian.Uint32(rec[drSize:]))
		file := &fs.File{
			Path:        path + "/" + name,
			Inode:       uint64(extLBA),
			Mtime:       recDate(rec[drDate : drDate+7]),
			Recoverable: true,
		}
		if flags&flagDir != 0 {
			file.Type = "dir"
		} else {
			file.Type = "file"
			file.Size = dlen
			if dlen > 0 {
				file.Runs = []fs.Run{{Offset: extLBA * f.block, Length: dlen}}
			}
			if extLBA*f.block+dlen > f.size {
				file.Err = fmt.Sprintf("extent at %#x (%d bytes) runs past the end of the image (%#x)", extLBA*f.block, dlen, f.size)
				f.problem("%s: %s", file.Path, file.Err)
			}
		}
		if pending != nil {
			// Continuation extent of a multi-extent file (files over 4 GiB).
			if pending.Path == file.Path && file.Type == "file" {
				if dlen > 0 {
					pending.Runs = append(pending.Runs, fs.Run{Logical: pending.Size, Offset: extLBA * f.block, Length: dlen})
				}
				pending.Size += dlen
				pending.Err = joinMsg(pending.Err, file.Err)
				if flags&flagMulti != 0 {
					continue
				}
				file, pending = pending, nil
			} else {
				if err := w.fn(pending); err != nil {
					return err
				}
				pending = nil
			}
		}
		if file.Type == "file" && flags&flagMulti != 0 {
			pending = file
			continue
		}
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := w.fn(file); err != nil {
			return err
		}
		if file.Type == "dir" {
			if depth >= maxDepth {
				f.problem("directory %q: nested deeper than %d, not descended", file.Path, maxDepth)
				continue
			}
			if err := w.dir(rec, file.Path, depth+1); err != nil {
				return err
			}
		}
	}
	if pending != nil {
		return w.fn(pending)
	}
	return nil
}

func joinMsg(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// name returns a record's name for the tree in use, made safe to show as
// one path element (no "/", no NUL).
func (w *walker) name(rec, raw []byte) string {
	var name string
	switch w.f.tree {
	case "rockridge":
		if nm, ok := w.rrName(rec); ok {
			name = nm
		} else {
			name = primaryName(raw)
		}
	case "joliet":
		u := make([]uint16, 0, len(raw)/2)
		for i := 0; i+1 < len(raw); i += 2 {
			u = append(u, binary.BigEndian.Uint16(raw[i:]))
		}
		name = strings.TrimSuffix(string(utf16.Decode(u)), ";1")
	default:
		name = primaryName(raw)
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	name = strings.NewReplacer("/", "_", "\x00", "_").Replace(name)
	if name == "" || name == "." || name == ".." {
		name = "_"
	}
	return name
}

// primaryName strips the ";1" version and a trailing dot of an ISO name.
func primaryName(raw []byte) string {
	s := string(raw)
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// rrName assembles the Rock Ridge NM entries of a record (continued by the
// CONTINUE flag), following SUSP continuation areas (CE) up to maxCE hops.
func (w *walker) rrName(rec []byte) (string, bool) {
	su := systemUse(rec)
	if w.f.susp < len(su) {
		su = su[w.f.susp:]
	}
	var name []byte
	found := false
	const maxCE = 8 // continuation areas followed per record
	for hops := 0; ; hops++ {
		var ceLBA, ceOff, ceLen int64 = -1, 0, 0
		for len(su) >= 4 {
			l := int(su[2])
			if l < 4 || l > len(su) {
				break
			}
			switch string(su[:2]) {
			case "NM":
				if l >= 5 && su[4]&0x06 == 0 { // not "." or ".." aliases
					name = append(name, su[5:l]...)
					found = true
				}
			case "CE":
				if l >= 28 {
					ceLBA = int64(binary.LittleEndian.Uint32(su[4:]))
					ceOff = int64(binary.LittleEndian.Uint32(su[12:]))
					ceLen = int64(binary.LittleEndian.Uint32(su[20:]))
				}
			}
			if string(su[:2]) == "ST" {
				break
			}
			su = su[l:]
		}
		if ceLBA < 0 || hops >= maxCE || ceLen <= 0 || ceLen > sectorSize {
			break
		}
		buf := make([]byte, ceLen)
		if _, err := w.f.r.ReadAt(buf, ceLBA*w.f.block+ceOff); err != nil {
			w.f.problem("rock ridge continuation area at %#x: %v", ceLBA*w.f.block+ceOff, err)
			break
		}
		su = buf
	}
	if len(name) > 1024 {
		name = name[:1024] // longer than any POSIX name: damage, not data
	}
	return string(name), found && len(name) > 0
}

// recDate decodes a 7-byte directory record date: years since 1900, month,
// day, hour, minute, second, and the offset from GMT in 15-minute units.
func recDate(b []byte) time.Time {
	if b[1] < 1 || b[1] > 12 || b[2] < 1 || b[2] > 31 || b[3] > 23 || b[4] > 59 || b[5] > 59 {
		return time.Time{}
	}
	zone := time.FixedZone("", int(int8(b[6]))*15*60)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, zone).UTC()
}

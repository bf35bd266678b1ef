// Package vmdk reads VMware Virtual Machine Disk images read-only:
// hosted sparse extents ("KDMV": monolithicSparse, twoGbMaxExtentSparse,
// streamOptimized with deflate-compressed grains and the grain directory at
// the end), flat extents (monolithicFlat, twoGbMaxExtentFlat) named by a
// text descriptor, zero extents, and snapshots whose unallocated grains
// read from the parent named by parentFileNameHint. ESX VMFS sparse
// ("COWD") and SE sparse extents are refused with an error.
//
// Integers in sparse extents are little-endian; sizes are in 512-byte
// sectors.
package vmdk

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// OpenFunc opens, read-only, another file the container names.
type OpenFunc func(path string) (io.ReaderAt, int64, error)

// Errors, wrapped with the file name and offset.
var (
	ErrFormat      = errors.New("vmdk: not a VMDK image")
	ErrCorrupt     = errors.New("vmdk: corrupt")
	ErrUnsupported = errors.New("vmdk: unsupported")
)

const (
	sector        = 512
	maxDescriptor = 64 << 10
	maxCapacity   = 1 << 40 // sectors: 512 TiB
	maxGrain      = 1 << 16 // sectors per grain (32 MiB)
	maxDepth      = 16
	gdAtEnd       = ^uint64(0)
	flagCompress  = 1 << 16
)

// Disk is an opened VMDK image.
type Disk struct {
	name     string
	size     int64
	format   string
	extents  []extent
	parent   io.ReaderAt // nil: unallocated grains read as zeros
	files    []string
	problems []string
}

// extent is one piece of the virtual disk, in order.
type extent struct {
	start, size int64 // bytes in the virtual disk
	kind        string
	r           io.ReaderAt
	off         int64   // FLAT: byte offset in r
	sp          *sparse // SPARSE
}

// Detect reports a hosted sparse extent ("KDMV") or a text descriptor.
func Detect(r io.ReaderAt, size int64) bool {
	b := make([]byte, 64)
	n, _ := r.ReadAt(b, 0)
	b = b[:n]
	if bytes.HasPrefix(b, []byte("KDMV")) {
		return true
	}
	return size <= maxDescriptor && bytes.Contains(b, []byte("# Disk DescriptorFile"))
}

// Open parses the VMDK image r of size bytes named name.
func Open(r io.ReaderAt, size int64, name string, open OpenFunc) (*Disk, error) {
	return openDepth(r, size, name, open, 0, map[string]bool{})
}

func openDepth(r io.ReaderAt, size int64, name string, open OpenFunc, depth int, seen map[string]bool) (*Disk, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: %w: more than %d parents", name, ErrCorrupt, maxDepth)
	}
	if seen[name] {
		return nil, fmt.Errorf("%s: %w: parent chain loops", name, ErrCorrupt)
	}
	seen[name] = true
	d := &Disk{name: name}
	var desc []byte
	var self *sparse
	head := make([]byte, 4)
	r.ReadAt(head, 0)
	if string(head) == "KDMV" {
		sp, err := openSparse(r, size, name)
		if err != nil {
			return nil, err
		}
		self = sp
		if desc, err = sp.descriptor(); err != nil {
			return nil, err
		}
	} else {
		if size > maxDescriptor {
			return nil, fmt.Errorf("%s: %w: %d bytes is no descriptor file", name, ErrFormat, size)
		}
		desc = make([]byte, size)
		if n, err := r.ReadAt(desc, 0); int64(n) < size {
			return nil, fmt.Errorf("%s: descriptor: %w", name, errors.Join(io.ErrUnexpectedEOF, err))
		}
	}
	if !bytes.Contains(desc, []byte("# Disk DescriptorFile")) && self == nil {
		return nil, fmt.Errorf("%s: %w: no descriptor", name, ErrFormat)
	}
	var parentHint string
	sc := bufio.NewScanner(bytes.NewReader(desc))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			switch k {
			case "createType":
				d.format = "vmdk-" + v
			case "parentFileNameHint":
				parentHint = v
			}
			continue
		}
		f := fieldsQuoted(line)
		if len(f) < 3 || (f[0] != "RW" && f[0] != "RDONLY" && f[0] != "NOACCESS") {
			continue
		}
		secs, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || secs < 0 || secs > maxCapacity {
			return nil, fmt.Errorf("%s: descriptor line %q: %w: extent size", name, line, ErrCorrupt)
		}
		e := extent{start: d.size, size: secs * sector, kind: f[2]}
		switch f[2] {
		case "ZERO":
		case "FLAT", "VMFS", "SPARSE", "VMFSSPARSE":
			if len(f) < 4 {
				return nil, fmt.Errorf("%s: descriptor line %q: %w: no file", name, line, ErrCorrupt)
			}
			if f[2] == "VMFSSPARSE" {
				return nil, fmt.Errorf("%s: %w: VMFS sparse extent %q", name, ErrUnsupported, f[3])
			}
			var xr io.ReaderAt
			var xs int64
			if self != nil && (f[2] == "SPARSE") && d.extents == nil && filepath.Base(f[3]) == filepath.Base(name) {
				xr, xs = r, size // the descriptor is embedded in this extent
			} else {
				if open == nil {
					return nil, fmt.Errorf("%s: %w: extent file %q not opened (no opener)", name, ErrUnsupported, f[3])
				}
				p, rr, sz, err := openBeside(name, f[3], open)
				if err != nil {
					return nil, fmt.Errorf("%s: extent %q: %w", name, f[3], err)
				}
				d.files = append(d.files, p)
				xr, xs = rr, sz
			}
			e.r = xr
			if f[2] == "SPARSE" {
				sp, err := openSparse(xr, xs, f[3])
				if err != nil {
					return nil, err
				}
				e.sp = sp
			} else if len(f) >= 5 {
				o, err := strconv.ParseInt(f[4], 10, 64)
				if err != nil || o < 0 {
					return nil, fmt.Errorf("%s: descriptor line %q: %w: offset", name, line, ErrCorrupt)
				}
				e.off = o * sector
			}
		default:
			return nil, fmt.Errorf("%s: %w: extent type %s", name, ErrUnsupported, f[2])
		}
		d.extents = append(d.extents, e)
		d.size += e.size
	}
	if len(d.extents) == 0 {
		if self == nil {
			return nil, fmt.Errorf("%s: %w: descriptor names no extent", name, ErrCorrupt)
		}
		d.extents = []extent{{size: self.capacity, kind: "SPARSE", r: r, sp: self}}
		d.size = self.capacity
	}
	if d.format == "" {
		d.format = "vmdk-monolithicSparse"
	}
	if parentHint != "" {
		if open == nil {
			return nil, fmt.Errorf("%s: %w: parent %q not opened (no opener)", name, ErrUnsupported, parentHint)
		}
		p, rr, sz, err := openBeside(name, parentHint, open)
		if err != nil {
			return nil, fmt.Errorf("%s: parent %q: %w", name, parentHint, err)
		}
		pd, err := openDepth(rr, sz, p, open, depth+1, seen)
		if err != nil {
			return nil, err
		}
		d.parent = pd
		d.files = append(append(d.files, p), pd.files...)
		d.problems = append(d.problems, pd.problems...)
	}
	return d, nil
}

// openBeside opens a file named in a descriptor: beside name first, then
// as recorded.
func openBeside(name, rec string, open OpenFunc) (string, io.ReaderAt, int64, error) {
	rec = strings.ReplaceAll(rec, `\`, "/")
	cands := []string{filepath.Join(filepath.Dir(name), filepath.Base(rec))}
	if !filepath.IsAbs(rec) {
		cands = append(cands, filepath.Join(filepath.Dir(name), rec))
	} else {
		cands = append(cands, rec)
	}
	var first error
	for _, c := range cands {
		r, sz, err := open(c)
		if err == nil {
			return c, r, sz, nil
		}
		if first == nil {
			first = err
		}
	}
	return "", nil, 0, first
}

// fieldsQuoted splits a descriptor extent line, keeping a quoted name whole.
func fieldsQuoted(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return append(out, s[1:])
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// sparse is one hosted sparse extent file.
type sparse struct {
	r          io.ReaderAt
	name       string
	fileSize   int64
	capacity   int64 // bytes
	grain      int64 // bytes
	gtes       int64 // entries per grain table
	descOff    int64
	descSize   int64
	compressed bool
	gd         []uint32
	mu         sync.Mutex
	gtCache    map[uint32][]uint32
}

func openSparse(r io.ReaderAt, size int64, name string) (*sparse, error) {
	h := make([]byte, sector)
	if n, err := r.ReadAt(h, 0); n < sector {
		return nil, fmt.Errorf("%s: header: %w", name, errors.Join(io.ErrUnexpectedEOF, err))
	}
	if string(h[:4]) != "KDMV" {
		return nil, fmt.Errorf("%s: %w: no KDMV magic", name, ErrFormat)
	}
	le := binary.LittleEndian
	if le.Uint64(h[56:]) == gdAtEnd {
		// streamOptimized: the header to use is the footer, 1024 bytes
		// before the end (then the end-of-stream marker).
		if size < 3*sector {
			return nil, fmt.Errorf("%s: %w: no footer", name, ErrCorrupt)
		}
		f := make([]byte, sector)
		if n, _ := r.ReadAt(f, size-2*sector); n < sector || string(f[:4]) != "KDMV" {
			return nil, fmt.Errorf("%s: footer at %#x: %w: no KDMV magic", name, size-2*sector, ErrCorrupt)
		}
		h = f
	}
	s := &sparse{r: r, name: name, fileSize: size, gtCache: map[uint32][]uint32{}}
	flags := le.Uint32(h[8:])
	capSec, grainSec := le.Uint64(h[12:]), le.Uint64(h[20:])
	s.descOff, s.descSize = int64(le.Uint64(h[28:]))*sector, int64(le.Uint64(h[36:]))*sector
	s.gtes = int64(le.Uint32(h[44:]))
	gdOff := le.Uint64(h[56:])
	s.compressed = flags&flagCompress != 0
	if s.compressed && le.Uint16(h[77:]) != 1 {
		return nil, fmt.Errorf("%s: %w: compression algorithm %d", name, ErrUnsupported, le.Uint16(h[77:]))
	}
	if capSec > maxCapacity || grainSec == 0 || grainSec > maxGrain || grainSec&(grainSec-1) != 0 || s.gtes <= 0 || s.gtes > 1<<16 {
		return nil, fmt.Errorf("%s: header: %w: capacity %d, grain %d, %d entries per table", name, ErrCorrupt, capSec, grainSec, s.gtes)
	}
	s.capacity, s.grain = int64(capSec)*sector, int64(grainSec)*sector
	if s.descSize < 0 || s.descSize > maxDescriptor || s.descOff < 0 || s.descOff+s.descSize > size {
		return nil, fmt.Errorf("%s: header: %w: descriptor at %#x, %d bytes", name, ErrCorrupt, s.descOff, s.descSize)
	}
	grains := (s.capacity + s.grain - 1) / s.grain
	nGD := (grains + s.gtes - 1) / s.gtes
	if gdOff == gdAtEnd || int64(gdOff) < 0 || int64(gdOff)*sector+nGD*4 > size || nGD*4 > size {
		return nil, fmt.Errorf("%s: header: %w: grain directory at sector %d", name, ErrCorrupt, gdOff)
	}
	raw := make([]byte, nGD*4)
	if n, err := r.ReadAt(raw, int64(gdOff)*sector); n < len(raw) {
		return nil, fmt.Errorf("%s: grain directory at %#x: %w", name, int64(gdOff)*sector, errors.Join(io.ErrUnexpectedEOF, err))
	}
	s.gd = make([]uint32, nGD)
	for i := range s.gd {
		s.gd[i] = le.Uint32(raw[4*i:])
	}
	return s, nil
}

func (s *sparse) descriptor() ([]byte, error) {
	b := make([]byte, s.descSize)
	if n, err := s.r.ReadAt(b, s.descOff); int64(n) < s.descSize {
		return nil, fmt.Errorf("%s: descriptor at %#x: %w", s.name, s.descOff, errors.Join(io.ErrUnexpectedEOF, err))
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b, nil
}

// gte returns the grain table entry of grain g: 0 unallocated, 1 zero
// grain, else the grain's sector in the file.
func (s *sparse) gte(g int64) (uint32, error) {
	t := g / s.gtes
	if t >= int64(len(s.gd)) {
		return 0, fmt.Errorf("%s: grain %d: %w: past the grain directory", s.name, g, ErrCorrupt)
	}
	gt := s.gd[t]
	if gt == 0 {
		return 0, nil
	}
	s.mu.Lock()
	tab := s.gtCache[gt]
	s.mu.Unlock()
	if tab == nil {
		off := int64(gt) * sector
		raw := make([]byte, s.gtes*4)
		if n, err := s.r.ReadAt(raw, off); n < len(raw) {
			return 0, fmt.Errorf("%s: grain table %d at %#x: %w", s.name, t, off, errors.Join(io.ErrUnexpectedEOF, err))
		}
		tab = make([]uint32, s.gtes)
		for i := range tab {
			tab[i] = binary.LittleEndian.Uint32(raw[4*i:])
		}
		s.mu.Lock()
		if len(s.gtCache) > 4096 {
			clear(s.gtCache)
		}
		s.gtCache[gt] = tab
		s.mu.Unlock()
	}
	return tab[g%s.gtes], nil
}

// readGrain fills p (within one grain, at byte in inside it) from grain g;
// ok false when the grain is unallocated (the parent's).
func (s *sparse) readGrain(p []byte, g, in int64) (bool, error) {
	e, err := s.gte(g)
	if err != nil {
		return false, err
	}
	switch e {
	case 0:
		return false, nil
	case 1:
		clear(p)
		return true, nil
	}
	off := int64(e) * sector
	if !s.compressed {
		if off+in+int64(len(p)) > s.fileSize {
			return false, fmt.Errorf("%s: grain %d at %#x: %w: past the end of the file", s.name, g, off, ErrCorrupt)
		}
		if n, err := s.r.ReadAt(p, off+in); n < len(p) {
			return false, fmt.Errorf("%s: grain %d at %#x: %w", s.name, g, off, errors.Join(io.ErrUnexpectedEOF, err))
		}
		return true, nil
	}
	var m [12]byte // grain marker: LBA, compressed size
	if n, _ := s.r.ReadAt(m[:], off); n < 12 {
		return false, fmt.Errorf("%s: grain %d marker at %#x: %w", s.name, g, off, io.ErrUnexpectedEOF)
	}
	csize := int64(binary.LittleEndian.Uint32(m[8:]))
	if csize <= 0 || csize > 2*s.grain+1024 || off+12+csize > s.fileSize {
		return false, fmt.Errorf("%s: grain %d at %#x: %w: compressed size %d", s.name, g, off, ErrCorrupt, csize)
	}
	zr, err := zlib.NewReader(io.NewSectionReader(s.r, off+12, csize))
	if err != nil {
		return false, fmt.Errorf("%s: grain %d at %#x: %w: %v", s.name, g, off, ErrCorrupt, err)
	}
	buf := make([]byte, s.grain)
	n, err := io.ReadFull(zr, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return false, fmt.Errorf("%s: grain %d at %#x: %w: %v", s.name, g, off, ErrCorrupt, err)
	}
	clear(buf[n:]) // the last grain may be short
	copy(p, buf[in:])
	return true, nil
}

// ReadAt reads virtual-disk bytes; safe for concurrent use.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", d.name)
	}
	n := 0
	for n < len(p) && off < d.size {
		e := d.extentAt(off)
		in := off - e.start
		q := p[n:min(int64(len(p)), int64(n)+e.size-in)]
		k := len(q)
		switch e.kind {
		case "ZERO":
			clear(q)
		case "FLAT", "VMFS":
			if m, err := e.r.ReadAt(q, e.off+in); m < len(q) {
				return n + m, fmt.Errorf("%s: flat extent at %#x: %w", d.name, e.off+in+int64(m), errors.Join(io.ErrUnexpectedEOF, err))
			}
		case "SPARSE":
			g, gin := in/e.sp.grain, in%e.sp.grain
			k = int(min(int64(len(q)), e.sp.grain-gin))
			ok, err := e.sp.readGrain(q[:k], g, gin)
			if err != nil {
				return n, err
			}
			if !ok {
				if d.parent == nil {
					clear(q[:k])
				} else if m, err := d.parent.ReadAt(q[:k], off); m < k {
					if err == io.EOF {
						clear(q[m:k])
					} else {
						return n + m, err
					}
				}
			}
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *Disk) extentAt(off int64) *extent {
	for i := range d.extents {
		if e := &d.extents[i]; off < e.start+e.size {
			return e
		}
	}
	return &d.extents[len(d.extents)-1]
}

// Size is the virtual disk's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Format is "vmdk-" and the descriptor's createType.
func (d *Disk) Format() string { return d.format }

// Files lists the extent and parent files opened.
func (d *Disk) Files() []string { return d.files }

// Problems lists findings that did not stop the open.
func (d *Disk) Problems() []string { return d.problems }

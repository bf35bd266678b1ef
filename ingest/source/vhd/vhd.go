// Package vhd reads Microsoft Virtual Hard Disk (VHD, "vpc") images
// read-only: fixed disks (the data, then a 512-byte footer) and dynamic
// disks (a footer copy, a dynamic header, a block allocation table and
// blocks each led by a sector bitmap). Differencing disks (type 4) are
// recognised and refused with an error naming the parent they need: their
// reads would depend on a parent evidx does not open yet.
//
// All integers are big-endian. The footer checksum is the one's complement
// of the byte sum of the footer with its checksum field zeroed.
package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
)

// OpenFunc opens, read-only, another file the container names.
type OpenFunc func(path string) (io.ReaderAt, int64, error)

// Errors, wrapped with the file name and offset.
var (
	ErrFormat      = errors.New("vhd: not a VHD image")
	ErrCorrupt     = errors.New("vhd: corrupt")
	ErrUnsupported = errors.New("vhd: unsupported")
)

const (
	footerSize  = 512
	headerSize  = 1024
	typeFixed   = 2
	typeDynamic = 3
	typeDiff    = 4
	unallocated = 0xffffffff
	maxSize     = 2040 << 30 // 2040 GiB: the format's limit
	maxBlock    = 1 << 28
)

var cookie = []byte("conectix")

// Disk is an opened VHD image.
type Disk struct {
	r         io.ReaderAt
	name      string
	fileSize  int64
	size      int64
	format    string
	blockSize int64
	bitmap    int64    // bytes of the sector bitmap before each block's data
	bat       []uint32 // sector offset of each block, or unallocated
	problems  []string
}

// Detect reports whether r holds a VHD footer at its end (fixed and
// dynamic disks) or a footer copy at its start (dynamic disks).
func Detect(r io.ReaderAt, size int64) bool {
	var b [8]byte
	if size >= footerSize {
		if n, _ := r.ReadAt(b[:], size-footerSize); n == 8 && bytes.Equal(b[:], cookie) {
			return true
		}
	}
	if n, _ := r.ReadAt(b[:], 0); n == 8 && bytes.Equal(b[:], cookie) {
		return true
	}
	return false
}

func checksum(b []byte, at int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= at && i < at+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

// readFooter reads and checks the footer at off; "" error text means good.
func readFooter(r io.ReaderAt, off int64) ([]byte, error) {
	f := make([]byte, footerSize)
	if n, err := r.ReadAt(f, off); n < footerSize {
		return nil, fmt.Errorf("footer at %#x: %w", off, errors.Join(io.ErrUnexpectedEOF, err))
	}
	if !bytes.Equal(f[:8], cookie) {
		return nil, fmt.Errorf("footer at %#x: %w: no \"conectix\" cookie", off, ErrFormat)
	}
	if got, want := checksum(f, 64), binary.BigEndian.Uint32(f[64:]); got != want {
		return f, fmt.Errorf("footer at %#x: %w: checksum %#x, computed %#x", off, ErrCorrupt, want, got)
	}
	return f, nil
}

// Open parses the VHD image r of size bytes named name.
func Open(r io.ReaderAt, size int64, name string, open OpenFunc) (*Disk, error) {
	d := &Disk{r: r, name: name, fileSize: size}
	if size < footerSize {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrFormat, size)
	}
	end, errEnd := readFooter(r, size-footerSize)
	start, errStart := readFooter(r, 0)
	var f []byte
	switch {
	case errEnd == nil:
		f = end
		if start != nil && errStart != nil {
			d.problems = append(d.problems, fmt.Sprintf("%s: footer copy at 0x0 is damaged (%v); the footer at the end is used", name, errStart))
		}
	case errStart == nil:
		f = start
		d.problems = append(d.problems, fmt.Sprintf("%s: footer at the end is damaged or missing (%v); the copy at 0x0 is used", name, errEnd))
	default:
		return nil, fmt.Errorf("%s: %w", name, errEnd)
	}
	d.size = int64(binary.BigEndian.Uint64(f[48:]))
	if d.size < 0 || d.size > maxSize {
		return nil, fmt.Errorf("%s: footer: %w: disk size %d", name, ErrCorrupt, d.size)
	}
	switch t := binary.BigEndian.Uint32(f[60:]); t {
	case typeFixed:
		d.format = "vhd-fixed"
		if d.size > size-footerSize {
			return nil, fmt.Errorf("%s: %w: fixed disk of %d bytes in a file of %d", name, ErrCorrupt, d.size, size)
		}
		return d, nil
	case typeDynamic, typeDiff:
		if err := d.readDynamic(int64(binary.BigEndian.Uint64(f[16:])), t == typeDiff); err != nil {
			return nil, err
		}
		return d, nil
	default:
		return nil, fmt.Errorf("%s: footer at %#x: %w: disk type %d", name, size-footerSize, ErrUnsupported, t)
	}
}

func (d *Disk) readDynamic(hoff int64, diff bool) error {
	if hoff < 0 || hoff > d.fileSize-headerSize {
		return fmt.Errorf("%s: %w: dynamic header offset %#x past the end", d.name, ErrCorrupt, hoff)
	}
	h := make([]byte, headerSize)
	if n, err := d.r.ReadAt(h, hoff); n < headerSize {
		return fmt.Errorf("%s: dynamic header at %#x: %w", d.name, hoff, errors.Join(io.ErrUnexpectedEOF, err))
	}
	if string(h[:8]) != "cxsparse" {
		return fmt.Errorf("%s: dynamic header at %#x: %w: no \"cxsparse\" cookie", d.name, hoff, ErrCorrupt)
	}
	if got, want := checksum(h, 36), binary.BigEndian.Uint32(h[36:]); got != want {
		return fmt.Errorf("%s: dynamic header at %#x: %w: checksum %#x, computed %#x", d.name, hoff, ErrCorrupt, want, got)
	}
	if diff {
		u := make([]uint16, 256)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(h[64+2*i:])
		}
		for len(u) > 0 && u[len(u)-1] == 0 {
			u = u[:len(u)-1]
		}
		parent := string(utf16.Decode(u))
		return fmt.Errorf("%s: %w: differencing disk (its parent %q is not opened by evidx yet)", d.name, ErrUnsupported, parent)
	}
	d.format = "vhd-dynamic"
	bat := int64(binary.BigEndian.Uint64(h[16:]))
	entries := int64(binary.BigEndian.Uint32(h[28:]))
	d.blockSize = int64(binary.BigEndian.Uint32(h[32:]))
	if d.blockSize < 512 || d.blockSize > maxBlock || d.blockSize&(d.blockSize-1) != 0 {
		return fmt.Errorf("%s: dynamic header at %#x: %w: block size %d", d.name, hoff, ErrCorrupt, d.blockSize)
	}
	need := (d.size + d.blockSize - 1) / d.blockSize
	if entries < need || entries*4 > d.fileSize || bat < 0 || bat+entries*4 > d.fileSize {
		return fmt.Errorf("%s: BAT at %#x: %w: %d entries for %d blocks in a file of %d bytes", d.name, bat, ErrCorrupt, entries, need, d.fileSize)
	}
	raw := make([]byte, need*4)
	if n, err := d.r.ReadAt(raw, bat); n < len(raw) {
		return fmt.Errorf("%s: BAT at %#x: %w", d.name, bat, errors.Join(io.ErrUnexpectedEOF, err))
	}
	d.bat = make([]uint32, need)
	for i := range d.bat {
		d.bat[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	d.bitmap = ((d.blockSize/512+7)/8 + 511) / 512 * 512
	return nil
}

// ReadAt reads virtual-disk bytes; unallocated blocks read as zeros. Safe
// for concurrent use.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", d.name)
	}
	n := 0
	for n < len(p) && off < d.size {
		q := p[n:min(int64(len(p)), int64(n)+d.size-off)]
		var k int
		if d.bat == nil {
			m, err := d.r.ReadAt(q, off)
			if m < len(q) {
				return n + m, fmt.Errorf("%s: data at %#x: %w", d.name, off+int64(m), errors.Join(io.ErrUnexpectedEOF, err))
			}
			k = m
		} else {
			b, in := off/d.blockSize, off%d.blockSize
			k = int(min(int64(len(q)), d.blockSize-in))
			if e := d.bat[b]; e == unallocated {
				clear(q[:k])
			} else {
				at := int64(e)*512 + d.bitmap + in
				if at+int64(k) > d.fileSize {
					return n, fmt.Errorf("%s: BAT entry %d: %w: block at %#x past the end of the file", d.name, b, ErrCorrupt, int64(e)*512)
				}
				if m, err := d.r.ReadAt(q[:k], at); m < k {
					return n + m, fmt.Errorf("%s: block %d at %#x: %w", d.name, b, at, errors.Join(io.ErrUnexpectedEOF, err))
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

// Size is the virtual disk's size in bytes (the footer's current size).
func (d *Disk) Size() int64 { return d.size }

// Format is "vhd-fixed" or "vhd-dynamic".
func (d *Disk) Format() string { return d.format }

// Files lists the other files opened: none (differencing disks are refused).
func (d *Disk) Files() []string { return nil }

// Problems lists damage that did not stop the open (one footer copy bad).
func (d *Disk) Problems() []string { return d.problems }

// Package vhd reads Microsoft Virtual Hard Disk v1 ("vpc") images
// read-only:
//
//   - fixed disks: the data, then a 512-byte footer (or the 511-byte footer
//     that writers before Virtual PC 2004 left);
//   - dynamic disks: a footer copy at offset 0, a dynamic header
//     ("cxsparse"), a block allocation table (BAT) and blocks each led by a
//     sector bitmap; sectors whose bitmap bit is 0 read as zeros, as the
//     format says;
//   - differencing disks (disk type 4): laid out as dynamic disks, but
//     unallocated blocks and sectors whose bitmap bit is 0 read from the
//     parent, any VHD (fixed, dynamic or differencing, up to 16 deep). The
//     parent is looked for by the parent locators (W2ru relative and W2ku
//     absolute UTF-16 paths, MacX file URLs, Mac alias records' file name
//     and POSIX path) and by the parent name in the dynamic header: first
//     beside the child by base name, then at the recorded path.
//
// The footer and dynamic header checksums are checked. A damaged footer
// copy at offset 0 while the end footer is good (or the reverse) is a
// problem; both bad is an error. A parent whose unique ID or size differs
// from what the child records is a problem. Not supported: the deprecated
// Wi2r/Wi2k locators, Mac aliases beyond their file name and POSIX path,
// and the saved-state flag (ignored). VHDX is the separate package vhdx.
//
// All integers are big-endian. A checksum is the one's complement of the
// byte sum of the structure with its checksum field taken as zero.
package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
)

// OpenFunc opens, read-only, another file the container names (a parent),
// given a host path.
type OpenFunc func(path string) (io.ReaderAt, int64, error)

// Errors, wrapped with the file name and offset.
var (
	ErrFormat      = errors.New("not a VHD image")
	ErrCorrupt     = errors.New("corrupt VHD")
	ErrUnsupported = errors.New("unsupported VHD")
)

const (
	footerSize  = 512
	headerSize  = 1024
	typeFixed   = 2
	typeDynamic = 3
	typeDiff    = 4
	unallocated = 0xffffffff
	maxSize     = 2040 << 30 // 2040 GiB: the format's limit
	maxBlock    = 1 << 28    // 256 MiB blocks (2 MiB is the default)
	maxDepth    = 16         // parents followed
)

// bitmapCacheBytes bounds the cached sector bitmaps of one disk (512 bytes
// a 2 MiB block: 16384 blocks, 32 GiB of disk); a variable for tests.
var bitmapCacheBytes int64 = 8 << 20

var cookie = []byte("conectix")

// Disk is an opened VHD image.
type Disk struct {
	r        io.ReaderAt
	name     string
	fileSize int64
	size     int64 // the footer's current size
	format   string
	uid      [16]byte

	// Dynamic and differencing disks.
	blockSize  int64
	bitmapSize int64    // bytes of the sector bitmap before each block's data
	bat        []uint32 // sector offset of each block, or unallocated
	batOff     int64
	parent     *Disk // differencing disks only

	files    []string
	problems []string

	mu      sync.Mutex
	bitmaps map[int64][]byte // block number -> its sector bitmap
	cached  int64            // bytes in bitmaps
}

// footer is the parsed part of a footer that evidx uses.
type footer struct {
	raw        [footerSize]byte
	off        int64
	dataOffset int64
	timestamp  uint32
	size       int64
	diskType   uint32
	uid        [16]byte
}

// Detect reports whether r holds a VHD footer at its end (512 or 511
// bytes from it) or a footer copy at its start.
func Detect(r io.ReaderAt, size int64) bool {
	var b [8]byte
	for _, off := range []int64{size - footerSize, size - footerSize + 1, 0} {
		if off < 0 || off+8 > size {
			continue
		}
		if n, _ := r.ReadAt(b[:], off); n == 8 && bytes.Equal(b[:], cookie) {
			return true
		}
	}
	return false
}

func checksum(b []byte, at int) uint32 {
	var s uint32
	for i, c := range b {
		if i < at || i >= at+4 {
			s += uint32(c)
		}
	}
	return ^s
}

// readFooter reads the n-byte footer (512, or 511 from old writers) at off.
// A footer with a bad checksum is returned with its error, for messages.
func readFooter(r io.ReaderAt, off int64, n int) (*footer, error) {
	f := &footer{off: off}
	if off < 0 {
		return nil, fmt.Errorf("footer at %#x: %w: file too short", off, ErrFormat)
	}
	if m, err := r.ReadAt(f.raw[:n], off); m < n {
		return nil, fmt.Errorf("footer at %#x: %w", off, errors.Join(io.ErrUnexpectedEOF, err))
	}
	b := f.raw[:]
	if !bytes.Equal(b[:8], cookie) {
		return nil, fmt.Errorf("footer at %#x: %w: no \"conectix\" cookie", off, ErrFormat)
	}
	f.dataOffset = int64(binary.BigEndian.Uint64(b[16:]))
	f.timestamp = binary.BigEndian.Uint32(b[24:])
	f.size = int64(binary.BigEndian.Uint64(b[48:]))
	f.diskType = binary.BigEndian.Uint32(b[60:])
	copy(f.uid[:], b[68:84])
	if got, want := checksum(b, 64), binary.BigEndian.Uint32(b[64:]); got != want {
		return f, fmt.Errorf("footer at %#x: %w: checksum %#x, computed %#x", off, ErrCorrupt, want, got)
	}
	return f, nil
}

// Open parses the VHD image r of size bytes whose host path is name. A
// differencing disk's parent is opened with open (see the package doc).
func Open(r io.ReaderAt, size int64, name string, open OpenFunc) (*Disk, error) {
	return openChain(r, size, name, open, []string{filepath.Clean(name)})
}

// openChain opens one disk of a chain; chain holds the paths of the disks
// opened so far (this one last), to stop loops.
func openChain(r io.ReaderAt, size int64, name string, open OpenFunc, chain []string) (*Disk, error) {
	d := &Disk{r: r, name: name, fileSize: size}
	if size < footerSize-1 {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrFormat, size)
	}
	f, err := d.chooseFooter()
	if err != nil {
		return nil, err
	}
	d.size, d.uid = f.size, f.uid
	if d.size < 0 || d.size > maxSize {
		return nil, fmt.Errorf("%s: footer at %#x: %w: disk size %d", name, f.off, ErrCorrupt, d.size)
	}
	if v := binary.BigEndian.Uint32(f.raw[12:]); v>>16 != 1 {
		d.problems = append(d.problems, fmt.Sprintf("%s: footer at %#x: format version %#x, not 1.x", name, f.off, v))
	}
	switch f.diskType {
	case typeFixed:
		d.format = "vhd-fixed"
		if d.size > f.off {
			return nil, fmt.Errorf("%s: footer at %#x: %w: fixed disk of %d bytes does not fit before the footer", name, f.off, ErrCorrupt, d.size)
		}
		return d, nil
	case typeDynamic, typeDiff:
		if err := d.readDynamic(f, open, chain); err != nil {
			return nil, err
		}
		return d, nil
	default:
		return nil, fmt.Errorf("%s: footer at %#x: %w: disk type %d", name, f.off, ErrUnsupported, f.diskType)
	}
}

// chooseFooter picks the footer to trust: the one at the end if good, else
// the copy at offset 0 that dynamic and differencing disks keep.
func (d *Disk) chooseFooter() (*footer, error) {
	end, errEnd := readFooter(d.r, d.fileSize-footerSize, footerSize)
	if errors.Is(errEnd, ErrFormat) {
		// Writers before Virtual PC 2004 left a 511-byte footer.
		if e, err := readFooter(d.r, d.fileSize-footerSize+1, footerSize-1); !errors.Is(err, ErrFormat) {
			end, errEnd = e, err
		}
	}
	sparse := func(f *footer) bool { return f.diskType == typeDynamic || f.diskType == typeDiff }
	if errEnd == nil && !sparse(end) {
		return end, nil // a fixed disk has no copy: offset 0 is data
	}
	start, errStart := readFooter(d.r, 0, footerSize)
	if errStart == nil && !sparse(start) {
		errStart = fmt.Errorf("footer copy at 0x0: %w: disk type %d in a copy", ErrCorrupt, start.diskType)
	}
	switch {
	case errEnd == nil && errStart == nil:
		if start.raw != end.raw {
			d.problems = append(d.problems, fmt.Sprintf("%s: the footer copy at 0x0 differs from the footer at %#x; the one at the end is used", d.name, end.off))
		}
		return end, nil
	case errEnd == nil:
		d.problems = append(d.problems, fmt.Sprintf("%s: footer copy damaged (%v); the footer at %#x is used", d.name, errStart, end.off))
		return end, nil
	case errStart == nil:
		d.problems = append(d.problems, fmt.Sprintf("%s: end footer damaged or missing (%v); the copy at 0x0 is used", d.name, errEnd))
		return start, nil
	case errors.Is(errEnd, ErrFormat) && errors.Is(errStart, ErrFormat):
		return nil, fmt.Errorf("%s: %w: no \"conectix\" footer at %#x or copy at 0x0", d.name, ErrFormat, d.fileSize-footerSize)
	default:
		return nil, fmt.Errorf("%s: %v; copy: %v", d.name, errEnd, errStart)
	}
}

func (d *Disk) readDynamic(f *footer, open OpenFunc, chain []string) error {
	hoff := f.dataOffset
	if hoff < 0 || hoff > d.fileSize-headerSize {
		return fmt.Errorf("%s: footer at %#x: %w: dynamic header offset %#x past the end of the file", d.name, f.off, ErrCorrupt, hoff)
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
	d.batOff = int64(binary.BigEndian.Uint64(h[16:]))
	entries := int64(binary.BigEndian.Uint32(h[28:]))
	d.blockSize = int64(binary.BigEndian.Uint32(h[32:]))
	if d.blockSize < 512 || d.blockSize > maxBlock || d.blockSize&(d.blockSize-1) != 0 {
		return fmt.Errorf("%s: dynamic header at %#x: %w: block size %d", d.name, hoff, ErrCorrupt, d.blockSize)
	}
	need := (d.size + d.blockSize - 1) / d.blockSize
	if entries < need {
		return fmt.Errorf("%s: dynamic header at %#x: %w: %d BAT entries for %d blocks", d.name, hoff, ErrCorrupt, entries, need)
	}
	// The BAT must lie in the file, which also bounds its allocation.
	if d.batOff < 0 || d.batOff > d.fileSize || need*4 > d.fileSize-d.batOff {
		return fmt.Errorf("%s: BAT at %#x: %w: %d entries past the end of the file (%d bytes)", d.name, d.batOff, ErrCorrupt, need, d.fileSize)
	}
	raw := make([]byte, need*4)
	if n, err := d.r.ReadAt(raw, d.batOff); n < len(raw) {
		return fmt.Errorf("%s: BAT at %#x: %w", d.name, d.batOff, errors.Join(io.ErrUnexpectedEOF, err))
	}
	d.bitmapSize = ((d.blockSize/512+7)/8 + 511) / 512 * 512
	d.bat = make([]uint32, need)
	var past []int
	for i := range d.bat {
		e := binary.BigEndian.Uint32(raw[4*i:])
		d.bat[i] = e
		if e != unallocated && int64(e)*512+d.bitmapSize+d.blockSize > d.fileSize {
			past = append(past, i)
		}
	}
	if len(past) > 0 {
		// Kept readable (a cut file still gives its first blocks); reading
		// a block past the end fails.
		d.problems = append(d.problems, fmt.Sprintf("%s: %d BAT entries (first: entry %d at %#x) point past the end of the file", d.name, len(past), past[0], d.batOff+4*int64(past[0])))
	}
	d.bitmaps = make(map[int64][]byte)
	if f.diskType == typeDynamic {
		d.format = "vhd-dynamic"
		return nil
	}
	d.format = "vhd-differencing"
	return d.openParent(h, open, chain)
}

// Size is the virtual disk's size in bytes (the footer's current size).
func (d *Disk) Size() int64 { return d.size }

// Format is "vhd-fixed", "vhd-dynamic" or "vhd-differencing".
func (d *Disk) Format() string { return d.format }

// Files lists the parent files opened, nearest first.
func (d *Disk) Files() []string { return append([]string(nil), d.files...) }

// Problems lists damage that did not stop the open (a bad footer copy, a
// parent whose unique ID differs ...), this disk's then its parents'.
func (d *Disk) Problems() []string { return append([]string(nil), d.problems...) }

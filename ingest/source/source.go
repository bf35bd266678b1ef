// Package source opens seized-media images read-only as one io.ReaderAt:
// raw (dd) images and block devices, split raw images (x.001, x.002, ...;
// x.000; x.aa, x.ab, ...) and EnCase EWF v1 images (x.E01 ... x.E99,
// x.EAA ...), and hashes them in one pass (Hash).
//
// Every file is opened with os.Open (O_RDONLY): evidence is never written.
package source

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/evidx/evidx/ingest/source/ewf"
)

// Errors returned (wrapped, with the path) by Open.
var (
	ErrEmpty           = errors.New("source: empty file")
	ErrDirectory       = errors.New("source: is a directory")
	ErrMissingSegment  = errors.New("source: missing segment")
	ErrNotFirstSegment = errors.New("source: not the first segment")
	ErrUnsupported     = errors.New("source: unsupported container")
)

// Formats reported by Image.Format.
const (
	FormatRaw   = "raw"
	FormatSplit = "split"
	FormatEWF   = "ewf"
)

// Segment is one file an image is made of.
type Segment struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// Stored holds the hashes an image container carries (EWF hash and digest
// sections), hex-encoded; empty when absent.
type Stored struct {
	MD5  string `json:"md5,omitempty"`
	SHA1 string `json:"sha1,omitempty"`
}

// VirtualDisk is a virtual disk container opened (VHD, VHDX, VMDK,
// qcow2): the disk inside as an io.ReaderAt. Format is the reader's, e.g.
// "vhd-dynamic", "vmdk-streamOptimized", "qcow2-v3".
type VirtualDisk interface {
	io.ReaderAt
	Size() int64
	Format() string
	Files() []string
	Problems() []string
}

// containerReader is one virtual-disk format: a signature test and an
// opener given a way to open the other files it names (parents, extents).
type containerReader struct {
	detect func(r io.ReaderAt, size int64) bool
	open   func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error)
}

// containerReaders are tried in order on every file Open is given.
var containerReaders []containerReader

// Image is an opened evidence image: the media data as an io.ReaderAt.
// ReadAt may be called from several goroutines at once. For EWF images a
// chunk that fails its checksum makes ReadAt return an *ewf.ChunkError
// naming the chunk's sectors.
type Image struct {
	format     string
	size       int64
	sectorSize int
	segs       []Segment
	files      []*os.File
	r          io.ReaderAt
	stored     Stored
	header     map[string]string
	acqErrors  []ewf.SectorRange
	ewf        *ewf.Reader
	problems   []string
}

// Problems lists what Open recognised but could not read or found doubtful
// (a container format evidx does not read, read as raw; a virtual disk's
// damaged header copy), one line each naming the file and offset.
func (im *Image) Problems() []string { return slices.Clone(im.problems) }

// ReadAt reads media bytes at off (io.ReaderAt).
func (im *Image) ReadAt(p []byte, off int64) (int, error) { return im.r.ReadAt(p, off) }

// Size is the media size in bytes.
func (im *Image) Size() int64 { return im.size }

// SectorSize is the media's bytes per sector (512 unless the container says).
func (im *Image) SectorSize() int { return im.sectorSize }

// Format is "raw", "split", "ewf" or a virtual disk's format
// ("vhd-dynamic", "vhdx-fixed", "vmdk-streamOptimized", "qcow2-v3", ...).
func (im *Image) Format() string { return im.format }

// Segments lists the files of the image in order.
func (im *Image) Segments() []Segment { return append([]Segment(nil), im.segs...) }

// Stored returns the hashes the container carries (EWF only).
func (im *Image) Stored() Stored { return im.stored }

// Header returns the EWF case text (case_number, evidence_number, examiner,
// description, notes, acquired_date, system_date, acquiry_os,
// acquiry_software_version, model, serial_number, ...). Nil for raw images.
func (im *Image) Header() map[string]string {
	if im.header == nil {
		return nil
	}
	out := make(map[string]string, len(im.header))
	for k, v := range im.header {
		out[k] = v
	}
	return out
}

// AcquisitionErrors lists sector ranges the imager could not read (EWF
// error2 section); the imager stored zeros there.
func (im *Image) AcquisitionErrors() []ewf.SectorRange { return im.acqErrors }

// EWF returns the EWF reader of an ewf image, nil otherwise.
func (im *Image) EWF() *ewf.Reader { return im.ewf }

// Close closes every segment file.
func (im *Image) Close() error {
	var errs []error
	for _, f := range im.files {
		errs = append(errs, f.Close())
	}
	im.files = nil
	return errors.Join(errs...)
}

// openFile opens one evidence file read-only and returns its size; block
// devices report size 0 from Stat, so their size comes from seeking to the end.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path) // O_RDONLY: evidence is never written
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, ErrDirectory)
	}
	size := st.Size()
	if st.Mode()&os.ModeDevice != 0 {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("%s: size of device: %w", path, err)
		}
	} else if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file or device (%s)", path, st.Mode().Type())
	}
	if size == 0 {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	return f, size, nil
}

// Container signatures at offset 0: EWF v1 media (E01, and the original
// EWF/SMART), EWF v1 logical files (L01) and EWF v2 (Ex01, Lx01).
var (
	ewfSignature  = []byte("EVF\x09\x0d\x0a\xff\x00")
	lvfSignature  = []byte("LVF\x09\x0d\x0a\xff\x00")
	ewf2Signature = []byte("EVF2\r\n\x81")
	lef2Signature = []byte("LEF2\r\n\x81")
)

// Open opens the image at path: an EWF image when the file starts with the
// EWF signature (path is its first segment, .E01), a split raw image when
// the name is a first segment (.001, .000, .aa) and a second one exists,
// and a raw image otherwise.
func Open(path string) (*Image, error) {
	f, size, err := openFile(path)
	if err != nil {
		return nil, err
	}
	var magic [8]byte
	n, _ := f.ReadAt(magic[:], 0)
	switch {
	case n == len(magic) && bytes.Equal(magic[:], ewfSignature):
		return openEWF(path, f, size)
	case n == len(magic) && bytes.Equal(magic[:], lvfSignature):
		f.Close()
		return nil, fmt.Errorf("%s: %w: EWF logical evidence (L01) holds files, not media", path, ErrUnsupported)
	case n >= len(ewf2Signature) && (bytes.HasPrefix(magic[:], ewf2Signature) || bytes.HasPrefix(magic[:], lef2Signature)):
		f.Close()
		return nil, fmt.Errorf("%s: %w: EWF version 2 (Ex01/Lx01)", path, ErrUnsupported)
	}
	for _, cr := range containerReaders {
		if cr.detect(f, size) {
			return openContainer(path, f, size, cr)
		}
	}
	paths, err := findSplit(path, os.Stat)
	if err != nil {
		f.Close()
		return nil, err
	}
	im := &Image{format: FormatRaw, sectorSize: 512, files: []*os.File{f},
		segs: []Segment{{Path: path, Size: size}}}
	if len(paths) == 1 {
		im.size, im.r = size, f
		if format, off, ok := Unread(f, size); ok {
			im.problems = append(im.problems, fmt.Sprintf("%s: %s container recognised (signature at %#x), not read by evidx: hashed and searched as raw bytes, no file system inside is listed", path, format, off))
		}
		return im, nil
	}
	im.format = FormatSplit
	for _, p := range paths[1:] {
		g, gsize, err := openFile(p)
		if err != nil {
			im.Close()
			return nil, err
		}
		im.files = append(im.files, g)
		im.segs = append(im.segs, Segment{Path: p, Size: gsize})
	}
	mr := newMultiReaderAt(im.files, im.segs)
	im.size, im.r = mr.size, mr
	return im, nil
}

// openContainer opens a virtual disk: the media is the disk inside, the
// segments are the container file and every file it named (extents,
// parents), each opened read-only and closed with the image.
func openContainer(path string, f *os.File, size int64, cr containerReader) (*Image, error) {
	im := &Image{sectorSize: 512, files: []*os.File{f}, segs: []Segment{{Path: path, Size: size}}}
	open := func(p string) (io.ReaderAt, int64, error) {
		g, gsize, err := openFile(p)
		if err != nil {
			return nil, 0, err
		}
		im.files = append(im.files, g)
		im.segs = append(im.segs, Segment{Path: p, Size: gsize})
		return g, gsize, nil
	}
	d, err := cr.open(f, size, path, open)
	if err != nil {
		im.Close()
		return nil, err
	}
	im.format, im.size, im.r = d.Format(), d.Size(), d
	im.problems = append(im.problems, d.Problems()...)
	return im, nil
}

// OpenInner opens the virtual disk held in r, a file inside evidence
// named name; nil, nil when r is no container evidx reads. The files a
// container may name (parents, extents) are not looked for inside the
// evidence, so such a container fails with an error naming the file.
func OpenInner(r io.ReaderAt, size int64, name string) (VirtualDisk, error) {
	if d, err := openInnerEWF(r, size, name); d != nil || err != nil {
		return d, err
	}
	for _, cr := range containerReaders {
		if cr.detect(r, size) {
			return cr.open(r, size, name, nil)
		}
	}
	return nil, nil
}

// ewfSegmentName returns the name of EWF segment n (1-based) given the first
// segment's path: x.E01 ... x.E99, then x.EAA ... x.EZZ, x.FAA ... x.ZZZ.
// The case of the first segment's extension is kept. "" when n is out of range.
func ewfSegmentName(first string, n int) string {
	ext := filepath.Ext(first)
	if len(ext) != 4 {
		return ""
	}
	stem := first[:len(first)-4]
	lead := ext[1]
	lower := lead >= 'a' && lead <= 'z'
	var s string
	if n < 100 {
		s = fmt.Sprintf("%c%02d", lead, n)
	} else {
		k := n - 100
		if k >= 26*26*26 {
			return ""
		}
		up := byte(strings.ToUpper(string(lead))[0])
		c0 := up + byte(k/676)
		if c0 > 'Z' {
			return ""
		}
		s = string([]byte{c0, byte('A' + k/26%26), byte('A' + k%26)})
		if lower {
			s = strings.ToLower(s)
		}
	}
	return stem + "." + s
}

// openEWF parses the first segment f and every following one.
func openEWF(path string, f *os.File, size int64) (*Image, error) {
	im := &Image{format: FormatEWF, files: []*os.File{f}, segs: []Segment{{Path: path, Size: size}}}
	fail := func(err error) (*Image, error) {
		im.Close()
		return nil, err
	}
	seg, err := ewf.NewSegment(f, size)
	if err != nil {
		return fail(withPath(err, path))
	}
	if seg.Number != 1 {
		return fail(fmt.Errorf("%s: %w: it is EWF segment %d; open the .E01", path, ErrNotFirstSegment, seg.Number))
	}
	segs := []*ewf.Segment{seg}
	names := []string{path}
	for n := 2; !seg.Last; n++ {
		next := ewfSegmentName(path, n)
		if next == "" {
			return fail(fmt.Errorf("%s: %w: segment %d has no file name in the .E01 scheme", path, ErrMissingSegment, n))
		}
		g, gsize, err := openFile(next)
		if errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("%s: %w: %s (segment %d ends with \"next\")", path, ErrMissingSegment, next, n-1))
		}
		if err != nil {
			return fail(err)
		}
		im.files = append(im.files, g)
		im.segs = append(im.segs, Segment{Path: next, Size: gsize})
		if seg, err = ewf.NewSegment(g, gsize); err != nil {
			return fail(withPath(err, next))
		}
		segs = append(segs, seg)
		names = append(names, next)
	}
	r, err := ewf.NewReader(segs, names)
	if err != nil {
		return fail(err)
	}
	im.ewf, im.r, im.size = r, r, r.Size()
	im.problems = append(im.problems, r.Problems()...)
	im.sectorSize = int(r.Volume().BytesPerSector)
	for _, s := range segs {
		if s.MD5 != nil {
			im.stored.MD5 = hex.EncodeToString(s.MD5)
		}
		if s.SHA1 != nil {
			im.stored.SHA1 = hex.EncodeToString(s.SHA1)
		}
		im.acqErrors = append(im.acqErrors, s.AcqErrors...)
	}
	if segs[0].HeaderText != "" {
		im.header = ewf.ParseHeader(segs[0].HeaderText)
	}
	return im, nil
}

// withPath fills in the segment path of an *ewf.ParseError.
func withPath(err error, path string) error {
	var pe *ewf.ParseError
	if errors.As(err, &pe) && pe.Path == "" {
		pe.Path = path
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// multiReaderAt joins segment files end to end.
type multiReaderAt struct {
	files  []*os.File
	starts []int64 // media offset of each file
	size   int64
}

func newMultiReaderAt(files []*os.File, segs []Segment) *multiReaderAt {
	m := &multiReaderAt{files: files, starts: make([]int64, len(files))}
	for i, s := range segs {
		m.starts[i] = m.size
		m.size += s.Size
	}
	return m
}

// ReadAt reads across segment boundaries; safe for concurrent use (pread).
func (m *multiReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("source: negative offset %d", off)
	}
	n := 0
	for n < len(p) && off < m.size {
		i := sort.Search(len(m.starts), func(k int) bool { return m.starts[k] > off }) - 1
		end := m.size
		if i+1 < len(m.starts) {
			end = m.starts[i+1]
		}
		want := int(min(int64(len(p)-n), end-off))
		k, err := m.files[i].ReadAt(p[n:n+want], off-m.starts[i])
		n += k
		off += int64(k)
		if k < want {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%s: %w (file shrank while open?)", m.files[i].Name(), io.ErrUnexpectedEOF)
			}
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// innerEWF is an E01 found inside evidence, read as a virtual disk.
type innerEWF struct{ *ewf.Reader }

func (innerEWF) Format() string  { return FormatEWF }
func (innerEWF) Files() []string { return nil }

// openInnerEWF opens a complete one-segment E01 held in a file (an image
// on a seized drive); nil, nil when r is no EWF segment. A segment of a
// larger set is an error: the other segments are not looked for inside
// the evidence.
func openInnerEWF(r io.ReaderAt, size int64, name string) (VirtualDisk, error) {
	sig := make([]byte, 8)
	if n, _ := r.ReadAt(sig, 0); n < len(sig) || string(sig) != "EVF\x09\x0d\x0a\xff\x00" {
		return nil, nil
	}
	seg, err := ewf.NewSegment(r, size)
	if err != nil {
		return nil, withPath(err, name)
	}
	if seg.Number != 1 || !seg.Last {
		return nil, fmt.Errorf("%s: %w: EWF segment %d of a set; the other segments are not looked for inside evidence", name, ErrMissingSegment, seg.Number)
	}
	rd, err := ewf.NewReader([]*ewf.Segment{seg}, []string{name})
	if err != nil {
		return nil, withPath(err, name)
	}
	return innerEWF{rd}, nil
}

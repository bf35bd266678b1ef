// Package vhdx reads Microsoft VHDX (Hyper-V, Windows Backup) images,
// read-only: fixed, dynamic and differencing subformats, with headers,
// region table and metadata checked by CRC-32C, the BAT with sector-bitmap
// entries, and parents located by the parent locator (relative_path beside
// the child, then absolute_win32_path). Not supported: replaying the log (a
// non-empty log is recorded as a problem; the file is never written).
package vhdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"strings"
)

// OpenFunc opens, read-only, another file the container names (a parent),
// given a host path.
type OpenFunc func(path string) (io.ReaderAt, int64, error)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	maxDepth    = 16
	maxBATBytes = 1 << 30
	mib         = 1 << 20
)

// GUIDs in on-disk byte order (first three fields little-endian).
func guid(s string) [16]byte {
	var g [16]byte
	h := strings.ReplaceAll(s, "-", "")
	var b [16]byte
	for i := 0; i < 16; i++ {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &b[i])
	}
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

var (
	guidBAT        = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata   = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidDiskSize   = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidLogical    = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysical   = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
	guidParentLoc  = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
	guidDiskID     = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
)

// BAT entry states.
const (
	stNotPresent = 0
	stUndefined  = 1
	stZero       = 2
	stUnmapped   = 3
	stFull       = 6
	stPartial    = 7
)

// Disk is an opened VHDX image; ReadAt is safe for concurrent use (it
// keeps no mutable state).
type Disk struct {
	r          io.ReaderAt
	fsize      int64
	name       string
	size       int64
	blockSize  int64
	sector     int64
	chunk      int64 // payload blocks per sector bitmap block
	bat        []uint64
	parent     *Disk
	format     string
	files      []string
	problems   []string
	dataGUID   [16]byte
	leaveAlloc bool
}

// Detect reports whether r starts with the VHDX file type identifier.
func Detect(r io.ReaderAt, size int64) bool {
	if size < 0x40000 {
		return false
	}
	var b [8]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	return string(b[:]) == "vhdxfile"
}

// Open parses the VHDX file r (size bytes) whose host path is name.
func Open(r io.ReaderAt, size int64, name string, open OpenFunc) (*Disk, error) {
	return openDepth(r, size, name, open, []string{name})
}

func openDepth(r io.ReaderAt, size int64, name string, open OpenFunc, chain []string) (*Disk, error) {
	d := &Disk{r: r, fsize: size, name: name}
	base := filepath.Base(name)
	if !Detect(r, size) {
		return nil, fmt.Errorf("%s: at 0x0: no vhdxfile identifier (or file shorter than 256 KiB)", base)
	}
	// Headers.
	var best []byte
	var bestSeq uint64
	bad := 0
	for _, off := range []int64{0x10000, 0x20000} {
		h := make([]byte, 4096)
		if _, err := r.ReadAt(h, off); err != nil {
			return nil, fmt.Errorf("%s: header at %#x: %w", base, off, err)
		}
		if string(h[:4]) != "head" || !crcOK(h, 4) {
			bad++
			d.problems = append(d.problems, fmt.Sprintf("%s: header at %#x: bad signature or CRC-32C", base, off))
			continue
		}
		seq := binary.LittleEndian.Uint64(h[8:])
		if best == nil || seq > bestSeq {
			best, bestSeq = h, seq
		}
	}
	if bad == 2 {
		return nil, fmt.Errorf("%s: headers at 0x10000 and 0x20000 both bad (signature or CRC-32C)", base)
	}
	copy(d.dataGUID[:], best[32:48])
	if !bytes.Equal(best[48:64], make([]byte, 16)) {
		d.problems = append(d.problems, fmt.Sprintf("%s: header LogGuid is set: the log was not replayed (reads may differ from what Hyper-V shows)", base))
	}
	if v := binary.LittleEndian.Uint16(best[66:]); v != 1 {
		return nil, fmt.Errorf("%s: header: version %d, want 1", base, v)
	}
	// Region table (first copy, then the second).
	var batOff, batLen, metaOff, metaLen int64
	var rerr error
	for i, off := range []int64{0x30000, 0x40000} {
		batOff, batLen, metaOff, metaLen, rerr = readRegions(r, off, base)
		if rerr == nil {
			break
		}
		if i == 0 {
			d.problems = append(d.problems, rerr.Error())
		}
	}
	if rerr != nil {
		return nil, rerr
	}
	if batOff == 0 || metaOff == 0 {
		return nil, fmt.Errorf("%s: region table at 0x30000: BAT or metadata region missing", base)
	}
	for _, rg := range [][3]int64{{batOff, batLen, 0}, {metaOff, metaLen, 1}} {
		if rg[0]+rg[1] > size || rg[1] <= 0 {
			return nil, fmt.Errorf("%s: region at %#x length %#x past end of file (%#x)", base, rg[0], rg[1], size)
		}
	}
	hasParent, loc, err := d.readMetadata(metaOff, metaLen, base)
	if err != nil {
		return nil, err
	}
	// BAT.
	nData := (d.size + d.blockSize - 1) / d.blockSize
	var nBAT int64
	if hasParent {
		nBAT = ((nData + d.chunk - 1) / d.chunk) * (d.chunk + 1)
	} else {
		nBAT = nData + (nData-1)/d.chunk
	}
	if nBAT*8 > batLen || nBAT*8 > maxBATBytes {
		return nil, fmt.Errorf("%s: BAT at %#x: %d entries need %d bytes, region has %d", base, batOff, nBAT, nBAT*8, batLen)
	}
	raw := make([]byte, nBAT*8)
	if _, err := r.ReadAt(raw, batOff); err != nil {
		return nil, fmt.Errorf("%s: BAT at %#x: %w", base, batOff, err)
	}
	d.bat = make([]uint64, nBAT)
	for i := range d.bat {
		e := binary.LittleEndian.Uint64(raw[8*i:])
		d.bat[i] = e
		st := e & 7
		fo := int64(e>>20) * mib
		isBitmap := int64(i)%(d.chunk+1) == d.chunk
		n := d.blockSize
		if isBitmap {
			n = mib
		}
		if st == stFull || st == stPartial {
			if st == stPartial && (!hasParent || isBitmap) {
				return nil, fmt.Errorf("%s: BAT entry %d at %#x: PARTIALLY_PRESENT without a parent", base, i, batOff+int64(8*i))
			}
			if fo < 3*mib/2 || fo+n > size {
				return nil, fmt.Errorf("%s: BAT entry %d at %#x: block offset %#x past end of file (%#x)", base, i, batOff+int64(8*i), fo, size)
			}
		} else if st != stNotPresent && (isBitmap || st > stUnmapped) {
			return nil, fmt.Errorf("%s: BAT entry %d at %#x: invalid state %d", base, i, batOff+int64(8*i), st)
		}
	}
	switch {
	case hasParent:
		d.format = "vhdx-differencing"
		if err := d.openParent(loc, open, chain); err != nil {
			return nil, err
		}
	case d.leaveAlloc:
		d.format = "vhdx-fixed"
	default:
		d.format = "vhdx-dynamic"
	}
	return d, nil
}

func crcOK(b []byte, at int) bool {
	want := binary.LittleEndian.Uint32(b[at:])
	c := make([]byte, len(b))
	copy(c, b)
	binary.LittleEndian.PutUint32(c[at:], 0)
	return crc32.Checksum(c, castagnoli) == want
}

func readRegions(r io.ReaderAt, off int64, base string) (batOff, batLen, metaOff, metaLen int64, err error) {
	b := make([]byte, 0x10000)
	if _, err = r.ReadAt(b, off); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("%s: region table at %#x: %w", base, off, err)
	}
	if string(b[:4]) != "regi" || !crcOK(b, 4) {
		return 0, 0, 0, 0, fmt.Errorf("%s: region table at %#x: bad signature or CRC-32C", base, off)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n > 2047 {
		return 0, 0, 0, 0, fmt.Errorf("%s: region table at %#x: %d entries, at most 2047", base, off, n)
	}
	for i := 0; i < int(n); i++ {
		e := b[16+32*i:]
		var g [16]byte
		copy(g[:], e[:16])
		fo := int64(binary.LittleEndian.Uint64(e[16:]))
		ln := int64(binary.LittleEndian.Uint32(e[24:]))
		req := binary.LittleEndian.Uint32(e[28:])&1 != 0
		switch g {
		case guidBAT:
			batOff, batLen = fo, ln
		case guidMetadata:
			metaOff, metaLen = fo, ln
		default:
			if req {
				return 0, 0, 0, 0, fmt.Errorf("%s: region table at %#x: entry %d: unknown required region", base, off, i)
			}
		}
	}
	return batOff, batLen, metaOff, metaLen, nil
}

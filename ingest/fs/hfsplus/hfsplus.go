// Package hfsplus reads HFS+ ("H+", version 4) and HFSX ("HX", version 5)
// volumes read-only and forensically, bare or embedded in an HFS wrapper
// ("BD" master directory block naming an embedded HFS+ volume): the
// catalog B-tree (its leaf chain, folder, file and thread records), fork
// data with the extents-overflow B-tree for forks of more than eight
// extents, hard links (resolved to their indirect node file in
// "\x00\x00\x00\x00HFS+ Private Data"), symbolic links (content is the
// target path), resource forks (listed as "path/..namedfork/rsrc", as
// macOS names them; fls does not list them, icat INODE-4353 reads them),
// decmpfs-compressed files (com.apple.decmpfs in the attributes B-tree,
// decoded through package ingest/fs/decmpfs) and the allocation file as
// the map of free space.
//
// The four times of a file are seconds since 1904-01-01 GMT (UTC); the
// volume header's createDate alone is local time, and this package does
// not use it. Names are the catalog's UTF-16 as stored (HFS+ stores them
// decomposed, NFD; they are not recomposed, as The Sleuth Kit does not
// either); a '/' in a stored name is the ':' of the POSIX name and is
// shown as ':', as macOS and TSK show it. The special files are listed as
// TSK lists them: /$ExtentsFile (CNID 3), /$CatalogFile (4),
// /$BadBlockFile (5), /$AllocationFile (6), /$StartupFile (7, when it has
// blocks) and /$AttributesFile (8, when present).
//
// The volume is found by the caller: bare, in a GPT partition, or (for
// the ISO 9660 / HFS+ hybrids xorriso -hfsplus writes) at the Apple_HFS
// entry of the Apple partition map, which package fs does not read (such
// an image is opened as ISO 9660 there).
//
// A compressed file's resource fork holds its compressed content and is
// not listed; other extended attributes are not listed either (fls lists
// neither).
//
// Not supported: plain HFS volumes without an embedded HFS+ volume (the
// older "BD" format itself), replaying the journal (the catalog is read as
// it is on disk), and deleted files: HFS+ removes catalog records when a
// file is deleted, so nothing is listed as deleted and the free space is
// left to the carver. Every on-disk count, size and block number is checked
// against the volume before it is used; damage is a Problem naming the
// byte offset, and the walk goes on.
package hfsplus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/parse"
)

// Sentinel errors; ParseError wraps them with an offset.
var (
	ErrNotHFSPlus = errors.New("hfsplus: not an HFS+/HFSX volume")
	ErrCorrupt    = errors.New("hfsplus: corrupt structure")
)

// ParseError says which HFS+ structure at which volume offset was damaged.
type ParseError = parse.Error

// Volume header (TN1150), at byte 1024 of the volume.
const (
	vhOff   = 1024
	vhLen   = 512
	sigPlus = 0x482b // "H+"
	sigX    = 0x4858 // "HX"
	sigHFS  = 0x4244 // "BD": HFS master directory block, maybe a wrapper

	vhSignature   = 0
	vhVersion     = 2
	vhAttributes  = 4
	vhJournalInfo = 12
	vhBlockSize   = 40
	vhTotalBlocks = 44
	vhAllocFork   = 112
	vhExtFork     = 192
	vhCatFork     = 272
	vhAttrFork    = 352
	vhStartFork   = 432

	attrUnmounted = 1 << 8  // kHFSVolumeUnmountedBit
	attrJournaled = 1 << 13 // kHFSVolumeJournaledBit

	// HFS master directory block fields for the embedded volume.
	mdbAlBlkSiz    = 0x14
	mdbAlBlSt      = 0x1c
	mdbEmbedSig    = 0x7c
	mdbEmbedExtent = 0x7e

	hfsEpoch = 2082844800 // seconds from 1904-01-01 to 1970-01-01
)

// Special CNIDs.
const (
	cnidRootParent = 1
	cnidRoot       = 2
	cnidExtents    = 3
	cnidCatalog    = 4
	cnidBadBlocks  = 5
	cnidAlloc      = 6
	cnidStartup    = 7
	cnidAttributes = 8
)

// Bounds on what on-disk values may make this package allocate or loop over.
const (
	maxProblems = 10000
	maxDepth    = 512     // folder nesting
	maxExtents  = 1 << 20 // extents of one fork
)

// extent is a run of allocation blocks.
type extent struct{ start, count uint32 }

// fork is an HFSPlusForkData: logical size, blocks, the first 8 extents.
type fork struct {
	size   uint64
	blocks uint32
	ext    [8]extent
}

func parseFork(b []byte) fork {
	var f fork
	f.size = be64(b, 0)
	f.blocks = be32(b, 12)
	for i := range f.ext {
		f.ext[i] = extent{be32(b, 16+8*i), be32(b, 20+8*i)}
	}
	return f
}

// ovKey names the forks the extents-overflow file extends.
type ovKey struct {
	cnid     uint32
	forkType uint8 // 0 data, 0xff resource
}

// ovRec is one extents-overflow record: 8 more extents from file block start.
type ovRec struct {
	start uint32
	ext   [8]extent
	off   int64 // volume offset of the record
}

// FS is an open HFS+ or HFSX volume.
type FS struct {
	r           io.ReaderAt
	size        int64
	base        int64 // offset of the HFS+ volume header's volume in r (HFS wrapper)
	typ         string
	blockSize   int64
	totalBlocks uint32
	volBlocks   uint32 // blocks the volume really has: extents must lie in them
	vh          []byte

	alloc, extents, catalog, attributes, startup fork

	overflow map[ovKey][]ovRec
	cat      *catalog
	decmpfs  map[uint32]attr // com.apple.decmpfs by CNID

	mu       sync.Mutex
	problems []string
	seen     map[string]bool // problems recorded, so that each is recorded once
}

// Open opens the HFS+ or HFSX volume on r, a volume of size bytes. It
// reads the volume header, the extents-overflow, catalog and attributes
// B-trees; damage in them becomes Problems, an unreadable header an error.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) { return OpenFS(r, size) }

// OpenFS is Open returning the concrete type.
func OpenFS(r io.ReaderAt, size int64) (*FS, error) {
	h := &FS{r: r, size: size}
	vh := make([]byte, vhLen)
	if err := h.readAt(vh, vhOff, "volume header"); err != nil {
		return nil, err
	}
	if be16(vh, vhSignature) == sigHFS {
		if err := h.unwrap(vh); err != nil {
			return nil, err
		}
		if err := h.readAt(vh, h.base+vhOff, "embedded volume header"); err != nil {
			return nil, err
		}
	}
	sig, ver := be16(vh, vhSignature), be16(vh, vhVersion)
	switch {
	case sig == sigPlus && ver == 4:
		h.typ = "hfsplus"
	case sig == sigX && ver == 5:
		h.typ = "hfsx"
	default:
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("volume header signature %#04x version %d", sig, ver), Offset: h.base + vhOff, Err: ErrNotHFSPlus}
	}
	h.vh = vh
	h.blockSize = int64(be32(vh, vhBlockSize))
	h.totalBlocks = be32(vh, vhTotalBlocks)
	if h.blockSize < 512 || h.blockSize > 1<<20 || h.blockSize&(h.blockSize-1) != 0 {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("volume header block size %d", h.blockSize), Offset: h.base + vhOff + vhBlockSize, Err: ErrCorrupt}
	}
	if h.totalBlocks == 0 {
		return nil, &ParseError{Format: "hfsplus", Op: "volume header total blocks 0", Offset: h.base + vhOff + vhTotalBlocks, Err: ErrCorrupt}
	}
	h.volBlocks = h.totalBlocks
	if need := h.base + int64(h.totalBlocks)*h.blockSize; need > size {
		h.volBlocks = uint32(max(0, size-h.base) / h.blockSize)
		h.problem("volume header at %#x: %v: volume of %d bytes on %d bytes; blocks past the end read as errors", h.base+vhOff, ErrCorrupt, need-h.base, size-h.base)
	}
	if a := be32(vh, vhAttributes); a&attrJournaled != 0 && a&attrUnmounted == 0 {
		h.problem("volume header at %#x: journaled volume not cleanly unmounted; the journal (info block %d) is not replayed, the catalog is read as on disk", h.base+vhOff, be32(vh, vhJournalInfo))
	}
	h.alloc = parseFork(vh[vhAllocFork:])
	h.extents = parseFork(vh[vhExtFork:])
	h.catalog = parseFork(vh[vhCatFork:])
	h.attributes = parseFork(vh[vhAttrFork:])
	h.startup = parseFork(vh[vhStartFork:])
	h.problem("HFS+ keeps no deleted entries; free space is left to the carver")

	h.overflow = map[ovKey][]ovRec{}
	if h.extents.size > 0 {
		if t, err := h.openTree(cnidExtents, h.extents, "extents overflow"); err != nil {
			h.problem("%v", err)
		} else {
			h.readOverflow(t)
		}
	}
	t, err := h.openTree(cnidCatalog, h.catalog, "catalog")
	if err != nil {
		return nil, err
	}
	h.cat = h.readCatalog(t)
	h.decmpfs = map[uint32]attr{}
	if h.attributes.size > 0 {
		if t, err := h.openTree(cnidAttributes, h.attributes, "attributes"); err != nil {
			h.problem("%v", err)
		} else {
			h.readAttributes(t)
		}
	}
	return h, nil
}

// unwrap finds the HFS+ volume embedded in an HFS wrapper's MDB.
func (h *FS) unwrap(mdb []byte) error {
	if be16(mdb, mdbEmbedSig) != sigPlus {
		return &ParseError{Format: "hfsplus", Op: fmt.Sprintf("HFS master directory block, embedded signature %#04x: plain HFS not supported", be16(mdb, mdbEmbedSig)), Offset: vhOff, Err: ErrNotHFSPlus}
	}
	bs := int64(be32(mdb, mdbAlBlkSiz))
	if bs < 512 || bs%512 != 0 || bs > 1<<24 {
		return &ParseError{Format: "hfsplus", Op: fmt.Sprintf("HFS wrapper allocation block size %d", bs), Offset: vhOff + mdbAlBlkSiz, Err: ErrCorrupt}
	}
	h.base = int64(be16(mdb, mdbAlBlSt))*512 + int64(be16(mdb, mdbEmbedExtent))*bs
	if h.base+vhOff+vhLen > h.size {
		return &ParseError{Format: "hfsplus", Op: fmt.Sprintf("HFS wrapper embedded volume at %#x", h.base), Offset: vhOff + mdbEmbedExtent, Err: ErrCorrupt}
	}
	return nil
}

// Type returns "hfsplus" or "hfsx".
func (h *FS) Type() string { return h.typ }

// Problems lists damage found so far, each naming its volume offset.
func (h *FS) Problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.problems...)
}

// problem records damage once (Walk may run more than once).
func (h *FS) problem(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen[s] {
		return
	}
	if h.seen == nil {
		h.seen = map[string]bool{}
	}
	h.seen[s] = true
	switch {
	case len(h.problems) < maxProblems:
		h.problems = append(h.problems, s)
	case len(h.problems) == maxProblems:
		h.problems = append(h.problems, "hfsplus: too many problems; further ones not recorded")
	}
}

// readAt reads len(b) bytes at offset off of r or names op and the offset.
func (h *FS) readAt(b []byte, off int64, op string) error {
	if off < 0 || off+int64(len(b)) > h.size {
		return &ParseError{Format: "hfsplus", Op: op, Offset: off, Err: io.ErrUnexpectedEOF}
	}
	if _, err := h.r.ReadAt(b, off); err != nil {
		return &ParseError{Format: "hfsplus", Op: op, Offset: off, Err: err}
	}
	return nil
}

// runs maps a fork of file cnid to volume byte runs: its eight extents,
// then the extents-overflow records. bad says why the runs do not cover the
// fork (the runs found are still returned).
func (h *FS) runs(cnid uint32, forkType uint8, f fork) ([]fs.Run, string) {
	if f.size == 0 {
		return nil, ""
	}
	if f.size > uint64(f.blocks)*uint64(h.blockSize) {
		return nil, fmt.Sprintf("logical size %d beyond its %d blocks", f.size, f.blocks)
	}
	// HFS+ has no sparse forks: none can hold more than the volume. This
	// also bounds what repeated overflow extents can make us read.
	if f.size > uint64(h.volBlocks)*uint64(h.blockSize) {
		return nil, fmt.Sprintf("logical size %d beyond the volume's %d blocks", f.size, h.volBlocks)
	}
	var out []fs.Run
	var logical int64
	var blocks uint32
	add := func(e extent, where int64) string {
		if e.count == 0 {
			return ""
		}
		if uint64(e.start)+uint64(e.count) > uint64(h.volBlocks) {
			if where >= 0 {
				return fmt.Sprintf("extent %d+%d (extents-overflow record at %#x) beyond the volume's %d blocks", e.start, e.count, where, h.volBlocks)
			}
			return fmt.Sprintf("extent %d+%d beyond the volume's %d blocks", e.start, e.count, h.volBlocks)
		}
		if len(out) >= maxExtents {
			return fmt.Sprintf("more than %d extents", maxExtents)
		}
		n := min(int64(e.count)*h.blockSize, int64(f.size)-logical)
		if n <= 0 {
			return ""
		}
		out = append(out, fs.Run{Logical: logical, Offset: h.base + int64(e.start)*h.blockSize, Length: n})
		logical += n
		blocks += e.count
		return ""
	}
	for _, e := range f.ext {
		if bad := add(e, -1); bad != "" {
			return out, bad
		}
	}
	recs := h.overflow[ovKey{cnid, forkType}]
	for i := 0; logical < int64(f.size) && blocks < f.blocks; {
		for i < len(recs) && recs[i].start < blocks {
			i++
		}
		if i == len(recs) || recs[i].start != blocks {
			return out, fmt.Sprintf("extents cover %d of %d bytes: no extents-overflow record for block %d", logical, f.size, blocks)
		}
		for _, e := range recs[i].ext {
			if bad := add(e, recs[i].off); bad != "" {
				return out, bad
			}
		}
		i++
	}
	if logical < int64(f.size) {
		return out, fmt.Sprintf("extents cover %d of %d bytes", logical, f.size)
	}
	return out, ""
}

// hfsTime converts HFS+ seconds since 1904-01-01 GMT; 0 means unset.
func hfsTime(v uint32) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v)-hfsEpoch, 0).UTC()
}

func be16(b []byte, o int) uint16 { return binary.BigEndian.Uint16(b[o:]) }
func be32(b []byte, o int) uint32 { return binary.BigEndian.Uint32(b[o:]) }
func be64(b []byte, o int) uint64 { return binary.BigEndian.Uint64(b[o:]) }

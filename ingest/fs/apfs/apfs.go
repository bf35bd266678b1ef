// Package apfs reads Apple File System containers read-only: the container
// superblock (NXSB) at block 0, the newest checkpoint in the checkpoint
// descriptor area whose superblock's Fletcher-64 checksum verifies (older
// ones are used when the newest is damaged), the container object map, every
// volume superblock (APSB) and, per volume, its own object map and file-system
// tree: inodes, directory records (hashed and plain keys), file extents,
// data streams and extended attributes.
//
// Every volume of the container is walked under a top-level directory named
// after the volume ("/<volume name>/..."; a name used twice gets "-<index>");
// the lead may later turn volumes into separate layers. Inode is the file's
// object id, as The Sleuth Kit reports it. Content is the file's extents as
// Runs (holes as Sparse runs); decmpfs-compressed files (package decmpfs:
// uncompressed type 1, zlib types 3/4, LZVN types 7/8) have no Runs and are
// decoded by Open.
//
// Not read: encrypted volumes (named in Problems), LZFSE-compressed files
// (decmpfs types 11/12: File.Err says so), snapshots (listed by Snapshots and
// in Problems, not walked), resource forks and other named data streams
// (extended attributes are not reported as files), sealed volumes' separate
// file-extent tree, Fusion containers' second device, and deleted files
// (APFS keeps no directory slack; orphaned inodes not reachable from the root
// are listed under "/<volume>/$OrphanFiles"). Unallocated comes from the
// space manager's chunk bitmaps of the main device.
package apfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/parse"
)

// Sentinel errors; ParseError wraps them with an offset.
var (
	ErrNotAPFS   = errors.New("apfs: not an APFS container")
	ErrCorrupt   = errors.New("apfs: corrupt structure")
	ErrTruncated = errors.New("apfs: read past the end of the volume")
	ErrChecksum  = errors.New("apfs: checksum mismatch")
)

// ParseError is damage found at a byte offset of the container.
type ParseError = parse.Error

// Object header (obj_phys_t) and object types.
const (
	objHdrLen = 32

	objTypeMask     = 0x0000ffff
	objStorageMask  = 0xc0000000
	objPhysical     = 0x40000000
	objEphemeral    = 0x80000000
	typeNXSB        = 0x01
	typeBtree       = 0x02
	typeBtreeNode   = 0x03
	typeSpaceman    = 0x05
	typeChunkInfo   = 0x07
	typeOmap        = 0x0b
	typeCheckpoint  = 0x0c
	typeFS          = 0x0d
	nxMagic         = 0x4253584e // "NXSB"
	apsbMagic       = 0x42535041 // "APSB"
	nxMaxFS         = 100
	minBlockSize    = 4096
	maxBlockSize    = 65536
	maxCheckpointXP = 1 << 16 // descriptor blocks scanned at most
)

// Container superblock (nx_superblock_t) offsets.
const (
	nxBlockSize   = 36
	nxBlockCount  = 40
	nxUUID        = 72
	nxXPDescBlks  = 104
	nxXPDataBlks  = 108
	nxXPDescBase  = 112
	nxXPDataBase  = 120
	nxXPDescIndex = 136
	nxXPDescLen   = 140
	nxSpacemanOID = 152
	nxOmapOID     = 160
	nxMaxFSOff    = 180
	nxFSOID       = 184
)

// FS is an opened APFS container. Walk runs one at a time; Open,
// Unallocated and Problems may be called concurrently with it.
type FS struct {
	r    io.ReaderAt
	size int64
	bs   int64  // block size
	nblk uint64 // blocks in the container
	xid  uint64 // transaction of the checkpoint read
	nx   []byte // the container superblock of that checkpoint

	ephemeral map[uint64]ephObj // ephemeral oid -> where, from the checkpoint map
	vols      []*volume
	snapshots []Snapshot

	unallocOnce sync.Once
	unalloc     []fs.Range
	unallocErr  error

	mu         sync.Mutex
	problems   []string
	compressed map[fileKey]*compressed // decmpfs files Walk met, for Open
}

// ephObj is an ephemeral object of the checkpoint.
type ephObj struct {
	block uint64
	size  uint32
}

// Snapshot is one volume snapshot, listed but not walked.
type Snapshot struct {
	Volume string // the volume's top-level directory name
	Name   string
	XID    uint64 // transaction the snapshot preserves
}

// maxProblems bounds the problem list of a wholly corrupt container.
const maxProblems = 10000

func (a *FS) problem(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case len(a.problems) < maxProblems:
		s := fmt.Sprintf(format, args...)
		for _, p := range a.problems {
			if p == s {
				return
			}
		}
		a.problems = append(a.problems, s)
	case len(a.problems) == maxProblems:
		a.problems = append(a.problems, "apfs: too many problems; further ones not recorded")
	}
}

// Problems lists the damage found so far, each naming its byte offset.
func (a *FS) Problems() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.problems...)
}

// Type returns "apfs".
func (a *FS) Type() string { return "apfs" }

// Snapshots lists every volume's snapshots (name and xid); they are not
// walked.
func (a *FS) Snapshots() []Snapshot { return append([]Snapshot(nil), a.snapshots...) }

// BlockSize returns the container's block size in bytes.
func (a *FS) BlockSize() int64 { return a.bs }

// XID returns the transaction id of the checkpoint that was read.
func (a *FS) XID() uint64 { return a.xid }

// readAt reads exactly len(b) bytes at off or says where the volume ended.
func (a *FS) readAt(b []byte, off int64, op string) error {
	if off < 0 || off+int64(len(b)) > a.size {
		return &ParseError{Format: "apfs", Op: op, Offset: off, Err: ErrTruncated}
	}
	n, err := a.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = ErrTruncated
	}
	return &ParseError{Format: "apfs", Op: op, Offset: off, Err: err}
}

// block reads block number n and verifies its object checksum.
func (a *FS) block(n uint64, op string) ([]byte, error) {
	if n == 0 || n >= a.nblk || n > uint64(a.size/a.bs) {
		return nil, &ParseError{Format: "apfs", Op: op, Offset: int64(min(n, 1<<62/uint64(a.bs))) * a.bs, Err: fmt.Errorf("%w: block %d outside the container of %d blocks", ErrCorrupt, n, a.nblk)}
	}
	b := make([]byte, a.bs)
	off := int64(n) * a.bs
	if err := a.readAt(b, off, op); err != nil {
		return nil, err
	}
	if !checksumOK(b) {
		return nil, &ParseError{Format: "apfs", Op: op, Offset: off, Err: ErrChecksum}
	}
	return b, nil
}

// fletcher64 is the APFS object checksum of b (the data after the 8-byte
// checksum field), as 32-bit little-endian words.
func fletcher64(b []byte) uint64 {
	const mod = 0xffffffff
	var s1, s2 uint64
	for i := 0; i+4 <= len(b); i += 4 {
		s1 += uint64(binary.LittleEndian.Uint32(b[i:]))
		s2 += s1
		// Reduce before the sums can overflow 64 bits.
		if i&0xfff == 0xffc {
			s1 %= mod
			s2 %= mod
		}
	}
	s1 %= mod
	s2 %= mod
	c1 := mod - (s1+s2)%mod
	c2 := mod - (s1+c1)%mod
	return c2<<32 | c1
}

func checksumOK(b []byte) bool {
	if len(b) < objHdrLen {
		return false
	}
	stored := binary.LittleEndian.Uint64(b)
	return stored != 0 && stored == fletcher64(b[8:])
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

func objType(b []byte) uint32 { return le32(b, 24) & objTypeMask }
func objXID(b []byte) uint64  { return le64(b, 16) }
func objOID(b []byte) uint64  { return le64(b, 8) }

// Open reads the APFS container on r (size bytes): the newest valid
// checkpoint, the container object map and every volume's superblock and
// object map. Files are read by Walk.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	return OpenFS(r, size)
}

// OpenFS is Open returning the concrete type, for Snapshots.
func OpenFS(r io.ReaderAt, size int64) (*FS, error) {
	a := &FS{r: r, size: size}
	hdr := make([]byte, 4096)
	if size < int64(len(hdr)) {
		return nil, &ParseError{Format: "apfs", Op: "container superblock", Offset: 0, Err: ErrNotAPFS}
	}
	if err := a.readAt(hdr, 0, "container superblock"); err != nil {
		return nil, err
	}
	if le32(hdr, 32) != nxMagic {
		return nil, &ParseError{Format: "apfs", Op: "container superblock", Offset: 32, Err: ErrNotAPFS}
	}
	bs := int64(le32(hdr, nxBlockSize))
	if bs < minBlockSize || bs > maxBlockSize || bs&(bs-1) != 0 {
		return nil, &ParseError{Format: "apfs", Op: "container superblock", Offset: nxBlockSize, Err: fmt.Errorf("%w: block size %d", ErrCorrupt, bs)}
	}
	a.bs = bs
	a.nblk = le64(hdr, nxBlockCount)
	if a.nblk == 0 || a.nblk > uint64(1<<62/bs) {
		return nil, &ParseError{Format: "apfs", Op: "container superblock", Offset: nxBlockCount, Err: fmt.Errorf("%w: %d blocks", ErrCorrupt, a.nblk)}
	}
	if need := int64(a.nblk) * bs; need > size {
		a.problem("container superblock at 0x0: %v: container of %d bytes on a volume of %d", ErrTruncated, need, size)
	}
	b0 := make([]byte, bs)
	if err := a.readAt(b0, 0, "container superblock"); err != nil {
		return nil, err
	}
	if !checksumOK(b0) {
		a.problem("container superblock at 0x0: %v; using the checkpoint area", ErrChecksum)
	}
	if err := a.pickCheckpoint(b0); err != nil {
		return nil, err
	}
	if err := a.openVolumes(); err != nil {
		return nil, err
	}
	return a, nil
}

// pickCheckpoint scans the checkpoint descriptor area for the container
// superblock with the highest xid whose checksum verifies, falling back to
// block 0, and loads that checkpoint's map of ephemeral objects.
func (a *FS) pickCheckpoint(b0 []byte) error {
	descBlocks := le32(b0, nxXPDescBlks)
	descBase := le64(b0, nxXPDescBase)
	var best []byte
	var bestIdx uint64
	if descBlocks&0x80000000 != 0 {
		a.problem("container superblock at %#x: checkpoint descriptor area is a B-tree (not contiguous); not read, block 0 used", nxXPDescBlks)
	} else {
		n := uint64(descBlocks)
		if n > maxCheckpointXP {
			a.problem("container superblock at %#x: %d checkpoint descriptor blocks; only %d read", nxXPDescBlks, n, maxCheckpointXP)
			n = maxCheckpointXP
		}
		for i := uint64(0); i < n; i++ {
			blk := descBase + i
			b, err := a.block(blk, "checkpoint descriptor")
			if err != nil {
				if errors.Is(err, ErrChecksum) && a.rawType(blk) == typeNXSB {
					a.problem("%v: container superblock of the checkpoint skipped", err)
				}
				continue
			}
			if objType(b) != typeNXSB || le32(b, 32) != nxMagic {
				continue
			}
			if best == nil || objXID(b) > objXID(best) {
				best, bestIdx = b, i
			}
		}
	}
	if best == nil {
		if !checksumOK(b0) {
			return &ParseError{Format: "apfs", Op: "container superblock", Offset: 0, Err: fmt.Errorf("%w: no valid checkpoint", ErrCorrupt)}
		}
		a.problem("checkpoint area at %#x: no valid container superblock; block 0 used", int64(descBase)*a.bs)
		best = b0
	} else if int64(le32(best, nxBlockSize)) != a.bs {
		return &ParseError{Format: "apfs", Op: "checkpoint superblock", Offset: int64(descBase+bestIdx) * a.bs, Err: fmt.Errorf("%w: block size %d differs from block 0's %d", ErrCorrupt, le32(best, nxBlockSize), a.bs)}
	}
	a.nx = best
	a.xid = objXID(best)
	a.nblk = le64(best, nxBlockCount)
	if a.nblk == 0 || a.nblk > uint64(1<<62/a.bs) {
		return &ParseError{Format: "apfs", Op: "checkpoint superblock", Offset: nxBlockCount, Err: fmt.Errorf("%w: %d blocks", ErrCorrupt, a.nblk)}
	}
	a.loadCheckpointMap(best)
	return nil
}

// rawType reads the object type of block n without verifying it.
func (a *FS) rawType(n uint64) uint32 {
	h := make([]byte, objHdrLen)
	if a.readAt(h, int64(n)*a.bs, "") != nil {
		return 0
	}
	return objType(h)
}

// loadCheckpointMap reads the checkpoint-mapping blocks of the chosen
// checkpoint (the descriptor blocks before its superblock) into the
// ephemeral object table; the space manager is found there.
func (a *FS) loadCheckpointMap(nx []byte) {
	a.ephemeral = map[uint64]ephObj{}
	descBlocks := uint64(le32(nx, nxXPDescBlks) & 0x7fffffff)
	base := le64(nx, nxXPDescBase)
	idx := uint64(le32(nx, nxXPDescIndex))
	n := uint64(le32(nx, nxXPDescLen))
	if descBlocks == 0 || descBlocks > maxCheckpointXP || n > descBlocks || idx >= descBlocks {
		a.problem("checkpoint superblock: descriptor index %d length %d in an area of %d blocks; no checkpoint map", idx, n, descBlocks)
		return
	}
	for i := uint64(0); i+1 < n; i++ {
		blk := base + (idx+i)%descBlocks
		b, err := a.block(blk, "checkpoint map")
		if err != nil {
			a.problem("%v", err)
			continue
		}
		if objType(b) != typeCheckpoint {
			continue
		}
		count := int(le32(b, 36))
		if 40+count*40 > len(b) {
			a.problem("checkpoint map at %#x: %v: %d mappings do not fit a block", int64(blk)*a.bs, ErrCorrupt, count)
			count = (len(b) - 40) / 40
		}
		for j := 0; j < count; j++ {
			m := b[40+j*40:]
			a.ephemeral[le64(m, 24)] = ephObj{block: le64(m, 32), size: le32(m, 8)}
		}
	}
}

// volume is one APFS volume of the container.
type volume struct {
	index      int    // position in nx_fs_oid
	name       string // apfs_volname
	dir        string // top-level directory name in Walk
	off        int64  // byte offset of the volume superblock
	sb         []byte
	omap       *omap // the volume's object map
	rootTree   uint64
	rootPhys   bool
	encrypted  bool
	sealed     bool
	caseInsens bool
}

// Volume superblock (apfs_superblock_t) offsets and flags.
const (
	apsbIncompat     = 56
	apsbRootTreeType = 116
	apsbOmapOID      = 128
	apsbRootTreeOID  = 136
	apsbSnapMetaOID  = 152
	apsbFSFlags      = 264
	apsbVolName      = 704
	apsbVolNameLen   = 256

	fsUnencrypted       = 0x1
	incompatCaseInsens  = 0x1
	incompatNormInsens  = 0x8
	incompatSealed      = 0x20
	incompatEncRolled   = 0x4
	rootDirID           = 2
	privDirID           = 3
	maxTreeDepth        = 16
	maxNodeVisits       = 1 << 22
	maxRecordsPerVolume = 1 << 24
)

// openVolumes reads the container object map and every volume superblock.
func (a *FS) openVolumes() error {
	om, err := a.readOmap(le64(a.nx, nxOmapOID), "container object map")
	if om == nil {
		return err
	}
	if err != nil {
		a.problem("%v", err)
	}
	maxFS := int(le32(a.nx, nxMaxFSOff))
	if maxFS <= 0 || maxFS > nxMaxFS {
		maxFS = nxMaxFS
	}
	used := map[string]bool{}
	for i := 0; i < maxFS; i++ {
		oid := le64(a.nx, nxFSOID+8*i)
		if oid == 0 {
			continue
		}
		blk, ok := om.lookup(oid, a.xid)
		if !ok {
			a.problem("volume %d: oid %d not in the container object map at %#x", i, oid, om.off)
			continue
		}
		sb, err := a.block(blk, fmt.Sprintf("volume %d superblock", i))
		if err != nil {
			a.problem("%v", err)
			continue
		}
		if le32(sb, 32) != apsbMagic || objType(sb) != typeFS {
			a.problem("volume %d superblock at %#x: %v: no APSB signature", i, int64(blk)*a.bs, ErrCorrupt)
			continue
		}
		v := &volume{index: i, off: int64(blk) * a.bs, sb: sb}
		v.name = cString(sb[apsbVolName : apsbVolName+apsbVolNameLen])
		v.dir = escapeName(v.name)
		if v.dir == "" {
			v.dir = fmt.Sprintf("volume-%d", i)
		}
		if used[v.dir] {
			v.dir = fmt.Sprintf("%s-%d", v.dir, i)
		}
		used[v.dir] = true
		inc := le64(sb, apsbIncompat)
		v.caseInsens = inc&incompatCaseInsens != 0
		v.sealed = inc&incompatSealed != 0
		v.encrypted = le64(sb, apsbFSFlags)&fsUnencrypted == 0
		v.rootTree = le64(sb, apsbRootTreeOID)
		v.rootPhys = le32(sb, apsbRootTreeType)&objStorageMask == objPhysical
		if v.encrypted {
			a.problem("apfs: volume %s is encrypted; not read (superblock at %#x)", v.name, v.off)
		} else {
			v.omap, err = a.readOmap(le64(sb, apsbOmapOID), fmt.Sprintf("volume %s object map", v.name))
			if err != nil {
				a.problem("%v", err)
			}
			if v.omap == nil && !v.rootPhys {
				a.problem("apfs: volume %s: no object map; its files are not read", v.name)
			}
			if v.sealed {
				a.problem("apfs: volume %s is sealed; file extents kept in its separate extent tree are not read", v.name)
			}
			a.readSnapshots(v)
		}
		a.vols = append(a.vols, v)
	}
	if len(a.vols) == 0 {
		a.problem("container at 0x0: no volume found")
	}
	return nil
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Package ext reads ext2, ext3 and ext4 file systems read-only and
// forensically: allocated files through the directory tree, deleted names
// found in the slack of directory records, deleted inodes whose block
// pointers or extents survive, and the block bitmaps as the allocation map.
//
// It is a direct reader (no go-diskfs: that rejects ext2/3 and panics on
// fragmented files). Every on-disk count, length and pointer is checked
// against the volume size before it is used; damage becomes a Problem naming
// its byte offset and the walk goes on.
package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/parse"
)

// Sentinel errors of this package; ParseError wraps them with an offset.
var (
	ErrNotExt         = errors.New("ext: not an ext2/3/4 file system")
	ErrCorrupt        = errors.New("ext: corrupt structure")
	ErrNotRecoverable = errors.New("ext: deleted file content not recoverable")
	ErrTruncated      = errors.New("ext: read past the end of the volume")
)

// ParseError says which ext structure at which volume offset was damaged.
type ParseError = parse.Error

// Superblock layout: byte offsets within the 1024-byte superblock, which
// starts 1024 bytes into the volume (and is copied at the start of the
// backup groups).
const (
	superOff = 1024
	superLen = 1024

	sbInodesCount     = 0x00
	sbBlocksCountLo   = 0x04
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbBlocksPerGroup  = 0x20
	sbInodesPerGroup  = 0x28
	sbMagic           = 0x38
	sbBlockGroupNr    = 0x5A
	sbRevLevel        = 0x4C
	sbFirstIno        = 0x54
	sbInodeSize       = 0x58
	sbFeatureCompat   = 0x5C
	sbFeatureIncompat = 0x60
	sbFeatureROCompat = 0x64
	sbReservedGDT     = 0xCE
	sbDescSize        = 0xFE
	sbFirstMetaBG     = 0x104
	sbBlocksCountHi   = 0x150
	sbChecksumType    = 0x175
	sbBackupBGs       = 0x24C
	sbChecksum        = 0x3FC

	extMagic = 0xEF53
)

// Feature flags (superblock s_feature_*).
const (
	compatHasJournal   = 0x4
	compatSparseSuper2 = 0x200

	incompatFiletype   = 0x2
	incompatJournalDev = 0x8
	incompatMetaBG     = 0x10
	incompatExtents    = 0x40
	incompat64bit      = 0x80
	incompatFlexBG     = 0x200
	incompatInlineData = 0x8000

	rocompatSparseSuper = 0x1
	rocompatHugeFile    = 0x8
	rocompatGdtCsum     = 0x10
	rocompatDirNlink    = 0x20
	rocompatExtraIsize  = 0x40
	rocompatMetaCsum    = 0x400
)

// Group descriptor layout (32 bytes, 64 with INCOMPAT_64BIT).
const (
	gdBlockBitmapLo = 0x00
	gdInodeBitmapLo = 0x04
	gdInodeTableLo  = 0x08
	gdFlags         = 0x12
	gdItableUnused  = 0x1C
	gdBlockBitmapHi = 0x20
	gdInodeBitmapHi = 0x24
	gdInodeTableHi  = 0x28

	bgInodeUninit = 0x1
	bgBlockUninit = 0x2
)

// maxLogBlockSize caps s_log_block_size: 1024<<6 = 64 KiB blocks.
const maxLogBlockSize = 6

// super holds the superblock fields the reader uses, validated.
type super struct {
	off             int64 // byte offset of the superblock used (primary 0x400 or a backup)
	inodesCount     uint32
	blocksCount     uint64
	firstDataBlock  uint64
	blockSize       int64
	blocksPerGroup  uint64
	inodesPerGroup  uint32
	firstIno        uint32
	inodeSize       int64
	compat          uint32
	incompat        uint32
	rocompat        uint32
	reservedGDT     uint64
	descSize        int64
	firstMetaBG     uint64
	backupBGs       [2]uint32
	groups          uint64
	checksumOK      bool
	hasMetadataCsum bool
}

// parseSuper decodes and checks a 1024-byte superblock read at off from a
// volume of size bytes.
func parseSuper(b []byte, off, size int64) (*super, error) {
	le := binary.LittleEndian
	if le.Uint16(b[sbMagic:]) != extMagic {
		return nil, &ParseError{Format: "ext", Op: "superblock magic", Offset: off + sbMagic, Err: ErrNotExt}
	}
	s := &super{off: off}
	s.inodesCount = le.Uint32(b[sbInodesCount:])
	s.compat = le.Uint32(b[sbFeatureCompat:])
	s.incompat = le.Uint32(b[sbFeatureIncompat:])
	s.rocompat = le.Uint32(b[sbFeatureROCompat:])
	s.blocksCount = uint64(le.Uint32(b[sbBlocksCountLo:]))
	if s.incompat&incompat64bit != 0 {
		s.blocksCount |= uint64(le.Uint32(b[sbBlocksCountHi:])) << 32
	}
	s.firstDataBlock = uint64(le.Uint32(b[sbFirstDataBlock:]))
	logBS := le.Uint32(b[sbLogBlockSize:])
	bad := func(field string, at int, format string, a ...any) error {
		return &ParseError{Format: "ext", Op: "superblock " + field, Offset: off + int64(at), Err: fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, a...)...)}
	}
	if logBS > maxLogBlockSize {
		return nil, bad("s_log_block_size", sbLogBlockSize, "%d", logBS)
	}
	s.blockSize = 1024 << logBS
	s.blocksPerGroup = uint64(le.Uint32(b[sbBlocksPerGroup:]))
	s.inodesPerGroup = le.Uint32(b[sbInodesPerGroup:])
	if s.blocksPerGroup == 0 || s.blocksPerGroup > uint64(8*s.blockSize) {
		return nil, bad("s_blocks_per_group", sbBlocksPerGroup, "%d", s.blocksPerGroup)
	}
	if s.inodesPerGroup == 0 || int64(s.inodesPerGroup) > 8*s.blockSize {
		return nil, bad("s_inodes_per_group", sbInodesPerGroup, "%d", s.inodesPerGroup)
	}
	if s.blocksCount == 0 || s.firstDataBlock >= s.blocksCount || s.firstDataBlock > 1 {
		return nil, bad("s_blocks_count", sbBlocksCountLo, "%d blocks, first data block %d", s.blocksCount, s.firstDataBlock)
	}
	if s.incompat&incompatJournalDev != 0 {
		return nil, bad("s_feature_incompat", sbFeatureIncompat, "external journal device, no files")
	}
	s.groups = (s.blocksCount - s.firstDataBlock + s.blocksPerGroup - 1) / s.blocksPerGroup
	if s.inodesCount == 0 || uint64(s.inodesCount) > s.groups*uint64(s.inodesPerGroup) {
		return nil, bad("s_inodes_count", sbInodesCount, "%d inodes for %d groups of %d", s.inodesCount, s.groups, s.inodesPerGroup)
	}
	s.inodeSize = 128
	s.firstIno = 11
	if le.Uint32(b[sbRevLevel:]) >= 1 {
		s.inodeSize = int64(le.Uint16(b[sbInodeSize:]))
		s.firstIno = le.Uint32(b[sbFirstIno:])
	}
	if s.inodeSize < 128 || s.inodeSize > s.blockSize || s.inodeSize&(s.inodeSize-1) != 0 {
		return nil, bad("s_inode_size", sbInodeSize, "%d", s.inodeSize)
	}
	s.descSize = 32
	if s.incompat&incompat64bit != 0 {
		s.descSize = int64(le.Uint16(b[sbDescSize:]))
		if s.descSize < 32 || s.descSize > 1024 || s.descSize&(s.descSize-1) != 0 {
			return nil, bad("s_desc_size", sbDescSize, "%d", s.descSize)
		}
	}
	// The group descriptor table must fit the volume: this bounds every
	// allocation that depends on the group count.
	if int64(s.groups) > size/s.descSize {
		return nil, bad("s_blocks_count", sbBlocksCountLo, "%d groups cannot fit %d bytes", s.groups, size)
	}
	s.reservedGDT = uint64(le.Uint16(b[sbReservedGDT:]))
	s.firstMetaBG = uint64(le.Uint32(b[sbFirstMetaBG:]))
	s.backupBGs = [2]uint32{le.Uint32(b[sbBackupBGs:]), le.Uint32(b[sbBackupBGs+4:])}
	s.hasMetadataCsum = s.rocompat&rocompatMetaCsum != 0
	s.checksumOK = true
	if s.hasMetadataCsum {
		// s_checksum is crc32c (Castagnoli, seed ~0, not inverted at the
		// end as the kernel's ext4_chksum does) of the first 1020 bytes.
		want := le.Uint32(b[sbChecksum:])
		got := ^crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[:sbChecksum])
		s.checksumOK = ^got == want || got == want
	}
	return s, nil
}

// typeName classifies the file system as TSK and ingest/fs do: extents,
// 64-bit or flex_bg, or any ext4-only read-only feature → ext4; a journal →
// ext3; else ext2.
func (s *super) typeName() string {
	switch {
	case s.incompat&(incompatExtents|incompat64bit|incompatFlexBG) != 0,
		s.rocompat&(rocompatHugeFile|rocompatGdtCsum|rocompatDirNlink|rocompatExtraIsize|rocompatMetaCsum) != 0:
		return "ext4"
	case s.compat&compatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}

// hasSuper reports whether group g holds a superblock backup (and so the
// group descriptor table and reserved GDT blocks after it).
func (s *super) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.compat&compatSparseSuper2 != 0 {
		return g == uint64(s.backupBGs[0]) || g == uint64(s.backupBGs[1])
	}
	if s.rocompat&rocompatSparseSuper == 0 {
		return true
	}
	if g == 1 {
		return true
	}
	for _, p := range []uint64{3, 5, 7} {
		n := p
		for n < g {
			n *= p
		}
		if n == g {
			return true
		}
	}
	return false
}

// Probe reports cheaply whether the volume starts like an ext2/3/4 file
// system: the primary superblock has the magic and sane geometry.
func Probe(r io.ReaderAt, size int64) bool {
	b := make([]byte, superLen)
	if n, _ := r.ReadAt(b, superOff); n != superLen {
		return false
	}
	_, err := parseSuper(b, superOff, size)
	return err == nil
}

// group is one decoded group descriptor.
type group struct {
	blockBitmap  uint64
	inodeBitmap  uint64
	inodeTable   uint64
	flags        uint16
	itableUnused uint32
}

// Open opens the ext2/3/4 file system on the volume r of size bytes. It
// fails fast with ErrNotExt when neither the primary superblock nor the
// first backup looks like ext; with a damaged primary superblock it uses the
// backup in group 1 and records the damage as a Problem.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	return open(r, size)
}

// open is Open returning the concrete type, for tests and benchmarks.
func open(r io.ReaderAt, size int64) (*FS, error) {
	e := &FS{r: r, size: size}
	b := make([]byte, superLen)
	n, _ := r.ReadAt(b, superOff)
	if n != superLen {
		return nil, &ParseError{Format: "ext", Op: "superblock", Offset: superOff, Err: ErrNotExt}
	}
	s, err := parseSuper(b, superOff, size)
	if err != nil {
		// A backup superblock sits at the start of group 1: block
		// blocks_per_group (+1 with 1 KiB blocks), for the default
		// blocks_per_group = 8 * block size.
		for _, bs := range []int64{1024, 2048, 4096, 65536} {
			first := int64(0)
			if bs == 1024 {
				first = 1
			}
			off := (8*bs + first) * bs
			if n, _ := r.ReadAt(b, off); n != superLen {
				continue
			}
			if binary.LittleEndian.Uint16(b[sbBlockGroupNr:]) != 1 {
				continue
			}
			bk, berr := parseSuper(b, off, size)
			if berr != nil || bk.blockSize != bs || bk.blocksPerGroup != uint64(8*bs) {
				continue
			}
			e.problem("primary %v; using backup superblock at %#x", err, off)
			s, err = bk, nil
			break
		}
		if err != nil {
			return nil, err
		}
	}
	e.sb = s
	if !s.checksumOK {
		e.problem("superblock at %#x: %v: checksum mismatch", s.off, ErrCorrupt)
	}
	if need := int64(s.blocksCount) * s.blockSize; need > size {
		e.problem("superblock at %#x: %v: file system of %d bytes on a volume of %d", s.off, ErrTruncated, need, size)
	}
	if err := e.readGroups(); err != nil {
		return nil, err
	}
	e.indexMetadata()
	return e, nil
}

// readGroups loads every group descriptor.
func (e *FS) readGroups() error {
	s := e.sb
	le := binary.LittleEndian
	descPerBlock := uint64(s.blockSize / s.descSize)
	gdtBlocks := (s.groups + descPerBlock - 1) / descPerBlock
	e.groups = make([]group, s.groups)
	blk := make([]byte, s.blockSize)
	for db := uint64(0); db < gdtBlocks; db++ {
		// Without META_BG the table follows the superblock's block; with
		// it, descriptor block db >= s_first_meta_bg lives in the first
		// block (after any superblock backup) of group db*descPerBlock.
		loc := s.firstDataBlock + 1 + db
		if s.off != superOff {
			loc = (uint64(s.off)/uint64(s.blockSize) + 1) + db
		}
		if s.incompat&incompatMetaBG != 0 && db >= s.firstMetaBG {
			g := db * descPerBlock
			loc = s.firstDataBlock + g*s.blocksPerGroup
			if s.hasSuper(g) {
				loc++
			}
		}
		off := int64(loc) * s.blockSize
		if err := e.readFull(blk, off, "group descriptor block"); err != nil {
			if db == 0 {
				return err
			}
			e.problem("%v", err)
			continue
		}
		for i := uint64(0); i < descPerBlock; i++ {
			g := db*descPerBlock + i
			if g >= s.groups {
				break
			}
			d := blk[int64(i)*s.descSize:]
			gr := group{
				blockBitmap:  uint64(le.Uint32(d[gdBlockBitmapLo:])),
				inodeBitmap:  uint64(le.Uint32(d[gdInodeBitmapLo:])),
				inodeTable:   uint64(le.Uint32(d[gdInodeTableLo:])),
				flags:        le.Uint16(d[gdFlags:]),
				itableUnused: uint32(le.Uint16(d[gdItableUnused:])),
			}
			if s.descSize >= 64 {
				gr.blockBitmap |= uint64(le.Uint32(d[gdBlockBitmapHi:])) << 32
				gr.inodeBitmap |= uint64(le.Uint32(d[gdInodeBitmapHi:])) << 32
				gr.inodeTable |= uint64(le.Uint32(d[gdInodeTableHi:])) << 32
				gr.itableUnused |= uint32(le.Uint16(d[0x32:])) << 16
			}
			if s.rocompat&(rocompatGdtCsum|rocompatMetaCsum) == 0 {
				gr.flags, gr.itableUnused = 0, 0
			}
			itBlocks := (uint64(s.inodesPerGroup)*uint64(s.inodeSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
			if gr.blockBitmap >= s.blocksCount || gr.inodeBitmap >= s.blocksCount || gr.inodeTable+itBlocks > s.blocksCount {
				e.problem("group %d descriptor at %#x: %v: bitmap or inode table outside the file system", g, off+int64(i)*s.descSize, ErrCorrupt)
				gr.flags |= gdBad
			}
			e.groups[g] = gr
		}
	}
	return nil
}

// gdBad marks a group descriptor whose pointers are unusable (a flag bit the
// on-disk format does not use).
const gdBad = 0x8000

// FS is an opened ext2/3/4 file system. Walk may run in one goroutine at a
// time; Open (which reads only the File's runs), Unallocated and Problems
// may be called from any goroutine, also while Walk runs.
type FS struct {
	r      io.ReaderAt
	size   int64
	sb     *super
	groups []group

	mu       sync.Mutex
	problems []string

	// inodeBitmap and blockBitmap are loaded lazily, one []byte per group
	// (nil until read).
	inodeBitmaps [][]byte
	blockBitmaps [][]byte

	win window // inode-table read cache, used only by Walk

	// meta lists, per group, the metadata block ranges placed in it
	// (read-only after Open).
	meta [][][2]uint64
}

// Type returns "ext2", "ext3" or "ext4".
func (e *FS) Type() string { return e.sb.typeName() }

// BlockSize returns the file system block size in bytes.
func (e *FS) BlockSize() int64 { return e.sb.blockSize }

// Problems lists the damage found so far, each naming its byte offset.
func (e *FS) Problems() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.problems...)
}

// maxProblems bounds the problem list: a wholly corrupt volume must not
// grow memory without limit.
const maxProblems = 10000

// problem records one piece of damage; safe from any goroutine.
func (e *FS) problem(format string, a ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case len(e.problems) < maxProblems:
		e.problems = append(e.problems, fmt.Sprintf(format, a...))
	case len(e.problems) == maxProblems:
		e.problems = append(e.problems, "ext: too many problems; further ones not recorded")
	}
}

// readFull reads len(b) bytes at volume offset off, or returns a ParseError
// naming op and the offset.
func (e *FS) readFull(b []byte, off int64, op string) error {
	if off < 0 || off+int64(len(b)) > e.size {
		return &ParseError{Format: "ext", Op: op, Offset: off, Err: ErrTruncated}
	}
	n, err := e.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = ErrTruncated
	}
	return &ParseError{Format: "ext", Op: op, Offset: off, Err: err}
}

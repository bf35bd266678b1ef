package ext

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/evidx/evidx/ingest/fs"
)

// Inode layout: byte offsets within an on-disk inode.
const (
	iMode        = 0x00
	iUID         = 0x02
	iSizeLo      = 0x04
	iAtime       = 0x08
	iCtime       = 0x0C
	iMtime       = 0x10
	iDtime       = 0x14
	iGID         = 0x18
	iLinksCount  = 0x1A
	iBlocksLo    = 0x1C
	iFlags       = 0x20
	iBlock       = 0x28 // i_block[15], 60 bytes: block map, extent tree or inline data
	iBlockLen    = 60
	iFileACLLo   = 0x68
	iSizeHigh    = 0x6C
	iUIDHigh     = 0x78 // osd2.linux2.l_i_uid_high
	iGIDHigh     = 0x7A
	iExtraIsize  = 0x80
	iCtimeExtra  = 0x84
	iMtimeExtra  = 0x88
	iAtimeExtra  = 0x8C
	iCrtime      = 0x90
	iCrtimeExtra = 0x94

	flagIndex      = 0x1000     // htree directory
	flagExtents    = 0x80000    // i_block is an extent tree
	flagInlineData = 0x10000000 // content in i_block and the system.data xattr

	modeType    = 0xF000
	modeDir     = 0x4000
	modeFile    = 0x8000
	modeSymlink = 0xA000
)

// inode is a decoded on-disk inode; raw stays valid while the inode is used.
type inode struct {
	num   uint32
	off   int64 // byte offset of the inode in the volume
	raw   []byte
	mode  uint16
	size  int64
	links uint16
	dtime uint32
	flags uint32
}

func (in *inode) isDir() bool     { return in.mode&modeType == modeDir }
func (in *inode) isSymlink() bool { return in.mode&modeType == modeSymlink }

// typeName maps the mode to the File.Type vocabulary.
func (in *inode) typeName() string {
	switch in.mode & modeType {
	case modeDir:
		return "dir"
	case modeFile:
		return "file"
	case modeSymlink:
		return "symlink"
	case 0:
		return ""
	}
	return "other"
}

// inodeLoc returns the byte offset of inode num.
func (e *FS) inodeLoc(num uint32) (int64, error) {
	s := e.sb
	if num == 0 || num > s.inodesCount {
		return 0, fmt.Errorf("inode %d: %w: number outside 1..%d", num, ErrCorrupt, s.inodesCount)
	}
	g := uint64(num-1) / uint64(s.inodesPerGroup)
	idx := int64(num-1) % int64(s.inodesPerGroup)
	gr := e.groups[g]
	if gr.flags&gdBad != 0 {
		return 0, fmt.Errorf("inode %d: %w: group %d descriptor damaged", num, ErrCorrupt, g)
	}
	return int64(gr.inodeTable)*s.blockSize + idx*s.inodeSize, nil
}

// readInode reads and decodes inode num.
func (e *FS) readInode(num uint32) (*inode, error) {
	off, err := e.inodeLoc(num)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, e.sb.inodeSize)
	if off >= e.win.off && off+e.sb.inodeSize <= e.win.off+int64(len(e.win.buf)) {
		copy(raw, e.win.buf[off-e.win.off:])
		return e.decodeInode(num, off, raw), nil
	}
	// Read a window of the inode table around the inode: directory
	// entries mostly name inodes allocated near each other, so one read
	// serves many. The window stays inside this group's inode table.
	g := uint64(num-1) / uint64(e.sb.inodesPerGroup)
	tableEnd := int64(e.groups[g].inodeTable)*e.sb.blockSize + int64(e.sb.inodesPerGroup)*e.sb.inodeSize
	n := min(inodeWindow, tableEnd-off, e.size-off)
	if n >= e.sb.inodeSize {
		if cap(e.win.buf) < int(n) {
			e.win.buf = make([]byte, inodeWindow)
		}
		e.win.buf = e.win.buf[:n]
		if err := e.readFull(e.win.buf, off, fmt.Sprintf("inode %d", num)); err == nil {
			e.win.off = off
			copy(raw, e.win.buf)
			return e.decodeInode(num, off, raw), nil
		}
		e.win.buf = e.win.buf[:0]
	}
	if err := e.readFull(raw, off, fmt.Sprintf("inode %d", num)); err != nil {
		return nil, err
	}
	return e.decodeInode(num, off, raw), nil
}

// inodeWindow is the number of inode-table bytes readInode reads at once.
const inodeWindow = 64 << 10

// window is a cached stretch of an inode table: buf holds the bytes at
// volume offset off. Only the goroutine running Walk or Open uses it.
type window struct {
	off int64
	buf []byte
}

// decodeInode decodes the on-disk inode raw (kept, not copied) of inode
// num found at volume offset off.
func (e *FS) decodeInode(num uint32, off int64, raw []byte) *inode {
	le := binary.LittleEndian
	in := &inode{num: num, off: off, raw: raw}
	in.mode = le.Uint16(raw[iMode:])
	in.size = int64(le.Uint32(raw[iSizeLo:]))
	if in.mode&modeType == modeFile || e.sb.rev1() {
		in.size |= int64(le.Uint32(raw[iSizeHigh:])) << 32
	}
	if in.size < 0 { // a set top bit: no file is 8 EiB
		in.size = 0
	}
	in.links = le.Uint16(raw[iLinksCount:])
	in.dtime = le.Uint32(raw[iDtime:])
	in.flags = le.Uint32(raw[iFlags:])
	return in
}

// owner returns the inode's owner: the low halves with Linux's high
// halves (osd2), as TSK reads them.
func (in *inode) owner() (uid, gid uint32) {
	le := binary.LittleEndian
	uid = uint32(le.Uint16(in.raw[iUID:])) | uint32(le.Uint16(in.raw[iUIDHigh:]))<<16
	gid = uint32(le.Uint16(in.raw[iGID:])) | uint32(le.Uint16(in.raw[iGIDHigh:]))<<16
	return uid, gid
}

// rev1 reports a dynamic-revision file system (larger inodes or a first
// inode other than 11), where i_size_high is the size's high half for
// every inode type.
func (s *super) rev1() bool { return s.inodeSize > 128 || s.firstIno != 11 }

// extraIsize returns i_extra_isize, or 0 for 128-byte inodes and bad values.
func (in *inode) extraIsize() int {
	if len(in.raw) <= 128 {
		return 0
	}
	n := int(binary.LittleEndian.Uint16(in.raw[iExtraIsize:]))
	if 128+n > len(in.raw) {
		return 0
	}
	return n
}

// times returns M, A, C and creation times. Each *_extra field holds two
// epoch bits (seconds bits 32-33) and nanoseconds << 2; crtime exists only
// with a large enough i_extra_isize.
func (in *inode) times() (m, a, c, b time.Time) {
	le := binary.LittleEndian
	extra := in.extraIsize()
	get := func(secOff, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(in.raw[secOff:])))
		var nsec int64
		if extraOff > 0 && extraOff+4 <= 128+extra {
			x := le.Uint32(in.raw[extraOff:])
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
			if nsec > 999999999 {
				nsec = 0
			}
		}
		if sec == 0 && nsec == 0 {
			return time.Time{}
		}
		return time.Unix(sec, nsec).UTC()
	}
	m = get(iMtime, iMtimeExtra)
	a = get(iAtime, iAtimeExtra)
	c = get(iCtime, iCtimeExtra)
	if iCrtime+4 <= 128+extra {
		b = get(iCrtime, iCrtimeExtra)
	}
	return
}

// blockMap returns the byte runs of the inode's content, in file order,
// clipped to its size. A damaged map yields the runs read so far and a
// non-nil error naming the offset of the damage.
func (e *FS) blockMap(in *inode) ([]fs.Run, error) {
	switch {
	case in.flags&flagInlineData != 0:
		return e.inlineRuns(in)
	case in.isSymlink() && e.fastSymlink(in):
		return []fs.Run{{Logical: 0, Offset: in.off + iBlock, Length: in.size}}, nil
	case in.flags&flagExtents != 0:
		m := &runMapper{e: e, size: in.size}
		err := m.extents(in.raw[iBlock:iBlock+iBlockLen], in.off+iBlock, 0, fmt.Sprintf("inode %d extent tree", in.num))
		return m.runs, err
	default:
		m := &runMapper{e: e, size: in.size}
		err := m.indirect(in)
		return m.runs, err
	}
}

// fastSymlink reports a symlink whose target is stored in i_block itself:
// shorter than 60 bytes and owning no data blocks (an xattr block aside).
func (e *FS) fastSymlink(in *inode) bool {
	if in.size >= iBlockLen {
		return false
	}
	le := binary.LittleEndian
	blocks := int64(le.Uint32(in.raw[iBlocksLo:]))
	if le.Uint32(in.raw[iFileACLLo:]) != 0 {
		blocks -= e.sb.blockSize / 512
	}
	return blocks <= 0
}

// inlineRuns maps inline data: the first 60 bytes live in i_block, the rest
// in the value of the in-inode extended attribute "system.data".
func (e *FS) inlineRuns(in *inode) ([]fs.Run, error) {
	n := min(in.size, iBlockLen)
	runs := []fs.Run{{Logical: 0, Offset: in.off + iBlock, Length: n}}
	if in.size <= iBlockLen {
		return runs, nil
	}
	valOff, valLen, ok := in.inlineXattr()
	if !ok {
		return runs, &ParseError{Format: "ext", Op: fmt.Sprintf("inode %d inline data", in.num), Offset: in.off, Err: fmt.Errorf("%w: system.data attribute missing", ErrCorrupt)}
	}
	rest := min(in.size-iBlockLen, int64(valLen))
	runs = append(runs, fs.Run{Logical: iBlockLen, Offset: in.off + int64(valOff), Length: rest})
	return runs, nil
}

// In-inode extended attributes: after 128+i_extra_isize bytes comes the
// magic 0xEA020000, then entries of {name_len u8, name_index u8, value_offs
// u16, value_inum u32, value_size u32, hash u32, name}; value_offs counts
// from the first entry.
const (
	xattrMagic       = 0xEA020000
	xattrIndexSystem = 7 // name index of "system." attributes
)

// inlineXattr finds system.data among the in-inode attributes and returns
// its value's offset within the inode and its length.
func (in *inode) inlineXattr() (off, n int, ok bool) {
	le := binary.LittleEndian
	start := 128 + in.extraIsize()
	if in.extraIsize() == 0 || start+4 > len(in.raw) || le.Uint32(in.raw[start:]) != xattrMagic {
		return 0, 0, false
	}
	base := start + 4
	for p := base; p+16 <= len(in.raw); {
		nameLen := int(in.raw[p])
		if nameLen == 0 && in.raw[p+1] == 0 && le.Uint32(in.raw[p:]) == 0 {
			break
		}
		idx := in.raw[p+1]
		vOff := int(le.Uint16(in.raw[p+2:]))
		vSize := int(le.Uint32(in.raw[p+8:]))
		if p+16+nameLen > len(in.raw) {
			break
		}
		name := string(in.raw[p+16 : p+16+nameLen])
		if idx == xattrIndexSystem && name == "data" {
			if base+vOff+vSize > len(in.raw) {
				return 0, 0, false
			}
			return base + vOff, vSize, true
		}
		p += (16 + nameLen + 3) &^ 3
	}
	return 0, 0, false
}

// runMapper accumulates byte runs for one file, merging physically
// contiguous blocks, and bounds the work by the file system's block count.
type runMapper struct {
	e     *FS
	size  int64 // file size: blocks past it are ignored
	runs  []fs.Run
	nodes int // extent/indirect blocks read, bounded by blocksCount
}

// add maps count blocks from logical block lblk to physical block pblk.
func (m *runMapper) add(lblk, pblk, count uint64, sparse bool) {
	bs := m.e.sb.blockSize
	logical := int64(lblk) * bs
	if logical >= m.size || count == 0 {
		return
	}
	length := min(int64(count)*bs, m.size-logical)
	off := int64(pblk) * bs
	if sparse {
		off = 0
	}
	if n := len(m.runs); n > 0 {
		last := &m.runs[n-1]
		if last.Sparse == sparse && last.Logical+last.Length == logical && (sparse || last.Offset+last.Length == off) {
			last.Length += length
			return
		}
	}
	m.runs = append(m.runs, fs.Run{Logical: logical, Offset: off, Length: length, Sparse: sparse})
}

// checkBlocks verifies that count blocks from pblk lie inside the file system.
func (m *runMapper) checkBlocks(pblk, count uint64) bool {
	s := m.e.sb
	return pblk >= s.firstDataBlock && pblk < s.blocksCount && count <= s.blocksCount-pblk
}

// Extent tree layout: a 12-byte header {magic 0xF30A u16, entries u16, max
// u16, depth u16, generation u32} then 12-byte entries. Leaf: {ee_block u32,
// ee_len u16, ee_start_hi u16, ee_start_lo u32}; index: {ei_block u32,
// ei_leaf_lo u32, ei_leaf_hi u16, unused u16}.
const (
	extentMagic    = 0xF30A
	extentMaxDepth = 5     // the kernel's EXT4_MAX_EXTENT_DEPTH
	extentInitMax  = 32768 // ee_len above this marks an uninitialized extent
)

// extents walks the extent node b found at volume offset off.
func (m *runMapper) extents(b []byte, off int64, level int, op string) error {
	le := binary.LittleEndian
	if len(b) < 12 || le.Uint16(b) != extentMagic {
		if le.Uint32(b) == 0 && level == 0 {
			// An all-zero root: the kernel clears extents of deleted
			// files; nothing survives to map.
			return nil
		}
		return &ParseError{Format: "ext", Op: op, Offset: off, Err: fmt.Errorf("%w: bad extent header magic %#x", ErrCorrupt, le.Uint16(b))}
	}
	entries := int(le.Uint16(b[2:]))
	depth := int(le.Uint16(b[6:]))
	if 12+12*entries > len(b) {
		return &ParseError{Format: "ext", Op: op, Offset: off, Err: fmt.Errorf("%w: %d extents do not fit a %d-byte node", ErrCorrupt, entries, len(b))}
	}
	if depth > extentMaxDepth || level > extentMaxDepth {
		return &ParseError{Format: "ext", Op: op, Offset: off, Err: fmt.Errorf("%w: extent depth %d", ErrCorrupt, depth)}
	}
	var firstErr error
	for i := 0; i < entries; i++ {
		ent := b[12+12*i:]
		entOff := off + 12 + 12*int64(i)
		lblk := uint64(le.Uint32(ent))
		if depth == 0 {
			n := uint64(le.Uint16(ent[4:]))
			sparse := false
			if n > extentInitMax {
				n -= extentInitMax
				sparse = true // uninitialized: reads as zeros
			}
			pblk := uint64(le.Uint16(ent[6:]))<<32 | uint64(le.Uint32(ent[8:]))
			if !m.checkBlocks(pblk, n) {
				if firstErr == nil {
					firstErr = &ParseError{Format: "ext", Op: op, Offset: entOff, Err: fmt.Errorf("%w: extent of %d blocks at block %d outside the file system", ErrCorrupt, n, pblk)}
				}
				continue
			}
			m.add(lblk, pblk, n, sparse)
			continue
		}
		child := uint64(le.Uint16(ent[8:]))<<32 | uint64(le.Uint32(ent[4:]))
		if !m.checkBlocks(child, 1) {
			if firstErr == nil {
				firstErr = &ParseError{Format: "ext", Op: op, Offset: entOff, Err: fmt.Errorf("%w: extent index to block %d outside the file system", ErrCorrupt, child)}
			}
			continue
		}
		if m.nodes++; uint64(m.nodes) > m.e.sb.blocksCount {
			return &ParseError{Format: "ext", Op: op, Offset: entOff, Err: fmt.Errorf("%w: extent tree larger than the file system", ErrCorrupt)}
		}
		nb := make([]byte, m.e.sb.blockSize)
		noff := int64(child) * m.e.sb.blockSize
		if err := m.e.readFull(nb, noff, op); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if d := int(le.Uint16(nb[6:])); le.Uint16(nb) == extentMagic && d != depth-1 {
			if firstErr == nil {
				firstErr = &ParseError{Format: "ext", Op: op, Offset: noff, Err: fmt.Errorf("%w: extent node depth %d under depth %d", ErrCorrupt, d, depth)}
			}
			continue
		}
		if err := m.extents(nb, noff, level+1, op); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Block map layout: i_block[0..11] point at data blocks, [12] at a single
// indirect block, [13] double, [14] triple; 0 is a hole.
const (
	directBlocks = 12
	indSingle    = 12
	indDouble    = 13
	indTriple    = 14
)

// indirect maps a classic (ext2/3) block map.
func (m *runMapper) indirect(in *inode) error {
	le := binary.LittleEndian
	bs := uint64(m.e.sb.blockSize)
	per := bs / 4
	nblocks := (uint64(in.size) + bs - 1) / bs
	op := fmt.Sprintf("inode %d block map", in.num)
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := uint64(0); i < directBlocks && i < nblocks; i++ {
		p := uint64(le.Uint32(in.raw[iBlock+4*i:]))
		if p == 0 {
			continue
		}
		if !m.checkBlocks(p, 1) {
			note(&ParseError{Format: "ext", Op: op, Offset: in.off + iBlock + 4*int64(i), Err: fmt.Errorf("%w: block %d outside the file system", ErrCorrupt, p)})
			continue
		}
		m.add(i, p, 1, false)
	}
	lblk := uint64(directBlocks)
	span := per
	for level, slot := range []int{indSingle, indDouble, indTriple} {
		if lblk >= nblocks {
			break
		}
		p := uint64(le.Uint32(in.raw[iBlock+4*slot:]))
		if p != 0 {
			if err := m.indirectBlock(p, level, lblk, nblocks, op, in.off+iBlock+4*int64(slot)); err != nil {
				note(err)
			}
		}
		lblk += span
		span *= per
	}
	return firstErr
}

// indirectBlock reads the indirect block p of the given level (0 single,
// 1 double, 2 triple) whose first entry maps logical block lblk. ptrOff is
// where the pointer to p was read, for error messages.
func (m *runMapper) indirectBlock(p uint64, level int, lblk, nblocks uint64, op string, ptrOff int64) error {
	le := binary.LittleEndian
	if !m.checkBlocks(p, 1) {
		return &ParseError{Format: "ext", Op: op, Offset: ptrOff, Err: fmt.Errorf("%w: indirect block %d outside the file system", ErrCorrupt, p)}
	}
	if m.nodes++; uint64(m.nodes) > m.e.sb.blocksCount {
		return &ParseError{Format: "ext", Op: op, Offset: ptrOff, Err: fmt.Errorf("%w: block map larger than the file system", ErrCorrupt)}
	}
	bs := m.e.sb.blockSize
	b := make([]byte, bs)
	off := int64(p) * bs
	if err := m.e.readFull(b, off, op); err != nil {
		return err
	}
	per := uint64(bs / 4)
	span := uint64(1)
	for range level {
		span *= per
	}
	var firstErr error
	for i := uint64(0); i < per && lblk+i*span < nblocks; i++ {
		q := uint64(le.Uint32(b[4*i:]))
		if q == 0 {
			continue
		}
		if level == 0 {
			if !m.checkBlocks(q, 1) {
				if firstErr == nil {
					firstErr = &ParseError{Format: "ext", Op: op, Offset: off + 4*int64(i), Err: fmt.Errorf("%w: block %d outside the file system", ErrCorrupt, q)}
				}
				continue
			}
			m.add(lblk+i, q, 1, false)
			continue
		}
		if err := m.indirectBlock(q, level-1, lblk+i*span, nblocks, op, off+4*int64(i)); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

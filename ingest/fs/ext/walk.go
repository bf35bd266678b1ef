package ext

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"github.com/evidx/evidx/ingest/fs"
)

// Directory entry layout: {inode u32, rec_len u16, name_len u8, file_type
// u8, name}; without INCOMPAT_FILETYPE name_len is a u16. Entries are 4-byte
// aligned and never cross a block.
const (
	direntHeader = 8
	rootIno      = 2
	// maxDepth bounds directory nesting (and so recursion): deeper trees
	// are reported as damage.
	maxDepth = 4096
	// orphanDir is the virtual directory, named as TSK names it, holding
	// deleted inodes no directory entry names any more.
	orphanDir = "/$OrphanFiles"
)

// maxSparseFactor bounds what Open will read: a file (necessarily sparse)
// claiming more than this many times the volume's size is listed but not
// read, so that a corrupt size cannot make a reader produce terabytes of
// zeros.
const maxSparseFactor = 64

// dirent is one directory entry, live or recovered from slack.
type dirent struct {
	ino     uint32
	name    string
	ftype   uint8
	deleted bool  // found in the slack of another entry or with inode 0
	off     int64 // byte offset of the entry in the volume
}

// fileTypeName maps a dirent file_type to File.Type.
func fileTypeName(t uint8) string {
	switch t {
	case 1:
		return "file"
	case 2:
		return "dir"
	case 7:
		return "symlink"
	case 0:
		return ""
	}
	return "other"
}

// readDir returns the entries of directory inode in: live ones and the
// deleted ones whose names survive in record slack.
func (e *FS) readDir(in *inode) ([]dirent, error) {
	runs, mapErr := e.blockMap(in)
	var out []dirent
	if in.flags&flagInlineData != 0 {
		// Inline directory: i_block starts with the parent's inode number
		// (4 bytes), then entries; the system.data value continues them.
		for i, r := range runs {
			b := make([]byte, r.Length)
			if err := e.readFull(b, r.Offset, fmt.Sprintf("inode %d inline directory", in.num)); err != nil {
				return out, err
			}
			base := r.Offset
			if i == 0 {
				if len(b) < 4 {
					break
				}
				b, base = b[4:], base+4
			}
			out = e.parseDirBlock(b, base, in, false, out)
		}
		return out, mapErr
	}
	bs := e.sb.blockSize
	blk := make([]byte, bs)
	for _, r := range runs {
		if r.Sparse {
			continue
		}
		for o := int64(0); o < r.Length; o += bs {
			n := min(bs, r.Length-o)
			b := blk[:n]
			if err := e.readFull(b, r.Offset+o, fmt.Sprintf("inode %d directory block", in.num)); err != nil {
				e.problem("%v", err)
				continue
			}
			first := r.Logical+o == 0
			out = e.parseDirBlock(b, r.Offset+o, in, first, out)
		}
	}
	return out, mapErr
}

// parseDirBlock appends the entries of one directory block b found at
// volume offset off. In htree directories the slack of ".." in the first
// block and whole-block empty entries hold index data, not names, so their
// slack is not searched.
func (e *FS) parseDirBlock(b []byte, off int64, dir *inode, first bool, out []dirent) []dirent {
	le := binary.LittleEndian
	htree := dir.flags&flagIndex != 0
	for p := 0; p+direntHeader <= len(b); {
		ino := le.Uint32(b[p:])
		recLen := int(le.Uint16(b[p+4:]))
		if e.sb.blockSize == 65536 && (recLen == 0 || recLen == 65535) {
			recLen = 65536 // a 64 KiB rec_len does not fit 16 bits (ext4_rec_len_from_disk)
		}
		nameLen, ftype := e.nameLen(b[p:])
		if recLen < direntHeader || recLen%4 != 0 || p+recLen > len(b) || direntHeader+nameLen > recLen {
			e.problem("inode %d directory entry at %#x: %v: rec_len %d, name_len %d", dir.num, off+int64(p), ErrCorrupt, recLen, nameLen)
			return out
		}
		name := b[p+direntHeader : p+direntHeader+nameLen]
		switch {
		case ino != 0 && nameLen > 0:
			if ino > e.sb.inodesCount {
				e.problem("inode %d directory entry %q at %#x: %v: inode %d outside 1..%d", dir.num, name, off+int64(p), ErrCorrupt, ino, e.sb.inodesCount)
			} else {
				out = append(out, dirent{ino: ino, name: string(name), ftype: ftype, off: off + int64(p)})
			}
		case ino == 0 && nameLen > 0 && validName(name):
			// The first entry of a block, deleted: inode cleared, name kept.
			out = append(out, dirent{name: string(name), ftype: ftype, deleted: true, off: off + int64(p)})
		}
		used := align4(direntHeader + nameLen)
		skipSlack := htree && ((first && string(name) == "..") || (ino == 0 && recLen == len(b)))
		if recLen > used && !skipSlack {
			out = e.slackEntries(b[p+used:p+recLen], off+int64(p+used), out)
		}
		p += recLen
	}
	return out
}

// nameLen returns the name length and file type of the entry at b.
func (e *FS) nameLen(b []byte) (int, uint8) {
	if e.sb.incompat&incompatFiletype != 0 {
		return int(b[6]), b[7]
	}
	return int(binary.LittleEndian.Uint16(b[6:])), 0
}

// slackEntries searches the unused tail of a record for entries a deletion
// merged into it: 4-byte aligned, with an inode in range, a name that fits
// and contains neither '/' nor NUL, and a plausible file type.
func (e *FS) slackEntries(b []byte, off int64, out []dirent) []dirent {
	le := binary.LittleEndian
	for p := 0; p+direntHeader < len(b); {
		ino := le.Uint32(b[p:])
		recLen := int(le.Uint16(b[p+4:]))
		nameLen, ftype := e.nameLen(b[p:])
		ok := ino != 0 && ino <= e.sb.inodesCount && nameLen > 0 &&
			p+direntHeader+nameLen <= len(b) && recLen >= direntHeader+nameLen && recLen%4 == 0 &&
			ftype <= 7 && validName(b[p+direntHeader:p+direntHeader+nameLen])
		if !ok {
			p += 4
			continue
		}
		name := string(b[p+direntHeader : p+direntHeader+nameLen])
		if name != "." && name != ".." {
			out = append(out, dirent{ino: ino, name: name, ftype: ftype, deleted: true, off: off + int64(p)})
		}
		p += align4(direntHeader + nameLen)
	}
	return out
}

// validName reports a possible file name: non-empty, no '/' or NUL.
func validName(n []byte) bool {
	return len(n) > 0 && bytes.IndexByte(n, '/') < 0 && bytes.IndexByte(n, 0) < 0
}

// align4 rounds n up to a multiple of 4 (directory entries are aligned so).
func align4(n int) int { return (n + 3) &^ 3 }

// walker carries one Walk's state.
type walker struct {
	e       *FS
	ctx     context.Context
	fn      func(*fs.File) error
	visited map[uint32]bool // directories entered: cycles are damage
	named   map[uint32]bool // unallocated inodes already reported by name
}

// Walk reports every file and directory reachable from the root, then the
// deleted inodes no name reaches as /$OrphanFiles/OrphanFile-N. The order
// is the on-disk directory order, depth first.
func (e *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	w := &walker{e: e, ctx: ctx, fn: fn, visited: map[uint32]bool{}, named: map[uint32]bool{}}
	root, err := e.readInode(rootIno)
	if err != nil {
		e.problem("root directory: %v", err)
	} else if !root.isDir() {
		e.problem("root inode at %#x: %v: mode %#o is not a directory", root.off, ErrCorrupt, root.mode)
	} else {
		w.visited[rootIno] = true
		if err := w.dir(root, "", false, 0); err != nil {
			return err
		}
	}
	return w.orphans()
}

// dir emits the entries of directory in (at path prefix) and descends.
// deletedParent marks everything under a deleted directory as deleted.
func (w *walker) dir(in *inode, prefix string, deletedParent bool, depth int) error {
	if depth > maxDepth {
		w.e.problem("directory inode %d at %#x: %v: nested deeper than %d", in.num, in.off, ErrCorrupt, maxDepth)
		return nil
	}
	ents, err := w.e.readDir(in)
	if err != nil {
		w.e.problem("directory %q: %v", prefix+"/", err)
	}
	var dot, dotdot bool // the directory's own two links, listed once each
	for _, d := range ents {
		if d.name == "." && !dot && !d.deleted {
			dot = true
			continue
		}
		if d.name == ".." && !dotdot && !d.deleted {
			dotdot = true
			continue
		}
		name, odd := fs.NameComponent(d.name)
		if odd {
			w.e.problem("directory %q entry at %#x: name %q is no valid component; listed as %q", prefix+"/", d.off, d.name, name)
		}
		d.name = name
		if err := w.ctx.Err(); err != nil {
			return err
		}
		f, child := w.file(d, prefix+"/"+d.name, deletedParent)
		if err := w.fn(f); err != nil {
			return err
		}
		if child == nil {
			continue
		}
		if w.visited[child.num] {
			w.e.problem("directory %q inode %d at %#x: %v: directory cycle", f.Path, child.num, d.off, ErrCorrupt)
			continue
		}
		w.visited[child.num] = true
		if err := w.dir(child, f.Path, f.Deleted, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// file builds the File for entry d and returns the inode to descend into
// when d is a directory whose content can be read.
func (w *walker) file(d dirent, path string, deletedParent bool) (*fs.File, *inode) {
	e := w.e
	f := &fs.File{Path: path, Type: fileTypeName(d.ftype), Inode: uint64(d.ino), Deleted: d.deleted || deletedParent}
	if d.ino == 0 {
		f.Err = "deleted entry with its inode number cleared"
		return f, nil
	}
	in, err := e.readInode(d.ino)
	if err != nil {
		f.Err = err.Error()
		e.problem("%q: %v", path, err)
		return f, nil
	}
	allocated, err := e.inodeAllocated(d.ino)
	if err != nil {
		e.problem("%q: %v", path, err)
	}
	if f.Deleted {
		if allocated && in.links > 0 {
			// The name is deleted but its inode now belongs to another
			// file: the metadata is not this file's.
			f.Err = fmt.Sprintf("inode %d reallocated", d.ino)
			return f, nil
		}
		w.named[d.ino] = true
	} else if !allocated {
		e.problem("%q inode %d at %#x: %v: named by a live entry but free in the inode bitmap", path, d.ino, in.off, ErrCorrupt)
	}
	return w.fill(f, in)
}

// fill completes f from inode in: type, size, times, runs, recoverability.
func (w *walker) fill(f *fs.File, in *inode) (*fs.File, *inode) {
	e := w.e
	if t := in.typeName(); t != "" {
		f.Type = t
	}
	if f.Type == "" {
		f.Type = "other"
	}
	f.Size = in.size
	f.Mtime, f.Atime, f.Ctime, f.Btime = in.times()
	f.Mode = uint32(in.mode)
	f.UID, f.GID = in.owner()
	if in.mode&modeType == modeFile || in.isDir() || in.isSymlink() {
		runs, err := e.blockMap(in)
		f.Runs = runs
		if err != nil {
			f.Err = err.Error()
			e.problem("%q: %v", f.Path, err)
		}
	} else {
		f.Size = 0 // devices, fifos, sockets: no content
	}
	if f.Err == "" && f.Size > maxSparseFactor*e.size {
		f.Err = fmt.Sprintf("size %d is more than %d times the volume: not read", f.Size, maxSparseFactor)
	}
	f.Recoverable = f.Err == ""
	if f.Deleted {
		if reason := e.unrecoverable(f, in); reason != "" {
			f.Recoverable = false
			if f.Err == "" {
				f.Err = reason
			}
		}
	}
	if in.isDir() && (f.Recoverable || !f.Deleted) {
		return f, in
	}
	return f, nil
}

// unrecoverable says why a deleted file's content cannot be trusted, or "".
func (e *FS) unrecoverable(f *fs.File, in *inode) string {
	if in.flags&flagInlineData != 0 || in.isSymlink() && e.fastSymlink(in) {
		return "" // the content lives in the (free, not reused) inode itself
	}
	var mapped int64
	for _, r := range f.Runs {
		if r.Sparse {
			continue
		}
		mapped += r.Length
		bs := e.sb.blockSize
		for b := r.Offset / bs; b*bs < r.Offset+r.Length; b++ {
			used, err := e.blockAllocated(uint64(b))
			if err != nil || used {
				return fmt.Sprintf("block %d (offset %#x) reallocated", b, b*bs)
			}
		}
	}
	if f.Size > 0 && mapped == 0 && in.flags&flagInlineData == 0 {
		if in.flags&flagExtents != 0 {
			return "extents cleared at deletion"
		}
		return "block pointers cleared at deletion"
	}
	return ""
}

// orphans reports unallocated inodes that look like deleted files (a mode,
// and a deletion time or no links) and that no directory entry named.
func (w *walker) orphans() error {
	e := w.e
	s := e.sb
	tableBytes := int64(s.inodesPerGroup) * s.inodeSize
	for g := uint64(0); g < s.groups; g++ {
		gr := e.groups[g]
		if gr.flags&(gdBad|bgInodeUninit) != 0 {
			continue
		}
		used := int64(s.inodesPerGroup) - int64(gr.itableUnused)
		if used <= 0 {
			continue
		}
		table := make([]byte, min(tableBytes, used*s.inodeSize))
		off := int64(gr.inodeTable) * s.blockSize
		if err := e.readFull(table, off, fmt.Sprintf("group %d inode table", g)); err != nil {
			e.problem("%v", err)
			continue
		}
		for i := int64(0); i < used; i++ {
			num := uint32(g)*s.inodesPerGroup + uint32(i) + 1
			if num > s.inodesCount {
				break
			}
			if num < s.firstIno || w.named[num] {
				continue
			}
			raw := table[i*s.inodeSize : (i+1)*s.inodeSize]
			le := binary.LittleEndian
			mode := le.Uint16(raw[iMode:])
			if mode == 0 || (le.Uint32(raw[iDtime:]) == 0 && le.Uint16(raw[iLinksCount:]) != 0) {
				continue
			}
			if alloc, err := e.inodeAllocated(num); err != nil || alloc {
				continue
			}
			if err := w.ctx.Err(); err != nil {
				return err
			}
			in := e.decodeInode(num, off+i*s.inodeSize, append([]byte(nil), raw...))
			f := &fs.File{Path: orphanDir + "/OrphanFile-" + strconv.FormatUint(uint64(num), 10), Inode: uint64(num), Deleted: true}
			f, _ = w.fill(f, in)
			if err := w.fn(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// bitmapBit reads bit idx of the bitmap block blk, caching the block in
// cache[g]. A bitmap that cannot be read is damage: every bit reads as set.
func (e *FS) bitmapBit(cache *[][]byte, g uint64, blk uint64, idx uint64, what string) (bool, error) {
	if *cache == nil {
		*cache = make([][]byte, e.sb.groups)
	}
	b := (*cache)[g]
	if b == nil {
		b = make([]byte, e.sb.blockSize)
		if err := e.readFull(b, int64(blk)*e.sb.blockSize, fmt.Sprintf("group %d %s bitmap", g, what)); err != nil {
			for i := range b {
				b[i] = 0xFF
			}
			e.problem("%v", err)
		}
		(*cache)[g] = b
	}
	if idx/8 >= uint64(len(b)) {
		return true, nil
	}
	return b[idx/8]&(1<<(idx%8)) != 0, nil
}

// inodeAllocated reads the inode bitmap.
func (e *FS) inodeAllocated(num uint32) (bool, error) {
	s := e.sb
	if num == 0 || num > s.inodesCount {
		return false, fmt.Errorf("inode %d: %w: outside 1..%d", num, ErrCorrupt, s.inodesCount)
	}
	g := uint64(num-1) / uint64(s.inodesPerGroup)
	gr := e.groups[g]
	if gr.flags&gdBad != 0 {
		return true, nil
	}
	if gr.flags&bgInodeUninit != 0 {
		return false, nil
	}
	return e.bitmapBit(&e.inodeBitmaps, g, gr.inodeBitmap, uint64(num-1)%uint64(s.inodesPerGroup), "inode")
}

// blockAllocated reads the block bitmap; blocks outside the groups (the
// boot block of 1 KiB-block file systems) count as allocated.
func (e *FS) blockAllocated(blk uint64) (bool, error) {
	s := e.sb
	if blk < s.firstDataBlock || blk >= s.blocksCount {
		return true, nil
	}
	g := (blk - s.firstDataBlock) / s.blocksPerGroup
	idx := (blk - s.firstDataBlock) % s.blocksPerGroup
	gr := e.groups[g]
	if gr.flags&gdBad != 0 {
		return true, nil
	}
	if gr.flags&bgBlockUninit != 0 {
		return e.uninitUsed(g, blk), nil
	}
	return e.bitmapBit(&e.blockBitmaps, g, gr.blockBitmap, idx, "block")
}

// uninitUsed decides allocation in a group whose block bitmap was never
// written (BLOCK_UNINIT): only the superblock backup and descriptor table
// copies and other groups' bitmaps and inode tables placed there are used.
func (e *FS) uninitUsed(g, blk uint64) bool {
	s := e.sb
	start := s.firstDataBlock + g*s.blocksPerGroup
	if s.hasSuper(g) {
		descPerBlock := uint64(s.blockSize / s.descSize)
		meta := 1 + (s.groups+descPerBlock-1)/descPerBlock + s.reservedGDT
		if s.incompat&incompatMetaBG != 0 {
			meta = 1 + s.reservedGDT
		}
		if blk < start+meta {
			return true
		}
	}
	for _, m := range e.meta[g] {
		if blk >= m[0] && blk < m[1] {
			return true
		}
	}
	return false
}

// indexMetadata records, per group, the block ranges [start, end) of
// every group's bitmaps and inode table that lie in it (with flex_bg they
// cluster in the first group of a flex group), for uninitUsed.
func (e *FS) indexMetadata() {
	s := e.sb
	e.meta = make([][][2]uint64, s.groups)
	itBlocks := (uint64(s.inodesPerGroup)*uint64(s.inodeSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
	add := func(a, b uint64) {
		if a < s.firstDataBlock || a >= s.blocksCount {
			return
		}
		g := (a - s.firstDataBlock) / s.blocksPerGroup
		e.meta[g] = append(e.meta[g], [2]uint64{a, b})
	}
	for _, gr := range e.groups {
		if gr.flags&gdBad != 0 {
			continue
		}
		add(gr.blockBitmap, gr.blockBitmap+1)
		add(gr.inodeBitmap, gr.inodeBitmap+1)
		add(gr.inodeTable, gr.inodeTable+itBlocks)
	}
}

// Open returns the content of a file Walk reported, read through its byte
// runs; holes and uninitialized extents read as zeros. Deleted files are
// readable only when Recoverable.
func (e *FS) Open(f *fs.File) (io.Reader, error) {
	if f.Deleted && !f.Recoverable {
		return nil, fmt.Errorf("%s: %w: %s", f.Path, ErrNotRecoverable, f.Err)
	}
	if f.Type == "dir" {
		return nil, fmt.Errorf("%s: ext: is a directory", f.Path)
	}
	if f.Size > maxSparseFactor*e.size {
		return nil, fmt.Errorf("%s: %w: size %d is more than %d times the volume", f.Path, ErrCorrupt, f.Size, maxSparseFactor)
	}
	for _, r := range f.Runs {
		if !r.Sparse && (r.Offset < 0 || r.Offset+r.Length > e.size) {
			return nil, &ParseError{Format: "ext", Op: f.Path + " byte run", Offset: r.Offset, Err: ErrTruncated}
		}
	}
	return fs.NewRunReader(e.r, f.Runs, f.Size, "file content"), nil
}

// Unallocated returns the byte ranges of the volume no file owns according
// to the block bitmaps, plus any volume space past the file system's last
// block. Ranges are sorted and merged.
func (e *FS) Unallocated() ([]fs.Range, error) {
	s := e.sb
	bs := s.blockSize
	var free fs.RangeSet
	add := free.Add
	for g := uint64(0); g < s.groups; g++ {
		start := s.firstDataBlock + g*s.blocksPerGroup
		end := min(start+s.blocksPerGroup, s.blocksCount, uint64(e.size/bs))
		if start >= end {
			break // the rest of the file system lies past the end of the volume
		}
		gr := e.groups[g]
		if gr.flags&gdBad != 0 {
			continue
		}
		var bm []byte
		if gr.flags&bgBlockUninit == 0 {
			bm = make([]byte, bs)
			if err := e.readFull(bm, int64(gr.blockBitmap)*bs, fmt.Sprintf("group %d block bitmap", g)); err != nil {
				e.problem("%v", err)
				continue
			}
		}
		for b := start; b < end; b++ {
			var used bool
			if bm == nil {
				used = e.uninitUsed(g, b)
			} else {
				i := b - start
				used = bm[i/8]&(1<<(i%8)) != 0
			}
			if !used && int64(b+1)*bs <= e.size {
				add(int64(b)*bs, bs)
			}
		}
	}
	if fsEnd := int64(s.blocksCount) * bs; fsEnd < e.size {
		add(fsEnd, e.size-fsEnd)
	}
	return free.Ranges(), nil
}

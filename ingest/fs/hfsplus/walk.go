package hfsplus

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/evidx/evidx/ingest/fs"
)

// RsrcSuffix is appended to a file's path to name its resource fork, as
// macOS names it.
const RsrcSuffix = "/..namedfork/rsrc"

// special are the files the volume header describes, as TSK lists them.
var special = []struct {
	cnid uint32
	name string
}{
	{cnidExtents, "$ExtentsFile"}, {cnidCatalog, "$CatalogFile"}, {cnidBadBlocks, "$BadBlockFile"},
	{cnidAlloc, "$AllocationFile"}, {cnidStartup, "$StartupFile"}, {cnidAttributes, "$AttributesFile"},
}

type walker struct {
	h      *FS
	ctx    context.Context
	fn     func(*fs.File) error
	done   []bool // entries emitted
	budget int    // entries left to emit: directory hard links may repeat subtrees
}

// Walk reports the special files, then every folder and file reachable
// from the root folder in catalog order, depth first, then the records no
// folder reaches under /$OrphanFiles.
func (h *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	for _, s := range special {
		f, ok := h.specialFile(s.cnid, s.name)
		if !ok {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	c := h.cat
	w := &walker{h: h, ctx: ctx, fn: fn, done: make([]bool, len(c.entries)), budget: 4*len(c.entries) + 1000}
	if err := w.dir(cnidRoot, "", []uint32{cnidRoot}); err != nil {
		return err
	}
	// Records whose parent folder is not in the catalog (or not reached).
	for i, e := range c.entries {
		if w.done[i] {
			continue
		}
		if p, ok := c.byID[e.parent]; ok && c.entries[p].folder && e.parent != cnidRootParent {
			continue // under an orphan folder, listed below it
		}
		if e.parent == cnidRootParent && e.cnid == cnidRoot {
			w.done[i] = true
			continue
		}
		h.problem("hfsplus: catalog record %q (CNID %d) at %#x: parent folder %d not in the catalog; listed under /$OrphanFiles", e.name, e.cnid, e.off, e.parent)
		if err := w.emit(i, "/$OrphanFiles", []uint32{e.cnid}); err != nil {
			return err
		}
	}
	for i, e := range c.entries {
		if !w.done[i] {
			h.problem("hfsplus: catalog record %q (CNID %d) at %#x: %v: not reachable from the root (folder cycle)", e.name, e.cnid, e.off, ErrCorrupt)
		}
	}
	return nil
}

// dir emits the children of folder cnid under prefix; stack holds the
// folders above, so that a cycle is seen.
func (w *walker) dir(cnid uint32, prefix string, stack []uint32) error {
	if len(stack) > maxDepth {
		w.h.problem("hfsplus: folder %q (CNID %d): %v: nested deeper than %d", prefix, cnid, ErrCorrupt, maxDepth)
		return nil
	}
	for _, i := range w.h.cat.children[cnid] {
		if err := w.emit(i, prefix, stack); err != nil {
			return err
		}
	}
	return nil
}

// emit reports entry i under prefix and descends into it when a folder.
func (w *walker) emit(i int, prefix string, stack []uint32) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.budget--; w.budget < 0 {
		if w.budget == -1 {
			w.h.problem("hfsplus: %v: directory hard links repeat more entries than the catalog holds; walk cut", ErrCorrupt)
		}
		return nil
	}
	h := w.h
	e := h.cat.entries[i]
	w.done[i] = true
	name, odd := fs.NameComponent(e.name)
	if odd || name == "" {
		if name == "" {
			name = fmt.Sprintf("%%EMPTY-%d", e.cnid)
		}
		h.problem("hfsplus: catalog record at %#x: name %q is no valid component; listed as %q", e.off, e.name, name)
	}
	f, target := h.file(e, prefix+"/"+name)
	if err := w.fn(f); err != nil {
		return err
	}
	if f.Type == "file" && !strings.HasSuffix(f.Path, RsrcSuffix) {
		if rf := h.rsrcFile(e, f); rf != nil {
			if err := w.fn(rf); err != nil {
				return err
			}
		}
	}
	if target == 0 {
		return nil
	}
	for _, s := range stack {
		if s == target {
			h.problem("hfsplus: folder %q (CNID %d) at %#x: %v: folder cycle", f.Path, target, e.off, ErrCorrupt)
			return nil
		}
	}
	return w.dir(target, f.Path, append(stack[:len(stack):len(stack)], target))
}

// file builds the File of a catalog entry. target is the folder to descend
// into (0 for files).
func (h *FS) file(e entry, path string) (*fs.File, uint32) {
	r := e.rec
	f := &fs.File{
		Path: path, Inode: uint64(e.cnid), Recoverable: true,
		Btime: hfsTime(be32(r, cCreate)), Mtime: hfsTime(be32(r, cContentMod)),
		Ctime: hfsTime(be32(r, cAttrMod)), Atime: hfsTime(be32(r, cAccess)),
	}
	if e.folder {
		f.Type = "dir"
		return f, e.cnid
	}
	mode := be16(r, cMode)
	ftype, creator := be32(r, cFileType), be32(r, cCreator)
	switch {
	case fourCC(ftype) == "hlnk" && fourCC(creator) == "hfs+" && h.linkDate(be32(r, cCreate), privateFiles):
		// A file hard link (macOS gives it the private data folder's
		// creation date; TSK checks it too): the content and the number
		// are the indirect node file's, in that folder.
		ino := be32(r, cSpecial)
		ti, ok := h.cat.byID[ino]
		if !ok || h.cat.entries[ti].folder {
			f.Type, f.Recoverable = "file", false
			f.Err = fmt.Sprintf("hard link at %#x to indirect node %d: %v: no such file record", e.off, ino, ErrCorrupt)
			h.problem("hfsplus: %s: %s", path, f.Err)
			return f, 0
		}
		t := h.cat.entries[ti]
		if tt := fourCC(be32(t.rec, cFileType)); tt == "hlnk" || tt == "fdrp" {
			f.Type, f.Recoverable = "file", false
			f.Err = fmt.Sprintf("hard link at %#x to indirect node %d: %v: a link to a link", e.off, ino, ErrCorrupt)
			h.problem("hfsplus: %s: %s", path, f.Err)
			return f, 0
		}
		g, _ := h.file(t, path) // the node's times too: the link's are its own creation
		return g, 0
	case fourCC(ftype) == "fdrp" && fourCC(creator) == "MACS" && h.linkDate(be32(r, cCreate), privateDirs):
		// A directory hard link: the folder is "dir_<n>" in the private
		// directory data folder.
		ino := be32(r, cSpecial)
		if ti, ok := h.cat.byID[ino]; ok && h.cat.entries[ti].folder {
			f.Type, f.Inode = "dir", uint64(ino)
			return f, ino
		}
		f.Type, f.Recoverable = "other", false
		f.Err = fmt.Sprintf("directory hard link at %#x to folder %d: %v: no such folder", e.off, ino, ErrCorrupt)
		h.problem("hfsplus: %s: %s", path, f.Err)
		return f, 0
	}
	switch {
	case mode&modeFmt == modeLink || fourCC(ftype) == "slnk" && fourCC(creator) == "rhap":
		f.Type = "symlink"
	case mode&modeFmt == 0 || mode&modeFmt == modeReg:
		f.Type = "file"
	default:
		f.Type = "other" // devices, FIFOs, sockets
	}
	data := parseFork(r[cDataFork:])
	f.Size = int64(data.size)
	if a, ok := h.decmpfs[e.cnid]; ok && r[cOwnerFlags]&ufCompressed != 0 {
		if err := h.compressedFile(f, e, a); err != nil {
			f.Recoverable = false
			f.Err = err.Error()
			h.problem("hfsplus: %s: %v", path, err)
		}
		return f, 0
	}
	runs, bad := h.runs(e.cnid, 0, data)
	f.Runs = runs
	if bad != "" {
		f.Recoverable = false
		f.Err = fmt.Sprintf("data fork of record at %#x: %v: %s", e.off, ErrCorrupt, bad)
		h.problem("hfsplus: %s: %s", path, f.Err)
	}
	return f, 0
}

// Names of the private folders of hard links' indirect nodes, in the root.
const (
	privateFiles = "\x00\x00\x00\x00HFS+ Private Data"
	privateDirs  = ".HFS+ Private Directory Data\r"
)

// linkDate says a creation date is that of the private folder name in
// the root, which marks a hard link.
func (h *FS) linkDate(date uint32, name string) bool {
	for _, i := range h.cat.children[cnidRoot] {
		if e := h.cat.entries[i]; e.folder && e.name == name {
			return be32(e.rec, cCreate) == date
		}
	}
	return false
}

// rsrcFile is the resource fork of a file as its own File, or nil when it
// has none (or it holds the file's compressed content).
func (h *FS) rsrcFile(e entry, df *fs.File) *fs.File {
	if e.folder {
		return nil
	}
	r := e.rec
	if _, ok := h.decmpfs[e.cnid]; ok && r[cOwnerFlags]&ufCompressed != 0 {
		return nil
	}
	rf := parseFork(r[cRsrcFork:])
	if rf.size == 0 {
		return nil
	}
	f := &fs.File{Path: df.Path + RsrcSuffix, Type: "file", Inode: df.Inode, Size: int64(rf.size), Recoverable: true,
		Btime: df.Btime, Mtime: df.Mtime, Ctime: df.Ctime, Atime: df.Atime}
	runs, bad := h.runs(e.cnid, 0xff, rf)
	f.Runs = runs
	if bad != "" {
		f.Recoverable = false
		f.Err = fmt.Sprintf("resource fork of record at %#x: %v: %s", e.off, ErrCorrupt, bad)
		h.problem("hfsplus: %s: %s", f.Path, f.Err)
	}
	return f
}

// specialFile is one of the volume header's files; ok is false for the
// startup and attributes files when the volume has none.
func (h *FS) specialFile(cnid uint32, name string) (*fs.File, bool) {
	var fk fork
	switch cnid {
	case cnidExtents:
		fk = h.extents
	case cnidCatalog:
		fk = h.catalog
	case cnidAlloc:
		fk = h.alloc
	case cnidStartup:
		fk = h.startup
	case cnidAttributes:
		fk = h.attributes
	case cnidBadBlocks:
		// Its extents live in the overflow file only; its size is theirs.
		var blocks uint32
		for _, r := range h.overflow[ovKey{cnidBadBlocks, 0}] {
			for _, e := range r.ext {
				blocks += e.count
			}
		}
		fk = fork{size: uint64(blocks) * uint64(h.blockSize), blocks: blocks}
	}
	if (cnid == cnidStartup || cnid == cnidAttributes) && fk.blocks == 0 {
		return nil, false
	}
	f := &fs.File{Path: "/" + name, Type: "file", Inode: uint64(cnid), Size: int64(fk.size), Recoverable: true}
	runs, bad := h.runs(cnid, 0, fk)
	f.Runs = runs
	if bad != "" {
		f.Recoverable = false
		f.Err = fmt.Sprintf("volume header at %#x: %v: %s", h.base+vhOff, ErrCorrupt, bad)
		h.problem("hfsplus: %s: %s", f.Path, f.Err)
	}
	return f, true
}

// Open returns the content of a file Walk reported: its fork's runs, or
// the decoded decmpfs content of a compressed file.
func (h *FS) Open(f *fs.File) (io.Reader, error) {
	if f.Type == "file" && len(f.Runs) == 0 && f.Size > 0 && !strings.HasSuffix(f.Path, RsrcSuffix) {
		if i, ok := h.cat.byID[uint32(f.Inode)]; ok && f.Inode == uint64(uint32(f.Inode)) {
			if a, ok := h.decmpfs[uint32(f.Inode)]; ok && h.cat.entries[i].rec[cOwnerFlags]&ufCompressed != 0 {
				return h.openCompressed(h.cat.entries[i], a, f.Path)
			}
		}
	}
	if f.Err != "" && !f.Recoverable {
		return nil, fmt.Errorf("%s: %s", f.Path, f.Err)
	}
	return fs.NewRunReader(h.r, f.Runs, f.Size, f.Path), nil
}

// Unallocated returns the allocation blocks the allocation file marks free.
func (h *FS) Unallocated() ([]fs.Range, error) {
	runs, bad := h.runs(cnidAlloc, 0, h.alloc)
	if bad != "" {
		return nil, &ParseError{Format: "hfsplus", Op: "allocation file: " + bad, Offset: h.base + vhOff + vhAllocFork, Err: ErrCorrupt}
	}
	if need := (int64(h.totalBlocks) + 7) / 8; int64(h.alloc.size) < need {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("allocation file of %d bytes for %d blocks", h.alloc.size, h.totalBlocks), Offset: h.base + vhOff + vhAllocFork, Err: ErrCorrupt}
	}
	rd := fs.NewRunReader(h.r, runs, int64(h.alloc.size), "allocation file")
	buf := make([]byte, 64<<10)
	var out []fs.Range
	var blk uint32
	add := func(b uint32) {
		off := h.base + int64(b)*h.blockSize
		if off >= h.size {
			return
		}
		n := min(h.blockSize, h.size-off)
		if l := len(out); l > 0 && out[l-1].Off+out[l-1].Len == off {
			out[l-1].Len += n
			return
		}
		out = append(out, fs.Range{Off: off, Len: n})
	}
	for blk < h.totalBlocks {
		n, err := io.ReadFull(rd, buf[:min(int64(len(buf)), (int64(h.totalBlocks-blk)+7)/8)])
		for _, by := range buf[:n] {
			for bit := range 8 {
				if blk >= h.totalBlocks {
					break
				}
				if by&(0x80>>bit) == 0 {
					add(blk)
				}
				blk++
			}
		}
		if err != nil {
			return out, fmt.Errorf("hfsplus: allocation file at block %d: %w", blk, err)
		}
	}
	return h.subtractUsed(out), nil
}

// subtractUsed takes out of the free ranges the blocks some fork maps: a
// bitmap that marks them free is damaged (xorriso leaves the last byte of
// its bitmap zero), and the carver must not be given live files.
func (h *FS) subtractUsed(free []fs.Range) []fs.Range {
	type use struct {
		r    fs.Range
		cnid uint32
	}
	var used []use
	add := func(cnid uint32, forkType uint8, f fork) {
		runs, _ := h.runs(cnid, forkType, f)
		for _, r := range runs {
			// Whole blocks: a fork's last block is allocated past its size.
			n := (r.Length + h.blockSize - 1) / h.blockSize * h.blockSize
			used = append(used, use{fs.Range{Off: r.Offset, Len: n}, cnid})
		}
	}
	add(cnidExtents, 0, h.extents)
	add(cnidCatalog, 0, h.catalog)
	add(cnidAlloc, 0, h.alloc)
	add(cnidStartup, 0, h.startup)
	add(cnidAttributes, 0, h.attributes)
	for _, e := range h.cat.entries {
		if !e.folder {
			add(e.cnid, 0, parseFork(e.rec[cDataFork:]))
			add(e.cnid, 0xff, parseFork(e.rec[cRsrcFork:]))
		}
	}
	slices.SortFunc(used, func(a, b use) int { return cmp.Compare(a.r.Off, b.r.Off) })
	// Merged, the used ranges end in increasing order too.
	var merged []fs.Range
	for _, u := range used {
		if n := len(merged); n > 0 && u.r.Off <= merged[n-1].Off+merged[n-1].Len {
			merged[n-1].Len = max(merged[n-1].Len, u.r.Off+u.r.Len-merged[n-1].Off)
			continue
		}
		merged = append(merged, u.r)
	}
	var out []fs.Range
	var lost int64
	firstAt := int64(-1)
	j := 0
	for _, f := range free {
		for j < len(merged) && merged[j].Off+merged[j].Len <= f.Off {
			j++
		}
		cur := f
		for k := j; k < len(merged) && merged[k].Off < f.Off+f.Len; k++ {
			u := merged[k]
			if u.Off > cur.Off {
				out = append(out, fs.Range{Off: cur.Off, Len: u.Off - cur.Off})
			}
			start := max(u.Off, cur.Off)
			end := min(u.Off+u.Len, cur.Off+cur.Len)
			if firstAt < 0 {
				firstAt = start
			}
			lost += end - start
			cur = fs.Range{Off: end, Len: cur.Off + cur.Len - end}
		}
		if cur.Len > 0 {
			out = append(out, cur)
		}
	}
	var first use
	for _, u := range used {
		if firstAt >= u.r.Off && firstAt < u.r.Off+u.r.Len {
			first = u
			break
		}
	}
	if lost > 0 {
		h.problem("hfsplus: allocation file (volume header at %#x): %v: %d bytes marked free are mapped by files (first at %#x, CNID %d); not given to the carver", h.base+vhOff, ErrCorrupt, lost, firstAt, first.cnid)
	}
	return out
}

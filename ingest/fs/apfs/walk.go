package apfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/evidx/evidx/ingest/fs"
)

// File-system record types (the top 4 bits of j_key_t.obj_id_and_type).
const (
	recSnapMeta   = 1
	recInode      = 3
	recXattr      = 4
	recFileExtent = 8
	recDirRec     = 9
	recSnapName   = 11

	objIDMask = 0x0fffffffffffffff
)

// Inode value (j_inode_val_t) offsets, extended-field types and flags.
const (
	inoParent     = 0
	inoPrivate    = 8
	inoCreate     = 16
	inoMod        = 24
	inoChange     = 32
	inoAccess     = 40
	inoBSDFlags   = 68
	inoMode       = 80
	inoXfields    = 92
	xfName        = 4
	xfDstream     = 8
	bsdCompressed = 0x20

	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000

	xattrStream   = 0x1
	xattrEmbedded = 0x2

	decmpfsName  = "com.apple.decmpfs"
	rsrcForkName = "com.apple.ResourceFork"
)

// inode is what Walk keeps of one j_inode_val_t.
type inode struct {
	parent, private     uint64
	btime, mtime, ctime uint64
	atime               uint64
	mode                uint16
	bsdFlags            uint32
	name                string
	size                int64
	hasDstream          bool
	err                 string
	decmpfs             []byte // the com.apple.decmpfs xattr value
	rsrc                *xstream
}

// xstream is an extended attribute kept in a data stream of its own.
type xstream struct {
	oid  uint64
	size int64
}

type extent struct {
	logical, length int64
	block           uint64
}

type drec struct {
	parent, id uint64
	name       string
	dtype      uint16
}

// tree is one volume's file-system tree, read whole.
type tree struct {
	inodes  map[uint64]*inode
	extents map[uint64][]extent // by data-stream (private) id
	dirs    map[uint64][]drec   // by parent id, in key order
}

// readTree reads every record of a volume's file-system tree.
func (a *FS) readTree(ctx context.Context, v *volume) (*tree, error) {
	t := &tree{inodes: map[uint64]*inode{}, extents: map[uint64][]extent{}, dirs: map[uint64][]drec{}}
	what := fmt.Sprintf("volume %s file-system tree", v.name)
	w := &treeWalker{a: a, what: what, ctx: ctx}
	w.resolve = func(oid uint64) (uint64, error) {
		if v.rootPhys {
			return oid, nil
		}
		blk, ok := v.omap.lookup(oid, a.xid)
		if !ok {
			return 0, fmt.Errorf("%w: virtual oid %d not in the volume object map at %#x", ErrCorrupt, oid, v.omap.off)
		}
		return blk, nil
	}
	records := 0
	xattrs := map[uint64][]struct {
		name string
		v    []byte
	}{}
	w.fn = func(k, val []byte) error {
		if records++; records > maxRecordsPerVolume {
			return fmt.Errorf("%s: %w: more than %d records", what, ErrCorrupt, maxRecordsPerVolume)
		}
		hdr := le64(k, 0)
		oid, typ := hdr&objIDMask, hdr>>60
		switch typ {
		case recInode:
			if len(val) < inoXfields {
				a.problem("%s: inode %d: %v: value of %d bytes", what, oid, ErrCorrupt, len(val))
				return nil
			}
			t.inodes[oid] = parseInode(val, func(s string) { a.problem("%s: inode %d: %s", what, oid, s) })
		case recDirRec:
			name, ok := drecName(k)
			if !ok || len(val) < 18 {
				a.problem("%s: directory record in %d: %v: key of %d bytes, value of %d", what, oid, ErrCorrupt, len(k), len(val))
				return nil
			}
			t.dirs[oid] = append(t.dirs[oid], drec{parent: oid, id: le64(val, 0), name: name, dtype: le16(val, 16) & 0xf})
		case recFileExtent:
			if len(k) < 16 || len(val) < 16 {
				a.problem("%s: extent of %d: %v: key of %d bytes, value of %d", what, oid, ErrCorrupt, len(k), len(val))
				return nil
			}
			t.extents[oid] = append(t.extents[oid], extent{logical: int64(le64(k, 8)), length: int64(le64(val, 0) & 0x00ffffffffffffff), block: le64(val, 8)})
		case recXattr:
			if len(k) < 10 || len(val) < 4 {
				return nil
			}
			nl := int(le16(k, 8))
			if 10+nl > len(k) {
				a.problem("%s: xattr of %d: %v: name of %d bytes in a key of %d", what, oid, ErrCorrupt, nl, len(k))
				return nil
			}
			name := cString(k[10 : 10+nl])
			if name == decmpfsName || name == rsrcForkName {
				xattrs[oid] = append(xattrs[oid], struct {
					name string
					v    []byte
				}{name, val})
			}
		}
		return nil
	}
	if err := w.walk(v.rootTree); err != nil {
		return t, err
	}
	// Attach the xattrs once every inode is known.
	for oid, xs := range xattrs {
		ino := t.inodes[oid]
		if ino == nil {
			continue
		}
		for _, x := range xs {
			flags, dlen := le16(x.v, 0), int(le16(x.v, 2))
			data := x.v[4:]
			if dlen > len(data) {
				a.problem("%s: xattr %s of %d: %v: %d bytes of data in a value of %d", what, x.name, oid, ErrCorrupt, dlen, len(data))
				continue
			}
			data = data[:dlen]
			switch {
			case flags&xattrEmbedded != 0 && x.name == decmpfsName:
				ino.decmpfs = bytes.Clone(data)
			case flags&xattrStream != 0 && len(data) >= 16:
				xs := &xstream{oid: le64(data, 0), size: int64(le64(data, 8))}
				if x.name == rsrcForkName {
					ino.rsrc = xs
				} else {
					// A decmpfs header too big to embed: read it from its stream.
					ino.decmpfs = a.readStreamHead(t, xs, 1<<16)
				}
			}
		}
	}
	return t, nil
}

// readStreamHead reads up to limit bytes of an xattr data stream.
func (a *FS) readStreamHead(t *tree, xs *xstream, limit int64) []byte {
	n := min(xs.size, limit)
	if n <= 0 {
		return nil
	}
	runs, err := a.runs(t.extents[xs.oid], n)
	if err != "" {
		return nil
	}
	b, e := io.ReadAll(fs.NewRunReader(a.r, runs, n, "xattr stream"))
	if e != nil {
		return nil
	}
	return b
}

func parseInode(v []byte, bad func(string)) *inode {
	ino := &inode{
		parent: le64(v, inoParent), private: le64(v, inoPrivate),
		btime: le64(v, inoCreate), mtime: le64(v, inoMod), ctime: le64(v, inoChange), atime: le64(v, inoAccess),
		bsdFlags: le32(v, inoBSDFlags), mode: le16(v, inoMode),
	}
	x := v[inoXfields:]
	if len(x) < 4 {
		return ino
	}
	num := int(le16(x, 0))
	data := 4 + num*4
	if data > len(x) {
		bad(fmt.Sprintf("%v: %d extended fields overrun the value", ErrCorrupt, num))
		return ino
	}
	pos := data
	for i := 0; i < num; i++ {
		typ, sz := x[4+i*4], int(le16(x, 4+i*4+2))
		if pos+sz > len(x) {
			bad(fmt.Sprintf("%v: extended field %d of %d bytes overruns the value", ErrCorrupt, i, sz))
			return ino
		}
		f := x[pos : pos+sz]
		switch typ {
		case xfName:
			ino.name = cString(f)
		case xfDstream:
			if sz >= 8 {
				ino.size, ino.hasDstream = int64(le64(f, 0)), true
				if ino.size < 0 {
					bad(fmt.Sprintf("%v: data stream size %d", ErrCorrupt, ino.size))
					ino.size = 0
				}
			}
		}
		pos += (sz + 7) &^ 7
	}
	return ino
}

// drecName returns the name of a directory record key, hashed
// (j_drec_hashed_key_t) or not (j_drec_key_t).
func drecName(k []byte) (string, bool) {
	if len(k) >= 12 {
		if n := int(le32(k, 8) & 0x3ff); n > 0 && 12+n == len(k) {
			return cString(k[12 : 12+n]), true
		}
	}
	if len(k) >= 10 {
		if n := int(le16(k, 8)); n > 0 && 10+n == len(k) {
			return cString(k[10 : 10+n]), true
		}
	}
	return "", false
}

// runs turns a data stream's extents into Runs covering size bytes:
// physical extents as volume offsets, holes (block 0 or gaps) as Sparse.
func (a *FS) runs(exts []extent, size int64) ([]fs.Run, string) {
	var out []fs.Run
	var pos int64
	containerEnd := int64(a.nblk) * a.bs
	for _, e := range exts {
		if pos >= size {
			break
		}
		if e.length <= 0 || e.logical < 0 {
			continue
		}
		if e.logical < pos {
			return out, fmt.Sprintf("extent at file offset %d overlaps the previous one", e.logical)
		}
		if e.logical > pos {
			out = append(out, fs.Run{Logical: pos, Length: min(e.logical, size) - pos, Sparse: true})
			pos = min(e.logical, size)
			if pos >= size {
				break
			}
		}
		n := min(e.length, size-pos)
		if e.block == 0 {
			out = append(out, fs.Run{Logical: pos, Length: n, Sparse: true})
		} else {
			off := int64(e.block) * a.bs
			if e.block > uint64(containerEnd/a.bs) || off+n > containerEnd || off+n > a.size {
				return out, fmt.Sprintf("extent at file offset %d: block %d (%#x) past the end of the container", pos, e.block, off)
			}
			out = append(out, fs.Run{Logical: pos, Offset: off, Length: n})
		}
		pos += n
	}
	if pos < size {
		out = append(out, fs.Run{Logical: pos, Length: size - pos, Sparse: true})
	}
	return out, ""
}

func nsTime(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}

// escapeName makes an on-disk name one path component (fs.NameComponent:
// "/" as %2F, "%" as %25, "." and ".." escaped).
func escapeName(s string) string { n, _ := fs.NameComponent(s); return n }

// Walk reports every volume's tree under "/<volume name>", directories
// before their contents, in key (name-hash) order.
func (a *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	for _, v := range a.vols {
		if v.encrypted || v.omap == nil {
			continue
		}
		t, err := a.readTree(ctx, v)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			a.problem("%v", err)
		}
		if err := a.walkVolume(ctx, v, t, fn); err != nil {
			return err
		}
	}
	return nil
}

func (a *FS) walkVolume(ctx context.Context, v *volume, t *tree, fn func(*fs.File) error) error {
	root := "/" + v.dir
	visited := map[uint64]bool{rootDirID: true}
	f := a.file(v, t, root, rootDirID, 4)
	f.Type = "dir"
	if err := fn(f); err != nil {
		return err
	}
	var walkDir func(id uint64, path string, depth int) error
	walkDir = func(id uint64, path string, depth int) error {
		if depth > 4096 {
			a.problem("volume %s: %s: directories nested deeper than 4096; not followed", v.name, path)
			return nil
		}
		for _, d := range t.dirs[id] {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := escapeName(d.name)
			if name != d.name {
				a.problem("volume %s: directory %d: name %q is not a plain path component; listed as %q", v.name, id, d.name, name)
			}
			p := path + "/" + name
			f := a.file(v, t, p, d.id, d.dtype)
			isDir := f.Type == "dir"
			if isDir && visited[d.id] {
				a.problem("volume %s: %s: directory %d listed twice; not followed again", v.name, p, d.id)
				isDir = false
			}
			if err := fn(f); err != nil {
				return err
			}
			if isDir {
				visited[d.id] = true
				if err := walkDir(d.id, p, depth+1); err != nil {
					return err
				}
			} else {
				visited[d.id] = true
			}
		}
		return nil
	}
	if err := walkDir(rootDirID, root, 0); err != nil {
		return err
	}
	// Inodes no directory reaches (their names lost) are listed, not dropped.
	var orphans []uint64
	for id, ino := range t.inodes {
		if !visited[id] && id > privDirID && ino.parent != privDirID && !visited[ino.parent] {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	slices.Sort(orphans)
	od := root + "/$OrphanFiles"
	if err := fn(&fs.File{Path: od, Type: "dir", Recoverable: true}); err != nil {
		return err
	}
	for _, id := range orphans {
		name := escapeName(t.inodes[id].name)
		if name == "" {
			name = fmt.Sprint(id)
		}
		if err := fn(a.file(v, t, fmt.Sprintf("%s/%s-%d", od, name, id), id, 0)); err != nil {
			return err
		}
	}
	return nil
}

// dtype values of j_drec_val_t.flags.
const (
	dtDir = 4
	dtReg = 8
	dtLnk = 10
)

// file builds the File of inode id at path.
func (a *FS) file(v *volume, t *tree, path string, id uint64, dtype uint16) *fs.File {
	f := &fs.File{Path: path, Inode: id, Recoverable: true}
	ino := t.inodes[id]
	switch dtype {
	case dtDir:
		f.Type = "dir"
	case dtReg:
		f.Type = "file"
	case dtLnk:
		f.Type = "symlink"
	default:
		f.Type = "other"
	}
	if ino == nil {
		f.Err = fmt.Sprintf("apfs: inode record %d missing from volume %s's tree", id, v.name)
		f.Recoverable = false
		return f
	}
	switch ino.mode & sIFMT {
	case sIFDIR:
		f.Type = "dir"
	case sIFREG:
		f.Type = "file"
	case sIFLNK:
		f.Type = "symlink"
	case 0:
	default:
		f.Type = "other"
	}
	f.Btime, f.Mtime, f.Ctime, f.Atime = nsTime(ino.btime), nsTime(ino.mtime), nsTime(ino.ctime), nsTime(ino.atime)
	if f.Type != "file" {
		return f
	}
	if ino.bsdFlags&bsdCompressed != 0 && len(ino.decmpfs) >= 16 {
		c, err := a.compression(v, t, id, ino)
		if err != nil {
			f.Err = fmt.Sprintf("%s: %v", path, err)
			f.Recoverable = false
			f.Size = c.h.Size
			return f
		}
		f.Size = c.h.Size
		a.mu.Lock()
		if a.compressed == nil {
			a.compressed = map[fileKey]*compressed{}
		}
		a.compressed[fileKey{v.index, id}] = c
		a.mu.Unlock()
		return f
	}
	f.Size = ino.size
	runs, bad := a.runs(t.extents[ino.private], ino.size)
	f.Runs = runs
	if bad != "" {
		f.Err = fmt.Sprintf("apfs: %s: %s", path, bad)
		f.Recoverable = false
	}
	return f
}

// fileKey names one inode of one volume.
type fileKey struct {
	vol int
	id  uint64
}

// Open returns the content of a file Walk reported: its runs read from the
// volume, or the decoded content of a compressed file.
func (a *FS) Open(f *fs.File) (io.Reader, error) {
	if f.Type == "file" && len(f.Runs) == 0 && f.Size > 0 {
		if v := a.volumeOf(f.Path); v != nil {
			a.mu.Lock()
			c := a.compressed[fileKey{v.index, f.Inode}]
			a.mu.Unlock()
			if c != nil {
				return c.reader(a, f.Path)
			}
		}
		// runs() maps every byte of a plain file, so this is a compressed
		// file Walk did not pass to this FS: never return zeros for it.
		return nil, fmt.Errorf("%s: %w: compressed content not known (walk the file system first)", f.Path, ErrCorrupt)
	}
	if f.Err != "" && !f.Recoverable {
		return nil, fmt.Errorf("%s: %s", f.Path, f.Err)
	}
	return fs.NewRunReader(a.r, f.Runs, f.Size, f.Path), nil
}

// volumeOf finds the volume of a walked path by its first component.
func (a *FS) volumeOf(path string) *volume {
	dir, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	for _, v := range a.vols {
		if v.dir == dir {
			return v
		}
	}
	return nil
}

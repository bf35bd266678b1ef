package hfsplus

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// Catalog record types and the layout of folder and file records.
const (
	recFolder       = 1
	recFile         = 2
	recFolderThread = 3
	recFileThread   = 4

	folderLen = 88
	fileLen   = 248

	cFlags      = 2
	cID         = 8
	cCreate     = 12
	cContentMod = 16
	cAttrMod    = 20
	cAccess     = 24
	cOwnerFlags = 41
	cMode       = 42
	cSpecial    = 44 // iNodeNum of a hard link
	cFileType   = 48
	cCreator    = 52
	cDataFork   = 88
	cRsrcFork   = 168

	modeFmt  = 0o170000
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000

	ufCompressed = 0x20 // UF_COMPRESSED in the BSD owner flags
)

// entry is one folder or file record of the catalog.
type entry struct {
	parent uint32
	name   string
	cnid   uint32
	folder bool
	rec    []byte // the record's data (folderLen or fileLen bytes)
	off    int64  // volume offset of the record
}

// catalog is the catalog's folder and file records, in leaf order.
type catalog struct {
	entries  []entry
	children map[uint32][]int // by parent CNID, indexes into entries
	byID     map[uint32]int
}

// readCatalog loads every folder and file record of the catalog.
func (h *FS) readCatalog(t *tree) *catalog {
	c := &catalog{children: map[uint32][]int{}, byID: map[uint32]int{}}
	h.leaves(t, func(rec []byte, off int64) {
		if len(rec) < 8 {
			h.problem("hfsplus: catalog record at %#x: %v: %d bytes", off, ErrCorrupt, len(rec))
			return
		}
		kl := int(be16(rec, 0))
		nl := int(be16(rec, 6))
		if kl < 6 || 2+kl > len(rec) || 8+2*nl > 2+kl {
			h.problem("hfsplus: catalog record at %#x: %v: key length %d, name length %d in %d bytes", off, ErrCorrupt, kl, nl, len(rec))
			return
		}
		d := rec[2+kl:]
		if kl%2 == 1 && len(d) > 0 { // data starts on an even offset
			d = d[1:]
		}
		if len(d) < 2 {
			h.problem("hfsplus: catalog record at %#x: %v: no data after the key", off, ErrCorrupt)
			return
		}
		typ := be16(d, 0)
		var e entry
		switch typ {
		case recFolder:
			e.folder = true
			if len(d) < folderLen {
				h.problem("hfsplus: catalog folder record at %#x: %v: %d bytes", off, ErrCorrupt, len(d))
				return
			}
			e.rec = d[:folderLen]
		case recFile:
			if len(d) < fileLen {
				h.problem("hfsplus: catalog file record at %#x: %v: %d bytes", off, ErrCorrupt, len(d))
				return
			}
			e.rec = d[:fileLen]
		case recFolderThread, recFileThread:
			return // the walk goes from parents to children; threads go back
		default:
			h.problem("hfsplus: catalog record at %#x: %v: record type %d", off, ErrCorrupt, typ)
			return
		}
		e.parent, e.cnid, e.off = be32(rec, 2), be32(e.rec, cID), off
		e.name = decodeName(rec[8 : 8+2*nl])
		if i, dup := c.byID[e.cnid]; dup {
			h.problem("hfsplus: catalog record %q at %#x: %v: CNID %d already used by %q at %#x", e.name, off, ErrCorrupt, e.cnid, c.entries[i].name, c.entries[i].off)
		} else {
			c.byID[e.cnid] = len(c.entries)
		}
		c.children[e.parent] = append(c.children[e.parent], len(c.entries))
		c.entries = append(c.entries, e)
	})
	return c
}

// decodeName turns a catalog name (UTF-16BE, as stored: not normalised)
// into UTF-8; '/' is the POSIX ':' (TN1150), shown as macOS shows it.
func decodeName(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = be16(b, 2*i)
	}
	return strings.ReplaceAll(string(utf16.Decode(u)), "/", ":")
}

// attr is one extended attribute's inline value.
type attr struct {
	data []byte
	off  int64
}

// readAttributes keeps the com.apple.decmpfs attribute of every file (the
// other extended attributes are not part of a file's content).
func (h *FS) readAttributes(t *tree) {
	const name = "com.apple.decmpfs"
	h.leaves(t, func(rec []byte, off int64) {
		// key: keyLength u16, pad u16, fileID u32, startBlock u32, nameLength u16, name.
		if len(rec) < 14 {
			h.problem("hfsplus: attributes record at %#x: %v: %d bytes", off, ErrCorrupt, len(rec))
			return
		}
		kl, nl := int(be16(rec, 0)), int(be16(rec, 12))
		if kl < 12 || 2+kl > len(rec) || 14+2*nl > 2+kl {
			h.problem("hfsplus: attributes record at %#x: %v: key length %d, name length %d", off, ErrCorrupt, kl, nl)
			return
		}
		if decodeName(rec[14:14+2*nl]) != name {
			return
		}
		cnid := be32(rec, 4)
		d := rec[2+kl:]
		// HFSPlusAttrData: recordType u32 (0x10), reserved [2]u32, size u32, data.
		if len(d) < 16 || be32(d, 0) != 0x10 || int(be32(d, 12)) > len(d)-16 {
			h.problem("hfsplus: %s of file %d at %#x: %v: not an inline attribute record", name, cnid, off, ErrCorrupt)
			return
		}
		h.decmpfs[cnid] = attr{data: d[16 : 16+be32(d, 12)], off: off}
	})
}

// fourCC formats a Finder type or creator code.
func fourCC(v uint32) string {
	return fmt.Sprintf("%c%c%c%c", byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

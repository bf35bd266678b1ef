package apfs

import (
	"fmt"

	"github.com/evidx/evidx/ingest/fs"
)

// Snapshot metadata (j_snap_metadata_val_t) and space manager
// (spaceman_phys_t, chunk_info_block_t) offsets.
const (
	apsbSnapMetaType = 124
	snapNameLen      = 48
	snapName         = 50

	smBlocksPerChunk = 36
	smChunksPerCIB   = 40
	smDev            = 48 // spaceman_device_t of the main device
	smDevBlockCount  = smDev + 0
	smDevChunkCount  = smDev + 8
	smDevCIBCount    = smDev + 16
	smDevCABCount    = smDev + 20
	smDevAddrOffset  = smDev + 32
	cibCount         = 36
	cibChunks        = 40
	chunkInfoLen     = 32
	maxSpacemanBytes = 1 << 20
)

// readSnapshots lists a volume's snapshots from its snapshot metadata tree.
func (a *FS) readSnapshots(v *volume) {
	root := le64(v.sb, apsbSnapMetaOID)
	if root == 0 {
		return
	}
	phys := le32(v.sb, apsbSnapMetaType)&objStorageMask == objPhysical
	what := fmt.Sprintf("volume %s snapshot tree", v.name)
	w := &treeWalker{a: a, what: what}
	w.resolve = func(oid uint64) (uint64, error) {
		if phys {
			return oid, nil
		}
		blk, ok := v.omap.lookup(oid, a.xid)
		if !ok {
			return 0, fmt.Errorf("%w: snapshot tree oid %d not in the volume object map", ErrCorrupt, oid)
		}
		return blk, nil
	}
	w.fn = func(k, val []byte) error {
		hdr := le64(k, 0)
		if hdr>>60 != recSnapMeta || len(val) < snapName {
			return nil
		}
		n := int(le16(val, snapNameLen))
		if snapName+n > len(val) {
			a.problem("%s: snapshot %d: %v: name of %d bytes overruns the record", what, hdr&objIDMask, ErrCorrupt, n)
			return nil
		}
		s := Snapshot{Volume: v.dir, Name: cString(val[snapName : snapName+n]), XID: hdr & objIDMask}
		a.snapshots = append(a.snapshots, s)
		a.problem("apfs: volume %s has snapshot %q (xid %d); snapshots are not walked", v.name, s.Name, s.XID)
		return nil
	}
	if err := w.walk(root); err != nil {
		a.problem("%v", err)
	}
}

// Unallocated returns the blocks the space manager's bitmaps of the main
// device mark free, as byte ranges of the container.
func (a *FS) Unallocated() ([]fs.Range, error) {
	a.unallocOnce.Do(func() { a.unalloc, a.unallocErr = a.freeSpace() })
	return append([]fs.Range(nil), a.unalloc...), a.unallocErr
}

func (a *FS) freeSpace() ([]fs.Range, error) {
	oid := le64(a.nx, nxSpacemanOID)
	eo, ok := a.ephemeral[oid]
	if !ok {
		return nil, fmt.Errorf("apfs: space manager oid %d not in the checkpoint map; free space not computed", oid)
	}
	size := int64(eo.size)
	if size < a.bs || size > maxSpacemanBytes || size%a.bs != 0 {
		size = a.bs
	}
	off := int64(eo.block) * a.bs
	sm := make([]byte, size)
	if err := a.readAt(sm, off, "space manager"); err != nil {
		return nil, err
	}
	if !checksumOK(sm) {
		return nil, &ParseError{Format: "apfs", Op: "space manager", Offset: off, Err: ErrChecksum}
	}
	if objType(sm) != typeSpaceman {
		return nil, &ParseError{Format: "apfs", Op: "space manager", Offset: off, Err: fmt.Errorf("%w: object type %#x", ErrCorrupt, objType(sm))}
	}
	bpc := int64(le32(sm, smBlocksPerChunk))
	if bpc <= 0 || bpc > a.bs*8 {
		return nil, &ParseError{Format: "apfs", Op: "space manager", Offset: off + smBlocksPerChunk, Err: fmt.Errorf("%w: %d blocks per chunk", ErrCorrupt, bpc)}
	}
	ncib, ncab := int(le32(sm, smDevCIBCount)), int(le32(sm, smDevCABCount))
	ao := int(le32(sm, smDevAddrOffset))
	nAddr := ncib
	if ncab > 0 {
		nAddr = ncab
	}
	if ao < 0 || ao+nAddr*8 > len(sm) {
		return nil, &ParseError{Format: "apfs", Op: "space manager", Offset: off + smDevAddrOffset, Err: fmt.Errorf("%w: %d chunk-info addresses at %d outside the object", ErrCorrupt, nAddr, ao)}
	}
	var cibs []uint64
	for i := 0; i < nAddr; i++ {
		addr := le64(sm, ao+i*8)
		if ncab == 0 {
			cibs = append(cibs, addr)
			continue
		}
		cab, err := a.block(addr, "chunk-info address block")
		if err != nil {
			return nil, err
		}
		n := int(le32(cab, cibCount))
		if 40+n*8 > len(cab) {
			return nil, &ParseError{Format: "apfs", Op: "chunk-info address block", Offset: int64(addr) * a.bs, Err: fmt.Errorf("%w: %d addresses", ErrCorrupt, n)}
		}
		for j := 0; j < n; j++ {
			cibs = append(cibs, le64(cab, 40+j*8))
		}
	}
	devBlocks := le64(sm, smDevBlockCount)
	// A chunk-info block listed twice, or more chunks than the device has
	// blocks, is damage: bound the work by the device's size.
	seen := map[uint64]bool{}
	var chunkBlocks uint64
	var free []fs.Range
	bitmap := make([]byte, a.bs)
	for _, cb := range cibs {
		if seen[cb] {
			return nil, &ParseError{Format: "apfs", Op: "space manager", Offset: off + int64(ao), Err: fmt.Errorf("%w: chunk-info block %d listed twice", ErrCorrupt, cb)}
		}
		seen[cb] = true
		cib, err := a.block(cb, "chunk-info block")
		if err != nil {
			return nil, err
		}
		n := int(le32(cib, cibCount))
		if cibChunks+n*chunkInfoLen > len(cib) {
			return nil, &ParseError{Format: "apfs", Op: "chunk-info block", Offset: int64(cb) * a.bs, Err: fmt.Errorf("%w: %d chunks", ErrCorrupt, n)}
		}
		for j := 0; j < n; j++ {
			ci := cib[cibChunks+j*chunkInfoLen:]
			start, count, nfree, bm := le64(ci, 8), int64(le32(ci, 16)), int64(le32(ci, 20)), le64(ci, 24)
			if count > bpc || start >= devBlocks {
				return nil, &ParseError{Format: "apfs", Op: "chunk-info block", Offset: int64(cb)*a.bs + int64(cibChunks+j*chunkInfoLen), Err: fmt.Errorf("%w: chunk at block %d of %d blocks", ErrCorrupt, start, count)}
			}
			if chunkBlocks += uint64(count); chunkBlocks > devBlocks || chunkBlocks > a.nblk {
				return nil, &ParseError{Format: "apfs", Op: "chunk-info block", Offset: int64(cb) * a.bs, Err: fmt.Errorf("%w: chunks cover more than the %d blocks of the device", ErrCorrupt, devBlocks)}
			}
			switch {
			case nfree == 0:
				continue
			case bm == 0:
				if nfree == count {
					free = append(free, fs.Range{Off: int64(start) * a.bs, Len: count * a.bs})
				}
				continue
			}
			if err := a.readAt(bitmap, int64(bm)*a.bs, "space bitmap"); err != nil {
				return nil, err
			}
			for b := int64(0); b < count; b++ {
				if bitmap[b>>3]&(1<<(b&7)) == 0 {
					free = append(free, fs.Range{Off: (int64(start) + b) * a.bs, Len: a.bs})
				}
			}
		}
	}
	out := fs.MergeRanges(free)
	// Never hand the carver space past the end of what was read.
	for i := range out {
		if end := out[i].Off + out[i].Len; end > a.size {
			out[i].Len = max(0, a.size-out[i].Off)
		}
	}
	return fs.MergeRanges(out), nil
}

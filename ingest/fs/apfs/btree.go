package apfs

import (
	"context"
	"errors"
	"fmt"
)

// B-tree node (btree_node_phys_t) layout.
const (
	btnFlags      = 32
	btnLevel      = 34
	btnNKeys      = 36
	btnTableSpace = 40
	btnData       = 56
	btInfoLen     = 40 // btree_info_t at the end of a root node

	btnRoot    = 0x1
	btnLeaf    = 0x2
	btnFixedKV = 0x4
	btnHashed  = 0x8
)

// node is one parsed B-tree node.
type node struct {
	b        []byte
	off      int64 // byte offset in the container, for problems
	leaf     bool
	level    int
	nkeys    int
	fixed    bool
	toc      int // start of the table of contents
	keyStart int
	valEnd   int
	ksize    int // fixed key size (fixed trees)
	vsize    int // fixed leaf value size (fixed trees)
}

// parseNode checks a node's header. ksize/vsize are the fixed sizes from
// the tree's root (read here when the node is the root).
func (a *FS) parseNode(b []byte, off int64, ksize, vsize int) (*node, error) {
	t := objType(b)
	if t != typeBtree && t != typeBtreeNode {
		return nil, &ParseError{Format: "apfs", Op: "B-tree node", Offset: off, Err: fmt.Errorf("%w: object type %#x", ErrCorrupt, t)}
	}
	flags := le16(b, btnFlags)
	n := &node{b: b, off: off, leaf: flags&btnLeaf != 0, level: int(le16(b, btnLevel)), fixed: flags&btnFixedKV != 0}
	n.nkeys = int(le32(b, btnNKeys))
	tocOff, tocLen := int(le16(b, btnTableSpace)), int(le16(b, btnTableSpace+2))
	n.toc = btnData + tocOff
	n.keyStart = n.toc + tocLen
	n.valEnd = len(b)
	if flags&btnRoot != 0 {
		n.valEnd -= btInfoLen
		if ksize == 0 {
			ksize, vsize = int(le32(b, len(b)-btInfoLen+8)), int(le32(b, len(b)-btInfoLen+12))
		}
	}
	n.ksize, n.vsize = ksize, vsize
	entry := 8
	if n.fixed {
		entry = 4
	}
	if n.keyStart > n.valEnd || n.nkeys < 0 || n.nkeys*entry > tocLen {
		return nil, &ParseError{Format: "apfs", Op: "B-tree node", Offset: off, Err: fmt.Errorf("%w: %d keys in a table of %d bytes", ErrCorrupt, n.nkeys, tocLen)}
	}
	if n.leaf != (n.level == 0) || n.level > maxTreeDepth {
		return nil, &ParseError{Format: "apfs", Op: "B-tree node", Offset: off, Err: fmt.Errorf("%w: level %d, leaf flag %v", ErrCorrupt, n.level, n.leaf)}
	}
	if n.fixed && (ksize <= 0 || ksize > 256 || vsize < 0 || vsize > 4096) {
		return nil, &ParseError{Format: "apfs", Op: "B-tree node", Offset: off, Err: fmt.Errorf("%w: fixed key size %d value size %d", ErrCorrupt, ksize, vsize)}
	}
	return n, nil
}

// entry returns key and value i; ok is false for a damaged entry, which the
// caller names as a problem.
func (n *node) entry(i int) (k, v []byte, err error) {
	var ko, kl, vo, vl int
	if n.fixed {
		e := n.toc + i*4
		ko, vo = int(le16(n.b, e)), int(le16(n.b, e+2))
		kl, vl = n.ksize, n.vsize
		if !n.leaf {
			vl = 8
		}
	} else {
		e := n.toc + i*8
		ko, kl, vo, vl = int(le16(n.b, e)), int(le16(n.b, e+2)), int(le16(n.b, e+4)), int(le16(n.b, e+6))
	}
	ks := n.keyStart + ko
	if ks+kl > n.valEnd || kl < 8 {
		return nil, nil, fmt.Errorf("%w: entry %d key at %d+%d outside the node", ErrCorrupt, i, ks, kl)
	}
	if vo == 0xffff {
		return n.b[ks : ks+kl], nil, nil
	}
	vs := n.valEnd - vo
	if vs < n.keyStart || vs+vl > n.valEnd {
		return nil, nil, fmt.Errorf("%w: entry %d value at %d+%d outside the node", ErrCorrupt, i, vs, vl)
	}
	return n.b[ks : ks+kl], n.b[vs : vs+vl], nil
}

// treeWalker visits every leaf record of a B-tree in key order, bounding the
// depth and the number of nodes it reads, so that a node pointing back at an
// ancestor cannot loop.
type treeWalker struct {
	a       *FS
	what    string                           // tree name for problems
	resolve func(oid uint64) (uint64, error) // child oid -> block
	fn      func(k, v []byte) error
	visits  int
	seen    map[uint64]bool
	ctx     context.Context
}

// errStop ends a walk early without a problem.
var errStop = errors.New("stop")

func (w *treeWalker) walk(rootOID uint64) error {
	w.seen = map[uint64]bool{}
	return w.visit(rootOID, -1, 0, 0, 0)
}

func (w *treeWalker) visit(oid uint64, wantLevel, depth, ksize, vsize int) error {
	if depth > maxTreeDepth {
		w.a.problem("%s: B-tree deeper than %d levels at oid %d; subtree skipped", w.what, maxTreeDepth, oid)
		return nil
	}
	if w.visits++; w.visits > maxNodeVisits {
		return fmt.Errorf("%s: %w: more than %d B-tree nodes", w.what, ErrCorrupt, maxNodeVisits)
	}
	if w.ctx != nil {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	blk, err := w.resolve(oid)
	if err != nil {
		w.a.problem("%s: %v", w.what, err)
		return nil
	}
	if w.seen[blk] {
		w.a.problem("%s: B-tree node at %#x reached twice; loop cut", w.what, int64(blk)*w.a.bs)
		return nil
	}
	w.seen[blk] = true
	b, err := w.a.block(blk, w.what+" node")
	if err != nil {
		w.a.problem("%v; subtree skipped", err)
		return nil
	}
	n, err := w.a.parseNode(b, int64(blk)*w.a.bs, ksize, vsize)
	if err != nil {
		w.a.problem("%s: %v; subtree skipped", w.what, err)
		return nil
	}
	if wantLevel >= 0 && n.level != wantLevel {
		w.a.problem("%s: B-tree node at %#x: %v: level %d, want %d; subtree skipped", w.what, n.off, ErrCorrupt, n.level, wantLevel)
		return nil
	}
	for i := 0; i < n.nkeys; i++ {
		k, v, err := n.entry(i)
		if err != nil {
			w.a.problem("%s: B-tree node at %#x: %v", w.what, n.off, err)
			continue
		}
		if n.leaf {
			if err := w.fn(k, v); err != nil {
				return err
			}
			continue
		}
		if len(v) < 8 {
			w.a.problem("%s: B-tree node at %#x: %v: entry %d has no child", w.what, n.off, ErrCorrupt, i)
			continue
		}
		if err := w.visit(le64(v, 0), n.level-1, depth+1, n.ksize, n.vsize); err != nil {
			return err
		}
	}
	return nil
}

// omap is an object map: virtual oid -> physical block at the newest
// transaction not after the checkpoint's.
type omap struct {
	off     int64 // byte offset of omap_phys_t
	entries map[uint64]omapEntry
	snaps   uint32
}

type omapEntry struct {
	xid   uint64
	block uint64
	flags uint32
}

const (
	omTreeType = 40
	omTreeOID  = 48
	omSnapCnt  = 36

	omapValDeleted = 0x1
)

// readOmap reads the object map at block blk and its whole (physical) tree.
func (a *FS) readOmap(blk uint64, what string) (*omap, error) {
	b, err := a.block(blk, what)
	if err != nil {
		return nil, err
	}
	m := &omap{off: int64(blk) * a.bs, entries: map[uint64]omapEntry{}, snaps: le32(b, omSnapCnt)}
	if objType(b) != typeOmap {
		return nil, &ParseError{Format: "apfs", Op: what, Offset: m.off, Err: fmt.Errorf("%w: object type %#x, not an object map", ErrCorrupt, objType(b))}
	}
	if le32(b, omTreeType)&objStorageMask != objPhysical {
		return nil, &ParseError{Format: "apfs", Op: what, Offset: m.off, Err: fmt.Errorf("%w: object map tree is not physical", ErrCorrupt)}
	}
	w := &treeWalker{a: a, what: what, resolve: func(oid uint64) (uint64, error) { return oid, nil }}
	w.fn = func(k, v []byte) error {
		if len(k) < 16 || len(v) < 16 {
			return nil
		}
		oid, xid := le64(k, 0), le64(k, 8)
		if xid > a.xid {
			return nil // written after the checkpoint we read
		}
		if e, ok := m.entries[oid]; ok && e.xid >= xid {
			return nil
		}
		m.entries[oid] = omapEntry{xid: xid, flags: le32(v, 0), block: le64(v, 8)}
		if len(m.entries) > maxRecordsPerVolume {
			return &ParseError{Format: "apfs", Op: what, Offset: m.off, Err: fmt.Errorf("%w: more than %d mappings", ErrCorrupt, maxRecordsPerVolume)}
		}
		return nil
	}
	if err := w.walk(le64(b, omTreeOID)); err != nil {
		return m, err
	}
	return m, nil
}

func (m *omap) lookup(oid, xid uint64) (uint64, bool) {
	if m == nil {
		return 0, false
	}
	e, ok := m.entries[oid]
	if !ok || e.xid > xid || e.flags&omapValDeleted != 0 {
		return 0, false
	}
	return e.block, true
}

package hfsplus

import (
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest/fs"
)

// B-tree node descriptor and header record (TN1150 "B-Trees").
const (
	ndFLink      = 0
	ndKind       = 8
	ndHeight     = 9
	ndNumRecords = 10
	ndLen        = 14

	kindLeaf   = 0xff // -1
	kindIndex  = 0
	kindHeader = 1
	kindMap    = 2

	hdrFirstLeaf  = ndLen + 10
	hdrNodeSize   = ndLen + 18
	hdrTotalNodes = ndLen + 22
	hdrMapRecord  = 2 // record index of the node map in the header node

	minNodeSize = 512
	maxNodeSize = 32768
)

// tree is one B-tree file opened through its fork.
type tree struct {
	name     string
	runs     []fs.Run
	r        io.ReaderAt // the fork's content
	nodeSize int64
	nodes    uint32
	first    uint32
	used     []byte // the header node's map record: bit per node in use
}

// openTree reads the header node of the B-tree in fork f of file cnid.
func (h *FS) openTree(cnid uint32, f fork, name string) (*tree, error) {
	runs, bad := h.runs(cnid, 0, f)
	if bad != "" {
		return nil, &ParseError{Format: "hfsplus", Op: name + " file: " + bad, Offset: h.base + vhOff, Err: ErrCorrupt}
	}
	t := &tree{name: name, runs: runs, r: fs.NewRunReaderAt(h.r, runs, int64(f.size), name+" file")}
	b := make([]byte, minNodeSize)
	if _, err := t.r.ReadAt(b, 0); err != nil {
		return nil, &ParseError{Format: "hfsplus", Op: name + " header node", Offset: t.off(0), Err: err}
	}
	if b[ndKind] != kindHeader {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("%s header node kind %d", name, int8(b[ndKind])), Offset: t.off(ndKind), Err: ErrCorrupt}
	}
	t.nodeSize = int64(be16(b, hdrNodeSize))
	if t.nodeSize < minNodeSize || t.nodeSize > maxNodeSize || t.nodeSize&(t.nodeSize-1) != 0 {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("%s node size %d", name, t.nodeSize), Offset: t.off(hdrNodeSize), Err: ErrCorrupt}
	}
	t.nodes = be32(b, hdrTotalNodes)
	if int64(t.nodes)*t.nodeSize > int64(f.size) {
		h.problem("hfsplus: %s header at %#x: %v: %d nodes of %d bytes in a file of %d bytes; reading the nodes it has", name, t.off(hdrTotalNodes), ErrCorrupt, t.nodes, t.nodeSize, f.size)
		t.nodes = uint32(int64(f.size) / t.nodeSize)
	}
	t.first = be32(b, hdrFirstLeaf)
	if hn, err := t.node(0); err == nil {
		if recs, err := t.records(hn); err == nil && len(recs) > hdrMapRecord {
			t.used = recs[hdrMapRecord]
		}
	}
	return t, nil
}

// off maps a byte offset in the tree's file to the volume (for messages).
func (t *tree) off(o int64) int64 {
	for _, r := range t.runs {
		if o >= r.Logical && o < r.Logical+r.Length {
			return r.Offset + o - r.Logical
		}
	}
	return -1
}

// node reads node n.
func (t *tree) node(n uint32) ([]byte, error) {
	if n >= t.nodes {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("%s node %d of %d", t.name, n, t.nodes), Offset: t.off(0), Err: ErrCorrupt}
	}
	b := make([]byte, t.nodeSize)
	if _, err := t.r.ReadAt(b, int64(n)*t.nodeSize); err != nil {
		return nil, &ParseError{Format: "hfsplus", Op: fmt.Sprintf("%s node %d", t.name, n), Offset: t.off(int64(n) * t.nodeSize), Err: err}
	}
	return b, nil
}

// records splits a node into its records, checking the offset table at the
// end of the node.
func (t *tree) records(b []byte) ([][]byte, error) {
	n := int(be16(b, ndNumRecords))
	tab := len(b) - 2*(n+1)
	if tab < ndLen {
		return nil, fmt.Errorf("%w: %d records in a node of %d bytes", ErrCorrupt, n, len(b))
	}
	out := make([][]byte, 0, n)
	prev := ndLen
	for i := range n {
		s := int(be16(b, len(b)-2*(i+1)))
		e := int(be16(b, len(b)-2*(i+2)))
		if s < prev || e < s || e > tab {
			return out, fmt.Errorf("%w: record %d spans %d..%d (table at %d)", ErrCorrupt, i, s, e, tab)
		}
		out = append(out, b[s:e])
		prev = e
	}
	return out, nil
}

// inUse says the node map marks node n in use (nodes past the header's
// map, in map nodes, are taken as in use).
func (t *tree) inUse(n uint32) bool {
	if int(n/8) >= len(t.used) {
		return true
	}
	return t.used[n/8]&(0x80>>(n%8)) != 0
}

// leaves calls fn with every record of every leaf node, following the
// leaf chain from the first leaf by fLink. A broken chain (a bad node, a
// loop, a link out of range) is a problem; the leaf nodes the chain did not
// reach are then read in node order, those the node map marks in use.
func (h *FS) leaves(t *tree, fn func(rec []byte, off int64)) {
	seen := map[uint32]bool{} // grows with the nodes read, not with what the header claims
	visit := func(n uint32, b []byte) {
		recs, err := t.records(b)
		if err != nil {
			h.problem("hfsplus: %s leaf node %d at %#x: %v", t.name, n, t.off(int64(n)*t.nodeSize), err)
		}
		for _, r := range recs {
			fn(r, t.off(int64(n)*t.nodeSize+int64(cap(b)-cap(r))))
		}
	}
	broken := false
	for n := t.first; n != 0; {
		if n >= t.nodes {
			h.problem("hfsplus: %s leaf chain: %v: node %d past the tree's %d nodes", t.name, ErrCorrupt, n, t.nodes)
			broken = true
			break
		}
		if seen[n] {
			h.problem("hfsplus: %s leaf chain: %v: loop back to node %d at %#x", t.name, ErrCorrupt, n, t.off(int64(n)*t.nodeSize))
			broken = true
			break
		}
		seen[n] = true
		b, err := t.node(n)
		if err != nil {
			h.problem("%v", err)
			broken = true
			break
		}
		if b[ndKind] != kindLeaf || b[ndHeight] != 1 {
			h.problem("hfsplus: %s leaf chain: %v: node %d at %#x has kind %d height %d", t.name, ErrCorrupt, n, t.off(int64(n)*t.nodeSize), int8(b[ndKind]), b[ndHeight])
			broken = true
			break
		}
		visit(n, b)
		n = be32(b, ndFLink)
	}
	if !broken {
		return
	}
	for n := uint32(1); n < t.nodes; n++ {
		if seen[n] || !t.inUse(n) {
			continue
		}
		b, err := t.node(n)
		if err != nil {
			continue
		}
		if b[ndKind] == kindLeaf && b[ndHeight] == 1 {
			visit(n, b)
		}
	}
}

// readOverflow loads every extents-overflow record.
func (h *FS) readOverflow(t *tree) {
	h.leaves(t, func(rec []byte, off int64) {
		// key: keyLength u16 (10), forkType u8, pad u8, fileID u32, startBlock u32; then 8 extents.
		if len(rec) < 12+64 || be16(rec, 0) != 10 {
			h.problem("hfsplus: extents overflow record at %#x: %v: %d bytes, key length %d", off, ErrCorrupt, len(rec), be16(rec, 0))
			return
		}
		k := ovKey{cnid: be32(rec, 4), forkType: rec[2]}
		r := ovRec{start: be32(rec, 8), off: off}
		for i := range r.ext {
			r.ext[i] = extent{be32(rec, 12+8*i), be32(rec, 16+8*i)}
		}
		if l := h.overflow[k]; len(l) > 0 && l[len(l)-1].start >= r.start {
			h.problem("hfsplus: extents overflow record at %#x: %v: out of order (file %d block %d)", off, ErrCorrupt, k.cnid, r.start)
			return
		}
		h.overflow[k] = append(h.overflow[k], r)
	})
}

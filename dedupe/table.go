package dedupe

import (
	"encoding/binary"
)

// chunkBits sizes the arena chunks a table stores its records in: 64 KiB.
const (
	chunkBits = 16
	chunkSize = 1 << chunkBits
)

// A record in a table's arena: kind index (1 byte), value length (1 byte),
// value, first file (uint32 LE), last file (uint32 LE). A record never
// straddles chunks.
const recOverhead = 2 + 8

// table is an open-addressing hash set of (kind, value) records with the
// first and last file each was seen in during the current run. Slots hold
// tag<<40 | (arena offset + 1); 0 is empty. Everything is pointer-free so
// the garbage collector never scans it. Not safe for concurrent use.
type table struct {
	slots  []uint64
	bits   uint // len(slots) == 1<<bits
	chunks [][]byte
	fill   []int // bytes used in each chunk
	n      int   // records
	pool   *chunkPool
}

const offBits = 40

// tagBits of the hash's top are kept in each slot: they pick the home
// slot (its top log2(len(slots)) bits) and filter compares (the rest), and
// let the table grow without rehashing values. Partition uses h % n, the
// low bits, so the two are independent.
const tagBits = 64 - offBits

func tagOf(h uint64) uint64 { return h >> offBits }

// tagBits must fit the 3 bytes records carry it in.
var _ = [1]struct{}{}[tagBits-24]

// home is the first slot probed for tag in a table of 1<<bits slots.
func home(tag uint64, bits uint) uint64 { return tag >> (tagBits - bits) }

// maxSlotBits bounds the slot array (1<<24 slots, 128 MiB): home needs
// that many tag bits.
const maxSlotBits = tagBits

func (t *table) mem() int64 {
	return int64(len(t.slots))*8 + int64(len(t.chunks))*chunkSize
}

func (t *table) rec(off uint64) []byte {
	c := t.chunks[off>>chunkBits]
	return c[off&(chunkSize-1):]
}

// find returns the slot index for (k, v) and whether it holds the record.
func (t *table) find(h uint64, k byte, v string) (int, bool) {
	mask := uint64(len(t.slots) - 1)
	tag := tagOf(h)
	i := home(tag, t.bits)
	for {
		s := t.slots[i]
		if s == 0 {
			return int(i), false
		}
		if s>>offBits == tag {
			r := t.rec(s&(1<<offBits-1) - 1)
			if r[0] == k && int(r[1]) == len(v) && string(r[2:2+len(v)]) == v {
				return int(i), true
			}
		}
		i = (i + 1) & mask
	}
}

// presize makes an empty table's slot array big enough for n records
// without growing (at most half full), within maxSlotBits.
func (t *table) presize(n int64) {
	bits := uint(10)
	for bits < maxSlotBits && int64(1)<<bits < 2*n+2 {
		bits++
	}
	t.bits = bits
	t.slots = make([]uint64, 1<<bits)
}

// add inserts (k, v) seen in file f, or updates its last file. It returns
// whether the (value, file) pair is new in this run.
func (t *table) add(h uint64, k byte, v string, f uint32) bool {
	if len(t.slots) == 0 {
		t.bits = 10
		t.slots = make([]uint64, 1<<t.bits)
	}
	i, ok := t.find(h, k, v)
	if ok {
		r := t.rec(t.slots[i]&(1<<offBits-1) - 1)
		last := r[2+len(v)+4:]
		if binary.LittleEndian.Uint32(last) == f {
			return false
		}
		binary.LittleEndian.PutUint32(last, f)
		return true
	}
	off := t.alloc(recOverhead + len(v))
	r := t.rec(off)
	r[0], r[1] = k, byte(len(v))
	copy(r[2:], v)
	binary.LittleEndian.PutUint32(r[2+len(v):], f)
	binary.LittleEndian.PutUint32(r[2+len(v)+4:], f)
	t.slots[i] = tagOf(h)<<offBits | (off + 1)
	t.n++
	// At most half full: linear probing stays near 1.5 probes per hit.
	if t.n*2 >= len(t.slots) && t.bits < maxSlotBits {
		t.grow()
	}
	return true
}

// setLast is add for merging: it inserts (k, v) with last file f, or
// returns the previous last file and stores f.
func (t *table) setLast(h uint64, k byte, v string, f uint32) (prev uint32, existed bool) {
	if len(t.slots) == 0 {
		t.bits = 10
		t.slots = make([]uint64, 1<<t.bits)
	}
	i, ok := t.find(h, k, v)
	if ok {
		last := t.rec(t.slots[i]&(1<<offBits-1) - 1)[2+len(v)+4:]
		prev = binary.LittleEndian.Uint32(last)
		binary.LittleEndian.PutUint32(last, f)
		return prev, true
	}
	t.add(h, k, v, f)
	return 0, false
}

func (t *table) alloc(n int) uint64 {
	last := len(t.chunks) - 1
	if last < 0 || t.fill[last]+n > chunkSize {
		t.chunks = append(t.chunks, t.pool.get())
		t.fill = append(t.fill, 0)
		last++
	}
	off := uint64(last)<<chunkBits | uint64(t.fill[last])
	t.fill[last] += n
	return off
}

func (t *table) grow() {
	old := t.slots
	t.bits++
	t.slots = make([]uint64, 1<<t.bits)
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := home(s>>offBits, t.bits)
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// each calls fn for every record in insertion order.
func (t *table) each(fn func(k byte, v []byte, first, last uint32) error) error {
	for ci, c := range t.chunks {
		for p := 0; p < t.fill[ci]; {
			l := int(c[p+1])
			v := c[p+2 : p+2+l]
			first := binary.LittleEndian.Uint32(c[p+2+l:])
			last := binary.LittleEndian.Uint32(c[p+2+l+4:])
			if err := fn(c[p], v, first, last); err != nil {
				return err
			}
			p += recOverhead + l
		}
	}
	return nil
}

// reset empties the table, returning its chunks to the pool.
func (t *table) reset() {
	for _, c := range t.chunks {
		t.pool.put(c)
	}
	t.chunks, t.fill = t.chunks[:0], t.fill[:0]
	// The slot array goes too: a spilled table restarts small.
	t.slots, t.bits = nil, 0
	t.n = 0
}

// chunkPool recycles arena chunks between partitions so spilling does not
// turn into garbage. Safe for concurrent use.
type chunkPool struct {
	ch chan []byte
}

func newChunkPool(max int) *chunkPool { return &chunkPool{ch: make(chan []byte, max)} }

func (p *chunkPool) get() []byte {
	select {
	case c := <-p.ch:
		return c
	default:
		return make([]byte, chunkSize)
	}
}

func (p *chunkPool) put(c []byte) {
	select {
	case p.ch <- c:
	default:
	}
}

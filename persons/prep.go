package persons

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/index/runs"
	"github.com/evidx/evidx/ingest/identity"
)

// Linking is incremental in its costly part: each source's records are
// sorted once, when the source is added (Prepare), into a directory of
// its own beside its record file:
//
//	offs.bin         per record: its offset in the record file, uint64 LE
//	ids.bin          per record: hashes of its first ID number and phone (recIDs)
//	pairs-NNN.bin    per shard: (kind code, uvarint length, value, uvarint
//	                 record within the source) sorted by kind name, value
//	                 and record
//
// Build then merges the sources' sorted pairs (a k-way merge, no sort) and
// runs the union-find over them: what a relink from scratch computes,
// since the prepared files are a function of the record file alone. A
// missing or partial preparation (a load killed before it ended) is
// redone by the next Build.
const prepShards = 16

func prepPath(dir string, id int64) string {
	return filepath.Join(dir, fmt.Sprintf("src-%06d.d", id))
}

// Prepare sorts source id's records for linking (see above) from its
// record file; done already is not done again. Loads prepare while they
// record (Recorder), so this only runs for sources whose preparation was
// cut short.
func Prepare(ctx context.Context, dir string, id int64, sortBytes int) error {
	final := prepPath(dir, id)
	if _, err := os.Stat(filepath.Join(final, "pairs-000.bin")); err == nil {
		return nil
	}
	// A small source needs no large sort buffer (it is mapped whole).
	if fi, err := os.Stat(recPath(dir, id)); err == nil {
		sortBytes = int(min(int64(sortBytes), max(8<<20, 2*fi.Size())))
	}
	p, err := newPreparer(final+".tmp", sortBytes)
	if err != nil {
		return err
	}
	defer p.discard()
	rr, f, err := openRecords(recPath(dir, id))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Loaded before linking existed, or its records were lost: no records.
	case err != nil:
		return err
	default:
		defer f.Close()
		for {
			err := rr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := p.add(rr.off, rr.rec.Items); err != nil {
				return err
			}
			if p.rec&0xffff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
	}
	return p.finish(ctx, final)
}

// preparer writes one source's prepared files into a temporary directory.
type preparer struct {
	tmp     string
	s       *runs.Sorter
	of, if_ *os.File
	ow, iw  *bufio.Writer
	rec     uint64
	v       []byte
}

func newPreparer(tmp string, sortBytes int) (*preparer, error) {
	if sortBytes <= 0 {
		sortBytes = 256 << 20
	}
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	p := &preparer{tmp: tmp}
	var err error
	if p.s, err = runs.New(filepath.Join(tmp, "sort"), prepShards, sortBytes); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("persons: %w", err)
	}
	create := func(name string) (*os.File, *bufio.Writer, error) {
		f, err := os.OpenFile(filepath.Join(tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("persons: %w", err)
		}
		return f, bufio.NewWriterSize(f, 256<<10), nil
	}
	if p.of, p.ow, err = create("offs.bin"); err == nil {
		p.if_, p.iw, err = create("ids.bin")
	}
	if err != nil {
		p.discard()
		return nil, err
	}
	return p, nil
}

// add takes the next record, at offset off of the record file.
func (p *preparer) add(off int64, items []Item) error {
	if p.rec >= math.MaxUint32-1 {
		return fmt.Errorf("persons: more than %d records in one source", uint32(math.MaxUint32-1))
	}
	var ob [8]byte
	var ib [16]byte
	binary.LittleEndian.PutUint64(ob[:], uint64(off))
	if _, err := p.ow.Write(ob[:]); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	rec := p.rec
	for _, it := range items {
		if !it.Kind.IsIdentity() && it.Kind != "key" || strings.IndexByte(it.Value, 0) >= 0 {
			continue
		}
		at := -1
		switch it.Kind {
		case identity.CNID:
			at = 0
		case identity.Phone:
			at = 8
		}
		if at >= 0 && binary.LittleEndian.Uint64(ib[at:]) == 0 {
			binary.LittleEndian.PutUint64(ib[at:], max(dedupe.Hash(string(it.Kind), it.Value), 1))
		}
		shard := dedupe.Partition(string(it.Kind), it.Value, prepShards)
		p.v = append(append(p.v[:0], it.Value...), 0, byte(rec>>32), byte(rec>>24), byte(rec>>16), byte(rec>>8), byte(rec))
		if err := p.s.Add(shard, string(it.Kind), string(p.v), ""); err != nil {
			return fmt.Errorf("persons: %w", err)
		}
	}
	if _, err := p.iw.Write(ib[:]); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	p.rec++
	return nil
}

// finish sorts, writes the pairs files and makes the directory final.
func (p *preparer) finish(ctx context.Context, final string) error {
	if err := p.ow.Flush(); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := p.iw.Flush(); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := p.s.Finish(ctx); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	var buf []byte
	for shard := range prepShards {
		f, err := os.OpenFile(filepath.Join(p.tmp, fmt.Sprintf("pairs-%03d.bin", shard)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		w := bufio.NewWriterSize(f, 256<<10)
		err = p.s.Merge(ctx, shard, func(e runs.Entry) error {
			if len(e.Value) < recSuffix {
				return fmt.Errorf("persons: sort entry of %d bytes", len(e.Value))
			}
			c, ok := kindCode(identity.Kind(e.Kind))
			if !ok {
				return fmt.Errorf("persons: sort entry of kind %q", e.Kind)
			}
			v := e.Value[:len(e.Value)-recSuffix]
			t := e.Value[len(e.Value)-5:]
			r := uint64(t[0])<<32 | uint64(t[1])<<24 | uint64(t[2])<<16 | uint64(t[3])<<8 | uint64(t[4])
			buf = append(buf[:0], c)
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
			buf = binary.AppendUvarint(buf, r)
			_, err := w.Write(buf)
			return err
		})
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("persons: %s: %w", final, err)
		}
	}
	p.s.Close()
	p.s = nil
	p.of.Close()
	p.if_.Close()
	os.RemoveAll(filepath.Join(p.tmp, "sort"))
	os.RemoveAll(final) // a stale partial copy
	if err := os.Rename(p.tmp, final); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
}

// discard drops an unfinished preparation.
func (p *preparer) discard() {
	if p.s != nil {
		p.s.Close()
	}
	if p.of != nil {
		p.of.Close()
	}
	if p.if_ != nil {
		p.if_.Close()
	}
	os.RemoveAll(p.tmp)
}

// pairCursor reads one source's pairs of a shard.
type pairCursor struct {
	r     *bufio.Reader
	f     *os.File
	src   int    // index of the source, in load order
	base  uint32 // its first record
	code  byte
	kind  identity.Kind
	value []byte
	rec   uint32
}

func (c *pairCursor) next() (bool, error) {
	code, err := c.r.ReadByte()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if int(code) >= len(itemKinds) {
		return false, fmt.Errorf("%s: %w", c.f.Name(), errCorrupt)
	}
	l, err := binary.ReadUvarint(c.r)
	if err != nil || l > maxItem+64 {
		return false, fmt.Errorf("%s: %w", c.f.Name(), cmpErr(err))
	}
	if cap(c.value) < int(l) {
		c.value = make([]byte, l)
	}
	c.value = c.value[:l]
	if _, err := io.ReadFull(c.r, c.value); err != nil {
		return false, fmt.Errorf("%s: %w", c.f.Name(), cmpErr(err))
	}
	r, err := binary.ReadUvarint(c.r)
	if err != nil || r >= math.MaxUint32 {
		return false, fmt.Errorf("%s: %w", c.f.Name(), cmpErr(err))
	}
	c.code, c.kind, c.rec = code, itemKinds[code], c.base+uint32(r)
	return true, nil
}

// cursorHeap orders cursors by (kind name, value, source): a value's
// records then come in ascending record order.
type cursorHeap []*pairCursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	if c := strings.Compare(string(h[i].kind), string(h[j].kind)); c != 0 {
		return c < 0
	}
	if c := strings.Compare(string(h[i].value), string(h[j].value)); c != 0 {
		return c < 0
	}
	return h[i].src < h[j].src
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*pairCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeShard yields each value of shard once with its records over all
// sources (ascending; valid until fn returns).
func (b *builder) mergeShard(ctx context.Context, shard int, fn func(kind string, value []byte, recs []uint32) error) error {
	var h cursorHeap
	defer func() {
		for _, c := range h {
			c.f.Close()
		}
	}()
	for i, src := range b.sources {
		if b.lo[i] == b.lo[i+1] {
			continue
		}
		f, err := os.Open(filepath.Join(prepPath(b.dir, src.ID), fmt.Sprintf("pairs-%03d.bin", shard)))
		if err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		c := &pairCursor{r: bufio.NewReaderSize(f, 256<<10), f: f, src: i, base: b.lo[i]}
		ok, err := c.next()
		if err != nil || !ok {
			f.Close()
			if err != nil {
				return err
			}
			continue
		}
		h = append(h, c)
	}
	heap.Init(&h)
	var (
		kind  string
		value []byte
		recs  []uint32
		n     int
		src   int
	)
	for len(h) > 0 {
		c := h[0]
		// Join keys join within one database (source) only.
		if len(recs) > 0 && (string(c.kind) != kind || string(c.value) != string(value) || kind == "key" && c.src != src) {
			if err := fn(kind, value, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
		if len(recs) == 0 {
			kind, value, src = string(c.kind), append(value[:0], c.value...), c.src
		}
		recs = append(recs, c.rec)
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			c.f.Close()
			heap.Pop(&h)
		}
		if n++; n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if len(recs) > 0 {
		return fn(kind, value, recs)
	}
	return nil
}

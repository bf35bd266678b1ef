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
	"strconv"
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

// Prepare sorts source id's records for linking (see above); done already
// is not done again.
func Prepare(ctx context.Context, dir string, id int64, sortBytes int) error {
	final := prepPath(dir, id)
	if _, err := os.Stat(filepath.Join(final, "pairs-000.bin")); err == nil {
		return nil
	}
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer os.RemoveAll(tmp)
	if sortBytes <= 0 {
		sortBytes = 256 << 20
	}
	// A small source needs no large sort buffer (it is mapped whole).
	if fi, err := os.Stat(recPath(dir, id)); err == nil {
		sortBytes = int(min(int64(sortBytes), max(8<<20, 2*fi.Size())))
	}
	s, err := runs.New(filepath.Join(tmp, "sort"), prepShards, sortBytes)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer s.Close()
	if err := prepRead(ctx, recPath(dir, id), id, tmp, s); err != nil {
		return err
	}
	if err := s.Finish(ctx); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	var buf []byte
	for shard := range prepShards {
		f, err := os.OpenFile(filepath.Join(tmp, fmt.Sprintf("pairs-%03d.bin", shard)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		err = s.Merge(ctx, shard, func(e runs.Entry) error {
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
			return fmt.Errorf("persons: source %d: %w", id, err)
		}
	}
	s.Close()
	os.RemoveAll(filepath.Join(tmp, "sort"))
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
}

// prepRead reads a record file into offs.bin, ids.bin and the sorter.
func prepRead(ctx context.Context, path string, id int64, tmp string, s *runs.Sorter) error {
	rr, f, err := openRecords(path)
	if errors.Is(err, os.ErrNotExist) {
		// Loaded before linking existed, or its records were lost: no records.
		for _, n := range []string{"offs.bin", "ids.bin"} {
			if err := os.WriteFile(filepath.Join(tmp, n), nil, 0o600); err != nil {
				return fmt.Errorf("persons: %w", err)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	create := func(name string) (*os.File, *bufio.Writer, error) {
		f, err := os.OpenFile(filepath.Join(tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("persons: %w", err)
		}
		return f, bufio.NewWriterSize(f, 1<<20), nil
	}
	of, ow, err := create("offs.bin")
	if err != nil {
		return err
	}
	defer of.Close()
	idf, iw, err := create("ids.bin")
	if err != nil {
		return err
	}
	defer idf.Close()
	prefix := "s" + strconv.FormatInt(id, 10) + ":"
	var (
		ob  [8]byte
		ib  [16]byte
		v   []byte
		rec uint64
	)
	for {
		err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if rec >= math.MaxUint32-1 {
			return fmt.Errorf("persons: %s: more than %d records", path, uint32(math.MaxUint32-1))
		}
		binary.LittleEndian.PutUint64(ob[:], uint64(rr.off))
		if _, err := ow.Write(ob[:]); err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		clear(ib[:])
		for _, it := range rr.rec.Items {
			if !it.Kind.IsIdentity() && it.Kind != "key" || strings.IndexByte(it.Value, 0) >= 0 {
				continue
			}
			if at := map[identity.Kind]int{identity.CNID: 1, identity.Phone: 9}[it.Kind]; at > 0 && binary.LittleEndian.Uint64(ib[at-1:]) == 0 {
				binary.LittleEndian.PutUint64(ib[at-1:], max(dedupe.Hash(string(it.Kind), it.Value), 1))
			}
			v = v[:0]
			if it.Kind == "key" {
				v = append(v, prefix...) // keys join within one database only
			}
			v = append(v, it.Value...)
			shard := dedupe.Partition(string(it.Kind), string(v), prepShards)
			v = append(v, 0, byte(rec>>32), byte(rec>>24), byte(rec>>16), byte(rec>>8), byte(rec))
			if err := s.Add(shard, string(it.Kind), string(v), ""); err != nil {
				return fmt.Errorf("persons: %w", err)
			}
		}
		if _, err := iw.Write(ib[:]); err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		rec++
		if rec&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := ow.Flush(); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := iw.Flush(); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
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
	)
	for len(h) > 0 {
		c := h[0]
		if len(recs) > 0 && (string(c.kind) != kind || string(c.value) != string(value)) {
			if err := fn(kind, value, recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
		if len(recs) == 0 {
			kind, value = string(c.kind), append(value[:0], c.value...)
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

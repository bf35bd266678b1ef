// Package runs sorts the sightings of one dataset by identity in bounded
// memory, as an external merge sort. Sightings are packed into a buffer; a
// full buffer is sorted, shard by shard, by (kind, value) in the background,
// identities repeated in it are folded into one record, and the result is
// written as one run file with a section per shard (record.go). Merge then
// reads one shard's section of every run and yields each identity once, in
// key order, with how many times the dataset holds it and where it was
// first seen.
//
// The index needs key order because SQLite inserts keys that arrive in
// order into a B-tree about three times faster than the same keys in random
// order: every leaf page is filled once, while it is in the cache.
package runs

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxShards is the largest shard count a Sorter takes.
const MaxShards = 1 << 16

// maxKinds bounds distinct kinds (one byte in records and keys).
const maxKinds = 255

// Entry is one identity of a shard as Merge yields it. Value and Loc are
// only valid until the callback returns.
type Entry struct {
	Kind  string
	Value []byte
	Loc   []byte // where the dataset first holds it
	Count int64  // how many times the dataset holds it
}

// Sorter collects sightings (Add, from one goroutine at a time), sorts and
// spills them (in the background, at most two buffers at once), and merges
// them per shard (Merge, concurrently for different shards). Close removes
// its files.
type Sorter struct {
	dir      string
	shards   int
	dataCap  int // bytes of sightings a buffer holds
	window   int // keys a buffer holds per shard
	slabSize int

	kinds    []string // kind index → name; sorted by index, not name
	texts    []string // location texts of numbered keys
	lastText int

	// The last location Add split, and what it split into.
	lastLoc    string
	lastLocSet bool
	lastNum    uint64
	lastLocID  uint16
	lastIsNum  bool

	cur     *chunk
	free    chan *chunk
	made    []*chunk // every buffer, unmapped by Close
	pending sync.WaitGroup
	next    int // seq of the next run

	mu   sync.Mutex
	runs []*run // by seq: file order
	err  error

	added   int64
	spilled atomic.Int64 // records written to runs
	merged  atomic.Int64 // records read back by Merge
	closed  bool
}

// chunk is one buffer: the sightings' bytes, and their sort keys in one
// window per shard, so that each shard's keys are sorted alone (a few MB
// that stay in cache). Identities are spread over the shards by a hash, so
// the windows fill evenly. Both live in one anonymous mapping outside the Go
// heap: the garbage collector neither scans nor counts them, and the
// process's memory is the buffers plus what the parsers allocate.
type chunk struct {
	slab  []byte
	data  []byte // len = bytes used, cap = dataCap
	keys  []key  // window i is keys[i*window : (i+1)*window]
	fill  []int  // keys used per window
	nkeys int
}

// shardKeys returns shard i's keys in c.
func (s *Sorter) shardKeys(c *chunk, i int) []key {
	return c.keys[i*s.window : i*s.window+c.fill[i]]
}

// key sorts a buffered sighting: k0 = kind(8) value[0:7], k1 =
// value[7:15], k2 = value[15:23], then the whole value. The sort is stable
// and keys are added in file order, so the first of equal identities is the
// first in the file. Phones, ID numbers and bank cards are decided by the
// words alone, which also hold their whole value.
//
// A location that is a text and a number ("line 1234567") is kept in the
// key when the value is short: llen = numbered | the text's index in the
// Sorter's table, off = the number. Then nothing of the sighting is in
// chunk.data, and writing the sorted run reads only the keys. Otherwise
// chunk.data holds, at off, the value when longer than the words, then the
// location (llen bytes).
type key struct {
	k0, k1, k2 uint64
	off        uint32
	vlen, llen uint16
}

// numbered marks a key's llen as a location text index, off its number.
const numbered = 1 << 15

// maxLen bounds a value (longer is refused); maxLoc a location (longer is
// cut).
const (
	maxLen = 1<<16 - 1
	maxLoc = numbered - 1
)

func (k *key) isNumbered() bool { return k.llen&numbered != 0 }

// inData reports whether k has bytes in chunk.data.
func (k *key) inData() bool { return k.vlen > prefixLen || !k.isNumbered() }

// prefixLen is how many value bytes the key words hold.
const prefixLen = 23

// run is one sorted, folded spill file: sections[s] is shard s's
// byte range [start, end).
type run struct {
	path     string
	sections [][2]int64
	records  int64
}

const buffers = 3 // one filling, two being sorted and written

// dataShare is the percentage of a buffer for the sightings' bytes, the
// rest is keys. Phones and ID numbers with a numbered location ("line 12")
// need no bytes besides their key; e-mails keep their value and location.
const dataShare = 35

// minData is the least data space of a buffer: the longest sighting
// (value and location of maxLen bytes each) always fits.
const minData = 256 << 10

// New returns a Sorter that spills run files into dir (created 0700 when
// first needed) and uses about memBytes of memory for its buffers (at
// least about 1 MiB): half for the sightings' bytes, half for their keys.
func New(dir string, shards int, memBytes int) (*Sorter, error) {
	if shards < 1 || shards > MaxShards {
		return nil, fmt.Errorf("runs: shard count %d out of range", shards)
	}
	per := memBytes / buffers
	dataCap := max(per*dataShare/100, minData) &^ 63 // keys after the data stay aligned
	window := max((per-dataCap)/int(unsafe.Sizeof(key{}))/shards, 16)
	s := &Sorter{dir: dir, shards: shards, dataCap: dataCap, window: window, free: make(chan *chunk, buffers)}
	s.slabSize = dataCap + window*shards*int(unsafe.Sizeof(key{}))
	return s, nil
}

// Add queues one sighting of shard. It blocks while both background sorts
// are busy and the buffer is full, which keeps the memory bounded.
func (s *Sorter) Add(shard int, kind, value, loc string) error {
	if s.closed {
		return errors.New("runs: Add after Finish")
	}
	if shard < 0 || shard >= s.shards {
		return fmt.Errorf("runs: shard %d out of range", shard)
	}
	k, err := s.kindIndex(kind)
	if err != nil {
		return err
	}
	if s.cur == nil {
		if s.cur, err = s.get(); err != nil {
			return err
		}
	}
	if len(value) > maxLen {
		return fmt.Errorf("runs: value of %d bytes (limit %d)", len(value), maxLen)
	}
	if len(loc) > maxLoc {
		loc = loc[:maxLoc]
	}
	var (
		num   uint64
		locID uint16
		isNum bool
	)
	if len(value) <= prefixLen {
		// A row's identities share its location: split it once.
		if loc != s.lastLoc || !s.lastLocSet {
			s.lastLoc, s.lastLocSet, s.lastNum, s.lastIsNum = loc, true, 0, false
			if pfx, n, ok := splitNumber(loc); ok && n <= math.MaxUint32 {
				s.lastLocID, s.lastIsNum = s.locText(pfx)
				s.lastNum = n
			}
		}
		num, locID, isNum = s.lastNum, s.lastLocID, s.lastIsNum
	}
	need := 0
	if len(value) > prefixLen {
		need += len(value)
	}
	if !isNum {
		need += len(loc)
	}
	c := s.cur
	off := len(c.data)
	if off+need > cap(c.data) || c.fill[shard] == s.window {
		s.submit()
		if s.cur, err = s.get(); err != nil {
			return err
		}
		c = s.cur
		off = 0
	}
	// Within cap: never reallocated.
	if len(value) > prefixLen {
		c.data = append(c.data, value...)
	}
	kk := key{off: uint32(off), vlen: uint16(len(value)), llen: uint16(len(loc))}
	if isNum {
		kk.off, kk.llen = uint32(num), numbered|locID
	} else {
		c.data = append(c.data, loc...)
	}
	k0, k1, k2 := prefix(value)
	kk.k0, kk.k1, kk.k2 = uint64(k)<<56|k0, k1, k2
	c.keys[shard*s.window+c.fill[shard]] = kk
	c.fill[shard]++
	c.nkeys++
	s.added++
	return nil
}

// prefix packs the first 23 bytes of v big-endian into 56+64+64 bits,
// zero-padded: comparing the words orders like comparing the bytes, except
// that padding ties "a" with "a\x00" (the full compare settles those).
func prefix(v string) (k0, k1, k2 uint64) {
	var b [24]byte
	copy(b[1:], v)
	k0 = binary.BigEndian.Uint64(b[0:8])
	k1 = binary.BigEndian.Uint64(b[8:16])
	k2 = binary.BigEndian.Uint64(b[16:24])
	return
}

// kindRanks returns, per kind index, the kind's rank by name.
func kindRanks(kinds []string) []byte {
	order := make([]int, len(kinds))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(kinds[a], kinds[b]) })
	rank := make([]byte, len(kinds))
	for r, i := range order {
		rank[i] = byte(r)
	}
	return rank
}

// locText returns the index of a location text in the table, adding it;
// false when the table is full.
func (s *Sorter) locText(p string) (uint16, bool) {
	if s.lastText < len(s.texts) && s.texts[s.lastText] == p {
		return uint16(s.lastText), true
	}
	for i, t := range s.texts {
		if t == p {
			s.lastText = i
			return uint16(i), true
		}
	}
	if len(s.texts) == maxLoc {
		return 0, false
	}
	s.texts = append(s.texts, p)
	s.lastText = len(s.texts) - 1
	return uint16(s.lastText), true
}

func (s *Sorter) kindIndex(kind string) (byte, error) {
	for i, k := range s.kinds {
		if k == kind {
			return byte(i), nil
		}
	}
	if len(s.kinds) == maxKinds {
		return 0, fmt.Errorf("runs: more than %d kinds", maxKinds)
	}
	s.kinds = append(s.kinds, kind)
	return byte(len(s.kinds) - 1), nil
}

// get returns an empty buffer: a new one while fewer than buffers exist,
// else the next one a background sort releases.
func (s *Sorter) get() (*chunk, error) {
	select {
	case c := <-s.free:
		return c, s.failed()
	default:
	}
	if len(s.made) < buffers {
		c, err := s.newChunk()
		if err != nil {
			return nil, err
		}
		s.made = append(s.made, c)
		return c, nil
	}
	c := <-s.free
	return c, s.failed()
}

func (s *Sorter) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// submit hands the current buffer to a background sort.
func (s *Sorter) submit() {
	c := s.cur
	s.cur = nil
	if c == nil || c.nkeys == 0 {
		if c != nil {
			s.free <- c
		}
		return
	}
	seq := s.next
	s.next++
	s.mu.Lock()
	s.runs = append(s.runs, nil)
	s.mu.Unlock()
	kinds, texts := slices.Clone(s.kinds), slices.Clone(s.texts) // Add may append while the sort runs
	s.pending.Add(1)
	go func() {
		defer s.pending.Done()
		r, err := s.spill(seq, c, kinds, texts)
		c.data, c.nkeys = c.data[:0], 0
		clear(c.fill)
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
		}
		s.runs[seq] = r
		s.mu.Unlock()
		s.free <- c
	}()
}

// Finish spills what is buffered and waits for the background sorts. Add
// may not be called after it; Merge may.
func (s *Sorter) Finish(ctx context.Context) error {
	if !s.closed {
		s.submit()
		s.closed = true
	}
	s.pending.Wait()
	s.unmap() // the merge reads the run files only
	if err := s.failed(); err != nil {
		return err
	}
	return s.limitRuns(ctx)
}

// maxFanIn bounds the runs one merge reads at once (each holds an open
// file and a read buffer of 64 KiB, more only for longer records).
var maxFanIn = 128

// limitRuns merges the oldest runs, maxFanIn at a time, into one run each,
// until at most maxFanIn remain: memory and open files stay bounded
// whatever the input size. Merged runs are consecutive, so the first
// location of an identity is still the first in file order.
func (s *Sorter) limitRuns(ctx context.Context) error {
	for len(s.runs) > maxFanIn {
		group := s.runs[:maxFanIn]
		merged, err := s.mergeInto(ctx, group)
		if err != nil {
			return err
		}
		for _, r := range group {
			os.Remove(r.path)
			s.spilled.Add(-r.records)
		}
		s.spilled.Add(merged.records)
		s.mu.Lock()
		s.runs = append([]*run{merged}, s.runs[maxFanIn:]...)
		s.mu.Unlock()
	}
	return nil
}

// mergeInto merges group into one new run file.
func (s *Sorter) mergeInto(ctx context.Context, group []*run) (*run, error) {
	path := filepath.Join(s.dir, fmt.Sprintf("run-%06d", s.next))
	s.next++
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer f.Close()
	r := &run{path: path, sections: make([][2]int64, s.shards)}
	w := bufio.NewWriterSize(f, 1<<20)
	index := map[string]byte{}
	for i, k := range s.kinds {
		index[k] = byte(i)
	}
	var (
		rw  recordWriter
		pos int64
		out []byte
	)
	for shard := range s.shards {
		r.sections[shard][0] = pos
		rw.reset()
		err := s.mergeRuns(ctx, group, shard, false, func(e Entry) error {
			r.records++
			out = rw.append(out[:0], index[e.Kind], e.Value, e.Count, e.Loc)
			pos += int64(len(out))
			_, err := w.Write(out)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("runs: merge into %s: %w", path, err)
		}
		r.sections[shard][1] = pos
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("runs: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("runs: write %s: %w", path, err)
	}
	return r, nil
}

// unmap releases the buffers; no sort may be running.
func (s *Sorter) unmap() {
	for _, c := range s.made {
		unix.Munmap(c.slab)
		c.slab, c.data, c.keys = nil, nil, nil
	}
	s.made = nil
}

// Added returns how many sightings Add took.
func (s *Sorter) Added() int64 { return s.added }

// Spilled returns how many records the runs hold (identities folded per
// buffer); Merged how many of them Merge has read back so far.
func (s *Sorter) Spilled() int64 { return s.spilled.Load() }

// Merged: see Spilled.
func (s *Sorter) Merged() int64 { return s.merged.Load() }

// compareKeys orders two sightings of a buffer.
func compareKeys(data []byte, a, b *key) int {
	if c := cmp.Compare(a.k0, b.k0); c != 0 {
		return c
	}
	if c := cmp.Compare(a.k1, b.k1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.k2, b.k2); c != 0 {
		return c
	}
	// Equal words: the first 23 bytes are equal (a shorter value padded
	// with zeros), so a value of at most 23 bytes is a prefix of the
	// other.
	if a.vlen > prefixLen && b.vlen > prefixLen {
		return bytes.Compare(valueAt(data, a), valueAt(data, b))
	}
	return cmp.Compare(a.vlen, b.vlen)
}

// valueAt returns the value bytes of k, which must be longer than the
// key words.
func valueAt(data []byte, k *key) []byte {
	return data[k.off : k.off+uint32(k.vlen)]
}

// locAt returns the location bytes of k, which must not be numbered.
func locAt(data []byte, k *key) []byte {
	p := k.off
	if k.vlen > prefixLen {
		p += uint32(k.vlen)
	}
	return data[p : p+uint32(k.llen)]
}

// valueOf returns the value of k, from its key words when they hold all
// of it (no access to the buffer), else from the buffer.
func valueOf(dst []byte, data []byte, k *key) []byte {
	if k.vlen > prefixLen {
		return append(dst[:0], valueAt(data, k)...)
	}
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:8], k.k0<<8)
	binary.BigEndian.PutUint64(b[7:15], k.k1)
	binary.BigEndian.PutUint64(b[15:23], k.k2)
	return append(dst[:0], b[:k.vlen]...)
}

// spill sorts c, folds equal identities and writes run seq: per record
// kind(1) uvarint(len value) value uvarint(count) uvarint(len loc) loc,
// grouped by shard.
func (s *Sorter) spill(seq int, c *chunk, kinds, texts []string) (*run, error) {
	// Keys carry the kind's index; runs are ordered by kind name, which
	// is SQLite's order of the shard's key: every insert of a first load
	// is then an append, which SQLite does without a seek from the root.
	rank := kindRanks(kinds)
	index := make([]byte, len(kinds))
	for i, r := range rank {
		index[r] = byte(i)
	}
	data := c.data
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	path := filepath.Join(s.dir, fmt.Sprintf("run-%06d", seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	r := &run{path: path, sections: make([][2]int64, s.shards)}
	w := bufio.NewWriterSize(f, 1<<20)
	fail := func(err error) (*run, error) {
		f.Close()
		return nil, fmt.Errorf("runs: write %s: %w", path, err)
	}
	var (
		rw  recordWriter
		pos int64
	)
	var (
		out    []byte
		n      int64
		v      []byte
		staged []byte
		tmp    []key
	)
	for shard := range s.shards {
		keys := s.shardKeys(c, shard)
		if len(keys) == 0 {
			continue
		}
		for i := range keys {
			k := &keys[i]
			k.k0 = k.k0&(1<<56-1) | uint64(rank[k.k0>>56])<<56
		}
		if cap(tmp) < len(keys) {
			tmp = make([]key, len(keys))
		}
		sortKeys(data, keys, tmp)
		// Copy the sightings' bytes into key order first. Each copy misses
		// the cache (the bytes are in file order), but in a loop this short
		// the processor has many misses in flight at once; in the loop
		// below, which writes the run, it had one.
		staged = staged[:0]
		for i := range keys {
			k := &keys[i]
			if !k.inData() {
				continue
			}
			end := k.off + uint32(k.vlen) + uint32(k.llen)
			if k.vlen <= prefixLen {
				end = k.off + uint32(k.llen)
			} else if k.isNumbered() {
				end = k.off + uint32(k.vlen)
			}
			n := uint32(len(staged))
			staged = append(staged, data[k.off:end]...)
			k.off = n
		}
		data := staged
		r.sections[shard][0] = pos
		rw.reset()
		for i := 0; i < len(keys); {
			first := &keys[i]
			v = valueOf(v, data, first)
			j := i + 1
			for j < len(keys) && keys[j].k0 == first.k0 && keys[j].k1 == first.k1 && keys[j].k2 == first.k2 &&
				keys[j].vlen == first.vlen && (first.vlen <= prefixLen || bytes.Equal(valueAt(data, &keys[j]), v)) {
				j++
			}
			if first.isNumbered() {
				out = rw.appendNumbered(out[:0], index[first.k0>>56], v, int64(j-i), texts[first.llen&^numbered], uint64(first.off))
			} else {
				out = rw.append(out[:0], index[first.k0>>56], v, int64(j-i), locAt(data, first))
			}
			if _, err := w.Write(out); err != nil {
				return fail(err)
			}
			pos += int64(len(out))
			n++
			i = j
		}
		r.sections[shard][1] = pos
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("runs: write %s: %w", path, err)
	}
	s.spilled.Add(n)
	r.records = n
	return r, nil
}

// cursor reads one run's section of a shard.
type cursor struct {
	r     io.Reader
	buf   []byte // read from r; buf[pos:] not yet decoded
	pos   int
	eof   bool
	path  string
	off   int64 // of the current record in the section, for errors
	seq   int
	ranks []byte // kind index → rank by name
	rank  byte
	p0    uint64 // value[0:8] then value[8:16], zero-padded: most
	p1    uint64 // compares end here
	rec   recordReader
}

// fill reads more of the section into c.buf, keeping c.buf[c.pos:].
func (c *cursor) fill() error {
	rest := copy(c.buf[:cap(c.buf)], c.buf[c.pos:])
	c.buf, c.pos = c.buf[:rest], 0
	if rest == cap(c.buf) { // a record longer than the buffer: grow it
		c.buf = slices.Grow(c.buf, cap(c.buf))
	}
	for len(c.buf) < cap(c.buf) {
		k, err := c.r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+k]
		if err == io.EOF {
			c.eof = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// next decodes the next record; io.EOF at the end of the section.
func (c *cursor) next() error {
	for {
		if c.pos == len(c.buf) && c.eof {
			return io.EOF
		}
		n, err := c.rec.decode(c.buf[c.pos:])
		if err == nil {
			c.pos += n
			c.off += int64(n)
			break
		}
		// A record cut by the end of the buffer: read on, unless the
		// buffer held a whole record's worth or the section has ended.
		if c.eof || len(c.buf)-c.pos >= maxRecord {
			return fmt.Errorf("runs: %s at byte %d: %w", c.path, c.off, err)
		}
		if err := c.fill(); err != nil {
			return fmt.Errorf("runs: %s at byte %d: %w", c.path, c.off, err)
		}
	}
	if int(c.rec.kind) >= len(c.ranks) {
		return fmt.Errorf("runs: %s at byte %d: kind index %d out of range", c.path, c.off, c.rec.kind)
	}
	c.rank = c.ranks[c.rec.kind]
	var p [16]byte
	copy(p[:], c.rec.value)
	c.p0, c.p1 = binary.BigEndian.Uint64(p[0:8]), binary.BigEndian.Uint64(p[8:16])
	return nil
}

// lessCursor orders cursors by identity, then by run: the earlier run holds the
// earlier sighting.
func lessCursor(a, b *cursor) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if a.p0 != b.p0 {
		return a.p0 < b.p0
	}
	if a.p1 != b.p1 {
		return a.p1 < b.p1
	}
	if c := bytes.Compare(a.rec.value, b.rec.value); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

// Merge yields every identity of shard once, in key order (kind name, then
// value bytes), with its count summed over the runs and its
// first location. fn's error stops the merge and is returned. Merge may run
// concurrently for different shards, after Finish.
func (s *Sorter) Merge(ctx context.Context, shard int, fn func(Entry) error) error {
	if !s.closed {
		return errors.New("runs: Merge before Finish")
	}
	s.mu.Lock()
	runs := slices.Clone(s.runs)
	s.mu.Unlock()
	return s.mergeRuns(ctx, runs, shard, true, fn)
}

// mergeRuns merges shard's sections of runs (in file order), folding equal
// identities. progress says whether to count the records in Merged.
func (s *Sorter) mergeRuns(ctx context.Context, runs []*run, shard int, progress bool, fn func(Entry) error) error {
	kinds := s.kinds // no Add after Finish: read-only now
	ranks := kindRanks(kinds)
	var h []*cursor
	for seq, r := range runs {
		if r == nil {
			continue
		}
		sec := r.sections[shard]
		if sec[1] <= sec[0] {
			continue
		}
		f, err := os.Open(r.path)
		if err != nil {
			return fmt.Errorf("runs: %w", err)
		}
		defer f.Close()
		c := &cursor{r: io.NewSectionReader(f, sec[0], sec[1]-sec[0]), buf: make([]byte, 0, 64<<10),
			rec:  recordReader{prevKind: -1},
			path: fmt.Sprintf("%s section %d", r.path, shard), seq: seq, ranks: ranks}
		if err := c.next(); err != nil {
			if err == io.EOF {
				continue
			}
			return err
		}
		h = append(h, c)
	}
	// A binary heap of cursors, smallest first.
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && lessCursor(h[r], h[l]) {
				m = r
			}
			if !lessCursor(h[m], h[i]) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	// advance moves the smallest cursor on, dropping it at its end.
	advance := func() error {
		if err := h[0].next(); err != nil {
			if err != io.EOF {
				return err
			}
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		if len(h) > 0 {
			down(0)
		}
		return nil
	}
	var (
		e     Entry
		value []byte
		loc   []byte
		read  int64
		iter  int
	)
	if err := ctx.Err(); err != nil {
		return err
	}
	for len(h) > 0 {
		if iter++; iter&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		top := h[0]
		kind := top.rec.kind
		value = append(value[:0], top.rec.value...)
		loc = top.rec.appendLoc(loc[:0])
		count := top.rec.count
		read++
		if err := advance(); err != nil {
			return err
		}
		for len(h) > 0 && h[0].rec.kind == kind && bytes.Equal(h[0].rec.value, value) {
			count += h[0].rec.count
			read++
			if err := advance(); err != nil {
				return err
			}
		}
		e = Entry{Kind: kinds[kind], Value: value, Loc: loc, Count: count}
		if err := fn(e); err != nil {
			return err
		}
		if read >= 4096 && progress {
			s.merged.Add(read)
			read = 0
		}
	}
	if progress {
		s.merged.Add(read)
	}
	return nil
}

// Close waits for the background sorts and removes the run files.
func (s *Sorter) Close() error {
	s.closed = true
	s.pending.Wait()
	s.unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, r := range s.runs {
		if r == nil {
			continue
		}
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = err
		}
	}
	s.runs = nil
	os.Remove(s.dir) // only if empty: the caller may keep other files there
	return first
}

// newChunk maps a buffer. Transparent huge pages are asked for (where the
// kernel grants them on request): a buffer of a hundred MB is then faulted
// in by 2 MB, not 4 KB; only a hint.
func (s *Sorter) newChunk() (*chunk, error) {
	slab, err := unix.Mmap(-1, 0, s.slabSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("runs: map a %d-byte buffer: %w", s.slabSize, err)
	}
	if len(slab) >= 4<<20 {
		_ = unix.Madvise(slab, unix.MADV_HUGEPAGE)
	}
	keys := unsafe.Slice((*key)(unsafe.Pointer(&slab[s.dataCap])), s.window*s.shards)
	return &chunk{slab: slab, data: slab[:0:s.dataCap], keys: keys, fill: make([]int, s.shards)}, nil
}

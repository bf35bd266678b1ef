package dedupe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/klauspost/compress/s2"
	"golang.org/x/sync/errgroup"
)

// Errors returned by the counter.
var (
	ErrUnknownKind = errors.New("dedupe: unknown identity kind")
	ErrTooLong     = errors.New("dedupe: value longer than 255 bytes")
	ErrCorruptRun  = errors.New("dedupe: corrupt spill run")
)

// kindNames maps a record's kind byte to its name (identity.Kinds order).
var kindNames = func() []string {
	var n []string
	for _, k := range identity.Kinds() {
		n = append(n, string(k))
	}
	return n
}()

// Defaults of Options.
const (
	DefaultPartitions = 256
	DefaultMemBytes   = 512 << 20
)

// flushBytes is the s2 block size of run files: 64 KiB, one staging chunk
// (a partition working from disk compresses each chunk as it fills).
const flushBytes = 64 << 10

// Options configure a Counter. Zero fields take the defaults.
type Options struct {
	// Partitions is the number of hash partitions (default 256). Each is
	// deduplicated on its own at the end: more partitions, smaller sets.
	Partitions int
	// MemBytes bounds the sightings staged in memory (default 512 MiB);
	// beyond it, partitions stream to run files in TmpDir, s2-compressed.
	MemBytes int64
	// TmpDir holds run files (default os.TempDir()); Close removes them.
	TmpDir string
}

// Counter counts distinct identities per kind overall and per file, in
// one pass over the data, in two phases. Add hashes each sighting to its
// partition and appends it there (sequential writes, no lookups); Result
// then deduplicates each partition on its own, comparing full normalised
// bytes, with sets small enough to stay in the CPU caches, two partitions
// at a time. Staged partitions move to disk once MemBytes is reached, so
// memory stays bounded whatever the input size.
//
// Add may be called from many goroutines at once, but all Adds of file i
// must have returned before the first Add of file i+1: files are counted
// one after another, and file indexes only grow.
type Counter struct {
	opts   Options
	parts  []partition
	total  atomic.Int64 // bytes of staging chunks held over all partitions
	disk   atomic.Bool  // partitions stream to run files
	pool   *chunkPool
	dir    string
	spills atomic.Int64
	closed bool
	// spillMu serialises the switch to disk and guards dir.
	spillMu sync.Mutex
	// scratch recycles Add's per-call buffers.
	scratch sync.Pool
	// rot picks where each Add starts walking the partitions.
	rot atomic.Uint64
}

// partition stages the records of one hash partition: kind (1 byte),
// value length (1 byte), the hash's table tag (3 bytes, so the final
// dedupe need not hash again), value, file index (uvarint).
type partition struct {
	mu   sync.Mutex
	full [][]byte // filled staging chunks, oldest first (memory mode)
	buf  []byte   // the chunk being filled (chunkSize capacity, pooled)
	n    int64    // records staged in all (the final set's size bound)
	// written is the uncompressed bytes in the run file.
	written int64
	f       *os.File   // run file, once on disk
	w       *s2.Writer // compresses into f
	err     error
}

// New returns a Counter; its spill directory is created when first needed.
func New(opts Options) (*Counter, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = DefaultPartitions
	}
	if opts.MemBytes <= 0 {
		opts.MemBytes = DefaultMemBytes
	}
	if opts.TmpDir == "" {
		opts.TmpDir = os.TempDir()
	}
	c := &Counter{opts: opts, parts: make([]partition, opts.Partitions)}
	c.pool = newChunkPool(2 * opts.Partitions)
	return c, nil
}

// Spills returns how many partitions were moved to run files on disk.
func (c *Counter) Spills() int64 { return c.spills.Load() }

// scratch is per-call state of Add, pooled to keep Add allocation-free.
type scratch struct {
	h     []uint64
	order []int32
	start []int32
}

// Add counts the sightings of file (an index from 0, see Counter).
func (c *Counter) Add(file int, batch []identity.Sighting) error {
	np := len(c.parts)
	s, _ := c.scratch.Get().(*scratch)
	if s == nil {
		s = new(scratch)
	}
	defer c.scratch.Put(s)
	if cap(s.h) < len(batch) {
		s.h = make([]uint64, len(batch))
		s.order = make([]int32, len(batch))
	}
	h, order := s.h[:len(batch)], s.order[:len(batch)]
	if len(s.start) != np+1 {
		s.start = make([]int32, np+1)
	}
	start := s.start
	clear(start)
	for i := range batch {
		if identity.KindIndex(batch[i].Kind) < 0 {
			return fmt.Errorf("%w %q", ErrUnknownKind, batch[i].Kind)
		}
		if len(batch[i].Value) > 255 || batch[i].Value == "" {
			return ErrTooLong
		}
		h[i] = Hash(string(batch[i].Kind), batch[i].Value)
		start[h[i]%uint64(np)+1]++
	}
	for p := 1; p <= np; p++ {
		start[p] += start[p-1]
	}
	// Counting sort of batch indices by partition; start[p] ends at the
	// end of p's range.
	for i := range batch {
		p := h[i] % uint64(np)
		order[start[p]] = int32(i)
		start[p]++
	}
	// Walk the partitions from a different place each call: goroutines
	// adding at once would otherwise queue on the same locks in the same
	// order, in lockstep.
	first := int(c.rot.Add(1)*97) % np
	for j := 0; j < np; j++ {
		p := (first + j) % np
		lo := int32(0)
		if p > 0 {
			lo = start[p-1]
		}
		if hi := start[p]; hi > lo {
			if err := c.addPart(p, file, batch, h, order[lo:hi]); err != nil {
				return err
			}
		}
	}
	if !c.disk.Load() && c.total.Load() > c.opts.MemBytes {
		return c.toDisk()
	}
	return nil
}

func (c *Counter) addPart(p, file int, batch []identity.Sighting, h []uint64, idx []int32) error {
	pt := &c.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.err != nil {
		return pt.err
	}
	var fb [binary.MaxVarintLen32]byte
	fn := binary.PutUvarint(fb[:], uint64(file))
	added := 0
	for _, i := range idx {
		v := batch[i].Value
		if len(pt.buf)+5+len(v)+fn > cap(pt.buf) {
			// Chunks, not one growing slice: appending never copies.
			if len(pt.buf) > 0 {
				if pt.w != nil {
					if err := c.flush(pt); err != nil {
						pt.err = err
						return err
					}
				} else {
					pt.full = append(pt.full, pt.buf)
					pt.buf = nil
				}
			}
			if pt.buf == nil {
				pt.buf = c.pool.get()[:0]
				added += cap(pt.buf)
			}
		}
		pt.n++
		tag := tagOf(h[i])
		k := byte(identity.KindIndex(batch[i].Kind))
		var pk [8]byte
		if n := pack(k, v, &pk); n > 0 {
			pt.buf = append(pt.buf, k|packedFlag, byte(n), byte(tag>>16), byte(tag>>8), byte(tag))
			pt.buf = append(pt.buf, pk[:n]...)
		} else {
			pt.buf = append(pt.buf, k, byte(len(v)), byte(tag>>16), byte(tag>>8), byte(tag))
			pt.buf = append(pt.buf, v...)
		}
		pt.buf = append(pt.buf, fb[:fn]...)
	}
	if added > 0 {
		c.total.Add(int64(added))
	}
	return nil
}

// flush compresses pt's staged records into its run file. The caller
// holds pt.mu.
func (c *Counter) flush(pt *partition) error {
	for _, b := range pt.full {
		if _, err := pt.w.Write(b); err != nil {
			return fmt.Errorf("dedupe: spill %s: %w", pt.f.Name(), err)
		}
		pt.written += int64(len(b))
		c.total.Add(-int64(cap(b)))
		c.pool.put(b[:cap(b)])
	}
	pt.full = nil
	if _, err := pt.w.Write(pt.buf); err != nil {
		return fmt.Errorf("dedupe: spill %s: %w", pt.f.Name(), err)
	}
	pt.written += int64(len(pt.buf))
	pt.buf = pt.buf[:0]
	return nil
}

// toDisk moves every partition to a run file: from now on partitions
// stage at most flushBytes in memory each.
func (c *Counter) toDisk() error {
	c.spillMu.Lock()
	defer c.spillMu.Unlock()
	if c.disk.Load() {
		return nil
	}
	if c.dir == "" {
		d, err := os.MkdirTemp(c.opts.TmpDir, "evidx-dedupe-")
		if err != nil {
			return fmt.Errorf("dedupe: spill dir: %w", err)
		}
		c.dir = d
	}
	for p := range c.parts {
		pt := &c.parts[p]
		pt.mu.Lock()
		err := c.open(p, pt)
		if err == nil {
			err = c.flush(pt)
		}
		if err != nil {
			pt.err = err
		}
		pt.mu.Unlock()
		if err != nil {
			return err
		}
	}
	c.disk.Store(true)
	return nil
}

func (c *Counter) open(p int, pt *partition) error {
	name := filepath.Join(c.dir, fmt.Sprintf("p%04d.s2", p))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dedupe: spill: %w", err)
	}
	pt.f = f
	pt.w = s2.NewWriter(f, s2.WriterConcurrency(1), s2.WriterBlockSize(flushBytes))
	c.spills.Add(1)
	return nil
}

// Result is the outcome of counting: distinct identities per kind over all
// files, and per file (indexed by file) its own distinct identities.
type Result struct {
	Unique  map[identity.Kind]int64
	PerFile []map[identity.Kind]int64
}

// Result deduplicates every partition and returns the counts. It must be
// called once, after the last Add; it uses two goroutines.
func (c *Counter) Result(files int) (Result, error) {
	nk := len(kindNames)
	unique := make([]int64, nk)
	perFile := make([]int64, files*nk)
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(2)
	for p := range c.parts {
		g.Go(func() error {
			u, pf, err := c.countPart(&c.parts[p], files)
			if err != nil {
				return err
			}
			mu.Lock()
			for k := range u {
				unique[k] += u[k]
			}
			for i := range pf {
				perFile[i] += pf[i]
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	r := Result{Unique: map[identity.Kind]int64{}, PerFile: make([]map[identity.Kind]int64, files)}
	for k, n := range unique {
		r.Unique[identity.Kind(kindNames[k])] = n
	}
	for f := 0; f < files; f++ {
		r.PerFile[f] = map[identity.Kind]int64{}
		for k := 0; k < nk; k++ {
			r.PerFile[f][identity.Kind(kindNames[k])] = perFile[f*nk+k]
		}
	}
	return r, nil
}

// packedFlag marks a record whose value is packed (see pack).
const packedFlag = 0x80

// pack writes a compact, injective encoding of the canonical values that
// make up most of a leak into pk and returns its length, or 0 to store v
// as is: a Chinese mobile "+86" + 11 digits as a 5-byte integer, an
// 18-character ID number (17 digits and a check character 0-9 or X) as
// an 8-byte integer. Equal values pack equal and different values
// differently, so comparing packed bytes is comparing the full values.
func pack(k byte, v string, pk *[8]byte) int {
	switch {
	case int(k) == identity.KindIndex(identity.Phone) && len(v) == 14 && v[:3] == "+86":
		var n uint64
		for i := 3; i < 14; i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0
			}
			n = n*10 + uint64(c-'0')
		}
		for i := 0; i < 5; i++ { // 10^11 < 2^40
			pk[i] = byte(n >> (8 * i))
		}
		return 5
	case int(k) == identity.KindIndex(identity.CNID) && len(v) == 18:
		var n uint64
		for i := 0; i < 17; i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return 0
			}
			n = n*10 + uint64(c-'0')
		}
		var check uint64
		switch c := v[17]; {
		case c >= '0' && c <= '9':
			check = uint64(c - '0')
		case c == 'X':
			check = 10
		default:
			return 0
		}
		n |= check << 57 // 10^17 < 2^57; check < 16
		for i := 0; i < 8; i++ {
			pk[i] = byte(n >> (8 * i))
		}
		return 8
	}
	return 0
}

// subBits splits a partition once more, in memory, by the low bits of
// the records' tags before deduplicating: each sub-bucket's set is small
// enough to stay in the CPU's L2 cache, where a partition's whole set
// (about 170k keys at 20M rows) would miss on every lookup.
const subBits = 4

// countPart deduplicates one partition: its run file (older records)
// then its staged records, sub-bucket by sub-bucket, keeping the records'
// order within each. Records of a file are contiguous in time, so a
// (value, file) pair is new exactly when the value's last file differs.
func (c *Counter) countPart(pt *partition, files int) ([]int64, []int64, error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.err != nil {
		return nil, nil, pt.err
	}
	nk := len(kindNames)
	unique := make([]int64, nk)
	pf := make([]int64, files*nk)

	// Gather the partition's records in arrival order, in one allocation.
	size := pt.written
	for _, b := range pt.full {
		size += int64(len(b))
	}
	size += int64(len(pt.buf))
	if size >= 1<<32 {
		return nil, nil, fmt.Errorf("dedupe: partition of %d bytes: use more partitions", size)
	}
	all := make([]byte, 0, size)
	if pt.w != nil {
		if err := pt.w.Close(); err != nil {
			return nil, nil, fmt.Errorf("dedupe: spill %s: %w", pt.f.Name(), err)
		}
		pt.w = nil
		if _, err := pt.f.Seek(0, io.SeekStart); err != nil {
			return nil, nil, err
		}
		all = all[:pt.written]
		if _, err := io.ReadFull(s2.NewReader(pt.f), all); err != nil {
			return nil, nil, fmt.Errorf("dedupe: run %s: %w", pt.f.Name(), err)
		}
	}
	for _, b := range append(pt.full, pt.buf) {
		all = append(all, b...)
	}
	for _, b := range pt.full {
		c.pool.put(b[:cap(b)])
	}
	if pt.buf != nil {
		c.pool.put(pt.buf[:cap(pt.buf)])
	}
	pt.full, pt.buf = nil, nil

	var offs [1 << subBits][]uint32
	err := scanRecords(all, func(off int, k byte, tag uint64, v []byte, f uint64) error {
		if int(k&^packedFlag) >= nk || f >= uint64(files) || len(v) == 0 {
			return ErrCorruptRun
		}
		b := tag & (1<<subBits - 1)
		offs[b] = append(offs[b], uint32(off))
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dedupe: partition records: %w", err)
	}
	for b := range offs {
		t := table{pool: c.pool}
		t.presize(int64(len(offs[b])))
		for _, off := range offs[b] {
			k, tag, v, f := recordAt(all, int(off))
			// s aliases all only for the call: the table copies it.
			s := unsafe.String(&v[0], len(v))
			prev, existed := t.setLast(tag<<offBits, k, s, uint32(f))
			// The packed flag is part of the compared kind byte (packed
			// and plain spellings never meet: packing is decided by the
			// value alone), but not of the counters' index.
			ki := int(k &^ packedFlag)
			if !existed {
				unique[ki]++
				pf[int(f)*nk+ki]++
			} else if uint64(prev) != f {
				pf[int(f)*nk+ki]++
			}
		}
		t.reset()
		offs[b] = nil
	}
	return unique, pf, nil
}

// recordAt decodes the record at off, which scanRecords has checked.
func recordAt(all []byte, off int) (k byte, tag uint64, v []byte, f uint64) {
	l := int(all[off+1])
	tag = uint64(all[off+2])<<16 | uint64(all[off+3])<<8 | uint64(all[off+4])
	f, _ = binary.Uvarint(all[off+5+l:])
	return all[off], tag, all[off+5 : off+5+l], f
}

// scanRecords walks the records in all, checking their framing.
func scanRecords(all []byte, fn func(off int, k byte, tag uint64, v []byte, f uint64) error) error {
	var rec int64
	for p := 0; p < len(all); rec++ {
		if len(all)-p < 5 {
			return fmt.Errorf("record %d at %#x: %w", rec, p, ErrCorruptRun)
		}
		l := int(all[p+1])
		if len(all)-p < 5+l+1 {
			return fmt.Errorf("record %d at %#x: %w", rec, p, ErrCorruptRun)
		}
		f, m := binary.Uvarint(all[p+5+l:])
		if m <= 0 {
			return fmt.Errorf("record %d at %#x: %w", rec, p, ErrCorruptRun)
		}
		tag := uint64(all[p+2])<<16 | uint64(all[p+3])<<8 | uint64(all[p+4])
		if err := fn(p, all[p], tag, all[p+5:p+5+l], f); err != nil {
			return fmt.Errorf("record %d at %#x: %w", rec, p, err)
		}
		p += 5 + l + m
	}
	return nil
}

// chunksReader reads a list of byte slices as one stream.
type chunksReader struct{ c [][]byte }

func (s *chunksReader) Read(p []byte) (int, error) {
	for len(s.c) > 0 && len(s.c[0]) == 0 {
		s.c = s.c[1:]
	}
	if len(s.c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.c[0])
	s.c[0] = s.c[0][n:]
	return n, nil
}

// readRecords streams staged records from r, parsing them straight out of
// a buffer refilled in large reads (records may straddle reads). v passed
// to fn is valid only during the call.
func readRecords(r io.Reader, fn func(k byte, tag uint64, v []byte, file uint64) error) error {
	buf := make([]byte, 256<<10)
	have := 0 // bytes in buf
	var rec int64
	eof := false
	for {
		n, err := fill(r, buf[have:])
		have += n
		if err == io.EOF {
			eof = true
		} else if err != nil {
			return fmt.Errorf("record %d: %w", rec, err)
		}
		p := 0
		for {
			// Header: kind, length, 3-byte tag; then value, then file.
			if have-p < 5 {
				break
			}
			l := int(buf[p+1])
			if have-p < 5+l+1 {
				break
			}
			f, m := binary.Uvarint(buf[p+5+l : have])
			if m == 0 {
				break // file index cut by the read
			}
			if m < 0 {
				return fmt.Errorf("record %d: %w", rec, ErrCorruptRun)
			}
			tag := uint64(buf[p+2])<<16 | uint64(buf[p+3])<<8 | uint64(buf[p+4])
			if err := fn(buf[p], tag, buf[p+5:p+5+l], f); err != nil {
				return fmt.Errorf("record %d: %w", rec, err)
			}
			p += 5 + l + m
			rec++
		}
		if eof {
			if p != have {
				return fmt.Errorf("record %d: %w", rec, ErrCorruptRun)
			}
			return nil
		}
		have = copy(buf, buf[p:have])
	}
}

// fill reads into b until it is full (nil), the data ends (io.EOF, with
// what was read), or another error.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close removes the run files.
func (c *Counter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	for i := range c.parts {
		if f := c.parts[i].f; f != nil {
			f.Close()
		}
	}
	if c.dir != "" {
		return os.RemoveAll(c.dir)
	}
	return nil
}

package dedupe

import (
	"bufio"
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

// Options configure a Counter. Zero fields take the defaults.
type Options struct {
	// Partitions is the number of hash partitions (default 256). More
	// partitions make the final merge of each one smaller.
	Partitions int
	// MemBytes bounds the memory of the in-memory sets (default 512 MiB);
	// beyond it, partitions spill to TmpDir, s2-compressed.
	MemBytes int64
	// TmpDir holds spill files (default os.TempDir()); they are removed by Close.
	TmpDir string
}

// Counter counts distinct identities per kind overall and per file, in
// one pass: Add may be called from many goroutines at once, but all Adds of
// file i must have returned before the first Add of file i+1 (files are
// counted one after another; the file index only ever grows).
type Counter struct {
	opts   Options
	parts  []partition
	total  atomic.Int64 // bytes held by all tables
	pool   *chunkPool
	dir    string
	spills atomic.Int64
	closed bool
	// mkdirMu guards the lazy creation of dir.
	mkdirMu sync.Mutex
	// spillMu serialises spills; sw is the spill writer it guards.
	spillMu sync.Mutex
	sw      *s2.Writer
	// scratch recycles Add's per-call buffers.
	scratch sync.Pool
}

type partition struct {
	mu     sync.Mutex
	t      table
	runs   []string
	counts []int64 // [file*nk + kind]: distinct (value, file) pairs added
	// touched keeps the prefetching loads of addPart observable.
	touched uint64
	err     error
}

// New returns a Counter; its spill directory is created lazily.
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
	c.pool = newChunkPool(int(opts.MemBytes / 8 / chunkSize))
	for i := range c.parts {
		c.parts[i].t.pool = c.pool
	}
	return c, nil
}

// Spills returns how many partition runs were written to disk so far.
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
		if len(batch[i].Value) > 255 {
			return ErrTooLong
		}
		h[i] = Hash(string(batch[i].Kind), batch[i].Value)
		start[h[i]%uint64(np)+1]++
	}
	for p := 1; p <= np; p++ {
		start[p] += start[p-1]
	}
	// Counting sort of batch indices by partition (start[p] advances to the
	// end of p's range; recomputed below).
	for i := range batch {
		p := h[i] % uint64(np)
		order[start[p]] = int32(i)
		start[p]++
	}
	lo := int32(0)
	for p := 0; p < np; p++ {
		hi := start[p]
		if hi > lo {
			if err := c.addPart(p, file, batch, h, order[lo:hi]); err != nil {
				return err
			}
		}
		lo = hi
	}
	return c.maybeSpill()
}

func (c *Counter) addPart(p, file int, batch []identity.Sighting, h []uint64, idx []int32) error {
	pt := &c.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.err != nil {
		return pt.err
	}
	nk := len(kindNames)
	if need := (file + 1) * nk; len(pt.counts) < need {
		pt.counts = append(pt.counts, make([]int64, need-len(pt.counts))...)
	}
	before := pt.t.mem()
	// Insert in groups: first touch each key's home slot (independent
	// loads the CPU overlaps, like a prefetch), then insert. The slot loads
	// are cache misses that would otherwise be taken one at a time.
	const group = 16
	var sink uint64
	for g := 0; g < len(idx); g += group {
		end := min(g+group, len(idx))
		sink += pt.t.touch(h, idx[g:end])
		for _, i := range idx[g:end] {
			k := identity.KindIndex(batch[i].Kind)
			if pt.t.add(h[i], byte(k), batch[i].Value, uint32(file)) {
				pt.counts[file*nk+k]++
			}
		}
	}
	pt.touched += sink & 1
	after := pt.t.mem()
	c.total.Add(after - before)
	return nil
}

// maybeSpill writes every partition out as a run when the tables have
// outgrown the budget. Spilling all at once (rather than the partition
// that tipped the balance) keeps runs few and large: one per partition per
// budget's worth of input. Callers hold no partition lock.
func (c *Counter) maybeSpill() error {
	if c.total.Load() <= c.opts.MemBytes {
		return nil
	}
	c.spillMu.Lock()
	defer c.spillMu.Unlock()
	if c.total.Load() <= c.opts.MemBytes {
		return nil // another goroutine spilled meanwhile
	}
	for p := range c.parts {
		pt := &c.parts[p]
		pt.mu.Lock()
		var err error
		if pt.err == nil && pt.t.n > 0 {
			err = c.spill(p, pt)
			pt.err = err
		}
		pt.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// spill writes partition p's table as a new run and empties it. The
// caller holds pt.mu.
func (c *Counter) spill(p int, pt *partition) error {
	if c.dir == "" {
		if err := c.mkdir(); err != nil {
			return err
		}
	}
	name := filepath.Join(c.dir, fmt.Sprintf("p%04d-r%04d.s2", p, len(pt.runs)))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dedupe: spill: %w", err)
	}
	pt.runs = append(pt.runs, name)
	// One writer for all spills (they are serialised by spillMu): its
	// buffers are allocated once.
	if c.sw == nil {
		c.sw = s2.NewWriter(nil, s2.WriterConcurrency(1), s2.WriterBlockSize(256<<10))
	}
	w := c.sw
	w.Reset(f)
	var hdr [2 + 2*binary.MaxVarintLen32]byte
	err = pt.t.each(func(k byte, v []byte, first, last uint32) error {
		hdr[0], hdr[1] = k, byte(len(v))
		n := 2 + binary.PutUvarint(hdr[2:], uint64(first))
		n += binary.PutUvarint(hdr[n:], uint64(last))
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		_, err := w.Write(v)
		return err
	})
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dedupe: spill %s: %w", name, err)
	}
	before := pt.t.mem()
	pt.t.reset()
	c.total.Add(pt.t.mem() - before)
	c.spills.Add(1)
	return nil
}

func (c *Counter) mkdir() error {
	c.mkdirMu.Lock()
	defer c.mkdirMu.Unlock()
	if c.dir != "" {
		return nil
	}
	d, err := os.MkdirTemp(c.opts.TmpDir, "evidx-dedupe-")
	if err != nil {
		return fmt.Errorf("dedupe: spill dir: %w", err)
	}
	c.dir = d
	return nil
}

// Result is the outcome of counting: distinct identities per kind over all
// files, and per file (indexed by file) its own distinct identities.
type Result struct {
	Unique  map[identity.Kind]int64
	PerFile []map[identity.Kind]int64
}

// Result merges every partition's runs and returns the counts. It must be
// called once, after the last Add; it uses up to two goroutines.
func (c *Counter) Result(files int) (Result, error) {
	nk := len(kindNames)
	unique := make([]int64, nk)
	perFile := make([]int64, files*nk)
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(2)
	for p := range c.parts {
		g.Go(func() error {
			u, pf, err := c.mergePart(&c.parts[p], files)
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

// mergePart counts partition pt: its runs in order, then its table. A
// (value, file) pair counted in two consecutive runs of a value is a file
// that spanned a spill: it shows as the earlier run's last file equal to
// the later run's first file, and is subtracted once.
func (c *Counter) mergePart(pt *partition, files int) ([]int64, []int64, error) {
	nk := len(kindNames)
	unique := make([]int64, nk)
	pf := make([]int64, files*nk)
	copy(pf, pt.counts)
	if pt.err != nil {
		return nil, nil, pt.err
	}
	if len(pt.runs) == 0 {
		pt.t.each(func(k byte, _ []byte, _, _ uint32) error { unique[k]++; return nil })
		return unique, pf, nil
	}
	m := table{pool: c.pool}
	defer m.reset()
	visit := func(k byte, v []byte, first, last uint32) error {
		if int(k) >= nk || int(first) >= files || int(last) >= files {
			return ErrCorruptRun
		}
		if len(v) == 0 {
			return ErrCorruptRun
		}
		// s aliases v only for the call: setLast copies it into m's arena.
		s := unsafe.String(&v[0], len(v))
		prev, existed := m.setLast(Hash(kindNames[k], s), k, s, last)
		if !existed {
			unique[k]++
		} else if prev == first {
			pf[int(first)*nk+int(k)]--
		}
		return nil
	}
	sr := s2.NewReader(nil)
	for _, name := range pt.runs {
		if err := readRun(name, sr, visit); err != nil {
			return nil, nil, fmt.Errorf("dedupe: run %s: %w", name, err)
		}
	}
	if err := pt.t.each(visit); err != nil {
		return nil, nil, err
	}
	return unique, pf, nil
}

// readRun streams the records of one spill run.
func readRun(name string, sr *s2.Reader, fn func(k byte, v []byte, first, last uint32) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sr.Reset(f)
	r := bufio.NewReaderSize(sr, 64<<10)
	var v [256]byte
	var rec int64
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("record %d: %w", rec, err)
		}
		first, err1 := binary.ReadUvarint(r)
		last, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("record %d: %w", rec, ErrCorruptRun)
		}
		if _, err := io.ReadFull(r, v[:hdr[1]]); err != nil {
			return fmt.Errorf("record %d: %w", rec, err)
		}
		if err := fn(hdr[0], v[:hdr[1]], uint32(first), uint32(last)); err != nil {
			return fmt.Errorf("record %d: %w", rec, err)
		}
		rec++
	}
}

// Close removes the spill files.
func (c *Counter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.dir != "" {
		return os.RemoveAll(c.dir)
	}
	return nil
}

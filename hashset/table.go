package hashset

import (
	"bufio"
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// fenceEvery is how many records of a table on disk lie between two keys
// kept in memory: a lookup binary-searches the fence, then reads one block
// of fenceEvery records (16 KiB of SHA-256) with one ReadAt.
const fenceEvery = 512

// table is a sorted, duplicate-free array of fixed-size binary hashes,
// held in memory when small, else in a file searched with ReadAt. It is
// read-only once built: contains may be called from several goroutines.
type table struct {
	size  int    // bytes per record
	n     int64  // records
	mem   []byte // the records, when in memory
	f     *os.File
	fence []byte // record fenceEvery*i of f, for each block i
	pool  sync.Pool
}

// contains reports whether key (size bytes) is in the table.
func (t *table) contains(key []byte) (bool, error) {
	if t.n == 0 || len(key) != t.size {
		return false, nil
	}
	if t.mem != nil {
		return searchRecs(t.mem, t.size, key), nil
	}
	nf := len(t.fence) / t.size
	i := sort.Search(nf, func(i int) bool { return bytes.Compare(t.fence[i*t.size:(i+1)*t.size], key) > 0 }) - 1
	if i < 0 {
		return false, nil
	}
	first := int64(i) * fenceEvery
	cnt := min(int64(fenceEvery), t.n-first)
	bp, _ := t.pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, fenceEvery*t.size)
		bp = &b
	}
	defer t.pool.Put(bp)
	blk := (*bp)[:cnt*int64(t.size)]
	if _, err := t.f.ReadAt(blk, first*int64(t.size)); err != nil {
		return false, fmt.Errorf("%s: block %d at %#x: %w", t.f.Name(), i, first*int64(t.size), err)
	}
	return searchRecs(blk, t.size, key), nil
}

func searchRecs(recs []byte, size int, key []byte) bool {
	n := len(recs) / size
	j := sort.Search(n, func(j int) bool { return bytes.Compare(recs[j*size:(j+1)*size], key) >= 0 })
	return j < n && bytes.Equal(recs[j*size:(j+1)*size], key)
}

func (t *table) close() error {
	if t.f != nil {
		return t.f.Close()
	}
	return nil
}

// recSort sorts fixed-size records in place.
type recSort struct {
	b    []byte
	size int
	tmp  []byte
}

func (s *recSort) Len() int { return len(s.b) / s.size }
func (s *recSort) Less(i, j int) bool {
	return bytes.Compare(s.b[i*s.size:(i+1)*s.size], s.b[j*s.size:(j+1)*s.size]) < 0
}
func (s *recSort) Swap(i, j int) {
	a, b := s.b[i*s.size:(i+1)*s.size], s.b[j*s.size:(j+1)*s.size]
	copy(s.tmp, a)
	copy(a, b)
	copy(b, s.tmp)
}

// sortDedup sorts records and drops repeats, returning the shortened slice.
func sortDedup(b []byte, size int) []byte {
	sort.Sort(&recSort{b: b, size: size, tmp: make([]byte, size)})
	out := 0
	for i := 0; i < len(b); i += size {
		if out > 0 && bytes.Equal(b[out-size:out], b[i:i+size]) {
			continue
		}
		copy(b[out:out+size], b[i:i+size])
		out += size
	}
	return b[:out]
}

// builder collects records and makes a table: in memory while they fit in
// limit bytes, else as sorted runs spilled into dir and merged into one
// file (an external sort), so memory stays bounded for any list size.
type builder struct {
	size  int
	limit int
	dir   func() (string, error) // where runs and the final file go, made when first needed
	buf   []byte
	runs  []string
}

func newBuilder(size, limit int, dir func() (string, error)) *builder {
	limit = max(limit/size, 1) * size
	return &builder{size: size, limit: limit, dir: dir}
}

func (b *builder) add(rec []byte) error {
	b.buf = append(b.buf, rec...)
	if len(b.buf) >= b.limit {
		return b.spill()
	}
	return nil
}

func (b *builder) spill() error {
	if b.dir == nil {
		return errors.New("hash set larger than the memory limit and no directory for its side file")
	}
	dir, err := b.dir()
	if err != nil {
		return err
	}
	b.buf = sortDedup(b.buf, b.size)
	f, err := os.CreateTemp(dir, ".hashset-run-*")
	if err != nil {
		return err
	}
	b.runs = append(b.runs, f.Name())
	_, err = f.Write(b.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	b.buf = b.buf[:0]
	return err
}

// abort removes the runs written so far.
func (b *builder) abort() {
	for _, r := range b.runs {
		os.Remove(r)
	}
	b.runs = nil
}

// finish returns the table. With no run spilled it is in memory, unless
// out is set: then (and whenever runs were spilled) it is merged into the
// file out, written through a temporary name and renamed into place.
func (b *builder) finish(out string) (*table, error) {
	if len(b.runs) == 0 && out == "" {
		recs := sortDedup(b.buf, b.size)
		b.buf = nil
		return &table{size: b.size, n: int64(len(recs) / b.size), mem: recs}, nil
	}
	if len(b.buf) > 0 || len(b.runs) == 0 {
		if err := b.spill(); err != nil {
			b.abort()
			return nil, err
		}
	}
	b.buf = nil
	defer b.abort()
	if out == "" {
		dir, err := b.dir()
		if err != nil {
			return nil, err
		}
		out = filepath.Join(dir, fmt.Sprintf("hashes-%d.sorted", len(b.runs)))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".hashset-merge-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	fence, err := mergeRuns(b.runs, b.size, tmp)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// The fence is kept beside the records (written first: records
	// without a fence are scanned for one; a fence never lacks records).
	if err := writeFile(out+".fence", fence); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, err
	}
	return openTable(out, b.size)
}

// writeFile writes b to p through a temporary name renamed into place.
func writeFile(p string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".hashset-fence-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// openTable opens a sorted side file written by finish.
func openTable(path string, size int) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size()%int64(size) != 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, not a whole number of %d-byte records", path, st.Size(), size)
	}
	t := &table{size: size, n: st.Size() / int64(size), f: f}
	// The fence: the first key of every block, saved beside the records
	// when they were merged, else read in one pass.
	blocks := (t.n + fenceEvery - 1) / fenceEvery
	if fst, err := os.Stat(path + ".fence"); err == nil && fst.Size() == blocks*int64(size) {
		if fence, err := os.ReadFile(path + ".fence"); err == nil && int64(len(fence)) == fst.Size() {
			t.fence = fence
			return t, nil
		}
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, st.Size()), 1<<20)
	rec := make([]byte, size)
	for i := int64(0); i < t.n; i++ {
		if _, err := io.ReadFull(br, rec); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: record %d at %#x: %w", path, i, i*int64(size), err)
		}
		if i%fenceEvery == 0 {
			t.fence = append(t.fence, rec...)
		}
	}
	return t, nil
}

// runReader is one sorted run being merged.
type runReader struct {
	r   *bufio.Reader
	f   *os.File
	cur []byte
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return bytes.Compare(h[i].cur, h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeRuns writes the sorted union of the runs, without repeats, to w,
// and returns its fence (every fenceEvery-th record).
func mergeRuns(runs []string, size int, w io.Writer) ([]byte, error) {
	var h runHeap
	defer func() {
		for _, r := range h {
			r.f.Close()
		}
	}()
	next := func(r *runReader) (bool, error) {
		_, err := io.ReadFull(r.r, r.cur)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", r.f.Name(), err)
		}
		return true, nil
	}
	for _, p := range runs {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r := &runReader{r: bufio.NewReaderSize(f, 64<<10), f: f, cur: make([]byte, size)}
		ok, err := next(r)
		if err != nil {
			f.Close()
			return nil, err
		}
		if !ok {
			f.Close()
			continue
		}
		h = append(h, r)
	}
	heap.Init(&h)
	bw := bufio.NewWriterSize(w, 1<<20)
	last := make([]byte, size)
	have := false
	var fence []byte
	var n int64
	for len(h) > 0 {
		r := h[0]
		if !have || !bytes.Equal(last, r.cur) {
			if _, err := bw.Write(r.cur); err != nil {
				return nil, err
			}
			if n%fenceEvery == 0 {
				fence = append(fence, r.cur...)
			}
			n++
			copy(last, r.cur)
			have = true
		}
		ok, err := next(r)
		if err != nil {
			return nil, err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			r.f.Close()
			heap.Pop(&h)
		}
	}
	return fence, bw.Flush()
}

package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zlib"
)

// cacheChunks is how many decoded chunks the Reader keeps for small reads
// (32 KiB each by default: 512 KiB), fewer for large chunks so the cache
// stays under cacheBytes. Reads that cover whole chunks decode straight
// into the caller's buffer and bypass it.
const (
	cacheChunks = 16
	cacheBytes  = 8 << 20
)

// ChunkError reports a chunk whose data cannot be trusted: its checksum
// fails, it does not inflate, or it inflates to the wrong length. Sectors
// FirstSector..LastSector (inclusive, in units of the image's sector size)
// are the media sectors it holds, as ewfverify prints them.
type ChunkError struct {
	Chunk       int
	FirstSector uint64
	LastSector  uint64
	Path        string // segment file holding the chunk
	Offset      int64  // byte offset of the chunk in that file
	Err         error
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("chunk %d (sectors %d-%d) in %s at offset %#x: %v",
		e.Chunk, e.FirstSector, e.LastSector, e.Path, e.Offset, e.Err)
}

func (e *ChunkError) Unwrap() error { return e.Err }

// tabRef places one table in the image-wide chunk numbering.
type tabRef struct {
	seg   int
	first int // chunk number of the table's entry 0
	t     *table
}

// Reader is an EWF image assembled from its segments: an io.ReaderAt over
// the media data. ReadAt may be called from several goroutines at once.
type Reader struct {
	segs      []*Segment
	names     []string
	vol       *Volume
	chunkSize int
	nchunks   int
	size      int64 // declared: sector count x bytes per sector, as libewf reads it
	stored    int64 // bytes the chunks hold; more than size when the imager stored a tail
	tabs      []tabRef

	scratch sync.Pool // *[]byte of chunkSize+slack: stored chunk bytes
	inflate sync.Pool // zlib readers, reset per chunk

	mu     sync.Mutex
	cache  [cacheChunks]cacheEntry
	cacheN int // entries of cache in use: cacheBytes / chunk size, 1..cacheChunks
	tick   uint64

	tmu    sync.Mutex
	tcache [cacheTables]tableEntries
	ttick  uint64
}

// cacheTables is how many tables' entries the Reader keeps decoded (at most
// 64 KiB each with EnCase's 16375 entries per table).
const cacheTables = 4

type tableEntries struct {
	t    *table
	ents []uint32
	used uint64
}

// entries returns the decoded entries of tr's table, re-reading and
// re-checking them when they are not cached.
func (r *Reader) entries(tr tabRef) ([]uint32, error) {
	r.tmu.Lock()
	r.ttick++
	for k := range r.tcache {
		if e := &r.tcache[k]; e.t == tr.t {
			e.used = r.ttick
			ents := e.ents
			r.tmu.Unlock()
			return ents, nil
		}
	}
	r.tmu.Unlock()
	n := int64(tr.t.N) * tableEntrySize
	if tr.t.HasSum {
		n += 4
	}
	raw := make([]byte, n)
	if _, err := r.segs[tr.seg].r.ReadAt(raw, tr.t.EntriesAt); err != nil {
		return nil, &ParseError{Format: "ewf", Path: r.names[tr.seg], Op: "table section", Offset: tr.t.EntriesAt, Err: err}
	}
	ents, err := tr.t.decode(raw, r.segs[tr.seg].size)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Path = r.names[tr.seg]
		}
		return nil, err
	}
	r.tmu.Lock()
	victim := 0
	for k := range r.tcache {
		if r.tcache[k].used < r.tcache[victim].used {
			victim = k
		}
	}
	r.ttick++
	r.tcache[victim] = tableEntries{t: tr.t, ents: ents, used: r.ttick}
	r.tmu.Unlock()
	return ents, nil
}

type cacheEntry struct {
	chunk int // -1: empty
	data  []byte
	used  uint64
}

// storedSlack bounds how much larger than the chunk a stored chunk may be:
// the 4-byte checksum of an uncompressed chunk, or zlib's worst-case growth
// (5 bytes per 16 KiB stored block plus header and trailer). Anything larger
// is corrupt and is not read into memory.
func storedSlack(chunkSize int) int { return chunkSize/1024 + 64 }

// NewReader assembles the parsed segments of one image, in order; names
// label each segment in errors (its file path). It checks that the segments
// are numbered 1..n, describe the same media, end with "done" only in the
// last, and hold table entries for every chunk of the media.
func NewReader(segs []*Segment, names []string) (*Reader, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: no segments", ErrMissingSegment)
	}
	if len(names) != len(segs) {
		names = make([]string, len(segs))
		for i := range names {
			names[i] = fmt.Sprintf("segment %d", i+1)
		}
	}
	first := segs[0]
	if first.Volume == nil {
		return nil, &ParseError{Format: "ewf", Path: names[0], Op: "segment", Offset: fileHeaderSize,
			Err: fmt.Errorf("%w: segment %d has no volume section; open the first segment", ErrCorrupt, first.Number)}
	}
	r := &Reader{segs: segs, names: names, vol: first.Volume, chunkSize: first.Volume.ChunkSize()}
	for i, s := range segs {
		if int(s.Number) != i+1 {
			return nil, &ParseError{Format: "ewf", Path: names[i], Op: "file header", Offset: 9,
				Err: fmt.Errorf("%w: segment number %d where %d belongs", ErrForeignSegment, s.Number, i+1)}
		}
		if s.Volume != nil && !bytes.Equal(s.Volume.raw, first.Volume.raw) {
			return nil, &ParseError{Format: "ewf", Path: names[i], Op: "volume/data section", Offset: fileHeaderSize,
				Err: fmt.Errorf("%w: media description (chunks, sectors, set identifier) differs from %s", ErrForeignSegment, names[0])}
		}
		if s.Last && i != len(segs)-1 {
			return nil, &ParseError{Format: "ewf", Path: names[i], Op: "done section", Offset: 0,
				Err: fmt.Errorf("%w: segment %d is marked last but %s follows", ErrForeignSegment, i+1, names[i+1])}
		}
		for ti := range s.tables {
			r.tabs = append(r.tabs, tabRef{seg: i, first: r.nchunks, t: &s.tables[ti]})
			r.nchunks += s.tables[ti].N
		}
	}
	if last := segs[len(segs)-1]; !last.Last {
		return nil, &ParseError{Format: "ewf", Path: names[len(segs)-1], Op: "next section", Offset: 0,
			Err: fmt.Errorf("%w: segment %d ends with \"next\" but segment %d was not found", ErrMissingSegment, len(segs), len(segs)+1)}
	}
	if r.nchunks != int(r.vol.ChunkCount) {
		return nil, &ParseError{Format: "ewf", Path: names[0], Op: "volume section", Offset: fileHeaderSize,
			Err: fmt.Errorf("%w: tables list %d chunks, volume says %d", ErrCorrupt, r.nchunks, r.vol.ChunkCount)}
	}
	for i := range r.cache {
		r.cache[i].chunk = -1
	}
	r.cacheN = max(1, min(cacheChunks, cacheBytes/r.chunkSize))
	cs := r.chunkSize
	r.scratch.New = func() any { b := make([]byte, cs+storedSlack(cs)); return &b }
	r.size = int64(r.vol.SectorCount) * int64(r.vol.BytesPerSector)
	r.stored = r.storedSize()
	return r, nil
}

// storedSize is what the chunks hold, from the last chunk's length.
// ewfacquire records floor(bytes/sector size) sectors of a source whose
// size is not a sector multiple, yet stores and hashes every byte; libewf
// (and ewfverify, which then reports FAILURE) reads only the declared
// sectors, and so does evidx: the tail is reported, not read as media.
func (r *Reader) storedSize() int64 {
	n := r.nchunks
	if n == 0 {
		return 0
	}
	buf := make([]byte, r.chunkSize)
	got, err := r.decode(n-1, buf, -1)
	if err != nil {
		return r.size // a bad last chunk is reported when read
	}
	return int64(n-1)*int64(r.chunkSize) + int64(got)
}

// Beyond returns the declared media size and the bytes the chunks hold;
// stored > declared when chunk data runs past the declared sectors.
func (r *Reader) Beyond() (declared, stored int64) { return r.size, max(r.stored, r.size) }

// ReadBeyond returns the chunk bytes past the declared media size (at
// most one chunk; nil when there are none).
func (r *Reader) ReadBeyond() ([]byte, error) {
	if r.stored <= r.size {
		return nil, nil
	}
	first := int(r.size / int64(r.chunkSize))
	var out []byte
	buf := make([]byte, r.chunkSize)
	for i := first; i < r.nchunks; i++ {
		n, err := r.decode(i, buf, -1)
		if err != nil {
			return nil, err
		}
		from := max(r.size-int64(i)*int64(r.chunkSize), 0)
		out = append(out, buf[from:n]...)
	}
	return out, nil
}

// Problems names what the reader found doubtful: chunk data past the
// declared media size.
func (r *Reader) Problems() []string {
	if r.stored <= r.size {
		return nil
	}
	return []string{fmt.Sprintf("%s: chunk data holds %d bytes past the declared media size of %d sectors (%d bytes); they are not read as media, as libewf does not",
		r.names[0], r.stored-r.size, r.vol.SectorCount, r.size)}
}

// Size is the media size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Volume is the media description of the first segment.
func (r *Reader) Volume() Volume { return *r.vol }

// Chunks is the number of chunks of the media.
func (r *Reader) Chunks() int { return r.nchunks }

// Segments returns the parsed segments, in order.
func (r *Reader) Segments() []*Segment { return r.segs }

// chunkLen is the media bytes of chunk i: chunkSize except for a short last one.
func (r *Reader) chunkLen(i int) int {
	rest := r.size - int64(i)*int64(r.chunkSize)
	if rest < int64(r.chunkSize) {
		return int(rest)
	}
	return r.chunkSize
}

// ChunkLocation tells where chunk i is stored: segment index, byte offset in
// that segment file, stored length (including the trailing checksum of an
// uncompressed chunk) and whether it is zlib-compressed. Tests use it to
// damage a chosen chunk.
func (r *Reader) ChunkLocation(i int) (seg int, off int64, stored int, compressed bool, err error) {
	if i < 0 || i >= r.nchunks {
		return 0, 0, 0, false, fmt.Errorf("ewf: chunk %d out of range [0,%d)", i, r.nchunks)
	}
	k := sort.Search(len(r.tabs), func(k int) bool { return r.tabs[k].first > i }) - 1
	tr := r.tabs[k]
	ents, err := r.entries(tr)
	if err != nil {
		return 0, 0, 0, false, err
	}
	j := i - tr.first
	e := ents[j]
	off = tr.t.Base + int64(e&entryOffsetMask)
	end := tr.t.End
	if j+1 < len(ents) {
		end = tr.t.Base + int64(ents[j+1]&entryOffsetMask)
	}
	return tr.seg, off, int(end - off), e&compressedFlag != 0, nil
}

func (r *Reader) sectorRange(i int) (first, last uint64) {
	spc := uint64(r.vol.SectorsPerChunk)
	bps := int64(r.vol.BytesPerSector)
	total := uint64((r.size + bps - 1) / bps)
	first = uint64(i) * spc
	last = first + spc - 1
	if last >= total {
		last = total - 1
	}
	return first, last
}

// decode reads chunk i into dst and returns its length. want is the length
// the chunk must have, or -1 to accept any length up to len(dst) (used once,
// to learn the last chunk's length).
func (r *Reader) decode(i int, dst []byte, want int) (int, error) {
	if want >= 0 && i == r.nchunks-1 && r.stored > r.size {
		// The last chunk holds a tail past the declared media: decode it
		// whole, keep the declared part.
		buf := make([]byte, r.chunkSize)
		n, err := r.decode(i, buf, -1)
		if err != nil {
			return 0, err
		}
		if n < want {
			first, last := r.sectorRange(i)
			return 0, &ChunkError{Chunk: i, FirstSector: first, LastSector: last, Path: r.names[0],
				Err: fmt.Errorf("%w: holds %d bytes, expected %d", ErrCorrupt, n, want)}
		}
		return copy(dst, buf[:want]), nil
	}
	seg, off, stored, compressed, err := r.ChunkLocation(i)
	fail := func(err error) (int, error) {
		first, last := r.sectorRange(i)
		return 0, &ChunkError{Chunk: i, FirstSector: first, LastSector: last, Path: r.names[seg], Offset: off, Err: err}
	}
	if err != nil {
		return fail(err) // its table changed since Open
	}
	if stored > r.chunkSize+storedSlack(r.chunkSize) || (!compressed && stored < 4) {
		return fail(fmt.Errorf("%w: stored size %d for a %d-byte chunk", ErrCorrupt, stored, r.chunkSize))
	}
	bp := r.scratch.Get().(*[]byte)
	defer r.scratch.Put(bp)
	raw := (*bp)[:stored]
	if n, err := r.segs[seg].r.ReadAt(raw, off); n < stored {
		if err == nil || err == io.EOF {
			err = ErrTruncated
		}
		return fail(err)
	}
	var n int
	if compressed {
		n, err = r.inflateInto(dst, raw)
		if err != nil {
			return fail(err)
		}
	} else {
		data := raw[:stored-4]
		if got, sum := adler32.Checksum(data), binary.LittleEndian.Uint32(raw[stored-4:]); got != sum {
			return fail(fmt.Errorf("%w: adler-32 %#08x, stored %#08x", ErrChunkChecksum, got, sum))
		}
		if len(data) > len(dst) {
			return fail(fmt.Errorf("%w: %d bytes, chunk size %d", ErrCorrupt, len(data), len(dst)))
		}
		n = copy(dst, data)
	}
	if want >= 0 && n != want {
		return fail(fmt.Errorf("%w: holds %d bytes, expected %d", ErrCorrupt, n, want))
	}
	return n, nil
}

// inflateInto inflates a zlib stream into dst; reading to the end makes the
// zlib reader check the stream's Adler-32.
func (r *Reader) inflateInto(dst, raw []byte) (int, error) {
	var zr io.ReadCloser
	if v := r.inflate.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(bytes.NewReader(raw), nil); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInflate, err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(bytes.NewReader(raw)); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInflate, err)
		}
	}
	n := 0
	for {
		if n == len(dst) {
			var one [1]byte
			m, err := zr.Read(one[:])
			if m > 0 {
				return n, fmt.Errorf("%w: inflates to more than %d bytes", ErrCorrupt, len(dst))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, inflateErr(err)
			}
			continue
		}
		m, err := zr.Read(dst[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, inflateErr(err)
		}
	}
	r.inflate.Put(zr)
	return n, nil
}

func inflateErr(err error) error {
	if errors.Is(err, zlib.ErrChecksum) {
		return fmt.Errorf("%w: zlib adler-32 mismatch", ErrChunkChecksum)
	}
	return fmt.Errorf("%w: %v", ErrInflate, err)
}

// ReadAt reads media bytes at off. A chunk that fails its checks stops the
// read there: n counts the good bytes before it and err is a *ChunkError.
// Whole chunks covered by p are decoded straight into p, several at once
// on large reads; partial chunks go through a small cache. Safe for
// concurrent use.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ewf: negative offset %d", off)
	}
	n := 0
	cs := int64(r.chunkSize)
	for n < len(p) && off < r.size {
		ci := int(off / cs)
		within := int(off % cs)
		if within == 0 {
			k, span := 0, 0 // whole chunks p can take from here
			for ci+k < r.nchunks {
				l := r.chunkLen(ci + k)
				if l <= 0 || span+l > len(p)-n {
					break
				}
				span += l
				k++
			}
			if k > 0 {
				good, err := r.decodeRun(ci, k, p[n:n+span])
				n += good
				off += int64(good)
				if err != nil {
					return n, err
				}
				continue
			}
		}
		clen := r.chunkLen(ci)
		take := min(len(p)-n, clen-within)
		if err := r.copyCached(ci, p[n:n+take], within, clen); err != nil {
			return n, err
		}
		n += take
		off += int64(take)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// maxDecoders bounds the goroutines one ReadAt uses to decode chunks.
const maxDecoders = 4

// decodeRun decodes k whole chunks from ci into dst (their exact total
// length). It returns the bytes before the first bad chunk and its error.
// Runs of four or more chunks are decoded by up to GOMAXPROCS goroutines:
// inflating and checksumming is the CPU work of reading an E01.
func (r *Reader) decodeRun(ci, k int, dst []byte) (int, error) {
	cs := r.chunkSize
	workers := min(runtime.GOMAXPROCS(0), k/2, maxDecoders)
	if workers <= 1 {
		o := 0
		for j := range k {
			l := r.chunkLen(ci + j)
			if _, err := r.decode(ci+j, dst[o:o+l], l); err != nil {
				return o, err
			}
			o += l
		}
		return o, nil
	}
	errs := make([]error, k)
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= k {
					return
				}
				l := r.chunkLen(ci + j)
				_, errs[j] = r.decode(ci+j, dst[j*cs:j*cs+l], l)
			}
		})
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return j * cs, err
		}
	}
	return len(dst), nil
}

// copyCached copies part of chunk ci from the LRU, decoding it on a miss.
func (r *Reader) copyCached(ci int, dst []byte, within, clen int) error {
	r.mu.Lock()
	r.tick++
	for k := range r.cache[:r.cacheN] {
		if e := &r.cache[k]; e.chunk == ci {
			e.used = r.tick
			copy(dst, e.data[within:])
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Unlock()
	buf := make([]byte, clen)
	if _, err := r.decode(ci, buf, clen); err != nil {
		return err
	}
	copy(dst, buf[within:])
	r.mu.Lock()
	victim := 0
	for k := range r.cache[:r.cacheN] {
		if r.cache[k].used < r.cache[victim].used {
			victim = k
		}
	}
	r.tick++
	r.cache[victim] = cacheEntry{chunk: ci, data: buf, used: r.tick}
	r.mu.Unlock()
	return nil
}

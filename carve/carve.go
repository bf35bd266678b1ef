// Package carve recovers files from raw byte ranges of an image (deleted
// space) by their own structure: each format's validator walks the file from
// its header to its exact end, so the output is the original file, not
// "header plus N MB". Candidates are tried at every sector start (or every
// byte), ranges are split into chunks carved on all cores, and a file
// continuing past the end of a free range is retried across the gap to the
// next one (the bifragment case PhotoRec handles).
package carve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"

	"github.com/evidx/evidx/internal/ordered"

	"github.com/evidx/evidx/digest"
)

// Carved is one recovered file. Offset is its first byte in the image, Runs
// the image byte runs it was read from (two when fragmented), Length their
// total. MD5 and SHA256 are hex digests of the content.
type Carved struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Type   string `json:"type"`
	Ext    string `json:"ext"`
	Runs   []Run  `json:"byte_runs"`
	MD5    string `json:"md5"`
	SHA256 string `json:"sha256"`
}

// Options control a carve. The zero value carves every type at 512-byte
// sector starts on all CPUs.
type Options struct {
	// AnyOffset tries a header at every byte, not only sector starts.
	AnyOffset bool
	// SectorSize is the candidate alignment in bytes (default 512).
	SectorSize int64
	// Workers is the number of carving goroutines (default GOMAXPROCS).
	Workers int
	// ChunkSize is the unit of parallel work in bytes (default 8 MiB).
	ChunkSize int64
	// Types limits carving to these type names (see Types); nil means all.
	Types []string
	// Skip lists image ranges not to carve, such as the extents of files
	// the file system already recovered.
	Skip []Run
	// Known, if set, drops a carved file whose SHA-256 it reports as
	// already recovered by other means. Called from Carve's goroutine.
	Known func(sha256 string) bool
	// NoFragments disables the bifragment retry.
	NoFragments bool
	// Progress, if set, is called from Carve's goroutine with the bytes of
	// each finished chunk.
	Progress func(n int64)
}

// format is one carvable file type.
type format struct {
	name     string
	first    []byte // possible first bytes of a header
	magic    func([]byte) bool
	validate func(io.ReaderAt, int64) (result, error)
	maxSize  int64 // bytes; the per-type cap
	frag     bool  // validation strong enough to accept a bifragment
}

// formats in the order they are tried at one offset; text is last because
// several binary formats start with printable bytes.
var formats = []format{
	{"jpeg", []byte{0xFF}, magicJPEG, validateJPEG, 256 << 20, true},
	{"png", []byte{0x89}, magicPNG, validatePNG, 256 << 20, true},
	{"gif", []byte{'G'}, magicGIF, validateGIF, 64 << 20, true},
	{"bmp", []byte{'B'}, magicBMP, validateBMP, 256 << 20, false},
	{"pdf", []byte{'%'}, magicPDF, validatePDF, 512 << 20, true},
	{"zip", []byte{'P'}, magicZip, validateZip, 4 << 30, true},
	{"gzip", []byte{0x1F}, magicGzip, validateGzip, 4 << 30, true},
	{"bzip2", []byte{'B'}, magicBzip2, validateBzip2, 1 << 30, true},
	{"zstd", []byte{0x28}, magicZstd, validateZstd, 4 << 30, true},
	{"xz", []byte{0xFD}, magicXz, validateXz, 4 << 30, true},
	{"sqlite", []byte{'S'}, magicSQLite, validateSQLite, 16 << 30, true},
	{"text", nil, magicText, validateText, 2 << 30, false},
}

// Types lists the format names Options.Types accepts.
func Types() []string {
	var s []string
	for _, f := range formats {
		s = append(s, f.name)
	}
	return s
}

// probeLen is how many bytes a magic check may look at.
const probeLen = 64

// ErrUnknownType is returned for a name in Options.Types that is not a format.
var ErrUnknownType = errors.New("carve: unknown type")

type chunk struct {
	idx        int
	rng        int // index into ranges
	start, end int64
}

// Carve finds files in the given image ranges and calls emit for each, in
// increasing offset order, from the calling goroutine. Files never overlap:
// a candidate inside an earlier file's runs is not emitted, so the output
// never exceeds the input. It stops at the first error from emit or from
// reading r, or when ctx is cancelled.
func Carve(ctx context.Context, r io.ReaderAt, ranges []Run, opts Options, emit func(Carved) error) error {
	if opts.SectorSize <= 0 {
		opts.SectorSize = 512
	}
	if opts.AnyOffset {
		opts.SectorSize = 1
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 8 << 20
	}
	opts.ChunkSize = (opts.ChunkSize + opts.SectorSize - 1) / opts.SectorSize * opts.SectorSize
	var table [256][]*format
	want := map[string]bool{}
	for _, t := range opts.Types {
		want[t] = true
	}
	for i := range formats {
		f := &formats[i]
		if len(want) > 0 && !want[f.name] {
			continue
		}
		delete(want, f.name)
		if f.first == nil {
			for b := range 256 {
				if textClass[b] != 0 { // ASCII, or the lead byte of UTF-8/GBK
					table[b] = append(table[b], f)
				}
			}
			continue
		}
		for _, b := range f.first {
			table[b] = append(table[b], f)
		}
	}
	for t := range want {
		return fmt.Errorf("%w %q", ErrUnknownType, t)
	}
	ranges = Subtract(ranges, opts.Skip)

	var chunks []chunk
	for i, rg := range ranges {
		for s := rg.Off; s < rg.End(); s += opts.ChunkSize {
			chunks = append(chunks, chunk{idx: len(chunks), rng: i, start: s, end: min(s+opts.ChunkSize, rg.End())})
		}
	}
	type done struct {
		files []Carved
		err   error
	}
	// Chunks are carved in parallel and merged in chunk order so emit sees
	// increasing offsets and overlap is decided deterministically: the
	// earlier file wins.
	var covered []Run
	return ordered.Map(ctx, len(chunks), opts.Workers,
		func() *worker { return &worker{r: r, ranges: ranges, opts: &opts, table: &table} },
		func(ctx context.Context, w *worker, i int) done {
			files, err := w.carveChunk(ctx, chunks[i])
			return done{files, err}
		},
		func(i int, d done) error {
			if d.err != nil {
				return d.err
			}
			for _, f := range d.files {
				covered = slices.DeleteFunc(covered, func(x Run) bool { return x.End() <= f.Offset })
				if overlaps(covered, f.Runs) {
					continue
				}
				covered = append(covered, f.Runs...)
				if opts.Known != nil && opts.Known(f.SHA256) {
					continue
				}
				if err := emit(f); err != nil {
					return err
				}
			}
			if opts.Progress != nil {
				opts.Progress(chunks[i].end - chunks[i].start)
			}
			return nil
		})
}

func overlaps(set, runs []Run) bool {
	for _, a := range runs {
		for _, b := range set {
			if a.Off < b.End() && b.Off < a.End() {
				return true
			}
		}
	}
	return false
}

// Subtract returns ranges minus skip, sorted and merged, without empty runs.
func Subtract(ranges, skip []Run) []Run {
	norm := func(in []Run) []Run {
		var s []Run
		for _, x := range in {
			if x.Len > 0 && x.Off >= 0 {
				s = append(s, x)
			}
		}
		sort.Slice(s, func(i, j int) bool { return s[i].Off < s[j].Off })
		var m []Run
		for _, x := range s {
			if n := len(m); n > 0 && x.Off <= m[n-1].End() {
				m[n-1].Len = max(m[n-1].End(), x.End()) - m[n-1].Off
				continue
			}
			m = append(m, x)
		}
		return m
	}
	rs, sk := norm(ranges), norm(skip)
	var out []Run
	j := 0
	for _, x := range rs {
		cur := x.Off
		for j < len(sk) && sk[j].End() <= cur {
			j++
		}
		for k := j; k < len(sk) && sk[k].Off < x.End(); k++ {
			if sk[k].Off > cur {
				out = append(out, Run{cur, sk[k].Off - cur})
			}
			cur = max(cur, sk[k].End())
		}
		if cur < x.End() {
			out = append(out, Run{cur, x.End() - cur})
		}
	}
	return out
}

// worker carves chunks; one per goroutine, never shared.
type worker struct {
	r      io.ReaderAt
	ranges []Run
	opts   *Options
	table  *[256][]*format
	buf    []byte
}

// carveChunk tries every candidate offset in [c.start, c.end). A file found
// may extend past the chunk; the next candidate is after its first run.
func (w *worker) carveChunk(ctx context.Context, c chunk) ([]Carved, error) {
	rg := w.ranges[c.rng]
	bufEnd := min(c.end+probeLen, rg.End())
	n := int(bufEnd - c.start)
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	buf := w.buf[:n]
	if m, err := w.r.ReadAt(buf, c.start); m < n {
		return nil, fmt.Errorf("carve: read image at %#x: %w", c.start+int64(m), err)
	}
	var files []Carved
	ss := w.opts.SectorSize
	first := (c.start + ss - 1) / ss * ss
	var textSkip int64 // no text candidate before this offset
	for off := first; off < c.end; off += ss {
		if (off-first)&(1<<20-1) == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		i := off - c.start
		fs := w.table[buf[i]]
		if len(fs) == 0 {
			continue
		}
		probe := buf[i:min(int64(len(buf)), i+probeLen)]
		for _, f := range fs {
			if f.name == "text" {
				if off < textSkip {
					continue
				}
				// A non-text byte k bytes in rules out every start up to it.
				if k := nonText(probe); k >= 0 {
					textSkip = off + int64(k) + 1
					continue
				}
			}
			if !f.magic(probe) {
				continue
			}
			cf, err := w.try(f, c.rng, off)
			if err != nil {
				if f.name == "text" {
					// Every later start in this run ends at the same place.
					var pe *ParseError
					if errors.As(err, &pe) {
						textSkip = off + max(pe.Offset, 1)
					}
				}
				continue
			}
			if cf.Length == 0 {
				continue
			}
			if err := w.hash(&cf); err != nil {
				return nil, err
			}
			files = append(files, cf)
			adv := cf.Runs[0].End()
			off = (adv+ss-1)/ss*ss - ss
			break
		}
	}
	return files, nil
}

// try validates format f at off, first within its free range, then, when the
// file runs off the end of the range, across the gap into the next range.
func (w *worker) try(f *format, rng int, off int64) (Carved, error) {
	rg := w.ranges[rng]
	firstLen := rg.End() - off
	capped := firstLen > f.maxSize
	v := newView(w.r, Run{off, min(firstLen, f.maxSize)})
	res, err := f.validate(v, v.size)
	if err == errTruncated && !capped && f.frag && !w.opts.NoFragments && rng+1 < len(w.ranges) {
		nx := w.ranges[rng+1]
		v = newView(w.r, Run{off, firstLen}, Run{nx.Off, min(nx.Len, f.maxSize-firstLen)})
		res, err = f.validate(v, v.size)
		if err == nil && res.n <= firstLen {
			err = errTruncated
		}
	}
	if err != nil {
		return Carved{}, err
	}
	if res.n <= 0 || res.n > v.size {
		return Carved{}, bad(f.name, 0, "length %d", res.n)
	}
	runs := v.clip(res.n)
	return Carved{Offset: off, Length: res.n, Type: res.typ, Ext: res.ext, Runs: runs}, nil
}

func (w *worker) hash(cf *Carved) error {
	d := digest.NewWriter()
	for _, x := range cf.Runs {
		if _, err := io.Copy(d, io.NewSectionReader(w.r, x.Off, x.Len)); err != nil {
			return fmt.Errorf("carve: read image at %#x: %w", x.Off, err)
		}
	}
	s := d.Sums()
	cf.MD5, cf.SHA256 = s.MD5, s.SHA256
	return nil
}

// Open returns a reader of a carved file's content from the image.
func Open(r io.ReaderAt, c Carved) io.Reader {
	rs := make([]io.Reader, len(c.Runs))
	for i, x := range c.Runs {
		rs[i] = io.NewSectionReader(r, x.Off, x.Len)
	}
	return io.MultiReader(rs...)
}

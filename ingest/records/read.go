package records

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Options bound the work Read does on untrusted input. Zero fields take
// the defaults noted.
type Options struct {
	// ChunkSize is the decoded bytes per line-based chunk (default 1 MiB).
	ChunkSize int
	// MaxRecord is the longest record accepted (default 64 MiB); a longer
	// one is skipped up to the next line end and named in Info.Problems.
	MaxRecord int
	// SampleSize is how much decoded text the sniffers see (default 256 KiB).
	SampleSize int
	// MaxRatio and MinBombBytes: a decompressed stream is stopped with
	// ErrBomb once it has produced more than MinBombBytes (default 64 MiB)
	// and more than MaxRatio (default 1000) times its compressed size.
	MaxRatio     int64
	MinBombBytes int64
	// MaxSpill bounds the temporary copy of an SQLite database or zip that
	// arrives compressed (default 8 GiB). TmpDir holds it (default os.TempDir()).
	MaxSpill int64
	TmpDir   string
	// RowsPerChunk is the rows per chunk of pre-parsed formats (default 4096).
	RowsPerChunk int

	// Overrides for what sniffing got wrong (empty: sniff). Format is one
	// of FormatNames; Delimiter any byte string (implies delimited text);
	// Encoding one of EncodingNames; NoHeader says the first record is data.
	Format    string
	Delimiter string
	Encoding  string
	NoHeader  bool
}

// Check validates the overrides; the error names the bad one.
func (o *Options) Check() error {
	if o.Format != "" && !slices.Contains(FormatNames, o.Format) {
		return fmt.Errorf("records: unknown format %q (want one of %s)", o.Format, strings.Join(FormatNames, ", "))
	}
	if o.Encoding != "" && canonicalEncoding(o.Encoding) == "" {
		return fmt.Errorf("records: unknown encoding %q (want one of %s)", o.Encoding, strings.Join(EncodingNames, ", "))
	}
	if o.Delimiter != "" && (o.Format == "jsonl" || o.Format == "sql" || o.Format == "text") {
		return fmt.Errorf("records: a delimiter does not go with format %s", o.Format)
	}
	if o.Format == "delimited" && o.Delimiter == "" {
		return errors.New("records: format delimited needs a delimiter")
	}
	return nil
}

func (o *Options) defaults() {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1 << 20
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = 64 << 20
	}
	if o.SampleSize <= 0 {
		o.SampleSize = 256 << 10
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 1000
	}
	if o.MinBombBytes <= 0 {
		o.MinBombBytes = 64 << 20
	}
	if o.MaxSpill <= 0 {
		o.MaxSpill = 8 << 30
	}
	if o.TmpDir == "" {
		o.TmpDir = os.TempDir()
	}
	if o.RowsPerChunk <= 0 {
		o.RowsPerChunk = 4096
	}
}

// Input is a dataset to read. R is read once, in order. When the dataset
// is a zip, ReaderAt and Size give random access (else the zip is copied
// to a temporary file); when it is an uncompressed SQLite database, Path
// lets SQLite open it in place (read-only, immutable).
type Input struct {
	R        io.Reader
	ReaderAt io.ReaderAt
	Size     int64
	Path     string
}

// maxDepth bounds nested containers (a zip of gzips of ...).
const maxDepth = 4

// reader is the state of one Read.
type reader struct {
	ctx  context.Context
	o    Options
	in   Input
	emit func(*Chunk) error
	seq  int64
	info []*Info
}

// Read streams the dataset in as chunks to emit, called on the caller's
// goroutine in stream order. It returns the Info of every stream read
// (one per zip member). A member that fails is recorded in its Info.Err
// and the others still read; the returned error is for failures of the
// whole input, or the error emit returned.
func Read(ctx context.Context, in Input, o Options, emit func(*Chunk) error) ([]*Info, error) {
	o.defaults()
	r := &reader{ctx: ctx, o: o, in: in, emit: emit}
	err := r.stream(in.R, "", nil, 0, true)
	return r.info, err
}

// stream reads one (possibly compressed) stream; comps are the containers
// already undone, top is whether r is the input itself.
func (r *reader) stream(src io.Reader, member string, comps []string, depth int, top bool) error {
	if depth > maxDepth {
		return ErrNested
	}
	br := bufio.NewReaderSize(src, max(r.o.SampleSize, 64<<10))
	head := peek(br, 16)
	comp := sniffCompression(head)
	switch {
	case comp == CompZip:
		return r.zip(br, member, append(comps, comp), depth, top)
	case comp != CompNone:
		dr, closer, err := decompress(comp, br, &r.o)
		if err != nil {
			return &ParseError{Op: comp, Loc: Loc{Member: member}, Err: err}
		}
		defer closer()
		return r.stream(dr, member, append(comps, comp), depth+1, false)
	case bytes.HasPrefix(head, magicSQLite):
		info := r.newInfo(member, comps)
		info.Format = Format{Kind: KindSQLite}
		p := ""
		if top {
			p = r.in.Path
		}
		err := r.sqlite(br, p, info)
		return r.memberErr(info, err)
	}
	info := r.newInfo(member, comps)
	err := r.text(br, info)
	return r.memberErr(info, err)
}

// memberErr records a member's error in its Info; inside a zip the other
// members go on, so only context cancellation and emit errors propagate.
func (r *reader) memberErr(info *Info, err error) error {
	if err == nil {
		return nil
	}
	info.Err = err
	var ee emitError
	if errors.As(err, &ee) || r.ctx.Err() != nil {
		return err
	}
	if info.Member != "" {
		return nil
	}
	return err
}

// emitError wraps an error returned by the caller's emit.
type emitError struct{ err error }

func (e emitError) Error() string { return e.err.Error() }
func (e emitError) Unwrap() error { return e.err }

func (r *reader) send(c *Chunk) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	c.Seq = r.seq
	r.seq++
	if err := r.emit(c); err != nil {
		return emitError{err}
	}
	return nil
}

func (r *reader) newInfo(member string, comps []string) *Info {
	c := CompNone
	if len(comps) > 0 {
		c = strings.Join(comps, "+")
	}
	info := &Info{Member: member, Compression: c}
	r.info = append(r.info, info)
	return info
}

// text decodes, sniffs and chunks a text stream.
func (r *reader) text(br *bufio.Reader, info *Info) error {
	raw, rerr := br.Peek(r.o.SampleSize)
	atEOF := rerr != nil
	forced := canonicalEncoding(r.o.Encoding)
	info.Encoding = detectEncoding(raw, atEOF)
	if forced != "" {
		info.Encoding = forced
	}
	dec := bufio.NewReaderSize(decode(info.Encoding, br), r.o.SampleSize)
	sample, derr := dec.Peek(r.o.SampleSize)
	info.Format = formatOf(sample, derr != nil, &r.o)
	if info.Format.Kind == KindSQL {
		return r.sql(dec, info)
	}
	return r.lines(dec, info, 1, info.Format.Header != nil)
}

// lines cuts decoded text into chunks of whole records; line is the
// 1-based line of src's first byte, first whether the header record is
// still to come.
func (r *reader) lines(src io.Reader, info *Info, line int64, first bool) error {
	p := delimParser{delim: []byte(info.Format.Delim), quote: info.Format.Quote}
	if info.Format.Kind != KindDelimited {
		p = delimParser{}
	}
	schema := info.Member
	var carry []byte
	eof := false
	size := r.o.ChunkSize
	for !eof {
		buf := make([]byte, len(carry), max(size, len(carry)+r.o.ChunkSize/4))
		copy(buf, carry)
		n, err := fill(src, buf[len(carry):cap(buf)])
		buf = buf[:len(carry)+n]
		switch err {
		case nil:
		case io.EOF:
			eof = true
		default:
			// A truncated compressed stream says io.ErrUnexpectedEOF: an
			// error, unlike the clean end of the data.
			return &ParseError{Op: "read", Loc: Loc{Member: info.Member, Line: line + int64(bytes.Count(buf, []byte{'\n'}))}, Err: err}
		}
		cut := len(buf)
		if !eof {
			b := p.lastBoundary(buf)
			if b < 0 {
				if len(buf) > r.o.MaxRecord {
					// One absurd record costs only itself: skip to the
					// next line end, name what was lost, read on.
					rest, skipped, lines, serr := skipLine(src, buf, r.o.ChunkSize)
					if serr != nil {
						return &ParseError{Op: "read", Loc: Loc{Member: info.Member, Line: line}, Err: serr}
					}
					info.Problems = append(info.Problems, fmt.Sprintf("line %d: record of %d bytes or more over the %d-byte limit skipped (%v); reading resumed at line %d",
						line, skipped, r.o.MaxRecord, ErrTooLarge, line+lines))
					line += lines
					if first {
						first = false // the skipped record was the header's place
					}
					carry = rest
					eof = rest == nil
					size = r.o.ChunkSize
					if eof {
						break
					}
					continue
				}
				// Grow to at most one byte past the limit, so a record
				// just over it is caught however the chunks fell.
				size = min(len(buf)*2, r.o.MaxRecord+1)
				carry = buf
				continue
			}
			cut = b + 1
			size = r.o.ChunkSize
		}
		data := buf[:cut]
		carry = buf[cut:]
		if len(data) == 0 {
			continue
		}
		c := &Chunk{Info: info, Schema: schema, Names: info.Format.Header, data: data, line: line, skipFirst: first}
		if first && len(bytes.TrimSpace(data)) > 0 {
			first = false // this chunk holds the header record
		}
		line += int64(bytes.Count(data, []byte{'\n'}))
		if err := r.send(c); err != nil {
			return err
		}
	}
	return nil
}

// skipLine discards buf and src up to and including the next '\n'. It
// returns what follows it (nil when the data ends first), the bytes
// skipped and the line ends passed (the record's own, 1, plus none: a
// newline inside the record would have been a boundary).
func skipLine(src io.Reader, buf []byte, chunk int) (rest []byte, skipped int64, lines int64, err error) {
	skipped = int64(len(buf))
	scratch := buf[:cap(buf)]
	if len(scratch) > chunk {
		scratch = scratch[:chunk]
	}
	for {
		n, rerr := src.Read(scratch)
		if i := bytes.IndexByte(scratch[:n], '\n'); i >= 0 {
			skipped += int64(i + 1)
			rest = append([]byte(nil), scratch[i+1:n]...)
			if rest == nil {
				rest = []byte{}
			}
			if rerr != nil && rerr != io.EOF {
				return nil, skipped, 1, rerr
			}
			return rest, skipped, 1, nil
		}
		skipped += int64(n)
		switch {
		case rerr == io.EOF:
			return nil, skipped, 0, nil
		case rerr != nil:
			return nil, skipped, 0, rerr
		}
	}
}

// fill reads into b until it is full (nil), the data ends (io.EOF), or
// another error, passed on as is (io.ReadFull would turn a reader's own
// io.ErrUnexpectedEOF into a clean short read).
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

// zip reads every member of a zip archive.
func (r *reader) zip(br *bufio.Reader, member string, comps []string, depth int, top bool) error {
	ra, size := r.in.ReaderAt, r.in.Size
	if !top || ra == nil {
		f, n, err := spillTemp(br, r.o.TmpDir, r.o.MaxSpill)
		if err != nil {
			return &ParseError{Op: "zip", Loc: Loc{Member: member}, Err: err}
		}
		defer os.Remove(f.Name())
		defer f.Close()
		ra, size = f, n
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return &ParseError{Op: "zip", Loc: Loc{Member: member}, Err: err}
	}
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		name := zf.Name
		if member != "" {
			name = member + "/" + name
		}
		if err := r.zipMember(zf, name, comps, depth); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) zipMember(zf *zip.File, name string, comps []string, depth int) error {
	// Declared sizes are distrusted, but an absurd declared ratio is
	// refused before reading a byte.
	if zf.UncompressedSize64 > uint64(r.o.MinBombBytes) && zf.UncompressedSize64/uint64(r.o.MaxRatio) > zf.CompressedSize64 {
		info := r.newInfo(name, comps)
		info.Err = &ParseError{Op: "zip member", Loc: Loc{Member: name}, Err: ErrBomb}
		return nil
	}
	rc, err := zf.Open()
	if err != nil {
		info := r.newInfo(name, comps)
		info.Err = &ParseError{Op: "zip member", Loc: Loc{Member: name}, Err: err}
		return nil
	}
	defer rc.Close()
	guard := &ratioReader{r: rc, in: &countReader{n: int64(zf.CompressedSize64)}, maxRatio: r.o.MaxRatio, floor: r.o.MinBombBytes}
	return r.stream(guard, name, comps, depth+1, false)
}

// spillTemp copies src to a new temporary file, at most max bytes.
func spillTemp(src io.Reader, dir string, maxBytes int64) (*os.File, int64, error) {
	f, err := os.CreateTemp(dir, "evidx-spill-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, io.LimitReader(src, maxBytes+1))
	if err == nil && n > maxBytes {
		err = fmt.Errorf("%w (%d bytes)", ErrSpill, maxBytes)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

package records

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
)

// Span is a byte range of a dataset file that starts and ends at record
// boundaries, so it can be parsed on another machine than its
// neighbours. Spans exist only for files whose bytes are their decoded
// text (uncompressed UTF-8 without BOM) in a line-based format
// (delimited, JSON Lines, plain text).
type Span struct {
	Start, End int64
	// Line is the 1-based line of the span's first byte.
	Line int64
	// Header says the file's header record is still to come: it is in
	// this span (or the file has only blank lines before here).
	Header bool
}

// errNotSplit stops Spans on a stream that cannot be cut in byte ranges.
var errNotSplit = errors.New("records: not splittable")

// Spans cuts the dataset into spans of at least size bytes (the last may
// be shorter), at the boundaries the reader's own chunking finds, so each
// span holds exactly the records the whole-file reader would give for
// those bytes. It returns the Info the reader sniffed; spans is nil when
// the file is not splittable (compressed, zip, SQLite, SQL dump, not UTF-8),
// and then the file is to be read whole with Read.
func Spans(ctx context.Context, in Input, o Options, size int64) (*Info, []Span, error) {
	o.defaults()
	if size > 0 && int64(o.ChunkSize) > size {
		o.ChunkSize = int(size)
	}
	var spans []Span
	var info *Info
	var pos int64
	split := true
	emit := func(c *Chunk) error {
		if info == nil {
			info = c.Info
		}
		if c.Info != info || c.rows != nil || c.Info.Member != "" || c.Info.Compression != CompNone ||
			c.Info.Encoding != EncUTF8 || c.Info.Format.Kind == KindSQL || c.Info.Format.Kind == KindSQLite {
			split = false
			return errNotSplit
		}
		n := int64(len(c.data))
		if k := len(spans); k > 0 && spans[k-1].End-spans[k-1].Start < size {
			spans[k-1].End += n
		} else {
			spans = append(spans, Span{Start: pos, End: pos + n, Line: c.line, Header: c.skipFirst})
		}
		pos += n
		return nil
	}
	br := bufio.NewReaderSize(in.R, 64<<10)
	head := peek(br, 16)
	if sniffCompression(head) != CompNone || bytes.HasPrefix(head, magicSQLite) {
		return nil, nil, nil
	}
	r := &reader{ctx: ctx, o: o, emit: emit}
	err := r.stream(br, "", nil, 0, false)
	if errors.Is(err, errNotSplit) {
		err = nil
	}
	if len(r.info) > 0 {
		info = r.info[0]
	}
	if err != nil {
		return info, nil, err
	}
	if !split || info == nil || info.Err != nil || len(r.info) != 1 {
		return info, nil, nil
	}
	if info.Format.Kind == KindSQL || info.Format.Kind == KindSQLite || info.Compression != CompNone || info.Encoding != EncUTF8 {
		return info, nil, nil
	}
	return info, spans, nil
}

// ReadSpan reads one span of a splittable file through the reader's own
// chunking, as Read would have read those bytes; info is the Info that
// Spans or Read gave for the file (its format decides the parsing).
func ReadSpan(ctx context.Context, ra io.ReaderAt, info *Info, sp Span, o Options, emit func(*Chunk) error) error {
	o.defaults()
	r := &reader{ctx: ctx, o: o, emit: emit}
	return r.lines(io.NewSectionReader(ra, sp.Start, sp.End-sp.Start), info, sp.Line, sp.Header)
}

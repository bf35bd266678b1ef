package job

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*loadFn)(nil)).Elem())
	register.DoFn3x1[context.Context, int, func(*[]byte) bool, error](&loadFn{})
}

// loadFn writes one shard of a load: every (identity, file) with its
// occurrences and first location in file order (the earliest span, then
// the earliest sighting in it), sorted, as index.ImportEntry JSON lines
// in Out/shard-NNN.jsonl.
type loadFn struct{ Out string }

func (f *loadFn) ProcessElement(ctx context.Context, shard int, values func(*[]byte) bool) error {
	type key struct {
		kind  int
		value string
		file  int
	}
	type agg struct {
		n         int64
		span, seq uint64
		loc       string
	}
	seen := map[key]*agg{}
	var batch []byte
	for values(&batch) {
		for len(batch) > 0 {
			l, m := binary.Uvarint(batch)
			if m <= 0 || l > uint64(len(batch)-m) {
				return fmt.Errorf("shard %d: bad sighting batch", shard)
			}
			sg, err := decodeSighting(batch[m : m+int(l)])
			if err != nil {
				return fmt.Errorf("shard %d: %w", shard, err)
			}
			batch = batch[m+int(l):]
			k := key{sg.kind, string(sg.value), sg.file}
			a := seen[k]
			if a == nil {
				seen[k] = &agg{n: sg.n, span: sg.span, seq: sg.seq, loc: sg.loc}
				continue
			}
			a.n += sg.n
			if sg.span < a.span || sg.span == a.span && sg.seq < a.seq {
				a.span, a.seq, a.loc = sg.span, sg.seq, sg.loc
			}
		}
	}
	keys := make([]key, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	kinds := identity.Kinds()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.kind != b.kind {
			return kinds[a.kind] < kinds[b.kind]
		}
		return a.value < b.value
	})
	name := joinPath(f.Out, fmt.Sprintf("shard-%03d.jsonl", shard))
	return writeFile(ctx, name, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, k := range keys {
			a := seen[k]
			if err := enc.Encode(index.ImportEntry{Kind: string(kinds[k.kind]), Value: k.value, File: k.file, Occurrences: a.n, FirstLoc: a.loc}); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// Load runs the load pipeline: the count of Count, per shard the file
// `evidx dataset import` loads, and per input file its persons record
// file (records-NNNNNN.rec, the bytes `dataset add` of the file records),
// into out, with its manifest (index.ImportManifest: the inputs' SHA-256
// and their record files', the runner and its job id, each output's
// SHA-256, the count report).
func Load(ctx context.Context, runner string, files []string, o Options, out, tool string) (Result, error) {
	o.Load, o.Out = true, out
	if !remote(out) {
		if err := os.MkdirAll(out, 0o700); err != nil {
			return Result{}, err
		}
		if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
			return Result{}, fmt.Errorf("--out %s is not empty", out)
		}
	}
	start := time.Now().UTC()
	res, err := Count(ctx, runner, files, o)
	if err != nil {
		return res, err
	}
	rep, err := ParseCount(res.Report)
	if err != nil {
		return res, err
	}
	man := index.ImportManifest{Tool: tool, Runner: runner, JobID: res.JobID, Shards: o.Shards,
		Started: start.Format(time.RFC3339), Finished: time.Now().UTC().Format(time.RFC3339), Count: res.Report}
	for i, f := range rep.Files {
		in := index.ImportInput{Index: i, Path: files[i], Name: baseName(files[i]), Size: f.Size, SHA256: f.SHA256, Error: f.Error}
		if f.Error != "" {
			dropRecords(ctx, out, i)
		} else {
			rec, err := joinRecords(ctx, out, i)
			if err != nil {
				return res, err
			}
			in.Records = &rec
		}
		man.Inputs = append(man.Inputs, in)
	}
	fs, err := filesystem.New(ctx, out)
	if err != nil {
		return res, err
	}
	defer fs.Close()
	list, err := fs.List(ctx, joinPath(out, "shard-*.jsonl"))
	if err != nil {
		return res, err
	}
	sort.Strings(list)
	for _, p := range list {
		if !remote(p) {
			os.Chmod(p, 0o600) // personal data
		}
		b, err := readFile(ctx, p)
		if err != nil {
			return res, err
		}
		sum := sha256.Sum256(b)
		man.Outputs = append(man.Outputs, index.ImportOutput{Name: baseName(p), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, man); err != nil {
		return res, err
	}
	mp := joinPath(out, index.ImportManifestName)
	err = writeFile(ctx, mp, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err == nil && !remote(mp) {
		err = os.Chmod(mp, 0o600)
	}
	return res, err
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// recordPart writes the persons records of one Work to
// Out/records-FFFFFF-SSSSSS.part (file, span + 1; 0 for a whole file);
// Load joins a file's parts in span order into its record file. A retried
// Work writes the same part again.
type recordPart struct {
	w   io.WriteCloser
	bw  *bufio.Writer
	buf []byte
	err error
}

func recordPartName(file, span int) string {
	return fmt.Sprintf("records-%06d-%06d.part", file, span+1)
}

func newRecordPart(ctx context.Context, out string, w Work) (*recordPart, error) {
	name := joinPath(out, recordPartName(w.File, w.Span))
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	wc, err := fs.OpenWrite(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &recordPart{w: wc, bw: bufio.NewWriterSize(wc, 1<<20)}, nil
}

// add records a batch of sightings (called in the file's order).
func (r *recordPart) add(ss []identity.Sighting) error {
	if r.err == nil {
		r.buf = persons.AppendRecords(r.buf[:0], ss)
		_, r.err = r.bw.Write(r.buf)
	}
	return r.err
}

// close ends the part; a write error while reading is returned here.
func (r *recordPart) close() error {
	if r.w == nil {
		return r.err
	}
	if r.err == nil {
		r.err = r.bw.Flush()
	}
	if err := r.w.Close(); r.err == nil {
		r.err = err
	}
	r.w = nil
	return r.err
}

func (r *recordPart) abort() {
	if r.w != nil {
		r.w.Close()
		r.w = nil
	}
}

// joinRecords writes input file's record file, Out/records-FFFFFF.rec:
// persons.RecordFileMagic, then the file's parts in span order (removed
// once joined), hashed on the way. A whole file has part 0, a cut one
// parts 1 to n; a gap is an error.
func joinRecords(ctx context.Context, out string, file int) (index.ImportOutput, error) {
	fs, err := filesystem.New(ctx, out)
	if err != nil {
		return index.ImportOutput{}, err
	}
	defer fs.Close()
	parts, err := fs.List(ctx, joinPath(out, fmt.Sprintf("records-%06d-*.part", file)))
	if err != nil {
		return index.ImportOutput{}, err
	}
	sort.Strings(parts)
	first := 1
	if len(parts) > 0 && baseName(parts[0]) == recordPartName(file, -1) {
		first = 0
	}
	for i, p := range parts {
		if baseName(p) != recordPartName(file, first+i-1) {
			return index.ImportOutput{}, fmt.Errorf("%s: records of file %d: %s where %s was expected", out, file, baseName(p), recordPartName(file, first+i-1))
		}
	}
	if len(parts) == 0 || first == 0 && len(parts) > 1 {
		return index.ImportOutput{}, fmt.Errorf("%s: records of file %d: %d parts", out, file, len(parts))
	}
	name := fmt.Sprintf("records-%06d.rec", file)
	dst := joinPath(out, name)
	h := sha256.New()
	var n int64
	err = writeFile(ctx, dst, func(w io.Writer) error {
		mw := io.MultiWriter(w, h)
		m, err := io.WriteString(mw, persons.RecordFileMagic)
		n += int64(m)
		if err != nil {
			return err
		}
		for _, p := range parts {
			r, err := fs.OpenRead(ctx, p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			m, err := io.Copy(mw, r)
			r.Close()
			n += m
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return index.ImportOutput{}, err
	}
	if !remote(dst) {
		os.Chmod(dst, 0o600) // personal data
	}
	removeAll(ctx, fs, parts)
	return index.ImportOutput{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// dropRecords removes the parts of a file the job could not read.
func dropRecords(ctx context.Context, out string, file int) {
	fs, err := filesystem.New(ctx, out)
	if err != nil {
		return
	}
	defer fs.Close()
	parts, _ := fs.List(ctx, joinPath(out, fmt.Sprintf("records-%06d-*.part", file)))
	removeAll(ctx, fs, parts)
}

// removeAll removes files where the filesystem can (parts left on one
// that cannot are not listed in the manifest, so not imported).
func removeAll(ctx context.Context, fs filesystem.Interface, paths []string) {
	if rm, ok := fs.(filesystem.Remover); ok {
		for _, p := range paths {
			rm.Remove(ctx, p)
		}
	}
}

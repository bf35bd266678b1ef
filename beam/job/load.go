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

// Load runs the load pipeline: the count of Count, and per shard the file
// `evidx dataset import` loads, into out, with its manifest
// (index.ImportManifest: the inputs' SHA-256, the runner and its job id,
// each output's SHA-256, the count report).
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
		man.Inputs = append(man.Inputs, index.ImportInput{Index: i, Path: files[i], Name: baseName(files[i]), Size: f.Size, SHA256: f.SHA256, Error: f.Error})
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

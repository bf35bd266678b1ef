package pipeline

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

// ErrImport refuses an import directory that is not what its manifest says.
var ErrImport = errors.New("dataset import")

// ImportResult is what one import directory brought into a case.
type ImportResult struct {
	Dir      string              `json:"dir"`
	Runner   string              `json:"runner"`
	JobID    string              `json:"job_id"`
	Sources  []index.SourceStats `json:"sources"`
	Problems []string            `json:"problems"`
	// Persons are the case's persons after the import (absent when
	// nothing new was loaded or linking was turned off).
	Persons *persons.Summary `json:"persons,omitempty"`
}

// maxManifest and maxEntryLine bound what an import directory can make
// evidx read into memory.
const (
	maxManifest  = 256 << 20
	maxEntryLine = 1 << 20
)

// ImportDatasets loads into c the datasets a job computed elsewhere (the
// directory `evidx-beam load --out DIR` writes): each output's SHA-256 is
// checked against the manifest first, then every input file becomes a
// source, in the job's input order, exactly as `dataset add` of the files
// in that order would make it (unique, new and shared counts; first
// locations), with the file's SHA-256, rows, rejected and invalid counts,
// column roles and problems as the job's reader reported them. A file the
// job could not read is named in Problems. Each source has its
// "dataset.import" audit line, and one more records the job (runner, job
// id, the outputs' hashes). Each input's persons record file (the bytes
// `dataset add` of the file records) is checked against its SHA-256 and
// read through before anything is loaded, installed as the source's, and
// the case is relinked as after `dataset add` (link says how): imported
// sources link exactly as added ones. A manifest of a job that wrote no
// record files still imports; its sources are listed unlinked.
func ImportDatasets(ctx context.Context, c *custody.Case, dir string, progress Progress, link LinkOptions) (*ImportResult, error) {
	progress = orNone(progress)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	man, err := readManifest(abs)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Dir: abs, Runner: man.Runner, JobID: man.JobID, Sources: []index.SourceStats{}, Problems: []string{}}
	var count struct {
		Files []struct {
			ingest.FileStats
			Error string `json:"error"`
		} `json:"files"`
	}
	if err := json.Unmarshal(man.Count, &count); err != nil || len(count.Files) != len(man.Inputs) {
		return nil, fmt.Errorf("%w: %s: the count report does not match the %d inputs", ErrImport, ImportManifestPath(abs), len(man.Inputs))
	}

	// The outputs, checked and split per input file into the scratch
	// directory (personal data: removed with it).
	var outputs []custody.Item
	for _, o := range man.Outputs {
		p := filepath.Join(abs, filepath.Base(o.Name))
		sum, size, err := digest.SHA256File(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrImport, err)
		}
		if sum != o.SHA256 || size != o.Size {
			return nil, fmt.Errorf("%w: %s: SHA-256 %s, %d bytes; the manifest says %s, %d bytes (changed since the job wrote it)", ErrImport, p, sum, size, o.SHA256, o.Size)
		}
		outputs = append(outputs, custody.Item{Kind: "import", Path: p, Size: size, SHA256: sum})
	}
	for _, in := range man.Inputs {
		if in.Records == nil || in.Error != "" {
			continue
		}
		p := filepath.Join(abs, in.Records.Name)
		sum, size, err := digest.SHA256File(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrImport, err)
		}
		if sum != in.Records.SHA256 || size != in.Records.Size {
			return nil, fmt.Errorf("%w: %s: SHA-256 %s, %d bytes; the manifest says %s, %d bytes (changed since the job wrote it)", ErrImport, p, sum, size, in.Records.SHA256, in.Records.Size)
		}
		outputs = append(outputs, custody.Item{Kind: "import", Path: p, Size: size, SHA256: sum})
	}
	if extra, _ := filepath.Glob(filepath.Join(abs, "shard-*.jsonl")); len(extra) != len(man.Outputs) {
		return nil, fmt.Errorf("%w: %s holds %d shard files, the manifest lists %d", ErrImport, abs, len(extra), len(man.Outputs))
	}
	tmp, err := c.Scratch()
	if err != nil {
		return nil, err
	}
	parts, err := splitImport(ctx, abs, man, tmp)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range parts {
			os.Remove(p)
		}
	}()

	ix, err := openIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	loaded := false
	for i, in := range man.Inputs {
		fs := count.Files[i]
		if fs.Error != "" || in.Error != "" {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: not read by the job: %s", in.Path, cmp.Or(fs.Error, in.Error)))
			continue
		}
		cols, _ := json.Marshal(fs.Columns)
		info := index.FileInfo{SHA256: in.SHA256, Format: fs.Format, Encoding: fs.Encoding, Compression: fs.Compression,
			Rows: fs.Rows, Rejected: fs.Rejected, Invalid: fs.Invalid, Columns: cols, Problems: fs.Problems}
		part := parts[i]
		feed := replayFeed(info, func(ctx context.Context, fn func(identity.Sighting, int64) error) error {
			return readPart(part, fn)
		})
		progress.Stage("importing "+in.Name, "", 0)
		st, err := ix.AddSource(ctx, index.Source{Name: in.Name, SHA256: in.SHA256, Size: in.Size, Path: in.Path}, feed, &loadProgress{p: progress})
		loaded = loaded || st.ID != 0 && !st.Skipped
		linked := false
		pdir := persons.Dir(ix.Dir())
		// A source skipped as done gets the records it lacks (an import
		// cut short after the load); one that has them keeps them.
		if err == nil && in.Records != nil && (!st.Skipped || st.ID != 0 && !persons.HasRecords(pdir, st.ID)) {
			// Checked again while copied: the file may have changed since.
			err = persons.InstallSource(ctx, pdir, st.ID, filepath.Join(abs, in.Records.Name), in.Records.SHA256)
			linked = err == nil
			loaded = loaded || linked
		}
		entry := custody.Entry{Action: "dataset.import", Inputs: []custody.Item{{Kind: "dataset", Path: in.Path, SHA256: in.SHA256, Size: in.Size}}}
		if err != nil {
			entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
		} else {
			entry.Outcome = custody.OutcomeOK
			entry.Details = map[string]any{"source_id": st.ID, "name": st.Name, "skipped": st.Skipped,
				"rows": st.Rows, "rejected": st.Rejected, "sightings": st.Sightings, "unique": st.Unique, "new": st.New,
				"runner": man.Runner, "job_id": man.JobID, "records": linked}
		}
		if aerr := c.Audit(entry); aerr != nil {
			return res, errors.Join(err, aerr)
		}
		if err != nil {
			return res, err
		}
		res.Sources = append(res.Sources, st)
	}
	if loaded {
		if _, err := c.RecordShards(ctx); err != nil {
			return res, err
		}
	}
	man.Count = nil
	err = c.Audit(custody.Entry{Action: "dataset.import.job", Outcome: custody.OutcomeOK,
		Inputs: append([]custody.Item{{Kind: "import", Path: ImportManifestPath(abs)}}, outputs...),
		Details: map[string]any{"tool": man.Tool, "runner": man.Runner, "job_id": man.JobID, "shards": man.Shards,
			"started": man.Started, "finished": man.Finished, "inputs": man.Inputs, "sources": len(res.Sources), "problems": res.Problems}})
	if err == nil && loaded && !link.NoLink {
		res.Persons, err = relink(ctx, c, ix, link)
	}
	return res, err
}

// ImportManifestPath is the manifest of an import directory.
func ImportManifestPath(dir string) string { return filepath.Join(dir, index.ImportManifestName) }

func readManifest(dir string) (*index.ImportManifest, error) {
	p := ImportManifestPath(dir)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImport, p, err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%w: %s: over %d bytes", ErrImport, p, maxManifest)
	}
	var man index.ImportManifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImport, p, err)
	}
	for i, in := range man.Inputs {
		if in.Index != i || len(in.SHA256) != 64 && in.Error == "" {
			return nil, fmt.Errorf("%w: %s: input %d malformed", ErrImport, p, i)
		}
	}
	for _, o := range man.Outputs {
		if o.Name != filepath.Base(o.Name) || !strings.HasPrefix(o.Name, "shard-") {
			return nil, fmt.Errorf("%w: %s: output %q is not a shard file of the directory", ErrImport, p, o.Name)
		}
	}
	for i, in := range man.Inputs {
		if r := in.Records; r != nil && (r.Name != filepath.Base(r.Name) || !strings.HasPrefix(r.Name, "records-") || len(r.SHA256) != 64) {
			return nil, fmt.Errorf("%w: %s: input %d: records %q is not a record file of the directory", ErrImport, p, i, r.Name)
		}
	}
	return &man, nil
}

// splitImport reads every shard file once and writes each input's
// entries to a file of its own in tmp (kind index, occurrences, value and
// first location, length-prefixed). Line N of a bad entry is named.
func splitImport(ctx context.Context, dir string, man *index.ImportManifest, tmp string) ([]string, error) {
	paths := make([]string, len(man.Inputs))
	ws := make([]*bufio.Writer, len(man.Inputs))
	fs := make([]*os.File, len(man.Inputs))
	closeAll := func() {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range man.Inputs {
		f, err := os.CreateTemp(tmp, "import-*")
		if err != nil {
			closeAll()
			return nil, err
		}
		fs[i], paths[i], ws[i] = f, f.Name(), bufio.NewWriterSize(f, 256<<10)
	}
	kinds := identity.Kinds()
	var rec []byte
	for _, o := range man.Outputs {
		p := filepath.Join(dir, o.Name)
		f, err := os.Open(p)
		if err != nil {
			closeAll()
			return paths, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), maxEntryLine)
		line := 0
		for sc.Scan() {
			line++
			if line%65536 == 0 && ctx.Err() != nil {
				break
			}
			var e index.ImportEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				f.Close()
				closeAll()
				return paths, fmt.Errorf("%w: %s line %d: %v", ErrImport, p, line, err)
			}
			k := slices.Index(kinds, identity.Kind(e.Kind))
			if k < 0 || e.File < 0 || e.File >= len(ws) || e.Occurrences <= 0 || e.Value == "" {
				f.Close()
				closeAll()
				return paths, fmt.Errorf("%w: %s line %d: bad entry (kind %q, file %d, %d occurrences)", ErrImport, p, line, e.Kind, e.File, e.Occurrences)
			}
			rec = append(rec[:0], byte(k))
			rec = binary.AppendUvarint(rec, uint64(e.Occurrences))
			rec = binary.AppendUvarint(rec, uint64(len(e.Value)))
			rec = append(rec, e.Value...)
			rec = binary.AppendUvarint(rec, uint64(len(e.FirstLoc)))
			rec = append(rec, e.FirstLoc...)
			ws[e.File].Write(rec)
		}
		err = sc.Err()
		f.Close()
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			closeAll()
			return paths, fmt.Errorf("%w: %s line %d: %v", ErrImport, p, line+1, err)
		}
	}
	for i, w := range ws {
		if err := w.Flush(); err != nil {
			closeAll()
			return paths, err
		}
		if err := fs[i].Close(); err != nil {
			return paths, err
		}
		fs[i] = nil
	}
	return paths, nil
}

// readPart calls fn for every entry of one input's part file.
func readPart(path string, fn func(identity.Sighting, int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	kinds := identity.Kinds()
	str := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return "", err
		}
		b := make([]byte, n)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	for {
		k, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		v, err := str()
		if err != nil {
			return err
		}
		loc, err := str()
		if err != nil {
			return err
		}
		if err := fn(identity.Sighting{Kind: kinds[k], Value: v, Loc: loc}, int64(n)); err != nil {
			return err
		}
	}
}

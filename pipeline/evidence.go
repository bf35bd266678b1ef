package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evidx/evidx/carve"
	"github.com/evidx/evidx/carve/scan"
	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/layer"
	"github.com/evidx/evidx/ingest/source"
	"github.com/evidx/evidx/persons"
)

// EvidenceOptions says what `evidence add` does with one evidence item.
type EvidenceOptions struct {
	ID       string
	Paths    []string        // the image, its first segment, or raw pieces in order
	Expected custody.Hashes  // hashes from the acquisition notes
	Seizure  custody.Seizure // custody facts recorded with the item
	NoCarve  bool            // skip carving unallocated space
	NoScan   bool            // skip the identifier scan of the raw bytes
	NoIndex  bool            // do not load the datasets found into the index
	Zone     *time.Location  // of the local times FAT stores (nil: read as UTC, said in problems)
	// Resume takes up an item registered before whose intake was cut short:
	// its recorded hashes stand (verify --evidence re-checks the media),
	// what the walk and carve recorded is cleared and done again, and
	// datasets already loaded are recognised by SHA-256 and skipped.
	Resume bool
	// Progress, if set, is told each stage (hashing the media, walking,
	// carving, scanning, loading datasets) and how far it is.
	Progress Progress
	// Warn, if set, receives one-line problems that do not stop the run.
	Warn func(msg string)
}

// FileCounts counts the entries a walk found.
type FileCounts struct {
	Allocated int `json:"allocated"` // allocated files (not directories)
	Deleted   int `json:"deleted"`   // deleted files
	Dirs      int `json:"dirs"`      // directories, allocated or deleted
	Extracted int `json:"extracted"` // files whose content was stored in the case
}

// EvidenceResult is what AddEvidence found on one evidence item.
type EvidenceResult struct {
	Evidence *custody.Evidence   `json:"evidence"`
	Volumes  []custody.Volume    `json:"volumes"`
	Files    FileCounts          `json:"files"`
	Carved   int                 `json:"carved"`
	Datasets []index.SourceStats `json:"datasets"`
	// Persons are the case's persons after loading the datasets found.
	Persons *persons.Summary `json:"persons,omitempty"`
	// NotDatasets are the candidate files whose content did not parse as
	// a table of people, with the reason; the feature scan covers them.
	NotDatasets  []ingest.Decision     `json:"not_datasets"`
	Features     map[identity.Kind]int `json:"features"`
	FeatureFiles []string              `json:"feature_files"`
	// Hashsets counts, per hash set of the case, the files found in it.
	Hashsets map[string]int `json:"hashsets,omitempty"`
	Problems []string       `json:"problems"`
}

// AddEvidence runs the whole intake of one evidence item into case c: hash
// and verify the media, register them, walk every file system (allocated and
// deleted files, stored by SHA-256), carve the unallocated space, scan the
// raw bytes for identifiers, and load every dataset found (extracted or
// carved) into the identity index with the evidence item as its origin.
//
// Media that fail verification are still walked, so the examiner sees what
// is there; the returned error then wraps custody.ErrNotVerified. Damage in
// file systems, carving and datasets is recorded in Problems and the run
// goes on.
func AddEvidence(ctx context.Context, c *custody.Case, opts EvidenceOptions) (*EvidenceResult, error) {
	fp := newFileProgress(c.Dir(), "evidence add "+opts.ID, opts.Progress)
	opts.Progress = fp
	res, err := addEvidence(ctx, c, opts)
	fp.finish(err)
	return res, err
}

func addEvidence(ctx context.Context, c *custody.Case, opts EvidenceOptions) (*EvidenceResult, error) {
	prog := orNone(opts.Progress)
	res := &EvidenceResult{Features: map[identity.Kind]int{}, Datasets: []index.SourceStats{}, NotDatasets: []ingest.Decision{}, Problems: []string{}, FeatureFiles: []string{}}
	warn := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		res.Problems = append(res.Problems, msg)
		if opts.Warn != nil {
			opts.Warn(msg)
		}
	}

	var ev *custody.Evidence
	var verr error
	if opts.Resume {
		// Media that did not verify at intake are taken up all the same:
		// the damage is named, the rest is read.
		if ev, verr = resumeEvidence(ctx, c, opts.ID, opts.Paths); verr != nil && (ev == nil || !errors.Is(verr, custody.ErrNotVerified)) {
			return nil, verr
		}
	}
	if ev == nil {
		prog.Stage("hashing media", "bytes", mediaSize(opts.Paths))
		ev, verr = c.AddEvidenceImage(ctx, custody.Intake{
			ID:       opts.ID,
			Paths:    opts.Paths,
			Expected: opts.Expected,
			Seizure:  opts.Seizure,
			Measure:  MeasureImage,
			Progress: prog.Add,
		})
		if ev == nil {
			return nil, verr
		}
	}
	res.Evidence = ev
	if verr != nil && !errors.Is(verr, custody.ErrNotVerified) {
		return res, verr
	}

	img, err := source.Open(opts.Paths[0])
	if err != nil {
		return res, err
	}
	defer img.Close()
	// Damage costs only what it touches: a bad EWF chunk or unreadable
	// sector reads as zeros and is recorded as a bad range; the walk,
	// extraction, carving, scan and datasets go on everywhere else.
	media := source.NewTolerant(img, img.Size())
	disk, err := probe.OpenDiskIn(media, img.Size(), opts.Zone)
	if err != nil {
		return res, fmt.Errorf("evidence %s: %w", opts.ID, err)
	}

	w := &walker{c: c, disk: disk, media: media, evID: opts.ID, known: map[string]bool{}, warn: warn, problems: img.Problems(), prog: prog}
	if err := w.walk(ctx, res); err != nil {
		return res, err
	}
	// A stage that fails is named and the next one still runs: the
	// datasets on the media count whatever the carver met.
	var stageErr error
	stage := func(err error) error {
		if err != nil && ctx.Err() == nil {
			warn("%v", err)
			stageErr = errors.Join(stageErr, err)
			return nil
		}
		return err
	}
	if !opts.NoCarve {
		if err := stage(w.carve(ctx, media, res)); err != nil {
			return res, err
		}
	}
	// After the carve: carved items are looked up too.
	if err := stage(markHashsets(ctx, c, opts.ID, res, warn)); err != nil {
		return res, err
	}
	if !opts.NoScan {
		prog.Stage("scanning", "bytes", img.Size())
		if err := stage(scanFeatures(ctx, c, media, img.Size(), opts.ID, prog.Add, res)); err != nil {
			return res, err
		}
	}
	if !opts.NoIndex && len(w.datasets) > 0 {
		prog.Stage("loading datasets", "files", int64(len(w.datasets)))
		if err := loadFound(ctx, c, opts.ID, w.datasets, res, warn, prog); err != nil {
			return res, err
		}
	}
	if err := recordDamage(c, opts.ID, media, warn); err != nil {
		return res, err
	}
	return res, errors.Join(verr, stageErr)
}

// recordDamage names in the audit log (and so in the report) every range
// of the media that read as zeros.
func recordDamage(c *custody.Case, evID string, media *source.Tolerant, warn func(string, ...any)) error {
	problems := media.Problems()
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		warn("evidence %s: %s", evID, p)
	}
	return c.Audit(custody.Entry{Action: "evidence.damage", Outcome: custody.OutcomeOK,
		Inputs:  []custody.Item{{Kind: "evidence", ID: evID}},
		Details: map[string]any{"bad_ranges": media.Bad(), "problems": problems}})
}

// resumeEvidence returns the registered item id, checked to be the image
// at paths, with its walk and carve findings cleared; nil when id is not
// registered yet.
func resumeEvidence(ctx context.Context, c *custody.Case, id string, paths []string) (*custody.Evidence, error) {
	all, err := c.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(e custody.Evidence) bool { return e.ID == id })
	if i < 0 {
		return nil, nil
	}
	ev := &all[i]
	first, err := filepath.Abs(paths[0])
	if err != nil {
		return nil, err
	}
	if len(ev.Segments) == 0 || !samePaths([]string{first}, []source.Segment{{Path: ev.Segments[0].Path}}) {
		return nil, fmt.Errorf("evidence %s: registered from another image; --resume takes the same first segment", id)
	}
	img, err := source.Open(first)
	if err != nil {
		return nil, err
	}
	size := img.Size()
	img.Close()
	if size != ev.Size {
		return nil, fmt.Errorf("evidence %s: media now %d bytes, %d at intake", id, size, ev.Size)
	}
	if err := c.ClearFindings(ctx, id); err != nil {
		return nil, err
	}
	if err := c.Audit(custody.Entry{Action: "evidence.resume", Outcome: custody.OutcomeOK,
		Inputs:  []custody.Item{{Kind: "evidence", ID: id, Path: first, Size: size, SHA256: ev.Computed.SHA256}},
		Details: map[string]any{"cleared": []string{"volumes", "files", "carved"}}}); err != nil {
		return nil, err
	}
	if ev.Verified != nil && !*ev.Verified {
		return ev, fmt.Errorf("evidence %s: %w at intake: %s", id, custody.ErrNotVerified, ev.HashReason)
	}
	return ev, nil
}

// datasetFile is a file found on the media that looks like a leaked
// dataset: its content is the stored object.
type datasetFile struct {
	evidencePath string // "p1:/stock/leak.csv" or "carved:1048576.csv"
	object       string // SHA-256 of the content in the case's store
}

// walker carries the state of one evidence item's walk and carve.
type walker struct {
	c        *custody.Case
	disk     *fs.Disk
	media    *source.Tolerant // the disk's bytes, bad ranges read as zeros
	evID     string
	known    map[string]bool // SHA-256 of every extracted file: the carver skips them
	datasets []datasetFile
	warn     func(format string, a ...any)
	head     []byte   // scratch for the first bytes of each file, reused: files come by the hundred thousand
	problems []string // of the media layer, recorded with the disk's at the end of the walk
	prog     Progress
	inner    []layer.Inner // disks found inside files, carved after the image
}

// walk records every volume and file and stores the content of every
// recoverable file.
func (w *walker) walk(ctx context.Context, res *EvidenceResult) error {
	for _, p := range w.disk.Partitions {
		v := custody.Volume{EvidenceID: w.evID, Index: p.Index, Start: p.Start, Size: p.Size, Type: p.Type, FileSystem: p.FileSystem}
		if p.Error != "" {
			v.Problems = append(v.Problems, p.Error)
		}
		if p.FS != nil {
			v.Problems = append(v.Problems, p.FS.Problems()...)
		}
		if err := w.c.AddVolume(ctx, v); err != nil {
			return err
		}
		res.Volumes = append(res.Volumes, v)
	}
	batch, err := w.c.NewBatch(ctx, 0)
	if err != nil {
		return err
	}
	w.prog.Stage("walking", "entries", 0)
	start := time.Now()
	inner, err := layer.WalkInner(ctx, w.disk, func(lf *layer.File) error {
		f, part := lf.File, lf.Partition
		row := custody.File{EvidenceID: w.evID, Volume: part, Path: f.Path, Size: f.Size, Type: f.Type,
			Deleted: f.Deleted, Inode: f.Inode, Mtime: f.Mtime, Atime: f.Atime, Ctime: f.Ctime, Crtime: f.Btime,
			Recoverable: f.Recoverable, Err: f.Err, Runs: custodyRuns(f.Runs), Mode: f.Mode, UID: f.UID, GID: f.GID}
		switch {
		case f.Type == "dir":
			res.Files.Dirs++
		case f.Deleted:
			res.Files.Deleted++
		default:
			res.Files.Allocated++
		}
		w.prog.Add(1)
		if f.Type == "file" && f.Recoverable {
			if err := w.extract(batch, lf, &row); err != nil {
				row.Err = fs.AppendErr(row.Err, err.Error())
				w.warn("evidence %s: p%d:%s: %v", w.evID, part, f.Path, err)
			} else {
				res.Files.Extracted++
			}
		}
		return batch.AddFile(row)
	}, func(l layer.Inner) error {
		w.inner = append(w.inner, l)
		if l.Format == "zip" {
			// The archive's members are datasets of their own, each with
			// its path through the archive: the archive is not one too.
			w.datasets = slices.DeleteFunc(w.datasets, func(d datasetFile) bool { return d.evidencePath == l.Path })
		}
		return nil
	})
	if err != nil {
		batch.Abort()
		return err
	}
	if err := batch.Close(); err != nil {
		return err
	}
	problems := append(append(slices.Clone(w.problems), w.disk.Problems()...), inner...)
	for _, p := range problems {
		w.warn("evidence %s: %s", w.evID, p)
	}
	return w.c.Audit(custody.Entry{Action: "evidence.walk", Outcome: custody.OutcomeOK,
		Inputs: []custody.Item{{Kind: "evidence", ID: w.evID}},
		Details: map[string]any{"volumes": len(res.Volumes), "allocated": res.Files.Allocated, "deleted": res.Files.Deleted,
			"dirs": res.Files.Dirs, "extracted": res.Files.Extracted, "seconds": time.Since(start).Seconds(),
			"problems": problems}})
}

// extract stores one file's content and notes it as a dataset when its
// first bytes say so.
func (w *walker) extract(batch *custody.Batch, lf *layer.File, row *custody.File) error {
	f, part := lf.File, lf.Partition
	rd, err := lf.Open()
	if err != nil {
		return err
	}
	head := w.headReader(rd)
	sums, err := batch.StoreObject(head)
	if err != nil {
		return err
	}
	if sums.Size != f.Size {
		// A deleted file's clusters may have been reused or the image cut
		// short: what was read is stored, and the shortfall recorded.
		row.Err = fs.AppendErr(row.Err, fmt.Sprintf("read %d of %d bytes", sums.Size, f.Size))
	}
	for _, r := range f.Runs {
		if b, ok := w.media.Overlaps(r.Offset, r.Length); !r.Sparse && ok {
			row.Err = fs.AppendErr(row.Err, fmt.Sprintf("content overlaps unreadable media bytes %#x-%#x, read as zeros", b.Off, b.Off+b.Len-1))
			w.warn("evidence %s: p%d:%s: content overlaps unreadable media bytes %#x-%#x, read as zeros", w.evID, part, f.Path, b.Off, b.Off+b.Len-1)
			break
		}
	}
	row.MD5, row.SHA256, row.Object = sums.MD5, sums.SHA256, sums.SHA256
	w.known[sums.SHA256] = true
	if ingest.LooksLikeDataset(f.Path, head.head) {
		w.datasets = append(w.datasets, datasetFile{evidencePath: fmt.Sprintf("p%d:%s", part, f.Path), object: sums.SHA256})
	}
	return nil
}

// carve recovers files from the unallocated space the walk found (the
// whole image when no file system was readable), then from that of every
// disk found inside a file (a VHD's free clusters), and stores them.
func (w *walker) carve(ctx context.Context, img io.ReaderAt, res *EvidenceResult) error {
	type target struct {
		layer  string // "" for the image
		media  io.ReaderAt
		ranges []carve.Run
	}
	targets := []target{{media: img}}
	for _, l := range w.inner {
		targets = append(targets, target{layer: l.Path, media: l.Disk.Media()})
	}
	var total int64
	for i, t := range targets {
		d := w.disk
		if t.layer != "" {
			d = w.inner[i-1].Disk
		}
		for _, r := range d.Unallocated() {
			targets[i].ranges = append(targets[i].ranges, carve.Run{Off: r.Off, Len: r.Len})
			total += r.Len
		}
	}
	w.prog.Stage("carving", "bytes", total)
	batch, err := w.c.NewBatch(ctx, 0)
	if err != nil {
		return err
	}
	start := time.Now()
	var bytesCarved, innerCarved int64
	for _, t := range targets {
		where := ""
		if t.layer != "" {
			where = t.layer + "/"
		}
		err = carve.Carve(ctx, t.media, t.ranges, carve.Options{
			Known:    func(sum string) bool { return w.known[sum] },
			Progress: w.prog.Add,
		}, func(cv carve.Carved) error {
			head := w.headReader(carve.Open(t.media, cv))
			sums, err := batch.StoreObject(head)
			if err != nil {
				return err
			}
			if sums.SHA256 != cv.SHA256 {
				// The carver hashed the same bytes: a difference means the
				// image read differently twice (a failing device or bad chunk).
				w.warn("evidence %s: carved file at %s%#x: sha256 %s on store, %s when carved", w.evID, where, cv.Offset, sums.SHA256, cv.SHA256)
			}
			runs := make([]custody.Run, len(cv.Runs))
			var logical int64
			for i, r := range cv.Runs {
				runs[i] = custody.Run{Logical: logical, Offset: r.Off, Length: r.Len}
				logical += r.Len
			}
			res.Carved++
			if t.layer != "" {
				innerCarved++
			}
			bytesCarved += cv.Length
			name := fmt.Sprintf("%scarved:%d.%s", where, cv.Offset, cv.Ext)
			if ingest.LooksLikeDataset(name, head.head) {
				w.datasets = append(w.datasets, datasetFile{evidencePath: name, object: sums.SHA256})
			}
			return batch.AddCarved(custody.Carved{EvidenceID: w.evID, Layer: t.layer, Offset: cv.Offset, Length: cv.Length, Type: cv.Type,
				Runs: runs, MD5: sums.MD5, SHA256: sums.SHA256, Object: sums.SHA256})
		})
		if err != nil {
			batch.Abort()
			return fmt.Errorf("evidence %s: carve %s: %w", w.evID, cmp.Or(t.layer, "image"), err)
		}
	}
	if err := batch.Close(); err != nil {
		return err
	}
	var searched int64
	var layers []string
	nranges := 0
	for _, t := range targets {
		nranges += len(t.ranges)
		for _, r := range t.ranges {
			searched += r.Len
		}
		if t.layer != "" {
			layers = append(layers, t.layer)
		}
	}
	return w.c.Audit(custody.Entry{Action: "evidence.carve", Outcome: custody.OutcomeOK,
		Inputs: []custody.Item{{Kind: "evidence", ID: w.evID}},
		Details: map[string]any{"ranges": nranges, "bytes_searched": searched, "carved": res.Carved,
			"bytes_carved": bytesCarved, "seconds": time.Since(start).Seconds(),
			"layers": layers, "carved_in_layers": innerCarved}})
}

// scanFeatures runs the identifier scan over the whole image and writes
// bulk_extractor-style feature files into features/<evidence id>/ of the case.
func scanFeatures(ctx context.Context, c *custody.Case, img io.ReaderAt, size int64, evID string, progress func(int64), res *EvidenceResult) error {
	dir := path.Join(c.Dir(), "features", evID)
	rec, err := scan.NewRecorder(dir, "evidence "+evID)
	if err != nil {
		return err
	}
	start := time.Now()
	err = scan.Scan(ctx, img, size, scan.Options{Progress: progress}, rec.Add)
	files, cerr := rec.Close()
	if err == nil {
		err = cerr
	}
	if err == nil {
		var rp string
		rp, err = scan.WriteReport(dir, scan.Run{Image: "evidence " + evID, Size: size, Program: "evidx",
			Version: custody.Tool().String(), CommandLine: strings.Join(os.Args, " "), Start: start,
			Elapsed: time.Since(start), Counts: rec.Counts()})
		files = append(files, rp)
	}
	if err != nil {
		return fmt.Errorf("evidence %s: scan: %w", evID, err)
	}
	res.Features = rec.Counts()
	var outputs []custody.Item
	for _, f := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(f, c.Dir()), "/")
		res.FeatureFiles = append(res.FeatureFiles, rel)
		sum, size, err := digest.SHA256File(ctx, f)
		if err != nil {
			return err
		}
		outputs = append(outputs, custody.Item{Kind: "features", Path: rel, Size: size, SHA256: sum})
	}
	return c.Audit(custody.Entry{Action: "evidence.scan", Outcome: custody.OutcomeOK,
		Inputs: []custody.Item{{Kind: "evidence", ID: evID}}, Outputs: outputs,
		Details: map[string]any{"features": res.Features, "seconds": time.Since(start).Seconds()}})
}

const headSize = 64 << 10 // bytes of each file kept to decide whether it is a dataset

// headReader passes a stream through and keeps its first bytes.
type headReader struct {
	r    io.Reader
	head []byte
}

// headReader returns a headReader over r keeping its first headSize bytes
// in the walker's scratch buffer: valid until the next call.
func (w *walker) headReader(r io.Reader) *headReader {
	if w.head == nil {
		w.head = make([]byte, 0, headSize)
	}
	return &headReader{r: r, head: w.head[:0]}
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if room := cap(h.head) - len(h.head); room > 0 && n > 0 {
		h.head = append(h.head, p[:min(n, room)]...)
	}
	return n, err
}

func custodyRuns(runs []fs.Run) []custody.Run {
	if len(runs) == 0 {
		return nil
	}
	out := make([]custody.Run, len(runs))
	for i, r := range runs {
		out[i] = custody.Run{Logical: r.Logical, Offset: r.Offset, Length: r.Length, Sparse: r.Sparse}
	}
	return out
}

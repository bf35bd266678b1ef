package scan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/evidx/evidx/ingest/identity"
)

// MaxHistogram caps the distinct values a Recorder keeps per kind for its
// histogram (memory: about 100 bytes each); past it, new values are
// counted in the feature file but not in the histogram, and the histogram
// file says so in a comment line.
const MaxHistogram = 1 << 20

// FeatureFile is the name of a kind's feature file (without ".txt"), as
// bulk_extractor names its recorders where it has one (email, telephone,
// ccn), and the kind itself for evidx's own kinds (cn_id).
func FeatureFile(k identity.Kind) string {
	switch k {
	case identity.Email:
		return "email"
	case identity.Phone:
		return "telephone"
	case identity.BankCard:
		return "ccn"
	}
	return string(k)
}

// Recorder writes bulk_extractor feature files into a directory:
// <name>.txt (see FeatureFile) opening with bulk_extractor's banner lines
// (# Feature-Recorder, # Filename, # Feature-File-Version: 1.1), then
// "path<TAB>feature<TAB>context<TAB>normalised" lines: the feature as it
// stood in the data and the context, escaped as bulk_extractor escapes
// them (\xHH), and the normalised value evidx indexes. On Close it writes
// <name>_histogram.txt with "n=COUNT<TAB>value" lines, most frequent
// first. Files are created 0600, the directory 0700 (they hold personal
// data). Not safe for concurrent use.
type Recorder struct {
	dir    string
	image  string
	files  map[identity.Kind]*os.File
	w      map[identity.Kind]*bufio.Writer
	counts map[identity.Kind]int
	hist   map[identity.Kind]map[string]int
	capped map[identity.Kind]bool
}

// NewRecorder creates dir if needed; image is the scanned file's name for
// the banners.
func NewRecorder(dir, image string) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	r := &Recorder{dir: dir, image: image, files: map[identity.Kind]*os.File{}, w: map[identity.Kind]*bufio.Writer{},
		counts: map[identity.Kind]int{}, hist: map[identity.Kind]map[string]int{}, capped: map[identity.Kind]bool{}}
	// Every kind gets its files, empty or not, as bulk_extractor does.
	for _, k := range identity.Kinds() {
		if err := r.open(k); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// banner is bulk_extractor's head of a feature or histogram file.
func (r *Recorder) banner(w io.Writer, k identity.Kind, version string) {
	fmt.Fprintf(w, "# BANNER FILE NOT PROVIDED (-b option)\n# evidx feature scan (bulk_extractor format)\n# Feature-Recorder: %s\n# Filename: %s\n# %s\n",
		FeatureFile(k), oneLine(r.image), version)
}

func (r *Recorder) open(k identity.Kind) error {
	fh, err := os.OpenFile(filepath.Join(r.dir, FeatureFile(k)+".txt"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	w := bufio.NewWriterSize(fh, 256<<10)
	r.banner(w, k, "Feature-File-Version: 1.1")
	fmt.Fprintf(w, "# offset-path\tfeature\tcontext\tnormalised (evidx)\n")
	r.files[k], r.w[k] = fh, w
	r.hist[k] = map[string]int{}
	return nil
}

// oneLine keeps a name from evidence on one banner line.
func oneLine(s string) string { return escape([]byte(s)) }

// Add writes one feature.
func (r *Recorder) Add(f Feature) error {
	w, ok := r.w[f.Kind]
	if !ok {
		if err := r.open(f.Kind); err != nil {
			return err
		}
		w = r.w[f.Kind]
	}
	found := f.Found
	if found == "" {
		found = escape([]byte(f.Value))
	}
	w.WriteString(f.Path)
	w.WriteByte('\t')
	w.WriteString(found)
	w.WriteByte('\t')
	w.WriteString(f.Context)
	w.WriteByte('\t')
	w.WriteString(f.Value)
	w.WriteByte('\n')
	r.counts[f.Kind]++
	h := r.hist[f.Kind]
	if _, seen := h[f.Value]; seen || len(h) < MaxHistogram {
		h[f.Value]++
	} else {
		r.capped[f.Kind] = true
	}
	return nil
}

// Counts returns the features recorded per kind.
func (r *Recorder) Counts() map[identity.Kind]int { return r.counts }

// Close flushes the feature files, writes the histograms and returns the
// paths of every file written, sorted.
func (r *Recorder) Close() ([]string, error) {
	var paths []string
	var errs []error
	for k, w := range r.w {
		errs = append(errs, w.Flush(), r.files[k].Close())
		paths = append(paths, r.files[k].Name())
		type kv struct {
			v string
			n int
		}
		var s []kv
		for v, n := range r.hist[k] {
			s = append(s, kv{v, n})
		}
		sort.Slice(s, func(i, j int) bool { return s[i].n > s[j].n || s[i].n == s[j].n && s[i].v < s[j].v })
		p := filepath.Join(r.dir, FeatureFile(k)+"_histogram.txt")
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hw := bufio.NewWriter(fh)
		r.banner(hw, k, "Histogram-File-Version: 1.1")
		if r.capped[k] {
			fmt.Fprintf(hw, "# histogram capped at %d distinct values\n", MaxHistogram)
		}
		for _, x := range s {
			hw.WriteString("n=" + strconv.Itoa(x.n) + "\t" + x.v + "\n")
		}
		errs = append(errs, hw.Flush(), fh.Close())
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if err := errors.Join(errs...); err != nil {
		return paths, fmt.Errorf("scan: %w", err)
	}
	return paths, nil
}

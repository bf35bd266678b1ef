package scan

import (
	"bufio"
	"errors"
	"fmt"
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

// Recorder writes bulk_extractor-style feature files into a directory:
// <kind>.txt with "path<TAB>feature<TAB>context" lines, and on Close
// <kind>_histogram.txt with "n=COUNT<TAB>feature" lines, most frequent
// first. Files are created 0600, the directory 0700 (they hold personal
// data). Not safe for concurrent use.
type Recorder struct {
	dir    string
	files  map[identity.Kind]*os.File
	w      map[identity.Kind]*bufio.Writer
	counts map[identity.Kind]int
	hist   map[identity.Kind]map[string]int
	capped map[identity.Kind]bool
}

// NewRecorder creates dir if needed.
func NewRecorder(dir string) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	r := &Recorder{dir: dir, files: map[identity.Kind]*os.File{}, w: map[identity.Kind]*bufio.Writer{},
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

func (r *Recorder) open(k identity.Kind) error {
	fh, err := os.OpenFile(filepath.Join(r.dir, string(k)+".txt"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	w := bufio.NewWriterSize(fh, 256<<10)
	fmt.Fprintf(w, "# evidx feature file: %s\n# offset-path\tfeature\tcontext\n", k)
	r.files[k], r.w[k] = fh, w
	r.hist[k] = map[string]int{}
	return nil
}

// Add writes one feature.
func (r *Recorder) Add(f Feature) error {
	w, ok := r.w[f.Kind]
	if !ok {
		if err := r.open(f.Kind); err != nil {
			return err
		}
		w = r.w[f.Kind]
	}
	w.WriteString(f.Path)
	w.WriteByte('\t')
	w.WriteString(f.Value)
	w.WriteByte('\t')
	w.WriteString(f.Context)
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
		p := filepath.Join(r.dir, string(k)+"_histogram.txt")
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hw := bufio.NewWriter(fh)
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

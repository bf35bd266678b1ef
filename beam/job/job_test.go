package job

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// TestMain initialises Beam, as a program's main does.
func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

var (
	evidxOnce sync.Once
	evidxBin  string
	evidxErr  error
)

// evidx builds the core binary from the root module: the reference the
// pipeline's output must equal.
func evidx(t *testing.T) string {
	t.Helper()
	evidxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "evidx-beam-test-")
		if err != nil {
			evidxErr = err
			return
		}
		evidxBin = filepath.Join(dir, "evidx")
		cmd := exec.Command("go", "build", "-o", evidxBin, "./cmd/evidx")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			evidxErr = fmt.Errorf("building evidx: %v\n%s", err, out)
		}
	})
	if evidxErr != nil {
		t.Fatal(evidxErr)
	}
	return evidxBin
}

// corpus generates every leakgen format (with overlaps across files) and
// returns its truth and the files in the truth's order.
func corpus(t *testing.T, seed uint64, rows int) (*leakgen.Truth, []string) {
	t.Helper()
	dir := t.TempDir()
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: seed, Rows: rows, Dup: 0.3, Overlap: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range truth.Files {
		paths = append(paths, f.Path)
	}
	return truth, paths
}

func facts(unique map[identity.Kind]int64) string {
	var s []string
	for k, n := range unique {
		s = append(s, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func truthFacts(c leakgen.Counts) string {
	var s []string
	for _, k := range identity.Kinds() {
		s = append(s, fmt.Sprintf("%s=%d", k, c[string(k)]))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestCountEqualsEvidxCount: on Prism, the pipeline's JSON is the whole
// document evidx count --json prints, and its counts are the generator's
// truth overall and per file; with spans of 1 KiB (records crossing
// hundreds of span ends) and of the default size.
func TestCountEqualsEvidxCount(t *testing.T) {
	truth, paths := corpus(t, 41, 14*1500)
	testutil.Unchanged(t, paths...)
	want, err := exec.Command(evidx(t), append(append([]string{"count"}, paths...), "--json")...).Output()
	if err != nil {
		t.Fatalf("evidx count: %v", err)
	}
	for _, split := range []int64{1 << 10, 0} {
		res, err := Count(context.Background(), "prism", paths, Options{SplitSize: split})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Report, want) {
			t.Fatalf("split %d: evidx-beam count differs from evidx count:\n--- beam\n%s\n--- evidx\n%s", split, res.Report, want)
		}
		rep, err := ParseCount(res.Report)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := facts(rep.Unique), truthFacts(truth.Unique); got != w {
			t.Errorf("split %d: unique %s, truth %s", split, got, w)
		}
		for i, f := range truth.Files {
			got := rep.Files[i]
			if g, w := facts(got.Unique), truthFacts(f.Unique); g != w || got.Rows != f.Rows || got.Rejected != f.Rejected {
				t.Errorf("split %d: %s: rows %d rejected %d unique %s; truth rows %d rejected %d unique %s",
					split, filepath.Base(f.Path), got.Rows, got.Rejected, g, f.Rows, f.Rejected, w)
			}
		}
	}
}

package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// The differential harness: counts must never depend on a file's size,
// compression, encoding, the worker count, chunk and buffer sizes or the
// run. Small chunks and a small sample make inputs of a few hundred KB
// cross hundreds of chunk boundaries (the case that once went wrong past
// one chunk); a small dedupe budget makes the counter spill. `make bench`
// runs the same comparison at full size (scripts/bench-exact.sh).

// tinyReads are the record-reader sizes the harness forces.
var tinyReads = records.Options{ChunkSize: 4 << 10, SampleSize: 16 << 10, RowsPerChunk: 64}

// countOne counts one file as `evidx count` does, with the given workers,
// reader sizes and dedupe budget.
func countOne(t *testing.T, path string, workers int, ro records.Options, mem int64) (FileStats, map[identity.Kind]int64) {
	t.Helper()
	c, err := dedupe.New(dedupe.Options{MemBytes: mem, TmpDir: t.TempDir(), Partitions: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ro.TmpDir = t.TempDir()
	st, err := ReadDataset(context.Background(), path, Options{Workers: workers, ConcurrentSink: true, NoLoc: true, Records: ro},
		func(b []identity.Sighting) error { return c.Add(0, b) })
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r, err := c.Result(1)
	if err != nil {
		t.Fatal(err)
	}
	return st, r.PerFile[0]
}

// fileFacts are what must be equal for a file and each of its variants.
func fileFacts(st FileStats, unique map[identity.Kind]int64) string {
	return fmt.Sprintf("rows=%d rejected=%d unique[%s] invalid[%s]", st.Rows, st.Rejected, counts(unique), counts(st.Invalid))
}

func truthFacts(f leakgen.FileTruth) string {
	return fmt.Sprintf("rows=%d rejected=%d unique[%s] invalid[%s]", f.Rows, f.Rejected, truthCounts(f.Unique), truthCounts(f.Invalid))
}

// utf8Of returns a generated text file's content as UTF-8.
func utf8Of(t *testing.T, f leakgen.FileTruth) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	switch f.Encoding {
	case "utf-8":
		return b
	case "gb18030":
		b, err = simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	case "utf-16le":
		b, err = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(b)
	default:
		t.Fatalf("%s: no decoder for %s", f.Path, f.Encoding)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCountsExactEverywhere generates every uncompressed format with
// leakgen, makes each text file's copies in every encoding and every
// compression (and crossed pairs), and checks each copy against the
// generator's truth for its original with 1, 2 and 8 workers, small chunks
// and a spilling dedupe. The original set is also counted whole, overall.
func TestCountsExactEverywhere(t *testing.T) {
	testutil.NeedTool(t, "bzip2")
	dir := t.TempDir()
	names := []string{"leak_gbk.txt", "users.csv", "nohdr.tsv", "users.jsonl", "dump.sql", "pg_dump.sql", "members.sqlite", "notes.txt", "excel_utf16.csv"}
	rows := 9 * 2500
	if testing.Short() {
		rows = 9 * 800
	}
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: 23, Rows: rows, Dup: 0.3, Formats: strings.Join(names, ",")})
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		path string
		of   leakgen.FileTruth
	}
	var variants []variant
	add := func(of leakgen.FileTruth, name string, b []byte) {
		p := filepath.Join(dir, "v", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, variant{p, of})
	}
	for fi, f := range truth.Files {
		base := filepath.Base(f.Path)
		variants = append(variants, variant{f.Path, f})
		if f.Format == "sqlite" {
			raw, err := os.ReadFile(f.Path)
			if err != nil {
				t.Fatal(err)
			}
			for _, comp := range []string{"gzip", "zip"} {
				b, err := leakgen.Compress(raw, comp, base)
				if err != nil {
					t.Fatal(err)
				}
				add(f, base+"."+comp, b)
			}
			continue
		}
		text := utf8Of(t, f)
		for ei, enc := range leakgen.Encodings {
			enc8, err := leakgen.Reencode(text, enc)
			if err != nil {
				t.Fatal(err)
			}
			if enc != "utf-8" {
				add(f, base+"."+enc, enc8)
			}
			// Every compression of the UTF-8 text, and one compression
			// (rotating) of each other encoding.
			for ci, comp := range leakgen.Compressions[1:] {
				if enc != "utf-8" && ci != (ei+fi)%(len(leakgen.Compressions)-1) {
					continue
				}
				b, err := leakgen.Compress(enc8, comp, base)
				if err != nil {
					t.Fatal(err)
				}
				add(f, base+"."+enc+"."+comp, b)
			}
		}
	}
	var all []string
	for _, v := range variants {
		all = append(all, v.path)
	}
	testutil.Unchanged(t, all...)
	workers := []int{1, 2, 8}
	for i, v := range variants {
		w := workers[i%len(workers)]
		name := strings.TrimPrefix(v.path, dir+"/")
		t.Run(fmt.Sprintf("%s/w%d", name, w), func(t *testing.T) {
			st, uq := countOne(t, v.path, w, tinyReads, 1<<16)
			if got, want := fileFacts(st, uq), truthFacts(v.of); got != want {
				t.Errorf("got  %s\nwant %s (format %s encoding %s compression %s)", got, want, st.Format, st.Encoding, st.Compression)
			}
		})
	}

	// The original set, counted together, with every worker count: per
	// file and overall equal to the truth, and the same JSON every run.
	var paths []string
	for _, f := range truth.Files {
		paths = append(paths, f.Path)
	}
	var first []byte
	for _, w := range workers {
		for _, ro := range []records.Options{tinyReads, {}} {
			c, err := dedupe.New(dedupe.Options{MemBytes: 1 << 17, TmpDir: t.TempDir(), Partitions: 16})
			if err != nil {
				t.Fatal(err)
			}
			var stats []FileStats
			for i, p := range paths {
				st, err := ReadDataset(context.Background(), p, Options{Workers: w, ConcurrentSink: true, NoLoc: true, Records: ro},
					func(b []identity.Sighting) error { return c.Add(i, b) })
				if err != nil {
					t.Fatal(err)
				}
				stats = append(stats, st)
			}
			res, err := c.Result(len(paths))
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := counts(res.Unique), truthCounts(truth.Unique); got != want {
				t.Errorf("workers %d chunk %d: overall %s, want %s", w, ro.ChunkSize, got, want)
			}
			for i, f := range truth.Files {
				if got, want := fileFacts(stats[i], res.PerFile[i]), truthFacts(f); got != want {
					t.Errorf("workers %d chunk %d: %s: %s, want %s", w, ro.ChunkSize, filepath.Base(f.Path), got, want)
				}
			}
			if ro.ChunkSize != 0 {
				continue
			}
			// Determinism: what count --json prints of the files (no
			// timings in it) is the same for every worker count.
			js, err := json.Marshal(struct {
				Stats []FileStats
				Res   dedupe.Result
			}{stats, res})
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = js
			} else if !bytes.Equal(js, first) {
				t.Errorf("workers %d: report differs from the one with workers 1", w)
			}
		}
	}
}

// TestRolesChangePartWay checks that a column whose first rows hold no
// identity but whose later rows do is named as a problem, and that a file
// whose rows mostly yield nothing is too, whatever the chunk size; and that
// --column makes the late column count.
func TestRolesChangePartWay(t *testing.T) {
	var b bytes.Buffer
	for i := 0; i < 3000; i++ {
		v := fmt.Sprintf("n/a-%d", i)
		if i >= 1500 {
			v = fmt.Sprintf("139%08d", i)
		}
		fmt.Fprintf(&b, "%d\t%s\tremark %d\n", i, v, i)
	}
	path := filepath.Join(t.TempDir(), "late.tsv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []records.Options{tinyReads, {}} {
		st, uq := countOne(t, path, 2, ro, 0)
		if uq[identity.Phone] != 0 {
			t.Errorf("chunk %d: %d phones without --column; the decision rests on the first rows", ro.ChunkSize, uq[identity.Phone])
		}
		joined := strings.Join(st.Problems, "\n")
		if !strings.Contains(joined, "would change part-way") || !strings.Contains(joined, "yield no identity") {
			t.Errorf("chunk %d: problems %q, want the late column and the rows yielding nothing named", ro.ChunkSize, st.Problems)
		}
	}
	cols, err := ParseColumns([]string{"2=phone"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dedupe.New(dedupe.Options{TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := ReadDataset(context.Background(), path, Options{Columns: cols, ConcurrentSink: true, Records: tinyReads},
		func(s []identity.Sighting) error { return c.Add(0, s) })
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Result(1)
	if err != nil {
		t.Fatal(err)
	}
	if r.PerFile[0][identity.Phone] != 1500 {
		t.Errorf("--column 2=phone: %d phones, want 1500", r.PerFile[0][identity.Phone])
	}
	var forced *ColumnStats
	for i := range st.Columns {
		if st.Columns[i].Index == 2 {
			forced = &st.Columns[i]
		}
	}
	if forced == nil || forced.DecidedBy != ByOverride || forced.Kind != identity.Phone || forced.ValidShare != 0.5 {
		t.Errorf("column 2: %+v, want phone by override, half valid", forced)
	}
}

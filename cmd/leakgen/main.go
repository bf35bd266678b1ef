// Command leakgen writes seeded, realistic leaked personal-data datasets
// with their ground truth (truth.json), for tests, `make demo` and
// `make bench`:
//
//	leakgen -seed 7 -rows 200000 -out DIR [-formats all|csv|...] [-dup 0.3]
//	leakgen -seed 1 -rows 20000000 -bench -out DIR   # DIR/bench.csv + DIR/bench-truth.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evidx/evidx/internal/leakgen"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed")
	rows := flag.Int64("rows", 10000, "data rows in total")
	out := flag.String("out", "", "output directory")
	formats := flag.String("formats", "all", "all, or a comma list of formats, compressions or file names")
	dup := flag.Float64("dup", 0.3, "share of rows repeating a person already in the same file")
	bench := flag.Bool("bench", false, "write the benchmark CSV (name, phone, ID, email, address) only")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: leakgen -seed N -rows R -out DIR [-formats all|csv] [-dup 0.3] [-bench]")
		os.Exit(2)
	}
	if err := run(*seed, *rows, *out, *formats, *dup, *bench); err != nil {
		fmt.Fprintln(os.Stderr, "leakgen:", err)
		os.Exit(1)
	}
}

func run(seed uint64, rows int64, out, formats string, dup float64, bench bool) error {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if bench {
		path := filepath.Join(out, "bench.csv")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		t, err := leakgen.WriteBenchCSV(f, seed, rows, dup)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(t, "", "  ")
		if err := os.WriteFile(filepath.Join(out, "bench-truth.json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "leakgen: %s: %d rows, %d people, %.1fs\n", path, rows, t.Unique["phone"], time.Since(start).Seconds())
		return nil
	}
	t, err := leakgen.Generate(out, leakgen.Options{Seed: seed, Rows: int(rows), Dup: dup, Formats: formats})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "leakgen: %d files in %s, unique %v, %.1fs\n", len(t.Files), out, t.Unique, time.Since(start).Seconds())
	return nil
}

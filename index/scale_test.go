package index

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// BenchmarkLoadScale loads EVIDX_SCALE_ROWS rows into EVIDX_SCALE_SHARDS
// shards with an external sort of EVIDX_SCALE_SORT_MIB MiB.
func BenchmarkLoadScale(b *testing.B) {
	env := func(k string, d int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return d
	}
	rows, shards, sortMiB := env("EVIDX_SCALE_ROWS", 1_000_000), env("EVIDX_SCALE_SHARDS", 16), env("EVIDX_SCALE_SORT_MIB", 384)
	for range b.N {
		ix := testCase(b, b.TempDir(), shards)
		ix.opts = Options{Shards: shards, SortBytes: sortMiB << 20}
		ix.opts.defaults()
		cpu0 := cpuTime()
		if _, err := ix.AddSource(context.Background(), Source{Name: "g", SHA256: "g"}, streamFeed(42, rows, rows), nil); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rows)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
	}
}

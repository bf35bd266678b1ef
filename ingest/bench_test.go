package ingest

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/leakgen"
)

// BenchmarkCountCSV counts a generated bench CSV (name, phone, ID, email,
// address; 30% duplicate rows) as `evidx count` does.
func BenchmarkCountCSV(b *testing.B) {
	const rows = 500_000
	path := filepath.Join(b.TempDir(), "bench.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	truth, err := leakgen.WriteBenchCSV(f, 1, rows, 0.3)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c, _ := dedupe.New(dedupe.Options{TmpDir: b.TempDir()})
		_, err := ReadDataset(context.Background(), path, Options{ConcurrentSink: true, NoLoc: true},
			func(s []identity.Sighting) error { return c.Add(0, s) })
		if err != nil {
			b.Fatal(err)
		}
		r, err := c.Result(1)
		if err != nil {
			b.Fatal(err)
		}
		if r.Unique[identity.Phone] != truth.Unique["phone"] {
			b.Fatalf("phones %d, want %d", r.Unique[identity.Phone], truth.Unique["phone"])
		}
		c.Close()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(rows*b.N), "cpu-ns/row")
}

// cpuTime is the process's user+system CPU time in ns: on a shared
// machine it measures work better than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

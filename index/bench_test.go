package index

import (
	"context"
	"math/rand/v2"

	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/identity"
)

// BenchmarkLoad loads a generated dataset into a fresh 16-shard index per
// iteration and reports rows/s and sightings/s (scripts/bench-index.sh
// measures the whole CLI against sqlite3 .import).
func BenchmarkLoad(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(rows), func(b *testing.B) {
			var n int64
			cpu0 := cpuTime()
			for i := range b.N {
				ix := testCase(b, b.TempDir(), 16)
				ix.opts = Options{Shards: 16}
				ix.opts.defaults()
				st, err := ix.AddSource(context.Background(), Source{Name: "g", SHA256: fmt.Sprint(i)}, streamFeed(42, rows, rows), nil)
				if err != nil {
					b.Fatal(err)
				}
				n = st.Sightings
			}
			cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
			b.ReportMetric(float64(rows)/cpu, "rows/cpu-s")
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(rows)/sec, "rows/s")
			b.ReportMetric(float64(n)/sec, "sightings/s")
		})
	}
}

// cpuTime is the process's user+system CPU time: on a shared machine it
// measures the work better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamFeed generates rows like generate, without keeping them or their
// truth: the benchmark's live heap is then the loader's, as in a real load.
func streamFeed(seed uint64, rows, pool int) Feed {
	return func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		buf := make([]identity.Sighting, 0, 4096)
		for line := 1; line <= rows; line++ {
			loc := "line " + strconv.Itoa(line)
			n := r.IntN(pool)
			buf = append(buf, identity.Sighting{Kind: identity.Phone, Value: "+861" + strconv.Itoa(3000000000+n*7919%7000000000), Loc: loc})
			if r.IntN(4) > 0 {
				buf = append(buf, identity.Sighting{Kind: identity.Email, Value: "user" + strconv.Itoa(r.IntN(pool)) + "@example" + strconv.Itoa(n%7) + ".cn", Loc: loc})
			}
			if r.IntN(3) == 0 {
				buf = append(buf, identity.Sighting{Kind: identity.CNID, Value: fmt.Sprintf("1101011990%08d", r.IntN(pool)), Loc: loc})
			}
			if len(buf) >= 4000 {
				if err := sink(buf); err != nil {
					return FileInfo{}, err
				}
				buf = buf[:0]
			}
		}
		return FileInfo{Rows: int64(rows)}, sink(buf)
	}
}

// BenchmarkLookup looks up identities of a 200k-row load, each in its one
// shard, through one Searcher (as `search --file` does).
func BenchmarkLookup(b *testing.B) {
	ix := testCase(b, b.TempDir(), 16)
	const rows = 200_000
	if _, err := ix.AddSource(context.Background(), Source{Name: "g", SHA256: "g"}, streamFeed(7, rows, rows), nil); err != nil {
		b.Fatal(err)
	}
	s := ix.NewSearcher()
	defer s.Close()
	r := rand.New(rand.NewPCG(7, 0x5eed))
	b.ResetTimer()
	for i := range b.N {
		n := r.IntN(rows)
		v := "+861" + strconv.Itoa(3000000000+n*7919%7000000000)
		if i%2 == 1 {
			v += "0" // absent
		}
		if _, _, err := s.Lookup(context.Background(), "phone", v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/lookup")
}

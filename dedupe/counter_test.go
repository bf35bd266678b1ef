package dedupe

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// TestCounterMatchesMap feeds random sightings over several files, from
// several goroutines, with a memory budget small enough to force many
// spills, and compares with counts from plain maps.
func TestCounterMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		mem   int64
		parts int
	}{{0, 16}, {0, 2}, {1 << 16, 16}, {1 << 18, 3}} {
		mem := tc.mem
		t.Run(fmt.Sprintf("mem=%d,parts=%d", mem, tc.parts), func(t *testing.T) {
			tmp := t.TempDir()
			c, err := New(Options{Partitions: tc.parts, MemBytes: mem, TmpDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			kinds := identity.Kinds()
			const files = 5
			want := map[string]bool{}
			wantFile := make([]map[string]bool, files)
			for f := 0; f < files; f++ {
				wantFile[f] = map[string]bool{}
				var batches [][]identity.Sighting
				for b := 0; b < 16; b++ {
					batch := make([]identity.Sighting, 500)
					for i := range batch {
						k := kinds[rng.IntN(len(kinds))]
						// A small value space makes many duplicates within
						// and across files; kinds share values on purpose.
						v := fmt.Sprintf("v%d", rng.IntN(20000))
						// Canonical shapes that pack (phones, ID numbers) and
						// near-misses that do not, in the same sets.
						switch rng.IntN(4) {
						case 0:
							v = fmt.Sprintf("+86138%08d", rng.IntN(20000))
						case 1:
							v = fmt.Sprintf("44030419900307%03d%c", rng.IntN(300), "0123456789X"[rng.IntN(11)])
						}
						batch[i] = identity.Sighting{Kind: k, Value: v}
						key := string(k) + "\x00" + v
						want[key] = true
						wantFile[f][key] = true
					}
					batches = append(batches, batch)
				}
				var wg sync.WaitGroup
				errs := make(chan error, len(batches))
				for _, b := range batches {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- c.Add(f, b)
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			if mem > 0 && c.Spills() == 0 {
				t.Fatal("expected spills with a tiny budget")
			}
			r, err := c.Result(files)
			if err != nil {
				t.Fatal(err)
			}
			tally := func(set map[string]bool) map[identity.Kind]int64 {
				m := map[identity.Kind]int64{}
				for _, k := range kinds {
					m[k] = 0
				}
				for key := range set {
					for _, k := range kinds {
						if len(key) > len(k) && key[:len(k)+1] == string(k)+"\x00" {
							m[k]++
						}
					}
				}
				return m
			}
			if got, w := r.Unique, tally(want); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("unique %v, want %v", got, w)
			}
			for f := 0; f < files; f++ {
				if got, w := r.PerFile[f], tally(wantFile[f]); fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("file %d: %v, want %v", f, got, w)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("spill files left behind: %v", ents)
			}
		})
	}
}

func TestPartitionStable(t *testing.T) {
	// Partition must agree with Hash (the index shards rely on it).
	for i := 0; i < 1000; i++ {
		v := fmt.Sprint(i)
		if Partition("phone", v, 64) != int(Hash("phone", v)%64) {
			t.Fatal("Partition and Hash disagree")
		}
	}
	if Partition("phone", "x", 7) == Partition("email", "x", 7) && Partition("phone", "y", 7) == Partition("email", "y", 7) && Partition("phone", "z", 7) == Partition("email", "z", 7) {
		t.Error("kind does not seem to take part in the key")
	}
}

// BenchmarkCounterAdd inserts phone-like keys, 30% of them repeats.
func BenchmarkCounterAdd(b *testing.B) {
	const n = 1 << 20
	vals := make([]identity.Sighting, n)
	for i := range vals {
		j := i
		if i%10 < 3 {
			j = i / 2
		}
		vals[i] = identity.Sighting{Kind: identity.Phone, Value: fmt.Sprintf("+86138%08d", j*7919%100000000)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c, _ := New(Options{TmpDir: b.TempDir()})
		for j := 0; j < n; j += 4096 {
			if err := c.Add(0, vals[j:j+4096]); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n), "cpu-ns/key")
}

// cpuTime is the process's user+system CPU time in ns: on a shared
// machine it measures work better than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestPackInjective: packing keeps distinct values distinct.
func TestPackInjective(t *testing.T) {
	seen := map[string]string{}
	ph, id := byte(identity.KindIndex(identity.Phone)), byte(identity.KindIndex(identity.CNID))
	for _, c := range []struct {
		k byte
		v string
	}{{ph, "+8613800000000"}, {ph, "+8619999999999"}, {ph, "+8600000000000"}, {ph, "+8613800000001"},
		{id, "00000000000000000X"}, {id, "000000000000000000"}, {id, "99999999999999999X"}, {id, "999999999999999999"},
		{id, "11010519491231002X"}, {id, "110105194912310029"}} {
		var pk [8]byte
		n := pack(c.k, c.v, &pk)
		if n == 0 {
			t.Fatalf("%q not packed", c.v)
		}
		key := string(rune(c.k)) + string(pk[:n])
		if prev, ok := seen[key]; ok {
			t.Fatalf("%q and %q pack alike", prev, c.v)
		}
		seen[key] = c.v
	}
	var pk [8]byte
	for _, v := range []string{"+8613800000000x", "+861380000000a", "13800000000000", "+1415555267100"} {
		if pack(ph, v, &pk) != 0 {
			t.Errorf("%q packed", v)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Hash("phone", "+8613812345678")
	}
}

// FuzzReadRecords: the run parser on arbitrary bytes (a damaged spill
// file) returns an error or records, never panics, in any read sizes.
func FuzzReadRecords(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 'a', 'b', 'c', 0, 1, 1, 0, 0, 0, 'x', 0x80, 0x01}, uint8(3))
	f.Add([]byte{0, 255}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		r := &stepReader{b: data, step: int(step%16) + 1}
		_ = readRecords(r, func(k byte, tag uint64, v []byte, file uint64) error {
			if tag >= 1<<24 {
				t.Fatalf("tag %x", tag)
			}
			return nil
		})
	})
}

// stepReader returns at most step bytes per Read.
type stepReader struct {
	b    []byte
	step int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.step)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// BenchmarkResult times the final per-partition dedupe with partitions as
// large as a 20M-row count makes them (about 170k distinct keys each).
func BenchmarkResult(b *testing.B) {
	const n = 3 << 20
	vals := make([]identity.Sighting, n)
	for i := range vals {
		j := i
		if i%10 < 3 {
			j = i / 2
		}
		vals[i] = identity.Sighting{Kind: identity.Phone, Value: fmt.Sprintf("+86138%08d", j*7919%100000000)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var cpu int64
	for i := 0; i < b.N; i++ {
		c, _ := New(Options{Partitions: 12, TmpDir: b.TempDir(), MemBytes: 1 << 30})
		for j := 0; j < n; j += 4096 {
			if err := c.Add(0, vals[j:j+4096]); err != nil {
				b.Fatal(err)
			}
		}
		cpu0 := cpuTime()
		if _, err := c.Result(1); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - cpu0
		c.Close()
	}
	b.ReportMetric(float64(cpu)/float64(b.N*n), "result-cpu-ns/key")
}

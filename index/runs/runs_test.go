package runs

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
)

type truth struct {
	count int64
	loc   string
	shard int
}

func shardOf(kind, value string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return int(h.Sum32() % uint32(n))
}

// genValue draws values that stress the key: shared 21-byte prefixes, long
// e-mails, a trailing NUL (ties with the zero padding), and the empty string.
func genValue(r *rand.Rand) string {
	switch r.Intn(6) {
	case 0:
		return fmt.Sprintf("+86138%08d", r.Intn(5000))
	case 1:
		return fmt.Sprintf("user%d@example-with-a-long-domain.com", r.Intn(3000))
	case 2:
		return fmt.Sprintf("11010519491231%04d", r.Intn(2000))
	case 3:
		v := fmt.Sprintf("%d", r.Intn(50))
		if r.Intn(2) == 0 {
			v += "\x00"
		}
		return v
	case 4:
		return ""
	default:
		b := make([]byte, r.Intn(40))
		for i := range b {
			b[i] = byte(r.Intn(4)) // many zero bytes and long shared prefixes
		}
		return string(b)
	}
}

func TestSortMergeAgainstTruth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mem    int
		shards int
	}{
		{"one run", 64 << 20, 7},
		{"many runs", 16 << 10, 7},
		{"one shard many runs", 8 << 10, 1},
		{"runs merged 3 at a time", 16 << 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.shards == 5 {
				defer func(n int) { maxFanIn = n }(maxFanIn)
				maxFanIn = 3
			}
			dir := t.TempDir()
			s, err := New(dir+"/runs", tc.shards, tc.mem)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewSource(int64(tc.mem) + int64(tc.shards)))
			kinds := []string{"phone", "email", "cn_id"}
			want := map[[2]string]*truth{}
			const n = 60000
			for i := range n {
				k := kinds[r.Intn(len(kinds))]
				v := genValue(r)
				loc := fmt.Sprintf("line %d", i+1)
				sh := shardOf(k, v, tc.shards)
				if err := s.Add(sh, k, v, loc); err != nil {
					t.Fatal(err)
				}
				if w := want[[2]string{k, v}]; w != nil {
					w.count++
				} else {
					want[[2]string{k, v}] = &truth{1, loc, sh}
				}
			}
			if err := s.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s.Added() != n {
				t.Fatalf("Added = %d, want %d", s.Added(), n)
			}
			if tc.mem < 1<<20 && s.next < 5 {
				t.Fatalf("%d runs with %d bytes of memory: the spill path is not exercised", s.next, tc.mem)
			}
			if len(s.runs) > maxFanIn {
				t.Fatalf("%d runs left to merge, more than %d", len(s.runs), maxFanIn)
			}
			got := make([]map[[2]string]truth, tc.shards)
			var wg sync.WaitGroup
			errs := make([]error, tc.shards)
			for sh := range tc.shards {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := map[[2]string]truth{}
					prevKind := ""
					var prev []byte
					errs[sh] = s.Merge(context.Background(), sh, func(e Entry) error {
						// SQLite's order of the shard key: kind, then value bytes.
						if e.Kind < prevKind || e.Kind == prevKind && bytes.Compare(e.Value, prev) <= 0 && prevKind != "" {
							return fmt.Errorf("shard %d: %s %q after %q: not in key order", sh, e.Kind, e.Value, prev)
						}
						prevKind, prev = e.Kind, append(prev[:0], e.Value...)
						m[[2]string{e.Kind, string(e.Value)}] = truth{e.Count, string(e.Loc), sh}
						return nil
					})
					got[sh] = m
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			total := 0
			for sh, m := range got {
				total += len(m)
				for k, g := range m {
					w := want[k]
					if w == nil {
						t.Fatalf("shard %d: %q was never added", sh, k)
					}
					if w.shard != sh || g.count != w.count || g.loc != w.loc {
						t.Fatalf("%q: got shard %d count %d first %q, want shard %d count %d first %q",
							k, sh, g.count, g.loc, w.shard, w.count, w.loc)
					}
				}
			}
			if total != len(want) {
				t.Fatalf("merged %d identities, want %d", total, len(want))
			}
			if s.Merged() != s.Spilled() {
				t.Fatalf("merged %d of %d spilled records", s.Merged(), s.Spilled())
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir + "/runs"); !os.IsNotExist(err) {
				t.Fatalf("run directory left behind: %v", err)
			}
		})
	}
}

func TestMergeStopsOnCallbackError(t *testing.T) {
	s, err := New(t.TempDir()+"/r", 1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if err := s.Add(0, "phone", fmt.Sprint(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := fmt.Errorf("stop")
	calls := 0
	err = s.Merge(context.Background(), 0, func(Entry) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Merge = %v after %d calls, want the callback's error after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	if err := s.Merge(ctx, 0, func(Entry) error { calls++; return nil }); err != context.Canceled || calls == 1000 {
		t.Fatalf("cancelled Merge = %v after %d calls", err, calls)
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	if _, err := New(t.TempDir(), 0, 1<<20); err == nil {
		t.Fatal("0 shards accepted")
	}
	s, err := New(t.TempDir()+"/r", 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(2, "phone", "1", "x"); err == nil {
		t.Fatal("shard 2 of 2 accepted")
	}
	for i := range maxKinds {
		if err := s.Add(0, fmt.Sprint("k", i), "1", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add(0, "one too many", "1", "x"); err == nil {
		t.Fatal("kind 256 accepted")
	}
}

// BenchmarkSorter sorts and merges sightings shaped like a leak's: per row
// a phone, an e-mail and an ID number, drawn from pools of half the row
// count, 16 shards, the default buffer memory of a load.
func BenchmarkSorter(b *testing.B) {
	const rows = 1 << 20
	r := rand.New(rand.NewSource(1))
	type sighting struct{ kind, value, loc string }
	var in []sighting
	for i := range rows {
		loc := fmt.Sprintf("line %d", i+2)
		in = append(in,
			sighting{"phone", fmt.Sprintf("+861%d%09d", 3+r.Intn(7), r.Intn(rows/2)*7919%1000000000), loc},
			sighting{"email", fmt.Sprintf("user%d@mail%d.example.cn", r.Intn(rows/2), i%13), loc},
			sighting{"cn_id", fmt.Sprintf("11010%d19%02d%02d%02d%03dX", 1+i%8, 50+r.Intn(50), 1+r.Intn(12), 1+r.Intn(28), r.Intn(1000)), loc})
	}
	mem := 384 << 20
	if m, err := strconv.Atoi(os.Getenv("EVIDX_SORTER_MIB")); err == nil {
		mem = m << 20 // smaller: more runs to merge
	}
	b.ResetTimer()
	for range b.N {
		s, _ := New(b.TempDir()+"/r", 16, mem)
		for _, x := range in {
			s.Add(shardOf(x.kind, x.value, 16), x.kind, x.value, x.loc)
		}
		s.Finish(context.Background())
		for sh := range 16 {
			s.Merge(context.Background(), sh, func(Entry) error { return nil })
		}
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/sighting")
}

func TestRadixSortMatchesCompare(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, n := range []int{0, 1, 2, 47, 48, 49, 1000, 50000} {
		var data []byte
		var keys []key
		for i := range n {
			v := genValue(r)
			k0, k1, k2 := prefix(v)
			off := len(data)
			data = append(data, v...)
			keys = append(keys, key{k0: uint64(i%3)<<56 | k0, k1: k1, k2: k2, off: uint32(off), vlen: uint16(len(v))})
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b key) int { return compareKeys(data, &a, &b) })
		sortKeys(data, keys, make([]key, len(keys)))
		if !slices.Equal(keys, want) {
			t.Fatalf("n=%d: radix order differs from compareKeys order", n)
		}
	}
}

// TestLongRecordsAcrossBuffers merges records of up to maxLen bytes of
// value and location, so that records straddle the merge's read buffer.
func TestLongRecordsAcrossBuffers(t *testing.T) {
	s, err := New(t.TempDir()+"/r", 2, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewSource(3))
	want := map[string]string{}
	for i := range 400 {
		v := make([]byte, 1+r.Intn(maxLen))
		r.Read(v)
		loc := fmt.Sprintf("%d:%s", i, bytes.Repeat([]byte{'x'}, r.Intn(maxLoc-10)))
		if i%5 == 0 {
			loc = fmt.Sprint(i)
		}
		sh := i % 2
		if err := s.Add(sh, "blob", string(v), loc); err != nil {
			t.Fatal(err)
		}
		want[string(v)] = loc
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := 0
	for sh := range 2 {
		err := s.Merge(context.Background(), sh, func(e Entry) error {
			got++
			if w, ok := want[string(e.Value)]; !ok || w != string(e.Loc) || e.Count != 1 {
				return fmt.Errorf("value of %d bytes: location of %d bytes, count %d; want %d bytes", len(e.Value), len(e.Loc), e.Count, len(w))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != len(want) {
		t.Fatalf("merged %d, want %d", got, len(want))
	}
}

package index

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// genDataset is a generated dataset: its rows of sightings in file order
// and, computed from them, the truth the index must reproduce.
type genDataset struct {
	rows  [][]identity.Sighting
	truth map[identity.Kind]map[string]*seen
}

type seen struct {
	occ   int64
	first string
}

// generate builds rows rows drawing phones, emails and ID numbers from
// pools of pool values each (so values repeat within and across datasets
// generated with overlapping pools); off shifts the pool so two datasets
// share part of it. Values are in normalised form, as the index receives
// them.
func generate(seed uint64, rows, pool, off int) genDataset {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	d := genDataset{truth: map[identity.Kind]map[string]*seen{}}
	for line := 1; line <= rows; line++ {
		loc := fmt.Sprintf("line %d", line)
		var row []identity.Sighting
		add := func(k identity.Kind, v string) {
			row = append(row, identity.Sighting{Kind: k, Value: v, Loc: loc})
			m := d.truth[k]
			if m == nil {
				m = map[string]*seen{}
				d.truth[k] = m
			}
			if s := m[v]; s != nil {
				s.occ++
			} else {
				m[v] = &seen{1, loc}
			}
		}
		n := off + r.IntN(pool)
		add(identity.Phone, fmt.Sprintf("+861%010d", 3000000000+n*7919%7000000000))
		if r.IntN(4) > 0 {
			add(identity.Email, fmt.Sprintf("user%d@example%d.cn", off+r.IntN(pool), n%7))
		}
		if r.IntN(3) == 0 {
			add(identity.CNID, fmt.Sprintf("1101011990%08d", off+r.IntN(pool)))
		}
		// The same value twice in one row: occurrences count both.
		if r.IntN(50) == 0 {
			add(identity.Phone, row[0].Value)
		}
		d.rows = append(d.rows, row)
	}
	return d
}

// feed streams the dataset to sink in chunks of chunk rows.
func (d genDataset) feed(chunk int) Feed {
	return func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
		var buf []identity.Sighting
		for i, row := range d.rows {
			buf = append(buf, row...)
			if (i+1)%chunk == 0 || i == len(d.rows)-1 {
				if err := sink(buf); err != nil {
					return FileInfo{}, err
				}
				buf = buf[:0]
			}
		}
		return FileInfo{Format: "gen", Rows: int64(len(d.rows))}, nil
	}
}

// writeFile writes the dataset as "kind<TAB>value" lines, one row per line
// (sightings separated by TABs), for readTSV.
func (d genDataset) writeFile(t testing.TB, path string) {
	t.Helper()
	var b strings.Builder
	for _, row := range d.rows {
		for i, s := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(string(s.Kind) + "\t" + s.Value)
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readTSV is a ReadFunc for writeFile's format.
func readTSV(ctx context.Context, path string, sink func([]identity.Sighting) error) (FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var info FileInfo
	var buf []identity.Sighting
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Split(sc.Text(), "\t")
		if len(fs)%2 != 0 {
			info.Rejected++
			continue
		}
		info.Rows++
		loc := fmt.Sprintf("line %d", line)
		for i := 0; i < len(fs); i += 2 {
			buf = append(buf, identity.Sighting{Kind: identity.Kind(fs[i]), Value: fs[i+1], Loc: loc})
		}
		if len(buf) >= 1000 {
			if err := sink(buf); err != nil {
				return info, err
			}
			buf = buf[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return info, err
	}
	if len(buf) > 0 {
		if err := sink(buf); err != nil {
			return info, err
		}
	}
	info.Format = "tsv"
	return info, nil
}

// testCase opens a fresh index with its own catalog in a temp dir.
func testCase(t testing.TB, dir string, shards int) *Index {
	t.Helper()
	db, err := sql.Open("sqlite3", shardDSN(filepath.Join(dir, "catalog.sqlite"), "_busy_timeout=30000&_journal_mode=WAL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := Open(context.Background(), db, filepath.Join(dir, "index"), Options{Shards: shards, SortBytes: 64 << 10, CommitRows: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// union returns the per-kind distinct count of the datasets together, and
// per kind how many of b's identities a lacks.
func union(ds ...genDataset) map[identity.Kind]int64 {
	sets := map[identity.Kind]map[string]bool{}
	for _, d := range ds {
		for k, m := range d.truth {
			if sets[k] == nil {
				sets[k] = map[string]bool{}
			}
			for v := range m {
				sets[k][v] = true
			}
		}
	}
	out := map[identity.Kind]int64{}
	for k, s := range sets {
		out[k] = int64(len(s))
	}
	return out
}

func uniqueOf(d genDataset) map[identity.Kind]int64 { return union(d) }

// newIn returns per kind the identities of b not in a.
func newIn(a, b genDataset) map[identity.Kind]int64 {
	out := map[identity.Kind]int64{}
	for k, m := range b.truth {
		for v := range m {
			if _, ok := a.truth[k][v]; !ok {
				out[k]++
			}
		}
	}
	return out
}

// shared returns how many identities (all kinds) a and b share.
func shared(a, b genDataset) int64 {
	var n int64
	for k, m := range b.truth {
		for v := range m {
			if _, ok := a.truth[k][v]; ok {
				n++
			}
		}
	}
	return n
}

func sightingsOf(d genDataset) int64 {
	var n int64
	for _, r := range d.rows {
		n += int64(len(r))
	}
	return n
}

package persons

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"golang.org/x/sys/unix"
)

// Options tune Build. Zero values take the defaults noted.
type Options struct {
	// HubIDs: a phone, e-mail, bank card or join key whose records hold more
	// than HubIDs distinct ID numbers is a hub (default 1: an ID number is
	// one person, so a value seen with two belongs to neither alone).
	HubIDs int `json:"hub_ids"`
	// HubPhones: a value whose records hold more than HubPhones distinct
	// phone numbers (other than itself) is a hub (default 10: a person
	// may have several phones).
	HubPhones int `json:"hub_phones"`
	// SortBytes is the memory of the external sort (default 256 MiB).
	SortBytes int `json:"-"`
	// Shards partitions the sort (default 16).
	Shards int `json:"-"`
	// Year is the current year for age bands (default: now, UTC).
	Year int `json:"-"`
}

func (o *Options) defaults() {
	if o.HubIDs <= 0 {
		o.HubIDs = 1
	}
	if o.HubPhones <= 0 {
		o.HubPhones = 10
	}
	if o.SortBytes <= 0 {
		o.SortBytes = 256 << 20
	}
	o.Shards = prepShards // the sources' prepared pairs are partitioned so
	if o.Year == 0 {
		o.Year = time.Now().UTC().Year()
	}
}

// Source is a done source to link, in load order.
type Source struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Evidence []string `json:"evidence"`           // evidence items it was found on (none: handed over)
	Category string   `json:"category,omitempty"` // its information category (see Categories)
}

// Hub is a value that joins nothing.
type Hub struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	People int64  `json:"people"` // distinct persons among its records
	Rule   string `json:"rule"`   // why it is a hub
}

// SourcePersons is the persons one source holds.
type SourcePersons struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Persons  int64  `json:"persons"`
	New      int64  `json:"new"`                // persons no earlier source held
	Category string `json:"category,omitempty"` // its information category
}

// EvidencePersons is the persons one evidence item's sources hold.
type EvidencePersons struct {
	ID      string `json:"id"`
	Persons int64  `json:"persons"`
}

// Overlap is the persons two sources share.
type Overlap struct {
	A      string `json:"a"`
	B      string `json:"b"`
	AID    int64  `json:"a_id"`
	BID    int64  `json:"b_id"`
	Shared int64  `json:"shared"`
}

// Summary is what Build found.
type Summary struct {
	Unique int64 `json:"unique"`
	// Hubs lists the MaxListedHubs hubs touching the most people; HubsTotal
	// counts them all (Store.EachHub yields every one, Store.Lookup finds
	// any), HubsByKind per kind.
	Hubs       []Hub             `json:"hubs"`
	HubsTotal  int64             `json:"hubs_total"`
	HubsByKind map[string]int64  `json:"hubs_by_kind"`
	Method     string            `json:"method"`
	Records    int64             `json:"records"`
	Sources    []SourcePersons   `json:"sources"`
	Evidence   []EvidencePersons `json:"evidence"`
	// Overlap lists pairs of sources sharing persons (only up to
	// maxOverlapSources sources; OverlapSkipped says when there were more).
	Overlap        []Overlap    `json:"overlap"`
	OverlapSkipped bool         `json:"overlap_skipped,omitempty"`
	Demographics   Demographics `json:"-"`
	Built          string       `json:"built"`
	Options        Options      `json:"options"` // the hub thresholds used
	// Unlinked lists the sources that have no records to link: loaded
	// before linking existed, or cut short between their load and the
	// keeping of their records. dataset add --reload links them.
	Unlinked []int64 `json:"unlinked_sources"`
	// Sentencing is the persons per information category against the
	// thresholds of 法释〔2017〕10号 art. 5.
	Sentencing Sentencing `json:"sentencing"`
}

// MaxListedHubs bounds the hubs a Summary lists: a leak drawn from
// recycled numbers has millions, which belong in a file, not in every
// stats and report.
const MaxListedHubs = 1000

// maxOverlapSources bounds the sources whose pairwise person overlaps are
// counted (a 64-bit mask per person).
const maxOverlapSources = 64

// Method states the linking rule in words.
func (o Options) Method() string {
	o.defaults()
	return fmt.Sprintf("identifiers sharing a record are one person; rows of one database's tables sharing a join key column "+
		"(same column name, or <table>_id = <table>.id) are one record; linked transitively across sources and evidence items "+
		"(union-find over records). A value whose records hold more than %d distinct ID numbers, or more than %d distinct phone "+
		"numbers, is a hub: it links nothing and is no person.", o.HubIDs, o.HubPhones)
}

// Build links the record files of sources (in dir, in load order) and
// writes a new generation of the store (see Store), made current
// atomically when complete.
func Build(ctx context.Context, dir string, sources []Source, opts Options) (*Summary, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	// A killed build leaves its build directory, and a killed load its
	// load-* files: removed once a day old (another process may be using
	// fresh ones); the next build starts again from the record files.
	for _, pat := range []string{"build-*", "load-*"} {
		olds, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, o := range olds {
			// A load's preparation is as old as its record file, written
			// to all along.
			if fi, err := os.Stat(strings.TrimSuffix(o, ".d")); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				os.RemoveAll(o)
			}
		}
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed into a generation
	if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	b := &builder{opts: opts, dir: dir, tmp: tmp, sources: sources}
	defer b.close()
	if err := b.sortRecords(ctx); err != nil {
		return nil, err
	}
	if err := b.passUnion(ctx); err != nil {
		return nil, err
	}
	if err := b.writeStore(ctx); err != nil {
		return nil, err
	}
	b.close() // the maps are written back
	if err := os.RemoveAll(filepath.Join(tmp, "work")); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	if err := commitGeneration(dir, tmp); err != nil {
		return nil, err
	}
	return b.sum, nil
}

type builder struct {
	opts    Options
	dir     string
	tmp     string
	sources []Source
	lo      []uint32 // first record of each source; lo[len] = records
	// unlinked are the sources without a record file.
	unlinked []int64
	maps     [][]byte

	parent []uint32 // union-find over records; roots are their component's least record
	// recIDs holds per record r the hashes (dedupe.Hash, never 0) of its
	// first ID number ([2r]) and first phone ([2r+1]), 0 for none: what the
	// hub rule counts distinct values of, known before any value's group
	// is seen, so one pass over the sorted values links. Two distinct values
	// among one value's records share a hash with odds of 2^-64.
	recIDs []uint64
	hasID  []uint64  // per record: holds a non-hub identifier (bitset)
	spill  *hubSpill // the hubs with their records, for countHubs
	demo   demoCounter
	sum    *Summary
}

func (b *builder) close() {
	for _, m := range b.maps {
		unix.Munmap(m)
	}
	b.maps = nil
	b.spill.close()
}

// free unmaps the array a (from array, mapFile or the ids file) once a
// pass is done with it: its pages leave the process at once instead of
// when the build ends.
func free[T any](b *builder, a []T) {
	if len(a) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(a))
	for i, m := range b.maps {
		if unsafe.Pointer(&m[0]) == p {
			unix.Munmap(m)
			b.maps = slices.Delete(b.maps, i, i+1)
			return
		}
	}
}

func (b *builder) free(a []uint32) { free(b, a) }

// recSuffix is what follows a value in the sort: a 0 byte and the record
// number (5 bytes big-endian), so a value's records are adjacent and in
// record order.
const recSuffix = 6

// sortRecords prepares every source not prepared yet (Prepare), numbers
// the records over the sources in load order, and joins the sources'
// record offsets (the generation's recoff.bin) and identifier hashes.
func (b *builder) sortRecords(ctx context.Context) error {
	offs, err := os.OpenFile(filepath.Join(b.tmp, recOffName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer offs.Close()
	idf, err := os.OpenFile(filepath.Join(b.tmp, "work", "ids"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer idf.Close()
	var rec uint64
	for _, src := range b.sources {
		b.lo = append(b.lo, uint32(rec))
		if _, err := os.Stat(recPath(b.dir, src.ID)); errors.Is(err, os.ErrNotExist) {
			b.unlinked = append(b.unlinked, src.ID)
		}
		if err := Prepare(ctx, b.dir, src.ID, b.opts.SortBytes); err != nil {
			return err
		}
		pd := prepPath(b.dir, src.ID)
		n, err := appendFile(offs, filepath.Join(pd, "offs.bin"))
		if err != nil {
			return err
		}
		m, err := appendFile(idf, filepath.Join(pd, "ids.bin"))
		if err != nil {
			return err
		}
		if n%8 != 0 || m != 2*n {
			return fmt.Errorf("persons: %s: offs.bin of %d bytes, ids.bin of %d", pd, n, m)
		}
		rec += uint64(n / 8)
		if rec >= math.MaxUint32-1 {
			return fmt.Errorf("persons: more than %d records", uint32(math.MaxUint32-1))
		}
	}
	b.lo = append(b.lo, uint32(rec))
	n := int(rec)
	// The union-find's array is the generation's roots file.
	if b.parent, err = b.mapFile(rootsName, n); err != nil {
		return err
	}
	for i := range b.parent {
		b.parent[i] = uint32(i)
	}
	if n > 0 {
		m, err := unix.Mmap(int(idf.Fd()), 0, 16*n, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("persons: map %d bytes: %w", 16*n, err)
		}
		b.maps = append(b.maps, m)
		b.recIDs = unsafe.Slice((*uint64)(unsafe.Pointer(&m[0])), 2*n)
	}
	hb, err := b.array((n + 63) / 64 * 2)
	if err != nil {
		return err
	}
	b.hasID = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(hb))), len(hb)/2)
	return nil
}

// appendFile copies the file at path to the end of w; its size.
func appendFile(w *os.File, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("persons: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("persons: %s: %w", path, err)
	}
	return n, nil
}

// array maps n uint32s backed by a file in the build directory: the
// kernel pages them out under memory pressure, so the union-find does not
// need the records to fit in memory.
func (b *builder) array(n int) ([]uint32, error) {
	if n == 0 {
		return []uint32{}, nil
	}
	f, err := os.CreateTemp(filepath.Join(b.tmp, "work"), "array-")
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer f.Close()
	return b.mapUint32s(f, n)
}

// mapUint32s sizes f to n uint32s and maps it shared, read-write; the
// mapping is released with the builder's others.
func (b *builder) mapUint32s(f *os.File, n int) ([]uint32, error) {
	size := int64(n) * 4
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	if n == 0 {
		return nil, nil // no records (every source unlinked): nothing to map
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("persons: map %s (%d bytes): %w", f.Name(), size, err)
	}
	b.maps = append(b.maps, m)
	return unsafe.Slice((*uint32)(unsafe.Pointer(&m[0])), n), nil
}

// groups yields each value of shard once with its records (ascending;
// valid until fn returns), over all shards in order.
func (b *builder) groups(ctx context.Context, fn func(kind string, value []byte, recs []uint32) error) error {
	return b.groupsShard(ctx, func(_ int, kind string, value []byte, recs []uint32) error { return fn(kind, value, recs) })
}

// groupsShard is groups with the shard of each value.
func (b *builder) groupsShard(ctx context.Context, fn func(shard int, kind string, value []byte, recs []uint32) error) error {
	for shard := range prepShards {
		if err := b.mergeShard(ctx, shard, func(kind string, value []byte, recs []uint32) error { return fn(shard, kind, value, recs) }); err != nil {
			return err
		}
	}
	return nil
}

// sourceOf returns the index of the source holding record r.
func (b *builder) sourceOf(r uint32) int {
	i, _ := slices.BinarySearch(b.lo[1:], r+1)
	// lo[1:] holds the end of each source; the first end > r.
	for i < len(b.sources) && b.lo[i+1] <= r {
		i++
	}
	return i
}

// distinctOver reports whether the non-zero hashes recIDs[2r+at] over
// recs (other than self) take more than limit distinct values.
func (b *builder) distinctOver(recs []uint32, at int, self uint64, limit int, seen []uint64) bool {
	seen = seen[:0]
	for _, r := range recs {
		v := b.recIDs[2*int(r)+at]
		if v == 0 || v == self || slices.Contains(seen, v) {
			continue
		}
		seen = append(seen, v)
		if len(seen) > limit {
			return true
		}
	}
	return false
}

func (b *builder) find(r uint32) uint32 {
	p := b.parent
	for p[r] != r {
		p[r] = p[p[r]]
		r = p[r]
	}
	return r
}

func (b *builder) union(x, y uint32) {
	x, y = b.find(x), b.find(y)
	switch {
	case x < y:
		b.parent[y] = x
	case y < x:
		b.parent[x] = y
	}
}

// hubRule returns why a value is a hub (ruleIDs, rulePhones), or 0.
func (b *builder) hubRule(kind identity.Kind, value []byte, recs []uint32, seen []uint64) byte {
	if kind != identity.CNID && b.distinctOver(recs, 0, 0, b.opts.HubIDs, seen) {
		return ruleIDs
	}
	self := uint64(0)
	if kind == identity.Phone {
		self = max(dedupe.Hash(string(kind), string(value)), 1)
	}
	if b.distinctOver(recs, 1, self, b.opts.HubPhones, seen) {
		return rulePhones
	}
	return 0
}

// passUnion is the one pass over the sorted values: it finds the hubs,
// unions the records of every other value, counts the demographics of the
// ID numbers and writes the identifier files (each value with its first
// record: the roots file gives the person).
func (b *builder) passUnion(ctx context.Context) error {
	var err error
	if b.spill, err = newHubSpill(filepath.Join(b.tmp, "work", "hubs")); err != nil {
		return err
	}
	b.demo.init(b.opts.Year, len(b.sources))
	seen := make([]uint64, 0, 64)
	var srcs []int
	iw := &identWriter{dir: b.tmp, name: "ident"}
	err = b.groupsShard(ctx, func(shard int, kind string, value []byte, recs []uint32) error {
		k := identity.Kind(kind)
		if len(recs) > 1 {
			if rule := b.hubRule(k, value, recs, seen); rule != 0 {
				// (keys of different databases come as different groups)
				return b.spill.add(shard, k, value, rule, recs)
			}
		}
		for _, r := range recs[1:] {
			b.union(recs[0], r)
		}
		if !k.IsIdentity() {
			return nil
		}
		for _, r := range recs {
			b.hasID[r/64] |= 1 << (r % 64)
		}
		if k == identity.CNID {
			srcs = srcs[:0]
			last := -1
			for _, r := range recs {
				if s := b.sourceOf(r); s != last {
					srcs = append(srcs, s)
					last = s
				}
			}
			b.demo.add(string(value), srcs)
		}
		return iw.add(shard, k, value, uint64(recs[0]))
	})
	if e := iw.finish(b.opts.Shards); err == nil {
		err = e
	}
	// The hub rule is decided: the identifier hashes are done with.
	free(b, b.recIDs)
	b.recIDs = nil
	return err
}

func (b *builder) holds(r uint32) bool { return b.hasID[r/64]&(1<<(r%64)) != 0 }

// count fills the summary from the union-find: persons overall, per source,
// per evidence item, overlaps, hubs' people.
func (b *builder) count(ctx context.Context) error {
	n := uint32(len(b.parent))
	sum := &Summary{Method: b.opts.Method(), Records: int64(n), Sources: []SourcePersons{},
		Evidence: []EvidencePersons{}, Overlap: []Overlap{}, Demographics: b.demo.result(b.sources)}
	// Components are flattened: parent[r] is the root from here on.
	for r := range n {
		b.parent[r] = b.find(r)
	}
	// Per source, in load order: persons, and those no earlier source held.
	// mark[root] = index+1 of the last source that counted the root, first[root]
	// that of the first; both reuse arrays the passes are done with.
	mark, err := b.array(int(n))
	if err != nil {
		return err
	}
	first, err := b.array(int(n))
	if err != nil {
		return err
	}
	// multi[root]: the sources holding the person, as a bit mask, for the
	// persons in more than one (file-backed, like every per-record array).
	overlaps := len(b.sources) <= maxOverlapSources
	var multi []uint64
	if overlaps {
		ma, err := b.array(2 * int(n))
		if err != nil {
			return err
		}
		multi = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(ma))), int(n))
	}
	for i, src := range b.sources {
		sp := SourcePersons{ID: src.ID, Name: src.Name, Category: src.Category}
		stamp := uint32(i + 1)
		for r := b.lo[i]; r < b.lo[i+1]; r++ {
			if !b.holds(r) {
				continue
			}
			root := b.parent[r]
			if mark[root] == stamp {
				continue
			}
			mark[root] = stamp
			sp.Persons++
			if first[root] == 0 {
				first[root] = stamp
				sp.New++
				sum.Unique++
			} else if overlaps {
				multi[root] |= 1<<(first[root]-1) | 1<<i
			}
		}
		sum.Sources = append(sum.Sources, sp)
	}
	if overlaps {
		pairs := map[[2]int]int64{}
		for _, m := range multi {
			if m == 0 {
				continue
			}
			for a := m; a != 0; a &= a - 1 {
				i := bits.TrailingZeros64(a)
				for c := a & (a - 1); c != 0; c &= c - 1 {
					pairs[[2]int{i, bits.TrailingZeros64(c)}]++
				}
			}
		}
		for p, v := range pairs {
			sa, sb := b.sources[p[0]], b.sources[p[1]]
			sum.Overlap = append(sum.Overlap, Overlap{A: sa.Name, B: sb.Name, AID: sa.ID, BID: sb.ID, Shared: v})
		}
		slices.SortFunc(sum.Overlap, func(x, y Overlap) int { return cmp.Or(cmp.Compare(x.AID, y.AID), cmp.Compare(x.BID, y.BID)) })
	} else {
		sum.OverlapSkipped = true
	}
	// Per evidence item: its sources' records, a distinct root each.
	evSources := map[string][]int{}
	var evOrder []string
	for i, src := range b.sources {
		for _, e := range src.Evidence {
			if _, ok := evSources[e]; !ok {
				evOrder = append(evOrder, e)
			}
			evSources[e] = append(evSources[e], i)
		}
	}
	slices.Sort(evOrder)
	for k, e := range evOrder {
		stamp := uint32(len(b.sources) + 1 + k) // above every source's stamp
		ep := EvidencePersons{ID: e}
		for _, i := range evSources[e] {
			for r := b.lo[i]; r < b.lo[i+1]; r++ {
				if b.holds(r) && mark[b.parent[r]] != stamp {
					mark[b.parent[r]] = stamp
					ep.Persons++
				}
			}
		}
		sum.Evidence = append(sum.Evidence, ep)
	}
	sum.Unlinked = append([]int64{}, b.unlinked...)
	sum.Sentencing = b.sentencing(mark, uint32(len(b.sources)+1+len(evOrder)))
	b.free(mark)
	b.free(first)
	if overlaps {
		free(b, multi)
	}
	if err := b.countHubs(ctx, sum); err != nil {
		return err
	}
	sum.Built = time.Now().UTC().Format(time.RFC3339)
	b.sum = sum
	return nil
}

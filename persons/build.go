package persons

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/index/runs"
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
	if o.Shards <= 0 {
		o.Shards = 16
	}
	if o.Year == 0 {
		o.Year = time.Now().UTC().Year()
	}
}

// Source is a done source to link, in load order.
type Source struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Evidence []string `json:"evidence"` // evidence items it was found on (none: handed over)
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
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Persons int64  `json:"persons"`
	New     int64  `json:"new"` // persons no earlier source held
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
	Unique   int64             `json:"unique"`
	Hubs     []Hub             `json:"hubs"`
	Method   string            `json:"method"`
	Records  int64             `json:"records"`
	Sources  []SourcePersons   `json:"sources"`
	Evidence []EvidencePersons `json:"evidence"`
	// Overlap lists pairs of sources sharing persons (only up to
	// maxOverlapSources sources; OverlapSkipped says when there were more).
	Overlap        []Overlap    `json:"overlap"`
	OverlapSkipped bool         `json:"overlap_skipped,omitempty"`
	Demographics   Demographics `json:"-"`
	Built          string       `json:"built"`
	Options        Options      `json:"options"` // the hub thresholds used
}

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

// DBName is the persons database in the persons directory.
const DBName = "persons.sqlite"

// Build links the record files of sources (in dir) and writes
// dir/persons.sqlite anew (replaced atomically when done).
func Build(ctx context.Context, dir string, sources []Source, opts Options) (*Summary, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &builder{opts: opts, dir: dir, tmp: tmp, sources: sources}
	defer b.close()
	if err := b.sortRecords(ctx); err != nil {
		return nil, err
	}
	if err := b.passIDs(ctx); err != nil {
		return nil, err
	}
	if err := b.passUnion(ctx); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(tmp, DBName)
	if err := b.write(ctx, dbPath); err != nil {
		return nil, err
	}
	if err := os.Rename(dbPath, filepath.Join(dir, DBName)); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	return b.sum, nil
}

type builder struct {
	opts    Options
	dir     string
	tmp     string
	sources []Source
	lo      []uint32 // first record of each source; lo[len] = records
	sorter  *runs.Sorter
	maps    [][]byte

	parent []uint32 // union-find over records; roots are their component's least record
	recCN  []uint32 // per record: ordinal+1 of its first ID number
	recPH  []uint32 // per record: ordinal+1 of its first phone
	hasID  []uint64 // per record: holds a non-hub identifier (bitset)
	hubs   map[string]*hubRecs
	demo   demoCounter
	sum    *Summary
}

type hubRecs struct {
	kind, value, rule string
	recs              []uint32
}

func (b *builder) close() {
	if b.sorter != nil {
		b.sorter.Close()
	}
	for _, m := range b.maps {
		unix.Munmap(m)
	}
}

// recSuffix is what follows a value in the sort: a 0 byte and the record
// number (5 bytes big-endian), so a value's records are adjacent and in
// record order.
const recSuffix = 6

// sortRecords reads every record file and sorts (value, record) pairs.
func (b *builder) sortRecords(ctx context.Context) error {
	s, err := runs.New(filepath.Join(b.tmp, "sort"), b.opts.Shards, b.opts.SortBytes)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	b.sorter = s
	var rec uint64
	var v []byte
	for _, src := range b.sources {
		b.lo = append(b.lo, uint32(rec))
		rr, f, err := openRecords(recPath(b.dir, src.ID))
		if errors.Is(err, os.ErrNotExist) {
			continue // loaded before linking existed: no records
		}
		if err != nil {
			return err
		}
		prefix := "s" + strconv.FormatInt(src.ID, 10) + ":"
		for {
			err := rr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
			if rec >= math.MaxUint32-1 {
				f.Close()
				return fmt.Errorf("persons: more than %d records", uint32(math.MaxUint32-1))
			}
			for _, it := range rr.rec.Items {
				if !it.Kind.IsIdentity() && it.Kind != "key" || strings.IndexByte(it.Value, 0) >= 0 {
					continue
				}
				v = v[:0]
				if it.Kind == "key" {
					v = append(v, prefix...) // keys join within one database only
				}
				v = append(v, it.Value...)
				shard := dedupe.Partition(string(it.Kind), string(v), b.opts.Shards)
				v = append(v, 0, byte(rec>>32), byte(rec>>24), byte(rec>>16), byte(rec>>8), byte(rec))
				if err := s.Add(shard, string(it.Kind), string(v), ""); err != nil {
					f.Close()
					return fmt.Errorf("persons: %w", err)
				}
			}
			rec++
			if rec&0xffff == 0 {
				if err := ctx.Err(); err != nil {
					f.Close()
					return err
				}
			}
		}
		f.Close()
	}
	b.lo = append(b.lo, uint32(rec))
	if err := s.Finish(ctx); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	n := int(rec)
	if b.parent, err = b.array(n); err != nil {
		return err
	}
	for i := range b.parent {
		b.parent[i] = uint32(i)
	}
	if b.recCN, err = b.array(n); err != nil {
		return err
	}
	if b.recPH, err = b.array(n); err != nil {
		return err
	}
	hb, err := b.array((n + 63) / 64 * 2)
	if err != nil {
		return err
	}
	b.hasID = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(hb))), len(hb)/2)
	return nil
}

// array maps n uint32s backed by a file in the build directory: the
// kernel pages them out under memory pressure, so the union-find does not
// need the records to fit in memory.
func (b *builder) array(n int) ([]uint32, error) {
	if n == 0 {
		return []uint32{}, nil
	}
	f, err := os.CreateTemp(b.tmp, "array-")
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer f.Close()
	size := int64(n) * 4
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("persons: map %d bytes: %w", size, err)
	}
	b.maps = append(b.maps, m)
	return unsafe.Slice((*uint32)(unsafe.Pointer(&m[0])), n), nil
}

// groups yields each value of shard once with its records (ascending;
// valid until fn returns), over all shards in order.
func (b *builder) groups(ctx context.Context, fn func(kind string, value []byte, recs []uint32) error) error {
	var (
		kind  string
		value []byte
		recs  []uint32
	)
	for shard := range b.opts.Shards {
		kind, value, recs = "", value[:0], recs[:0]
		err := b.sorter.Merge(ctx, shard, func(e runs.Entry) error {
			if len(e.Value) < recSuffix {
				return fmt.Errorf("persons: sort entry of %d bytes", len(e.Value))
			}
			v := e.Value[:len(e.Value)-recSuffix]
			t := e.Value[len(e.Value)-5:]
			r := uint32(uint64(t[0])<<32 | uint64(t[1])<<24 | uint64(t[2])<<16 | uint64(t[3])<<8 | uint64(t[4]))
			if e.Kind == kind && string(v) == string(value) {
				recs = append(recs, r)
				return nil
			}
			if len(recs) > 0 {
				if err := fn(kind, value, recs); err != nil {
					return err
				}
			}
			kind, value, recs = e.Kind, append(value[:0], v...), append(recs[:0], r)
			return nil
		})
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := fn(kind, value, recs); err != nil {
				return err
			}
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

// passIDs numbers ID numbers and phones, notes each record's first of
// each, and counts the demographics of the ID numbers.
func (b *builder) passIDs(ctx context.Context) error {
	var cn, ph uint32
	b.demo.init(b.opts.Year, len(b.sources))
	return b.groups(ctx, func(kind string, value []byte, recs []uint32) error {
		switch identity.Kind(kind) {
		case identity.CNID:
			cn++
			last := -1
			var srcs []int
			for _, r := range recs {
				if b.recCN[r] == 0 {
					b.recCN[r] = cn
				}
				if s := b.sourceOf(r); s != last {
					srcs = append(srcs, s)
					last = s
				}
			}
			b.demo.add(string(value), srcs)
		case identity.Phone:
			ph++
			for _, r := range recs {
				if b.recPH[r] == 0 {
					b.recPH[r] = ph
				}
			}
		}
		return nil
	})
}

// distinctOver reports whether the non-zero values arr[r] over recs
// (other than self) take more than limit distinct values.
func distinctOver(arr []uint32, recs []uint32, self uint32, limit int, seen []uint32) bool {
	seen = seen[:0]
	for _, r := range recs {
		v := arr[r]
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

// hubRule returns why a value is a hub, or "".
func (b *builder) hubRule(kind identity.Kind, recs []uint32, ph uint32, seen []uint32) string {
	if kind != identity.CNID && distinctOver(b.recCN, recs, 0, b.opts.HubIDs, seen) {
		return fmt.Sprintf("seen with more than %d distinct ID numbers", b.opts.HubIDs)
	}
	self := uint32(0)
	if kind == identity.Phone {
		self = ph
	}
	if distinctOver(b.recPH, recs, self, b.opts.HubPhones, seen) {
		return fmt.Sprintf("seen with more than %d distinct phone numbers", b.opts.HubPhones)
	}
	return ""
}

// passUnion finds the hubs and unions the records of every other value.
func (b *builder) passUnion(ctx context.Context) error {
	b.hubs = map[string]*hubRecs{}
	var ph uint32
	seen := make([]uint32, 0, 64)
	return b.groups(ctx, func(kind string, value []byte, recs []uint32) error {
		k := identity.Kind(kind)
		if k == identity.Phone {
			ph++
		}
		if len(recs) > 1 {
			if rule := b.hubRule(k, recs, ph, seen); rule != "" {
				v := string(value)
				if k == "key" {
					v = v[strings.IndexByte(v, ':')+1:]
				}
				b.hubs[kind+"\x00"+string(value)] = &hubRecs{kind: kind, value: v, rule: rule, recs: slices.Clone(recs)}
				return nil
			}
		}
		for _, r := range recs[1:] {
			b.union(recs[0], r)
		}
		if k.IsIdentity() {
			for _, r := range recs {
				b.hasID[r/64] |= 1 << (r % 64)
			}
		}
		return nil
	})
}

func (b *builder) holds(r uint32) bool { return b.hasID[r/64]&(1<<(r%64)) != 0 }

// isHub reports whether (kind, value) is a hub.
func (b *builder) isHub(kind string, value []byte) bool {
	_, ok := b.hubs[kind+"\x00"+string(value)]
	return ok
}

// count fills the summary from the union-find: persons overall, per source,
// per evidence item, overlaps, hubs' people.
func (b *builder) count() {
	n := uint32(len(b.parent))
	sum := &Summary{Method: b.opts.Method(), Records: int64(n), Hubs: []Hub{}, Sources: []SourcePersons{},
		Evidence: []EvidencePersons{}, Overlap: []Overlap{}, Demographics: b.demo.result(b.sources)}
	// Components are flattened: parent[r] is the root from here on.
	for r := range n {
		b.parent[r] = b.find(r)
	}
	// Per source, in load order: persons, and those no earlier source held.
	// mark[root] = index+1 of the last source that counted the root, first[root]
	// that of the first; both reuse arrays the passes are done with.
	mark, first := b.recCN, b.recPH
	clear(mark)
	clear(first)
	multi := map[uint32]uint64{}
	overlaps := len(b.sources) <= maxOverlapSources
	for i, src := range b.sources {
		sp := SourcePersons{ID: src.ID, Name: src.Name}
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
	// Hubs: the distinct persons among their records.
	for _, h := range b.hubs {
		var roots []uint32
		for _, r := range h.recs {
			if b.holds(r) {
				roots = append(roots, b.parent[r])
			}
		}
		slices.Sort(roots)
		sum.Hubs = append(sum.Hubs, Hub{Kind: h.kind, Value: h.value, People: int64(len(slices.Compact(roots))), Rule: h.rule})
	}
	slices.SortFunc(sum.Hubs, func(x, y Hub) int {
		return cmp.Or(cmp.Compare(y.People, x.People), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Value, y.Value))
	})
	sum.Built = time.Now().UTC().Format(time.RFC3339)
	b.sum = sum
}

// write counts and writes the persons database at path.
func (b *builder) write(ctx context.Context, path string) error {
	b.count()
	db, err := openDB(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range []string{`PRAGMA journal_mode=OFF`, `PRAGMA synchronous=OFF`, `PRAGMA page_size=65536`, dbSchema} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("persons: %s: %w", path, err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer tx.Rollback()
	ins := newInserter(ctx, tx, "ident(kind, value, person)", 3)
	err = b.groups(ctx, func(kind string, value []byte, recs []uint32) error {
		if kind == "key" || b.isHub(kind, value) {
			return nil
		}
		return ins.add(kind, string(value), int64(b.parent[recs[0]])+1)
	})
	if err == nil {
		err = ins.flush()
	}
	if err != nil {
		return fmt.Errorf("persons: %s: %w", path, err)
	}
	if err := b.writeRecords(ctx, tx); err != nil {
		return err
	}
	hi := newInserter(ctx, tx, "hubs(kind, value, people, rule)", 4)
	for _, h := range b.sum.Hubs {
		if err := hi.add(h.Kind, h.Value, h.People, h.Rule); err != nil {
			return fmt.Errorf("persons: %w", err)
		}
	}
	if err := hi.flush(); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	js, _ := json.Marshal(b.sum)
	dj, _ := json.Marshal(b.sum.Demographics)
	sj, _ := json.Marshal(b.sources)
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('summary', ?), ('demographics', ?), ('sources', ?)`, string(js), string(dj), string(sj)); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("persons: %s: %w", path, err)
	}
	return nil
}

// writeRecords stores every record that holds a person, keyed by person:
// search reads a person's records in one range. They are sorted by
// (person, record) first, so the inserts append.
func (b *builder) writeRecords(ctx context.Context, tx *sql.Tx) error {
	s, err := runs.New(filepath.Join(b.tmp, "recs"), 1, b.opts.SortBytes)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer s.Close()
	var (
		key     []byte
		payload []byte
		rec     uint32
	)
	for i, src := range b.sources {
		rr, f, err := openRecords(recPath(b.dir, src.ID))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		rec = b.lo[i]
		for {
			err := rr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return err
			}
			if b.holds(rec) {
				key = binary.BigEndian.AppendUint32(key[:0], b.parent[rec])
				key = binary.BigEndian.AppendUint32(key, rec)
				payload = encodePayload(payload[:0], src.ID, &rr.rec)
				if err := s.Add(0, "r", string(key), string(payload)); err != nil {
					f.Close()
					return fmt.Errorf("persons: %w", err)
				}
			}
			rec++
		}
		f.Close()
	}
	if err := s.Finish(ctx); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	ins := newInserter(ctx, tx, "records(person, rec, payload)", 3)
	err = s.Merge(ctx, 0, func(e runs.Entry) error {
		if len(e.Value) != 8 {
			return fmt.Errorf("persons: record key of %d bytes", len(e.Value))
		}
		return ins.add(int64(binary.BigEndian.Uint32(e.Value))+1, int64(binary.BigEndian.Uint32(e.Value[4:])), string(e.Loc))
	})
	if err == nil {
		err = ins.flush()
	}
	if err != nil {
		return fmt.Errorf("persons: records: %w", err)
	}
	return nil
}

// encodePayload packs a record for the records table: source id, TAB,
// location, then TAB kind TAB value per item (values hold no TAB: names
// and addresses are space-folded, identifiers are canonical). It is cut
// at what the sort keeps of a location.
func encodePayload(dst []byte, src int64, r *Record) []byte {
	dst = strconv.AppendInt(dst, src, 10)
	dst = append(dst, '\t')
	dst = append(dst, strings.ReplaceAll(r.Loc, "\t", " ")...)
	for _, it := range r.Items {
		if len(dst)+len(it.Kind)+len(it.Value)+2 > 32000 {
			break
		}
		dst = append(dst, '\t')
		dst = append(dst, it.Kind...)
		dst = append(dst, '\t')
		dst = append(dst, strings.ReplaceAll(it.Value, "\t", " ")...)
	}
	return dst
}

// inserter batches rows into multi-row INSERTs.
type inserter struct {
	ctx   context.Context
	tx    *sql.Tx
	table string
	cols  int
	args  []any
	stmt  *sql.Stmt
}

const insertRows = 200

func newInserter(ctx context.Context, tx *sql.Tx, table string, cols int) *inserter {
	return &inserter{ctx: ctx, tx: tx, table: table, cols: cols}
}

func (in *inserter) sqlFor(rows int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + in.table + " VALUES ")
	ph := "(" + strings.Repeat("?,", in.cols-1) + "?)"
	for i := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(ph)
	}
	return sb.String()
}

func (in *inserter) add(vals ...any) error {
	in.args = append(in.args, vals...)
	if len(in.args) < insertRows*in.cols {
		return nil
	}
	if in.stmt == nil {
		st, err := in.tx.PrepareContext(in.ctx, in.sqlFor(insertRows))
		if err != nil {
			return err
		}
		in.stmt = st
	}
	_, err := in.stmt.ExecContext(in.ctx, in.args...)
	in.args = in.args[:0]
	return err
}

func (in *inserter) flush() error {
	if in.stmt != nil {
		defer in.stmt.Close()
	}
	if len(in.args) == 0 {
		return nil
	}
	_, err := in.tx.ExecContext(in.ctx, in.sqlFor(len(in.args)/in.cols), in.args...)
	in.args = in.args[:0]
	return err
}

package persons

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"golang.org/x/sys/unix"
)

// The store is a generation directory of flat files, named by the file
// current (replaced atomically, so a reader sees one whole build):
//
//	meta.json        summary, demographics, hubs, sources and their first records
//	recoff.bin       per record (numbered over the sources in load order):
//	                 its offset in its source's record file, uint64 LE
//	roots.bin        per record: its component's least record, uint32 LE
//	members.bin      start[records+1] then rec[records], uint32 LE: the
//	                 records of each component, under its least record
//	ident-NNN.bin    per shard of dedupe.Partition: (kind code, uvarint
//	                 length, value, uvarint first record) sorted by kind
//	                 name and value, every identifier that is no hub
//	ident-NNN.idx    the offset of every identEvery-th entry, uint64 LE
//	hub-NNN.bin/.idx the hubs, in the same form, the number after each
//	                 value being its people<<2 | rule (see hubs.go)
//
// A person is numbered by its component's least record + 1. Flat sorted
// files are written in one sequential pass each, which a B-tree of 10^9
// identifiers is not.
const (
	currentName = "current"
	metaName    = "meta.json"
	recOffName  = "recoff.bin"
	membersName = "members.bin"
	rootsName   = "roots.bin"
	identEvery  = 64
)

// ErrNotBuilt is returned by OpenStore when no link has run yet.
var ErrNotBuilt = errors.New("persons: not linked yet")

// meta is meta.json.
type meta struct {
	Summary      *Summary     `json:"summary"`
	Demographics Demographics `json:"demographics"`
	Sources      []Source     `json:"sources"`
	Lo           []uint32     `json:"lo"` // first record of each source; the last is the record count
	Shards       int          `json:"shards"`
	// Format 2 keeps the hubs in hub files; before it, meta.json listed
	// every hub in the summary.
	Format int `json:"format"`
}

const storeFormat = 2

// writeStore writes the rest of the generation into b.tmp (recoff.bin
// and the identifier files are written by the passes, roots.bin is the
// union-find's array).
func (b *builder) writeStore(ctx context.Context) error {
	if err := b.count(ctx); err != nil {
		return err
	}
	n := len(b.parent)
	// members.bin: a counting sort of the records by root, in place in
	// the mapped file.
	m, err := b.mapFile(membersName, 2*n+1)
	if err != nil {
		return err
	}
	start, recs := m[:n+1], m[n+1:]
	for r := range n {
		start[b.parent[r]+1]++
	}
	for i := 1; i <= n; i++ {
		start[i] += start[i-1]
	}
	next, err := b.array(n)
	if err != nil {
		return err
	}
	copy(next, start[:n])
	for r := range n {
		root := b.parent[r]
		recs[next[root]] = uint32(r)
		next[root]++
	}
	b.free(next)
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := json.Marshal(meta{Summary: b.sum, Demographics: b.sum.Demographics, Sources: b.sources, Lo: b.lo, Shards: b.opts.Shards, Format: storeFormat})
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := os.WriteFile(filepath.Join(b.tmp, metaName), js, 0o600); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
}

// identWriter writes the identifier files, shard after shard, each value
// in sort order.
type identWriter struct {
	dir    string
	name   string // file name prefix: "ident" or "hub"
	shard  int
	f, ixf *os.File
	w, ixw *bufio.Writer
	off    int64
	count  int
	buf    []byte
	opened bool
}

func (iw *identWriter) close() error {
	if iw.f == nil {
		return nil
	}
	err := iw.w.Flush()
	if e := iw.ixw.Flush(); err == nil {
		err = e
	}
	if e := iw.f.Close(); err == nil {
		err = e
	}
	if e := iw.ixf.Close(); err == nil {
		err = e
	}
	iw.f = nil
	return err
}

func (iw *identWriter) open(s int) error {
	if err := iw.close(); err != nil {
		return err
	}
	var err error
	if iw.f, err = os.OpenFile(filepath.Join(iw.dir, fmt.Sprintf("%s-%03d.bin", iw.name, s)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
		return err
	}
	if iw.ixf, err = os.OpenFile(filepath.Join(iw.dir, fmt.Sprintf("%s-%03d.idx", iw.name, s)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
		iw.f.Close()
		iw.f = nil
		return err
	}
	iw.w, iw.ixw = bufio.NewWriterSize(iw.f, 1<<20), bufio.NewWriterSize(iw.ixf, 64<<10)
	iw.off, iw.count, iw.shard, iw.opened = 0, 0, s, true
	return nil
}

// add writes one identifier of shard with its number (the first record,
// or a hub's people and rule).
func (iw *identWriter) add(shard int, k identity.Kind, value []byte, num uint64) error {
	if !iw.opened || shard != iw.shard {
		if err := iw.open(shard); err != nil {
			return err
		}
	}
	c, _ := kindCode(k)
	if iw.count%identEvery == 0 {
		var ob [8]byte
		binary.LittleEndian.PutUint64(ob[:], uint64(iw.off))
		if _, err := iw.ixw.Write(ob[:]); err != nil {
			return err
		}
	}
	iw.buf = append(iw.buf[:0], c)
	iw.buf = binary.AppendUvarint(iw.buf, uint64(len(value)))
	iw.buf = append(iw.buf, value...)
	iw.buf = binary.AppendUvarint(iw.buf, num)
	if _, err := iw.w.Write(iw.buf); err != nil {
		return err
	}
	iw.off += int64(len(iw.buf))
	iw.count++
	return nil
}

// finish closes the last shard and makes empty files for shards without
// identifiers.
func (iw *identWriter) finish(shards int) error {
	err := iw.close()
	for s := range shards {
		if err != nil {
			break
		}
		for _, ext := range []string{".bin", ".idx"} {
			name := filepath.Join(iw.dir, fmt.Sprintf("%s-%03d%s", iw.name, s, ext))
			if _, e := os.Stat(name); errors.Is(e, os.ErrNotExist) {
				err = os.WriteFile(name, nil, 0o600)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("persons: %s files: %w", iw.name, err)
	}
	return nil
}

// mapFile maps n uint32s of a new file name in the build directory.
func (b *builder) mapFile(name string, n int) ([]uint32, error) {
	f, err := os.OpenFile(filepath.Join(b.tmp, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer f.Close()
	return b.mapUint32s(f, n)
}

// commitGeneration makes build directory tmp the current generation of
// dir and removes the older ones.
func commitGeneration(dir, tmp string) error {
	gen := "gen-" + strings.TrimPrefix(filepath.Base(tmp), "build-")
	if err := os.Rename(tmp, filepath.Join(dir, gen)); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	cur := filepath.Join(dir, currentName)
	if err := os.WriteFile(cur+".tmp", []byte(gen+"\n"), 0o600); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := os.Rename(cur+".tmp", cur); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	olds, _ := filepath.Glob(filepath.Join(dir, "gen-*"))
	for _, o := range olds {
		if filepath.Base(o) != gen {
			os.RemoveAll(o) // a reader that has it open keeps its files
		}
	}
	return nil
}

// Store reads the current generation. Safe for one goroutine at a time.
type Store struct {
	dir, gen string
	meta     meta
	// legacyHubs holds a format-1 generation's hubs (all in meta.json).
	legacyHubs map[Ident]Hub
	sorted     map[sortedKey]*sortedFile // ident and hub files opened so far
	recOff     *os.File
	members    *os.File
	roots      *os.File
	recs       map[int64]*os.File
	rbuf       *bufio.Reader // reads one record at a time
	mu         sync.Mutex
}

// OpenStore opens dir's current persons; ErrNotBuilt when none was built.
func OpenStore(dir string) (*Store, error) {
	b, err := os.ReadFile(filepath.Join(dir, currentName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotBuilt
	}
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	s := &Store{dir: dir, gen: filepath.Join(dir, filepath.Base(strings.TrimSpace(string(b)))), recs: map[int64]*os.File{}, sorted: map[sortedKey]*sortedFile{}}
	js, err := os.ReadFile(filepath.Join(s.gen, metaName))
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	if err := json.Unmarshal(js, &s.meta); err != nil || s.meta.Summary == nil || len(s.meta.Lo) != len(s.meta.Sources)+1 || s.meta.Shards <= 0 {
		return nil, fmt.Errorf("persons: %s: not a persons summary", filepath.Join(s.gen, metaName))
	}
	s.meta.Summary.Demographics = s.meta.Demographics
	if s.meta.Format < storeFormat {
		s.legacyHubs = map[Ident]Hub{}
		for _, h := range s.meta.Summary.Hubs {
			s.legacyHubs[Ident{Kind: h.Kind, Value: h.Value}] = h
		}
		s.meta.Summary.HubsTotal = int64(len(s.meta.Summary.Hubs))
	}
	if s.recOff, err = os.Open(filepath.Join(s.gen, recOffName)); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	if s.members, err = os.Open(filepath.Join(s.gen, membersName)); err != nil {
		s.recOff.Close()
		return nil, fmt.Errorf("persons: %w", err)
	}
	if s.roots, err = os.Open(filepath.Join(s.gen, rootsName)); err != nil {
		s.recOff.Close()
		s.members.Close()
		return nil, fmt.Errorf("persons: %w", err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error {
	s.recOff.Close()
	s.members.Close()
	s.roots.Close()
	for _, f := range s.recs {
		f.Close()
	}
	for _, f := range s.sorted {
		f.close()
	}
	return nil
}

// Summary returns what the last Build found.
func (s *Store) Summary(ctx context.Context) (*Summary, error) {
	sum := *s.meta.Summary
	return &sum, nil
}

// Records is the number of records linked.
func (s *Store) Records() int64 { return int64(s.meta.Lo[len(s.meta.Lo)-1]) }

// Ident is one identifier of a person.
type Ident struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Location is one record of a person: the source and where in it.
type Location struct {
	SourceID int64  `json:"source_id"`
	Source   string `json:"source"`
	Loc      string `json:"loc"`
}

// SourceRef names a source of a person's records.
type SourceRef struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Evidence []string `json:"evidence"` // the evidence items it was found on
}

// Person is everything linked to one identifier.
type Person struct {
	ID          int64    `json:"id"`
	Identifiers []Ident  `json:"identifiers"`
	Names       []string `json:"names"`
	// NamesNote says why Names is empty (the records carry no name column).
	NamesNote string      `json:"names_note,omitempty"`
	Addresses []string    `json:"addresses"`
	Sources   []SourceRef `json:"sources"`
	Evidence  []string    `json:"evidence"`
	// Locations lists every record of the person (up to maxLocations;
	// Truncated then says so and Records counts them all).
	Locations []Location `json:"locations"`
	Records   int64      `json:"records"`
	Truncated bool       `json:"truncated,omitempty"`
	// Hub is set, instead of the rest, when the value is a hub.
	Hub *Hub `json:"hub,omitempty"`
}

// maxLocations bounds the locations one lookup lists.
const maxLocations = 100_000

func newPerson() *Person {
	return &Person{Identifiers: []Ident{}, Names: []string{}, Addresses: []string{}, Sources: []SourceRef{},
		Evidence: []string{}, Locations: []Location{}}
}

// Lookup returns the person holding (kind, value), a Person with only Hub
// set for a hub, or nil.
func (s *Store) Lookup(ctx context.Context, kind identity.Kind, value string) (*Person, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.hub(kind, value)
	if err != nil {
		return nil, err
	}
	if h != nil {
		p := newPerson()
		p.Hub = h
		return p, nil
	}
	rec, ok, err := s.ident(kind, value)
	if err != nil || !ok {
		return nil, err
	}
	var rb [4]byte
	if _, err := s.roots.ReadAt(rb[:], 4*int64(rec)); err != nil {
		return nil, fmt.Errorf("persons: %s at %#x: %w", rootsName, 4*int64(rec), err)
	}
	return s.person(ctx, int64(binary.LittleEndian.Uint32(rb[:]))+1)
}

// Person returns person id, or nil when there is none.
func (s *Store) Person(ctx context.Context, id int64) (*Person, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.person(ctx, id)
}

// Each calls fn with every person, in the order of their numbers.
func (s *Store) Each(ctx context.Context, fn func(*Person) error) error {
	n := s.Records()
	// The start array is read in pieces: person r+1 has records when
	// start[r+1] > start[r].
	const piece = 1 << 16
	buf := make([]byte, 4*(piece+1))
	for lo := int64(0); lo < n; lo += piece {
		hi := min(lo+piece, n)
		b := buf[:4*(hi-lo+1)]
		if _, err := s.members.ReadAt(b, 4*lo); err != nil {
			return fmt.Errorf("persons: %s at %#x: %w", membersName, 4*lo, err)
		}
		for r := lo; r < hi; r++ {
			i := r - lo
			if binary.LittleEndian.Uint32(b[4*i+4:]) == binary.LittleEndian.Uint32(b[4*i:]) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := s.Person(ctx, r+1)
			if err != nil {
				return err
			}
			if p != nil && len(p.Identifiers) > 0 {
				if err := fn(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ident finds the first record of a non-hub identifier.
func (s *Store) ident(kind identity.Kind, value string) (uint64, bool, error) {
	if !kind.IsIdentity() {
		return 0, false, nil
	}
	return s.find("ident", kind, value)
}

// hub returns the hub (kind, value), or nil when it is none.
func (s *Store) hub(kind identity.Kind, value string) (*Hub, error) {
	if s.legacyHubs != nil {
		if h, ok := s.legacyHubs[Ident{Kind: string(kind), Value: value}]; ok {
			return &h, nil
		}
		return nil, nil
	}
	if !kind.IsIdentity() {
		return nil, nil
	}
	num, ok, err := s.find("hub", kind, value)
	if err != nil || !ok {
		return nil, err
	}
	return &Hub{Kind: string(kind), Value: value, People: int64(num >> 2), Rule: ruleText(s.meta.Summary.Options, byte(num&3))}, nil
}

// sortedFile is one shard's ident or hub file with its sampled offsets,
// both mapped read-only: a lookup is a binary search in the page cache,
// no read calls (export looks up every identifier of every person).
type sortedFile struct {
	name string
	bin  []byte
	idx  []byte // every identEvery-th entry's offset, uint64 LE
}

func (f *sortedFile) close() {
	for _, m := range [][]byte{f.bin, f.idx} {
		if len(m) > 0 {
			unix.Munmap(m)
		}
	}
}

// mapReadOnly maps path read-only (nil for an empty file).
func mapReadOnly(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	if fi.Size() == 0 {
		return nil, nil
	}
	if fi.Size() > math.MaxInt {
		return nil, fmt.Errorf("persons: %s: %d bytes", path, fi.Size())
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("persons: map %s: %w", path, err)
	}
	return m, nil
}

type sortedKey struct {
	prefix string
	shard  int
}

// open returns the shard's file of prefix ("ident" or "hub"), mapped once.
func (s *Store) open(prefix string, shard int) (*sortedFile, error) {
	if f := s.sorted[sortedKey{prefix, shard}]; f != nil {
		return f, nil
	}
	name := filepath.Join(s.gen, fmt.Sprintf("%s-%03d", prefix, shard))
	f := &sortedFile{name: name + ".bin"}
	var err error
	if f.bin, err = mapReadOnly(name + ".bin"); err == nil {
		f.idx, err = mapReadOnly(name + ".idx")
	}
	if err != nil {
		f.close()
		return nil, err
	}
	s.sorted[sortedKey{prefix, shard}] = f
	return f, nil
}

// entryAt parses the entry at off of a sorted file: its kind code, value
// (aliasing b) and number, and the offset after it.
func entryAt(b []byte, off int64) (code byte, value []byte, num uint64, next int64, err error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, nil, 0, 0, io.EOF
	}
	p := b[off:]
	code = p[0]
	if int(code) >= len(itemKinds) {
		return 0, nil, 0, 0, fmt.Errorf("entry at %#x: %w", off, errCorrupt)
	}
	l, n := binary.Uvarint(p[1:])
	if n <= 0 || l > maxItem || uint64(len(p)-1-n) < l {
		return 0, nil, 0, 0, fmt.Errorf("entry at %#x: %w", off, errCorrupt)
	}
	value = p[1+n : 1+n+int(l)]
	num, m := binary.Uvarint(p[1+n+int(l):])
	if m <= 0 {
		return 0, nil, 0, 0, fmt.Errorf("entry at %#x: %w", off, errCorrupt)
	}
	return code, value, num, off + int64(1+n+int(l)+m), nil
}

// find returns the number stored after (kind, value) in the sorted files
// of prefix.
func (s *Store) find(prefix string, kind identity.Kind, value string) (uint64, bool, error) {
	code, ok := kindCode(kind)
	if !ok {
		return 0, false, nil
	}
	f, err := s.open(prefix, dedupe.Partition(string(kind), value, s.meta.Shards))
	if err != nil {
		return 0, false, err
	}
	at := func(i int) int64 { return int64(binary.LittleEndian.Uint64(f.idx[8*i:])) }
	// Entries sort by kind name, then value bytes (cmpKey).
	target := func(c byte, v []byte) int {
		if k := strings.Compare(string(itemKinds[c]), string(kind)); k != 0 {
			return k
		}
		switch { // (comparisons of string(v) do not copy v)
		case string(v) < value:
			return -1
		case string(v) > value:
			return 1
		}
		return 0
	}
	// The last sampled entry not above the value, then a scan.
	lo, hi := 0, len(f.idx)/8
	for lo < hi {
		mid := (lo + hi) / 2
		c, v, _, _, err := entryAt(f.bin, at(mid))
		if err != nil {
			return 0, false, fmt.Errorf("persons: %s: %w", f.name, cmpErr(err))
		}
		if target(c, v) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, false, nil
	}
	off := at(lo - 1)
	for range identEvery {
		c, v, num, next, err := entryAt(f.bin, off)
		if err == io.EOF {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("persons: %s: %w", f.name, err)
		}
		switch t := target(c, v); {
		case t == 0 && c == code:
			return num, true, nil
		case t > 0:
			return 0, false, nil
		}
		off = next
	}
	return 0, false, nil
}

// EachHub calls fn with every hub, shard after shard (Summary.Hubs lists
// those touching the most people).
func (s *Store) EachHub(ctx context.Context, fn func(Hub) error) error {
	if s.legacyHubs != nil {
		for _, h := range s.meta.Summary.Hubs {
			if err := fn(h); err != nil {
				return err
			}
		}
		return nil
	}
	for shard := range s.meta.Shards {
		s.mu.Lock()
		f, err := s.open("hub", shard)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		for off, n := int64(0), 0; ; n++ {
			c, v, num, next, err := entryAt(f.bin, off)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("persons: %s: %w", f.name, err)
			}
			if n&0xfff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := fn(Hub{Kind: string(itemKinds[c]), Value: string(v), People: int64(num >> 2), Rule: ruleText(s.meta.Summary.Options, byte(num&3))}); err != nil {
				return err
			}
			off = next
		}
	}
	return nil
}

// cmpKey orders identifiers as the sort does: kind name, then value bytes.
func cmpKey(ak identity.Kind, av string, bk identity.Kind, bv string) int {
	if c := strings.Compare(string(ak), string(bk)); c != 0 {
		return c
	}
	return strings.Compare(av, bv)
}

func cmpErr(err error) error {
	if err == nil {
		return errCorrupt
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// person reads person id's records.
func (s *Store) person(ctx context.Context, id int64) (*Person, error) {
	n := s.Records()
	if id < 1 || id > n {
		return nil, nil
	}
	var se [8]byte
	if _, err := s.members.ReadAt(se[:], 4*(id-1)); err != nil {
		return nil, fmt.Errorf("persons: %s at %#x: %w", membersName, 4*(id-1), err)
	}
	a, b := int64(binary.LittleEndian.Uint32(se[:])), int64(binary.LittleEndian.Uint32(se[4:]))
	if b <= a || b > n {
		return nil, nil
	}
	p := newPerson()
	p.ID = id
	seen := map[Ident]bool{}
	var srcIdx []int
	rb := make([]byte, 4*min(b-a, 1<<16))
	for i := a; i < b; i += int64(len(rb) / 4) {
		chunk := rb[:4*min(b-i, int64(len(rb)/4))]
		if _, err := s.members.ReadAt(chunk, 4*(n+1+i)); err != nil {
			return nil, fmt.Errorf("persons: %s at %#x: %w", membersName, 4*(n+1+i), err)
		}
		for j := 0; j < len(chunk); j += 4 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec := binary.LittleEndian.Uint32(chunk[j:])
			si, r, err := s.record(rec)
			if err != nil {
				return nil, err
			}
			src := s.meta.Sources[si]
			p.Records++
			if len(p.Locations) < maxLocations {
				p.Locations = append(p.Locations, Location{SourceID: src.ID, Source: src.Name, Loc: r.Loc})
			} else {
				p.Truncated = true
			}
			if !slices.Contains(srcIdx, si) {
				srcIdx = append(srcIdx, si)
			}
			for _, it := range r.Items {
				id := Ident{Kind: string(it.Kind), Value: it.Value}
				if seen[id] || it.Kind == "key" {
					continue
				}
				seen[id] = true
				switch it.Kind {
				case identity.Name:
					p.Names = append(p.Names, it.Value)
				case identity.Address:
					p.Addresses = append(p.Addresses, it.Value)
				default:
					h, err := s.hub(it.Kind, it.Value)
					if err != nil {
						return nil, err
					}
					if h == nil {
						p.Identifiers = append(p.Identifiers, id)
					}
				}
			}
		}
	}
	if len(p.Names) == 0 {
		p.NamesNote = "the records of this person carry no name column"
	}
	slices.SortFunc(p.Identifiers, func(a, b Ident) int { return cmpKey(identity.Kind(a.Kind), a.Value, identity.Kind(b.Kind), b.Value) })
	slices.Sort(srcIdx)
	for _, si := range srcIdx {
		src := s.meta.Sources[si]
		p.Sources = append(p.Sources, SourceRef{ID: src.ID, Name: src.Name, Evidence: append([]string{}, src.Evidence...)})
		for _, e := range src.Evidence {
			if !slices.Contains(p.Evidence, e) {
				p.Evidence = append(p.Evidence, e)
			}
		}
	}
	slices.Sort(p.Evidence)
	return p, nil
}

// record reads record rec: the index of its source and the record.
func (s *Store) record(rec uint32) (int, Record, error) {
	lo := s.meta.Lo
	si, found := slices.BinarySearch(lo, rec)
	if !found {
		si--
	}
	for si+1 < len(lo)-1 && lo[si+1] <= rec { // sources without records
		si++
	}
	if si < 0 || si >= len(s.meta.Sources) {
		return 0, Record{}, fmt.Errorf("persons: record %d past the last source", rec)
	}
	var ob [8]byte
	if _, err := s.recOff.ReadAt(ob[:], 8*int64(rec)); err != nil {
		return 0, Record{}, fmt.Errorf("persons: %s at %#x: %w", recOffName, 8*int64(rec), err)
	}
	off := int64(binary.LittleEndian.Uint64(ob[:]))
	id := s.meta.Sources[si].ID
	f := s.recs[id]
	if f == nil {
		var err error
		if f, err = os.Open(recPath(s.dir, id)); err != nil {
			return 0, Record{}, fmt.Errorf("persons: %w", err)
		}
		s.recs[id] = f
	}
	// One small buffer serves every record read (under s.mu).
	if s.rbuf == nil {
		s.rbuf = bufio.NewReaderSize(nil, 4<<10)
	}
	s.rbuf.Reset(io.NewSectionReader(f, off, 1<<40))
	rr := &recReader{path: f.Name(), r: &countReader{r: s.rbuf, n: off}}
	if err := rr.next(); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("persons: %s: no record at %#x", f.Name(), off)
		}
		return 0, Record{}, err
	}
	r := Record{Loc: rr.rec.Loc, Items: slices.Clone(rr.rec.Items)}
	return si, r, nil
}

// Package persons links the identifiers of a case into people: the
// identifiers (phone, e-mail, ID number, bank card) one record holds are one
// person, the rows of a database's tables sharing a join key (customer.cid =
// login.cid, login.customer_id = customer.id) are one record, and people are
// joined transitively across sources and evidence items. A value seen with
// more distinct ID numbers (or phone numbers) than a threshold — a
// placeholder such as 13800138000, a shop's service line — is a hub: it joins
// nothing and is no person, and is listed with how many people it touches.
//
// A load records each source's records in a record file (Recorder, Wrap).
// Each source's records are then sorted once, out of core with the external
// sort of index/runs, into per-shard sorted (value, record) files beside
// it (Prepare); Build merges every done source's prepared files (no sort)
// and runs a union-find over record numbers held in file-backed arrays,
// in one pass over the values, and writes a new generation of flat files
// (see Store) made current atomically. Adding a source therefore sorts
// only the new source, then merges: the result is what a relink from
// scratch gives, by construction (tested); the merge and union pass still
// read every source's prepared pairs (linear, bounded memory), so a relink
// costs O(all records), not O(new records). An interrupted link is redone
// from the record files by the next one. Names and addresses are those of
// the records' name and address columns; files without headers carry none.
//
// Sources can carry an information category (SetCategory): the persons
// per category are the sentencing counts of 法释〔2017〕10号 art. 5
// (Sentencing).
//
// It also derives demographics from the ID numbers: province, prefecture
// and county of the address code (GB/T 2260, retired codes kept), birth
// year, age band, sex.
package persons

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// recMagic starts a record file.
const recMagic = "EVPR1\n"

// Item kinds in record files: a byte each.
var itemKinds = []identity.Kind{identity.Phone, identity.Email, identity.CNID, identity.BankCard, identity.Name, identity.Address, "key"}

func kindCode(k identity.Kind) (byte, bool) {
	for i, x := range itemKinds {
		if x == k {
			return byte(i), true
		}
	}
	return 0, false
}

// maxItem bounds a stored value or location, bytes; maxItems a record's items.
const (
	maxItem  = 4096
	maxItems = 1024
)

// Item is one value of a record.
type Item struct {
	Kind  identity.Kind
	Value string
}

// Record is one record of a source: its location and its items.
type Record struct {
	Loc   string
	Items []Item
}

// Recorder writes the records of one load into a temporary record file
// in dir. Add is called from one goroutine at a time (ReadDataset's sink is
// serialised by default).
type Recorder struct {
	dir   string
	f     *os.File
	w     *bufio.Writer
	buf   []byte
	err   error
	n     int64
	off   int64     // of the next record in the file
	prep  *preparer // the source's preparation, while it records
	items []Item
}

// recorderSortBytes is the sort memory of a load's preparation (the load
// sorts its identities beside it).
const recorderSortBytes = 64 << 20

// NewRecorder starts a record file in dir (created 0700).
func NewRecorder(dir string) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	f, err := os.CreateTemp(dir, "load-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	r := &Recorder{dir: dir, f: f, w: bufio.NewWriterSize(f, 1<<20), off: int64(len(recMagic))}
	_, r.err = r.w.WriteString(recMagic)
	if r.prep, err = newPreparer(f.Name()+".d", recorderSortBytes); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return r, nil
}

// Add records a batch of sightings: consecutive sightings with the same
// location are one record (ReadDataset hands a row's sightings over in one
// batch, together).
func (r *Recorder) Add(ss []identity.Sighting) {
	for i := 0; i < len(ss); {
		j := i + 1
		for j < len(ss) && ss[j].Loc == ss[i].Loc {
			j++
		}
		r.write(ss[i:j])
		i = j
	}
}

func (r *Recorder) write(ss []identity.Sighting) {
	if r.err != nil {
		return
	}
	b, n := appendRecord(r.buf[:0], ss)
	if n == 0 {
		return
	}
	r.buf = b
	if _, r.err = r.w.Write(b); r.err != nil {
		return
	}
	// The same record, prepared for linking.
	r.items = r.items[:0]
	for _, s := range ss {
		if _, ok := kindCode(s.Kind); ok && len(s.Value) <= maxItem && len(r.items) < n {
			r.items = append(r.items, Item{Kind: s.Kind, Value: s.Value})
		}
	}
	r.err = r.prep.add(r.off, r.items)
	r.off += int64(len(b))
	r.n++
}

// appendRecord appends the record of ss (one location's sightings) as a
// record file holds it, and returns how many items it has (0: nothing
// to record, nothing appended).
func appendRecord(b []byte, ss []identity.Sighting) ([]byte, int) {
	n := 0
	for _, s := range ss {
		if _, ok := kindCode(s.Kind); ok && len(s.Value) <= maxItem {
			n++
		}
	}
	if n == 0 {
		return b, 0
	}
	n = min(n, maxItems)
	loc := ss[0].Loc
	if len(loc) > maxItem {
		loc = loc[:maxItem]
	}
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, uint64(len(loc)))
	b = append(b, loc...)
	k := 0
	for _, s := range ss {
		c, ok := kindCode(s.Kind)
		if !ok || len(s.Value) > maxItem || k == n {
			continue
		}
		k++
		b = append(b, c)
		b = binary.AppendUvarint(b, uint64(len(s.Value)))
		b = append(b, s.Value...)
	}
	return b, n
}

// RecordFileMagic starts a record file; the records follow (AppendRecords).
const RecordFileMagic = recMagic

// AppendRecords appends to b the records of a batch of sightings exactly
// as a Recorder writes them into its record file (consecutive sightings
// with the same location are one record): a reader of a file's part
// elsewhere (evidx-beam load) writes, parts in file order after
// RecordFileMagic, the record file a load of the whole file writes.
func AppendRecords(b []byte, ss []identity.Sighting) []byte {
	for i := 0; i < len(ss); {
		j := i + 1
		for j < len(ss) && ss[j].Loc == ss[i].Loc {
			j++
		}
		b, _ = appendRecord(b, ss[i:j])
		i = j
	}
	return b
}

// Commit makes the file the record file of source id.
func (r *Recorder) Commit(id int64) error {
	if r.err == nil {
		r.err = r.w.Flush()
	}
	if err := r.f.Close(); r.err == nil {
		r.err = err
	}
	if r.err != nil {
		os.Remove(r.f.Name())
		r.prep.discard()
		return fmt.Errorf("persons: record file %s: %w", r.f.Name(), r.err)
	}
	if err := os.Rename(r.f.Name(), recPath(r.dir, id)); err != nil {
		r.prep.discard()
		return fmt.Errorf("persons: %w", err)
	}
	// Should this fail, the next link prepares from the record file.
	if err := r.prep.finish(context.Background(), prepPath(r.dir, id)); err != nil {
		r.prep.discard()
	}
	return nil
}

// Discard drops the file (the source was skipped or failed).
func (r *Recorder) Discard() {
	r.f.Close()
	os.Remove(r.f.Name())
	r.prep.discard()
}

// Wrap returns read with its sightings also recorded by r, and only the
// identities passed on to the index.
func (r *Recorder) Wrap(read index.ReadFunc) index.ReadFunc {
	return func(ctx context.Context, path string, sink func([]identity.Sighting) error) (index.FileInfo, error) {
		var ids []identity.Sighting
		return read(ctx, path, func(ss []identity.Sighting) error {
			r.Add(ss)
			ids = ids[:0]
			for _, s := range ss {
				if s.Kind.IsIdentity() {
					ids = append(ids, s)
				}
			}
			return sink(ids)
		})
	}
}

func recPath(dir string, id int64) string {
	return filepath.Join(dir, fmt.Sprintf("src-%06d.rec", id))
}

// RemoveSource deletes source id's record file and its prepared pairs (a
// removed source); the next Build leaves it out.
func RemoveSource(dir string, id int64) error {
	if err := os.Remove(recPath(dir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("persons: %w", err)
	}
	if err := os.RemoveAll(prepPath(dir, id)); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
}

// recReader reads a record file.
type recReader struct {
	path string
	r    *countReader
	off  int64 // of the record being read
	rec  Record
	buf  []byte
}

func openRecords(path string) (*recReader, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("persons: %w", err)
	}
	rr := &recReader{path: path, r: &countReader{r: bufio.NewReaderSize(f, 1<<20)}}
	m := make([]byte, len(recMagic))
	if _, err := io.ReadFull(rr.r, m); err != nil || string(m) != recMagic {
		f.Close()
		return nil, nil, fmt.Errorf("persons: %s at 0x0: not a record file", path)
	}
	return rr, f, nil
}

// countReader counts the bytes consumed, for error offsets.
type countReader struct {
	r *bufio.Reader
	n int64
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errCorrupt = errors.New("persons: corrupt record file")

func (rr *recReader) uvarint(limit uint64) (uint64, error) {
	v, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, errCorrupt
	}
	return v, nil
}

func (rr *recReader) bytes(n uint64) (string, error) {
	if cap(rr.buf) < int(n) {
		rr.buf = make([]byte, n)
	}
	b := rr.buf[:n]
	if _, err := io.ReadFull(rr.r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// next reads the next record into rr.rec (valid until the next call);
// io.EOF at the end.
func (rr *recReader) next() error {
	rr.off = rr.r.n
	n, err := rr.uvarint(maxItems)
	if err == io.EOF {
		return io.EOF
	}
	fail := func(err error) error {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("persons: %s: record at %#x: %w", rr.path, rr.off, err)
	}
	if err != nil {
		return fail(err)
	}
	l, err := rr.uvarint(maxItem)
	if err != nil {
		return fail(err)
	}
	if rr.rec.Loc, err = rr.bytes(l); err != nil {
		return fail(err)
	}
	rr.rec.Items = rr.rec.Items[:0]
	for range n {
		c, err := rr.r.ReadByte()
		if err != nil {
			return fail(err)
		}
		if int(c) >= len(itemKinds) {
			return fail(errCorrupt)
		}
		l, err := rr.uvarint(maxItem)
		if err != nil {
			return fail(err)
		}
		v, err := rr.bytes(l)
		if err != nil {
			return fail(err)
		}
		rr.rec.Items = append(rr.rec.Items, Item{Kind: itemKinds[c], Value: v})
	}
	return nil
}

// Dir is the persons directory of a case's index directory: record files
// and persons.sqlite (0700, personal data like the shards).
func Dir(indexDir string) string { return filepath.Join(indexDir, "persons") }

// CopySource copies source srcID's records from the persons directory of
// another case (srcDir) as source dstID's here: a merged case links as the
// case it came from. A source without records there has none here either.
func CopySource(srcDir string, srcID int64, dstDir string, dstID int64) error {
	in, err := os.Open(recPath(srcDir, srcID))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(dstDir, 0o700); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	out, err := os.CreateTemp(dstDir, "load-*.tmp")
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(out.Name(), recPath(dstDir, dstID))
	}
	if err != nil {
		os.Remove(out.Name())
		return fmt.Errorf("persons: %s: %w", recPath(srcDir, srcID), err)
	}
	os.RemoveAll(prepPath(dstDir, dstID)) // prepared again from the copy
	return nil
}

// InstallSource makes the record file at path (written elsewhere: the
// records evidx-beam load wrote for one input file) the record file of
// source id in dir. It is read once (read-only): its SHA-256 must be
// sha256hex (as the job's manifest says) and every record well-formed,
// else nothing is installed and the error names the file and the offset.
// The same pass prepares the source for linking, as a Recorder does.
func InstallSource(ctx context.Context, dir string, id int64, path, sha256hex string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	out, err := os.CreateTemp(dir, "load-*.tmp")
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	prep, err := newPreparer(out.Name()+".d", recorderSortBytes)
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return err
	}
	fail := func(err error) error {
		out.Close()
		os.Remove(out.Name())
		prep.discard()
		return err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(out, 1<<20)
	rr := &recReader{path: path, r: &countReader{r: bufio.NewReaderSize(io.TeeReader(in, io.MultiWriter(h, w)), 1<<20)}}
	m := make([]byte, len(recMagic))
	if _, err := io.ReadFull(rr.r, m); err != nil || string(m) != recMagic {
		return fail(fmt.Errorf("persons: %s at 0x0: not a record file", path))
	}
	for {
		err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if err := prep.add(rr.off, rr.rec.Items); err != nil {
			return fail(err)
		}
		if prep.rec&0xffff == 0 && ctx.Err() != nil {
			return fail(ctx.Err())
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, sha256hex) {
		return fail(fmt.Errorf("persons: %s: SHA-256 %s, expected %s (changed since it was written)", path, got, sha256hex))
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("persons: %w", err))
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		prep.discard()
		return fmt.Errorf("persons: %w", err)
	}
	os.RemoveAll(prepPath(dir, id)) // an older preparation is not of this file
	if err := os.Rename(out.Name(), recPath(dir, id)); err != nil {
		os.Remove(out.Name())
		prep.discard()
		return fmt.Errorf("persons: %w", err)
	}
	// Should this fail, the next link prepares from the record file.
	if err := prep.finish(ctx, prepPath(dir, id)); err != nil {
		prep.discard()
	}
	return nil
}

// HasRecords reports whether source id has a record file in dir.
func HasRecords(dir string, id int64) bool {
	_, err := os.Stat(recPath(dir, id))
	return err == nil
}

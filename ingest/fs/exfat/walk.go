package exfat

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/evidx/evidx/ingest/fs"
)

// Directory entry layout (exFAT specification section 6-7), 32 bytes each.
const (
	entrySize = 32

	typeEOD       = 0x00
	typeBitmap    = 0x81
	typeUpcase    = 0x82
	typeLabel     = 0x83
	typeFile      = 0x85
	typeStream    = 0xC0
	typeName      = 0xC1
	inUse         = 0x80
	typeSecondary = 0x40 // category bit: secondary entry

	// File directory entry (0x85).
	feSecondaryCount = 1
	feSetChecksum    = 2
	feAttributes     = 4
	feCreate         = 8
	feModified       = 12
	feAccessed       = 16
	feCreate10ms     = 20
	feModified10ms   = 21
	feCreateUTC      = 22
	feModifiedUTC    = 23
	feAccessedUTC    = 24

	attrDirectory = 0x10

	// Stream extension entry (0xC0).
	seFlags        = 1
	seNameLength   = 3
	seNameHash     = 4
	seValidLength  = 8
	seFirstCluster = 20
	seDataLength   = 24

	flagAllocationPossible = 0x1
	flagNoFatChain         = 0x2

	nameCharsPerEntry = 15
	upcaseMaxBytes    = 2 * 65536 // an uncompressed table of every UTF-16 unit

	// noOffsetProblem is recorded once per volume: exFAT writers that leave
	// the UTC offset invalid store local time, read as UTC without a zone.
	noOffsetProblem = "exfat: times without a UTC offset are local time of an unknown zone, read as UTC"
)

// entrySum is the set checksum of a directory entry set: a 16-bit
// rotate-and-add over its bytes, the checksum field itself left out.
// Deleting a set clears the in-use bit of every entry type and leaves the
// checksum as it was, so a deleted set is summed with the bits set again.
func entrySum(set []byte, deleted bool) uint16 {
	var sum uint16
	for i, b := range set {
		if i == feSetChecksum || i == feSetChecksum+1 {
			continue
		}
		if deleted && i%entrySize == 0 {
			b |= inUse
		}
		sum = bits.RotateLeft16(sum, -1) + uint16(b)
	}
	return sum
}

// tableSum is the 32-bit rotate-and-add checksum of the up-case table.
func tableSum(b []byte) uint32 {
	var sum uint32
	for _, c := range b {
		sum = bits.RotateLeft32(sum, -1) + uint32(c)
	}
	return sum
}

// runCursor maps increasing byte indexes of a directory's data to volume
// offsets in amortised constant time.
type runCursor struct {
	runs []fs.Run
	ri   int
	base int64
}

func (c *runCursor) offset(i int64) int64 {
	if i < c.base {
		c.ri, c.base = 0, 0
	}
	for c.ri < len(c.runs) && i >= c.base+c.runs[c.ri].Length {
		c.base += c.runs[c.ri].Length
		c.ri++
	}
	if c.ri == len(c.runs) {
		return -1
	}
	return c.runs[c.ri].Offset + i - c.base
}

// readRootMeta reads the root directory's allocation bitmap, up-case table
// and volume label entries. A volume without a readable bitmap still
// opens (files list), but nothing deleted is recovered and Unallocated
// fails, so the carver gets the whole volume.
func (f *FS) readRootMeta() error {
	runs, err := f.chain(f.rootCluster, maxDirBytes/f.clusterSize)
	if err != nil {
		f.problem("root directory (cluster %d): %v", f.rootCluster, err)
	}
	data, err := f.readRuns(runs)
	if err != nil {
		f.problem("root directory: %v", err)
	}
	cur := runCursor{runs: runs}
	var bitmapSeen, upcaseSeen bool
	for i := 0; i+entrySize <= len(data); i += entrySize {
		e := data[i : i+entrySize]
		off := cur.offset(int64(i))
		switch e[0] {
		case typeEOD:
			i = len(data)
		case typeBitmap:
			// TexFAT volumes hold two bitmaps; BitmapFlags bit 0 says which
			// FAT each goes with. Take the first, or the active FAT's.
			if bitmapSeen && e[1]&1 != f.activeFat {
				continue
			}
			bitmapSeen = true
			f.readBitmap(e, off)
		case typeUpcase:
			if upcaseSeen {
				continue
			}
			upcaseSeen = true
			f.readUpcase(e, off)
		case typeLabel:
			n := min(int(e[1]), 11)
			u := make([]uint16, n)
			for k := range n {
				u[k] = binary.LittleEndian.Uint16(e[2+2*k:])
			}
			f.label = strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD")
		}
	}
	if !bitmapSeen {
		f.problem("root directory at %#x: no allocation bitmap entry; deleted files not recovered, volume left whole to the carver", f.clusterOff(f.rootCluster))
	}
	if !upcaseSeen {
		f.problem("root directory at %#x: no up-case table entry; name hashes not checked", f.clusterOff(f.rootCluster))
	}
	return nil
}

// metaRuns maps the content of a bitmap or up-case table entry (FAT
// chained, FirstCluster at 20, DataLength at 24) of at most limit bytes.
func (f *FS) metaRuns(e []byte, off int64, what string, limit int64) ([]fs.Run, int64, error) {
	first := binary.LittleEndian.Uint32(e[seFirstCluster:])
	n := int64(binary.LittleEndian.Uint64(e[seDataLength:]) & (1<<62 - 1))
	if n <= 0 || n > limit {
		return nil, 0, fmt.Errorf("%s entry at %#x: data length %d outside 1..%d", what, off, n, limit)
	}
	need := (n + f.clusterSize - 1) / f.clusterSize
	runs, err := f.chain(first, need)
	if err != nil {
		return nil, 0, fmt.Errorf("%s entry at %#x: %w", what, off, err)
	}
	if runsLen(runs) < n {
		return nil, 0, fmt.Errorf("%s entry at %#x: %w: chain maps %d of %d bytes", what, off, ErrChain, runsLen(runs), n)
	}
	return trim(runs, n), n, nil
}

func (f *FS) readBitmap(e []byte, off int64) {
	need := (int64(f.nClusters) + 7) / 8
	runs, n, err := f.metaRuns(e, off, "allocation bitmap", maxTableBytes)
	if err != nil {
		f.problem("%v; deleted files not recovered", err)
		return
	}
	if n < need {
		f.problem("allocation bitmap entry at %#x: %d bytes cannot map %d clusters; deleted files not recovered", off, n, f.nClusters)
		return
	}
	b, err := f.readRuns(trim(runs, need)) // bytes past the last cluster's bit mean nothing
	if err != nil {
		f.problem("allocation bitmap: %v; deleted files not recovered", err)
		return
	}
	f.bitmap = b[:need]
}

func (f *FS) readUpcase(e []byte, off int64) {
	runs, _, err := f.metaRuns(e, off, "up-case table", upcaseMaxBytes)
	if err != nil {
		f.problem("%v; name hashes not checked", err)
		return
	}
	b, err := f.readRuns(runs)
	if err != nil {
		f.problem("up-case table: %v; name hashes not checked", err)
		return
	}
	if want, got := binary.LittleEndian.Uint32(e[4:]), tableSum(b); want != got {
		f.problem("up-case table entry at %#x: checksum %#08x, table at %#x sums to %#08x; name hashes not checked", off, want, runs[0].Offset, got)
		return
	}
	// Decompress: 0xFFFF n stands for n units that map to themselves.
	t := make([]uint16, 65536)
	for i := range t {
		t[i] = uint16(i)
	}
	idx := 0
	for i := 0; i+1 < len(b) && idx < len(t); i += 2 {
		v := binary.LittleEndian.Uint16(b[i:])
		if v == 0xFFFF && i+3 < len(b) {
			idx += int(binary.LittleEndian.Uint16(b[i+2:]))
			i += 2
			continue
		}
		t[idx] = v
		idx++
	}
	f.upcase = t
}

// nameHash is the NameHash of the stream extension entry: the 16-bit
// rotate-and-add over the up-cased UTF-16LE name.
func (f *FS) nameHash(u []uint16) uint16 {
	var h uint16
	for _, c := range u {
		c = f.upcase[c]
		h = bits.RotateLeft16(h, -1) + c&0xff
		h = bits.RotateLeft16(h, -1) + c>>8
	}
	return h
}

// Walk implements fs.FileSystem: a depth-first walk in directory order,
// deleted entry sets included, the allocation bitmap and up-case table
// listed as "/$ALLOC_BITMAP" and "/$UPCASE_TABLE" as fls lists them (the
// volume label is Label, not a file). Inode is TSK's exFAT address: 2 for
// the root, else 3 + (byte offset of the entry - cluster heap offset) / 32,
// so the numbers match fls and icat.
func (f *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	w := &walker{f: f, ctx: ctx, fn: fn, visited: map[uint32]bool{}}
	runs, err := f.chain(f.rootCluster, maxDirBytes/f.clusterSize)
	if err != nil {
		f.problemOnce(fmt.Sprintf("root directory (cluster %d): %v", f.rootCluster, err))
	}
	root := &fs.File{Path: "/", Type: "dir"}
	runs = w.claim(runs, root)
	data, err := f.readRuns(runs)
	if err != nil {
		f.problemOnce(fmt.Sprintf("root directory: %v", err))
	}
	return w.dir(data, runs, "", false, 0)
}

type walker struct {
	f       *FS
	ctx     context.Context
	fn      func(*fs.File) error
	visited map[uint32]bool // directory clusters already walked: guards cycles and cross-links
}

// claim marks a directory's clusters walked and cuts the directory at the
// first cluster another directory already owns, so no cluster is parsed
// as a directory twice.
func (w *walker) claim(runs []fs.Run, dir *fs.File) []fs.Run {
	f := w.f
	for i, r := range runs {
		first := uint32((r.Offset-f.heapOff)/f.clusterSize) + 2
		for k := range uint32(r.Length / f.clusterSize) {
			c := first + k
			if w.visited[c] {
				if !dir.Deleted {
					f.problemOnce(fmt.Sprintf("directory %q: cluster %d (at %#x) already belongs to a walked directory (cycle or cross-link); cut there", dir.Path, c, f.clusterOff(c)))
				}
				out := runs[:i:i]
				if k > 0 {
					out = append(out, fs.Run{Logical: r.Logical, Offset: r.Offset, Length: int64(k) * f.clusterSize})
				}
				return out
			}
			w.visited[c] = true
		}
	}
	return runs
}

// dir walks the entries of one directory. parent is its path ("" for the
// root); parentDeleted marks everything below a deleted directory.
func (w *walker) dir(data []byte, runs []fs.Run, parent string, parentDeleted bool, depth int) error {
	cur := runCursor{runs: runs}
	for i := 0; i+entrySize <= len(data); {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		e := data[i : i+entrySize]
		off := cur.offset(int64(i))
		switch t := e[0]; {
		case t == typeEOD:
			return nil
		case t == typeFile || t == typeFile&^inUse:
			n, err := w.set(data[i:], off, t&inUse == 0, parent, parentDeleted, depth)
			if err != nil {
				return err
			}
			i += n * entrySize
			continue
		case depth == 0 && (t == typeBitmap || t == typeUpcase):
			if err := w.metaFile(e, off); err != nil {
				return err
			}
		}
		i += entrySize
	}
	return nil
}

// metaFile lists the allocation bitmap or up-case table as fls does.
func (w *walker) metaFile(e []byte, off int64) error {
	f := w.f
	name, what := "$ALLOC_BITMAP", "allocation bitmap"
	if e[0] == typeUpcase {
		name, what = "$UPCASE_TABLE", "up-case table"
	}
	file := &fs.File{Path: "/" + name, Type: "file", Inode: f.inode(off), Recoverable: true}
	runs, n, err := f.metaRuns(e, off, what, maxTableBytes)
	if err != nil {
		file.Err = err.Error()
		file.Recoverable = false
	} else {
		file.Size, file.Runs = n, runs
	}
	return w.fn(file)
}

// inode is TSK's number for the directory entry at volume offset off.
func (f *FS) inode(off int64) uint64 {
	if off < f.heapOff {
		return 0
	}
	return uint64(3 + (off-f.heapOff)/entrySize)
}

// set parses the entry set starting at data[0] (a file entry at volume
// offset off) and reports it. It returns how many entries to step over: the
// whole set when it is sound, else one, so the entries after a damaged or
// partly overwritten set are still read.
func (w *walker) set(data []byte, off int64, deleted bool, parent string, parentDeleted bool, depth int) (int, error) {
	f := w.f
	le := binary.LittleEndian
	n := int(data[feSecondaryCount]) + 1
	report := !deleted && !parentDeleted // damage worth a problem: deleted sets decay normally
	if n < 3 || n*entrySize > len(data) {
		if report {
			f.problemOnce(fmt.Sprintf("file entry at %#x: %d secondary entries (directory holds %d more)", off, n-1, len(data)/entrySize-1))
		}
		return 1, nil
	}
	set := data[:n*entrySize]
	for k := 1; k < n; k++ {
		t := set[k*entrySize]
		if t&typeSecondary == 0 || (t&inUse == 0) != deleted {
			if report {
				f.problemOnce(fmt.Sprintf("file entry at %#x: entry %d of its set has type %#02x, not a secondary entry", off, k, t))
			}
			return 1, nil
		}
	}
	stream := set[entrySize : 2*entrySize]
	if stream[0]|inUse != typeStream {
		if report {
			f.problemOnce(fmt.Sprintf("file entry at %#x: stream extension entry has type %#02x", off, stream[0]))
		}
		return 1, nil
	}
	var csumErr string
	if want, got := le.Uint16(set[feSetChecksum:]), entrySum(set, deleted); want != got {
		if deleted {
			return 1, nil // partly overwritten by a newer set: nothing reliable in it
		}
		csumErr = fmt.Sprintf("entry set at %#x: set checksum %#04x, entries sum to %#04x", off, want, got)
		f.problemOnce(csumErr)
	}
	nameLen := int(stream[seNameLength])
	var u []uint16
	for k := 2; k < n && len(u) < nameLen; k++ {
		ne := set[k*entrySize : (k+1)*entrySize]
		if ne[0]|inUse != typeName {
			break // name entries follow the stream entry without a gap
		}
		for j := 0; j < nameCharsPerEntry && len(u) < nameLen; j++ {
			u = append(u, le.Uint16(ne[2+2*j:]))
		}
	}
	if len(u) < nameLen && report {
		f.problemOnce(fmt.Sprintf("entry set at %#x: name of %d characters, only %d in its name entries", off, nameLen, len(u)))
	}
	if f.upcase != nil && len(u) == nameLen && report {
		if want, got := le.Uint16(stream[seNameHash:]), f.nameHash(u); want != got {
			f.problemOnce(fmt.Sprintf("stream extension entry at %#x: name hash %#04x, name %q hashes to %#04x", off+entrySize, want, string(utf16.Decode(u)), got))
		}
	}
	file := &fs.File{
		Deleted: deleted || parentDeleted,
		Inode:   f.inode(off),
		Btime:   f.stamp(set, feCreate, feCreate10ms, feCreateUTC),
		Mtime:   f.stamp(set, feModified, feModified10ms, feModifiedUTC),
		Atime:   f.stamp(set, feAccessed, -1, feAccessedUTC),
		Err:     csumErr,
	}
	file.Path = parent + "/" + f.component(u, off, report)
	isDir := le.Uint16(set[feAttributes:])&attrDirectory != 0
	if isDir {
		file.Type = "dir"
	} else {
		file.Type = "file"
	}
	runs := f.mapContent(file, stream, off, report)
	if err := w.fn(file); err != nil {
		return n, err
	}
	if !isDir || len(runs) == 0 || !file.Recoverable {
		return n, nil
	}
	if depth >= maxDepth {
		f.problemOnce(fmt.Sprintf("directory %q (entry at %#x): nested deeper than %d, not descended", file.Path, off, maxDepth))
		return n, nil
	}
	runs = w.claim(runs, file)
	data, err := f.readRuns(runs)
	if err != nil && report {
		f.problemOnce(fmt.Sprintf("directory %q (entry at %#x): %v", file.Path, off, err))
	}
	return n, w.dir(data, runs, file.Path, file.Deleted, depth+1)
}

// component makes a path component of an on-disk name with
// fs.NameComponent: "/" (which exFAT forbids) and "%" escaped, "." and
// ".." escaped so paths stay unambiguous; a name with a "/" or a dot name
// is a problem. A set without a name is listed by its entry's offset.
func (f *FS) component(u []uint16, off int64, report bool) string {
	name := strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD")
	if name == "" {
		if report {
			f.problemOnce(fmt.Sprintf("entry set at %#x: empty name", off))
		}
		return fmt.Sprintf("(no name, entry at %#x)", off)
	}
	esc, suspicious := fs.NameComponent(name)
	if suspicious && report {
		f.problemOnce(fmt.Sprintf("entry set at %#x: name %q is not a plain path component; listed as %q", off, name, esc))
	}
	return esc
}

// mapContent fills Size, Runs, Recoverable and Err of the file the stream
// extension entry describes, and returns the runs of all its clusters
// (what a directory's entries are read from).
func (f *FS) mapContent(file *fs.File, stream []byte, off int64, report bool) []fs.Run {
	le := binary.LittleEndian
	flags := stream[seFlags]
	first := le.Uint32(stream[seFirstCluster:])
	dataLen := le.Uint64(stream[seDataLength:])
	validLen := le.Uint64(stream[seValidLength:])
	fail := func(format string, a ...any) []fs.Run {
		msg := fmt.Sprintf("stream extension entry at %#x: ", off+entrySize) + fmt.Sprintf(format, a...)
		file.Err = fs.AppendErr(file.Err, msg)
		if report {
			f.problemOnce(fmt.Sprintf("%s: %s", file.Path, msg))
		}
		file.Recoverable = !file.Deleted
		return nil
	}
	file.Recoverable = true
	heapBytes := int64(f.nClusters) * f.clusterSize
	if dataLen > uint64(heapBytes) {
		return fail("data length %d exceeds the cluster heap's %d bytes", dataLen, heapBytes)
	}
	file.Size = int64(dataLen)
	if file.Type == "dir" && dataLen > maxDirBytes {
		return fail("directory of %d bytes exceeds exFAT's %d", dataLen, maxDirBytes)
	}
	if validLen > dataLen {
		fail("valid data length %d exceeds data length %d; read to the data length", validLen, dataLen)
		validLen = dataLen
		file.Recoverable = true
	}
	if dataLen == 0 {
		return nil
	}
	if flags&flagAllocationPossible == 0 {
		return fail("data length %d without an allocation", dataLen)
	}
	need := (file.Size + f.clusterSize - 1) / f.clusterSize
	var runs []fs.Run
	var err error
	switch {
	case file.Deleted:
		var method string
		runs, method, err = f.recoverRuns(first, need, flags&flagNoFatChain != 0)
		if err != nil {
			file.Err = fs.AppendErr(file.Err, fmt.Sprintf("stream extension entry at %#x: %v", off+entrySize, err))
			file.Recoverable = false
			return nil
		}
		file.Recovery = method
	case flags&flagNoFatChain != 0:
		runs, err = f.contiguous(first, need)
	default:
		runs, err = f.chain(first, need)
		if err == nil && runsLen(runs) < need*f.clusterSize {
			err = fmt.Errorf("%w: chain from cluster %d ends after %d of %d clusters", ErrChain, first, runsLen(runs)/f.clusterSize, need)
		}
	}
	if err != nil {
		fail("%v", err)
	}
	if !file.Deleted {
		if c, free := f.firstFree(runs); free && report {
			f.problemOnce(fmt.Sprintf("%s (entry at %#x): cluster %d (at %#x) is in use but free in the allocation bitmap", file.Path, off, c, f.clusterOff(c)))
		}
	}
	// Content whose clusters lie past the end of the image is not produced,
	// not even the zeros past the valid data length: a corrupt length
	// would otherwise make terabytes of them.
	past := false
	for _, r := range trim(append([]fs.Run(nil), runs...), file.Size) {
		if r.Offset+r.Length > f.size {
			msg := fmt.Sprintf("content at %#x runs past the end of the image (%#x)", r.Offset, f.size)
			file.Err = fs.AppendErr(file.Err, msg)
			if report {
				f.problemOnce(fmt.Sprintf("%s: %s", file.Path, msg))
			}
			past = true
			break
		}
	}
	// Bytes past the valid data length are undefined on disk and read as
	// zeros: a sparse run.
	file.Runs = trim(append([]fs.Run(nil), runs...), int64(validLen))
	if mapped := runsLen(file.Runs); !past && mapped < file.Size && int64(validLen) == mapped {
		file.Runs = append(file.Runs, fs.Run{Logical: mapped, Length: file.Size - mapped, Sparse: true})
	}
	if file.Deleted && file.Err != "" {
		file.Recoverable = false
	}
	return runs
}

// recoverRuns maps the need clusters of a deleted file from cluster first.
// A NoFatChain file's clusters are contiguous by definition ("contiguous").
// A FAT-chained one keeps its chain when the deleting driver left the FAT
// entries ("fat-chain", or "contiguous" when the chain is); drivers that
// free them (Linux, exfat-fuse) leave only the first cluster, and the
// content is taken as TSK does: the free clusters from first on, stepping
// over those allocated now ("skip-allocated"). Any cluster allocated again
// makes the first two methods fail: the content is no longer there.
func (f *FS) recoverRuns(first uint32, need int64, noFatChain bool) ([]fs.Run, string, error) {
	if !f.valid(first) {
		return nil, "", fmt.Errorf("%w: first cluster %d outside 2..%d", ErrNotRecoverable, first, int64(f.nClusters)+1)
	}
	if f.bitmap == nil {
		return nil, "", fmt.Errorf("%w: no allocation bitmap to tell free clusters", ErrNotRecoverable)
	}
	used := func(runs []fs.Run) error {
		if c, ok := f.firstUsed(runs); ok {
			return fmt.Errorf("%w: cluster %d (at %#x) allocated again", ErrNotRecoverable, c, f.clusterOff(c))
		}
		return nil
	}
	if noFatChain {
		runs, err := f.contiguous(first, need)
		if err == nil {
			err = used(runs)
		}
		return runs, "contiguous", err
	}
	if runs, err := f.chain(first, need); err == nil && runsLen(runs) == need*f.clusterSize && used(runs) == nil {
		if len(runs) == 1 {
			return runs, "contiguous", nil
		}
		return runs, "fat-chain", nil
	}
	if f.allocated(first) {
		return nil, "", fmt.Errorf("%w: first cluster %d (at %#x) allocated again", ErrNotRecoverable, first, f.clusterOff(first))
	}
	var runs []fs.Run
	skipped := false
	got := int64(0)
	for c := first; f.valid(c) && got < need; c++ {
		if i := c - 2; i%8 == 0 && int(i/8) < len(f.bitmap) && f.bitmap[i/8] == 0xff {
			skipped = true
			c += 7 // eight clusters in use
			continue
		}
		if f.allocated(c) {
			skipped = true
			continue
		}
		runs = fs.AppendRun(runs, f.clusterOff(c), f.clusterSize)
		got++
	}
	if got < need {
		return nil, "", fmt.Errorf("%w: %d clusters needed from cluster %d, only %d free up to the end of the heap", ErrNotRecoverable, need, first, got)
	}
	if skipped {
		return runs, "skip-allocated", nil
	}
	return runs, "contiguous", nil
}

// firstUsed returns the first cluster of runs the bitmap marks allocated.
func (f *FS) firstUsed(runs []fs.Run) (uint32, bool) {
	return f.scan(runs, true)
}

// firstFree returns the first cluster of runs the bitmap marks free.
func (f *FS) firstFree(runs []fs.Run) (uint32, bool) {
	if f.bitmap == nil {
		return 0, false
	}
	return f.scan(runs, false)
}

func (f *FS) scan(runs []fs.Run, used bool) (uint32, bool) {
	for _, r := range runs {
		first := uint32((r.Offset-f.heapOff)/f.clusterSize) + 2
		for k := range uint32((r.Length + f.clusterSize - 1) / f.clusterSize) {
			if f.allocated(first+k) == used {
				return first + k, true
			}
		}
	}
	return 0, false
}

// stamp decodes the timestamp at set[at] with its 10 ms increment (inc < 0:
// none) and UTC offset byte, and returns it in UTC. An offset whose valid
// bit is clear means local time: of f.loc, or read as UTC and recorded once
// when the zone is unknown. Invalid dates give the zero time.
func (f *FS) stamp(set []byte, at, inc, utc int) time.Time {
	ts := binary.LittleEndian.Uint32(set[at:])
	if ts == 0 {
		return time.Time{}
	}
	y, mo, d := int(ts>>25)+1980, int(ts>>21&0xf), int(ts>>16&0x1f)
	h, mi, s := int(ts>>11&0x1f), int(ts>>5&0x3f), int(ts&0x1f)*2
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}
	}
	var ns int
	if inc >= 0 && set[inc] < 200 {
		ns = int(set[inc]) * 10 * int(time.Millisecond) // 0-1990 ms: the odd second lives here
	}
	if o := set[utc]; o&0x80 != 0 {
		quarters := int8(o<<1) >> 1 // signed 7-bit count of 15 minutes east of UTC
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC).Add(-time.Duration(quarters) * 15 * time.Minute)
	}
	loc := f.loc
	if loc == nil {
		loc = time.UTC
		f.problemOnce(noOffsetProblem)
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc).UTC()
}

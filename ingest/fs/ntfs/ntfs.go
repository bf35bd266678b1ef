// Package ntfs reads NTFS file systems read-only and forensically: every MFT
// record, in use or not (deleted), with full paths from the $FILE_NAME
// parent references, alternate data streams as "path:stream", resident and
// non-resident data with their byte runs, $STANDARD_INFORMATION times, and
// $Bitmap as the allocation map.
//
// MFT records, attributes and run lists are parsed here, as lazy views over
// the fixed-up record bytes, so that every damaged record is reported with
// its entry number and byte offset (go-ntfs turns failed reads into zeros,
// merges sparse runs with real ones and skips bad records silently).
// go-ntfs (www.velocidex.com/golang/go-ntfs) decodes LZNT1-compressed
// streams; every call into it runs under recover.
package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/parse"
	"www.velocidex.com/golang/go-ntfs/parser"
)

// Sentinel errors of this package; ParseError wraps them with an offset.
var (
	ErrNotNTFS        = errors.New("ntfs: not an NTFS file system")
	ErrCorrupt        = errors.New("ntfs: corrupt structure")
	ErrTruncated      = errors.New("ntfs: read past the end of the volume")
	ErrNotRecoverable = errors.New("ntfs: deleted file content not recoverable")
	ErrUnsupported    = errors.New("ntfs: unsupported stream")
)

// ParseError says which NTFS structure at which volume offset was damaged.
type ParseError = parse.Error

// Boot sector layout (byte offsets in sector 0).
const (
	bootOEM            = 0x03 // "NTFS    "
	bootBytesPerSector = 0x0B // u16
	bootSecPerCluster  = 0x0D // u8; above 0x80 a negative power of two
	bootTotalSectors   = 0x28 // u64
	bootMFTLCN         = 0x30 // u64
	bootMFTMirrLCN     = 0x38 // u64
	bootClustersPerRec = 0x40 // int8; negative: record size is 2^-n bytes
	bootSignature      = 0x1FE

	// Well-known MFT entries.
	entryMFT    = 0
	entryBitmap = 6
	entryRoot   = 5
)

// maxClusterSize caps the cluster size at 2 MiB (the largest NTFS allows).
const maxClusterSize = 2 << 20

// boot is the validated boot sector.
type boot struct {
	sectorSize  int64
	clusterSize int64
	clusters    int64 // clusters in the volume (total sectors / sectors per cluster)
	volumeBytes int64 // total sectors * sector size
	mftOff      int64 // byte offset of MFT entry 0
	recordSize  int64
}

// parseBoot checks sector 0 of a volume of size bytes.
func parseBoot(b []byte, size int64) (*boot, error) {
	le := binary.LittleEndian
	if len(b) < 512 || string(b[bootOEM:bootOEM+8]) != "NTFS    " {
		return nil, &ParseError{Format: "ntfs", Op: "boot sector OEM name", Offset: bootOEM, Err: ErrNotNTFS}
	}
	bad := func(field string, at int64, format string, a ...any) error {
		return &ParseError{Format: "ntfs", Op: "boot sector " + field, Offset: at, Err: fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, a...)...)}
	}
	bt := &boot{sectorSize: int64(le.Uint16(b[bootBytesPerSector:]))}
	if bt.sectorSize < 256 || bt.sectorSize > 4096 || bt.sectorSize&(bt.sectorSize-1) != 0 {
		return nil, bad("bytes per sector", bootBytesPerSector, "%d", bt.sectorSize)
	}
	spc := int64(b[bootSecPerCluster])
	if spc > 0x80 {
		if 256-spc > 20 {
			return nil, bad("sectors per cluster", bootSecPerCluster, "%#x", spc)
		}
		spc = 1 << (256 - spc)
	}
	if spc == 0 || spc&(spc-1) != 0 || spc*bt.sectorSize > maxClusterSize {
		return nil, bad("sectors per cluster", bootSecPerCluster, "%d", spc)
	}
	bt.clusterSize = spc * bt.sectorSize
	total := le.Uint64(b[bootTotalSectors:])
	if total == 0 || total > uint64(1)<<48 {
		return nil, bad("total sectors", bootTotalSectors, "%d", total)
	}
	bt.volumeBytes = int64(total) * bt.sectorSize
	bt.clusters = int64(total) / spc
	mftLCN := le.Uint64(b[bootMFTLCN:])
	if mftLCN >= uint64(bt.clusters) {
		return nil, bad("$MFT cluster", bootMFTLCN, "%d of %d clusters", mftLCN, bt.clusters)
	}
	bt.mftOff = int64(mftLCN) * bt.clusterSize
	c := int8(b[bootClustersPerRec])
	switch {
	case c > 0:
		bt.recordSize = int64(c) * bt.clusterSize
	case c < 0 && c >= -20:
		bt.recordSize = 1 << (-c)
	default:
		return nil, bad("clusters per MFT record", bootClustersPerRec, "%d", c)
	}
	if bt.recordSize < 256 || bt.recordSize > 64<<10 || bt.recordSize&(bt.recordSize-1) != 0 {
		return nil, bad("clusters per MFT record", bootClustersPerRec, "record size %d", bt.recordSize)
	}
	if bt.mftOff+bt.recordSize > size {
		return nil, bad("$MFT cluster", bootMFTLCN, "MFT at %#x past the end of %d bytes", bt.mftOff, size)
	}
	return bt, nil
}

// Probe reports cheaply whether the volume has a plausible NTFS boot sector.
func Probe(r io.ReaderAt, size int64) bool {
	b := make([]byte, 512)
	if n, _ := r.ReadAt(b, 0); n != len(b) {
		return false
	}
	_, err := parseBoot(b, size)
	return err == nil
}

// FS is an opened NTFS volume. Walk may run in one goroutine at a time;
// Open, Unallocated and Problems may be called from any goroutine, also
// while Walk runs.
type FS struct {
	r    io.ReaderAt
	size int64
	bt   *boot
	mft  []fs.Run // runs of $MFT's unnamed $DATA: entry i lies at logical i*recordSize
	// mftSize is the byte length of $MFT's data (records beyond are not read).
	mftSize int64

	bitmapOnce sync.Once
	bitmap     []byte // $Bitmap content, one bit per cluster; nil if unreadable
	bitmapErr  error

	winMu sync.Mutex // guards win: Open runs concurrently with Walk
	win   window     // $MFT read-ahead

	// gontfs is the go-ntfs context for compressed streams, made on first
	// use by Open; gmu serialises every call into go-ntfs.
	gmu    sync.Mutex
	gontfs *parser.NTFSContext

	mu       sync.Mutex
	problems []string
}

// maxProblems bounds the problem list on a wholly corrupt volume.
const maxProblems = 10000

// problem records one piece of damage; safe from any goroutine.
func (n *FS) problem(format string, a ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case len(n.problems) < maxProblems:
		n.problems = append(n.problems, fmt.Sprintf(format, a...))
	case len(n.problems) == maxProblems:
		n.problems = append(n.problems, "ntfs: too many problems; further ones not recorded")
	}
}

// Problems lists damage found so far, each naming its MFT entry and offset.
func (n *FS) Problems() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.problems...)
}

// Type returns "ntfs".
func (n *FS) Type() string { return "ntfs" }

// ClusterSize returns the cluster size in bytes.
func (n *FS) ClusterSize() int64 { return n.bt.clusterSize }

// Open opens the NTFS volume r of size bytes: it checks the boot sector and
// maps $MFT from MFT entry 0. It fails fast with ErrNotNTFS when sector 0 is
// not an NTFS boot sector. A damaged entry 0 falls back to $MFTMirr.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	return open(r, size)
}

// open is Open returning the concrete type, for tests and benchmarks.
// A primary boot sector that does not parse, or whose $MFT (and
// $MFTMirr) cannot be mapped, gives way to the backup boot sector that
// NTFS keeps in the volume's last sector, as chkdsk would use it.
func open(r io.ReaderAt, size int64) (*FS, error) {
	b := make([]byte, 512)
	if n, _ := r.ReadAt(b, 0); n != len(b) {
		return nil, &ParseError{Format: "ntfs", Op: "boot sector", Offset: 0, Err: ErrNotNTFS}
	}
	n, err := openBoot(r, size, b, 0)
	if err == nil {
		return n, nil
	}
	for _, off := range backupBootOffsets(b, size) {
		bb := make([]byte, 512)
		if k, _ := r.ReadAt(bb, off); k != len(bb) || string(bb[bootOEM:bootOEM+8]) != "NTFS    " {
			continue
		}
		n2, err2 := openBoot(r, size, bb, off)
		if err2 != nil {
			continue
		}
		n2.problems = append([]string{fmt.Sprintf("boot sector at 0x0: %v; using the backup boot sector at %#x", err, off)}, n2.problems...)
		return n2, nil
	}
	return nil, err
}

// backupBootOffsets are where the backup boot sector may lie: the last
// sector of the volume as the primary states it, and the last sector of
// the space given (the partition), for a primary too damaged to say.
func backupBootOffsets(primary []byte, size int64) []int64 {
	var offs []int64
	bps := int64(binary.LittleEndian.Uint16(primary[bootBytesPerSector:]))
	total := binary.LittleEndian.Uint64(primary[bootTotalSectors:])
	if bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 && total > 0 && total < uint64(size)/uint64(bps) {
		offs = append(offs, int64(total)*bps)
	}
	for _, sec := range []int64{512, 4096} {
		if off := size/sec*sec - sec; off > 0 && !slices.Contains(offs, off) {
			offs = append(offs, off)
		}
	}
	return offs
}

// openBoot opens the volume described by the boot sector b read at off.
func openBoot(r io.ReaderAt, size int64, b []byte, off int64) (*FS, error) {
	bt, err := parseBoot(b, size)
	if err != nil {
		if off != 0 {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Offset += off
			}
		}
		return nil, err
	}
	n := &FS{r: r, size: size, bt: bt}
	if bt.volumeBytes > size {
		n.problem("boot sector at %#x: %v: volume of %d bytes on %d", off, ErrTruncated, bt.volumeBytes, size)
	}
	if err := n.mapMFT(bt.mftOff); err != nil {
		mirr := int64(binary.LittleEndian.Uint64(b[bootMFTMirrLCN:])) * bt.clusterSize
		if mirr <= 0 || mirr+bt.recordSize > size {
			return nil, err
		}
		n.problem("%v; using $MFTMirr at %#x for the location of $MFT", err, mirr)
		if err2 := n.mapMFT(mirr); err2 != nil {
			return nil, err
		}
	}
	return n, nil
}

// mapMFT reads MFT entry 0 at off and maps the $MFT data stream. Extension
// records named by an $ATTRIBUTE_LIST of entry 0 are read through the
// mapping of its first extent.
func (n *FS) mapMFT(off int64) error {
	raw := make([]byte, n.bt.recordSize)
	if err := n.readFull(raw, off, "mft entry 0"); err != nil {
		return err
	}
	rec, err := n.parseRecord(raw, entryMFT, off)
	if err != nil {
		return err
	}
	var first *attr
	for _, a := range rec.attrs {
		if a.typ == attrData && a.name == "" && a.nonResident && a.startVCN == 0 {
			first = a
			break
		}
	}
	if first == nil {
		return &ParseError{Format: "ntfs", Op: "mft entry 0 $DATA", Offset: off, Err: fmt.Errorf("%w: no non-resident $DATA", ErrCorrupt)}
	}
	runs, err := n.decodeRuns(first, "mft entry 0")
	if err != nil {
		return err
	}
	n.mft = runs
	n.mftSize = first.dataSize
	if rec.hasList {
		// Now the first extent is mapped, gather all $DATA pieces.
		if err := n.expand(rec); err != nil {
			n.problem("%v", err)
		}
		if st, err := n.stream(rec, ""); err == nil && len(st.runs) > 0 {
			n.mft = st.runs
		} else if err != nil {
			n.problem("%v", err)
		}
	}
	if max := n.size / n.bt.recordSize * n.bt.recordSize; n.mftSize > max {
		n.problem("mft entry 0 at %#x: %v: $MFT of %d bytes on a volume of %d", off, ErrCorrupt, n.mftSize, n.size)
		n.mftSize = max
	}
	return nil
}

// readFull reads len(b) bytes at volume offset off, or returns a ParseError.
func (n *FS) readFull(b []byte, off int64, op string) error {
	if off < 0 || off+int64(len(b)) > n.size {
		return &ParseError{Format: "ntfs", Op: op, Offset: off, Err: ErrTruncated}
	}
	m, err := n.r.ReadAt(b, off)
	if m == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = ErrTruncated
	}
	return &ParseError{Format: "ntfs", Op: op, Offset: off, Err: err}
}

// recordOffset maps MFT entry num to its byte offset in the volume, or -1
// when the entry is not mapped contiguously (split across runs: read with
// readRecord instead).
func (n *FS) recordOffset(num uint64) int64 {
	lo := int64(num) * n.bt.recordSize
	for _, r := range n.mft {
		if lo >= r.Logical && lo < r.Logical+r.Length {
			if r.Sparse || lo+n.bt.recordSize > r.Logical+r.Length {
				return -1
			}
			return r.Offset + lo - r.Logical
		}
	}
	return -1
}

// readRecord reads MFT entry num into raw (recordSize bytes), following the
// $MFT runs even when a record spans two of them. It returns the volume
// offset of the record's first byte.
func (n *FS) readRecord(num uint64, raw []byte) (int64, error) {
	lo := int64(num) * n.bt.recordSize
	if lo+n.bt.recordSize > n.mftSize {
		return 0, fmt.Errorf("mft entry %d: %w: beyond $MFT of %d bytes", num, ErrCorrupt, n.mftSize)
	}
	if off := n.recordOffset(num); off >= 0 {
		n.winMu.Lock()
		defer n.winMu.Unlock()
		if off >= n.win.off && off+n.bt.recordSize <= n.win.off+int64(len(n.win.buf)) {
			copy(raw, n.win.buf[off-n.win.off:])
			return off, nil
		}
		// Read ahead up to recordWindow bytes of this $MFT run: the
		// walk reads records in order.
		var runEnd int64
		for _, r := range n.mft {
			if lo >= r.Logical && lo < r.Logical+r.Length {
				runEnd = r.Offset + r.Length
			}
		}
		k := min(recordWindow, runEnd-off, n.size-off, n.mftSize-lo)
		if k >= n.bt.recordSize {
			if cap(n.win.buf) < int(k) {
				n.win.buf = make([]byte, recordWindow)
			}
			n.win.buf = n.win.buf[:k]
			if err := n.readFull(n.win.buf, off, fmt.Sprintf("mft entry %d", num)); err == nil {
				n.win.off = off
				copy(raw, n.win.buf)
				return off, nil
			}
			n.win.buf = n.win.buf[:0]
		}
	}
	first := int64(-1)
	for done := int64(0); done < int64(len(raw)); {
		pos := lo + done
		var run *fs.Run
		for i := range n.mft {
			if r := &n.mft[i]; pos >= r.Logical && pos < r.Logical+r.Length {
				run = r
				break
			}
		}
		if run == nil || run.Sparse {
			return first, fmt.Errorf("mft entry %d: %w: $MFT has no cluster for offset %d", num, ErrCorrupt, pos)
		}
		k := min(int64(len(raw))-done, run.Logical+run.Length-pos)
		off := run.Offset + pos - run.Logical
		if first < 0 {
			first = off
		}
		if err := n.readFull(raw[done:done+k], off, fmt.Sprintf("mft entry %d", num)); err != nil {
			return first, err
		}
		done += k
	}
	return first, nil
}

// recordWindow is how many bytes of $MFT readRecord reads ahead.
const recordWindow = 256 << 10

// window is a cached stretch of the volume: buf holds the bytes at off.
type window struct {
	off int64
	buf []byte
}

// Package exfat reads exFAT file systems read-only and forensically: the
// main boot region, or the backup one when the main's checksum fails; the
// FAT (the active one of two); the allocation bitmap as the allocation map
// (Unallocated: free clusters and the sectors after the heap); the up-case
// table (its checksum, and the name hashes it yields); directory entry sets
// of file (0x85), stream extension (0xC0) and file name (0xC1) entries with
// their set checksums; contiguous (NoFatChain) and FAT-chained content,
// bytes past the valid data length read as zeros; the volume label
// (Label); the create, modify and access times with their 10 ms
// increments and UTC offsets (times without a valid offset are local time:
// OpenIn names the zone, as fat.OpenIn does); any sector size from 512 to
// 4096 bytes and cluster size up to 32 MiB.
//
// Deleted entry sets (0x05, 0x40, 0x41), deleted directories included, are
// listed and recovered while their clusters are free in the bitmap:
// NoFatChain content exactly ("contiguous"), FAT-chained content by the
// chain the deletion left ("fat-chain") or, where the driver freed it, as
// The Sleuth Kit does ("skip-allocated": the free clusters from the first
// on). Files are numbered as TSK numbers them (see Walk), so fls and icat
// addresses match.
//
// Not read: TexFAT (transaction-safe exFAT: its second FAT and bitmap are
// ignored beyond the ActiveFat flag), vendor extension and allocation
// entries (0xE0, 0xE1; the clusters of the latter are left to the bitmap),
// volume GUID and padding entries, and boot code. Tested against volumes
// made by exfatprogs' mkfs.exfat and written by exfat-fuse; volumes
// written by Windows or the Linux kernel driver are not in the tests.
package exfat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"

	"github.com/evidx/evidx/ingest/fs"
)

// Boot sector layout (exFAT specification section 3.1), byte offsets.
const (
	bsJump          = 0
	bsFSName        = 3
	bsMustBeZero    = 11
	bsVolumeLength  = 72
	bsFatOffset     = 80
	bsFatLength     = 84
	bsHeapOffset    = 88
	bsClusterCount  = 92
	bsRootCluster   = 96
	bsSerial        = 100
	bsRevision      = 104
	bsVolumeFlags   = 106
	bsBpsShift      = 108
	bsSpcShift      = 109
	bsNumberOfFats  = 110
	bsPercentInUse  = 112
	bsBootSignature = 510

	bootRegionSectors = 12 // boot sector, 8 extended boot sectors, OEM parameters, reserved, checksum
	checksumSector    = 11

	volFlagActiveFat = 0x1
	volFlagDirty     = 0x2

	fatBad = 0xFFFFFFF7
	fatEOC = 0xFFFFFFFF

	maxClusterCount = 0xFFFFFFF5
	maxTableBytes   = 1 << 30   // FAT or bitmap bigger than this is refused (a 1 GiB FAT maps 2^28 clusters)
	maxDirBytes     = 256 << 20 // exFAT directories hold at most 256 MiB of entries
	maxDepth        = 512       // nesting walked before giving up on a branch
	maxProblems     = 10000     // problems kept per volume; more are counted
)

// Sentinel errors of this package; fs.ParseError wraps them with an offset.
var (
	ErrNotExFAT       = errors.New("exfat: not an exFAT file system")
	ErrCorrupt        = errors.New("exfat: corrupt structure")
	ErrChain          = errors.New("exfat: broken cluster chain")
	ErrChainLoop      = errors.New("exfat: cluster chain loops")
	ErrNotRecoverable = errors.New("exfat: deleted file's clusters are no longer free")
	ErrIsDir          = errors.New("exfat: is a directory")
)

// FS is an opened exFAT volume. Walk must not run concurrently with
// itself; Open, Unallocated, Problems and Label may be called from any
// goroutine.
type FS struct {
	r    io.ReaderAt
	size int64 // bytes available in the image for this volume

	bootOff     int64 // byte offset of the boot region used (0 or the backup's)
	bps         int64 // bytes per sector
	clusterSize int64
	volEnd      int64 // bytes the boot sector says the volume has
	fatOff      int64 // byte offset of the FAT in use
	heapOff     int64 // byte offset of cluster 2
	nClusters   uint32
	rootCluster uint32
	serial      uint32
	fat         []byte // the FAT in use, raw: entries 0..nClusters+1
	dirty       bool
	activeFat   byte           // 0 or 1 (VolumeFlags bit 0 with two FATs)
	loc         *time.Location // zone of times stored without a UTC offset; nil: unknown, read as UTC

	// Set while Open reads the root directory; read-only afterwards.
	bitmap []byte // bit c-2 set: cluster c allocated
	label  string
	upcase []uint16 // decompressed up-case table, indexed by UTF-16 unit; nil when unread

	mu       sync.Mutex
	problems []string
	dropped  int
	seen     map[string]bool // one-time problems already recorded
}

// Open reads the boot region, FAT, allocation bitmap and up-case table of
// the exFAT volume of size bytes in r. Times stored without a UTC offset
// are read as UTC, with a problem saying so; OpenIn names their zone.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	return OpenIn(nil)(r, size)
}

// OpenIn returns an Opener that reads the times exFAT stores without a
// valid UTC offset (written by drivers that know no zone: local time) as
// local time of loc, as fat.OpenIn does. Times with an offset are exact
// whatever loc is. A nil loc reads them as UTC and records the problem
// "exfat: times without a UTC offset are local time of an unknown zone,
// read as UTC" once, when such a time is met.
func OpenIn(loc *time.Location) fs.Opener {
	return func(r io.ReaderAt, size int64) (fs.FileSystem, error) {
		f, err := NewIn(r, size, loc)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
}

// New is Open returning the concrete type.
func New(r io.ReaderAt, size int64) (*FS, error) { return NewIn(r, size, nil) }

// NewIn is OpenIn(loc) returning the concrete type. When the main boot
// region is unusable or its checksum fails, the backup boot region
// (sectors 12-23) is used and the damage recorded as a problem.
func NewIn(r io.ReaderAt, size int64, loc *time.Location) (*FS, error) {
	f, err := newAt(r, size, 0, loc)
	if err == nil && f.checkBootChecksum() == nil {
		return f.load()
	}
	mainErr := err
	if err == nil {
		mainErr = f.checkBootChecksum()
	}
	// The backup region sits at sector 12 of the same sector size; try
	// every legal size, since the main boot sector may be the damaged part.
	for shift := int64(9); shift <= 12; shift++ {
		boff := int64(bootRegionSectors) << shift
		g, err := newAt(r, size, boff, loc)
		if err != nil || g.bps != 1<<shift {
			continue
		}
		if cerr := g.checkBootChecksum(); cerr != nil {
			continue
		}
		g.problem("main boot region at 0x0 unusable (%v); backup boot region at %#x used", mainErr, boff)
		return g.load()
	}
	if err == nil {
		// Both checksums fail but the main boot sector parses: read it and
		// say so, since a wrong checksum alone does not make the volume
		// unreadable.
		f.problem("%v; no valid backup boot region; main boot sector used", mainErr)
		return f.load()
	}
	return nil, mainErr
}

// newAt parses the boot sector at byte bootOff.
func newAt(r io.ReaderAt, size, bootOff int64, loc *time.Location) (*FS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, bootOff); err != nil {
		return nil, &fs.ParseError{Op: "exfat boot sector", Offset: bootOff, Err: err}
	}
	le := binary.LittleEndian
	bad := func(at int, format string, a ...any) error {
		return &fs.ParseError{Op: "exfat boot sector", Offset: bootOff + int64(at), Err: fmt.Errorf("%w: "+format, append([]any{ErrNotExFAT}, a...)...)}
	}
	if string(bs[bsFSName:bsFSName+8]) != "EXFAT   " {
		return nil, bad(bsFSName, "file system name %q", bs[bsFSName:bsFSName+8])
	}
	if le.Uint16(bs[bsBootSignature:]) != 0xAA55 {
		return nil, bad(bsBootSignature, "boot signature %#04x", le.Uint16(bs[bsBootSignature:]))
	}
	bpsShift, spcShift := int64(bs[bsBpsShift]), int64(bs[bsSpcShift])
	if bpsShift < 9 || bpsShift > 12 {
		return nil, bad(bsBpsShift, "bytes per sector shift %d", bpsShift)
	}
	if spcShift > 25-bpsShift {
		return nil, bad(bsSpcShift, "sectors per cluster shift %d", spcShift)
	}
	f := &FS{r: r, size: size, bootOff: bootOff, bps: 1 << bpsShift, loc: loc, seen: map[string]bool{}}
	f.clusterSize = f.bps << spcShift
	volLen := le.Uint64(bs[bsVolumeLength:])
	fatOffset := int64(le.Uint32(bs[bsFatOffset:]))
	fatLength := int64(le.Uint32(bs[bsFatLength:]))
	heapOffset := int64(le.Uint32(bs[bsHeapOffset:]))
	clusters := le.Uint32(bs[bsClusterCount:])
	f.rootCluster = le.Uint32(bs[bsRootCluster:])
	f.serial = le.Uint32(bs[bsSerial:])
	nfats := bs[bsNumberOfFats]
	flags := le.Uint16(bs[bsVolumeFlags:])
	f.dirty = flags&volFlagDirty != 0
	if volLen>>(63-bpsShift) != 0 || int64(volLen) < 1<<20>>bpsShift {
		return nil, bad(bsVolumeLength, "volume length %d sectors", volLen)
	}
	f.volEnd = int64(volLen) << bpsShift
	if nfats != 1 && nfats != 2 {
		return nil, bad(bsNumberOfFats, "%d FATs", nfats)
	}
	if fatOffset < 24 || fatLength == 0 || clusters == 0 || clusters > maxClusterCount {
		return nil, bad(bsFatOffset, "FAT offset %d, FAT length %d sectors, %d clusters", fatOffset, fatLength, clusters)
	}
	if heapOffset < fatOffset+int64(nfats)*fatLength {
		return nil, bad(bsHeapOffset, "cluster heap at sector %d overlaps the FATs (sectors %d+%d*%d)", heapOffset, fatOffset, nfats, fatLength)
	}
	f.heapOff = heapOffset << bpsShift
	if f.heapOff+int64(clusters)*f.clusterSize > f.volEnd {
		return nil, bad(bsClusterCount, "%d clusters of %d bytes from %#x exceed the volume's %d bytes", clusters, f.clusterSize, f.heapOff, f.volEnd)
	}
	f.nClusters = clusters
	if !f.valid(f.rootCluster) {
		return nil, bad(bsRootCluster, "root directory cluster %d outside 2..%d", f.rootCluster, int64(clusters)+1)
	}
	active := int64(0)
	if nfats == 2 && flags&volFlagActiveFat != 0 {
		active = 1
	}
	f.activeFat = byte(active)
	f.fatOff = (fatOffset + active*fatLength) << bpsShift
	need := (int64(clusters) + 2) * 4
	if need > fatLength<<bpsShift {
		return nil, bad(bsFatLength, "FAT of %d sectors cannot map %d clusters", fatLength, clusters)
	}
	if need > maxTableBytes {
		return nil, bad(bsClusterCount, "FAT of %d bytes exceeds the %d bytes evidx reads", need, maxTableBytes)
	}
	if f.fatOff+need > size {
		return nil, &fs.ParseError{Op: "exfat FAT", Offset: f.fatOff, Err: fmt.Errorf("%w: FAT needs %d bytes, image ends at %#x", fs.ErrTruncated, need, size)}
	}
	if f.volEnd > size {
		f.problem("volume is %d bytes but the image holds only %d: truncated at %#x", f.volEnd, size, size)
	}
	return f, nil
}

// checkBootChecksum verifies the boot region's checksum sector: every
// 32-bit word of sector 11 holds the checksum of sectors 0-10, VolumeFlags
// and PercentInUse left out (they change without the checksum being
// rewritten).
func (f *FS) checkBootChecksum() error {
	region := make([]byte, bootRegionSectors*f.bps)
	if _, err := f.r.ReadAt(region, f.bootOff); err != nil {
		return &fs.ParseError{Op: "exfat boot region", Offset: f.bootOff, Err: err}
	}
	var sum uint32
	for i, b := range region[:checksumSector*f.bps] {
		if i == bsVolumeFlags || i == bsVolumeFlags+1 || i == bsPercentInUse {
			continue
		}
		sum = bits.RotateLeft32(sum, -1) + uint32(b)
	}
	cs := region[checksumSector*f.bps:]
	for i := 0; i < len(cs); i += 4 {
		if got := binary.LittleEndian.Uint32(cs[i:]); got != sum {
			return &fs.ParseError{Op: "exfat boot checksum", Offset: f.bootOff + checksumSector*f.bps + int64(i),
				Err: fmt.Errorf("%w: stored %#08x, sectors 0-10 sum to %#08x", ErrCorrupt, got, sum)}
		}
	}
	return nil
}

// load reads the FAT and the root directory's critical entries: the
// allocation bitmap, the up-case table and the volume label.
func (f *FS) load() (*FS, error) {
	need := (int64(f.nClusters) + 2) * 4
	f.fat = make([]byte, need)
	if _, err := f.r.ReadAt(f.fat, f.fatOff); err != nil {
		return nil, &fs.ParseError{Op: "exfat FAT", Offset: f.fatOff, Err: err}
	}
	if f.dirty {
		f.problem("volume flags at %#x: volume dirty (not cleanly unmounted)", f.bootOff+bsVolumeFlags)
	}
	if err := f.readRootMeta(); err != nil {
		return nil, err
	}
	return f, nil
}

// Type implements fs.FileSystem.
func (f *FS) Type() string { return "exfat" }

// Label is the volume label from the root directory's label entry (0x83),
// "" when there is none.
func (f *FS) Label() string { return f.label }

// Serial is the volume serial number from the boot sector.
func (f *FS) Serial() uint32 { return f.serial }

// ClusterSize is bytes per cluster.
func (f *FS) ClusterSize() int64 { return f.clusterSize }

func (f *FS) problem(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) >= maxProblems {
		f.dropped++
		return
	}
	f.problems = append(f.problems, fmt.Sprintf(format, a...))
}

// problemOnce records msg the first time only (Walk may run repeatedly).
func (f *FS) problemOnce(msg string) {
	f.mu.Lock()
	done := f.seen[msg]
	f.seen[msg] = true
	f.mu.Unlock()
	if !done {
		f.problem("%s", msg)
	}
}

// Problems implements fs.FileSystem.
func (f *FS) Problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.problems...)
	if f.dropped > 0 {
		out = append(out, fmt.Sprintf("%d more problems not listed", f.dropped))
	}
	return out
}

// valid says whether c names a cluster of the heap.
func (f *FS) valid(c uint32) bool { return c >= 2 && c-2 < f.nClusters }

func (f *FS) clusterOff(c uint32) int64 { return f.heapOff + int64(c-2)*f.clusterSize }

func (f *FS) entryOff(c uint32) int64 { return f.fatOff + int64(c)*4 }

func (f *FS) next(c uint32) uint32 { return binary.LittleEndian.Uint32(f.fat[int64(c)*4:]) }

// allocated says whether the bitmap marks cluster c in use; without a
// bitmap every cluster counts as in use, so nothing deleted is "recovered"
// from a guess.
func (f *FS) allocated(c uint32) bool {
	i := int64(c - 2)
	if f.bitmap == nil || i/8 >= int64(len(f.bitmap)) {
		return true
	}
	return f.bitmap[i/8]&(1<<(i%8)) != 0
}

// contiguous maps n clusters from start as one run (NoFatChain content).
func (f *FS) contiguous(start uint32, n int64) ([]fs.Run, error) {
	if !f.valid(start) || n > int64(f.nClusters)-int64(start-2) {
		return nil, fmt.Errorf("%w: %d contiguous clusters from cluster %d leave the cluster heap (%d clusters)", ErrCorrupt, n, start, f.nClusters)
	}
	return []fs.Run{{Offset: f.clusterOff(start), Length: n * f.clusterSize}}, nil
}

// chain follows the FAT from start for at most max clusters (max < 0:
// until the end of chain) and returns the byte runs, logical offsets from
// 0. It stops with an error naming the FAT entry's offset when the chain
// leaves the heap, is marked free or bad, or loops.
func (f *FS) chain(start uint32, max int64) ([]fs.Run, error) {
	if max < 0 || max > int64(f.nClusters) {
		max = int64(f.nClusters)
	}
	var runs []fs.Run
	var seen map[uint32]bool // built on the first non-contiguous step only
	c, prev := start, uint32(0)
	for n := int64(0); n < max; n++ {
		if !f.valid(c) {
			if n == 0 {
				return nil, fmt.Errorf("%w: first cluster %d outside 2..%d", ErrChain, c, int64(f.nClusters)+1)
			}
			return runs, fmt.Errorf("%w: FAT entry of cluster %d at %#x points to cluster %#x, outside the heap, after %d clusters", ErrChain, prev, f.entryOff(prev), c, n)
		}
		off := f.clusterOff(c)
		if k := len(runs); k > 0 && runs[k-1].Offset+runs[k-1].Length == off {
			runs[k-1].Length += f.clusterSize
		} else {
			if k > 0 {
				if seen == nil {
					seen = map[uint32]bool{}
					for _, r := range runs {
						first := uint32((r.Offset-f.heapOff)/f.clusterSize) + 2
						for i := range uint32(r.Length / f.clusterSize) {
							seen[first+i] = true
						}
					}
				}
				if seen[c] {
					return runs, fmt.Errorf("%w: FAT entry of cluster %d at %#x leads back to cluster %d after %d clusters", ErrChainLoop, prev, f.entryOff(prev), c, n)
				}
			}
			runs = append(runs, fs.Run{Logical: n * f.clusterSize, Offset: off, Length: f.clusterSize})
		}
		if seen != nil {
			seen[c] = true
		}
		if n+1 == max {
			break
		}
		nx := f.next(c)
		switch nx {
		case fatEOC:
			return runs, nil
		case 0:
			return runs, fmt.Errorf("%w: FAT entry of cluster %d at %#x is free", ErrChain, c, f.entryOff(c))
		case fatBad:
			return runs, fmt.Errorf("%w: FAT entry of cluster %d at %#x marks it bad", ErrChain, c, f.entryOff(c))
		}
		prev, c = c, nx
	}
	return runs, nil
}

// runsLen is the bytes the runs map.
func runsLen(runs []fs.Run) int64 {
	var n int64
	for _, r := range runs {
		n += r.Length
	}
	return n
}

// trim cuts runs to size bytes of content.
func trim(runs []fs.Run, size int64) []fs.Run {
	for i := range runs {
		if runs[i].Logical+runs[i].Length >= size {
			runs[i].Length = size - runs[i].Logical
			if runs[i].Length <= 0 {
				return runs[:i]
			}
			return runs[:i+1]
		}
	}
	return runs
}

// readRuns reads the bytes the runs map; a short read returns what was
// read with an error naming the offset. Only what the image holds is
// allocated: a corrupt length cannot make it reserve bytes that are not
// there.
func (f *FS) readRuns(runs []fs.Run) ([]byte, error) {
	var avail int64
	for _, r := range runs {
		avail += max(0, min(r.Offset+r.Length, f.size)-r.Offset)
	}
	data := make([]byte, 0, avail)
	for _, r := range runs {
		n := max(0, min(r.Length, f.size-r.Offset))
		data = append(data, make([]byte, n)...)
		got, err := f.r.ReadAt(data[int64(len(data))-n:], r.Offset)
		if int64(got) < r.Length {
			data = data[:int64(len(data))-n+int64(got)]
			if err == nil || err == io.EOF {
				err = fmt.Errorf("%w: image ends at %#x", io.ErrUnexpectedEOF, f.size)
			}
			return data, &fs.ParseError{Op: "exfat cluster", Offset: r.Offset + int64(got), Err: err}
		}
	}
	return data, nil
}

// Unallocated implements fs.FileSystem: clusters the bitmap marks free,
// and the sectors after the cluster heap to the end of the volume.
func (f *FS) Unallocated() ([]fs.Range, error) {
	if f.bitmap == nil {
		return nil, fmt.Errorf("exfat: no allocation bitmap read (see problems)")
	}
	end := min(f.volEnd, f.size)
	var rs []fs.Range
	for c := uint32(2); f.valid(c); c++ {
		i := c - 2
		n := int64(1) // clusters taken at once: a whole bitmap byte when it is 0x00 or 0xff
		if i%8 == 0 && i/8 < uint32(len(f.bitmap)) && f.valid(c+7) {
			switch f.bitmap[i/8] {
			case 0xff:
				c += 7
				continue
			case 0x00:
				n = 8
			}
		}
		if n == 1 && f.allocated(c) {
			continue
		}
		off := f.clusterOff(c)
		if off >= end {
			break
		}
		c += uint32(n - 1)
		l := min(n*f.clusterSize, end-off)
		if k := len(rs); k > 0 && rs[k-1].Off+rs[k-1].Len == off {
			rs[k-1].Len += l
		} else {
			rs = append(rs, fs.Range{Off: off, Len: l})
		}
	}
	if tail := f.heapOff + int64(f.nClusters)*f.clusterSize; tail < end {
		rs = append(rs, fs.Range{Off: tail, Len: end - tail})
	}
	return fs.MergeRanges(rs), nil
}

// Open implements fs.FileSystem. The reader (also an io.ReaderAt, safe for
// concurrent use) returns exactly file.Size bytes; bytes past the valid
// data length read as zeros, as the specification requires; a short run
// (chain broken, image truncated) is an error naming the offset.
func (f *FS) Open(file *fs.File) (io.Reader, error) {
	if file.Type == "dir" {
		return nil, fmt.Errorf("%s: %w", file.Path, ErrIsDir)
	}
	if file.Deleted && !file.Recoverable {
		return nil, fmt.Errorf("%s: %w", file.Path, ErrNotRecoverable)
	}
	var mapped int64
	for _, r := range file.Runs {
		mapped = max(mapped, r.Logical+r.Length)
	}
	if mapped < file.Size {
		return nil, fmt.Errorf("%s: %w: only %d of %d bytes mapped (%s)", file.Path, ErrChain, mapped, file.Size, file.Err)
	}
	return fs.NewRunReaderAt(f.r, file.Runs, file.Size, "exfat "+file.Path).(io.Reader), nil
}

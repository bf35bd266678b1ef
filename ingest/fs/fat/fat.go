// Package fat reads FAT12, FAT16 and FAT32 file systems read-only, the
// forensic way: deleted directory entries (0xE5) with their long names when
// the LFN slots survive, recovery of deleted files from their start cluster
// over the free clusters that follow it (the rule of tsk_recover: clusters
// now in use are stepped over), each recovery checked by the content's own
// structure where its type has one (ZIP and the Office formats built on it,
// PNG, gzip: every byte; PDF, JPEG: head and tail) and marked how it was
// made (fs.File.Recovery), the FAT copy that is consistent used when the
// copies differ (a zeroed or damaged first FAT falls back to the next, and
// a file whose chain breaks in the FAT in use is read from another copy
// whose chain is whole), and the allocation map as unallocated ranges.
// Times are local time of a zone the volume does not record: read as UTC
// unless OpenIn names the zone. go-diskfs hides all of these, so the
// on-disk structures are parsed here directly.
//
// Not supported: VFAT/exFAT (package exfat), TexFAT, and recovery of
// deleted files that were fragmented around clusters freed since.
package fat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"

	"github.com/evidx/evidx/ingest/fs"
)

// On-disk layout constants (Microsoft FAT specification, byte offsets
// within the boot sector or a 32-byte directory entry).
const (
	bpbBytesPerSec = 11
	bpbSecPerClus  = 13
	bpbRsvdSecCnt  = 14
	bpbNumFATs     = 16
	bpbRootEntCnt  = 17
	bpbTotSec16    = 19
	bpbMedia       = 21
	bpbFATSz16     = 22
	bpbTotSec32    = 32
	bpbFATSz32     = 36
	bpbExtFlags    = 40
	bpbRootClus    = 44

	dirEntrySize = 32
	dirAttr      = 11
	dirNTRes     = 12 // case flags: 0x08 lower-case base, 0x10 lower-case extension
	dirCrtTenth  = 13
	dirCrtTime   = 14
	dirCrtDate   = 16
	dirAccDate   = 18
	dirClusHi    = 20
	dirWrtTime   = 22
	dirWrtDate   = 24
	dirClusLo    = 26
	dirFileSize  = 28

	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrLFN       = 0x0f // read-only|hidden|system|volume: a long-name slot
	attrLFNMask   = 0x3f

	entryDeleted = 0xe5
	entryKanji   = 0x05 // first byte 0x05 stands for a real 0xE5
	lfnLast      = 0x40 // ordinal flag on the last (first stored) LFN slot

	maxDirBytes = 65536 * dirEntrySize // FAT directories hold at most 65,536 entries (2 MiB)
	maxDepth    = 512                  // directory nesting walked before giving up on a branch
	maxProblems = 10000                // problems kept per volume; more are counted

	fat12Clusters = 4085
	fat16Clusters = 65525
)

// Sentinel errors.
var (
	ErrNotFAT         = errors.New("fat: not a FAT file system")
	ErrNotRecoverable = errors.New("fat: deleted file's clusters are no longer free")
	ErrChain          = errors.New("fat: broken cluster chain")
	ErrChainLoop      = errors.New("fat: cluster chain loops")
	ErrIsDir          = errors.New("fat: is a directory")
	ErrBeyondImage    = errors.New("fat: data beyond the end of the image")
)

// FS is an opened FAT volume. Walk must not run concurrently with itself;
// Open, Unallocated and Problems may be called from any goroutine.
type FS struct {
	r    io.ReaderAt
	size int64 // bytes available in the image for this volume

	kind        string // "fat12", "fat16", "fat32"
	bps         int64  // bytes per sector
	clusterSize int64  // bytes per cluster
	fatOff      int64  // byte offset of the FAT in use
	rootOff     int64  // FAT12/16: byte offset of the fixed root directory
	rootLen     int64  // FAT12/16: its length in bytes
	rootClus    uint32 // FAT32: first cluster of the root directory
	dataOff     int64  // byte offset of cluster 2
	firstData   int64  // byte offset right after the FATs: TSK numbers entries from here
	volEnd      int64  // bytes the BPB says the volume has (may exceed size)
	nClusters   uint32 // data clusters; valid numbers are 2..nClusters+1
	eoc, bad    uint32 // end-of-chain threshold and bad-cluster mark
	fat         []byte // the FAT in use, raw
	fatCopy     int64  // which copy it is, 0-based
	alts        []fatTable
	loc         *time.Location // zone the times are local to

	freeOnce sync.Once
	freeSuf  []int64 // freeSuf[b]: free clusters in blocks b.. of freeBlock clusters

	mu       sync.Mutex
	problems []string
	dropped  int
}

// fatTable is one copy of the FAT held in memory.
type fatTable struct {
	n   int64 // copy number, 0-based
	off int64 // byte offset in the volume
	b   []byte
}

// maxKeptFAT bounds the bytes of one FAT copy kept beside the one in use
// (for choosing the consistent copy and reading broken chains from it).
// Larger FATs (volumes of tens of millions of clusters) are only compared.
var maxKeptFAT int64 = 64 << 20 // a variable so tests can take the large-FAT path

// Open reads the boot sector and FAT of the volume of size bytes in r. FAT
// times are read as UTC, with a problem saying so; OpenIn names the zone.
func Open(r io.ReaderAt, size int64) (fs.FileSystem, error) {
	return OpenIn(nil)(r, size)
}

// OpenIn returns an Opener that reads FAT times (local time without a zone
// on disk) as local time of loc and reports them in UTC. A nil loc reads
// them as UTC and records the problem "fat: times are local time of an
// unknown zone, read as UTC".
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

// NewIn is OpenIn(loc) returning the concrete type.
//
// When the boot sector at 0 is damaged, FAT32's backup boot sector (sector
// 6, where every formatter puts it) is used and the damage reported.
func NewIn(r io.ReaderAt, size int64, loc *time.Location) (*FS, error) {
	f, err := newAt(r, size, 0)
	if err != nil {
		const backupOff = 6 * 512 // BPB_BkBootSec is 6 on FAT32 volumes
		g, err2 := newAt(r, size, backupOff)
		if err2 != nil || g.kind != "fat32" {
			return nil, err
		}
		g.problem("boot sector at 0x0 unusable (%v); backup boot sector at %#x used", err, backupOff)
		f = g
	}
	f.loc = loc
	if loc == nil {
		f.loc = time.UTC
		f.problem("fat: times are local time of an unknown zone, read as UTC")
	}
	return f, nil
}

// newAt opens the volume with the boot sector found at byte bsOff.
func newAt(r io.ReaderAt, size, bsOff int64) (*FS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, bsOff); err != nil {
		return nil, &fs.ParseError{Op: "fat boot sector", Offset: bsOff, Err: err}
	}
	bad := func(format string, a ...any) error {
		return &fs.ParseError{Op: "fat boot sector", Offset: bsOff, Err: fmt.Errorf("%w: "+format, append([]any{ErrNotFAT}, a...)...)}
	}
	if bs[0] != 0xeb && bs[0] != 0xe9 {
		return nil, bad("jump byte %#02x", bs[0])
	}
	bps := int64(binary.LittleEndian.Uint16(bs[bpbBytesPerSec:]))
	spc := int64(bs[bpbSecPerClus])
	rsvd := int64(binary.LittleEndian.Uint16(bs[bpbRsvdSecCnt:]))
	nfats := int64(bs[bpbNumFATs])
	rootEnt := int64(binary.LittleEndian.Uint16(bs[bpbRootEntCnt:]))
	tot := int64(binary.LittleEndian.Uint16(bs[bpbTotSec16:]))
	if tot == 0 {
		tot = int64(binary.LittleEndian.Uint32(bs[bpbTotSec32:]))
	}
	fatSz := int64(binary.LittleEndian.Uint16(bs[bpbFATSz16:]))
	if fatSz == 0 {
		fatSz = int64(binary.LittleEndian.Uint32(bs[bpbFATSz32:]))
	}
	switch bps {
	case 512, 1024, 2048, 4096:
	default:
		return nil, bad("bytes per sector %d", bps)
	}
	if spc == 0 || spc&(spc-1) != 0 {
		return nil, bad("sectors per cluster %d", spc)
	}
	if rsvd == 0 || nfats == 0 || nfats > 4 || fatSz == 0 || tot == 0 {
		return nil, bad("reserved %d, FATs %d, FAT size %d, total sectors %d", rsvd, nfats, fatSz, tot)
	}
	rootSec := (rootEnt*dirEntrySize + bps - 1) / bps
	dataSec := tot - rsvd - nfats*fatSz - rootSec
	if dataSec <= 0 {
		return nil, bad("no data area (total %d sectors, metadata %d)", tot, rsvd+nfats*fatSz+rootSec)
	}
	f := &FS{r: r, size: size, bps: bps, clusterSize: bps * spc}
	clusters := dataSec / spc
	switch {
	case clusters < fat12Clusters:
		f.kind, f.eoc, f.bad = "fat12", 0xff8, 0xff7
	case clusters < fat16Clusters:
		f.kind, f.eoc, f.bad = "fat16", 0xfff8, 0xfff7
	default:
		f.kind, f.eoc, f.bad = "fat32", 0x0ffffff8, 0x0ffffff7
		if clusters > 0x0ffffff5 {
			return nil, bad("%d clusters", clusters)
		}
	}
	f.nClusters = uint32(clusters)
	f.firstData = (rsvd + nfats*fatSz) * bps
	f.dataOff = f.firstData + rootSec*bps
	f.volEnd = tot * bps
	if f.kind == "fat32" {
		f.rootClus = binary.LittleEndian.Uint32(bs[bpbRootClus:]) & 0x0fffffff
	} else {
		f.rootOff, f.rootLen = f.firstData, rootSec*bps
	}
	if f.volEnd > size {
		f.problem("volume is %d bytes but the image holds only %d: truncated at %#x", f.volEnd, size, size)
	}

	active := int64(0)
	if f.kind == "fat32" {
		if flags := binary.LittleEndian.Uint16(bs[bpbExtFlags:]); flags&0x80 != 0 {
			active = int64(flags & 0x0f) // mirroring disabled: only this FAT is current
			if active >= nfats {
				f.problem("boot sector names FAT %d as active but there are %d; FAT 0 used", active, nfats)
				active = 0
			}
		}
	}
	// need: bytes of FAT covering entries 0..nClusters+1.
	n := int64(f.nClusters) + 2
	var need int64
	switch f.kind {
	case "fat12":
		need = (n*3 + 1) / 2
	case "fat16":
		need = n * 2
	default:
		need = n * 4
	}
	if need > fatSz*bps {
		need = fatSz * bps
		var mapped int64
		switch f.kind {
		case "fat12":
			mapped = need*2/3 - 2
		case "fat16":
			mapped = need/2 - 2
		default:
			mapped = need/4 - 2
		}
		f.problem("FAT of %d bytes maps only %d of the %d clusters the boot sector implies; the rest are ignored", need, mapped, f.nClusters)
		f.nClusters = uint32(max(mapped, 0))
	}
	if err := f.chooseFAT(bs[bpbMedia], rsvd*bps, fatSz*bps, nfats, active, need); err != nil {
		return nil, err
	}
	return f, nil
}

// chooseFAT reads the FAT copies and uses the consistent one: entry 0
// carries the boot sector's media descriptor, the FAT32 root cluster is
// allocated, and fewest entries point outside the volume. Ties go to the
// active copy (the first, unless FAT32 mirroring is off). Copies that
// differ from the one in use are reported and, when not damaged, kept to
// read chains that break in the one in use.
func (f *FS) chooseFAT(media byte, first, fatBytes, nfats, active, need int64) error {
	order := []int64{active}
	for i := range nfats {
		if i != active {
			order = append(order, i)
		}
	}
	if need > maxKeptFAT {
		// Only one copy is held: take the first whose entry 0 is right.
		head := make([]byte, 8)
		sane := func(i int64) bool {
			_, err := f.r.ReadAt(head, first+i*fatBytes)
			return err == nil && f.entryIn(head, 0)&0xff == uint32(media) && f.entryIn(head, 0) != uint32(media)
		}
		slices.SortStableFunc(order, func(a, b int64) int {
			return cmp.Compare(boolInt(!sane(a)), boolInt(!sane(b)))
		})
	}
	var tabs []fatTable
	var lastErr error
	for _, i := range order {
		off := first + i*fatBytes
		if need > maxKeptFAT && len(tabs) > 0 {
			break // too big to hold twice: the rest are only compared, below
		}
		if off+need > f.size {
			lastErr = &fs.ParseError{Op: "fat table", Offset: off, Err: fmt.Errorf("%w: FAT copy %d needs %d bytes, image ends at %#x", fs.ErrTruncated, i+1, need, f.size)}
			continue
		}
		b := make([]byte, need)
		if _, err := f.r.ReadAt(b, off); err != nil {
			lastErr = &fs.ParseError{Op: "fat table", Offset: off, Err: err}
			continue
		}
		tabs = append(tabs, fatTable{n: i, off: off, b: b})
	}
	if len(tabs) == 0 {
		return lastErr
	}
	if len(tabs) < len(order) && lastErr != nil {
		f.problem("%v", lastErr)
	}
	why := make([]string, len(tabs))
	bad := make([]int64, len(tabs))
	best := 0
	for k, t := range tabs {
		why[k], bad[k] = f.fatDefects(t.b, media)
		if (why[k] == "") != (why[best] == "") {
			if why[k] == "" {
				best = k
			}
		} else if bad[k] < bad[best] {
			best = k
		}
	}
	use := tabs[best]
	f.fat, f.fatOff, f.fatCopy = use.b, use.off, use.n
	switch {
	case why[best] != "":
		f.problem("every FAT copy looks damaged; FAT copy %d at %#x used: %s", use.n+1, use.off, why[best])
	case use.n != active:
		reason := "entry 0 is not the media descriptor"
		if tabs[0].n == active {
			reason = orInvalid(why[0], bad[0])
		}
		f.problem("FAT copy %d at %#x is damaged (%s); FAT copy %d at %#x used instead", active+1, first+active*fatBytes, reason, use.n+1, use.off)
	}
	for k, t := range tabs {
		if k == best {
			continue
		}
		if diff, at := diffBytes(t.b, use.b); diff > 0 {
			f.problem("FAT copy %d at %#x differs from the FAT in use (copy %d at %#x) in %d bytes, first at %#x; the FAT in use was read",
				t.n+1, t.off, use.n+1, use.off, diff, t.off+at)
			if why[k] == "" {
				f.alts = append(f.alts, t)
			}
		}
	}
	if need > maxKeptFAT {
		for _, i := range order {
			if off := first + i*fatBytes; i != use.n && off+need <= f.size {
				f.compareFAT(off, i) // too big to hold: compared piecewise
			}
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orInvalid(why string, bad int64) string {
	if why != "" {
		return why
	}
	return fmt.Sprintf("%d entries point outside the volume", bad)
}

// fatDefects says why a FAT copy cannot be the right one (empty if it
// can) and counts entries pointing outside the volume.
func (f *FS) fatDefects(tab []byte, media byte) (string, int64) {
	var why string
	if e0 := f.entryIn(tab, 0); e0&0xff != uint32(media) || e0 == uint32(media) {
		why = fmt.Sprintf("entry 0 is %#x, not the media descriptor %#02x with the high bits set", e0, media)
	} else if f.kind == "fat32" && f.valid(f.rootClus) && f.entryIn(tab, f.rootClus) == 0 {
		why = fmt.Sprintf("root directory cluster %d is marked free", f.rootClus)
	}
	var n int64
	for c := uint32(2); c-2 < f.nClusters; c++ {
		if e := f.entryIn(tab, c); e != 0 && e < f.eoc && e != f.bad && !f.valid(e) {
			n++
		}
	}
	return why, n
}

// diffBytes counts the bytes where a and b (same length) differ and gives
// the first.
func diffBytes(a, b []byte) (n, first int64) {
	if bytes.Equal(a, b) {
		return 0, -1
	}
	first = -1
	for i := range a {
		if a[i] != b[i] {
			if first < 0 {
				first = int64(i)
			}
			n++
		}
	}
	return n, first
}

// compareFAT reports where copy i (at byte offset off) differs from the FAT
// in use. Copies are compared in 64 KiB pieces so memory stays bounded.
func (f *FS) compareFAT(off, i int64) {
	buf := make([]byte, 64<<10)
	var diff, first int64 = 0, -1
	for pos := int64(0); pos < int64(len(f.fat)); pos += int64(len(buf)) {
		n := min(int64(len(buf)), int64(len(f.fat))-pos)
		if _, err := f.r.ReadAt(buf[:n], off+pos); err != nil {
			f.problem("FAT copy %d at %#x unreadable: %v", i+1, off+pos, err)
			return
		}
		for j := range n {
			if buf[j] != f.fat[pos+j] {
				if first < 0 {
					first = off + pos + j
				}
				diff++
			}
		}
	}
	if diff > 0 {
		f.problem("FAT copy %d at %#x differs from the FAT in use (copy %d at %#x) in %d bytes, first at %#x; the FAT in use was read",
			i+1, off, f.fatCopy+1, f.fatOff, diff, first)
	}
}

// Type implements fs.FileSystem.
func (f *FS) Type() string { return f.kind }

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

// entry returns FAT entry c of the FAT in use; clusters past the FAT read
// as bad.
func (f *FS) entry(c uint32) uint32 { return f.entryIn(f.fat, c) }

// entryIn returns entry c of the FAT copy tab.
func (f *FS) entryIn(tab []byte, c uint32) uint32 {
	switch f.kind {
	case "fat12":
		o := int(c) + int(c)/2
		if o+1 >= len(tab) {
			return f.bad
		}
		v := uint32(binary.LittleEndian.Uint16(tab[o:]))
		if c&1 == 1 {
			return v >> 4
		}
		return v & 0xfff
	case "fat16":
		o := int(c) * 2
		if o+1 >= len(tab) {
			return f.bad
		}
		return uint32(binary.LittleEndian.Uint16(tab[o:]))
	default:
		o := int(c) * 4
		if o+3 >= len(tab) {
			return f.bad
		}
		return binary.LittleEndian.Uint32(tab[o:]) & 0x0fffffff
	}
}

// valid says whether c names a data cluster.
func (f *FS) valid(c uint32) bool { return c >= 2 && c-2 < f.nClusters }

// entryOff is the FAT byte offset of entry c in the volume, for messages.
func (f *FS) entryOff(c uint32) int64 { return f.entryOffIn(f.fatOff, c) }

func (f *FS) entryOffIn(fatOff int64, c uint32) int64 {
	switch f.kind {
	case "fat12":
		return fatOff + int64(c) + int64(c)/2
	case "fat16":
		return fatOff + int64(c)*2
	}
	return fatOff + int64(c)*4
}

// clusterOff is the byte offset of cluster c in the volume.
func (f *FS) clusterOff(c uint32) int64 { return f.dataOff + int64(c-2)*f.clusterSize }

// chain follows the FAT from start for at most max clusters and returns the
// byte runs (logical offsets from 0, lengths whole clusters). It stops with
// an error naming the FAT offset when the chain ends early, leaves the
// volume or loops. max < 0 means "until end of chain", capped by the cluster
// count.
func (f *FS) chain(start uint32, max int64) ([]fs.Run, error) {
	return f.chainIn(fatTable{n: f.fatCopy, off: f.fatOff, b: f.fat}, start, max)
}

// chainIn is chain over the FAT copy t.
func (f *FS) chainIn(t fatTable, start uint32, max int64) ([]fs.Run, error) {
	if max < 0 || max > int64(f.nClusters) {
		max = int64(f.nClusters)
	}
	var runs []fs.Run
	var seen map[uint32]struct{} // built on the first non-contiguous step only
	c := start
	for n := int64(0); n < max; n++ {
		if !f.valid(c) {
			return runs, fmt.Errorf("%w: cluster %d after %d clusters (FAT entry at %#x)", ErrChain, c, n, f.entryOffIn(t.off, start))
		}
		off := f.clusterOff(c)
		if k := len(runs); k > 0 && runs[k-1].Offset+runs[k-1].Length == off {
			runs[k-1].Length += f.clusterSize
		} else {
			if k > 0 {
				if seen == nil {
					seen = make(map[uint32]struct{})
					for _, r := range runs {
						first := uint32((r.Offset-f.dataOff)/f.clusterSize) + 2
						for i := range uint32(r.Length / f.clusterSize) {
							seen[first+i] = struct{}{}
						}
					}
				}
				if _, dup := seen[c]; dup {
					return runs, fmt.Errorf("%w: back to cluster %d after %d clusters", ErrChainLoop, c, n)
				}
			}
			runs = append(runs, fs.Run{Logical: n * f.clusterSize, Offset: off, Length: f.clusterSize})
		}
		if seen != nil {
			seen[c] = struct{}{}
		}
		next := f.entryIn(t.b, c)
		if n+1 == max {
			break
		}
		switch {
		case next >= f.eoc:
			return runs, nil
		case next == 0:
			return runs, fmt.Errorf("%w: cluster %d is marked free (FAT entry at %#x)", ErrChain, c, f.entryOffIn(t.off, c))
		case next == f.bad:
			return runs, fmt.Errorf("%w: cluster %d is marked bad (FAT entry at %#x)", ErrChain, c, f.entryOffIn(t.off, c))
		}
		c = next
	}
	return runs, nil
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

// contiguousFree returns the run of n clusters from start when all of them
// are valid and free, which is when a deleted file can be recovered.
func (f *FS) contiguousFree(start uint32, n int64) (fs.Run, error) {
	if !f.valid(start) || n > int64(f.nClusters) || int64(start-2)+n > int64(f.nClusters) {
		return fs.Run{}, fmt.Errorf("%w: %d clusters from cluster %d leave the volume", ErrNotRecoverable, n, start)
	}
	for i := range uint32(n) {
		if e := f.entry(start + i); e != 0 {
			return fs.Run{}, fmt.Errorf("%w: cluster %d in use (FAT entry at %#x)", ErrNotRecoverable, start+i, f.entryOff(start+i))
		}
	}
	return fs.Run{Offset: f.clusterOff(start), Length: n * f.clusterSize}, nil
}

// freeBlock is the number of clusters per block of the free-cluster
// counts, which let a recovery step over long allocated stretches.
const freeBlock = 4096

// freeSuffix returns, per block of freeBlock clusters, the free clusters
// in that block and all after it (one more element, 0, at the end).
func (f *FS) freeSuffix() []int64 {
	f.freeOnce.Do(func() {
		nb := (int64(f.nClusters) + freeBlock - 1) / freeBlock
		suf := make([]int64, nb+1)
		for k := int64(0); k < int64(f.nClusters); k++ {
			if f.entry(uint32(k+2)) == 0 {
				suf[k/freeBlock]++
			}
		}
		for b := nb - 1; b >= 0; b-- {
			suf[b] += suf[b+1]
		}
		f.freeSuf = suf
	})
	return f.freeSuf
}

// recoverRuns maps a deleted file of need clusters from start by the rule
// of tsk_recover: the start cluster must be free, then the file takes the
// next need free clusters, stepping over those now in use (it assumes the
// file was laid out contiguously among the clusters free at the time, so
// the clusters in use now were in use then). skipped says whether any was
// stepped over. Not enough free clusters before the end of the volume,
// or a start cluster in use or outside it, make the file unrecoverable.
func (f *FS) recoverRuns(start uint32, need int64) (runs []fs.Run, skipped bool, err error) {
	if !f.valid(start) {
		return nil, false, fmt.Errorf("%w: start cluster %d outside the volume", ErrNotRecoverable, start)
	}
	if e := f.entry(start); e != 0 {
		return nil, false, fmt.Errorf("%w: start cluster %d in use (FAT entry at %#x)", ErrNotRecoverable, start, f.entryOff(start))
	}
	suf := f.freeSuffix()
	k := int64(start - 2)
	blk := k / freeBlock
	var avail int64
	for j := k; j < min((blk+1)*freeBlock, int64(f.nClusters)); j++ {
		if f.entry(uint32(j+2)) == 0 {
			avail++
		}
	}
	if avail += suf[blk+1]; avail < need {
		return nil, false, fmt.Errorf("%w: %d clusters needed from cluster %d, only %d free up to the end of the volume", ErrNotRecoverable, need, start, avail)
	}
	for got := int64(0); got < need; k++ {
		if k%freeBlock == 0 && suf[k/freeBlock] == suf[k/freeBlock+1] {
			k += freeBlock - 1 // a block with no free cluster
			skipped = true
			continue
		}
		c := uint32(k + 2)
		if f.entry(c) != 0 {
			skipped = true
			continue
		}
		runs = fs.AppendRun(runs, f.clusterOff(c), f.clusterSize)
		got++
	}
	return runs, skipped, nil
}

// Unallocated implements fs.FileSystem: free clusters, plus sectors after
// the last whole cluster up to the end of the volume.
func (f *FS) Unallocated() ([]fs.Range, error) {
	var rs fs.RangeSet
	end := min(f.volEnd, f.size)
	for c := uint32(2); c-2 < f.nClusters; c++ {
		if f.entry(c) != 0 {
			continue
		}
		off := f.clusterOff(c)
		if off >= end {
			break
		}
		rs.Add(off, min(f.clusterSize, end-off))
	}
	if tail := f.dataOff + int64(f.nClusters)*f.clusterSize; tail < end {
		rs.Add(tail, end-tail)
	}
	return rs.Ranges(), nil
}

// Open implements fs.FileSystem. The reader returns exactly f.Size bytes, or
// fewer followed by an error naming where the chain broke.
func (f *FS) Open(file *fs.File) (io.Reader, error) {
	if file.Type == "dir" {
		return nil, fmt.Errorf("%s: %w", file.Path, ErrIsDir)
	}
	if file.Deleted && !file.Recoverable {
		return nil, fmt.Errorf("%s: %w", file.Path, ErrNotRecoverable)
	}
	if file.Size == 0 {
		return bytes.NewReader(nil), nil
	}
	rs := make([]io.Reader, 0, len(file.Runs)+1)
	var got int64
	for _, r := range file.Runs {
		rs = append(rs, io.NewSectionReader(f.r, r.Offset, r.Length))
		got += r.Length
	}
	if got < file.Size {
		rs = append(rs, &errReader{fmt.Errorf("%s: %w: only %d of %d bytes mapped (%s)", file.Path, ErrChain, got, file.Size, file.Err)})
	}
	return &checkedReader{r: io.MultiReader(rs...), want: got, path: file.Path}, nil
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// checkedReader turns a short read of the mapped runs (image truncated)
// into an error instead of a silent short file.
type checkedReader struct {
	r    io.Reader
	want int64
	got  int64
	path string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.got += int64(n)
	if err == io.EOF && c.got < c.want {
		return n, fmt.Errorf("%s: %w after %d of %d bytes", c.path, ErrBeyondImage, c.got, c.want)
	}
	return n, err
}

// dirEntry is a parsed short-name entry with its long name.
type dirEntry struct {
	name    string
	off     int64 // byte offset of the short entry in the volume
	attr    byte
	deleted bool
	start   uint32
	size    int64
	raw     []byte
}

// Walk implements fs.FileSystem: a depth-first walk in directory order,
// deleted entries included. Inode is TSK's FAT address: 2 for the root,
// else 3 + (byte offset of the short entry - end of the FATs) / 32, so the
// numbers match fls/icat.
func (f *FS) Walk(ctx context.Context, fn func(*fs.File) error) error {
	w := &walker{f: f, ctx: ctx, fn: fn, visited: map[uint32]bool{}}
	var data []byte
	var runs []fs.Run
	if f.kind == "fat32" {
		var err error
		data, runs, err = f.readDir(f.rootClus, false)
		if err != nil {
			f.problem("root directory: %v", err)
		}
		runs, data = w.claim(runs, data, &fs.File{Path: "/"})
	} else {
		runs = []fs.Run{{Offset: f.rootOff, Length: f.rootLen}}
		data = make([]byte, f.rootLen)
		if n, err := f.r.ReadAt(data, f.rootOff); err != nil {
			f.problem("root directory at %#x: read %d of %d bytes: %v", f.rootOff, n, f.rootLen, err)
			data = data[:n-n%dirEntrySize]
		}
	}
	return w.dir(data, runs, "", false, 0)
}

type walker struct {
	f       *FS
	ctx     context.Context
	fn      func(*fs.File) error
	visited map[uint32]bool // every directory cluster already walked: guards cycles and cross-links, and bounds the walk's reading by the volume size
}

// claim marks a directory's clusters as walked and cuts the directory at
// the first cluster another directory already owns (a cycle or a
// cross-linked chain), so no cluster is ever parsed as a directory twice.
func (w *walker) claim(runs []fs.Run, data []byte, dir *fs.File) ([]fs.Run, []byte) {
	f := w.f
	var used int64
	for i, r := range runs {
		first := uint32((r.Offset-f.dataOff)/f.clusterSize) + 2
		for k := range uint32(r.Length / f.clusterSize) {
			c := first + k
			if w.visited[c] {
				if !dir.Deleted {
					f.problem("directory %q: cluster %d (at %#x) already belongs to a walked directory (directory cycle or cross-link); cut there", dir.Path, c, f.clusterOff(c))
				}
				out := append(runs[:i:i], fs.Run{Logical: r.Logical, Offset: r.Offset, Length: int64(k) * f.clusterSize})
				if int64(k) == 0 {
					out = out[:i]
				}
				return out, data[:min(int64(len(data)), used+int64(k)*f.clusterSize)]
			}
			w.visited[c] = true
		}
		used += r.Length
	}
	return runs, data
}

// readDir reads a directory's clusters, at most maxDirBytes. For a deleted
// directory only its first cluster is read, and only when it is free.
func (f *FS) readDir(start uint32, deleted bool) ([]byte, []fs.Run, error) {
	var runs []fs.Run
	var err error
	if deleted {
		r, e := f.contiguousFree(start, 1)
		if e != nil {
			return nil, nil, e
		}
		runs = []fs.Run{r}
	} else {
		runs, err = f.chain(start, maxDirBytes/f.clusterSize)
	}
	var total int64
	for _, r := range runs {
		total += r.Length
	}
	data := make([]byte, 0, total)
	for _, r := range runs {
		b := make([]byte, r.Length)
		n, rerr := f.r.ReadAt(b, r.Offset)
		data = append(data, b[:n]...)
		if rerr != nil {
			data = data[:len(data)-len(data)%dirEntrySize]
			return data, runs, errors.Join(err, fmt.Errorf("directory cluster at %#x: %w", r.Offset, rerr))
		}
	}
	return data, runs, err
}

// runCursor maps increasing byte indexes of a directory's data to volume
// offsets in amortised constant time (directories can be fragmented into
// thousands of runs).
type runCursor struct {
	runs []fs.Run
	ri   int   // run holding the last index asked for
	base int64 // data index where runs[ri] starts
}

func (c *runCursor) offset(i int64) int64 {
	for c.ri < len(c.runs) && i >= c.base+c.runs[c.ri].Length {
		c.base += c.runs[c.ri].Length
		c.ri++
	}
	if c.ri == len(c.runs) {
		return -1
	}
	return c.runs[c.ri].Offset + i - c.base
}

func (w *walker) dir(data []byte, runs []fs.Run, parent string, parentDeleted bool, depth int) error {
	f := w.f
	var slots [][]byte // pending LFN slots in disk order
	cur := runCursor{runs: runs}
	for i := 0; i+dirEntrySize <= len(data); i += dirEntrySize {
		e := data[i : i+dirEntrySize]
		if e[0] == 0 {
			break // end of directory
		}
		if e[dirAttr]&attrLFNMask == attrLFN {
			slots = append(slots, e)
			continue
		}
		lfn := slots
		slots = nil
		if e[dirAttr]&attrVolumeID != 0 {
			continue
		}
		if bytes.Equal(e[:11], []byte(".          ")) || bytes.Equal(e[:11], []byte("..         ")) {
			continue
		}
		de := dirEntry{
			off:     cur.offset(int64(i)),
			attr:    e[dirAttr],
			deleted: e[0] == entryDeleted,
			start:   uint32(binary.LittleEndian.Uint16(e[dirClusLo:])),
			size:    int64(binary.LittleEndian.Uint32(e[dirFileSize:])),
			raw:     e,
		}
		if f.kind == "fat32" {
			de.start |= uint32(binary.LittleEndian.Uint16(e[dirClusHi:])) << 16
		}
		if de.deleted && !plausibleDeleted(e) {
			continue // slack or garbage, not an entry
		}
		de.name = entryName(e, lfn, de.deleted)
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if err := w.entry(de, parent, parentDeleted, depth); err != nil {
			return err
		}
	}
	return nil
}

// plausibleDeleted filters deleted-entry slots that are really garbage:
// reserved attribute bits set or control bytes in the name.
func plausibleDeleted(e []byte) bool {
	if e[dirAttr]&0xc0 != 0 {
		return false
	}
	for _, b := range e[1:11] {
		if b < 0x20 {
			return false
		}
	}
	return true
}

func (w *walker) entry(de dirEntry, parent string, parentDeleted bool, depth int) error {
	f := w.f
	file := &fs.File{
		Path:    parent + "/" + de.name,
		Deleted: de.deleted || parentDeleted,
		Inode:   uint64(3 + (de.off-f.firstData)/dirEntrySize),
		Mtime:   dosTime(de.raw[dirWrtDate:], de.raw[dirWrtTime:], 0, f.loc),
		Atime:   dosTime(de.raw[dirAccDate:], nil, 0, f.loc),
		Btime:   dosTime(de.raw[dirCrtDate:], de.raw[dirCrtTime:], de.raw[dirCrtTenth], f.loc),
	}
	isDir := de.attr&attrDirectory != 0
	if isDir {
		file.Type = "dir"
		file.Recoverable = !file.Deleted
	} else {
		file.Type = "file"
		file.Size = de.size
		f.mapContent(file, de)
	}
	// A directory's clusters are read before it is reported, so that an
	// allocated one carries their runs and its size in bytes as TSK gives
	// it (icat writes them); what it holds is walked after.
	var data []byte
	var runs []fs.Run
	var err error
	descend := isDir && de.start != 0
	switch {
	case !descend:
	case !f.valid(de.start):
		if !file.Deleted {
			f.problem("directory %q (entry at %#x): start cluster %d outside the volume", file.Path, de.off, de.start)
		}
		descend = false
	case depth >= maxDepth:
		f.problem("directory %q (entry at %#x): nested deeper than %d, not descended", file.Path, de.off, maxDepth)
		descend = false
	default:
		data, runs, err = f.readDir(de.start, file.Deleted)
		runs, data = w.claim(runs, data, file)
		if !file.Deleted && err == nil {
			file.Runs = runs
			for _, r := range runs {
				file.Size += r.Length
			}
		}
	}
	if ferr := w.fn(file); ferr != nil {
		return ferr
	}
	if !descend {
		return nil
	}
	if err != nil {
		if !file.Deleted {
			f.problem("directory %q (entry at %#x): %v", file.Path, de.off, err)
		}
		if len(data) == 0 {
			return nil
		}
	}
	// A deleted directory's first cluster counts only if it still starts
	// with its "." entry; otherwise it has been reused.
	if file.Deleted && !bytes.HasPrefix(data, []byte(".          ")) {
		return nil
	}
	return w.dir(data, runs, file.Path, file.Deleted, depth+1)
}

// mapContent fills Runs, Recoverable and Err of a regular file.
func (f *FS) mapContent(file *fs.File, de dirEntry) {
	if file.Size == 0 {
		file.Recoverable = true
		return
	}
	maxBytes := int64(f.nClusters) * f.clusterSize
	size := file.Size
	if size > maxBytes {
		file.Err = fmt.Sprintf("entry at %#x: size %d exceeds the volume's %d data bytes", de.off, size, maxBytes)
		size = maxBytes
	}
	need := (size + f.clusterSize - 1) / f.clusterSize
	if file.Deleted {
		runs, skipped, err := f.recoverRuns(de.start, need)
		if err != nil {
			file.Err = joinMsg(file.Err, fmt.Sprintf("entry at %#x: %v", de.off, err))
			return
		}
		file.Runs = trim(runs, size)
		file.Recoverable = file.Err == ""
		file.Recovery = "contiguous"
		if skipped {
			file.Recovery = "skip-allocated"
		}
		f.checkInImage(file)
		if file.Recoverable {
			kind, res, why := checkContent(fs.NewRunReaderAt(f.r, file.Runs, file.Size, file.Path), file.Size)
			if res != checkNone {
				file.Recovery += "+" + res
			}
			if res == checkMismatch {
				file.Err = joinMsg(file.Err, fmt.Sprintf("recovered content fails the %s structure check: %s", kind, why))
			}
		}
		return
	}
	file.Recoverable = true
	runs, err := f.wholeChain(f.chain, de.start, need, size)
	if err != nil {
		// The chain breaks in the FAT in use: another copy may hold it whole.
		for _, t := range f.alts {
			r2, err2 := f.wholeChain(func(c uint32, n int64) ([]fs.Run, error) { return f.chainIn(t, c, n) }, de.start, need, size)
			if err2 == nil {
				f.problem("%s: entry at %#x, start cluster %d: %v in FAT copy %d; read from FAT copy %d at %#x, where the chain is whole",
					file.Path, de.off, de.start, err, f.fatCopy+1, t.n+1, t.off)
				runs, err = r2, nil
				break
			}
		}
	}
	if err != nil {
		msg := fmt.Sprintf("entry at %#x, start cluster %d: %v", de.off, de.start, err)
		file.Err = joinMsg(file.Err, msg)
		f.problem("%s: %s", file.Path, msg)
	}
	file.Runs = trim(runs, size)
	f.checkInImage(file)
}

// wholeChain follows a chain of need clusters with chain and says why when
// it gives fewer than size bytes.
func (f *FS) wholeChain(chain func(uint32, int64) ([]fs.Run, error), start uint32, need, size int64) ([]fs.Run, error) {
	runs, err := chain(start, need)
	if err == nil && len(runs) > 0 {
		var got int64
		for _, r := range runs {
			got += r.Length
		}
		if got < size {
			err = fmt.Errorf("%w: chain ends after %d of %d clusters", ErrChain, got/f.clusterSize, need)
		}
	}
	return runs, err
}

// checkInImage notes content mapped past the end of a truncated image.
func (f *FS) checkInImage(file *fs.File) {
	for _, r := range file.Runs {
		if r.Offset+r.Length > f.size {
			msg := fmt.Sprintf("content at %#x runs past the end of the image (%#x)", r.Offset, f.size)
			file.Err = joinMsg(file.Err, msg)
			if !file.Deleted {
				f.problem("%s: %s", file.Path, msg)
			}
			return
		}
	}
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// sfnChecksum is the LFN checksum of an 11-byte short name.
func sfnChecksum(name []byte) byte {
	var s byte
	for _, c := range name[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// entryName builds the name of a short entry from its LFN slots (disk
// order) when they belong to it, else from the 8.3 name. A deleted entry has
// lost its first byte and its slots their ordinals: the slots are taken by
// position, and the first byte is solved from the LFN checksum, which also
// proves they belong together.
func entryName(e []byte, slots [][]byte, deleted bool) string {
	sfn := append([]byte(nil), e[:11]...)
	first := -1 // recovered first byte of a deleted short name
	var use [][]byte
	if deleted {
		if len(slots) > 0 && slots[len(slots)-1][0] == entryDeleted {
			chk := slots[len(slots)-1][13]
			k := len(slots) - 1
			for k > 0 && slots[k-1][13] == chk && slots[k-1][0] == entryDeleted {
				k--
			}
			for b := 0x20; b < 0x100 && first < 0; b++ {
				sfn[0] = byte(b)
				if sfnChecksum(sfn) == chk {
					first = b
				}
			}
			if first >= 0 {
				use = slots[k:]
			}
		}
		if first >= 0 {
			sfn[0] = byte(first)
		} else {
			sfn[0] = '_' // as TSK shows a deleted short name
		}
	} else if len(slots) > 0 {
		chk := sfnChecksum(sfn)
		// Slots in disk order: ordinal N|0x40, N-1, ..., 1 right before the entry.
		k := len(slots) - 1
		for want := byte(1); k >= 0; k, want = k-1, want+1 {
			s := slots[k]
			if s[13] != chk || s[0]&0x1f != want {
				break
			}
			if s[0]&lfnLast != 0 {
				use = slots[k:]
				break
			}
		}
	}
	if len(use) > 0 {
		var u []uint16
		for i := len(use) - 1; i >= 0; i-- {
			s := use[i]
			for _, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				u = append(u, binary.LittleEndian.Uint16(s[o:]))
			}
		}
		for i, c := range u {
			if c == 0 {
				u = u[:i]
				break
			}
		}
		if name := strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD"); name != "" && name != "." && name != ".." && !strings.ContainsRune(name, '/') {
			return name
		}
	}
	return shortName(sfn, e[dirNTRes])
}

// shortName renders an 8.3 name (OEM code page 437 assumed) with the NT
// lower-case flags applied.
func shortName(sfn []byte, nt byte) string {
	n := append([]byte(nil), sfn...)
	if n[0] == entryKanji {
		n[0] = entryDeleted
	}
	base := strings.TrimRight(decode437(n[:8]), " ")
	ext := strings.TrimRight(decode437(n[8:11]), " ")
	if nt&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if nt&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	name := base
	if ext != "" {
		name += "." + ext
	}
	return strings.ReplaceAll(name, "/", "_")
}

func decode437(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	s, err := charmap.CodePage437.NewDecoder().Bytes(b) // a Decoder has state: one per call
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(s)
}

// dosTime decodes a FAT date (and optional time and 10 ms units). FAT stores
// local time without a zone; it is read as local time of loc (UTC when the
// zone is unknown, as fls does without -z) and returned in UTC. Invalid
// dates give the zero time.
func dosTime(d, t []byte, tenths byte, loc *time.Location) time.Time {
	date := binary.LittleEndian.Uint16(d)
	if date == 0 {
		return time.Time{}
	}
	y, m, day := int(date>>9)+1980, int(date>>5&0x0f), int(date&0x1f)
	if m < 1 || m > 12 || day < 1 || day > 31 {
		return time.Time{}
	}
	var hh, mm, ss int
	if t != nil {
		tm := binary.LittleEndian.Uint16(t)
		hh, mm, ss = int(tm>>11), int(tm>>5&0x3f), int(tm&0x1f)*2
		if hh > 23 || mm > 59 || ss > 59 {
			hh, mm, ss = 0, 0, 0
		}
	}
	ns := int(tenths) * 10 * int(time.Millisecond)
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(y, time.Month(m), day, hh, mm, ss, 0, loc).Add(time.Duration(ns)).UTC()
}

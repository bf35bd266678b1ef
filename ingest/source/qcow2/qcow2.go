// Package qcow2 reads QEMU copy-on-write images (qcow2 version 2, written
// by qemu-img with compat=0.10, and version 3, compat=1.1) as a read-only
// virtual disk.
//
// Supported: cluster sizes 512 B to 2 MiB; the active L1/L2 tables with
// standard L2 entries; zero clusters (v3 zero flag, with or without a
// preallocated host cluster); compressed clusters in raw deflate
// (compression_type 0) and zstd (compression_type 1); backing files, raw
// or qcow2, followed up to 16 deep, found beside the image first; the
// backing-format and feature-name-table header extensions. The dirty and
// corrupt bits are reported as problems, not errors: the tables may be
// stale, so the bytes are those a read-only QEMU would see without repair.
//
// Not supported, refused with an error: encryption (crypt_method != 0 or
// LUKS), an external data file, extended L2 entries (subclusters), and any
// unknown incompatible feature bit. Internal snapshots are ignored: only
// the active L1 table is read. Refcounts and bitmaps are not checked.
package qcow2

import (
	"bytes"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// OpenFunc opens, read-only, another file the container names (a backing
// file), given a host path.
type OpenFunc func(path string) (io.ReaderAt, int64, error)

const (
	magic       = "QFI\xfb"
	maxDepth    = 16
	maxL1Bytes  = 32 << 20 // QEMU's own limit on the L1 table
	maxSize     = 1 << 61  // virtual size bound, so offsets never overflow
	l2CacheMax  = 32 << 20 // bytes of L2 tables kept
	maxExtBytes = 1 << 20  // header extensions area read

	incDirty    = 1 << 0
	incCorrupt  = 1 << 1
	incDataFile = 1 << 2
	incCompType = 1 << 3
	incExtL2    = 1 << 4

	extEnd      = 0x00000000
	extBackFmt  = 0xe2792aca
	extFeatures = 0x6803f857
	extDataFile = 0x44415441

	offMask  = 0x00fffffffffffe00 // bits 9-55 of L1 and standard L2 entries
	flagCmp  = 1 << 62
	flagZero = 1
)

// Disk is an opened qcow2 image. ReadAt is safe for concurrent use.
type Disk struct {
	r        io.ReaderAt
	fsize    int64
	name     string
	version  int
	size     int64
	cbits    uint
	csize    int64
	l1       []uint64
	zstd     bool
	backing  io.ReaderAt // nil: unallocated clusters read as zeros
	backSize int64
	files    []string
	problems []string

	mu    sync.Mutex
	lru   *list.List // of *l2tab, most recent first
	l2s   map[uint64]*list.Element
	cmpAt uint64 // host descriptor of the cached decompressed cluster
	cmp   []byte
}

type l2tab struct {
	off uint64
	e   []uint64
}

var zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(8<<20))

// Detect reports whether r starts with the qcow2 magic and version 2 or 3.
func Detect(r io.ReaderAt, size int64) bool {
	var b [8]byte
	if size < 72 {
		return false
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	v := binary.BigEndian.Uint32(b[4:])
	return string(b[:4]) == magic && (v == 2 || v == 3)
}

// Open parses the qcow2 image r (size bytes) whose host path is name.
func Open(r io.ReaderAt, size int64, name string, open OpenFunc) (*Disk, error) {
	return openDepth(r, size, name, open, map[string]bool{})
}

func openDepth(r io.ReaderAt, fsize int64, name string, open OpenFunc, seen map[string]bool) (*Disk, error) {
	abs, _ := filepath.Abs(name)
	if seen[abs] {
		return nil, fmt.Errorf("%s: backing file loop", name)
	}
	seen[abs] = true
	if len(seen) > maxDepth+1 {
		return nil, fmt.Errorf("%s: backing chain deeper than %d", name, maxDepth)
	}
	h := make([]byte, 112)
	if fsize < 72 {
		return nil, fmt.Errorf("%s: file of %d bytes too short for a qcow2 header", name, fsize)
	}
	n, err := r.ReadAt(h, 0)
	if n < 72 {
		return nil, fmt.Errorf("%s: reading header at 0x0: %v", name, err)
	}
	h = h[:n]
	be := binary.BigEndian
	if string(h[:4]) != magic {
		return nil, fmt.Errorf("%s: no qcow2 magic at 0x0", name)
	}
	d := &Disk{r: r, fsize: fsize, name: name, lru: list.New(), l2s: map[uint64]*list.Element{}}
	d.version = int(be.Uint32(h[4:]))
	if d.version != 2 && d.version != 3 {
		return nil, fmt.Errorf("%s: qcow2 version %d at 0x4 not supported (only 2 and 3)", name, d.version)
	}
	backOff, backLen := be.Uint64(h[8:]), be.Uint32(h[16:])
	d.cbits = uint(be.Uint32(h[20:]))
	if d.cbits < 9 || d.cbits > 21 {
		return nil, fmt.Errorf("%s: cluster_bits %d at 0x14 outside 9..21", name, d.cbits)
	}
	d.csize = 1 << d.cbits
	vsize := be.Uint64(h[24:])
	if vsize > maxSize {
		return nil, fmt.Errorf("%s: virtual size %#x at 0x18 too large", name, vsize)
	}
	d.size = int64(vsize)
	if cm := be.Uint32(h[32:]); cm != 0 {
		return nil, fmt.Errorf("%s: encrypted image (crypt_method %d at 0x20) not supported", name, cm)
	}
	l1n := uint64(be.Uint32(h[36:]))
	l1off := be.Uint64(h[40:])
	hlen := uint64(72)
	var incompat uint64
	if d.version == 3 {
		if n < 104 {
			return nil, fmt.Errorf("%s: v3 header truncated at 0x%x", name, n)
		}
		incompat = be.Uint64(h[72:])
		hlen = uint64(be.Uint32(h[100:]))
		if hlen < 104 || hlen%8 != 0 || hlen > uint64(fsize) || hlen > 1<<16 {
			return nil, fmt.Errorf("%s: v3 header_length %d at 0x64 invalid", name, hlen)
		}
		if hlen > 104 {
			switch h[104] {
			case 0:
			case 1:
				d.zstd = true
			default:
				return nil, fmt.Errorf("%s: compression_type %d at 0x68 not supported", name, h[104])
			}
		}
		if d.zstd && incompat&incCompType == 0 {
			return nil, fmt.Errorf("%s: compression_type zstd at 0x68 without its incompatible feature bit", name)
		}
	}

	// Header extensions: names for features, the backing format, and a
	// data file name we refuse below.
	feat := map[uint64]string{}
	var backFmt string
	extArea := uint64(fsize) - hlen
	if extArea > maxExtBytes {
		extArea = maxExtBytes
	}
	if backOff != 0 && backOff > hlen && backOff-hlen < extArea {
		extArea = backOff - hlen
	}
	ext := make([]byte, extArea)
	n, _ = r.ReadAt(ext, int64(hlen))
	ext = ext[:n]
	for p := 0; p+8 <= len(ext); {
		typ, l := be.Uint32(ext[p:]), int(be.Uint32(ext[p+4:]))
		if typ == extEnd {
			break
		}
		if l > len(ext)-p-8 {
			return nil, fmt.Errorf("%s: header extension %#x at 0x%x: length %d past the header area", name, typ, hlen+uint64(p), l)
		}
		data := ext[p+8 : p+8+l]
		switch typ {
		case extBackFmt:
			backFmt = string(data)
		case extFeatures:
			for q := 0; q+48 <= len(data); q += 48 {
				if data[q] == 0 {
					feat[uint64(data[q+1])] = strings.TrimRight(string(data[q+2:q+48]), "\x00")
				}
			}
		case extDataFile:
			return nil, fmt.Errorf("%s: external data file %q (extension at 0x%x) not supported", name, data, hlen+uint64(p))
		}
		p += 8 + (l+7)&^7
	}
	if incompat&incDirty != 0 {
		d.problems = append(d.problems, fmt.Sprintf("%s: dirty bit set (image not closed cleanly; refcounts may be stale)", name))
	}
	if incompat&incCorrupt != 0 {
		d.problems = append(d.problems, fmt.Sprintf("%s: corrupt bit set (QEMU found its metadata inconsistent)", name))
	}
	if incompat&incDataFile != 0 {
		return nil, fmt.Errorf("%s: incompatible feature external data file (0x48 bit 2) not supported", name)
	}
	if incompat&incExtL2 != 0 {
		return nil, fmt.Errorf("%s: incompatible feature extended L2 entries (subclusters, 0x48 bit 4) not supported", name)
	}
	if rest := incompat &^ (incDirty | incCorrupt | incCompType); rest != 0 {
		for b := uint64(0); b < 64; b++ {
			if rest&(1<<b) != 0 {
				fn := feat[b]
				if fn == "" {
					fn = "unknown"
				}
				return nil, fmt.Errorf("%s: incompatible feature bit %d (%s) at 0x48 not supported", name, b, fn)
			}
		}
	}

	// L1: enough entries to map the virtual size, within QEMU's bound.
	l2n := uint64(d.csize / 8)
	need := (vsize + uint64(d.csize)*l2n - 1) / (uint64(d.csize) * l2n)
	if l1n < need {
		return nil, fmt.Errorf("%s: l1_size %d at 0x24 too small for virtual size %d (needs %d)", name, l1n, vsize, need)
	}
	if l1n*8 > maxL1Bytes {
		return nil, fmt.Errorf("%s: l1_size %d at 0x24 too large", name, l1n)
	}
	if need > 0 {
		if l1off%uint64(d.csize) != 0 || l1off >= uint64(fsize) || need*8 > uint64(fsize)-l1off {
			return nil, fmt.Errorf("%s: L1 table at 0x%x (%d entries) outside the file or unaligned", name, l1off, need)
		}
		b := make([]byte, need*8)
		if _, err := r.ReadAt(b, int64(l1off)); err != nil {
			return nil, fmt.Errorf("%s: reading L1 table at 0x%x: %v", name, l1off, err)
		}
		d.l1 = make([]uint64, need)
		for i := range d.l1 {
			d.l1[i] = be.Uint64(b[i*8:])
		}
	}

	if backOff != 0 {
		if backLen == 0 || backLen > 1023 || backOff > uint64(fsize) || uint64(backLen) > uint64(fsize)-backOff {
			return nil, fmt.Errorf("%s: backing file name at 0x%x (%d bytes) invalid", name, backOff, backLen)
		}
		bn := make([]byte, backLen)
		if _, err := r.ReadAt(bn, int64(backOff)); err != nil {
			return nil, fmt.Errorf("%s: reading backing file name at 0x%x: %v", name, backOff, err)
		}
		if err := d.openBacking(string(bn), backFmt, open, seen); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// openBacking opens the backing file named rec: beside the image first,
// then as recorded.
func (d *Disk) openBacking(rec, format string, open OpenFunc, seen map[string]bool) error {
	if open == nil {
		return fmt.Errorf("%s: needs backing file %q but no opener was given", d.name, rec)
	}
	if format != "" && format != "raw" && format != "qcow2" {
		return fmt.Errorf("%s: backing file %q has format %q, not supported", d.name, rec, format)
	}
	cands := []string{filepath.Join(filepath.Dir(d.name), filepath.Base(rec))}
	if rec != cands[0] {
		p := rec
		if !filepath.IsAbs(p) {
			// QEMU resolves a relative name against the image's directory.
			p = filepath.Join(filepath.Dir(d.name), rec)
		}
		cands = append(cands, p)
	}
	var firstErr error
	for _, p := range cands {
		br, bsize, err := open(p)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.files = append(d.files, p)
		if format == "qcow2" || (format == "" && Detect(br, bsize)) {
			bd, err := openDepth(br, bsize, p, open, seen)
			if err != nil {
				return fmt.Errorf("%s: backing file: %w", d.name, err)
			}
			d.files = append(d.files, bd.files...)
			d.problems = append(d.problems, bd.problems...)
			d.backing, d.backSize = bd, bd.size
		} else {
			d.backing, d.backSize = br, bsize
		}
		return nil
	}
	return fmt.Errorf("%s: backing file %q not found: %v", d.name, rec, firstErr)
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Format is "qcow2-v2" or "qcow2-v3".
func (d *Disk) Format() string { return fmt.Sprintf("qcow2-v%d", d.version) }

// Files lists the backing files opened, nearest first.
func (d *Disk) Files() []string { return append([]string(nil), d.files...) }

// Problems lists non-fatal findings, one line each.
func (d *Disk) Problems() []string { return append([]string(nil), d.problems...) }

// l2 returns the L2 table at host offset off, from the cache if it can.
func (d *Disk) l2(off uint64, l1i int) ([]uint64, error) {
	d.mu.Lock()
	if el, ok := d.l2s[off]; ok {
		d.lru.MoveToFront(el)
		d.mu.Unlock()
		return el.Value.(*l2tab).e, nil
	}
	d.mu.Unlock()
	if off%uint64(d.csize) != 0 || off >= uint64(d.fsize) || uint64(d.csize) > uint64(d.fsize)-off {
		return nil, fmt.Errorf("%s: L1 entry %d: L2 table at 0x%x outside the file or unaligned", d.name, l1i, off)
	}
	b := make([]byte, d.csize)
	if _, err := d.r.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("%s: reading L2 table at 0x%x: %v", d.name, off, err)
	}
	e := make([]uint64, d.csize/8)
	for i := range e {
		e[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.l2s[off]; !ok {
		d.l2s[off] = d.lru.PushFront(&l2tab{off, e})
		for int64(d.lru.Len())*d.csize > l2CacheMax && d.lru.Len() > 1 {
			old := d.lru.Remove(d.lru.Back()).(*l2tab)
			delete(d.l2s, old.off)
		}
	}
	return e, nil
}

// ReadAt reads virtual-disk bytes; unallocated clusters read from the
// backing file, or as zeros without one.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", d.name, off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > d.size-off {
		p = p[:d.size-off]
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		in := pos & (d.csize - 1)
		n := int(min(d.csize-in, int64(len(p)-done)))
		if err := d.readCluster(p[done:done+n], pos, in); err != nil {
			return done, err
		}
		done += n
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

func (d *Disk) readCluster(p []byte, pos, in int64) error {
	ci := uint64(pos >> d.cbits)
	l2n := uint64(d.csize / 8)
	l1i := int(ci / l2n)
	var ent uint64
	if l2off := d.l1[l1i] & offMask; l2off != 0 {
		t, err := d.l2(l2off, l1i)
		if err != nil {
			return err
		}
		ent = t[ci%l2n]
	}
	switch {
	case ent&flagCmp != 0:
		c, err := d.compressed(ent, ci)
		if err != nil {
			return err
		}
		copy(p, c[in:])
		return nil
	case d.version == 3 && ent&flagZero != 0:
		clear(p)
		return nil
	case ent&offMask == 0:
		return d.fromBacking(p, pos)
	}
	host := ent & offMask
	if host%uint64(d.csize) != 0 || host >= uint64(d.fsize) {
		return fmt.Errorf("%s: cluster %d: host offset 0x%x unaligned or past end of file", d.name, ci, host)
	}
	at := int64(host) + in
	n, err := d.r.ReadAt(p, at)
	if n < len(p) {
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: reading cluster %d at 0x%x: %v", d.name, ci, at, err)
		}
		// QEMU reads past the end of the host file as zeros.
		clear(p[n:])
	}
	return nil
}

func (d *Disk) fromBacking(p []byte, pos int64) error {
	n := 0
	if d.backing != nil && pos < d.backSize {
		m := int(min(int64(len(p)), d.backSize-pos))
		var err error
		n, err = d.backing.ReadAt(p[:m], pos)
		if n < m && err != nil && err != io.EOF {
			return fmt.Errorf("%s: backing file at 0x%x: %w", d.name, pos, err)
		}
	}
	clear(p[n:])
	return nil
}

// compressed returns the decompressed cluster described by L2 entry ent;
// the last one is cached because reads smaller than a cluster are common.
func (d *Disk) compressed(ent, ci uint64) ([]byte, error) {
	d.mu.Lock()
	if d.cmp != nil && d.cmpAt == ent {
		c := d.cmp
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	x := 62 - (d.cbits - 8)
	host := ent & (1<<x - 1)
	sectors := (ent>>x)&(1<<(62-x)-1) + 1
	clen := sectors*512 - host%512
	if host >= uint64(d.fsize) {
		return nil, fmt.Errorf("%s: compressed cluster %d at 0x%x past end of file", d.name, ci, host)
	}
	clen = min(clen, uint64(d.fsize)-host)
	src := make([]byte, clen)
	if n, err := d.r.ReadAt(src, int64(host)); n < len(src) {
		return nil, fmt.Errorf("%s: reading compressed cluster %d at 0x%x: %v", d.name, ci, host, err)
	}
	out := make([]byte, d.csize)
	if d.zstd {
		dec, err := zdec.DecodeAll(src, out[:0])
		if err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && len(dec) >= int(d.csize)) {
			// QEMU also accepts trailing bytes after the frame; DecodeAll
			// does not, so retry with a stream decoder on failure.
			dec, err = zstdStream(src, d.csize)
			if err != nil {
				return nil, fmt.Errorf("%s: compressed cluster %d at 0x%x: zstd: %v", d.name, ci, host, err)
			}
		}
		if len(dec) < int(d.csize) {
			return nil, fmt.Errorf("%s: compressed cluster %d at 0x%x: zstd gives %d bytes, want %d", d.name, ci, host, len(dec), d.csize)
		}
		out = dec[:d.csize]
	} else {
		fr := flate.NewReader(bytes.NewReader(src))
		if _, err := io.ReadFull(fr, out); err != nil {
			return nil, fmt.Errorf("%s: compressed cluster %d at 0x%x: deflate: %v", d.name, ci, host, err)
		}
	}
	d.mu.Lock()
	d.cmpAt, d.cmp = ent, out
	d.mu.Unlock()
	return out, nil
}

func zstdStream(src []byte, size int64) ([]byte, error) {
	zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(8<<20))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, err
	}
	return out, nil
}

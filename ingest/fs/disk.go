package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Opener opens the file system on one volume of size bytes, read-only.
// fat.Open, iso.Open, ntfs.Open and ext.Open have this shape.
type Opener func(r io.ReaderAt, size int64) (FileSystem, error)

// Option configures OpenDisk.
type Option func(*diskConfig)

type diskConfig struct {
	openers map[string]Opener
}

// WithOpener makes OpenDisk open volumes of a file-system family ("fat",
// "ntfs", "ext", "iso9660"; see Family) with open. Without one, such volumes
// are listed with their detected type and left whole to the carver. Package
// ingest/fs cannot import its readers (they import it), so package
// ingest/fs/probe passes them all: callers normally use probe.OpenDisk.
func WithOpener(family string, open Opener) Option {
	return func(c *diskConfig) { c.openers[family] = open }
}

// Family maps a detected file-system name to the reader family that opens
// it: "fat12"/"fat16"/"fat32" -> "fat", "ext2"/"ext3"/"ext4" -> "ext",
// "hfsx" -> "hfsplus".
func Family(name string) string {
	switch {
	case strings.HasPrefix(name, "fat"):
		return "fat"
	case strings.HasPrefix(name, "ext"):
		return "ext"
	case name == "hfsx":
		return "hfsplus"
	}
	return name
}

// ErrNoReader says no reader for a detected file system was configured.
var ErrNoReader = errors.New("fs: no reader for this file system")

// Disk is a disk image with its partitions and their opened file systems.
// Open, Unallocated and Problems may be called from several goroutines once
// OpenDisk returns, provided the underlying io.ReaderAt allows concurrent
// reads and every FileSystem's Open does; Walk runs one at a time.
type Disk struct {
	r          io.ReaderAt
	Size       int64       // bytes in the image
	Scheme     string      // "mbr", "gpt" or "none"
	Partitions []Partition // data partitions in table order

	mu       sync.Mutex
	problems []string
	opts     []Option // as opened: media inside its files open with the same readers
	window   *Range   // set on a view of one volume (Only): Unallocated stays inside it
}

// Options returns the options the disk was opened with, so that a disk
// inside one of its files is read the same way (the same readers, the same
// time zone for local times).
func (d *Disk) Options() []Option { return d.opts }

// Media returns the disk's bytes, the reader Unallocated's offsets are in.
func (d *Disk) Media() io.ReaderAt { return d.r }

// problem records damage once: Walk and Unallocated may run more than once.
func (d *Disk) problem(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.problems, s) {
		d.problems = append(d.problems, s)
	}
}

// OpenDisk reads the partition table of an image of size bytes and opens the
// file system of every partition with the configured openers. It fails only
// when the image cannot be read at all; unreadable partitions carry their
// reason in Partition.Error.
func OpenDisk(r io.ReaderAt, size int64, opts ...Option) (*Disk, error) {
	cfg := diskConfig{openers: map[string]Opener{}}
	for _, o := range opts {
		o(&cfg)
	}
	t, err := ReadPartitions(r, size)
	if err != nil {
		return nil, err
	}
	d := &Disk{r: r, Size: size, Scheme: t.Scheme, Partitions: t.Partitions, problems: t.Problems, opts: opts}
	for i := range d.Partitions {
		p := &d.Partitions[i]
		if p.Error != "" || p.Start >= size {
			continue
		}
		open := cfg.openers[Family(p.FileSystem)]
		if open == nil {
			if name, ok := Unread[p.FileSystem]; ok {
				p.Error = fmt.Sprintf("%s recognised (signature in the volume at %#x), not read by evidx; whole partition left to the carver", name, p.Start)
				d.problem(fmt.Sprintf("partition %d at %#x: %s", p.Index, p.Start, p.Error))
			} else if p.FileSystem != fsUnknown {
				p.Error = fmt.Sprintf("%v: %s; whole partition left to the carver", ErrNoReader, p.FileSystem)
				d.problem(fmt.Sprintf("partition %d at %#x: %s", p.Index, p.Start, p.Error))
			} else {
				p.Error = "no file system recognised; whole partition left to the carver"
			}
			continue
		}
		avail := min(p.Size, size-p.Start)
		fsys, err := safeOpen(open, io.NewSectionReader(r, p.Start, avail), avail)
		if err != nil {
			p.Error = fmt.Sprintf("partition %d at %#x: %v", p.Index, p.Start, err)
			continue
		}
		p.FS = fsys
		if t := fsys.Type(); t != "" {
			p.FileSystem = t
		}
	}
	return d, nil
}

// safeOpen calls a reader's Open and turns a panic (third-party parsers have
// panicked on corrupt input) into an error.
func safeOpen(open Opener, r io.ReaderAt, size int64) (fsys FileSystem, err error) {
	defer func() {
		if v := recover(); v != nil {
			fsys, err = nil, fmt.Errorf("fs: reader panicked: %v", v)
		}
	}()
	return open(r, size)
}

// Partition returns the partition with the given Index, or nil.
func (d *Disk) Partition(index int) *Partition {
	for i := range d.Partitions {
		if d.Partitions[i].Index == index {
			return &d.Partitions[i]
		}
	}
	return nil
}

// Walk calls fn for every file of every readable partition, partition by
// partition in table order. The File passed to fn is a copy whose Runs are
// image offsets; fn may keep it. A panic inside a reader becomes a problem
// and the walk goes on with the next partition; an error from fn stops it.
func (d *Disk) Walk(ctx context.Context, fn func(part int, f *File) error) error {
	for i := range d.Partitions {
		p := &d.Partitions[i]
		if p.FS == nil {
			continue
		}
		err := safeWalk(ctx, p.FS, func(f *File) error {
			g := *f
			g.Runs = shiftRuns(f.Runs, p.Start)
			return fn(p.Index, &g)
		})
		var pe *readerPanic
		if errors.As(err, &pe) {
			d.problem(fmt.Sprintf("partition %d at %#x: %v", p.Index, p.Start, err))
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type readerPanic struct{ v any }

func (e *readerPanic) Error() string { return fmt.Sprintf("fs: reader panicked: %v", e.v) }

func safeWalk(ctx context.Context, fsys FileSystem, fn func(*File) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &readerPanic{v}
		}
	}()
	return fsys.Walk(ctx, fn)
}

func shiftRuns(runs []Run, by int64) []Run {
	if runs == nil {
		return nil
	}
	out := make([]Run, len(runs))
	for i, r := range runs {
		out[i] = r
		if !r.Sparse {
			out[i].Offset += by
		}
	}
	return out
}

// Open returns the content of a file that Walk passed for partition part.
func (d *Disk) Open(part int, f *File) (rd io.Reader, err error) {
	p := d.Partition(part)
	if p == nil || p.FS == nil {
		return nil, fmt.Errorf("fs: partition %d has no readable file system", part)
	}
	g := *f
	g.Runs = shiftRuns(f.Runs, -p.Start)
	defer func() {
		if v := recover(); v != nil {
			rd, err = nil, &readerPanic{v}
		}
	}()
	return p.FS.Open(&g)
}

// ErrNoRandomAccess says a file's content can only be read in order (an
// NTFS-compressed or encrypted stream): OpenAt cannot serve it.
var ErrNoRandomAccess = errors.New("fs: content readable only in order (compressed or encrypted)")

// OpenAt returns random access to the content of a file that Walk passed
// for partition part: what the file system's Open returns when it allows
// it, else the file's byte runs read straight from the image for the file
// systems whose Open reads exactly those runs (FAT, ext, ISO 9660).
// A file inside a file opens as a new layer through it.
func (d *Disk) OpenAt(part int, f *File) (io.ReaderAt, error) {
	p := d.Partition(part)
	if p == nil || p.FS == nil {
		return nil, fmt.Errorf("fs: partition %d has no readable file system", part)
	}
	rd, err := d.Open(part, f)
	if err != nil {
		return nil, err
	}
	if ra, ok := rd.(io.ReaderAt); ok {
		return ra, nil
	}
	switch Family(p.FileSystem) {
	case "fat", "ext", "iso9660":
		var mapped int64
		for _, r := range f.Runs {
			mapped = max(mapped, r.Logical+r.Length)
		}
		if mapped >= f.Size {
			return NewRunReaderAt(d.r, f.Runs, f.Size, f.Path), nil
		}
	}
	return nil, fmt.Errorf("%s: %w", f.Path, ErrNoRandomAccess)
}

// Problems lists damage found in the partition tables and, once Walk has
// run, in every file system, each naming its partition and offset.
func (d *Disk) Problems() []string {
	d.mu.Lock()
	out := slices.Clone(d.problems)
	d.mu.Unlock()
	for _, p := range d.Partitions {
		if p.FS == nil {
			continue
		}
		for _, s := range p.FS.Problems() {
			out = append(out, fmt.Sprintf("partition %d (%s at %#x): %s", p.Index, p.FileSystem, p.Start, s))
		}
	}
	return out
}

// Unallocated returns the image byte ranges the carver should search, sorted
// and merged: each file system's unallocated space, whole partitions whose
// file system is unknown or unreadable, and space outside every partition
// (including the partition tables and gaps between partitions).
func (d *Disk) Unallocated() []Range {
	var rs []Range
	covered := make([]Range, 0, len(d.Partitions))
	for _, p := range d.Partitions {
		start, end := p.Start, min(p.Start+p.Size, d.Size)
		if p.Error != "" && p.Size == 0 || start >= end {
			continue
		}
		covered = append(covered, Range{Off: start, Len: end - start})
		if p.FS == nil {
			rs = append(rs, Range{Off: start, Len: end - start})
			continue
		}
		un, err := safeUnallocated(p.FS)
		if err != nil {
			d.problem(fmt.Sprintf("partition %d at %#x: unallocated space unknown, whole partition given to the carver: %v", p.Index, p.Start, err))
			rs = append(rs, Range{Off: start, Len: end - start})
			continue
		}
		for _, u := range un {
			a, b := start+u.Off, start+u.Off+u.Len
			a, b = max(a, start), min(b, end)
			if a < b {
				rs = append(rs, Range{Off: a, Len: b - a})
			}
		}
	}
	covered = MergeRanges(covered)
	pos := int64(0)
	for _, c := range covered {
		if c.Off > pos {
			rs = append(rs, Range{Off: pos, Len: c.Off - pos})
		}
		pos = max(pos, c.Off+c.Len)
	}
	if pos < d.Size {
		rs = append(rs, Range{Off: pos, Len: d.Size - pos})
	}
	return d.clip(MergeRanges(rs))
}

// safeUnallocated calls a reader's Unallocated with a panic turned into an
// error, which gives the whole partition to the carver.
func safeUnallocated(fsys FileSystem) (rs []Range, err error) {
	defer func() {
		if v := recover(); v != nil {
			rs, err = nil, &readerPanic{v}
		}
	}()
	return fsys.Unallocated()
}

// MergeRanges sorts ranges and joins overlapping or touching ones; empty
// ranges are dropped. It reorders rs in place and returns a new slice.
func MergeRanges(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	var out []Range
	for _, r := range rs {
		if r.Len <= 0 {
			continue
		}
		if n := len(out); n > 0 && r.Off <= out[n-1].Off+out[n-1].Len {
			out[n-1].Len = max(out[n-1].Len, r.Off+r.Len-out[n-1].Off)
			continue
		}
		out = append(out, r)
	}
	return out
}

// RangeSet collects the free byte ranges a reader finds, unit by unit
// (clusters, blocks) from its allocation bitmap: a unit that follows the
// last one extends it, so a bitmap of millions of free units costs a
// range per free run. Ranges returns them sorted and merged.
type RangeSet struct{ rs []Range }

// Add adds the range [off, off+n).
func (s *RangeSet) Add(off, n int64) {
	if k := len(s.rs); k > 0 && s.rs[k-1].Off+s.rs[k-1].Len == off {
		s.rs[k-1].Len += n
		return
	}
	s.rs = append(s.rs, Range{Off: off, Len: n})
}

// Ranges returns the ranges added, sorted and merged (MergeRanges).
func (s *RangeSet) Ranges() []Range { return MergeRanges(s.rs) }

package fs

import (
	"fmt"
	"io"
	"strings"
)

// SectorSize is the unit of a volume offset given in sectors, as fls -o
// and icat -o take it.
const SectorSize = 512

// Select returns the partition a volume choice names: index when not 0
// (Partition.Index, as ls prints "pN"), else the one starting at sector
// when sector is 0 or more (fls -o: 512-byte sectors from the start of
// the image). It fails when none matches or both are given.
func (d *Disk) Select(index int, sector int64) (*Partition, error) {
	switch {
	case index != 0 && sector >= 0:
		return nil, fmt.Errorf("give a partition or a sector offset, not both")
	case index < 0:
		return nil, fmt.Errorf("partition %d: partitions count from 1", index)
	case index != 0:
		if p := d.Partition(index); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("no partition %d (%s)", index, d.volumeList())
	case sector >= 0:
		for i := range d.Partitions {
			if d.Partitions[i].Start == sector*SectorSize {
				return &d.Partitions[i], nil
			}
		}
		return nil, fmt.Errorf("no volume starts at sector %d (%s)", sector, d.volumeList())
	}
	return nil, fmt.Errorf("no volume chosen")
}

// volumeList names the volumes for an error: "p1 at sector 2048, ...".
func (d *Disk) volumeList() string {
	var s []string
	for _, p := range d.Partitions {
		s = append(s, fmt.Sprintf("p%d at sector %d", p.Index, p.Start/SectorSize))
	}
	if len(s) == 0 {
		return "the disk has no volumes"
	}
	return "volumes: " + strings.Join(s, ", ")
}

// Only returns a view of d holding partition index alone: its Walk, Open
// and Problems see that volume only, and Unallocated gives the free space
// inside it. The view shares d's image and opened file system.
func (d *Disk) Only(index int) (*Disk, error) {
	p := d.Partition(index)
	if p == nil {
		return nil, fmt.Errorf("no partition %d (%s)", index, d.volumeList())
	}
	end := min(p.Start+p.Size, d.Size)
	return &Disk{r: d.r, Size: d.Size, Scheme: d.Scheme, Partitions: []Partition{*p}, opts: d.opts,
		window: &Range{Off: p.Start, Len: max(0, end-p.Start)}}, nil
}

// clip keeps the parts of rs inside the view's window.
func (d *Disk) clip(rs []Range) []Range {
	if d.window == nil {
		return rs
	}
	var out []Range
	for _, r := range rs {
		a, b := max(r.Off, d.window.Off), min(r.Off+r.Len, d.window.Off+d.window.Len)
		if a < b {
			out = append(out, Range{Off: a, Len: b - a})
		}
	}
	return out
}

// ReadRuns returns the content of f read straight from its byte runs (image
// offsets, as Walk gives them): for entries whose reader's Open does not
// serve them, such as an ext directory's blocks, which icat writes. It
// fails when the runs do not cover f.Size (FAT reports no directory runs).
func (d *Disk) ReadRuns(f *File) (io.ReaderAt, error) {
	var mapped int64
	for _, r := range f.Runs {
		mapped = max(mapped, r.Logical+r.Length)
	}
	if f.Size > 0 && mapped < f.Size {
		return nil, fmt.Errorf("%s: %d of %d bytes mapped to the image", f.Path, mapped, f.Size)
	}
	return NewRunReaderAt(d.r, f.Runs, f.Size, f.Path), nil
}

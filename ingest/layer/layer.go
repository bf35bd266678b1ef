// Package layer walks evidence layer by layer: the disk's file systems,
// and inside them every file whose content is itself media — a virtual
// disk (VHD, VHDX, VMDK, qcow2), a partitioned disk image or a file-system
// image — opened as a new layer whose files have paths through the file
// that holds them ("/VMs/win.vhdx/p1:/Users/a/leak.csv").
//
// Depth and the number of layers are bounded: a nested-container bomb is
// a recorded problem, not a hang.
package layer

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/source"
)

// Limits on nesting.
const (
	MaxDepth  = 4   // layers inside layers
	MaxLayers = 256 // inner layers opened per walk
	minInner  = 64 << 10
)

// File is one entry of a layered walk.
type File struct {
	*fs.File         // Path from the top partition's root; Runs only on the top layer (image offsets)
	Partition int    // the top-level partition the entry is under
	Layer     string // "" on the top disk, else the inner layer's format and path ("vhd-dynamic /VMs/a.vhd")
	open      func() (io.Reader, error)
}

// Open returns the entry's content.
func (f *File) Open() (io.Reader, error) { return f.open() }

// Walk calls fn for every file of disk and of every layer found inside it,
// depth first: an inner layer's files come right after the file that holds
// it. It returns the problems of the inner layers (what could not be
// opened, limits reached), each naming the path; an error from fn stops it.
func Walk(ctx context.Context, disk *fs.Disk, fn func(*File) error) ([]string, error) {
	return WalkInner(ctx, disk, fn, nil)
}

// Inner is a layer opened inside a file of the evidence.
type Inner struct {
	Path      string   // the file holding it, as a layered path from the top partition ("p1:/VMs/a.vhd")
	Format    string   // "vhd-dynamic", "raw", ...
	Disk      *fs.Disk // its partitions and file systems; Disk.Media() its bytes
	Partition int      // the top-level partition it is under
}

// WalkInner is Walk that also calls inner (when not nil) for every inner
// layer once its files are walked, so the caller can carve its free space.
func WalkInner(ctx context.Context, disk *fs.Disk, fn func(*File) error, inner func(Inner) error) ([]string, error) {
	w := &walker{fn: fn, onInner: inner}
	err := w.walk(ctx, disk, 0, "", -1, "")
	return w.problems, err
}

type walker struct {
	fn       func(*File) error
	onInner  func(Inner) error
	problems []string
	layers   int
}

func (w *walker) problem(format string, a ...any) {
	w.problems = append(w.problems, fmt.Sprintf(format, a...))
}

// walk walks d; prefix is the path of the file holding d ("" at the top),
// top the top-level partition (-1 at the top).
func (w *walker) walk(ctx context.Context, d *fs.Disk, depth int, prefix string, top int, desc string) error {
	return d.Walk(ctx, func(part int, f *fs.File) error {
		e, orig := entry(d, part, f, depth, prefix, top)
		e.Layer = desc
		if err := w.fn(e); err != nil {
			return err
		}
		if orig.Type != "file" || !orig.Recoverable || orig.Size < minInner && !isZip(d, part, orig) {
			return nil
		}
		return w.inner(ctx, d, part, orig, e, depth)
	})
}

// entry makes the layered entry of file f of partition part of d, depth
// layers down inside the file at prefix (top: its top-level partition).
// fn's consumers may write to the entry (a hashing error in Err) while
// the layer below is opened: that, and Open, read orig, a copy of f.
func entry(d *fs.Disk, part int, f *fs.File, depth int, prefix string, top int) (e *File, orig *fs.File) {
	orig = new(fs.File)
	*orig = *f
	g := *f
	e = &File{File: &g, Partition: part}
	if depth > 0 {
		g.Path = fmt.Sprintf("%s/p%d:%s", prefix, part, f.Path)
		g.Runs = nil // offsets inside the inner disk, not the image's
		e.Partition = top
	}
	e.open = func() (io.Reader, error) { return d.Open(part, orig) }
	return e, orig
}

// inner opens f as a layer when its content is media, and walks it.
func (w *walker) inner(ctx context.Context, d *fs.Disk, part int, f *fs.File, e *File, depth int) error {
	name := e.File.Path
	if depth+1 > MaxDepth || w.layers >= MaxLayers {
		if format := mediaFormat(d, part, f); format != "" {
			w.problem("p%d:%s: %s media inside not opened: more than %d layers deep or %d layers in all", e.Partition, name, format, MaxDepth, MaxLayers)
		}
		return nil
	}
	inner, format, problems := open(d, part, f)
	for _, p := range problems {
		w.problem("p%d:%s: %s", e.Partition, name, p)
	}
	if inner == nil {
		return nil
	}
	w.layers++
	err := w.walk(ctx, inner, depth+1, name, e.Partition, format+" "+name)
	for _, p := range diskProblems(inner) {
		w.problem("p%d:%s: %s", e.Partition, name, p)
	}
	if err == nil && w.onInner != nil {
		err = w.onInner(Inner{Path: fmt.Sprintf("p%d:%s", e.Partition, name), Format: format, Disk: inner, Partition: e.Partition})
	}
	return err
}

// open opens file f of partition part of d as a disk when its content is
// media: a virtual disk, or a plain image holding a partition table or a
// file system evidx reads. It returns nil when it is not media (or not
// readable at random), with the problems met (what was recognised but
// could not be opened, the inner layer's damage).
func open(d *fs.Disk, part int, f *fs.File) (inner *fs.Disk, format string, problems []string) {
	ra, err := d.OpenAt(part, f)
	if err != nil {
		return nil, "", nil // content readable only in order: nothing to open at random
	}
	vd, err := source.OpenInner(ra, f.Size, f.Path)
	format, size := "raw", f.Size
	var media io.ReaderAt = ra
	switch {
	case err != nil:
		return nil, "", []string{fmt.Sprintf("virtual disk recognised, not opened: %v", err)}
	case vd != nil:
		media, size, format = vd, vd.Size(), vd.Format()
		problems = append(problems, vd.Problems()...)
	default:
		if !looksLikeMedia(ra, size) {
			return nil, "", nil
		}
	}
	inner, err = fs.OpenDisk(media, size, d.Options()...)
	if err != nil {
		return nil, format, append(problems, fmt.Sprintf("%s media inside not read: %v", format, err))
	}
	if len(inner.Partitions) == 1 && inner.Partitions[0].FileSystem == "zip" {
		if inner.Partitions[0].FS == nil {
			return nil, "", nil // an office document, or a ZIP whose directory does not read: a file, not a layer
		}
		format = "zip"
	}
	for _, p := range inner.Partitions {
		if p.Error != "" {
			problems = append(problems, fmt.Sprintf("partition %d: %s", p.Index, p.Error))
		}
	}
	return inner, format, problems
}

// diskProblems are an inner disk's problems once walked, but for the
// plain absence of a file system (a blank virtual disk is not damage).
func diskProblems(d *fs.Disk) []string {
	var out []string
	for _, p := range d.Problems() {
		if !strings.Contains(p, "no file system recognised") {
			out = append(out, p)
		}
	}
	return out
}

// mediaFormat names the media f holds without opening what is inside
// ("" when it is not media), for the limit problem.
func mediaFormat(d *fs.Disk, part int, f *fs.File) string {
	ra, err := d.OpenAt(part, f)
	if err != nil {
		return ""
	}
	if vd, err := source.OpenInner(ra, f.Size, f.Path); err != nil || vd != nil {
		if vd != nil {
			return vd.Format()
		}
		return "virtual disk"
	}
	if looksLikeMedia(ra, f.Size) {
		return "raw"
	}
	return ""
}

// isZip says whether a small file is a ZIP archive: archives open as
// layers at any size, disks only from minInner.
func isZip(d *fs.Disk, part int, f *fs.File) bool {
	if f.Size < 22 {
		return false
	}
	ra, err := d.OpenAt(part, f)
	if err != nil {
		return false
	}
	var b [4]byte
	n, _ := ra.ReadAt(b[:], 0)
	return n == 4 && string(b[:]) == "PK\x03\x04"
}

// looksLikeMedia says whether a plain file holds a partition table or a
// file system evidx reads (a dd image, an ISO, a FAT image on a stick).
func looksLikeMedia(r io.ReaderAt, size int64) bool {
	if fs.Family(fs.DetectFileSystem(r, size)) != "unknown" {
		return true
	}
	t, err := fs.ReadPartitions(r, size)
	return err == nil && t.Scheme != "none" && len(t.Partitions) > 0
}

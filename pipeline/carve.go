package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evidx/evidx/carve"
	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/layer"
	"github.com/evidx/evidx/ingest/source"
)

// CarveOptions says what CarveImage carves and where it writes.
type CarveOptions struct {
	Out           string   // output directory, never inside the evidence path
	Whole         bool     // the whole image even when a file system is readable
	AnyOffset     bool     // headers at every byte, not only sector starts
	Types         []string // only these types
	SkipRecovered bool     // not the extents of deleted files the file system recovers
	NoFragments   bool     // no following a file across allocated blocks
	Workers       int
	Tool          string // the tool's version, for the manifest
	Progress      Progress
}

// CarvedFile is one manifest entry.
type CarvedFile struct {
	// Layer is "" for the image, else the layered path of the file holding
	// the disk the file was carved from ("p1:/VMs/a.vhd"); Offset and
	// ByteRuns are then bytes of that disk.
	Layer    string      `json:"layer,omitempty"`
	Offset   int64       `json:"offset"`
	Length   int64       `json:"length"`
	Type     string      `json:"type"`
	Ext      string      `json:"ext"`
	SHA256   string      `json:"sha256"`
	MD5      string      `json:"md5"`
	Path     string      `json:"path"`
	ByteRuns []carve.Run `json:"byte_runs"`
}

// CarveResult is the manifest of a carve run (OUT/manifest.json and the
// JSON of `evidx carve`).
type CarveResult struct {
	Image         string         `json:"image"`
	Size          int64          `json:"size"`
	Mode          string         `json:"mode"` // "unallocated" or "whole"
	Ranges        int            `json:"ranges"`
	BytesSearched int64          `json:"bytes_searched"`
	BytesCarved   int64          `json:"bytes_carved"`
	Seconds       float64        `json:"seconds"`
	MBPerSecond   float64        `json:"mb_per_s"`
	Counts        map[string]int `json:"counts"`
	Fragmented    int            `json:"fragmented"`
	Problems      []string       `json:"problems"`
	Carved        []CarvedFile   `json:"carved"`
	Tool          string         `json:"tool_version"`
}

// ErrOutInEvidence refuses an output directory inside the evidence path.
var ErrOutInEvidence = errors.New("output directory lies inside the evidence path")

// CheckOutDir refuses an output directory that is the evidence path or
// lies inside it: nothing may ever be written into evidence.
func CheckOutDir(image, out string) error {
	ia, err := filepath.Abs(image)
	if err != nil {
		return err
	}
	oa, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if r, _ := filepath.EvalSymlinks(ia); r != "" {
		ia = r
	}
	if r, _ := filepath.EvalSymlinks(oa); r != "" {
		oa = r
	}
	rel, err := filepath.Rel(ia, oa)
	if err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return fmt.Errorf("%w: %s in %s", ErrOutInEvidence, out, image)
	}
	return nil
}

// CarveImage recovers files from an image by their structure, as PhotoRec
// does: from the unallocated space of every readable file system and
// everything outside them, or from the whole image (opts.Whole, or no
// file system readable). Files go to OUT/<type>/<offset>.<ext> (0600),
// the manifest to OUT/manifest.json.
func CarveImage(ctx context.Context, image string, opts CarveOptions) (*CarveResult, error) {
	if err := CheckOutDir(image, opts.Out); err != nil {
		return nil, err
	}
	img, err := source.Open(image) // read-only: evidence is never written
	if err != nil {
		return nil, err
	}
	defer img.Close()
	size := img.Size()
	// A bad chunk or sector reads as zeros and is named; carving goes on.
	media := source.NewTolerant(img, size)
	res := &CarveResult{Image: image, Size: size, Mode: "whole", Counts: map[string]int{}, Problems: []string{}, Carved: []CarvedFile{}, Tool: opts.Tool}
	targets, err := carveRanges(ctx, media, opts, res)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		res.Ranges += len(t.ranges)
		for _, r := range t.ranges {
			res.BytesSearched += r.Len
		}
	}
	if err := os.MkdirAll(opts.Out, 0o700); err != nil {
		return nil, err
	}
	prog := orNone(opts.Progress)
	prog.Stage("carving", "bytes", res.BytesSearched)
	copts := carve.Options{AnyOffset: opts.AnyOffset, Types: opts.Types, NoFragments: opts.NoFragments, Workers: opts.Workers, Progress: prog.Add}
	start := time.Now()
	made := map[string]bool{}
	for _, t := range targets {
		base := opts.Out
		if t.layer != "" {
			// One directory per inner disk, its name escaped: a name
			// from evidence never leaves OUT.
			base = filepath.Join(opts.Out, "layers", custody.EscapeName(t.layer))
		}
		err = carve.Carve(ctx, t.media, t.ranges, copts, func(c carve.Carved) error {
			dir := filepath.Join(base, c.Type) // type names are ours, never from evidence
			if !made[dir] {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
				made[dir] = true
			}
			name := filepath.Join(dir, strconv.FormatInt(c.Offset, 10)+"."+c.Ext)
			if err := writeNew(name, carve.Open(t.media, c)); err != nil {
				return err
			}
			rel, _ := filepath.Rel(opts.Out, name)
			res.Carved = append(res.Carved, CarvedFile{t.layer, c.Offset, c.Length, c.Type, c.Ext, c.SHA256, c.MD5, filepath.ToSlash(rel), c.Runs})
			res.Counts[c.Type]++
			res.BytesCarved += c.Length
			if len(c.Runs) > 1 {
				res.Fragmented++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	res.Problems = append(res.Problems, media.Problems()...)
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.MBPerSecond = float64(res.BytesSearched) / 1e6 / res.Seconds
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // names as they are, like every JSON evidx prints
	if err := enc.Encode(res); err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(opts.Out, "manifest.json"), &b); err != nil {
		return nil, err
	}
	return res, nil
}

// carveTarget is one disk to carve: the image, or a disk inside one of
// its files.
type carveTarget struct {
	layer  string // "" for the image, else the file holding the disk
	media  io.ReaderAt
	ranges []carve.Run
}

// carveRanges decides what to carve: the disk's unallocated space when a
// file system is readable (less the recoverable deleted files with
// SkipRecovered), and that of every disk inside its files (virtual disks,
// images), else the whole image, saying why in res.
func carveRanges(ctx context.Context, img io.ReaderAt, opts CarveOptions, res *CarveResult) ([]carveTarget, error) {
	whole := []carveTarget{{media: img, ranges: []carve.Run{{Off: 0, Len: res.Size}}}}
	if opts.Whole {
		return whole, nil
	}
	d, err := probe.OpenDisk(img, res.Size)
	if err != nil {
		res.Problems = append(res.Problems, "no partition table or file system readable, whole image carved: "+err.Error())
		return whole, nil
	}
	if !Readable(d) {
		return whole, nil
	}
	res.Mode = "unallocated"
	top := carveTarget{media: img}
	for _, u := range d.Unallocated() {
		top.ranges = append(top.ranges, carve.Run{Off: u.Off, Len: u.Len})
	}
	var skip []carve.Run
	targets := []carveTarget{top}
	problems, err := layer.WalkInner(ctx, d, func(f *layer.File) error {
		if opts.SkipRecovered && f.Layer == "" && f.Deleted && f.Recoverable && f.Type == "file" {
			for _, r := range f.Runs {
				if !r.Sparse {
					skip = append(skip, carve.Run{Off: r.Offset, Len: r.Length})
				}
			}
		}
		return nil
	}, func(l layer.Inner) error {
		t := carveTarget{layer: l.Path, media: l.Disk.Media()}
		for _, u := range l.Disk.Unallocated() {
			t.ranges = append(t.ranges, carve.Run{Off: u.Off, Len: u.Len})
		}
		targets = append(targets, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	targets[0].ranges = carve.Subtract(targets[0].ranges, skip)
	res.Problems = append(append(res.Problems, d.Problems()...), problems...)
	return targets, nil
}

// Readable reports whether any partition's file system was opened.
func Readable(d *fs.Disk) bool {
	for _, p := range d.Partitions {
		if p.FS != nil {
			return true
		}
	}
	return false
}

// writeNew writes one output file 0600, never through a symlink.
func writeNew(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

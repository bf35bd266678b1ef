package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/source"
	"github.com/evidx/evidx/ingest/timeline"
)

// ImageTimeline opens an image read-only and calls fn for every file of
// every layer on it (timeline.WalkDisk); part or sector pick one volume
// as ls --partition/-o do (0 and -1: all). loc is the zone of FAT's local
// times. It returns the problems met (image, disk, inner layers).
func ImageTimeline(ctx context.Context, path string, opts timeline.Options, part int, sector int64, loc *time.Location, fn func(*timeline.Entry) error) ([]string, error) {
	img, err := source.Open(path) // os.Open underneath: evidence is never written
	if err != nil {
		return nil, err
	}
	defer img.Close()
	disk, err := probe.OpenDiskIn(img, img.Size(), loc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if part != 0 || sector >= 0 {
		p, err := disk.Select(part, sector)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		opts.Partition = p.Index
	}
	if opts.Evidence == "" {
		opts.Evidence = path
	}
	inner, err := timeline.WalkDisk(ctx, disk, opts, fn)
	return append(append(img.Problems(), disk.Problems()...), inner...), err
}

// CaseTimeline calls fn for every file of every evidence item of c, in
// evidence id order: from the listing the case keeps (evidence add stores
// every file it walked), or, for an item with no stored files, from the
// evidence reopened read-only at the path it was registered from. Entry
// names start with the evidence id ("usb1:/dir/x", "disk2:p2:/x").
func CaseTimeline(ctx context.Context, c *custody.Case, opts timeline.Options, loc *time.Location, fn func(*timeline.Entry) error) ([]string, error) {
	items, err := c.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, ev := range items {
		vols, err := c.Volumes(ctx, ev.ID)
		if err != nil {
			return problems, err
		}
		prefix := ev.ID + ":"
		if opts.Prefix != "" {
			prefix = opts.Prefix + ev.ID + ":"
		}
		n := 0
		err = c.Files(ctx, ev.ID, func(f custody.File) error {
			n++
			e := &timeline.Entry{Evidence: ev.ID, Partition: f.Volume, Path: f.Path, Type: f.Type, Deleted: f.Deleted,
				Inode: f.Inode, Size: f.Size, Mode: f.Mode, UID: f.UID, GID: f.GID, Mtime: f.Mtime, Atime: f.Atime, Ctime: f.Ctime, Btime: f.Crtime}
			e.Name = prefix + timeline.Name("", len(vols) > 1, f.Volume, f.Path)
			if opts.MD5 && f.Type == "file" {
				e.MD5 = f.MD5
			}
			return fn(e)
		})
		if err != nil {
			return problems, err
		}
		if n > 0 {
			continue
		}
		if len(ev.Segments) == 0 {
			problems = append(problems, fmt.Sprintf("evidence %s: no files stored and no image path recorded", ev.ID))
			continue
		}
		o := opts
		o.Evidence, o.Prefix = ev.ID, ""
		var fnErr error
		p, err := ImageTimeline(ctx, ev.Segments[0].Path, o, 0, -1, loc, func(e *timeline.Entry) error {
			e.Name = prefix + e.Name
			fnErr = fn(e)
			return fnErr
		})
		for _, s := range p {
			problems = append(problems, fmt.Sprintf("evidence %s: %s", ev.ID, s))
		}
		if err != nil {
			if fnErr != nil || ctx.Err() != nil {
				return problems, err
			}
			// The image moved or cannot be read: the other items still count.
			problems = append(problems, fmt.Sprintf("evidence %s: not reopened: %v", ev.ID, err))
		}
	}
	return problems, nil
}

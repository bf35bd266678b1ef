package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/layer"
)

// catOptions are the flags of `evidx cat`.
type catOptions struct {
	Inode     int64 // pick among entries of the same path by inode, or without PATH name the file (icat); -1: not set
	Partition int   // volume by index (pN); 0: not set
	Sector    int64 // volume by start sector (icat -o); -1: not set
}

func newCatCmd() *cobra.Command {
	opts := catOptions{Inode: -1, Sector: -1}
	cmd := &cobra.Command{
		Use:   "cat IMAGE PATH | cat IMAGE --inode N [-o SECTOR | --partition N]",
		Short: "Write a file's content to stdout (like icat), deleted files and NTFS streams included",
		Long: `Write the content of one file of a disk image to stdout, as "evidx ls"
lists it. PATH is either "/dir/name" (NTFS streams: "/dir/name:stream") when
that path is unique on the disk, or "pN:/dir/name" to pick partition N (the
"partition" index ls prints). A file inside media held in a file (a virtual
disk on an NTFS volume) is named by its layered path as ls prints it,
"p1:/VMs/win.vhd/p1:/Users/a/leak.csv"; only the layers on the way are opened. When an allocated and a deleted entry share
a path the allocated one is chosen; use --inode to pick another. Deleted
files are written only when ls marks them recoverable.

Without PATH, as icat: --inode N names the file by its inode (as ls and
fls print it) on one volume, deleted files included. -o SECTOR (the
volume's start in 512-byte sectors, as icat -o) or --partition N picks the
volume, with or without PATH; without PATH it is needed when the disk has
more than one. The image is opened read-only.`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCat(cmd.Context(), cmd.OutOrStdout(), opts, a)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.Inode, "inode", -1, "choose the entry with this inode (as ls shows it) when several share PATH; without PATH, the file with this inode (icat)")
	f.IntVar(&opts.Partition, "partition", 0, "the volume with this index (pN, as ls prints it)")
	f.Int64VarP(&opts.Sector, "offset", "o", -1, "the volume starting at this `SECTOR` (512-byte sectors, as icat -o)")
	return cmd
}

func runCat(ctx context.Context, stdout io.Writer, opts catOptions, a []string) error {
	if len(a) == 1 {
		return runICat(ctx, stdout, opts, a[0])
	}
	if _, err := layer.ParsePath(a[1]); err != nil {
		return usageError{err}
	}
	img, disk, err := openDisk(a[0])
	if err != nil {
		return err
	}
	defer img.Close()
	if opts.Partition != 0 || opts.Sector >= 0 {
		if disk, err = chooseVolume(disk, opts.Partition, opts.Sector); err != nil {
			return fmt.Errorf("%s: %w", a[0], err)
		}
	}
	hits, err := layer.Find(ctx, disk, a[1], func(f *fs.File) bool { return opts.Inode < 0 || f.Inode == uint64(opts.Inode) })
	if err != nil {
		return fmt.Errorf("%s: %s", a[0], lsEscape(err.Error()))
	}
	hit, err := catChoose(hits, a[1])
	if err != nil {
		return err
	}
	if hit.Type == "dir" {
		return fmt.Errorf("%s: is a directory", lsEscape(a[1]))
	}
	r, err := hit.Open()
	if err != nil {
		return err
	}
	if _, err := io.Copy(stdout, r); err != nil {
		return fmt.Errorf("%s: %w", lsEscape(a[1]), err)
	}
	return nil
}

// catChoose picks the one entry PATH names: the only hit, or the only
// allocated one among deleted namesakes; anything else is ambiguous and
// the error lists how to name each candidate.
func catChoose(hits []*layer.File, path string) (*layer.File, error) {
	if len(hits) == 0 {
		return nil, fmt.Errorf("%s: no such file (see evidx ls)", lsEscape(path))
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	var alloc []*layer.File
	for _, h := range hits {
		if !h.Deleted {
			alloc = append(alloc, h)
		}
	}
	if len(alloc) == 1 {
		return alloc[0], nil
	}
	var names []string
	for _, h := range hits {
		state := "allocated"
		if h.Deleted {
			state = "deleted"
		}
		names = append(names, fmt.Sprintf("p%d:%s --inode %d (%s)", h.Partition, h.Path, h.Inode, state))
	}
	return nil, errors.New(lsEscape(fmt.Sprintf("%s is ambiguous: %s", path, strings.Join(names, ", "))))
}

// runICat writes the content of the file with inode opts.Inode on the
// chosen volume, as icat does.
func runICat(ctx context.Context, stdout io.Writer, opts catOptions, image string) error {
	if opts.Inode < 0 {
		return usageError{errors.New("cat: give PATH, or --inode N to name the file by its inode (as icat)")}
	}
	img, disk, err := openDisk(image)
	if err != nil {
		return err
	}
	defer img.Close()
	vol, err := chooseVolume(disk, opts.Partition, opts.Sector)
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	hits, err := layer.FindInode(ctx, vol, uint64(opts.Inode))
	if err != nil {
		return fmt.Errorf("%s: %s", image, lsEscape(err.Error()))
	}
	if len(hits) == 0 {
		return fmt.Errorf("%s: no file with inode %d on partition %d (see evidx ls)", image, opts.Inode, vol.Partitions[0].Index)
	}
	// Several names of one inode (hard links, a deleted name of a
	// reused inode) share its content: the first allocated one serves.
	hit := hits[0]
	for _, h := range hits {
		if !h.Deleted {
			hit = h
			break
		}
	}
	var r io.Reader
	if hit.Type == "dir" {
		// icat writes a directory's blocks; readers' Open serves files only.
		var ra io.ReaderAt
		if ra, err = vol.ReadRuns(hit.File); err == nil {
			r = io.NewSectionReader(ra, 0, hit.Size)
		}
	} else {
		r, err = hit.Open()
	}
	if err != nil {
		return fmt.Errorf("%s: inode %d (p%d:%s): %s", image, opts.Inode, hit.Partition, lsEscape(hit.Path), lsEscape(err.Error()))
	}
	if _, err := io.Copy(stdout, r); err != nil {
		return fmt.Errorf("%s: inode %d: %w", image, opts.Inode, err)
	}
	return nil
}

// chooseVolume returns a view of the volume --partition or -o names, or of
// the only readable one when neither is given.
func chooseVolume(disk *fs.Disk, part int, sector int64) (*fs.Disk, error) {
	if part != 0 || sector >= 0 {
		p, err := disk.Select(part, sector)
		if err != nil {
			return nil, usageError{err}
		}
		if p.FS == nil {
			return nil, fmt.Errorf("partition %d at sector %d: no readable file system: %s", p.Index, p.Start/fs.SectorSize, p.Error)
		}
		return disk.Only(p.Index)
	}
	var readable []int
	for _, p := range disk.Partitions {
		if p.FS != nil {
			readable = append(readable, p.Index)
		}
	}
	switch len(readable) {
	case 0:
		return nil, errors.New("no readable file system")
	case 1:
		return disk.Only(readable[0])
	}
	var names []string
	for _, p := range disk.Partitions {
		if p.FS != nil {
			names = append(names, fmt.Sprintf("--partition %d or -o %d", p.Index, p.Start/fs.SectorSize))
		}
	}
	return nil, usageError{fmt.Errorf("%d volumes hold file systems: choose one (%s)", len(readable), strings.Join(names, ", "))}
}

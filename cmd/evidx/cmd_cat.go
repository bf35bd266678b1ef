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
	Inode int64 // pick among entries of the same path by inode; -1: not set
}

func newCatCmd() *cobra.Command {
	opts := catOptions{Inode: -1}
	cmd := &cobra.Command{
		Use:   "cat IMAGE PATH",
		Short: "Write a file's content to stdout (like icat), deleted files and NTFS streams included",
		Long: `Write the content of one file of a disk image to stdout, as "evidx ls"
lists it. PATH is either "/dir/name" (NTFS streams: "/dir/name:stream") when
that path is unique on the disk, or "pN:/dir/name" to pick partition N (the
"partition" index ls prints). A file inside media held in a file (a virtual
disk on an NTFS volume) is named by its layered path as ls prints it,
"p1:/VMs/win.vhd/p1:/Users/a/leak.csv"; only the layers on the way are opened. When an allocated and a deleted entry share
a path the allocated one is chosen; use --inode to pick another. Deleted
files are written only when ls marks them recoverable. The image is opened
read-only.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runCat(cmd.Context(), cmd.OutOrStdout(), opts, a)
		},
	}
	cmd.Flags().Int64Var(&opts.Inode, "inode", -1, "choose the entry with this inode (as ls shows it) when several share PATH")
	return cmd
}

func runCat(ctx context.Context, stdout io.Writer, opts catOptions, a []string) error {
	if _, err := layer.ParsePath(a[1]); err != nil {
		return usageError{err}
	}
	img, disk, err := openDisk(a[0])
	if err != nil {
		return err
	}
	defer img.Close()
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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/ingest/fs"
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
"partition" index ls prints). When an allocated and a deleted entry share
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

// catPartPath matches the "pN:/path" form of a cat PATH.
var catPartPath = regexp.MustCompile(`^p([0-9]+):(/.*)$`)

type catHit struct {
	part int
	file *fs.File
}

func runCat(ctx context.Context, stdout io.Writer, opts catOptions, a []string) error {
	want, part := a[1], 0
	if m := catPartPath.FindStringSubmatch(want); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return usageError{fmt.Errorf("bad partition in %q", want)}
		}
		part, want = n, m[2]
	}
	if !strings.HasPrefix(want, "/") {
		return usageError{fmt.Errorf("PATH %q must start with / or pN:/", a[1])}
	}
	img, disk, err := openDisk(a[0])
	if err != nil {
		return err
	}
	defer img.Close()
	if part != 0 && disk.Partition(part) == nil {
		return fmt.Errorf("%s: no partition %d", a[0], part)
	}
	var hits []catHit
	err = disk.Walk(ctx, func(p int, f *fs.File) error {
		if f.Path == want && (part == 0 || p == part) && (opts.Inode < 0 || f.Inode == uint64(opts.Inode)) {
			hits = append(hits, catHit{p, f})
		}
		return nil
	})
	if err != nil {
		return err
	}
	hit, err := catChoose(hits, a[1])
	if err != nil {
		return err
	}
	if hit.file.Type == "dir" {
		return fmt.Errorf("%s: is a directory", lsEscape(a[1]))
	}
	r, err := disk.Open(hit.part, hit.file)
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
func catChoose(hits []catHit, path string) (catHit, error) {
	if len(hits) == 0 {
		return catHit{}, fmt.Errorf("%s: no such file (see evidx ls)", lsEscape(path))
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	var alloc []catHit
	for _, h := range hits {
		if !h.file.Deleted {
			alloc = append(alloc, h)
		}
	}
	if len(alloc) == 1 {
		return alloc[0], nil
	}
	var names []string
	for _, h := range hits {
		state := "allocated"
		if h.file.Deleted {
			state = "deleted"
		}
		names = append(names, fmt.Sprintf("p%d:%s --inode %d (%s)", h.part, h.file.Path, h.file.Inode, state))
	}
	return catHit{}, errors.New(lsEscape(fmt.Sprintf("%s is ambiguous: %s", path, strings.Join(names, ", "))))
}

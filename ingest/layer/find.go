package layer

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/evidx/evidx/ingest/fs"
)

// innerStep matches where a layered path enters the media held in a file:
// "/VMs/a.vhd/p1:/Users/x" enters partition 1 of a.vhd.
var innerStep = regexp.MustCompile(`/p([0-9]+):/`)

// topStep matches the "pN:" a path may start with.
var topStep = regexp.MustCompile(`^p([0-9]+):(/.*)$`)

// step is one layer of a path: the partition (0: any) and the path in it.
type step struct {
	part int
	path string
}

// ParsePath splits a layered path as ls prints it ("/a", "p2:/a",
// "p1:/VMs/a.vhd/p1:/b") into its layers.
func ParsePath(p string) ([]step, error) {
	var steps []step
	part := 0
	if m := topStep.FindStringSubmatch(p); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad partition in %q", p)
		}
		part, p = n, m[2]
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path %q must start with / or pN:/", p)
	}
	for {
		loc := innerStep.FindStringSubmatchIndex(p)
		if loc == nil {
			return append(steps, step{part, p}), nil
		}
		steps = append(steps, step{part, p[:loc[0]]})
		n, err := strconv.Atoi(p[loc[2]:loc[3]])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad partition in %q", p)
		}
		part, p = n, p[loc[1]-1:]
	}
}

// Find returns the entries of disk that the layered path names and keep
// accepts, opening only the layers on the way (not every container of the
// disk): a path into a virtual disk on an NTFS volume walks the volume,
// then the virtual disk. Entries of inner layers carry their full layered
// path and no image offsets, as Walk gives them. A file on the way must
// be one recoverable file holding media.
func Find(ctx context.Context, disk *fs.Disk, path string, keep func(*fs.File) bool) ([]*File, error) {
	steps, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	d, prefix, top := disk, "", -1
	for depth, st := range steps {
		last := depth == len(steps)-1
		if st.part != 0 && d.Partition(st.part) == nil {
			return nil, fmt.Errorf("%sno partition %d", where(prefix), st.part)
		}
		var hits []hit
		err := d.Walk(ctx, func(part int, f *fs.File) error {
			if f.Path != st.path || st.part != 0 && part != st.part || last && keep != nil && !keep(f) {
				return nil
			}
			e, orig := entry(d, part, f, depth, prefix, top)
			hits = append(hits, hit{e, part, orig})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last {
			out := make([]*File, len(hits))
			for i, h := range hits {
				out[i] = h.e
			}
			return out, nil
		}
		h, err := oneHolder(hits, prefix, st)
		if err != nil {
			return nil, err
		}
		inner, _, problems := open(d, h.part, h.orig)
		if inner == nil {
			msg := "holds no media evidx reads"
			if len(problems) > 0 {
				msg = strings.Join(problems, "; ")
			}
			return nil, fmt.Errorf("%s: %s", h.e.File.Path, msg)
		}
		if top < 0 {
			top = h.part
		}
		d, prefix = inner, h.e.File.Path
	}
	return nil, nil
}

// hit is an entry Find matched, with what opens it.
type hit struct {
	e    *File
	part int      // partition on its own layer's disk
	orig *fs.File // as its own layer reports it
}

// oneHolder picks the file a path goes through: the only match, or the
// only allocated one among deleted namesakes; it must be a recoverable file.
func oneHolder(hits []hit, prefix string, st step) (hit, error) {
	name := st.path
	if prefix != "" {
		name = fmt.Sprintf("%s/p%d:%s", prefix, st.part, st.path)
	}
	var alloc []hit
	for _, h := range hits {
		if !h.orig.Deleted {
			alloc = append(alloc, h)
		}
	}
	switch {
	case len(hits) == 0:
		return hit{}, fmt.Errorf("%s: no such file", name)
	case len(hits) == 1:
	case len(alloc) == 1:
		hits = alloc
	default:
		return hit{}, fmt.Errorf("%s: %d entries have this path; name the partition (pN:)", name, len(hits))
	}
	h := hits[0]
	if h.orig.Type != "file" || !h.orig.Recoverable {
		return hit{}, fmt.Errorf("%s: not a readable file, no media inside", name)
	}
	return h, nil
}

// where names the layer a path is in, for errors: "" on the top disk.
func where(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + ": "
}

// FindInode returns the entries of the top layer of disk whose inode is
// inode, as icat addresses a file: by its number on one volume (pass a
// view of that volume, fs.Disk.Only), deleted names included. Inner
// layers are not searched: their inodes are another file system's.
func FindInode(ctx context.Context, disk *fs.Disk, inode uint64) ([]*File, error) {
	var out []*File
	err := disk.Walk(ctx, func(part int, f *fs.File) error {
		if f.Inode == inode {
			e, _ := entry(disk, part, f, 0, "", -1)
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

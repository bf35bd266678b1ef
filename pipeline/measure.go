package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/ingest/source"
)

// MeasureImage measures the media of an evidence image for custody with
// ingest/source: raw, split raw (found from its first segment) and EWF
// (E01) images, read-only, one pass. Stored hashes come from the container;
// bad EWF chunks become container errors naming their sectors, and sectors
// the imager could not read become unreadable ranges. When several paths
// are given they must be the segments source finds from the first, or, for
// names source does not recognise as a split set, raw pieces hashed in the
// order given. It is a custody.Measurer.
func MeasureImage(ctx context.Context, paths []string, progress func(int64)) (*custody.Evidence, error) {
	img, err := source.Open(paths[0])
	if err != nil {
		return nil, err
	}
	defer img.Close()
	segs := img.Segments()
	if len(paths) > 1 {
		if len(segs) == 1 && img.Format() == source.FormatRaw {
			img.Close()
			return custody.RawMeasure(ctx, paths, progress)
		}
		if !samePaths(paths, segs) {
			return nil, fmt.Errorf("evidence: segments given (%d) differ from the %d found from %s; give only the first segment", len(paths), len(segs), paths[0])
		}
	}
	res, err := source.Hash(ctx, img, source.Expected{}, progress)
	if err != nil {
		return nil, err
	}
	ev := &custody.Evidence{
		Format:     res.Format,
		Size:       res.Size,
		SectorSize: res.SectorSize,
		Stored:     custody.Hashes{MD5: res.Stored.MD5, SHA1: res.Stored.SHA1},
		Computed:   res.Sums,
		Header:     res.Header,
	}
	for _, sg := range segs {
		ev.Segments = append(ev.Segments, custody.Segment{Path: sg.Path, Size: sg.Size})
	}
	switch {
	case len(ev.Segments) == 1 && res.Format == source.FormatRaw:
		ev.Segments[0].SHA256 = res.SHA256
	case res.Format != source.FormatRaw && res.Format != source.FormatSplit:
		// The container files themselves (E01 segments, a virtual disk and
		// its extents or parents) get a SHA-256 too, so a court can check
		// the files it receives without evidx. They are mostly compressed
		// or sparse, so this second pass costs less than the first.
		for i := range ev.Segments {
			sum, err := hashSegment(ctx, ev.Segments[i].Path)
			if err != nil {
				return nil, err
			}
			ev.Segments[i].SHA256 = sum
		}
	}
	// res.Errors lists bad chunks first, then one line per failed
	// comparison with the stored hashes; custody makes its own comparisons,
	// so only the container checksum failures are kept here.
	failed := 0
	for _, ch := range res.Checks {
		if !ch.OK {
			failed++
		}
	}
	ev.Container = append(ev.Container, res.Errors[:max(len(res.Errors)-failed, 0)]...)
	ss := int64(max(res.SectorSize, 1))
	for _, r := range img.AcquisitionErrors() {
		ev.Unreadable = append(ev.Unreadable, custody.Range{Offset: int64(r.Start) * ss, Length: int64(max(r.Count, 1)) * ss})
	}
	return ev, nil
}

// RehashImage re-hashes the media of a registered item for `verify
// --evidence`, through ingest/source from its first segment (or the pieces
// in order for a raw image registered as explicit pieces). It is a
// custody.Rehasher.
func RehashImage(ctx context.Context, ev custody.Evidence) (digest.Sums, error) {
	if len(ev.Segments) == 0 {
		return digest.Sums{}, fmt.Errorf("evidence %s has no segments recorded", ev.ID)
	}
	paths := make([]string, len(ev.Segments))
	for i, s := range ev.Segments {
		paths[i] = s.Path
	}
	img, err := source.Open(paths[0])
	if err != nil {
		return digest.Sums{}, err
	}
	defer img.Close()
	if len(paths) > 1 && len(img.Segments()) == 1 && img.Format() == source.FormatRaw {
		img.Close()
		return custody.RawRehash(ctx, paths)
	}
	if !samePaths(paths, img.Segments()) {
		return digest.Sums{}, fmt.Errorf("evidence %s: segment files now %d, %d at intake", ev.ID, len(img.Segments()), len(paths))
	}
	res, err := source.Hash(ctx, img, source.Expected{}, nil)
	if err != nil {
		return digest.Sums{}, err
	}
	// Bad chunks are read as zeros: if they are new since intake, the sums
	// differ and verify names the change.
	return res.Sums, nil
}

func samePaths(given []string, segs []source.Segment) bool {
	if len(given) != len(segs) {
		return false
	}
	for i, p := range given {
		a, _ := filepath.Abs(p)
		b, _ := filepath.Abs(segs[i].Path)
		if a != b {
			return false
		}
	}
	return true
}

func hashSegment(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sums, err := digest.Sum(ctx, f, nil)
	if err != nil {
		return "", fmt.Errorf("segment %s: %w", path, err)
	}
	return sums.SHA256, nil
}

// mediaSize is the size of the media at paths, for progress: the disk
// inside a container (an E01's or a virtual disk's is not its file's
// size), or the pieces' sizes added up.
func mediaSize(paths []string) int64 {
	if img, err := source.Open(paths[0]); err == nil {
		defer img.Close()
		if len(paths) == 1 {
			return img.Size()
		}
	}
	var total int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return total
}

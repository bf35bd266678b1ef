package probe

import (
	"context"
	"slices"

	"github.com/evidx/evidx/ingest/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestUnreadFileSystems: volumes evidx does not read, made by their own
// tools, are named in the disk's
// problems with their offset, never listed as an empty raw disk.
func TestUnreadFileSystems(t *testing.T) {
	dir := t.TempDir()
	images := map[string]string{}
	mk := func(name, tool string, args ...string) {
		if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
			testutil.NeedTool(t, tool)
		}
		p := filepath.Join(dir, name)
		f, _ := os.Create(p)
		f.Truncate(320 << 20)
		f.Close()
		testutil.Run(t, tool, append(args, p)...)
		images[name] = p
	}
	mk("XFS", "mkfs.xfs", "-q", "-f")
	mk("Btrfs", "mkfs.btrfs", "-q", "-f")
	for name, p := range images {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		d, err := OpenDisk(f, st.Size())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		probs := d.Problems()
		f.Close()
		if len(probs) != 1 || !strings.Contains(probs[0], name) || !strings.Contains(probs[0], "recognised") || !strings.Contains(probs[0], " at 0x") {
			t.Errorf("%s: problems %q", name, probs)
		}
	}
	if len(images) < 2 {
		t.Errorf("only %d images made", len(images))
	}
}

// TestAPFSListed: the public APFS image, once named as unread, is now
// opened by the apfs reader and its files listed with image offsets.
func TestAPFSListed(t *testing.T) {
	p := filepath.Join("..", "..", "..", "..", "shared", "fixtures", "apfs.raw")
	f, err := os.Open(p)
	if err != nil {
		t.Skip("public APFS image absent")
	}
	defer f.Close()
	st, _ := f.Stat()
	d, err := OpenDisk(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 1 || d.Partitions[0].FileSystem != "apfs" || d.Partitions[0].FS == nil {
		t.Fatalf("partitions %+v", d.Partitions)
	}
	var paths []string
	if err := d.Walk(context.Background(), func(_ int, f *fs.File) error {
		paths = append(paths, f.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(paths, "/apfs_test/a_directory/a_file") || len(paths) != 11 {
		t.Errorf("listed %q", paths)
	}
	if probs := d.Problems(); len(probs) != 0 {
		t.Errorf("problems %q", probs)
	}
}

// TestHFSPlusListed: the public HFS+ image, once named as unread, is now
// opened by the hfsplus reader and its files listed.
func TestHFSPlusListed(t *testing.T) {
	p := filepath.Join("..", "..", "..", "..", "shared", "fixtures", "hfsplus.raw")
	f, err := os.Open(p)
	if err != nil {
		t.Skip("public HFS+ image absent")
	}
	defer f.Close()
	st, _ := f.Stat()
	d, err := OpenDisk(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Partitions) != 1 || d.Partitions[0].FileSystem != "hfsplus" || d.Partitions[0].FS == nil {
		t.Fatalf("partitions %+v", d.Partitions)
	}
	var paths []string
	if err := d.Walk(context.Background(), func(_ int, f *fs.File) error {
		paths = append(paths, f.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// 17 entries fls lists, and the resource fork of a_resourcefork.
	if !slices.Contains(paths, "/a_directory/a_file") || !slices.Contains(paths, "/a_directory/a_resourcefork/..namedfork/rsrc") || len(paths) != 18 {
		t.Errorf("listed %d: %q", len(paths), paths)
	}
	// The one note: HFS+ keeps no deleted entries.
	if probs := d.Problems(); len(probs) != 1 || !strings.Contains(probs[0], "no deleted entries") {
		t.Errorf("problems %q", probs)
	}
}

package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestUnreadFileSystems: volumes evidx does not read, made by their own
// tools (and the public HFS+ and APFS images), are named in the disk's
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
	for name, f := range map[string]string{"HFS+": "hfsplus.raw", "APFS": "apfs.raw"} {
		p := filepath.Join("..", "..", "..", "..", "shared", "fixtures", f)
		if _, err := os.Stat(p); err == nil {
			images[name] = p
		}
	}
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

package source

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// TestUnreadContainers: images qemu-img writes in formats evidx does not
// read are named with their signature's offset, not taken for raw disks.
func TestUnreadContainers(t *testing.T) {
	testutil.NeedTool(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	os.WriteFile(raw, bytes.Repeat([]byte("evidence"), 1<<17), 0o600)
	for _, tc := range []struct{ fmt, want string }{
		{"vdi", "VirtualBox VDI"}, {"parallels", "Parallels"},
	} {
		p := filepath.Join(dir, "d."+tc.fmt)
		testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", tc.fmt, raw, p)
		im, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		probs := im.Problems()
		im.Close()
		if len(probs) != 1 || !strings.Contains(probs[0], tc.want+" container recognised") {
			t.Errorf("%s: problems %q", tc.fmt, probs)
		}
	}
	im, err := Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if p := im.Problems(); len(p) != 0 {
		t.Errorf("raw: problems %q", p)
	}
	// A dmg trailer, crafted: no Debian tool writes UDIF.
	dmg := append(bytes.Repeat([]byte{0}, 4096), append([]byte("koly"), make([]byte, 508)...)...)
	if f, off, ok := Unread(bytes.NewReader(dmg), int64(len(dmg))); !ok || !strings.Contains(f, "dmg") || off != 4096 {
		t.Errorf("dmg: %q %d %v", f, off, ok)
	}
}

func FuzzUnread(f *testing.F) {
	f.Add([]byte("COWD"))
	f.Add(append(make([]byte, 512), []byte("koly")...))
	f.Fuzz(func(t *testing.T, b []byte) { Unread(bytes.NewReader(b), int64(len(b))) })
}

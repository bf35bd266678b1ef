package persons

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// FuzzRecords: reading a damaged record file never panics, never
// allocates past its bounds, and fails with an error naming the file and
// offset or ends cleanly.
func FuzzRecords(f *testing.F) {
	dir := f.TempDir()
	r, err := NewRecorder(dir)
	if err != nil {
		f.Fatal(err)
	}
	r.Add([]identity.Sighting{
		{Kind: identity.Phone, Value: "+8613912345678", Loc: "line 2"},
		{Kind: identity.Name, Value: "张三", Loc: "line 2"},
		{Kind: "key", Value: "cid=7", Loc: "line 2"},
		{Kind: identity.Email, Value: "a@b.cn", Loc: "line 3"},
	})
	if err := r.Commit(1); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(recPath(dir, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "x.rec")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rr, c, err := openRecords(p)
		if err != nil {
			return
		}
		defer c.Close()
		for range 10000 {
			if err := rr.next(); err != nil {
				if err != io.EOF && len(err.Error()) == 0 {
					t.Fatal("empty error")
				}
				return
			}
		}
	})
}

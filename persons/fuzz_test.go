package persons

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// FuzzPairs: damaged prepared pairs and identifier files never panic and
// never allocate past their bounds.
func FuzzPairs(f *testing.F) {
	var seed []byte
	seed = append(seed, 0, 14)
	seed = append(seed, "+8613912345678"...)
	seed = append(seed, 3, 1, 6)
	seed = append(seed, "a@b.cn"...)
	seed = append(seed, 0)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "pairs.bin")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		c := &pairCursor{r: bufio.NewReader(fh), f: fh}
		for range 10000 {
			ok, err := c.next()
			if err != nil || !ok {
				break
			}
		}
		// The same bytes as an identifier or hub file.
		for off, n := int64(0), 0; n < 10000; n++ {
			_, v, _, next, err := entryAt(data, off)
			if err != nil {
				break
			}
			if next <= off || next > int64(len(data)) || len(v) > len(data) {
				t.Fatalf("entry at %d: next %d of %d bytes", off, next, len(data))
			}
			off = next
		}
	})
}

// FuzzInstallSource: any file offered as a record file is installed
// byte for byte, or refused with an error naming it; never a panic.
func FuzzInstallSource(f *testing.F) {
	seed := []byte(RecordFileMagic)
	seed = AppendRecords(seed, []identity.Sighting{
		{Kind: identity.Phone, Value: "+8613912345678", Loc: "line 2"},
		{Kind: "key", Value: "cid=7", Loc: "line 2"},
		{Kind: identity.Email, Value: "a@b.cn", Loc: "line 3"},
	})
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		p := filepath.Join(d, "in.rec")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(d, "persons")
		if err := InstallSource(context.Background(), dir, 1, p, sum(data)); err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		got, err := os.ReadFile(recPath(dir, 1))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("installed file differs (%v)", err)
		}
	})
}

package custody

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRejectsKeptAndVerified: a load that wrote rejected rows leaves
// rejects/<sha256>.tsv (0600 in a 0700 directory) with exactly those
// bytes, returned as an audit item, listed by RejectsItems, and verify
// catches a later change of one byte of it.
func TestRejectsKeptAndVerified(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	dataset := strings.Repeat("ab", 32)
	rows := "leak.csv\tline 3\tunterminated quote\t\"\\\"open,13900001111\"\n" +
		"leak.csv\tline 9\ttoo many fields\t\"a,b,c,d\"\n"

	r, err := c.NewRejects()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(r, rows[:20]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(r, rows[20:]); err != nil {
		t.Fatal(err)
	}
	items, err := r.Finish(dataset, true)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(rows))
	want := Item{Kind: "rejects", Path: filepath.Join("rejects", dataset+".tsv"), Size: int64(len(rows)), SHA256: hex.EncodeToString(sum[:])}
	if len(items) != 1 || items[0] != want {
		t.Fatalf("Finish: %+v, want [%+v]", items, want)
	}
	if again, err := r.Finish(dataset, true); again != nil || err != nil {
		t.Errorf("second Finish: %v %v, want nothing", again, err)
	}
	p := filepath.Join(c.Dir(), want.Path)
	if b, err := os.ReadFile(p); err != nil || string(b) != rows {
		t.Fatalf("rejects file: %q %v", b, err)
	}
	for path, mode := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", path, st, err, mode)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(c.Dir(), "rejects", ".loading-*")); len(left) != 0 {
		t.Errorf("temporary rejects left: %v", left)
	}
	listed, err := c.RejectsItems(ctx)
	if err != nil || !reflect.DeepEqual(listed, items) {
		t.Errorf("RejectsItems: %+v %v, want %+v", listed, err, items)
	}

	if err := c.Audit(Entry{Action: "dataset.add", Outcome: OutcomeOK, Outputs: items}); err != nil {
		t.Fatal(err)
	}
	if vr, err := c.Verify(ctx, VerifyOptions{}); err != nil || !vr.OK {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	flipByte(t, p, 5)
	vr, err := c.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vr.OK || len(vr.Failures) != 1 || !strings.HasPrefix(vr.Failures[0], want.Path+": SHA-256 now") {
		t.Errorf("verify after a changed byte: %+v", vr)
	}
}

// TestRejectsNotKept: nothing is kept for a load that rejected no row,
// failed or was skipped, and a bad dataset hash is
// refused rather than used as a file name.
func TestRejectsNotKept(t *testing.T) {
	ctx := context.Background()
	c := newCase(t)
	dataset := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name    string
		write   string
		sha     string
		keep    bool
		wantErr bool
	}{
		{"no rejected rows", "", dataset, true, false},
		{"load failed or skipped", "x\tline 1\tbad\t\"x\"\n", dataset, false, false},
		{"bad dataset hash", "x\tline 1\tbad\t\"x\"\n", "../../audit.log", true, true},
	} {
		r, err := c.NewRejects()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(r, tc.write)
		items, err := r.Finish(tc.sha, tc.keep)
		if items != nil || (err != nil) != tc.wantErr {
			t.Errorf("%s: Finish = %+v, %v", tc.name, items, err)
		}
		ents, _ := os.ReadDir(filepath.Join(c.Dir(), "rejects"))
		if len(ents) != 0 {
			t.Errorf("%s: rejects directory holds %v", tc.name, ents)
		}
	}
	if listed, err := c.RejectsItems(ctx); err != nil || len(listed) != 0 {
		t.Errorf("RejectsItems: %+v %v, want none", listed, err)
	}
}

// flipByte inverts the bits of the byte at off of the file at p.
func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

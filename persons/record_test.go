package persons

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// recBatches are sightings as ReadDataset hands them over: rows of
// identities, names and keys, kinds a record does not keep, values over
// the item bound, a row over the item count bound and rows with none.
func recBatches() [][]identity.Sighting {
	var out [][]identity.Sighting
	for b := range 7 {
		var ss []identity.Sighting
		for r := range 50 {
			loc := fmt.Sprintf("line %d", b*50+r+2)
			n := r % 5
			if b == 3 && r == 7 {
				n = maxItems + 9
			}
			for i := range n {
				k := []identity.Kind{identity.Phone, identity.Email, identity.Name, "key", identity.CNID, identity.BankCard, identity.Address, "other"}[(r+i)%8]
				v := fmt.Sprintf("v%d-%d-%d", b, r, i)
				if r == 11 && i == 1 {
					v = strings.Repeat("x", maxItem+1)
				}
				ss = append(ss, identity.Sighting{Kind: k, Value: v, Loc: loc})
			}
		}
		out = append(out, ss)
	}
	return out
}

// TestAppendRecordsIsRecorder: the records of batches appended after
// RecordFileMagic, in any grouping of the batches, are the bytes a
// Recorder commits for them.
func TestAppendRecordsIsRecorder(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRecorder(dir)
	if err != nil {
		t.Fatal(err)
	}
	bs := recBatches()
	for _, b := range bs {
		r.Add(b)
	}
	if err := r.Commit(1); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(recPath(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Parts of two batches each, as spans of a file read elsewhere.
	got := []byte(RecordFileMagic)
	for i := 0; i < len(bs); i += 2 {
		var part []byte
		for _, b := range bs[i:min(i+2, len(bs))] {
			part = AppendRecords(part, b)
		}
		got = append(got, part...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appended records (%d bytes) differ from the Recorder's file (%d bytes)", len(got), len(want))
	}
	if r.n < 200 {
		t.Fatalf("only %d records", r.n)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestInstallSource: a record file with the SHA-256 given is installed
// byte for byte (and linked like a recorded one: same Prepare); a changed
// or damaged one is refused, naming it, and nothing is left behind.
func TestInstallSource(t *testing.T) {
	src := t.TempDir()
	data := []byte(RecordFileMagic)
	for _, b := range recBatches() {
		data = AppendRecords(data, b)
	}
	p := filepath.Join(src, "records-000.rec")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "persons")
	if err := InstallSource(context.Background(), dir, 5, p, strings.ToUpper(sum(data))); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(recPath(dir, 5))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("installed file differs (%v)", err)
	}
	bad := append([]byte{}, data...)
	bad[len(bad)/2] ^= 1
	if err := InstallSource(context.Background(), dir, 6, p, sum(bad)); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "changed") {
		t.Errorf("wrong hash: %v", err)
	}
	cut := data[:len(data)-2]
	os.WriteFile(p, cut, 0o600)
	if err := InstallSource(context.Background(), dir, 6, p, sum(cut)); err == nil || !strings.Contains(err.Error(), p+": record at 0x") {
		t.Errorf("cut file: %v", err)
	}
	os.WriteFile(p, []byte("EVPR2\n"), 0o600)
	if err := InstallSource(context.Background(), dir, 6, p, sum([]byte("EVPR2\n"))); err == nil || !strings.Contains(err.Error(), "at 0x0: not a record file") {
		t.Errorf("not a record file: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 || ents[0].Name() != filepath.Base(prepPath(dir, 5)) || ents[1].Name() != filepath.Base(recPath(dir, 5)) {
		t.Errorf("left in %s: %v", dir, ents)
	}
	// Prepared while installed: the files Prepare makes from the record
	// file.
	other := filepath.Join(t.TempDir(), "persons")
	os.MkdirAll(other, 0o700)
	os.WriteFile(recPath(other, 5), data, 0o600)
	if err := Prepare(context.Background(), other, 5, 8<<20); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Glob(filepath.Join(prepPath(other, 5), "*"))
	if len(want) < 2 {
		t.Fatalf("Prepare made %v", want)
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(prepPath(dir, 5), filepath.Base(w)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: prepared by InstallSource differs from Prepare's (%v)", filepath.Base(w), err)
		}
	}
}

package index

import (
	"context"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
)

// FuzzLoadLookup loads arbitrary (kind, value, loc) strings — evidence
// supplies them, so any bytes — and checks they come back exactly: found
// under their own kind and value, counted once per distinct pair.
func FuzzLoadLookup(f *testing.F) {
	f.Add("phone", "+8613812345678", "line 1", "email", "a@b.cn")
	f.Add("cn_id", "11010519491231002X", "", "cn_id", "11010519491231002X")
	f.Add("email", "x'); DROP TABLE sightings;--", "line\x00 2", "phone", "\xff\xfe")
	f.Add("é", "𝟙𝟚𝟛", "%s", "phone", "")
	f.Add("email", "a\"b\\c\nd\te\x01@x.cn", "row \"7\"\r\n", "email", "A\"B@X.CN")
	f.Fuzz(func(t *testing.T, k1, v1, loc, k2, v2 string) {
		ix := testCase(t, t.TempDir(), 2)
		ss := []identity.Sighting{{Kind: identity.Kind(k1), Value: v1, Loc: loc}, {Kind: identity.Kind(k2), Value: v2, Loc: loc}}
		feed := func(ctx context.Context, sink func([]identity.Sighting) error) (FileInfo, error) {
			return FileInfo{Rows: 1}, sink(ss)
		}
		st, err := ix.AddSource(context.Background(), Source{Name: "f", SHA256: "f"}, feed, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := map[[2]string]int64{}
		for _, s := range ss {
			if s.Kind != "" && s.Value != "" {
				want[[2]string{string(s.Kind), s.Value}]++
			}
		}
		var total int64
		for _, v := range st.Unique {
			total += v
		}
		if total != int64(len(want)) {
			t.Fatalf("unique %v, want %d distinct (%+v, dir %s)", st.Unique, len(want), st, ix.dir)
		}
		s := ix.NewSearcher()
		defer s.Close()
		for key, occ := range want {
			m, ok, err := s.Lookup(context.Background(), identity.Kind(key[0]), key[1])
			if err != nil || !ok || m.Value != key[1] || len(m.Sources) != 1 || m.Sources[0].Occurrences != occ || m.Sources[0].FirstLoc != loc {
				t.Fatalf("lookup %q %q: %+v %v %v", key[0], key[1], m, ok, err)
			}
		}
	})
}

package source

import (
	"errors"
	"os"
	"testing"
	"time"
)

// fakeInfo satisfies os.FileInfo for findSplit's stat.
type fakeInfo struct{}

func (fakeInfo) Name() string       { return "" }
func (fakeInfo) Size() int64        { return 1 }
func (fakeInfo) Mode() os.FileMode  { return 0 }
func (fakeInfo) ModTime() time.Time { return time.Time{} }
func (fakeInfo) IsDir() bool        { return false }
func (fakeInfo) Sys() any           { return nil }

func statIn(set map[string]bool) statFunc {
	return func(p string) (os.FileInfo, error) {
		if set[p] {
			return fakeInfo{}, nil
		}
		return nil, os.ErrNotExist
	}
}

func TestFindSplit(t *testing.T) {
	for _, tc := range []struct {
		first string
		files []string
		want  int
		err   error
	}{
		{"x.001", []string{"x.001", "x.002", "x.003"}, 3, nil},
		{"x.000", []string{"x.000", "x.001"}, 2, nil},
		{"x.01", []string{"x.01", "x.02", "x.03", "x.04", "x.05", "x.06", "x.07", "x.08", "x.09", "x.10", "x.11"}, 11, nil},
		{"x.aa", []string{"x.aa", "x.ab", "x.ac"}, 3, nil},
		{"x.az", []string{"x.ay", "x.az"}, 0, ErrNotFirstSegment},
		{"x.002", []string{"x.001", "x.002"}, 0, ErrNotFirstSegment},
		{"x.001", []string{"x.000", "x.001"}, 0, ErrNotFirstSegment},
		{"x.001", []string{"x.001", "x.002", "x.004"}, 0, ErrMissingSegment},
		{"disk.dd", []string{"disk.dd"}, 1, nil},
		{"x.E01", []string{"x.E01"}, 1, nil},
		{"x.a1", []string{"x.a1"}, 1, nil},
	} {
		set := map[string]bool{}
		for _, f := range tc.files {
			set[f] = true
		}
		got, err := findSplit(tc.first, statIn(set))
		if !errors.Is(err, tc.err) || (err == nil && len(got) != tc.want) {
			t.Errorf("findSplit(%s, %v) = %v, %v; want %d, %v", tc.first, tc.files, got, err, tc.want, tc.err)
		}
	}
	// Letter suffixes carry over: x.az -> x.ba.
	s, _ := parseSplitName("x.az")
	if s.name(s.index+1) != "x.ba" {
		t.Errorf("after x.az: %s", s.name(s.index+1))
	}
}

// FuzzSplitName checks that a recognised segment name round-trips through
// its scheme and that findSplit never panics or loops.
func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"x.001", "x.000", "img.aa", "a/b.c/d.zz", "x.999", "x.zzz", "x.E01", "x.", ".aa", "x.0000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		s, ok := parseSplitName(p)
		if !ok {
			return
		}
		if got := s.name(s.index); got != p {
			t.Fatalf("name(%d) = %q, want %q", s.index, got, p)
		}
		set := map[string]bool{p: true, s.name(s.index + 1): true, s.name(s.index + 3): true}
		findSplit(p, statIn(set))
	})
}

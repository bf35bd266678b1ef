package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/hashset"
)

// HashsetCacheDir is the folder of a case holding the sorted side files of
// RDS databases that have no sha256 index (built once, reused).
const HashsetCacheDir = "hashsets"

// rehashLimit is the size up to which a hash set's file is hashed again
// each time it is used; a larger one (a full RDS) is checked by size, as
// re-reading hundreds of GB per intake is not affordable.
const rehashLimit = 1 << 30

// HashsetResult is what AddHashset recorded.
type HashsetResult struct {
	Hashset custody.Hashset `json:"hashset"`
	Lookups string          `json:"lookups"` // how lookups run: through the RDS's index, a side file, in memory
	Marked  int             `json:"marked"`  // files of evidence already in the case found in the set
}

// AddHashset records the hash set at path in case c as name (default its
// base name) of kind, and marks the files of every evidence item already
// in the case. The set is referenced by path, size and SHA-256, recorded
// in the audit log; it is only read.
func AddHashset(ctx context.Context, c *custody.Case, path, name, kind string) (*HashsetResult, error) {
	res, err := addHashset(ctx, c, path, name, kind)
	if err != nil {
		if aerr := c.Audit(custody.Entry{Action: "hashset.add", Outcome: custody.OutcomeError, Error: err.Error(),
			Details: map[string]any{"name": name, "kind": kind}}); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return res, err
}

func addHashset(ctx context.Context, c *custody.Case, path, name, kind string) (*HashsetResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum, size, err := digest.SHA256File(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("hashset %s: %w", path, err)
	}
	set, err := openCaseHashset(c, abs, name, kind)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	h := custody.Hashset{Name: set.Name, Kind: kind, Format: set.Format, Path: abs, Size: size, SHA256: sum, Entries: set.Entries}
	if !validSetName(h.Name) {
		return nil, fmt.Errorf("hashset %s: name %q: 1-64 printable characters", path, h.Name)
	}
	if err := c.AddHashset(ctx, h); err != nil {
		return nil, err
	}
	res := &HashsetResult{Hashset: h, Lookups: lookupsOf(set)}
	counts, err := markFiles(ctx, c, set, "")
	if err != nil {
		return res, err
	}
	for _, n := range counts {
		res.Marked += n
	}
	return res, c.Audit(custody.Entry{Action: "hashset.add", Outcome: custody.OutcomeOK,
		Inputs: []custody.Item{{Kind: "hashset", ID: h.Name, Path: abs, Size: size, SHA256: sum}},
		Details: map[string]any{"name": h.Name, "kind": kind, "format": h.Format, "entries": h.Entries,
			"lookups": res.Lookups, "marked": counts}})
}

func validSetName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func lookupsOf(s *hashset.Set) string {
	if s.Indexed != "" {
		return s.Indexed
	}
	return "sorted hashes in memory or a temporary side file"
}

// openCaseHashset opens a set with its RDS side file kept in the case.
func openCaseHashset(c *custody.Case, path, name, kind string) (*hashset.Set, error) {
	cache := filepath.Join(c.Dir(), HashsetCacheDir)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("hashset: %w", err)
	}
	return hashset.Open(path, hashset.Options{Name: name, Kind: kind, CacheDir: cache})
}

// markFiles records which hashed files and carved items of evidence item
// evID ("" for all) are in set, and returns the count per evidence item.
func markFiles(ctx context.Context, c *custody.Case, set *hashset.Set, evID string) (map[string]int, error) {
	files, err := c.FileHashes(ctx, evID)
	if err != nil {
		return nil, err
	}
	type evHits struct{ files, carved []int64 }
	hits := map[string]*evHits{}
	evs, err := c.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if evID == "" || e.ID == evID {
			hits[e.ID] = &evHits{} // recorded even when none match, replacing older hits
		}
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := set.Contains(hashset.Sums{MD5: f.MD5, SHA256: f.SHA256})
		if err != nil {
			return nil, err
		}
		h := hits[f.EvidenceID]
		switch {
		case !ok || h == nil:
		case f.Carved:
			h.carved = append(h.carved, f.ID)
		default:
			h.files = append(h.files, f.ID)
		}
	}
	counts := map[string]int{}
	for ev, h := range hits {
		if err := c.SetHashsetHits(ctx, set.Name, ev, h.files, h.carved); err != nil {
			return nil, err
		}
		counts[ev] = len(h.files) + len(h.carved)
	}
	return counts, nil
}

// markHashsets marks the files of evidence item evID with every hash set
// of the case, after checking each set's file is still the one recorded.
// A set that is gone or changed is named in warn and skipped.
func markHashsets(ctx context.Context, c *custody.Case, evID string, res *EvidenceResult, warn func(string, ...any)) error {
	sets, err := c.Hashsets(ctx)
	if err != nil || len(sets) == 0 {
		return err
	}
	inputs := []custody.Item{{Kind: "evidence", ID: evID}}
	matches := map[string]int{}
	var problems []string
	for _, h := range sets {
		if err := checkHashset(ctx, h); err != nil {
			msg := fmt.Sprintf("evidence %s: hashset %s not used: %v", evID, h.Name, err)
			warn("%s", msg)
			problems = append(problems, msg)
			continue
		}
		set, err := openCaseHashset(c, h.Path, h.Name, h.Kind)
		if err != nil {
			return err
		}
		counts, err := markFiles(ctx, c, set, evID)
		set.Close()
		if err != nil {
			return err
		}
		matches[h.Name] = counts[evID]
		inputs = append(inputs, custody.Item{Kind: "hashset", ID: h.Name, Path: h.Path, Size: h.Size, SHA256: h.SHA256})
	}
	res.Hashsets = matches
	return c.Audit(custody.Entry{Action: "evidence.hashsets", Outcome: custody.OutcomeOK, Inputs: inputs,
		Details: map[string]any{"matches": matches, "problems": problems}})
}

// checkHashset says whether the set's file is as recorded: same size, and
// same SHA-256 when it is small enough to hash again.
func checkHashset(ctx context.Context, h custody.Hashset) error {
	st, err := os.Stat(h.Path)
	if err != nil {
		return err
	}
	if st.Size() != h.Size {
		return fmt.Errorf("%s: %d bytes, %d when added", h.Path, st.Size(), h.Size)
	}
	if st.Size() > rehashLimit {
		return nil
	}
	sum, _, err := digest.SHA256File(ctx, h.Path)
	if err != nil {
		return err
	}
	if sum != h.SHA256 {
		return fmt.Errorf("%s: SHA-256 %s, %s when added", h.Path, sum, h.SHA256)
	}
	return nil
}

package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

// RemoveResult is what RemoveSources did: the JSON of `dataset remove`.
type RemoveResult struct {
	Removed []index.Removal         `json:"removed"`
	Unique  map[identity.Kind]int64 `json:"unique"`  // the case's unique identities afterwards
	Persons *persons.Summary        `json:"persons"` // the case's persons afterwards
}

// RemoveSources takes the sources refs name (ids, SHA-256 prefixes or
// names) out of case c's index, as if never loaded, and records each
// removal with reason. Every reference is resolved before anything is
// removed: a typo removes nothing.
func RemoveSources(ctx context.Context, c *custody.Case, refs []string, reason string) (*RemoveResult, error) {
	ix, err := openIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	var todo []index.SourceStats
	for _, ref := range refs {
		list, err := ix.FindSources(ctx, ref)
		if err != nil {
			return nil, err
		}
		if len(list) > 1 {
			ids := make([]string, len(list))
			for i, s := range list {
				ids[i] = fmt.Sprintf("#%d %s", s.ID, s.SHA256[:12])
			}
			return nil, fmt.Errorf("%q names %d sources (%s): give an id or SHA-256", ref, len(list), strings.Join(ids, ", "))
		}
		todo = append(todo, list[0])
	}
	res := &RemoveResult{Removed: []index.Removal{}}
	for _, s := range todo {
		r, err := removeSource(ctx, c, ix, s, reason)
		if err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, r)
	}
	if _, err := c.RecordShards(ctx); err != nil {
		return res, err
	}
	if res.Persons, err = relink(ctx, c, ix, LinkOptions{}); err != nil {
		return res, err
	}
	st, err := ix.Stats(ctx, index.StatsOptions{NoOverlap: true})
	if err != nil {
		return res, err
	}
	res.Unique = st.Unique
	return res, nil
}

// removeSource removes one source from the index and records it in the
// audit log, whatever the outcome.
func removeSource(ctx context.Context, c *custody.Case, ix *index.Index, s index.SourceStats, reason string) (index.Removal, error) {
	r, err := ix.RemoveSource(ctx, s.ID, reason)
	if err == nil {
		err = persons.RemoveSource(persons.Dir(ix.Dir()), s.ID)
	}
	entry := custody.Entry{Action: "dataset.remove", Inputs: []custody.Item{{Kind: "dataset", Path: s.Path, Size: s.Size, SHA256: s.SHA256}},
		Details: map[string]any{"source_id": s.ID, "name": s.Name, "reason": reason, "evidence": s.Evidence, "evidence_path": s.EvidPath,
			"unique": s.Unique, "new": s.New, "gained": r.Gained}}
	entry.Outcome = custody.OutcomeOK
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	}
	if aerr := c.Audit(entry); aerr != nil && err == nil {
		err = aerr
	}
	return r, err
}

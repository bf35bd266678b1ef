package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/persons"
)

// LinkOptions say how loads link identifiers into persons.
type LinkOptions struct {
	NoLink bool // load without linking (stats then show the last linking)
	// Hub thresholds (persons.Options); zero keeps the case's last ones.
	HubIDs, HubPhones int
}

// linkSources lists the done sources for linking, in load order, with
// every evidence item each was found on.
func linkSources(ctx context.Context, ix *index.Index) ([]persons.Source, error) {
	srcs, err := ix.Sources(ctx)
	if err != nil {
		return nil, err
	}
	cats, err := persons.SourceCategories(persons.Dir(ix.Dir()))
	if err != nil {
		return nil, err
	}
	var out []persons.Source
	for _, s := range srcs {
		if s.Status != "done" {
			continue
		}
		ps := persons.Source{ID: s.ID, Name: s.Name, Category: cats[s.ID]}
		if s.Evidence != "" {
			ps.Evidence = append(ps.Evidence, s.Evidence)
		}
		for _, o := range s.AlsoFound {
			if o.EvidenceID != "" {
				ps.Evidence = append(ps.Evidence, o.EvidenceID)
			}
		}
		out = append(out, ps)
	}
	return out, nil
}

// Relink brings case c's persons up to date with its done sources and
// records it in the audit log.
func Relink(ctx context.Context, c *custody.Case, o LinkOptions) (*persons.Summary, error) {
	ix, err := openIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	return relink(ctx, c, ix, o)
}

func relink(ctx context.Context, c *custody.Case, ix *index.Index, o LinkOptions) (*persons.Summary, error) {
	srcs, err := linkSources(ctx, ix)
	if err != nil {
		return nil, err
	}
	dir := persons.Dir(ix.Dir())
	po := persons.Options{HubIDs: o.HubIDs, HubPhones: o.HubPhones}
	if po.HubIDs == 0 || po.HubPhones == 0 {
		// The thresholds an examiner chose stay until changed.
		if st, err := persons.OpenStore(dir); err == nil {
			if sum, err := st.Summary(ctx); err == nil {
				po.HubIDs = cmpOr(po.HubIDs, sum.Options.HubIDs)
				po.HubPhones = cmpOr(po.HubPhones, sum.Options.HubPhones)
			}
			st.Close()
		} else if !errors.Is(err, persons.ErrNotBuilt) {
			return nil, err
		}
	}
	start := time.Now()
	sum, err := persons.Build(ctx, dir, srcs, po)
	entry := custody.Entry{Action: "persons.link", Outcome: custody.OutcomeOK}
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	} else {
		entry.Details = map[string]any{"persons": sum.Unique, "hubs": sum.HubsTotal, "records": sum.Records,
			"method": sum.Method, "sources": len(srcs), "seconds": time.Since(start).Seconds()}
	}
	if aerr := c.Audit(entry); aerr != nil && err == nil {
		err = fmt.Errorf("%w: %v", errAudit, aerr)
	}
	return sum, err
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// SetCategory tags the source ref names (an id, a SHA-256 prefix or a
// name only one source has) with an information category (see
// persons.Categories; "" removes it), records it in the audit log and
// relinks, so the sentencing counts follow.
func SetCategory(ctx context.Context, c *custody.Case, ref, category string) (*persons.Summary, error) {
	if _, ok := persons.LookupCategory(category); !ok && category != "" {
		return nil, fmt.Errorf("category %q: one of %v", category, persons.CategoryNames())
	}
	ix, err := openIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	list, err := ix.FindSources(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("%q names %d sources: give an id or SHA-256", ref, len(list))
	}
	s := list[0]
	err = persons.SetCategory(persons.Dir(ix.Dir()), s.ID, category)
	entry := custody.Entry{Action: "source.set_category", Outcome: custody.OutcomeOK,
		Inputs:  []custody.Item{{Kind: "dataset", Path: s.Path, Size: s.Size, SHA256: s.SHA256}},
		Details: map[string]any{"source_id": s.ID, "name": s.Name, "category": category}}
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	}
	if aerr := c.Audit(entry); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		return nil, err
	}
	return relink(ctx, c, ix, LinkOptions{})
}

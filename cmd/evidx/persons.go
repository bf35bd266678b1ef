package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/persons"
	"github.com/spf13/pflag"
)

// linkOptions are the person-linking flags of the commands that load.
type linkOptions struct {
	noLink    bool
	hubIDs    int
	hubPhones int
}

func (o *linkOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.noLink, "no-link", false, "do not relink persons after the load (stats then show the last linking)")
	fs.IntVar(&o.hubIDs, "hub-ids", 1, "a value seen with more than this many distinct ID numbers is a hub: it links nobody")
	fs.IntVar(&o.hubPhones, "hub-phones", 10, "a value seen with more than this many distinct phone numbers is a hub")
}

func (o linkOptions) persons() persons.Options {
	return persons.Options{HubIDs: o.hubIDs, HubPhones: o.hubPhones}
}

// linkSources lists the done sources for linking, with every evidence
// item each was found on.
func linkSources(ctx context.Context, ix *index.Index) ([]persons.Source, error) {
	srcs, err := ix.Sources(ctx)
	if err != nil {
		return nil, err
	}
	var out []persons.Source
	for _, s := range srcs {
		if s.Status != "done" {
			continue
		}
		ps := persons.Source{ID: s.ID, Name: s.Name}
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

// relink rebuilds the case's persons from the stored records and audits it.
func relink(ctx context.Context, c *custody.Case, ix *index.Index, o linkOptions, stderr io.Writer) (*persons.Summary, error) {
	srcs, err := linkSources(ctx, ix)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	sum, err := persons.Build(ctx, persons.Dir(ix.Dir()), srcs, o.persons())
	entry := custody.Entry{Action: "persons.link", Outcome: custody.OutcomeOK}
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	} else {
		entry.Details = map[string]any{"persons": sum.Unique, "hubs": len(sum.Hubs), "records": sum.Records,
			"method": sum.Method, "seconds": time.Since(start).Seconds()}
		fmt.Fprintf(stderr, "evidx: persons linked: %d persons, %d hubs, from %d records (%.1f s)\n",
			sum.Unique, len(sum.Hubs), sum.Records, time.Since(start).Seconds())
	}
	if aerr := c.Audit(entry); aerr != nil && err == nil {
		err = aerr
	}
	return sum, err
}

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
	"github.com/spf13/cobra"
)

// statsOptions are the flags of `evidx stats`.
type statsOptions struct {
	json      bool
	noOverlap bool
}

func newStatsCmd() *cobra.Command {
	var opts statsOptions
	cmd := &cobra.Command{
		Use:   "stats DIR",
		Short: "Unique identities per kind, per source, per evidence item, and overlaps",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runStats(cmd.Context(), opts, a, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print one JSON object on stdout")
	cmd.Flags().BoolVar(&opts.noOverlap, "no-overlap", false, "skip the overlap between sources (a full scan of the index)")
	return cmd
}

func runStats(ctx context.Context, opts statsOptions, a []string, stdout io.Writer) error {
	c, err := openCaseRead(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		return err
	}
	st, err := ix.Stats(ctx, index.StatsOptions{NoOverlap: opts.noOverlap})
	if err != nil {
		return err
	}
	out := statsResult{Stats: st}
	ps, err := persons.OpenStore(persons.Dir(ix.Dir()))
	switch {
	case errors.Is(err, persons.ErrNotBuilt):
	case err != nil:
		return err
	default:
		defer ps.Close()
		sum, err := ps.Summary(ctx)
		if err != nil {
			return err
		}
		out.Persons = &personsStats{Summary: sum}
		if opts.noOverlap {
			sum.Overlap = []persons.Overlap{}
		}
		out.Demographics = &sum.Demographics
	}
	if opts.json {
		return writeJSON(stdout, out)
	}
	return printStats(stdout, out)
}

// statsResult is the JSON of `stats`: the index's counts, the persons
// linked (absent when no linking ran) and the demographics of the ID
// numbers.
type statsResult struct {
	index.Stats
	Persons      *personsStats         `json:"persons,omitempty"`
	Demographics *persons.Demographics `json:"demographics,omitempty"`
}

// personsStats is stats' persons object.
type personsStats struct {
	*persons.Summary
}

// kindOrder lists kinds in the fixed identity order, then any others sorted.
func kindOrder(ms ...map[identity.Kind]int64) []identity.Kind {
	out := slices.Clone(identity.Kinds())
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out[len(identity.Kinds()):])
	return out
}

// kindCounts formats {"phone":3,"email":1} as "phone 3, email 1".
func kindCounts(m map[identity.Kind]int64) string {
	var parts []string
	for _, k := range kindOrder(m) {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// maxOverlapRows bounds the overlap table of the human output.
const maxOverlapRows = 15

// printStats writes the human-readable tables.
func printStats(w io.Writer, out statsResult) error {
	st := out.Stats
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Columns only for kinds the case holds (all when it holds none yet).
	var kinds []identity.Kind
	for _, k := range kindOrder(st.Unique) {
		if st.Unique[k] > 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = kindOrder(st.Unique)
	}
	fmt.Fprintln(w, "Unique identities")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, st.Unique[k])
	}
	tw.Flush()
	// Kinds are not added up: one person has several identifiers.
	if p := out.Persons; p != nil {
		fmt.Fprintf(w, "\nPersons (identifiers linked through records; %s)\n", p.Built)
		fmt.Fprintf(tw, "unique persons\t%d\t\n", p.Unique)
		fmt.Fprintf(tw, "hubs (link nobody)\t%d\t\n", p.HubsTotal)
		tw.Flush()
		for _, h := range p.Hubs[:min(len(p.Hubs), 10)] {
			fmt.Fprintf(w, "  hub %s %s: %d people (%s)\n", h.Kind, oneLine(h.Value), h.People, h.Rule)
		}
		if more := p.HubsTotal - int64(min(len(p.Hubs), 10)); more > 0 {
			fmt.Fprintf(w, "  (%d more hubs: the %d touching the most people in --json, every one by export --hubs)\n", more, len(p.Hubs))
		}
		fmt.Fprintf(w, "Method: %s\n", p.Method)
		if len(p.Unlinked) > 0 {
			fmt.Fprintf(w, "Warning: sources %v have no records to link (loaded before linking, or cut short): dataset add --reload links them\n", p.Unlinked)
		}
		fmt.Fprintln(w)
		printSentencing(w, p.Sentencing)
	} else {
		fmt.Fprintln(w, "\nPersons: not linked yet (load a dataset)")
	}
	if d := out.Demographics; d != nil && len(d.Province) > 0 {
		fmt.Fprintf(w, "\nUnique ID numbers by province (%s)\n", d.Edition)
		for _, p := range d.Province {
			fmt.Fprintf(tw, "%s\t%s\t%d\t\n", p.Code, p.Name, p.CNID)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nSources (%d)\n", len(st.Sources))
	header := "name\tevidence\trows\trejected"
	for _, k := range kinds {
		header += "\t" + string(k) + " unique\t" + string(k) + " new"
	}
	fmt.Fprintln(tw, header+"\tstatus\t")
	for _, s := range st.Sources {
		ev := s.Evidence
		if ev == "" {
			ev = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%d\t%d", oneLine(s.Name), oneLine(ev), s.Rows, s.Rejected)
		for _, k := range kinds {
			line += fmt.Sprintf("\t%d\t%d", s.Unique[k], s.New[k])
		}
		fmt.Fprintln(tw, line+"\t"+s.Status+"\t")
	}
	tw.Flush()

	if len(st.Evidence) > 0 {
		fmt.Fprintf(w, "\nEvidence items (%d)\n", len(st.Evidence))
		header := "evidence\tsources\trows\trejected"
		for _, k := range kinds {
			header += "\t" + string(k) + " unique"
		}
		fmt.Fprintln(tw, header+"\t")
		for _, e := range st.Evidence {
			line := fmt.Sprintf("%s\t%d\t%d\t%d", oneLine(e.ID), e.Sources, e.Rows, e.Rejected)
			for _, k := range kinds {
				line += fmt.Sprintf("\t%d", e.Unique[k])
			}
			fmt.Fprintln(tw, line+"\t")
		}
		tw.Flush()
	}
	if len(st.Overlap) > 0 {
		// Pairs grow with the square of the sources: the table shows the
		// largest overlaps; --json has them all.
		top := slices.Clone(st.Overlap)
		slices.SortStableFunc(top, func(a, b index.Overlap) int { return cmp.Compare(b.Shared, a.Shared) })
		fmt.Fprintln(w, "\nOverlap between sources (largest first)")
		fmt.Fprintln(tw, "a\tb\tshared\t")
		for _, o := range top[:min(len(top), maxOverlapRows)] {
			fmt.Fprintf(tw, "%s\t%s\t%d\t\n", oneLine(o.A), oneLine(o.B), o.Shared)
		}
		tw.Flush()
		if len(top) > maxOverlapRows {
			fmt.Fprintf(w, "(%d more pairs in --json)\n", len(top)-maxOverlapRows)
		}
	}
	return nil
}

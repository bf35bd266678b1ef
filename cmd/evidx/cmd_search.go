package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
	"github.com/spf13/cobra"
)

// searchOptions are the flags of `evidx search`.
type searchOptions struct {
	kind string
	file string
	json bool
}

func newSearchCmd() *cobra.Command {
	var opts searchOptions
	cmd := &cobra.Command{
		Use:   "search DIR [VALUE...]",
		Short: "Look identities up in a case (values normalised first; any spelling)",
		Long: `Look phone numbers, e-mail addresses, ID numbers or bank cards up in the
case's identity index. Each VALUE is normalised as every kind (or only --kind)
and looked up in the one shard that can hold it. --file reads values one per
line (e.g. victims who reported) and reports which of them the case holds.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runSearch(cmd.Context(), opts, a, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.kind, "kind", "", "only this kind (phone, email, cn_id, bank_card)")
	cmd.Flags().StringVar(&opts.file, "file", "", "read values one per line from this file (- for stdin)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print one JSON object on stdout")
	return cmd
}

// searchMatch is one match with the value as the user typed it.
type searchMatch struct {
	Query string `json:"query"`
	index.Match
	// Person is everything linked to the value (absent when persons
	// were never linked).
	Person *persons.Person `json:"person,omitempty"`
}

// searchSummary ends a search: how many values were found, not found, or
// not an identifier (fail their check).
type searchSummary struct {
	Values          int `json:"values"`
	Found           int `json:"found"`
	NotFound        int `json:"not_found"`
	NotAnIdentifier int `json:"not_an_identifier"`
}

// searchResult is the JSON of `search`.
type searchResult struct {
	Matches  []searchMatch `json:"matches"`
	NotFound []string      `json:"not_found"`
	// Invalid lists values that look like a kind but fail its check (an ID
	// number with a wrong check digit): never identities, so never found.
	Invalid []string      `json:"invalid"`
	Summary searchSummary `json:"summary"`
}

func runSearch(ctx context.Context, opts searchOptions, a []string, stdout io.Writer) error {
	kinds := identity.Kinds()
	if opts.kind != "" {
		k := identity.Kind(opts.kind)
		if !k.IsIdentity() {
			return usageError{fmt.Errorf("--kind %q: one of %v", opts.kind, identity.Kinds())}
		}
		kinds = []identity.Kind{k}
	}
	values := a[1:]
	if opts.file != "" {
		vs, err := readValues(opts.file)
		if err != nil {
			return err
		}
		values = append(values, vs...)
	}
	if len(values) == 0 {
		return usageError{errors.New("give VALUE arguments or --file")}
	}
	c, err := openCaseRead(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	ix, err := index.Open(ctx, c.DB(), c.IndexDir(), index.Options{Shards: c.Shards()})
	if err != nil {
		return err
	}
	s := ix.NewSearcher()
	defer s.Close()
	ps, err := persons.OpenStore(persons.Dir(ix.Dir()))
	if err != nil && !errors.Is(err, persons.ErrNotBuilt) {
		return err
	}
	if ps != nil {
		defer ps.Close()
	}
	person := func(k identity.Kind, v string) (*persons.Person, error) {
		if ps == nil {
			return nil, nil
		}
		return ps.Lookup(ctx, k, v)
	}
	res := searchResult{Matches: []searchMatch{}, NotFound: []string{}, Invalid: []string{}}
	for _, q := range values {
		found, invalid := false, false
		for _, k := range kinds {
			v, r := identity.Normalize(k, q)
			if r == identity.Invalid {
				invalid = true
			}
			if r != identity.Valid {
				continue
			}
			m, ok, err := s.Lookup(ctx, k, v)
			if err != nil {
				return err
			}
			if ok {
				found = true
				p, err := person(k, v)
				if err != nil {
					return err
				}
				res.Matches = append(res.Matches, searchMatch{Query: q, Match: m, Person: p})
			}
		}
		switch {
		case found:
		case invalid:
			res.Invalid = append(res.Invalid, q)
		default:
			res.NotFound = append(res.NotFound, q)
		}
	}
	res.Summary = searchSummary{Values: len(values), Found: len(values) - len(res.NotFound) - len(res.Invalid),
		NotFound: len(res.NotFound), NotAnIdentifier: len(res.Invalid)}
	if opts.json {
		return writeJSON(stdout, res)
	}
	for _, m := range res.Matches {
		fmt.Fprintf(stdout, "%s\t%s %s\n", oneLine(m.Query), m.Kind, oneLine(m.Value))
		for _, h := range m.Sources {
			ev := ""
			if h.Evidence != "" {
				ev = fmt.Sprintf(" [evidence %s %s]", oneLine(h.Evidence), oneLine(h.EvidencePath))
			}
			fmt.Fprintf(stdout, "\t%s%s: %d×, first at %s\n", oneLine(h.Source), ev, h.Occurrences, oneLine(h.FirstLoc))
		}
		printPerson(stdout, m.Person)
	}
	for _, q := range res.NotFound {
		fmt.Fprintf(stdout, "%s\tnot found\n", oneLine(q))
	}
	for _, q := range res.Invalid {
		fmt.Fprintf(stdout, "%s\tinvalid (fails its check; never an identity)\n", oneLine(q))
	}
	if opts.file != "" {
		fmt.Fprintf(stdout, "%d values: %d found, %d not found, %d not an identifier\n",
			res.Summary.Values, res.Summary.Found, res.Summary.NotFound, res.Summary.NotAnIdentifier)
	}
	return nil
}

// printPerson writes the person linked to a match.
func printPerson(w io.Writer, p *persons.Person) {
	if p == nil {
		return
	}
	if p.Hub != nil {
		fmt.Fprintf(w, "\thub: links nobody, touches %d people (%s)\n", p.Hub.People, p.Hub.Rule)
		return
	}
	fmt.Fprintf(w, "\tperson #%d:", p.ID)
	for _, id := range p.Identifiers {
		fmt.Fprintf(w, " %s %s;", id.Kind, oneLine(id.Value))
	}
	fmt.Fprintln(w)
	if len(p.Names) > 0 {
		fmt.Fprintf(w, "\t  names: %s\n", oneLine(strings.Join(p.Names, "; ")))
	} else {
		fmt.Fprintf(w, "\t  names: none (%s)\n", p.NamesNote)
	}
	if len(p.Addresses) > 0 {
		fmt.Fprintf(w, "\t  addresses: %s\n", oneLine(strings.Join(p.Addresses, "; ")))
	}
	for _, src := range p.Sources {
		ev := ""
		if len(src.Evidence) > 0 {
			ev = " [evidence " + oneLine(strings.Join(src.Evidence, ", ")) + "]"
		}
		fmt.Fprintf(w, "\t  source #%d %s%s\n", src.ID, oneLine(src.Name), ev)
	}
	for _, l := range p.Locations {
		fmt.Fprintf(w, "\t  seen in %s at %s\n", oneLine(l.Source), oneLine(l.Loc))
	}
	if p.Truncated {
		fmt.Fprintf(w, "\t  (%d records in all; --json lists %d)\n", p.Records, len(p.Locations))
	}
}

// readValues reads one value per line; blank lines are skipped.
func readValues(path string) ([]string, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v := strings.TrimSpace(sc.Text()); v != "" {
			out = append(out, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

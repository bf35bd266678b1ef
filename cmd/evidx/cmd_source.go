package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/evidx/evidx/persons"
	"github.com/evidx/evidx/pipeline"
	"github.com/spf13/cobra"
)

func newSourceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Tag the sources of a case's identity index",
	}
	var asJSON bool
	set := &cobra.Command{
		Use:   "set-category DIR SOURCE CATEGORY",
		Short: "Tag a source with its information category for the sentencing counts",
		Long: `Tag a loaded source (an id as 'evidx stats' lists them, a SHA-256 or a prefix
of at least 8 hex digits, or a name only one source has) with the category of
information it holds, as 法释〔2017〕10号 art. 5 distinguishes them:
` + categoryList() + `
"" removes the tag. The persons are counted again per category (stats
--json persons.sentencing); the change is recorded in the audit log.`,
		Args: args(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runSetCategory(cmd.Context(), a, asJSON, cmd.OutOrStdout())
		},
	}
	set.Flags().BoolVar(&asJSON, "json", false, "print the persons' sentencing counts as one JSON object")
	cmd.AddCommand(set)
	return cmd
}

func categoryList() string {
	var b strings.Builder
	for _, c := range persons.Categories {
		fmt.Fprintf(&b, "  %-14s %s (情节严重 at %d persons, 特别严重 at %d)\n", c.Name, c.Label, c.Serious, 10*c.Serious)
	}
	return b.String()
}

func runSetCategory(ctx context.Context, a []string, asJSON bool, stdout io.Writer) error {
	if _, ok := persons.LookupCategory(a[2]); !ok && a[2] != "" {
		return usageError{fmt.Errorf("category %q: one of %s", a[2], strings.Join(persons.CategoryNames(), ", "))}
	}
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	sum, err := pipeline.SetCategory(ctx, c, a[1], a[2])
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, sum.Sentencing)
	}
	printSentencing(stdout, sum.Sentencing)
	return nil
}

// printSentencing writes the sentencing counts.
func printSentencing(w io.Writer, s persons.Sentencing) {
	if len(s.Categories) == 0 {
		fmt.Fprintln(w, "Sentencing counts: no source has a category (evidx source set-category)")
		return
	}
	fmt.Fprintln(w, "Sentencing counts (法释〔2017〕10号 art. 5; persons, each counted once per category)")
	for _, c := range s.Categories {
		fmt.Fprintf(w, "  %-14s %s: %d persons (情节严重 %d, 特别严重 %d): %s\n", c.Name, c.Label, c.Persons, c.Serious, c.EspeciallySerious, c.Level)
	}
	fmt.Fprintf(w, "  combined in proportion: %.2f of the 情节严重 threshold: %s\n", s.Combined, s.CombinedLevel)
	if s.Uncategorized > 0 {
		fmt.Fprintf(w, "  %d persons in sources without a category are not counted\n", s.Uncategorized)
	}
}

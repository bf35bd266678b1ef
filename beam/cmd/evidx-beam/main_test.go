package main

import (
	"flag"
	"slices"
	"testing"
)

// TestFlagsFirst: flags after the files (as evidx takes them) are moved
// before them, with their values, and Beam's own flags parse too.
func TestFlagsFirst(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	j := fs.Bool("json", false, "")
	r := fs.String("runner", "", "")
	n := fs.Int("shards", 0, "")
	var cols stringList
	fs.Var(&cols, "column", "")
	args := []string{"a.csv", "--json", "--runner", "prism", "b.csv", "--shards=8", "--column", "2=phone", "--", "--c.csv"}
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		t.Fatal(err)
	}
	if !*j || *r != "prism" || *n != 8 || !slices.Equal(cols, stringList{"2=phone"}) {
		t.Errorf("json %v runner %q shards %d columns %v", *j, *r, *n, cols)
	}
	if got := fs.Args(); !slices.Equal(got, []string{"a.csv", "b.csv", "--c.csv"}) {
		t.Errorf("files %q", got)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/hashset"
	"github.com/evidx/evidx/ingest/listing"
	"github.com/evidx/evidx/pipeline"
)

// lsSets are the hash sets `ls --hashset` marks files with.
type lsSets []*hashset.Set

// openHashsets opens each [NAME=]FILE read-only. The side file of an RDS
// without a sha256 index is kept in the user's cache folder
// ($XDG_CACHE_HOME/evidx/hashsets), so it is built once, not per listing.
func openHashsets(specs []string) (lsSets, error) {
	var sets lsSets
	cache := ""
	if len(specs) > 0 {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "evidx", "hashsets")
			if os.MkdirAll(cache, 0o700) != nil {
				cache = "" // a temporary folder then
			}
		}
	}
	for _, spec := range specs {
		name, path := splitHashsetSpec(spec)
		s, err := hashset.Open(path, hashset.Options{Name: name, CacheDir: cache})
		if err != nil {
			sets.Close()
			return nil, err
		}
		sets = append(sets, s)
	}
	return sets, nil
}

// splitHashsetSpec reads NAME=FILE, unless the whole spec names a file.
func splitHashsetSpec(spec string) (name, path string) {
	if _, err := os.Stat(spec); err == nil {
		return "", spec
	}
	if n, p, ok := strings.Cut(spec, "="); ok && n != "" && !strings.ContainsRune(n, os.PathSeparator) {
		return n, p
	}
	return "", spec
}

// mark names on e every set holding its content's hash.
func (ss lsSets) mark(e *listing.Entry) error {
	if len(ss) == 0 || e.SHA256 == nil {
		return nil
	}
	sums := hashset.Sums{SHA256: *e.SHA256}
	if e.MD5 != nil {
		sums.MD5 = *e.MD5
	}
	if e.SHA1 != nil {
		sums.SHA1 = *e.SHA1
	}
	for _, s := range ss {
		ok, err := s.Contains(sums)
		if err != nil {
			return err
		}
		if ok {
			e.Hashsets = append(e.Hashsets, s.Name)
		}
	}
	return nil
}

func (ss lsSets) Close() error {
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// hashsetOptions are the flags of `evidx hashset add`.
type hashsetOptions struct {
	name      string
	knownGood bool
	knownBad  bool
	kind      string
	json      bool
}

func newHashsetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hashset",
		Short: "Record hash sets (NSRL RDSv3, hashdeep, md5sum/sha256sum lists) in a case",
	}
	var opts hashsetOptions
	add := &cobra.Command{
		Use:   "add CASE FILE",
		Short: "Record a known-good or known-bad hash set; evidence files matching it are marked",
		Long: `Record a hash set in the case: NIST NSRL RDSv3 (SQLite), a hashdeep list,
md5sum/sha1sum/sha256sum output, or one hash per line. The set stays where it
is and is referenced by path, size and SHA-256 (recorded in the audit log);
it is opened read-only. Files of evidence already in the case are marked now,
those of evidence added later at 'evidence add', and the report lists the
matches, known-bad first.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runHashsetAdd(cmd.Context(), opts, a, cmd.OutOrStdout())
		},
	}
	f := add.Flags()
	f.StringVar(&opts.name, "name", "", "the set's name (default: the file's base name)")
	f.BoolVar(&opts.knownGood, "known-good", false, "files in the set are known good (NSRL)")
	f.BoolVar(&opts.knownBad, "known-bad", false, "files in the set are known bad (notable)")
	f.StringVar(&opts.kind, "kind", "", "another kind of set, by name")
	f.BoolVar(&opts.json, "json", false, "print one JSON object on stdout")
	cmd.AddCommand(add)
	return cmd
}

func runHashsetAdd(ctx context.Context, opts hashsetOptions, a []string, stdout io.Writer) error {
	kind := ""
	n := 0
	if opts.knownGood {
		kind, n = hashset.KnownGood, n+1
	}
	if opts.knownBad {
		kind, n = hashset.KnownBad, n+1
	}
	if opts.kind != "" {
		kind, n = opts.kind, n+1
	}
	if n != 1 {
		return usageError{errors.New("give one of --known-good, --known-bad or --kind NAME")}
	}
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := pipeline.AddHashset(ctx, c, a[1], opts.name, kind)
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "hashset %s (%s, %s, %s): %d files of evidence marked\n", oneLine(res.Hashset.Name), res.Hashset.Kind,
		res.Hashset.Format, res.Hashset.SHA256[:12], res.Marked)
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/pipeline"
)

// exportOptions are the flags of `evidx export`.
type exportOptions struct {
	Files    string // output root
	Manifest string // hashdeep manifest path
	Persons  string // persons CSV path
	Hubs     string // hubs CSV path
	JSON     bool
}

func newExportCmd() *cobra.Command {
	var opts exportOptions
	cmd := &cobra.Command{
		Use:   "export DIR --files OUT | --persons OUT.csv | --hubs OUT.csv",
		Short: "Copy extracted and carved files out of a case under safe names, with a hashdeep manifest; or write its persons or hubs as CSV",
		Long: `Copy every extracted and carved file of the case DIR into OUT (which must
not exist or be empty), as OUT/<evidence id>/vol-<n>/<path> and
OUT/<evidence id>/carved/<offset>-<type>.<type>. Names from the evidence are
made safe: no "..", never absolute, control characters and '%' written as
%XX, collisions given "~2", "~3". Each copy is re-hashed against the case.

The hashdeep manifest (default: manifest.hashdeep beside OUT, since a
manifest inside OUT would itself be an unknown file to hashdeep -r OUT)
lists each file by its name relative to OUT ("./EV1/vol-1/..."), so a copy
of OUT, moved or copied anywhere with its manifest, audits with

    cd OUT && hashdeep -r -l -a -k ../manifest.hashdeep .

(the manifest's header gives the command). The manifest's SHA-256 is in the
audit log.

--persons OUT.csv writes one row per linked person (person, phone, email,
cn_id, bank_card, names, addresses, sources, evidence, records; lists joined
by "; ") for victim notification: a new file, mode 0600, outside the case,
its SHA-256 in the audit log.

--hubs OUT.csv writes every hub (kind, value, people, rule): the values
that link nobody because too many people share them. stats lists only the
1,000 touching the most people; a leak of recycled numbers has millions.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runExport(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Files, "files", "", "output directory for the files (required)")
	f.StringVar(&opts.Manifest, "manifest", "", "hashdeep manifest path (default: manifest.hashdeep beside OUT)")
	f.StringVar(&opts.Persons, "persons", "", "write the linked persons as CSV to this new file")
	f.StringVar(&opts.Hubs, "hubs", "", "write every hub as CSV to this new file")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	return cmd
}

func runExport(ctx context.Context, cmd *cobra.Command, opts exportOptions, a []string) error {
	if opts.Files == "" && opts.Persons == "" && opts.Hubs == "" {
		return usageError{errors.New("export: --files OUT, --persons OUT.csv or --hubs OUT.csv is required")}
	}
	c, err := openCase(ctx, a[0])
	if err != nil {
		return err
	}
	defer c.Close()
	csvs := []struct {
		out, what string
		export    func(context.Context, *custody.Case, string) (*pipeline.PersonsExport, error)
	}{{opts.Persons, "persons", pipeline.ExportPersons}, {opts.Hubs, "hubs", pipeline.ExportHubs}}
	var results []any
	for _, e := range csvs {
		if e.out == "" {
			continue
		}
		res, err := e.export(ctx, c, e.out)
		if err != nil {
			return err
		}
		results = append(results, res)
		if !opts.JSON {
			n := res.Persons
			if e.what == "hubs" {
				n = res.Hubs
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d %s exported to %s (sha256 %s)\n", n, e.what, res.Path, res.SHA256)
		}
	}
	if opts.Files == "" {
		if opts.JSON && len(results) == 1 {
			return writeJSON(cmd.OutOrStdout(), results[0])
		}
		if opts.JSON {
			return writeJSON(cmd.OutOrStdout(), results)
		}
		return nil
	}
	res, err := c.Export(ctx, custody.ExportOptions{Dir: opts.Files, Manifest: opts.Manifest})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d files (%d bytes) exported to %s\nmanifest: %s\ncheck with: %s\n",
		res.Files, res.Bytes, res.Dir, res.Manifest, res.AuditCommand)
	return nil
}

package main

import (
	"github.com/spf13/pflag"

	"github.com/evidx/evidx/ingest"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
)

// recordsOptions are the record reader's bounds for the CLI.
func recordsOptions(tmp string) records.Options { return records.Options{TmpDir: tmp} }

// parseOptions are the flags that override what sniffing decided about a
// dataset, shared by count and dataset add.
type parseOptions struct {
	Format    string
	Delimiter string
	Encoding  string
	NoHeader  bool
	Columns   []string
}

func (o *parseOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Format, "format", "", "read every file as `FORMAT` (csv, tsv, delimited, jsonl, sql, text) instead of sniffing")
	f.StringVar(&o.Delimiter, "delimiter", "", "field separator `SEP` (any bytes, e.g. ---- ; \\t for tab); implies delimited text")
	f.StringVar(&o.Encoding, "encoding", "", "character set `ENC` (utf-8, utf-8-bom, utf-16le, utf-16be, gb18030, gbk) instead of detecting it")
	f.BoolVar(&o.NoHeader, "no-header", false, "the first record is data, not a header")
	f.StringArrayVar(&o.Columns, "column", nil, "force a column's role: `NAME_OR_INDEX=KIND` (1-based index; KIND phone, email, cn_id, bank_card or none); repeatable")
}

// apply puts the overrides into ro and returns the forced column roles.
func (o *parseOptions) apply(ro *records.Options) (map[string]identity.Kind, error) {
	ro.Format, ro.Encoding, ro.NoHeader = o.Format, o.Encoding, o.NoHeader
	ro.Delimiter = unescapeDelimiter(o.Delimiter)
	if err := ro.Check(); err != nil {
		return nil, err
	}
	return ingest.ParseColumns(o.Columns)
}

// unescapeDelimiter turns the shell-friendly spellings \t and "tab" into a tab.
func unescapeDelimiter(d string) string {
	switch d {
	case `\t`, "tab", "TAB":
		return "\t"
	}
	return d
}

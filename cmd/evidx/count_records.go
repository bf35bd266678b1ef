package main

import "github.com/evidx/evidx/ingest/records"

// recordsOptions are the record reader's bounds for the CLI.
func recordsOptions(tmp string) records.Options { return records.Options{TmpDir: tmp} }

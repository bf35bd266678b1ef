package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
)

// Decision says whether a file found on evidence is loaded as a leaked
// dataset, and why.
type Decision struct {
	Path    string `json:"path"`
	Dataset bool   `json:"dataset"`
	Reason  string `json:"reason"`
}

// Qualification bounds: how many rows are read, the fewest a dataset has,
// and the share of plain-text lines that must hold an identifier.
const (
	qualifyRows      = 2000
	qualifyMinRows   = 1 // a header naming the column suffices; values need 3 to decide anyway
	qualifyTextShare = 0.3
)

var errEnough = errors.New("ingest: enough rows read")

// QualifyDataset reads the head of the file at path and decides whether
// it is a table of people: structured records (delimited, JSON Lines, SQL,
// SQLite) of which some column takes an identity kind, from its header or
// from its values as a load would decide them; or plain text whose lines
// mostly carry identifiers. A binary file that happens to decode as text,
// or a document, is not one: the feature scan covers it. A file that does
// not read at all is no dataset, with the error as the reason.
func QualifyDataset(ctx context.Context, path string, ro records.Options) Decision {
	d := Decision{Path: path}
	f, err := os.Open(path)
	if err != nil {
		d.Reason = err.Error()
		return d
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		d.Reason = err.Error()
		return d
	}
	p := &pipeline{opts: Options{SampleRows: qualifyRows}, roles: map[string]*roles{}, schemas: map[string]*schemaState{}, today: identity.TodayOf(time.Now())}
	var rows, textLines, textHits int
	formats := map[string]bool{}
	_, rerr := records.Read(ctx, records.Input{R: f, ReaderAt: f, Size: fi.Size(), Path: path}, ro, func(c *records.Chunk) error {
		formats[c.Info.Format.Name()] = true
		if c.Info.Format.Kind == records.KindText {
			_ = c.Rows(func(r *records.Row) error {
				if textLines >= qualifyRows {
					return nil
				}
				textLines++
				hit := false
				if _, _, ok := wholeLine(r.Fields[0], p.today); ok {
					hit = true
				} else {
					identity.ScanTextAt(identity.Fold(r.Fields[0]), p.today, func(_ identity.Kind, _ string, res identity.Result) {
						hit = hit || res == identity.Valid
					})
				}
				if hit {
					textHits++
				}
				return nil
			})
		} else {
			_ = c.Rows(func(r *records.Row) error {
				if r.Reject == "" {
					rows++
				}
				return nil
			})
			_ = p.admit(c, func(*records.Chunk) error { return nil })
		}
		if rows >= qualifyRows || textLines >= qualifyRows {
			return errEnough
		}
		return nil
	})
	if rerr != nil && !errors.Is(rerr, errEnough) && rows == 0 && textLines == 0 {
		d.Reason = "unreadable as records: " + oneLineErr(rerr)
		return d
	}
	_ = p.finish(func(*records.Chunk) error { return nil })
	var idCols []string
	for _, st := range p.schemaOrder {
		for _, c := range st.cols {
			if c.Kind != "" && c.Kind != NoKind {
				idCols = append(idCols, fmt.Sprintf("%s %s by %s", c.label(), c.Kind, c.DecidedBy))
			}
		}
	}
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	format := strings.Join(names, "+")
	switch {
	case len(idCols) > 0 && rows >= qualifyMinRows:
		d.Dataset = true
		d.Reason = fmt.Sprintf("%s records with identity columns: %s", format, strings.Join(idCols, ", "))
	case textLines >= 3 && float64(textHits) >= qualifyTextShare*float64(textLines):
		d.Dataset = true
		d.Reason = fmt.Sprintf("text: %d of %d lines sampled hold identifiers", textHits, textLines)
	case rows > 0:
		d.Reason = fmt.Sprintf("%s: no identity column in %d rows sampled", format, rows)
	case textLines > 0:
		d.Reason = fmt.Sprintf("text: %d of %d lines sampled hold identifiers (under %.0f%%)", textHits, textLines, 100*qualifyTextShare)
	default:
		d.Reason = "no records"
	}
	return d
}

func oneLineErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

package job

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/evidx/evidx/ingest/identity"
)

// ParseCount decodes a count report.
func ParseCount(b []byte) (CountReport, error) {
	var rep CountReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("count report: %w", err)
	}
	return rep, nil
}

// PrintCount writes the report as the table evidx count prints.
func PrintCount(w io.Writer, rep CountReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	kinds := identity.Kinds()
	fmt.Fprint(tw, "file\tformat\tencoding\tcompression\trows\trejected\t")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprintln(tw, "invalid\t")
	for _, f := range rep.Files {
		if f.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t", oneLine(f.Path), f.Error)
			for range kinds {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprintln(tw, "\t")
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t", oneLine(f.Path), f.Format, f.Encoding, f.Compression, f.Rows, f.Rejected)
		inv := int64(0)
		for _, k := range kinds {
			fmt.Fprintf(tw, "%d\t", f.Unique[k])
			inv += f.Invalid[k]
		}
		fmt.Fprintf(tw, "%d\t\n", inv)
	}
	fmt.Fprint(tw, "UNIQUE (all files)\t\t\t\t\t\t")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%d\t", rep.Unique[k])
	}
	fmt.Fprintln(tw, "\t")
	return tw.Flush()
}

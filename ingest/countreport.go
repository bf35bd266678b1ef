package ingest

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/display"
)

// CountFile is one file of a count report.
type CountFile struct {
	FileStats
	Unique map[identity.Kind]int64 `json:"unique"`
	Error  string                  `json:"error,omitempty"`
}

// CountReport is the JSON document `evidx count --json` prints, and
// `evidx-beam count --json` prints the same.
type CountReport struct {
	Unique   map[identity.Kind]int64 `json:"unique"`
	Files    []CountFile             `json:"files"`
	Problems []string                `json:"problems"`
	Spills   int64                   `json:"spills"`
}

// FileProblems are the problems a count reports for a file read without
// a fatal error, each led by its path: the members that failed, then the
// reader's doubts (warnings).
func FileProblems(st FileStats) (members, doubts []string) {
	path := display.OneLine(st.Path)
	for _, m := range st.Members {
		if m.Error != "" {
			members = append(members, fmt.Sprintf("%s: member %q: %s", path, display.OneLine(m.Member), display.OneLine(m.Error)))
		}
	}
	for _, p := range st.Problems {
		doubts = append(doubts, path+": "+display.OneLine(p))
	}
	return members, doubts
}

// WriteCountTable writes a count report as the table `evidx count` prints
// for people: a row per file, then the unique counts over all files.
func WriteCountTable(w io.Writer, rep CountReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	kinds := identity.Kinds()
	fmt.Fprint(tw, "file\tformat\tencoding\tcompression\trows\trejected\t")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprintln(tw, "invalid\t")
	for _, f := range rep.Files {
		if f.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t", display.OneLine(f.Path), f.Error)
			for range kinds {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprintln(tw, "\t")
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t", display.OneLine(f.Path), f.Format, f.Encoding, f.Compression, f.Rows, f.Rejected)
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

package job

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/evidx/evidx/ingest"
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
func PrintCount(w io.Writer, rep CountReport) error { return ingest.WriteCountTable(w, rep) }

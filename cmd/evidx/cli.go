package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/evidx/evidx/internal/display"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// usageError marks bad usage (exit code 2), as opposed to a failed run (1).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// args wraps a cobra positional-argument check so its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// oneLine folds a message onto one line: errors from evidence may carry
// newlines and control characters, which must not reach a terminal raw.
func oneLine(s string) string { return display.OneLine(s) }

// writeJSON prints v as the single JSON object a --json command emits on stdout.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// stderrIsTerminal reports whether progress bars should be drawn.
func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// toolVersion is the module version plus the VCS revision the binary was
// built from; both go into audit entries and reports.
func toolVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		return fmt.Sprintf("%s (%s%s)", v, rev, modified)
	}
	return v
}

// tzFlag is --tz: the zone of local times on the evidence.
var tzFlag string

// zone returns the --tz zone, nil when not given.
func zone() (*time.Location, error) {
	if tzFlag == "" {
		return nil, nil
	}
	loc, err := time.LoadLocation(tzFlag)
	if err != nil {
		return nil, fmt.Errorf("--tz %q: %w", tzFlag, err)
	}
	return loc, nil
}

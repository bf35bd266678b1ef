package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

// PersonsExport is what ExportPersons wrote.
type PersonsExport struct {
	Path    string `json:"path"`
	Persons int64  `json:"persons"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// PersonsCSVHeader is the header of the persons CSV.
var PersonsCSVHeader = []string{"person", "phone", "email", "cn_id", "bank_card", "names", "addresses", "sources", "evidence", "records"}

// ExportPersons writes one CSV row per linked person of case c to out
// (created 0600, never overwritten, outside the case): its identifiers by
// kind, the names and addresses seen with them, its sources and evidence
// items, each list joined by "; ", for victim notification. The export is
// recorded in the audit log with the file's SHA-256, whatever the outcome.
// Cells a spreadsheet would run as a formula (starting with =, @, or + or
// - before a non-digit) get a leading apostrophe; identifiers never do.
func ExportPersons(ctx context.Context, c *custody.Case, out string) (*PersonsExport, error) {
	res, err := exportPersons(ctx, c, out)
	if err != nil {
		entry := custody.Entry{Action: "export.persons", Outcome: custody.OutcomeError, Error: err.Error(), Details: map[string]any{"path": out}}
		if aerr := c.Audit(entry); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, err
	}
	return res, nil
}

func exportPersons(ctx context.Context, c *custody.Case, out string) (*PersonsExport, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("export persons: %w", err)
	}
	caseDir, _ := filepath.Abs(c.Dir())
	if rel, err := filepath.Rel(evalDir(caseDir), evalDir(filepath.Dir(abs))); err == nil && filepath.IsLocal(rel) || rel == "." {
		return nil, fmt.Errorf("export persons: %s is inside the case directory", abs)
	}
	st, err := persons.OpenStore(persons.Dir(c.IndexDir()))
	if err != nil {
		return nil, fmt.Errorf("export persons: %w", err)
	}
	defer st.Close()
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export persons: %w", err)
	}
	if err := c.Audit(custody.Entry{Action: "export.persons", Outcome: custody.OutcomeStarted, Details: map[string]any{"path": abs}}); err != nil {
		f.Close()
		os.Remove(abs)
		return nil, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	w := csv.NewWriter(bw)
	res := &PersonsExport{Path: abs}
	err = w.Write(PersonsCSVHeader)
	if err == nil {
		err = st.Each(ctx, func(p *persons.Person) error {
			res.Persons++
			return w.Write(personRow(p))
		})
	}
	if err == nil {
		w.Flush()
		err = w.Error()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(abs)
		return nil, fmt.Errorf("export persons: %s: %w", abs, err)
	}
	res.Size, res.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	if err := c.Audit(custody.Entry{Action: "export.persons", Outcome: custody.OutcomeOK,
		Outputs: []custody.Item{{Kind: "persons_csv", Path: abs, Size: res.Size, SHA256: res.SHA256}},
		Details: map[string]any{"persons": res.Persons}}); err != nil {
		return nil, err
	}
	return res, nil
}

// personRow is one person's CSV row (see PersonsCSVHeader).
func personRow(p *persons.Person) []string {
	by := map[string][]string{}
	for _, id := range p.Identifiers {
		by[id.Kind] = append(by[id.Kind], id.Value)
	}
	var srcs []string
	for _, s := range p.Sources {
		srcs = append(srcs, safeCell(s.Name))
	}
	join := func(vs []string, safe bool) string {
		if safe {
			for i, v := range vs {
				vs[i] = safeCell(v)
			}
		}
		return strings.Join(vs, "; ")
	}
	return []string{strconv.FormatInt(p.ID, 10), join(by[string(identity.Phone)], false), join(by[string(identity.Email)], false),
		join(by[string(identity.CNID)], false), join(by[string(identity.BankCard)], false),
		join(append([]string{}, p.Names...), true), join(append([]string{}, p.Addresses...), true), join(srcs, false),
		join(append([]string{}, p.Evidence...), true), strconv.FormatInt(p.Records, 10)}
}

// safeCell keeps a spreadsheet from running a cell as a formula.
func safeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if len(s) == 1 || s[1] < '0' || s[1] > '9' {
			return "'" + s
		}
	}
	return s
}

// evalDir resolves symbolic links where it can.
func evalDir(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

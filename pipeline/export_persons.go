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

// PersonsExport is what ExportPersons (Persons set) or ExportHubs (Hubs
// set) wrote.
type PersonsExport struct {
	Path    string `json:"path"`
	Persons int64  `json:"persons"`
	Hubs    int64  `json:"hubs,omitempty"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// PersonsCSVHeader is the header of the persons CSV.
var PersonsCSVHeader = []string{"person", "phone", "email", "cn_id", "bank_card", "names", "addresses", "sources", "evidence", "records"}

// HubsCSVHeader is the header of the hubs CSV.
var HubsCSVHeader = []string{"kind", "value", "people", "rule"}

// ExportPersons writes one CSV row per linked person of case c to out
// (created 0600, never overwritten, outside the case): its identifiers by
// kind, the names and addresses seen with them, its sources and evidence
// items, each list joined by "; ", for victim notification. The export is
// recorded in the audit log with the file's SHA-256, whatever the outcome.
// Cells a spreadsheet would run as a formula (starting with =, @, or + or
// - before a non-digit) get a leading apostrophe; identifiers never do.
func ExportPersons(ctx context.Context, c *custody.Case, out string) (*PersonsExport, error) {
	res, err := exportCSV(ctx, c, out, "persons", PersonsCSVHeader, func(st *persons.Store, write func([]string) error) error {
		return st.Each(ctx, func(p *persons.Person) error { return write(personRow(p)) })
	})
	if res != nil {
		res.Persons = res.rows
	}
	return res.export(), err
}

// ExportHubs writes every hub of case c (Summary.Hubs lists only those
// touching the most people) to out as CSV (kind, value, people, rule), as
// ExportPersons writes the persons.
func ExportHubs(ctx context.Context, c *custody.Case, out string) (*PersonsExport, error) {
	res, err := exportCSV(ctx, c, out, "hubs", HubsCSVHeader, func(st *persons.Store, write func([]string) error) error {
		return st.EachHub(ctx, func(h persons.Hub) error {
			return write([]string{h.Kind, safeCell(h.Value), strconv.FormatInt(h.People, 10), h.Rule})
		})
	})
	if res != nil {
		res.Hubs = res.rows
	}
	return res.export(), err
}

type csvExport struct {
	PersonsExport
	rows int64
}

func (e *csvExport) export() *PersonsExport {
	if e == nil {
		return nil
	}
	return &e.PersonsExport
}

// exportCSV writes the rows that each gives, after header, to the new
// file out, audited as action export.<what>.
func exportCSV(ctx context.Context, c *custody.Case, out, what string, header []string,
	each func(*persons.Store, func([]string) error) error) (*csvExport, error) {
	res, err := writeCSV(ctx, c, out, what, header, each)
	if err != nil {
		entry := custody.Entry{Action: "export." + what, Outcome: custody.OutcomeError, Error: err.Error(), Details: map[string]any{"path": out}}
		if aerr := c.Audit(entry); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, err
	}
	return res, nil
}

func writeCSV(ctx context.Context, c *custody.Case, out, what string, header []string,
	each func(*persons.Store, func([]string) error) error) (*csvExport, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", what, err)
	}
	caseDir, _ := filepath.Abs(c.Dir())
	if rel, err := filepath.Rel(evalDir(caseDir), evalDir(filepath.Dir(abs))); err == nil && filepath.IsLocal(rel) || rel == "." {
		return nil, fmt.Errorf("export %s: %s is inside the case directory", what, abs)
	}
	st, err := persons.OpenStore(persons.Dir(c.IndexDir()))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", what, err)
	}
	defer st.Close()
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", what, err)
	}
	if err := c.Audit(custody.Entry{Action: "export." + what, Outcome: custody.OutcomeStarted, Details: map[string]any{"path": abs}}); err != nil {
		f.Close()
		os.Remove(abs)
		return nil, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	w := csv.NewWriter(bw)
	res := &csvExport{PersonsExport: PersonsExport{Path: abs}}
	err = w.Write(header)
	if err == nil {
		err = each(st, func(row []string) error {
			res.rows++
			return w.Write(row)
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
		return nil, fmt.Errorf("export %s: %s: %w", what, abs, err)
	}
	res.Size, res.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	if err := c.Audit(custody.Entry{Action: "export." + what, Outcome: custody.OutcomeOK,
		Outputs: []custody.Item{{Kind: what + "_csv", Path: abs, Size: res.Size, SHA256: res.SHA256}},
		Details: map[string]any{what: res.rows}}); err != nil {
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

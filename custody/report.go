package custody

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
)

// ReportSchemaVersion is report.json's "schema_version". It changes when a
// field is removed or changes meaning; new fields do not change it.
const ReportSchemaVersion = "1.0"

// Report is the content of report.json and report.html: measured findings
// only. Interpretation is the examiner's and is kept out of it.
type Report struct {
	SchemaVersion string           `json:"schema_version"`
	Generated     time.Time        `json:"generated"` // UTC
	Case          Meta             `json:"case"`
	Tool          ToolInfo         `json:"tool"`
	Environment   Environment      `json:"environment"`
	Evidence      []EvidenceReport `json:"evidence"`
	Datasets      []Dataset        `json:"datasets"`
	Hashsets      []Hashset        `json:"hashsets"`
	// HashsetMatches are the files of evidence found in a hash set,
	// known-bad first, then other kinds, then known-good.
	HashsetMatches []HashsetMatch   `json:"hashset_matches"`
	Removed        []RemovedDataset `json:"removed_datasets"` // sources taken out of the index, from the audit log
	Identities     Identities       `json:"identities"`
	// Persons is what linking the identifiers into persons found: null
	// when the case was never linked (ReportOptions.Persons).
	Persons     *ReportPersons `json:"persons"`
	Audit       AuditSummary   `json:"audit"`
	Errors      []string       `json:"errors"`      // damage and failures recorded during processing
	Limitations []string       `json:"limitations"` // what this report does not establish
}

// RemovedDataset is a source that was loaded and later removed from the
// identity index (evidx dataset remove, or dataset add --reload). Its
// identities are in no count of this report.
type RemovedDataset struct {
	Name     string `json:"name"`
	SHA256   string `json:"sha256"`
	Time     string `json:"time"`      // of the removal, UTC
	AuditSeq int64  `json:"audit_seq"` // the dataset.remove line
	Reason   string `json:"reason"`
}

// Environment is where the report was made.
type Environment struct {
	Host      string `json:"host"`
	User      string `json:"user"`
	OSSysname string `json:"os_sysname"`
	OSRelease string `json:"os_release"`
	OSVersion string `json:"os_version"`
	Arch      string `json:"arch"`
	Command   string `json:"command_line"`
}

// EvidenceReport is one evidence item with what was found on it.
type EvidenceReport struct {
	Evidence
	SectorCount int64      `json:"sector_count"`
	Volumes     []Volume   `json:"volumes"`
	Counts      FileCounts `json:"counts"`
	Seizure     Seizure    `json:"seizure"`   // custody facts given at intake
	Transfers   []Transfer `json:"transfers"` // changes of holder since, in order
	// Carve and Features summarise the last carve and identifier scan of
	// the item, from their audit lines (nil when not run).
	Carve    *CarveSummary    `json:"carve,omitempty"`
	Features map[string]int64 `json:"features,omitempty"`
}

// CarveSummary is what the carver searched and found on an item.
type CarveSummary struct {
	Ranges        int64   `json:"ranges"`
	BytesSearched int64   `json:"bytes_searched"`
	Carved        int64   `json:"carved"`
	BytesCarved   int64   `json:"bytes_carved"`
	Seconds       float64 `json:"seconds"`
}

// FileCounts counts the file-system entries and carved items of an item.
type FileCounts struct {
	Files     int64 `json:"files"`     // regular files (allocated + deleted)
	Allocated int64 `json:"allocated"` // allocated regular files
	Deleted   int64 `json:"deleted"`   // deleted regular files
	Dirs      int64 `json:"dirs"`
	Extracted int64 `json:"extracted"` // files whose content is in the case store
	Errors    int64 `json:"errors"`    // entries with a recorded error
	Carved    int64 `json:"carved"`
}

// Dataset is one ingested dataset file (a row of the index's sources table).
type Dataset struct {
	ID           int64            `json:"id"`
	Name         string           `json:"name"`
	SHA256       string           `json:"sha256"`
	Size         int64            `json:"size"`
	EvidenceID   string           `json:"evidence_id,omitempty"`
	EvidencePath string           `json:"evidence_path,omitempty"`
	Rows         int64            `json:"rows"`
	Rejected     int64            `json:"rejected"`
	Unique       map[string]int64 `json:"unique"`
	New          map[string]int64 `json:"new"`     // identities no earlier source held
	Invalid      map[string]int64 `json:"invalid"` // values failing validation
	Status       string           `json:"status"`
	Finished     string           `json:"finished,omitempty"`
	// Columns says which column was taken as which kind and why; Problems
	// are the doubts the reader had about the counts.
	Columns  []DatasetColumn `json:"columns"`
	Problems []string        `json:"problems"`
}

// DatasetColumn is a column role as the dataset reader decided it.
type DatasetColumn struct {
	Schema      string  `json:"schema,omitempty"`
	Name        string  `json:"name,omitempty"`
	Index       int     `json:"index"`
	Kind        string  `json:"kind"`
	DecidedBy   string  `json:"decided_by"`
	SampleShare float64 `json:"sample_share"`
	ValidShare  float64 `json:"valid_share"`
	Values      int64   `json:"values"`
}

// Identities are the case-wide unique identity counts: the sum over
// sources of the identities each one added (exact, from the index).
type Identities struct {
	Unique map[string]int64 `json:"unique"`
	Total  int64            `json:"total"`
}

// AuditSummary is every audit action and the log's head.
type AuditSummary struct {
	Lines   int64       `json:"lines"`
	Head    string      `json:"head_sha256"` // SHA-256 of the last line when the report was made
	Intact  bool        `json:"intact"`
	Problem string      `json:"problem,omitempty"`
	Actions []AuditLine `json:"actions"`
}

// AuditLine is an audit entry as reported.
type AuditLine struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Action   string `json:"action"`
	Outcome  string `json:"outcome"`
	User     string `json:"user"`     // OS account
	Examiner string `json:"examiner"` // examiner acting
	Host     string `json:"host"`
	Version  string `json:"version"`
	Inputs   []Item `json:"inputs,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Collect gathers the report content from the catalog and the audit log.
func (c *Case) Collect(ctx context.Context) (*Report, error) {
	env := environment()
	env.Command = c.commandLine(os.Args)
	r := &Report{SchemaVersion: ReportSchemaVersion, Generated: time.Now().UTC(), Case: c.meta, Tool: Tool(),
		Environment: env, Errors: []string{}, Datasets: []Dataset{}, Removed: []RemovedDataset{}}
	evs, err := c.Evidence(ctx)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		er := EvidenceReport{Evidence: ev}
		// Segment files are named, not located: the folder they lay in
		// on the workstation is no fact about the evidence.
		er.Segments = make([]Segment, len(ev.Segments))
		for i, sg := range ev.Segments {
			sg.Path = filepath.Base(sg.Path)
			er.Segments[i] = sg
		}
		if ev.SectorSize > 0 {
			er.SectorCount = (ev.Size + int64(ev.SectorSize) - 1) / int64(ev.SectorSize)
		}
		if er.Volumes, err = c.Volumes(ctx, ev.ID); err != nil {
			return nil, err
		}
		if er.Seizure, err = c.Seizure(ctx, ev.ID); err != nil {
			return nil, err
		}
		if er.Transfers, err = c.Transfers(ctx, ev.ID); err != nil {
			return nil, err
		}
		if err := c.db.QueryRowContext(ctx, `SELECT
			count(*) FILTER (WHERE type='file'),
			count(*) FILTER (WHERE type='file' AND deleted=0),
			count(*) FILTER (WHERE type='file' AND deleted=1),
			count(*) FILTER (WHERE type='dir'),
			count(*) FILTER (WHERE object IS NOT NULL),
			count(*) FILTER (WHERE error<>'')
			FROM files WHERE evidence_id=?`, ev.ID).Scan(&er.Counts.Files, &er.Counts.Allocated, &er.Counts.Deleted,
			&er.Counts.Dirs, &er.Counts.Extracted, &er.Counts.Errors); err != nil {
			return nil, fmt.Errorf("custody: report counts: %w", err)
		}
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM carved WHERE evidence_id=?`, ev.ID).Scan(&er.Counts.Carved); err != nil {
			return nil, fmt.Errorf("custody: report counts: %w", err)
		}
		if ev.Verified != nil && !*ev.Verified {
			r.Errors = append(r.Errors, fmt.Sprintf("evidence %s did not verify: %s", ev.ID, ev.HashReason))
		}
		for _, ce := range ev.Container {
			r.Errors = append(r.Errors, fmt.Sprintf("evidence %s container: %s", ev.ID, ce))
		}
		for _, u := range ev.Unreadable {
			r.Errors = append(r.Errors, fmt.Sprintf("evidence %s: bytes %d..%d unreadable", ev.ID, u.Offset, u.Offset+u.Length))
		}
		for _, v := range er.Volumes {
			for _, p := range v.Problems {
				r.Errors = append(r.Errors, fmt.Sprintf("evidence %s volume %d: %s", ev.ID, v.Index, p))
			}
		}
		if er.Counts.Errors > 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("evidence %s: %d file entries with recorded damage (see the DFXML <error> elements)", ev.ID, er.Counts.Errors))
		}
		r.Evidence = append(r.Evidence, er)
	}
	if r.Datasets, err = c.datasets(ctx); err != nil {
		return nil, err
	}
	if r.Hashsets, err = c.Hashsets(ctx); err != nil {
		return nil, err
	}
	for i := range r.Hashsets {
		r.Hashsets[i].Path = c.itemName(r.Hashsets[i].Path) // never the workstation's folders
	}
	if r.HashsetMatches, err = c.HashsetMatches(ctx); err != nil {
		return nil, err
	}
	r.Identities.Unique = map[string]int64{}
	for _, d := range r.Datasets {
		if d.Status != "done" {
			r.Errors = append(r.Errors, fmt.Sprintf("dataset %s (%s) status %q: load (or removal) not finished; its identities are not counted", d.Name, d.SHA256, d.Status))
			continue
		}
		for k, n := range d.New {
			r.Identities.Unique[k] += n
			r.Identities.Total += n
		}
		if d.Rejected > 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("dataset %s: %d malformed rows rejected (kept in its rejects file)", d.Name, d.Rejected))
		}
	}
	lines, ch, cerr := c.ReadAudit(ctx)
	r.Audit = AuditSummary{Lines: ch.Lines, Head: ch.Head, Intact: cerr == nil}
	if cerr != nil {
		r.Audit.Problem = cerr.Error()
		r.Errors = append(r.Errors, "audit log: "+cerr.Error())
	}
	for _, l := range lines {
		ex := l.Examiner
		if ex == "" {
			ex = c.meta.Examiner // lines written before examiners were recorded
		}
		ins := make([]Item, len(l.Inputs))
		for i, it := range l.Inputs {
			it.Path = c.itemName(it.Path) // never the workstation's folders
			ins[i] = it
		}
		r.Audit.Actions = append(r.Audit.Actions, AuditLine{Seq: l.Seq, Time: l.Time, Action: l.Action, Outcome: l.Outcome,
			User: l.User, Examiner: ex, Host: l.Host, Version: l.Version + " " + l.Revision, Inputs: ins, Error: l.Error})
		if l.Action == "evidence.carve" || l.Action == "evidence.scan" || l.Action == "evidence.damage" {
			summarise(r, l)
		}
		if l.Action == "evidence.walk" {
			// What the media and disk layers recognised but could not read
			// (a container or file system evidx does not read, a damaged
			// partition table): recorded at the walk.
			if ps, ok := l.Details["problems"].([]any); ok {
				for _, p := range ps {
					// Lines of one partition are listed from its volume.
					if s, ok := p.(string); ok && len(l.Inputs) > 0 && !strings.HasPrefix(s, "partition ") {
						r.Errors = append(r.Errors, fmt.Sprintf("evidence %s: %s", l.Inputs[0].ID, s))
					}
				}
			}
		}
		if l.Action == "dataset.remove" && l.Outcome == OutcomeOK {
			d := RemovedDataset{Time: l.Time, AuditSeq: l.Seq}
			d.Name, _ = l.Details["name"].(string)
			d.Reason, _ = l.Details["reason"].(string)
			if len(l.Inputs) > 0 {
				d.SHA256 = l.Inputs[0].SHA256
			}
			r.Removed = append(r.Removed, d)
		}
	}
	r.Limitations = []string{
		"Hashes prove the media data are unchanged since intake; they do not show how the data came to be on the media.",
		"Deleted files are reported as their surviving allocation says; content of a deleted file may have been overwritten in part.",
		"Carved files are reconstructed from signatures in unallocated space; their names and times are not known.",
		"Identity counts are exact over the normalised values defined in DESIGN.md; values failing validation are counted as invalid, never as identities.",
		"Unique identities per source count what each source holds; 'new' counts what it added to those of sources ingested before it.",
	}
	if len(r.Hashsets) > 0 {
		r.Limitations = append(r.Limitations, "A hash set match says a file's content hash is in the set, of the kind the examiner gave it; NSRL RDS sets are matched by SHA-256 only, other lists by each hash they hold, and files whose content was not recovered are not looked up.")
	}
	return r, nil
}

// datasets lists the index's sources, through the index's API.
func (c *Case) datasets(ctx context.Context) ([]Dataset, error) {
	srcs, err := index.ReadSources(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	out := make([]Dataset, 0, len(srcs))
	for _, s := range srcs {
		d := Dataset{ID: s.ID, Name: s.Name, SHA256: s.SHA256, Size: s.Size, EvidenceID: s.Evidence, EvidencePath: s.EvidPath,
			Rows: s.Rows, Rejected: s.Rejected, Unique: kindMap(s.Unique), New: kindMap(s.New), Invalid: kindMap(s.Invalid),
			Status: s.Status, Finished: s.Finished, Columns: []DatasetColumn{}, Problems: []string{}}
		if len(s.Columns) > 0 {
			if err := json.Unmarshal(s.Columns, &d.Columns); err != nil {
				return nil, fmt.Errorf("custody: source %d columns: %w", d.ID, err)
			}
		}
		d.Problems = append(d.Problems, s.Problems...)
		out = append(out, d)
	}
	return out, nil
}

func kindMap(m map[identity.Kind]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// commandLine is args with every path shown as itemName shows it
// (relative to the case, else its base name), also in --flag=PATH.
func (c *Case) commandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case ok && strings.HasPrefix(k, "-") && filepath.IsAbs(v):
			out[i] = k + "=" + c.itemName(v)
		case filepath.IsAbs(a):
			out[i] = c.itemName(a)
		case i > 0 && a != "" && !strings.HasPrefix(a, "-"):
			if abs, err := filepath.Abs(a); err == nil && resolve(abs) == resolve(c.dir) {
				out[i] = "CASE"
			} else {
				out[i] = a
			}
		default:
			out[i] = a
		}
	}
	if len(out) > 0 {
		out[0] = filepath.Base(out[0])
	}
	return strings.Join(out, " ")
}

func environment() Environment {
	e := Environment{Host: hostname(), User: currentUser(), Command: strings.Join(os.Args, " ")}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		e.OSSysname, e.OSRelease, e.OSVersion, e.Arch = utsString(u.Sysname[:]), utsString(u.Release[:]), utsString(u.Version[:]), utsString(u.Machine[:])
	}
	return e
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// ReportOptions say where the report goes and how it is signed.
type ReportOptions struct {
	OutDir  string // default: <case>/reports
	SignKey string // ed25519 private key file; "" for no signature
	// Lang "zh" also writes report.zh.html, the Chinese 电子数据检查笔录
	// (the English report is always written).
	Lang string
	// Persons are the case's linked persons, their demographics and
	// sentencing counts, filled in by the caller (pipeline.ReportPersons);
	// nil when the case was never linked, which the report says.
	Persons *ReportPersons
}

// ReportResult lists the files written with their hashes.
type ReportResult struct {
	Dir   string `json:"dir"`
	Files []Item `json:"files"`
}

// WriteReport writes report.html, report.json, evidence-<id>.dfxml per
// evidence item, manifest.hashdeep and SHA256SUMS (and SHA256SUMS.sig when
// signing) into the output directory, records the index shards' hashes,
// and appends a "report" audit entry carrying every file's SHA-256.
func (c *Case) WriteReport(ctx context.Context, opts ReportOptions) (*ReportResult, error) {
	out := opts.OutDir
	if out == "" {
		out = filepath.Join(c.dir, ReportsDir)
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("custody: report: %w", err)
	}
	res, err := c.writeReport(ctx, out, opts)
	if err != nil {
		if aerr := c.Audit(Entry{Action: "report", Outcome: OutcomeError, Error: err.Error()}); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, err
	}
	return res, nil
}

func (c *Case) writeReport(ctx context.Context, out string, opts ReportOptions) (*ReportResult, error) {
	if opts.SignKey != "" {
		// Fail before writing anything when the key is wrong.
		if _, err := c.signBytes(opts.SignKey, nil); err != nil {
			return nil, err
		}
	}
	if err := mkdirPrivate(out); err != nil {
		return nil, err
	}
	rep, err := c.Collect(ctx)
	if err != nil {
		return nil, err
	}
	rep.Persons = opts.Persons
	rep.Limitations = append(rep.Limitations, personsLimitations(opts.Persons)...)
	shards, err := c.ShardItems(ctx)
	if err != nil {
		return nil, err
	}
	// Every file is made in a staging directory and moved into out only
	// once all are made: a report that fails leaves the last one whole,
	// not a mix of new files no audit line covers.
	tmp, err := c.Scratch()
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(c.dir, out); err != nil || !filepath.IsLocal(rel) {
		tmp = out // a report outside the case: staged beside it, on its file system
	}
	stage, err := os.MkdirTemp(tmp, ".tmp-report-")
	if err != nil {
		return nil, fmt.Errorf("custody: report: %w", err)
	}
	defer os.RemoveAll(stage)
	var names []string
	write := func(name string, gen func(w io.Writer) error) error {
		if err := c.writeStream(filepath.Join(stage, name), gen); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	}
	if err := write("report.json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}); err != nil {
		return nil, err
	}
	if err := write("report.html", func(w io.Writer) error { return writeHTML(w, rep) }); err != nil {
		return nil, err
	}
	if opts.Lang == "zh" {
		if err := write("report.zh.html", func(w io.Writer) error { return writeHTMLZh(w, rep) }); err != nil {
			return nil, err
		}
	}
	for _, ev := range rep.Evidence {
		if err := write("evidence-"+ev.ID+".dfxml", func(w io.Writer) error { return c.writeDFXML(ctx, w, rep, ev) }); err != nil {
			return nil, err
		}
	}
	if err := write("case.jsonld", func(w io.Writer) error { return c.writeCASE(ctx, w, rep) }); err != nil {
		return nil, err
	}
	if err := write("manifest.hashdeep", func(w io.Writer) error {
		return c.writeManifest(ctx, w, "cd OUT && hashdeep -r -l -a -k REPORTS/manifest.hashdeep .", rep.Case.CaseNumber)
	}); err != nil {
		return nil, err
	}
	// SHA256SUMS covers every file above, in sha256sum's format.
	var sums bytes.Buffer
	var items []Item
	sort.Strings(names)
	for _, n := range names {
		sum, size, err := hashFile(filepath.Join(stage, n))
		if err != nil {
			return nil, fmt.Errorf("custody: report: %w", err)
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, n)
		items = append(items, Item{Kind: "report", Path: c.relPath(filepath.Join(out, n)), Size: size, SHA256: sum})
	}
	if err := c.writePrivate(filepath.Join(stage, "SHA256SUMS"), sums.Bytes()); err != nil {
		return nil, err
	}
	names = append(names, "SHA256SUMS")
	items = append(items, Item{Kind: "report", Path: c.relPath(filepath.Join(out, "SHA256SUMS")), Size: int64(sums.Len()), SHA256: sha256Hex(sums.Bytes())})
	sigPath := filepath.Join(out, SigName)
	if opts.SignKey != "" {
		sig, err := c.signBytes(opts.SignKey, sums.Bytes())
		if err != nil {
			return nil, err
		}
		if err := c.writePrivate(filepath.Join(stage, SigName), []byte(sig+"\n")); err != nil {
			return nil, err
		}
		names = append(names, SigName)
		items = append(items, Item{Kind: "report", Path: c.relPath(sigPath), Size: int64(len(sig) + 1), SHA256: sha256Hex([]byte(sig + "\n"))})
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(stage, n), filepath.Join(out, n)); err != nil {
			return nil, fmt.Errorf("custody: report: %w", err)
		}
	}
	if opts.SignKey == "" {
		if err := os.Remove(sigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("custody: report: remove stale signature: %w", err)
		}
	}
	outputs := append(append([]Item{}, items...), shards...)
	details := map[string]any{"dir": out, "audit_head": rep.Audit.Head, "audit_lines": rep.Audit.Lines, "signed": opts.SignKey != ""}
	if rep.Persons != nil {
		// The figure a court reads, in the line that vouches for the report.
		details["persons"] = rep.Persons.Unique
	}
	if err := c.Audit(Entry{Action: "report", Outputs: outputs, Outcome: OutcomeOK, Details: details}); err != nil {
		return nil, err
	}
	return &ReportResult{Dir: out, Files: items}, nil
}

// relPath is p relative to the case directory when inside it, else p.
func (c *Case) relPath(p string) string {
	if rel, err := filepath.Rel(c.dir, p); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return p
}

// writeStream writes a file 0600 through a buffered writer into a temporary
// file beside it, renamed into place when gen succeeds.
func writeStream(p string, gen func(w io.Writer) error) error {
	return writeStreamVia(filepath.Dir(p), p, gen)
}

// c.writeStream is writeStream with the temporary file in the case's
// scratch directory, so a killed command leaves nothing among the reports.
func (c *Case) writeStream(p string, gen func(w io.Writer) error) error {
	dir, err := c.Scratch()
	if err != nil {
		return err
	}
	return writeStreamVia(dir, p, gen)
}

// c.writePrivate is writePrivate through the case's scratch directory.
func (c *Case) writePrivate(p string, data []byte) error {
	return c.writeStream(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeStreamVia writes p through a temporary file in tmpDir (on p's file
// system).
func writeStreamVia(tmpDir, p string, gen func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(tmpDir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := gen(bw); err != nil {
		tmp.Close()
		return fmt.Errorf("custody: write %s: %w", p, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("custody: write %s: %w", p, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("custody: write %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("custody: write %s: %w", p, err)
	}
	if err := chmod(tmp.Name(), filePerm); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("custody: %w", err)
	}
	return nil
}

// writeManifest writes every exported file in hashdeep format, named
// "./<evidence id>/..." relative to the export root: what `hashdeep -r -l
// .` prints when run inside it, so the manifest audits any copy of the
// export, wherever it was moved. audit is the command line the header
// gives for that.
func (c *Case) writeManifest(ctx context.Context, w io.Writer, audit, caseNumber string) error {
	fmt.Fprintf(w, "%%%%%%%% HASHDEEP-1.0\n%%%%%%%% size,md5,sha256,filename\n")
	fmt.Fprintf(w, "## evidx %s, case %s: extracted and carved files\n", Tool().String(), oneLine(caseNumber))
	fmt.Fprintf(w, "## names are relative to the export folder (evidx export --files OUT); audit a copy, wherever it lies, with:\n")
	fmt.Fprintf(w, "## %s\n", audit)
	fmt.Fprintf(w, "## \n")
	return c.exportList(ctx, func(e Exported) error {
		_, err := fmt.Fprintf(w, "%d,%s,%s,./%s\n", e.Size, e.MD5, e.Object, e.Name)
		return err
	})
}

// summarise puts an item's carve, scan and damage audit lines into the
// report: the last carve and scan stand (a resumed intake does them again).
func summarise(r *Report, l Line) {
	if len(l.Inputs) == 0 {
		return
	}
	var er *EvidenceReport
	for i := range r.Evidence {
		if r.Evidence[i].ID == l.Inputs[0].ID {
			er = &r.Evidence[i]
		}
	}
	if er == nil {
		return
	}
	// The audit reader decodes numbers as json.Number.
	number := func(v any) float64 {
		switch n := v.(type) {
		case json.Number:
			f, _ := n.Float64()
			return f
		case float64:
			return n
		}
		return 0
	}
	num := func(k string) float64 { return number(l.Details[k]) }
	switch l.Action {
	case "evidence.carve":
		er.Carve = &CarveSummary{Ranges: int64(num("ranges")), BytesSearched: int64(num("bytes_searched")),
			Carved: int64(num("carved")), BytesCarved: int64(num("bytes_carved")), Seconds: num("seconds")}
	case "evidence.scan":
		er.Features = map[string]int64{}
		if m, ok := l.Details["features"].(map[string]any); ok {
			for k, v := range m {
				er.Features[k] = int64(number(v))
			}
		}
	case "evidence.damage":
		if ps, ok := l.Details["problems"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok {
					r.Errors = append(r.Errors, fmt.Sprintf("evidence %s: %s", er.ID, s))
				}
			}
		}
	}
}

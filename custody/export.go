package custody

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrExportTarget means the export directory cannot be used.
var ErrExportTarget = errors.New("custody: bad export target")

// ExportOptions say where an export goes.
type ExportOptions struct {
	Dir      string // output root; must not exist or be empty, and lie outside the case
	Manifest string // hashdeep manifest path; default <parent of Dir>/manifest.hashdeep (it must lie outside Dir, or hashdeep -r Dir would find it as an unknown file)
}

// ExportResult describes a finished export.
type ExportResult struct {
	Dir          string `json:"dir"`
	Manifest     string `json:"manifest"`
	Files        int64  `json:"files"`
	Bytes        int64  `json:"bytes"`
	AuditCommand string `json:"audit_command"` // the hashdeep command that checks the export
}

// Export copies every extracted and carved file from the content store to
// opts.Dir under <evidence id>/vol-<n>/<path> and <evidence id>/carved/,
// with names made safe by SafePath and collisions disambiguated, re-hashing
// each copy against its stored SHA-256, and writes a hashdeep manifest with
// names relative to opts.Dir ("./EV1/..."), so `cd DIR && hashdeep -r -l
// -a -k MANIFEST .` passes, also on a copy moved elsewhere. An "export" audit entry records the manifest's hash.
func (c *Case) Export(ctx context.Context, opts ExportOptions) (*ExportResult, error) {
	res, err := c.export(ctx, opts)
	if err != nil {
		if aerr := c.Audit(Entry{Action: "export", Outcome: OutcomeError, Error: err.Error()}); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, err
	}
	return res, nil
}

func (c *Case) export(ctx context.Context, opts ExportOptions) (*ExportResult, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: no directory", ErrExportTarget)
	}
	out, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("custody: export: %w", err)
	}
	if within(resolve(out), resolve(c.dir)) {
		return nil, fmt.Errorf("%w: %s is inside the case directory", ErrExportTarget, out)
	}
	man := opts.Manifest
	if man == "" {
		man = filepath.Join(filepath.Dir(out), "manifest.hashdeep")
	}
	if man, err = filepath.Abs(man); err != nil {
		return nil, fmt.Errorf("custody: export: %w", err)
	}
	if within(resolve(man), resolve(out)) {
		return nil, fmt.Errorf("%w: manifest %s must lie outside %s (hashdeep -r would find it)", ErrExportTarget, man, out)
	}
	if _, err := os.Lstat(man); err == nil {
		return nil, fmt.Errorf("%w: manifest %s exists (choose another with --manifest)", ErrExportTarget, man)
	}
	if err := makeCaseDir(out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrExportTarget, err)
	}
	res := &ExportResult{Dir: out, Manifest: man, AuditCommand: auditCommand(out, man)}
	if err := c.Audit(Entry{Action: "export", Outcome: OutcomeStarted, Details: map[string]any{"dir": out, "manifest": man}}); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	err = c.exportList(ctx, func(e Exported) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !filepath.IsLocal(filepath.FromSlash(e.Name)) {
			return fmt.Errorf("custody: export: unsafe name %q", e.Name) // cannot happen: names come from SafePath
		}
		dst := filepath.Join(out, filepath.FromSlash(e.Name))
		if err := mkdirPrivate(filepath.Dir(dst)); err != nil {
			return err
		}
		n, err := c.copyObject(e.Object, dst, buf)
		if err != nil {
			return err
		}
		res.Files++
		res.Bytes += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := writeStream(man, func(w io.Writer) error {
		return c.writeManifest(ctx, w, res.AuditCommand, c.meta.CaseNumber)
	}); err != nil {
		return nil, err
	}
	sum, size, err := hashFile(man)
	if err != nil {
		return nil, fmt.Errorf("custody: export: %w", err)
	}
	if err := c.Audit(Entry{Action: "export", Outcome: OutcomeOK,
		Outputs: []Item{{Kind: "manifest", Path: man, Size: size, SHA256: sum}},
		Details: map[string]any{"dir": out, "files": res.Files, "bytes": res.Bytes}}); err != nil {
		return nil, err
	}
	return res, nil
}

// copyObject copies a stored object to dst (created 0600, never
// overwriting) and checks the copy's SHA-256 against the object's name.
func (c *Case) copyObject(sum, dst string, buf []byte) (int64, error) {
	src, err := c.OpenObject(sum)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return 0, fmt.Errorf("custody: export: %w", err)
	}
	h := sha256.New()
	sf := newSparseFile(f) // holes stay holes in the export too
	n, err := io.CopyBuffer(io.MultiWriter(sf, h), bufio.NewReaderSize(src, 1<<16), buf)
	if err == nil {
		err = sf.finish()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("custody: export %s: %w", dst, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return n, fmt.Errorf("custody: export %s: stored object %s changed (SHA-256 now %s); run evidx verify", dst, sum, got)
	}
	return n, chmod(dst, filePerm)
}

// auditCommand is the hashdeep command that audits the export out with
// manifest man, run from anywhere; when man lies beside out (the default)
// it names both relative to their folder, so it holds for a moved copy.
func auditCommand(out, man string) string {
	if filepath.Dir(man) == filepath.Dir(out) {
		return fmt.Sprintf("cd %s && hashdeep -r -l -a -k ../%s .", shellQuote(filepath.Base(out)), shellQuote(filepath.Base(man)))
	}
	return fmt.Sprintf("cd %s && hashdeep -r -l -a -k %s .", shellQuote(out), shellQuote(man))
}

func shellQuote(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '.' || r == '_' || r == '-') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

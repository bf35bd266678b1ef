package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

// ErrMergeSource refuses a case to merge from that does not verify, or
// that is the destination itself.
var ErrMergeSource = errors.New("case merge: source case refused")

// MergeResult says what one source case brought into the destination.
type MergeResult struct {
	From       string                   `json:"from"` // the source case directory
	CaseNumber string                   `json:"case_number"`
	AuditHead  string                   `json:"audit_head"` // the source case's audit head, recorded in the destination's log
	AuditLines int64                    `json:"audit_lines"`
	Evidence   []custody.MergedEvidence `json:"evidence"`
	Sources    []index.SourceStats      `json:"sources"`
	Problems   []string                 `json:"problems"`
	Persons    *persons.Summary         `json:"persons,omitempty"` // the destination's persons afterwards
}

// MergeCase merges the case at srcDir (made by another lab or machine) into
// dest, exactly: the source case must verify (its audit chain, catalog,
// objects and shards; it is opened read-only and never written); its
// evidence items are copied with their catalog rows and stored objects
// (an id already taken here gets the source's case number in front); its
// datasets are loaded in its own order from its shards, so identities are
// unioned per shard and each source's unique, new and shared counts are
// those of one case that loaded everything in that order; a dataset this
// case already holds (same SHA-256) is not loaded again, only its places
// are added. The source's audit head is recorded in dest's audit log, so
// both chains stay checkable.
func MergeCase(ctx context.Context, dest *custody.Case, srcDir string, progress Progress) (*MergeResult, error) {
	progress = orNone(progress)
	abs, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, err
	}
	if same, _ := sameDir(abs, dest.Dir()); same {
		return nil, fmt.Errorf("%w: %s is the destination case", ErrMergeSource, srcDir)
	}
	src, err := custody.OpenWith(ctx, abs, custody.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	res := &MergeResult{From: abs, CaseNumber: src.Meta().CaseNumber, Evidence: []custody.MergedEvidence{}, Sources: []index.SourceStats{}, Problems: []string{}}
	progress.Stage("verifying "+filepath.Base(abs), "", 0)
	v, err := src.Verify(ctx, custody.VerifyOptions{NoAudit: true})
	if err != nil {
		return nil, err
	}
	if !v.OK {
		return nil, fmt.Errorf("%w: %s does not verify: %s", ErrMergeSource, srcDir, strings.Join(v.Failures, "; "))
	}
	res.AuditHead, res.AuditLines = v.Head, v.Lines

	fail := func(err error) (*MergeResult, error) {
		if aerr := dest.Audit(custody.Entry{Action: "case.merge", Outcome: custody.OutcomeError, Error: err.Error(),
			Inputs:  []custody.Item{{Kind: "case", Path: abs}},
			Details: map[string]any{"from_case": res.CaseNumber, "audit_head": res.AuditHead, "audit_lines": res.AuditLines}}); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return res, err
	}

	// Evidence items first: the datasets found on them name them.
	items, err := src.Evidence(ctx)
	if err != nil {
		return fail(err)
	}
	ids := map[string]string{} // source case's id -> id here
	have, err := dest.Evidence(ctx)
	if err != nil {
		return fail(err)
	}
	taken := map[string]bool{}
	for _, e := range have {
		taken[e.ID] = true
	}
	progress.Stage("copying evidence items", "items", int64(len(items)))
	for _, e := range items {
		id := e.ID
		if taken[id] {
			id = mergedID(res.CaseNumber, e.ID)
		}
		if taken[id] {
			return fail(fmt.Errorf("case merge: evidence %s of %s: ids %s and %s are both taken here", e.ID, srcDir, e.ID, id))
		}
		m, err := dest.MergeEvidence(ctx, src, e.ID, id)
		if err != nil {
			return fail(err)
		}
		taken[id], ids[e.ID] = true, id
		// The hash sets of this case mark the merged files as they mark an
		// intake's (those of the source case are its own and stay there).
		if err := markHashsets(ctx, dest, id, &EvidenceResult{}, func(f string, a ...any) {
			res.Problems = append(res.Problems, fmt.Sprintf(f, a...))
		}); err != nil {
			return fail(err)
		}
		res.Evidence = append(res.Evidence, m)
		progress.Add(1)
	}

	// Datasets, in the source case's load order.
	srcIx, err := index.Open(ctx, src.DB(), src.IndexDir(), index.Options{Shards: src.Shards()})
	if err != nil {
		return fail(err)
	}
	ix, err := openIndex(ctx, dest)
	if err != nil {
		return fail(err)
	}
	sources, err := srcIx.Sources(ctx)
	if err != nil {
		return fail(err)
	}
	loaded := false
	for _, s := range sources {
		if s.Status != "done" {
			res.Problems = append(res.Problems, fmt.Sprintf("source %d %s of %s: status %s (an unfinished load), not merged", s.ID, s.Name, srcDir, s.Status))
			continue
		}
		st, err := mergeSource(ctx, dest, ix, srcIx, src, s, ids, progress)
		loaded = loaded || st.ID != 0 && !st.Skipped
		if err != nil {
			return fail(err)
		}
		res.Sources = append(res.Sources, st)
	}
	if loaded {
		if _, err := dest.RecordShards(ctx); err != nil {
			return fail(err)
		}
		if res.Persons, err = relink(ctx, dest, ix, LinkOptions{}); err != nil {
			return fail(err)
		}
	}
	if err := dest.Audit(custody.Entry{Action: "case.merge", Outcome: custody.OutcomeOK,
		Inputs: []custody.Item{{Kind: "case", Path: abs}},
		Details: map[string]any{"from_case": res.CaseNumber, "audit_head": res.AuditHead, "audit_lines": res.AuditLines,
			"evidence": ids, "sources": len(res.Sources), "problems": res.Problems}}); err != nil {
		return res, err
	}
	return res, nil
}

// mergeSource loads one dataset of the source case into ix from the
// source's shards, with its origin mapped to the evidence ids here, and its
// further places and rejects file; one audit line records it.
func mergeSource(ctx context.Context, dest *custody.Case, ix, srcIx *index.Index, src *custody.Case, s index.SourceStats,
	ids map[string]string, progress Progress) (index.SourceStats, error) {
	origin := func(o index.Origin) index.Origin {
		if o.EvidenceID != "" {
			o.EvidenceID = cmp.Or(ids[o.EvidenceID], o.EvidenceID)
		}
		return o
	}
	feed := replayFeed(index.FileInfo{SHA256: s.SHA256, Format: s.Format, Encoding: s.Encoding, Compression: s.Compression,
		Rows: s.Rows, Rejected: s.Rejected, Invalid: s.Invalid, Columns: s.Columns, Problems: s.Problems},
		func(ctx context.Context, fn func(identity.Sighting, int64) error) error {
			return srcIx.Sightings(ctx, s.ID, fn)
		})
	progress.Stage("merging "+s.Name, "sightings", s.Sightings)
	o := origin(index.Origin{EvidenceID: s.Evidence, EvidencePath: s.EvidPath})
	st, err := ix.AddSource(ctx, index.Source{Name: s.Name, SHA256: s.SHA256, Size: s.Size, Path: s.Path, Origin: o}, feed,
		&loadProgress{p: progress})
	for _, also := range s.AlsoFound {
		if err != nil {
			break
		}
		// Already loaded: this records the place only.
		_, err = ix.AddSource(ctx, index.Source{Name: s.Name, SHA256: s.SHA256, Size: s.Size, Origin: origin(also)}, feed, nil)
	}
	var outputs []custody.Item
	if err == nil && !st.Skipped {
		outputs, err = copyRejects(dest, src, s.SHA256)
	}
	if err == nil && !st.Skipped {
		// Its records, for linking persons as the source case did.
		err = persons.CopySource(persons.Dir(src.IndexDir()), s.ID, persons.Dir(ix.Dir()), st.ID)
	}
	entry := custody.Entry{Action: "dataset.merge",
		Inputs:  []custody.Item{{Kind: "dataset", ID: o.EvidenceID, Path: cmp.Or(o.EvidencePath, s.Path), SHA256: s.SHA256, Size: s.Size}},
		Outputs: outputs}
	if err != nil {
		entry.Outcome, entry.Error = custody.OutcomeError, err.Error()
	} else {
		entry.Outcome = custody.OutcomeOK
		entry.Details = map[string]any{"from_case": src.Meta().CaseNumber, "from_source_id": s.ID, "source_id": st.ID,
			"name": st.Name, "skipped": st.Skipped, "rows": st.Rows, "sightings": st.Sightings,
			"unique": st.Unique, "new": st.New, "places": 1 + len(s.AlsoFound)}
	}
	if aerr := dest.Audit(entry); aerr != nil {
		return st, errors.Join(err, aerr)
	}
	return st, err
}

// copyRejects copies the source case's rejects file of a dataset, when it
// has one, and returns it as the merge's output.
func copyRejects(dest, src *custody.Case, sha string) ([]custody.Item, error) {
	b, err := os.ReadFile(filepath.Join(src.Dir(), custody.RejectsDir, sha+".tsv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("case merge: rejects of %s: %w", sha, err)
	}
	rej, err := dest.NewRejects()
	if err != nil {
		return nil, err
	}
	if _, err := rej.Write(b); err != nil {
		rej.Finish(sha, false)
		return nil, err
	}
	return rej.Finish(sha, true)
}

// idUnsafe are the bytes an evidence id may not hold.
var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// mergedID is the id an evidence item of another case takes when its own is
// taken here: the source's case number (made safe) in front.
func mergedID(caseNumber, id string) string {
	p := strings.Trim(idUnsafe.ReplaceAllString(caseNumber, "_"), "_")
	if p == "" {
		p = "merged"
	}
	out := p + "." + id
	if len(out) > 64 {
		out = out[len(out)-64:]
	}
	return out
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// replayFeed is a load's feed from identities already counted elsewhere (a
// source of another case, a Beam job's output): every identity is fed as
// often as the source holds it, each time at its first location, so the
// index counts exactly what a load of the file itself counted.
func replayFeed(info index.FileInfo, each func(ctx context.Context, fn func(identity.Sighting, int64) error) error) index.Feed {
	return func(ctx context.Context, sink func([]identity.Sighting) error) (index.FileInfo, error) {
		buf := make([]identity.Sighting, 0, 4096)
		err := each(ctx, func(sg identity.Sighting, n int64) error {
			for range n {
				buf = append(buf, sg)
				if len(buf) == cap(buf) {
					if err := sink(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			return nil
		})
		if err == nil && len(buf) > 0 {
			err = sink(buf)
		}
		return info, err
	}
}

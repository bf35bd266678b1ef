package custody

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// CASEVersion is the CASE ontology release case.jsonld conforms to (with
// UCO 1.4.0); checked against the release's SHACL shapes in the tests.
const CASEVersion = "1.4.0"

// caseContext is the inline JSON-LD context of case.jsonld: inline, so
// the file reads offline, with no remote context to fetch.
var caseContext = map[string]string{
	"case-investigation": "https://ontology.caseontology.org/case/investigation/",
	"uco-action":         "https://ontology.unifiedcyberontology.org/uco/action/",
	"uco-core":           "https://ontology.unifiedcyberontology.org/uco/core/",
	"uco-identity":       "https://ontology.unifiedcyberontology.org/uco/identity/",
	"uco-location":       "https://ontology.unifiedcyberontology.org/uco/location/",
	"uco-observable":     "https://ontology.unifiedcyberontology.org/uco/observable/",
	"uco-tool":           "https://ontology.unifiedcyberontology.org/uco/tool/",
	"uco-types":          "https://ontology.unifiedcyberontology.org/uco/types/",
	"xsd":                "http://www.w3.org/2001/XMLSchema#",
}

// node is one JSON-LD node object.
type node = map[string]any

// ldWriter streams the @graph array: a case may hold millions of files,
// so nodes are written as they are made, never held together.
type ldWriter struct {
	w       io.Writer
	n       int
	err     error
	ns      string          // per-case name space of the node IRIs
	emitted map[string]bool // IRIs written with a type
	wanted  map[string]node // IRIs referred to, to write at the end if no one did
}

// iri is a reproducible IRI ending in a name-based (version 5) UUID, as UCO
// advises: the same case yields the same IRIs each time it is exported.
func (j *ldWriter) iri(parts ...string) string {
	h := sha1.New()
	h.Write([]byte(j.ns))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (j *ldWriter) write(n node) {
	if j.err != nil {
		return
	}
	if id, ok := n["@id"].(string); ok {
		if j.emitted[id] {
			return
		}
		j.emitted[id] = true
	}
	b, err := json.Marshal(n)
	if err != nil {
		j.err = err
		return
	}
	sep := ",\n"
	if j.n == 0 {
		sep = "\n"
	}
	j.n++
	_, j.err = io.WriteString(j.w, sep+string(b))
}

// ref is a reference to node id; fallback is written at the end unless a
// node with that IRI was written meanwhile, so no reference is left
// pointing at an untyped node (the shapes want every object a UcoObject).
func (j *ldWriter) ref(id string, fallback node) node {
	if !j.emitted[id] && fallback != nil {
		if _, ok := j.wanted[id]; !ok {
			j.wanted[id] = fallback
		}
	}
	return node{"@id": id}
}

func ldTime(t time.Time) node {
	return node{"@type": "xsd:dateTime", "@value": t.UTC().Format(time.RFC3339Nano)}
}

func ldTimeText(s string) node { return node{"@type": "xsd:dateTime", "@value": s} }

// hashNodes are the types:Hash nodes of the given hex digests (owner names
// the object they belong to, for their IRIs).
func (j *ldWriter) hashNodes(owner string, md5, sha1, sha256 string) []node {
	var out []node
	for _, h := range []struct{ alg, v string }{{"MD5", md5}, {"SHA1", sha1}, {"SHA256", sha256}} {
		if h.v == "" {
			continue
		}
		out = append(out, node{"@id": j.iri("hash", owner, h.alg), "@type": "uco-types:Hash",
			"uco-types:hashMethod": h.alg, "uco-types:hashValue": node{"@type": "xsd:hexBinary", "@value": strings.ToUpper(h.v)}})
	}
	return out
}

func (j *ldWriter) contentFacet(owner string, size int64, md5, sha1, sha256 string) node {
	f := node{"@id": j.iri("content", owner), "@type": "uco-observable:ContentDataFacet", "uco-observable:sizeInBytes": size}
	if hs := j.hashNodes(owner, md5, sha1, sha256); len(hs) > 0 {
		f["uco-observable:hash"] = hs
	}
	return f
}

// fileNode is an observable file with its name, path and content hashes.
func (j *ldWriter) fileNode(id, name, filePath string, size int64, md5, sha1, sha256 string, extra ...node) node {
	ff := node{"@id": j.iri("filefacet", id), "@type": "uco-observable:FileFacet", "uco-observable:fileName": name,
		"uco-observable:sizeInBytes": size, "uco-observable:isDirectory": false}
	if filePath != "" {
		ff["uco-observable:filePath"] = filePath
	}
	for _, e := range extra {
		for k, v := range e {
			ff[k] = v
		}
	}
	return node{"@id": id, "@type": "uco-observable:File", "uco-core:name": name,
		"uco-core:hasFacet": []node{ff, j.contentFacet(id, size, md5, sha1, sha256)}}
}

// person is an identity:Person node for a name (examiners, holders).
func (j *ldWriter) person(name string) node {
	id := j.iri("person", strings.ToLower(strings.TrimSpace(name)))
	return j.ref(id, node{"@id": id, "@type": "uco-identity:Person", "uco-core:name": name})
}

// itemName is how an audit item's path is shown outside the workstation:
// relative to the case when inside it, else its base name (the evidence
// file's name; the folder it lay in on the examiner's machine is not a
// fact about the evidence).
func (c *Case) itemName(p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		return filepath.ToSlash(p)
	}
	if rel := c.relPath(p); rel != p {
		return filepath.ToSlash(rel)
	}
	return filepath.Base(p)
}

func ldStatus(outcome string) string {
	switch outcome {
	case OutcomeOK:
		return "Success"
	case OutcomeFailed:
		return "Fail"
	case OutcomeError:
		return "Error"
	case OutcomeStarted:
		return "Ongoing"
	}
	return "Unknown"
}

// writeCASE writes the case as CASE 1.4.0 / UCO 1.4.0 JSON-LD: the
// investigation; each evidence item as an observable with its hashes, its
// seized device and seizure, and a provenance record per exhibit and per
// transfer; one investigative action per audit line (evidx and its
// version as instrument, the examiner acting as performer, start and end
// times, inputs as objects, outputs as results); and every extracted and
// carved file, and every other stored object, with its hashes and a
// Contained_Within relation to its evidence item.
func (c *Case) writeCASE(ctx context.Context, w io.Writer, rep *Report) error {
	j := &ldWriter{w: w, ns: "evidx\x00" + rep.Case.CaseNumber + "\x00" + rep.Case.Created.UTC().Format(time.RFC3339Nano),
		emitted: map[string]bool{}, wanted: map[string]node{}}
	ctxJSON, _ := json.Marshal(caseContext)
	if _, err := fmt.Fprintf(w, "{\n\"@context\": %s,\n\"@graph\": [", ctxJSON); err != nil {
		return err
	}
	invID := j.iri("investigation")
	var members []node // the investigation's core:object

	// Evidence items, their devices, seizures and provenance records.
	evIRI := map[string]string{}
	for _, ev := range rep.Evidence {
		id := j.iri("evidence", ev.ID)
		evIRI[ev.ID] = id
		desc := fmt.Sprintf("Evidence item %s: %s image, %d bytes of media data in %d segment file(s); hashes computed by evidx over the media data at intake.",
			ev.ID, ev.Format, ev.Size, len(ev.Segments))
		if ev.Seizure.Description != "" {
			desc += " As seized: " + ev.Seizure.Description
		}
		j.write(node{"@id": id, "@type": "uco-observable:ObservableObject", "uco-core:name": "evidence " + ev.ID,
			"uco-core:description": desc, "uco-core:objectCreatedTime": ldTime(ev.AddedAt),
			"uco-core:hasFacet": []node{j.contentFacet(id, ev.Size, ev.Computed.MD5, ev.Computed.SHA1, ev.Computed.SHA256)}})
		members = append(members, node{"@id": id})
		s := ev.Seizure
		prov := []node{{"@id": id}}
		if s.DeviceSerial != "" || s.DeviceModel != "" {
			dev := j.iri("device", ev.ID)
			df := node{"@id": j.iri("devicefacet", ev.ID), "@type": "uco-observable:DeviceFacet"}
			if s.DeviceSerial != "" {
				df["uco-observable:serialNumber"] = s.DeviceSerial
			}
			if s.DeviceModel != "" {
				df["uco-observable:model"] = s.DeviceModel
			}
			j.write(node{"@id": dev, "@type": "uco-observable:Device", "uco-core:name": "device of evidence " + ev.ID, "uco-core:hasFacet": []node{df}})
			j.write(node{"@id": j.iri("rel-device", ev.ID), "@type": "uco-observable:ObservableRelationship",
				"uco-core:source": node{"@id": id}, "uco-core:target": node{"@id": dev},
				"uco-core:kindOfRelationship": "Contained_Within", "uco-core:isDirectional": true})
			prov = append(prov, node{"@id": dev})
		}
		pr := node{"@id": j.iri("provenance", ev.ID), "@type": "case-investigation:ProvenanceRecord",
			"case-investigation:exhibitNumber": ev.ID, "case-investigation:rootExhibitNumber": ev.ID, "uco-core:object": prov}
		var facts []string
		for _, f := range []struct{ k, v string }{{"seal", s.Seal}, {"seized by", s.SeizedBy}, {"seized at", timeOrEmpty(s.SeizedAt)},
			{"seized where", s.SeizedWhere}, {"device serial", s.DeviceSerial}, {"device model", s.DeviceModel}} {
			if f.v != "" {
				facts = append(facts, f.k+": "+f.v)
			}
		}
		if len(facts) > 0 {
			pr["uco-core:description"] = "Exhibit " + ev.ID + " — " + strings.Join(facts, "; ")
		}
		j.write(pr)
		members = append(members, node{"@id": pr["@id"]})
		if s.SeizedBy != "" || !s.SeizedAt.IsZero() || s.SeizedWhere != "" {
			act := node{"@id": j.iri("seizure", ev.ID), "@type": "case-investigation:InvestigativeAction", "uco-core:name": "seizure",
				"uco-core:description": "Seizure of exhibit " + ev.ID + " as recorded at intake", "uco-action:result": prov,
				"uco-action:actionStatus": "Complete/Finish"}
			if s.SeizedBy != "" {
				act["uco-action:performer"] = j.person(s.SeizedBy)
			}
			if !s.SeizedAt.IsZero() {
				act["uco-action:startTime"], act["uco-action:endTime"] = ldTime(s.SeizedAt), ldTime(s.SeizedAt)
			}
			if s.SeizedWhere != "" {
				loc := j.iri("location", ev.ID)
				j.write(node{"@id": loc, "@type": "uco-location:Location", "uco-core:name": s.SeizedWhere})
				act["uco-action:location"] = node{"@id": loc}
			}
			j.write(act)
			members = append(members, node{"@id": act["@id"]})
		}
	}
	transferAt := map[int64]Transfer{}
	for _, ev := range rep.Evidence {
		for _, t := range ev.Transfers {
			transferAt[t.AuditSeq] = t
		}
	}

	// One investigative action per audit line.
	lines, _, _ := c.ReadAudit(ctx) // a broken chain is in the report; the lines before the break stand
	started := map[string]Line{}    // action+pid -> its "started" line
	for _, l := range lines {
		if err := ctx.Err(); err != nil {
			return err
		}
		aid := j.iri("audit", fmt.Sprint(l.Seq))
		toolID := j.iri("tool", l.Tool, l.Version, l.Revision)
		ver := l.Version
		if l.Revision != "" {
			ver += " (" + l.Revision + ")"
		}
		examiner := l.Examiner
		if examiner == "" {
			examiner = rep.Case.Examiner
		}
		act := node{"@id": aid, "@type": "case-investigation:InvestigativeAction", "uco-core:name": "evidx " + l.Action,
			"uco-core:description":    fmt.Sprintf("audit.log line %d (%s): %s by examiner %s as OS account %s@%s, pid %d", l.Seq, l.Outcome, l.Action, examiner, l.User, l.Host, l.PID),
			"uco-action:actionStatus": ldStatus(l.Outcome), "uco-action:endTime": ldTimeText(l.Time), "uco-action:startTime": ldTimeText(l.Time),
			"uco-action:performer":  j.person(examiner),
			"uco-action:instrument": j.ref(toolID, node{"@id": toolID, "@type": "uco-tool:Tool", "uco-core:name": l.Tool, "uco-tool:version": ver, "uco-tool:toolType": "forensic ingestion"}),
		}
		if l.Error != "" {
			act["uco-core:description"] = act["uco-core:description"].(string) + ": " + oneLine(l.Error)
		}
		key := l.Action + "\x00" + fmt.Sprint(l.PID)
		if l.Outcome == OutcomeStarted {
			started[key] = l
		} else if s, ok := started[key]; ok {
			act["uco-action:startTime"] = ldTimeText(s.Time)
			act["case-investigation:wasInformedBy"] = node{"@id": j.iri("audit", fmt.Sprint(s.Seq))}
			delete(started, key)
		}
		if objs := c.ldItems(j, l.Inputs, evIRI); len(objs) > 0 {
			act["uco-action:object"] = objs
		}
		results := c.ldItems(j, l.Outputs, evIRI)
		if t, ok := transferAt[l.Seq]; ok && l.Action == "custody.transfer" {
			pr := j.iri("transfer", fmt.Sprint(l.Seq))
			j.write(node{"@id": pr, "@type": "case-investigation:ProvenanceRecord", "case-investigation:exhibitNumber": t.EvidenceID,
				"case-investigation:rootExhibitNumber": t.EvidenceID, "uco-core:object": []node{{"@id": evIRI[t.EvidenceID]}},
				"uco-core:description": fmt.Sprintf("Exhibit %s passed from %s to %s at %s: %s", t.EvidenceID, t.From, t.To, t.At.Format(time.RFC3339), t.Reason)})
			results = append(results, node{"@id": pr})
			act["uco-action:participant"] = []node{j.person(t.From), j.person(t.To)}
			act["uco-action:startTime"], act["uco-action:endTime"] = ldTime(t.At), ldTime(t.At)
			members = append(members, node{"@id": pr})
		}
		if len(results) > 0 {
			act["uco-action:result"] = results
		}
		j.write(act)
		members = append(members, node{"@id": aid})
	}

	// Every extracted and carved file, contained within its evidence item.
	contained := func(fileID, evID string) {
		target, ok := evIRI[evID]
		if !ok {
			return
		}
		j.write(node{"@id": j.iri("rel", fileID), "@type": "uco-observable:ObservableRelationship",
			"uco-core:source": node{"@id": fileID}, "uco-core:target": node{"@id": target},
			"uco-core:kindOfRelationship": "Contained_Within", "uco-core:isDirectional": true})
	}
	err := c.Files(ctx, "", func(f File) error {
		if f.Object == "" {
			return j.err
		}
		id := j.iri("file", fmt.Sprint(f.ID))
		alloc := "allocated"
		if f.Deleted {
			alloc = "deleted"
		}
		extra := node{"uco-observable:allocationStatus": alloc}
		if !f.Mtime.IsZero() {
			extra["uco-observable:modifiedTime"] = ldTime(f.Mtime)
		}
		if !f.Atime.IsZero() {
			extra["uco-observable:accessedTime"] = ldTime(f.Atime)
		}
		fn := j.fileNode(id, path.Base(EscapeName(f.Path)), fmt.Sprintf("%s/vol-%d%s", f.EvidenceID, f.Volume, EscapeName(f.Path)), f.Size, f.MD5, "", f.Object, extra)
		j.write(fn)
		contained(id, f.EvidenceID)
		return j.err
	})
	if err != nil {
		return err
	}
	err = c.CarvedItems(ctx, "", func(cv Carved) error {
		if cv.Object == "" {
			return j.err
		}
		id := j.iri("carved", fmt.Sprint(cv.ID))
		name := fmt.Sprintf("%d-%s.%s", cv.Offset, SafePath(cv.Type), SafePath(cv.Type))
		fn := j.fileNode(id, name, fmt.Sprintf("%s/carved/%s", cv.EvidenceID, name), cv.Length, cv.MD5, "", cv.Object,
			node{"uco-observable:allocationStatus": "unallocated"})
		fn["uco-core:description"] = fmt.Sprintf("carved from evidence %s at byte offset %d, %d bytes, by signature (%s)", cv.EvidenceID, cv.Offset, cv.Length, cv.Type)
		j.write(fn)
		contained(id, cv.EvidenceID)
		return j.err
	})
	if err != nil {
		return err
	}
	// Stored objects no file or carved row names (none today; kept so that
	// every object of the store is in the document with its hashes).
	rows, err := c.db.QueryContext(ctx, `SELECT sha256, md5, sha1, size FROM objects o WHERE NOT EXISTS (SELECT 1 FROM files WHERE object=o.sha256)
		AND NOT EXISTS (SELECT 1 FROM carved WHERE object=o.sha256) ORDER BY sha256`)
	if err != nil {
		return fmt.Errorf("custody: case.jsonld objects: %w", err)
	}
	for rows.Next() {
		var sum, m5, s1 string
		var size int64
		if err := rows.Scan(&sum, &m5, &s1, &size); err != nil {
			rows.Close()
			return fmt.Errorf("custody: case.jsonld objects: %w", err)
		}
		id := j.iri("object", sum)
		j.write(node{"@id": id, "@type": "uco-observable:ObservableObject", "uco-core:name": "stored object " + sum,
			"uco-core:hasFacet": []node{j.contentFacet(id, size, m5, s1, sum)}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("custody: case.jsonld objects: %w", err)
	}

	for id, n := range j.wanted {
		if !j.emitted[id] {
			j.write(n)
		}
	}
	inv := node{"@id": invID, "@type": "case-investigation:Investigation", "uco-core:name": rep.Case.CaseNumber,
		"case-investigation:investigationForm": "case", "case-investigation:investigationStatus": "open",
		"uco-core:objectCreatedTime": ldTime(rep.Case.Created), "uco-core:object": members,
		"uco-core:description": fmt.Sprintf("Case %s, examiner %s; exported by evidx as CASE %s / UCO 1.4.0 at %s", rep.Case.CaseNumber, rep.Case.Examiner, CASEVersion, rep.Generated.Format(time.RFC3339))}
	if rep.Case.Description != "" {
		inv["case-investigation:focus"] = rep.Case.Description
	}
	if rep.Case.Agency != "" {
		inv["uco-core:createdBy"] = j.ref(j.iri("agency", rep.Case.Agency), node{"@id": j.iri("agency", rep.Case.Agency), "@type": "uco-identity:Organization", "uco-core:name": rep.Case.Agency})
		for id, n := range j.wanted {
			if !j.emitted[id] {
				j.write(n)
			}
		}
	}
	j.write(inv)
	if j.err != nil {
		return j.err
	}
	_, err = io.WriteString(w, "\n]\n}\n")
	return err
}

// ldItems are the nodes of audit items: evidence items by their id, other
// files (reports, shards, manifests, datasets) as files named as in the
// case, with their hashes.
func (c *Case) ldItems(j *ldWriter, items []Item, evIRI map[string]string) []node {
	var out []node
	for _, it := range items {
		if it.Kind == "evidence" && it.ID != "" {
			id, ok := evIRI[it.ID]
			if !ok {
				id = j.iri("evidence", it.ID)
			}
			out = append(out, j.ref(id, node{"@id": id, "@type": "uco-observable:ObservableObject",
				"uco-core:name": "evidence " + it.ID, "uco-core:description": "evidence item " + it.ID + " (not registered in the catalog)"}))
			continue
		}
		name := c.itemName(it.Path)
		if name == "" && it.SHA256 == "" {
			continue
		}
		id := j.iri("item", it.Kind, name, it.SHA256)
		base := path.Base(name)
		if name == "" {
			base = it.Kind + " " + it.SHA256
		}
		fn := j.fileNode(id, base, name, it.Size, it.MD5, it.SHA1, it.SHA256)
		fn["uco-core:description"] = it.Kind + " " + it.ID
		out = append(out, j.ref(id, fn))
	}
	return out
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

package custody

import (
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// bar is one row of an inline SVG bar chart: a (and b, stacked) in pixels.
type bar struct {
	Label  string
	Y      int
	A, B   float64 // widths in px
	VA, VB int64   // values
}

// chart is an inline SVG horizontal bar chart.
type chart struct {
	Title  string
	LegA   string
	LegB   string
	Bars   []bar
	Height int
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Chart geometry in SVG user units (the SVG scales to the page width):
// labels end before labelWidth, bars start at barX and are at most
// chartWidth long, and the value printed after the longest bar still ends
// inside svgWidth.
const (
	svgWidth   = 700
	labelChars = 30 // at 9pt DejaVu Sans about 5.6 units a character: 168 < barX
	barX       = 190
	chartWidth = 360.0
)

// chartLabel shortens a source name to labelChars characters (runes, so
// a multi-byte name is never cut inside a character).
func chartLabel(s string) string {
	r := []rune(oneLine(s))
	if len(r) <= labelChars {
		return string(r)
	}
	return string(r[:labelChars-1]) + "…"
}

// charts builds the identities-per-source chart and the overlap chart
// (per source: identities new to the case vs already held by an earlier
// source). Legends sit on their own row under the title, so they never
// overlap a bar or run past the right edge.
func charts(r *Report) []chart {
	var perSource, overlap chart
	perSource.Title = "Unique identities per source"
	perSource.LegA = "unique identities in the source"
	overlap.Title = "Overlap between sources (in ingestion order)"
	overlap.LegA = "new to the case"
	overlap.LegB = "already in an earlier source"
	var maxv int64 = 1
	for _, d := range r.Datasets {
		maxv = max(maxv, sumCounts(d.Unique))
	}
	for i, d := range r.Datasets {
		u, n := sumCounts(d.Unique), sumCounts(d.New)
		seen := max(u-n, 0)
		label := chartLabel(d.Name)
		perSource.Bars = append(perSource.Bars, bar{Label: label, Y: 44 + i*22, A: chartWidth * float64(u) / float64(maxv), VA: u})
		overlap.Bars = append(overlap.Bars, bar{Label: label, Y: 44 + i*22, A: chartWidth * float64(n) / float64(maxv),
			B: chartWidth * float64(seen) / float64(maxv), VA: n, VB: seen})
	}
	perSource.Height = 54 + 22*len(r.Datasets)
	overlap.Height = perSource.Height
	if len(r.Datasets) == 0 {
		return nil
	}
	return []chart{perSource, overlap}
}

var htmlFuncs = template.FuncMap{
	"verdict": func(v *bool) string {
		switch {
		case v == nil:
			return "NOT COMPARED"
		case *v:
			return "VERIFIED"
		default:
			return "NOT VERIFIED"
		}
	},
	"verdictClass": func(v *bool) string {
		switch {
		case v == nil:
			return "none"
		case *v:
			return "ok"
		default:
			return "bad"
		}
	},
	"match": func(want, got string) string {
		switch {
		case want == "":
			return "—"
		case strings.EqualFold(want, got):
			return "match"
		default:
			return "MISMATCH"
		}
	},
	"kinds": func(m map[string]int64) []string {
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	},
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"num": func(n int64) string {
		s := fmt.Sprint(n)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	},
	"oneLine": oneLine,
	"base":    func(p string) string { return filepath.Base(p) },
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"verifies": func(as []AuditLine) []AuditLine {
		var out []AuditLine
		for _, a := range as {
			if a.Action == "verify" && a.Outcome != OutcomeStarted {
				out = append(out, a)
			}
		}
		return out
	},
	"examiners": func(as []AuditLine) string {
		seen := map[string]bool{}
		var out []string
		for _, a := range as {
			if a.Examiner != "" && !seen[a.Examiner] {
				seen[a.Examiner] = true
				out = append(out, a.Examiner)
			}
		}
		return strings.Join(out, ", ")
	},
	"first": func(as []AuditLine) string {
		if len(as) == 0 {
			return ""
		}
		return as[0].Time
	},
	"last": func(as []AuditLine) string {
		if len(as) == 0 {
			return ""
		}
		return as[len(as)-1].Time
	},
	"short": func(ts string) string { // audit times to the second, for print
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			return t.UTC().Format("2006-01-02T15:04:05Z")
		}
		return ts
	},
	"charts": charts,
	"add":    func(a, b float64) float64 { return a + b },
}

// chartDef is an inline SVG horizontal bar chart (a chart), shared by the
// English and Chinese reports: no script, prints as drawn.
const chartDef = `{{define "chart"}}
<figure>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 700 {{.Height}}" width="700" height="{{.Height}}" role="img" aria-label="{{.Title}}">
<text x="0" y="12" font-weight="bold">{{.Title}}</text>
<rect x="0" y="20" width="10" height="10" fill="#2b6cb0"/><text x="14" y="29">{{.LegA}}</text>
{{if .LegB}}<rect x="260" y="20" width="10" height="10" fill="#c05621"/><text x="274" y="29">{{.LegB}}</text>{{end}}
{{range .Bars}}<text x="0" y="{{.Y}}" dy="12">{{.Label}}</text>
<rect x="190" y="{{.Y}}" width="{{printf "%.1f" .A}}" height="16" fill="#2b6cb0"/>
{{if .VB}}<rect x="{{printf "%.1f" (add 190 .A)}}" y="{{.Y}}" width="{{printf "%.1f" .B}}" height="16" fill="#c05621"/>{{end}}
<text x="{{printf "%.1f" (add 194 (add .A .B))}}" y="{{.Y}}" dy="12">{{num .VA}}{{if .VB}} + {{num .VB}}{{end}}</text>
{{end}}</svg>
</figure>
{{end}}`

var reportTmpl = template.Must(template.New("report").Funcs(htmlFuncs).Funcs(reportPersonsFuncs).Parse(chartDef + `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chain-of-custody report — case {{.Case.CaseNumber}}</title>
<style>
  body { font: 10.5pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 2em auto; max-width: 60em; padding: 0 1em; }
  h1 { font-size: 17pt; margin: 0 0 .2em; } h2 { font-size: 13pt; border-bottom: 2px solid #333; margin-top: 1.6em; }
  h3 { font-size: 11.5pt; margin: 1.2em 0 .4em; }
  table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
  th, td { border: 1px solid #999; padding: 3px 6px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
  th { overflow-wrap: normal; hyphens: none; } tr > th:first-child { white-space: nowrap; }
  th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; overflow-wrap: anywhere; }
  /* Hashes and times are single tokens: never broken inside. A SHA-256
     in 7.5pt monospace is 102 mm wide and every cell holding one is laid
     out to have that room on A4 and Letter. */
  .hash { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 7.5pt; white-space: nowrap; overflow-wrap: normal; word-break: keep-all; }
  .ts { white-space: nowrap; font-variant-numeric: tabular-nums; }
  .ok { color: #075e07; font-weight: bold; } .bad { color: #a00; font-weight: bold; } .none { color: #555; font-weight: bold; }
  .meta th { width: 14em; } .note { color: #444; font-size: 9.5pt; }
  .sub td { border-top: none; font-size: 8.5pt; color: #333; }
  section.finding, section.interpretation { page-break-inside: auto; }
  figure { margin: .5em 0; } svg { width: 100%; max-width: 700px; height: auto; } svg text { font: 9pt "DejaVu Sans", sans-serif; }
  .level-serious, .level-especially_serious { color: #a00; font-weight: bold; }
  table.sentencing [class^="level-"] { white-space: nowrap; }
  table.sign td { height: 2.6em; } table.sign th { width: 10em; }
  @page {
    size: A4; margin: 18mm 12mm 16mm;
    @top-left { content: "Chain-of-custody report — case {{.Case.CaseNumber}}"; font: 8pt "DejaVu Sans", sans-serif; color: #444; }
    @bottom-left { content: "Case {{.Case.CaseNumber}}"; font: 8pt "DejaVu Sans", sans-serif; color: #444; }
    @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 8pt "DejaVu Sans", sans-serif; color: #444; }
  }
  @media print {
    body { margin: 0; max-width: none; font-size: 9.5pt; padding: 0; }
    h2, h3 { page-break-after: avoid; } tr, svg, .evidence-head, table.sign { page-break-inside: avoid; }
    thead { display: table-header-group; }
    a { color: inherit; text-decoration: none; }
  }
</style>
</head>
<body>
<h1>Chain-of-custody report</h1>
<p class="note">Case {{.Case.CaseNumber}}. Generated <span class="ts">{{.Generated.Format "2006-01-02T15:04:05Z07:00"}}</span> (UTC) by {{.Tool.Name}} {{.Tool.Version}}. This page is self-contained; print it to PDF for filing (every printed page carries the case number and its page number). Its SHA-256 is listed in SHA256SUMS beside it and in the case audit log; case.jsonld holds the same record as CASE/UCO 1.4 JSON-LD.</p>

<h2>1. Case</h2>
<table class="meta">
<tr><th>Case number</th><td>{{.Case.CaseNumber}}</td></tr>
<tr><th>Examiner</th><td>{{.Case.Examiner}}</td></tr>
<tr><th>Agency</th><td>{{.Case.Agency}}</td></tr>
{{if .Case.Description}}<tr><th>Description</th><td>{{.Case.Description}}</td></tr>{{end}}
<tr><th>Case created</th><td><span class="ts">{{.Case.Created.Format "2006-01-02T15:04:05Z07:00"}}</span> with {{.Case.Tool}}</td></tr>
<tr><th>Tool</th><td>{{.Tool.Name}} version {{.Tool.Version}}, VCS revision <code>{{or .Tool.Revision "unknown"}}</code>, built with {{.Tool.GoVersion}}</td></tr>
<tr><th>Host</th><td>{{.Environment.Host}} (OS account {{.Environment.User}})</td></tr>
<tr><th>Operating system</th><td>{{.Environment.OSSysname}} {{.Environment.OSRelease}} {{.Environment.OSVersion}} {{.Environment.Arch}}</td></tr>
<tr><th>Report signing key</th><td>{{if .Case.SignPubKey}}ed25519 public key <span class="hash">{{.Case.SignPubKey}}</span>{{else}}none (reports are not signed){{end}}</td></tr>
</table>

<h2>2. Findings</h2>
<p class="note">Measured facts only: hashes, offsets, counts. Section 5 holds interpretation.</p>
{{range .Evidence}}
<section class="finding">
<h3 class="evidence-head">Evidence item {{.ID}}</h3>
<table class="meta">
<tr><th>Container format</th><td>{{.Format}}</td></tr>
<tr><th>Media size</th><td>{{num .Size}} bytes</td></tr>
<tr><th>Sector size / count</th><td>{{.SectorSize}} bytes × {{num .SectorCount}} sectors</td></tr>
<tr><th>Registered</th><td class="ts">{{.AddedAt.Format "2006-01-02T15:04:05Z07:00"}}</td></tr>
</table>
<h3>Custody of {{.ID}}</h3>
<table class="meta">
<tr><th>Seal / bag number</th><td>{{or .Seizure.Seal "not recorded"}}</td></tr>
<tr><th>Seized by</th><td>{{or .Seizure.SeizedBy "not recorded"}}</td></tr>
<tr><th>Seized at</th><td>{{if .Seizure.SeizedAt.IsZero}}not recorded{{else}}<span class="ts">{{rfc3339 .Seizure.SeizedAt}}</span> (UTC){{end}}</td></tr>
<tr><th>Seized where</th><td>{{or .Seizure.SeizedWhere "not recorded"}}</td></tr>
<tr><th>Device</th><td>{{if or .Seizure.DeviceModel .Seizure.DeviceSerial}}{{.Seizure.DeviceModel}}{{if .Seizure.DeviceSerial}}, serial number <code>{{.Seizure.DeviceSerial}}</code>{{end}}{{else}}not recorded{{end}}</td></tr>
{{if .Seizure.Description}}<tr><th>Description as seized</th><td>{{.Seizure.Description}}</td></tr>{{end}}
</table>
{{if .Transfers}}<table>
<thead><tr><th>When (UTC)</th><th>From</th><th>To</th><th>Reason</th><th>Recorded by</th><th>Audit line</th></tr></thead>
{{range .Transfers}}<tr><td class="ts">{{rfc3339 .At}}</td><td>{{oneLine .From}}</td><td>{{oneLine .To}}</td><td>{{oneLine .Reason}}</td><td>{{oneLine .Examiner}}</td><td class="n">{{.AuditSeq}}</td></tr>
{{end}}</table>{{else}}<p>No transfer recorded since intake{{if .Seizure.SeizedBy}}: held by {{.Seizure.SeizedBy}}{{end}}.</p>{{end}}
<table>
<thead><tr><th>#</th><th>Segment file</th><th>Size (bytes)</th><th>SHA-256 of the file</th></tr></thead>
{{range $i, $s := .Segments}}<tr><td class="n">{{$i}}</td><td><code>{{oneLine (base $s.Path)}}</code></td><td class="n">{{num $s.Size}}</td><td class="hash">{{$s.SHA256}}</td></tr>
{{end}}</table>
<table>
<thead><tr><th>Algorithm</th><th>Source</th><th>Value</th><th>Against computed</th></tr></thead>
<tr><th>MD5</th><td>computed at intake</td><td class="hash">{{.Computed.MD5}}</td><td>—</td></tr>
{{if .Stored.MD5}}<tr><th>MD5</th><td>stored in the container</td><td class="hash">{{.Stored.MD5}}</td><td>{{match .Stored.MD5 .Computed.MD5}}</td></tr>{{end}}
{{if .Expected.MD5}}<tr><th>MD5</th><td>given by the examiner</td><td class="hash">{{.Expected.MD5}}</td><td>{{match .Expected.MD5 .Computed.MD5}}</td></tr>{{end}}
<tr><th>SHA-1</th><td>computed at intake</td><td class="hash">{{.Computed.SHA1}}</td><td>—</td></tr>
{{if .Stored.SHA1}}<tr><th>SHA-1</th><td>stored in the container</td><td class="hash">{{.Stored.SHA1}}</td><td>{{match .Stored.SHA1 .Computed.SHA1}}</td></tr>{{end}}
{{if .Expected.SHA1}}<tr><th>SHA-1</th><td>given by the examiner</td><td class="hash">{{.Expected.SHA1}}</td><td>{{match .Expected.SHA1 .Computed.SHA1}}</td></tr>{{end}}
<tr><th>SHA-256</th><td>computed at intake</td><td class="hash">{{.Computed.SHA256}}</td><td>—</td></tr>
{{if .Stored.SHA256}}<tr><th>SHA-256</th><td>stored in the container</td><td class="hash">{{.Stored.SHA256}}</td><td>{{match .Stored.SHA256 .Computed.SHA256}}</td></tr>{{end}}
{{if .Expected.SHA256}}<tr><th>SHA-256</th><td>given by the examiner</td><td class="hash">{{.Expected.SHA256}}</td><td>{{match .Expected.SHA256 .Computed.SHA256}}</td></tr>{{end}}
</table>
<table class="meta">
<tr><th>Verification result</th><td class="{{verdictClass .Verified}}">{{verdict .Verified}}</td></tr>
<tr><th>Data hash comparison</th><td>{{.HashReason}}</td></tr>
<tr><th>Container checksums</th><td>{{if .Container}}<ul>{{range .Container}}<li>{{.}}</li>{{end}}</ul>{{else}}no container checksum failed{{end}}</td></tr>
<tr><th>Unreadable ranges</th><td>{{if .Unreadable}}<ul>{{range .Unreadable}}<li>bytes {{num .Offset}} + {{num .Length}}</li>{{end}}</ul>{{else}}none{{end}}</td></tr>
{{if .Header}}<tr><th>Container case text</th><td>{{range $k, $v := .Header}}{{$k}}: {{$v}}<br>{{end}}</td></tr>{{end}}
</table>
<h3>Volumes and file systems on {{.ID}}</h3>
{{if .Volumes}}<table>
<thead><tr><th>Index</th><th>Start (bytes)</th><th>Size (bytes)</th><th>Type</th><th>File system</th><th>Problems</th></tr></thead>
{{range .Volumes}}<tr><td class="n">{{.Index}}</td><td class="n">{{num .Start}}</td><td class="n">{{num .Size}}</td><td>{{.Type}}</td><td>{{.FileSystem}}</td><td>{{range .Problems}}{{.}}<br>{{end}}</td></tr>
{{end}}</table>{{else}}<p>No volumes recorded.</p>{{end}}
<h3>Files on {{.ID}}</h3>
<table>
<thead><tr><th>Regular files</th><th>Allocated</th><th>Deleted</th><th>Directories</th><th>Extracted to the case</th><th>Carved</th><th>Entries with damage</th></tr></thead>
<tr><td class="n">{{num .Counts.Files}}</td><td class="n">{{num .Counts.Allocated}}</td><td class="n">{{num .Counts.Deleted}}</td><td class="n">{{num .Counts.Dirs}}</td><td class="n">{{num .Counts.Extracted}}</td><td class="n">{{num .Counts.Carved}}</td><td class="n">{{num .Counts.Errors}}</td></tr>
</table>
{{with .Carve}}<h3>Carving</h3>
<table><thead><tr><th>Ranges searched</th><th>Bytes searched</th><th>Files carved</th><th>Bytes carved</th><th>Seconds</th></tr></thead>
<tr><td class="n">{{num .Ranges}}</td><td class="n">{{num .BytesSearched}}</td><td class="n">{{num .Carved}}</td><td class="n">{{num .BytesCarved}}</td><td class="n">{{printf "%.1f" .Seconds}}</td></tr></table>{{end}}
{{if .Features}}{{$f := .Features}}<h3>Identifiers in the raw bytes (scan)</h3>
<table><thead><tr>{{range $k := kinds $f}}<th>{{$k}}</th>{{end}}</tr></thead>
<tr>{{range $k := kinds $f}}<td class="n">{{num (index $f $k)}}</td>{{end}}</tr></table>
<p class="note">Feature files (bulk_extractor style) are in features/{{.ID}}/ of the case.</p>{{end}}
<p class="note">Each file with its byte runs (image offsets), MD5 and SHA-256 is listed in evidence-{{.ID}}.dfxml; extracted and carved files in manifest.hashdeep and case.jsonld.</p>
</section>
{{else}}<p>No evidence items registered.</p>{{end}}

<h3>Hash sets</h3>
{{if .Hashsets}}<table>
<thead><tr><th>Hash set</th><th>Kind</th><th>Format</th><th>Hashes</th><th>File</th><th>Size (bytes)</th></tr></thead>
{{range .Hashsets}}<tr><td>{{oneLine .Name}}</td><td>{{.Kind}}</td><td>{{.Format}}</td><td class="n">{{if lt .Entries 0}}not counted (indexed){{else}}{{num .Entries}}{{end}}</td><td><code>{{oneLine .Path}}</code></td><td class="n">{{num .Size}}</td></tr>
<tr class="sub"><td colspan="6">SHA-256 <span class="hash">{{.SHA256}}</span></td></tr>
{{end}}</table>
{{if .HashsetMatches}}<p>Files of evidence whose content hash is in a set, known-bad first{{if gt (len .HashsetMatches) 2000}} (the first 2,000 of {{numInt (len .HashsetMatches)}}; all are in report.json){{end}}:</p>
<table class="hashset-matches">
<thead><tr><th>Kind</th><th>Hash set</th><th>Evidence</th><th>Volume</th><th>Path</th><th>Size (bytes)</th><th>Deleted</th><th>SHA-256</th></tr></thead>
{{range $i, $m := .HashsetMatches}}{{if lt $i 2000}}<tr><td>{{$m.Kind}}</td><td>{{oneLine $m.Hashset}}</td><td>{{$m.EvidenceID}}</td><td class="n">{{$m.Volume}}</td><td><code>{{oneLine $m.Path}}</code></td><td class="n">{{num $m.Size}}</td><td>{{if $m.Deleted}}yes{{else}}no{{end}}</td><td class="hash">{{$m.SHA256}}</td></tr>
{{end}}{{end}}</table>{{else}}<p>No file of evidence is in a recorded hash set.</p>{{end}}
{{else}}<p>No hash sets recorded.</p>{{end}}

<h3>Datasets</h3>
{{if .Datasets}}<table>
<thead><tr><th>Source</th><th>Found on</th><th>Rows</th><th>Rejected</th><th>Unique identities</th><th>New to the case</th></tr></thead>
{{range .Datasets}}<tr><td>{{oneLine .Name}}</td><td>{{if .EvidenceID}}{{.EvidenceID}}: <code>{{oneLine .EvidencePath}}</code>{{else}}handed over{{end}}</td>
<td class="n">{{num .Rows}}</td><td class="n">{{num .Rejected}}</td>
<td>{{$u := .Unique}}{{range kinds $u}}{{.}}: {{num (index $u .)}}<br>{{end}}</td><td>{{$n := .New}}{{range kinds $n}}{{.}}: {{num (index $n .)}}<br>{{end}}</td></tr>
<tr class="sub"><td colspan="6">SHA-256 <span class="hash">{{.SHA256}}</span></td></tr>
{{if or .Columns .Problems}}<tr class="sub"><td colspan="6" class="roles">{{range .Columns}}{{if ne .Kind "none"}}<span>{{if .Schema}}{{oneLine .Schema}} {{end}}column {{if .Name}}“{{oneLine .Name}}”{{else}}{{.Index}}{{end}} → <b>{{.Kind}}</b> by {{.DecidedBy}}, {{pct .ValidShare}} valid</span>; {{end}}{{end}}
{{range .Problems}}<br><b>Warning:</b> {{oneLine .}}{{end}}</td></tr>{{end}}
{{end}}</table>{{else}}<p>No datasets ingested.</p>{{end}}
{{if .Removed}}<p>Removed from the index (loaded, then taken out; in no count of this report):</p><table>
<thead><tr><th>Source</th><th>Removed (UTC)</th><th>Audit line</th><th>Reason</th></tr></thead>
{{range .Removed}}<tr><td>{{oneLine .Name}}</td><td class="ts">{{short .Time}}</td><td class="n">{{.AuditSeq}}</td><td>{{oneLine .Reason}}</td></tr>
<tr class="sub"><td colspan="4">SHA-256 <span class="hash">{{.SHA256}}</span></td></tr>{{end}}
</table>{{end}}

<h3>Unique identities (victims) in the case</h3>
{{if .Identities.Unique}}<table>
<thead><tr><th>Kind</th><th>Unique identities</th></tr></thead>
{{$u := .Identities.Unique}}{{range kinds $u}}<tr><td>{{.}}</td><td class="n">{{num (index $u .)}}</td></tr>{{end}}
<tr><th>All kinds (one person may have an identity of several kinds)</th><th class="n">{{num .Identities.Total}}</th></tr>
</table>{{else}}<p>No identities indexed.</p>{{end}}
{{range charts .}}{{template "chart" .}}{{end}}

<h3>Persons (victims) in the case</h3>
{{with .Persons}}{{$p := .}}<table class="meta">
<tr><th>Unique persons</th><td class="n persons-unique">{{num .Unique}}</td></tr>
<tr><th>Records linked</th><td class="n">{{num .Records}}</td></tr>
<tr><th>Hubs (values that link nobody)</th><td class="n">{{num .HubsTotal}}</td></tr>
<tr><th>Linked</th><td class="ts">{{.Built}}</td></tr>
</table>
<p><b>Linking method.</b> {{.Method}}</p>
{{if .Hubs}}<table class="hubs">
<thead><tr><th>Kind</th><th>Value</th><th>People it touches</th><th>Rule</th></tr></thead>
{{range firstHubs .Hubs}}<tr><td>{{.Kind}}</td><td><code>{{oneLine .Value}}</code></td><td class="n">{{num .People}}</td><td>{{.Rule}}</td></tr>
{{end}}</table>{{if gt .HubsTotal 50}}<p class="note">The 50 hubs touching the most people; the {{numInt (len .Hubs)}} touching the most are in report.json, and all {{num .HubsTotal}} are written by <code>evidx export CASE --hubs OUT.csv</code>.</p>{{end}}{{end}}
{{if .Sources}}<table>
<thead><tr><th>Source</th><th>Information category</th><th>Persons</th><th>New to the case</th></tr></thead>
{{range .Sources}}<tr><td>{{oneLine .Name}}</td><td>{{or .Category "—"}}</td><td class="n">{{num .Persons}}</td><td class="n">{{num .New}}</td></tr>
{{end}}</table>{{end}}
{{if .Evidence}}<table>
<thead><tr><th>Evidence item</th><th>Persons in its sources</th></tr></thead>
{{range .Evidence}}<tr><td>{{.ID}}</td><td class="n">{{num .Persons}}</td></tr>{{end}}
</table>{{end}}

<h3>Where the ID numbers were issued</h3>
{{with .Demographics}}{{if .Province}}<p class="note">Unique ID numbers by the province, prefecture and county of their address code (GB/T 2260, {{.Edition}}; retired codes included), ages as of {{.AgeYear}}.{{if .Unknown}} {{num .Unknown}} ID numbers carry a county code the table lacks.{{end}}</p>
<table class="provinces">
<thead><tr><th>Code</th><th>Province</th><th>Unique ID numbers</th></tr></thead>
{{range .Province}}<tr><td>{{.Code}}</td><td>{{.Name}}</td><td class="n">{{num .CNID}}</td></tr>
{{end}}</table>
{{template "chart" (provinceChart . "Unique ID numbers per province" "unique ID numbers")}}
{{if .Prefecture}}<table>
<thead><tr><th>Code</th><th>Prefecture</th><th>Province</th><th>Unique ID numbers</th></tr></thead>
{{range firstPlaces .Prefecture}}<tr><td>{{.Code}}</td><td>{{.Name}}{{if .Retired}} (code retired){{end}}</td><td>{{.Province}}</td><td class="n">{{num .CNID}}</td></tr>
{{end}}</table>{{if gt (len .Prefecture) 20}}<p class="note">The 20 prefectures with the most ID numbers; all {{numInt (len .Prefecture)}}, and every county, are in report.json.</p>{{end}}{{end}}
<table class="ages">
<thead><tr><th>Age band</th><th>Unique ID numbers</th></tr></thead>
{{range .AgeBand}}<tr><td>{{.Label}}</td><td class="n">{{num .CNID}}</td></tr>{{end}}
</table>
{{template "chart" (ageChart . "Unique ID numbers per age band" "unique ID numbers")}}
<table class="sex">
<thead><tr><th>Sex (17th digit)</th><th>Unique ID numbers</th></tr></thead>
{{range .Sex}}<tr><td>{{.Label}}</td><td class="n">{{num .CNID}}</td></tr>{{end}}
</table>{{else}}<p>No valid ID number among the persons.</p>{{end}}{{end}}

<h3>Sentencing counts (法释〔2017〕10号 art. 5)</h3>
{{with .Sentencing}}{{if .Categories}}<table class="sentencing">
<thead><tr><th>Information category</th><th>Sources</th><th>Persons (deduplicated records)</th><th>情节严重 at</th><th>情节特别严重 at</th><th>Level reached</th></tr></thead>
{{range .Categories}}<tr><td>{{.Label}} ({{.Category}})</td><td>{{sourceNames $p .Sources}}</td><td class="n">{{num .Persons}}</td><td class="n">{{num .Serious}}</td><td class="n">{{num .EspeciallySerious}}</td><td class="level-{{.Level}}">{{levelEn .Level}}</td></tr>
{{end}}<tr><th colspan="5">All categories in proportion (each count divided by its 情节严重 threshold, added): {{ratio .Combined}}</th><th class="level-{{.CombinedLevel}}">{{levelEn .CombinedLevel}}</th></tr>
</table>{{else}}<p>No source is tagged with an information category (evidx source set-category CASE SOURCE CATEGORY): no sentencing count is given.</p>{{end}}
{{if .Uncategorized}}<p class="note">{{num .Uncategorized}} persons are in sources without a category and in no count above.</p>{{end}}
<p><b>Method.</b> {{.Method}}</p>{{end}}
{{else}}<p>The identifiers of this case were not linked into persons (see the limitations): no person count, demographics or sentencing count is given.</p>{{end}}

<h2>3. Audit log</h2>
<p>{{.Audit.Lines}} entries; chain {{if .Audit.Intact}}<span class="ok">intact</span>{{else}}<span class="bad">BROKEN: {{.Audit.Problem}}</span>{{end}}.
SHA-256 of the audit log head (last line) when this report was made: <span class="hash">{{.Audit.Head}}</span>.</p>
<table>
<thead><tr><th>#</th><th>Time (UTC)</th><th>Action</th><th>Outcome</th><th>Examiner</th><th>OS account@host</th></tr></thead>
{{range .Audit.Actions}}<tr><td class="n">{{.Seq}}</td><td class="ts">{{short .Time}}</td><td>{{.Action}}</td><td>{{.Outcome}}{{if .Error}}: {{oneLine .Error}}{{end}}</td><td>{{.Examiner}}</td><td>{{.User}}@{{.Host}}</td></tr>
{{if .Inputs}}<tr class="sub"><td></td><td colspan="5">{{range .Inputs}}{{.Kind}} {{.ID}} {{if .Path}}<code>{{oneLine .Path}}</code>{{end}}{{if .SHA256}}<br>SHA-256 <span class="hash">{{.SHA256}}</span>{{end}}<br>{{end}}</td></tr>{{end}}
{{end}}</table>
{{with verifies .Audit.Actions}}<h3>Verifications</h3>
<table><thead><tr><th>#</th><th>Time (UTC)</th><th>Result</th><th>Examiner</th></tr></thead>
{{range .}}<tr><td class="n">{{.Seq}}</td><td class="ts">{{short .Time}}</td><td class="{{if eq .Outcome "ok"}}ok{{else}}bad{{end}}">{{if eq .Outcome "ok"}}passed{{else}}{{.Outcome}}: {{oneLine .Error}}{{end}}</td><td>{{.Examiner}}</td></tr>
{{end}}</table>{{end}}

<h2>4. Errors and limitations</h2>
<h3>Errors recorded</h3>
{{if .Errors}}<ul>{{range .Errors}}<li>{{oneLine .}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
<h3>Limitations</h3>
<ul>{{range .Limitations}}<li>{{.}}</li>{{end}}</ul>

<section class="interpretation">
<h2>5. Interpretation</h2>
<p>evidx makes no interpretation. Conclusions drawn from the findings above are the examiner's and are to be stated separately, citing the evidence item, byte offsets and hashes they rest on.</p>
</section>

<h2>6. Signatures</h2>
<p>I certify that the findings above were produced by the actions recorded in the audit log of case {{.Case.CaseNumber}} (head SHA-256 <span class="hash">{{.Audit.Head}}</span>).</p>
<table class="sign">
<tr><th>Examiner</th><td>{{.Case.Examiner}}</td><th>Signature</th><td style="width:30%"></td></tr>
<tr><th>Date</th><td></td><th>Place</th><td></td></tr>
<tr><th>Reviewer / witness</th><td></td><th>Signature</th><td></td></tr>
<tr><th>Date</th><td></td><th>Place</th><td></td></tr>
</table>
</body>
</html>
`))

func writeHTML(w io.Writer, r *Report) error {
	return reportTmpl.Execute(w, r)
}

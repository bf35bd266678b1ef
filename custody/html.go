package custody

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
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

const chartWidth = 420.0 // px of the longest bar

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// charts builds the identities-per-source chart and the overlap chart
// (per source: identities new to the case vs already held by an earlier
// source).
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
		label := d.Name
		if len(label) > 40 {
			label = label[:37] + "..."
		}
		perSource.Bars = append(perSource.Bars, bar{Label: label, Y: 24 + i*22, A: chartWidth * float64(u) / float64(maxv), VA: u})
		overlap.Bars = append(overlap.Bars, bar{Label: label, Y: 24 + i*22, A: chartWidth * float64(n) / float64(maxv),
			B: chartWidth * float64(seen) / float64(maxv), VA: n, VB: seen})
	}
	perSource.Height = 34 + 22*len(r.Datasets)
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
	"charts":  charts,
	"add":     func(a, b float64) float64 { return a + b },
}

var reportTmpl = template.Must(template.New("report").Funcs(htmlFuncs).Parse(`<!DOCTYPE html>
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
  th, td { border: 1px solid #999; padding: 3px 6px; text-align: left; vertical-align: top; }
  th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
  code, .hash { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; word-break: break-all; }
  .ok { color: #075e07; font-weight: bold; } .bad { color: #a00; font-weight: bold; } .none { color: #555; font-weight: bold; }
  .meta th { width: 14em; } .note { color: #444; font-size: 9.5pt; }
  section.finding, section.interpretation { page-break-inside: auto; }
  svg text { font: 9pt sans-serif; }
  @page { margin: 15mm 12mm; } /* A4 or Letter, as the printer is set */
  @media print {
    body { margin: 0; max-width: none; font-size: 9.5pt; }
    h2 { page-break-after: avoid; } tr, svg, .evidence-head { page-break-inside: avoid; }
    thead { display: table-header-group; }
    a { color: inherit; text-decoration: none; }
  }
</style>
</head>
<body>
<h1>Chain-of-custody report</h1>
<p class="note">Generated {{.Generated.Format "2006-01-02T15:04:05Z07:00"}} (UTC) by {{.Tool.Name}} {{.Tool.Version}}. This page is self-contained; print it to PDF for filing. Its SHA-256 is listed in SHA256SUMS beside it and in the case audit log.</p>

<h2>1. Case</h2>
<table class="meta">
<tr><th>Case number</th><td>{{.Case.CaseNumber}}</td></tr>
<tr><th>Examiner</th><td>{{.Case.Examiner}}</td></tr>
<tr><th>Agency</th><td>{{.Case.Agency}}</td></tr>
{{if .Case.Description}}<tr><th>Description</th><td>{{.Case.Description}}</td></tr>{{end}}
<tr><th>Case created</th><td>{{.Case.Created.Format "2006-01-02T15:04:05Z07:00"}} with {{.Case.Tool}}</td></tr>
<tr><th>Tool</th><td>{{.Tool.Name}} version {{.Tool.Version}}, VCS revision <code>{{or .Tool.Revision "unknown"}}</code>, built with {{.Tool.GoVersion}}</td></tr>
<tr><th>Host</th><td>{{.Environment.Host}} (user {{.Environment.User}})</td></tr>
<tr><th>Operating system</th><td>{{.Environment.OSSysname}} {{.Environment.OSRelease}} {{.Environment.OSVersion}} {{.Environment.Arch}}</td></tr>
<tr><th>Report signing key</th><td>{{if .Case.SignPubKey}}ed25519 public key <code>{{.Case.SignPubKey}}</code>{{else}}none (reports are not signed){{end}}</td></tr>
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
<tr><th>Registered</th><td>{{.AddedAt.Format "2006-01-02T15:04:05Z07:00"}}</td></tr>
</table>
<table>
<thead><tr><th>#</th><th>Segment file</th><th>Size (bytes)</th><th>SHA-256 of the file</th></tr></thead>
{{range $i, $s := .Segments}}<tr><td class="n">{{$i}}</td><td><code>{{oneLine $s.Path}}</code></td><td class="n">{{num $s.Size}}</td><td class="hash">{{$s.SHA256}}</td></tr>
{{end}}</table>
<table>
<thead><tr><th>Algorithm</th><th>Computed over the media data at intake</th><th>Stored in the container</th><th>Given by the examiner</th></tr></thead>
<tr><th>MD5</th><td class="hash">{{.Computed.MD5}}</td><td class="hash">{{.Stored.MD5}} {{match .Stored.MD5 .Computed.MD5}}</td><td class="hash">{{.Expected.MD5}} {{match .Expected.MD5 .Computed.MD5}}</td></tr>
<tr><th>SHA-1</th><td class="hash">{{.Computed.SHA1}}</td><td class="hash">{{.Stored.SHA1}} {{match .Stored.SHA1 .Computed.SHA1}}</td><td class="hash">{{.Expected.SHA1}} {{match .Expected.SHA1 .Computed.SHA1}}</td></tr>
<tr><th>SHA-256</th><td class="hash">{{.Computed.SHA256}}</td><td class="hash">{{.Stored.SHA256}} {{match .Stored.SHA256 .Computed.SHA256}}</td><td class="hash">{{.Expected.SHA256}} {{match .Expected.SHA256 .Computed.SHA256}}</td></tr>
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
<p class="note">Each file with its byte runs (image offsets), MD5 and SHA-256 is listed in evidence-{{.ID}}.dfxml; extracted and carved files in manifest.hashdeep.</p>
</section>
{{else}}<p>No evidence items registered.</p>{{end}}

<h3>Datasets</h3>
{{if .Datasets}}<table>
<thead><tr><th>Source</th><th>SHA-256</th><th>Found on</th><th>Rows</th><th>Rejected</th><th>Unique identities</th><th>New to the case</th></tr></thead>
{{range .Datasets}}<tr><td>{{oneLine .Name}}</td><td class="hash">{{.SHA256}}</td><td>{{if .EvidenceID}}{{.EvidenceID}}: <code>{{oneLine .EvidencePath}}</code>{{else}}handed over{{end}}</td>
<td class="n">{{num .Rows}}</td><td class="n">{{num .Rejected}}</td>
<td>{{$u := .Unique}}{{range kinds $u}}{{.}}: {{num (index $u .)}}<br>{{end}}</td><td>{{$n := .New}}{{range kinds $n}}{{.}}: {{num (index $n .)}}<br>{{end}}</td></tr>
{{if or .Columns .Problems}}<tr><td colspan="7" class="roles">{{range .Columns}}{{if ne .Kind "none"}}<span>{{if .Schema}}{{oneLine .Schema}} {{end}}column {{if .Name}}“{{oneLine .Name}}”{{else}}{{.Index}}{{end}} → <b>{{.Kind}}</b> by {{.DecidedBy}}, {{pct .ValidShare}} valid</span>; {{end}}{{end}}
{{range .Problems}}<br><b>Warning:</b> {{oneLine .}}{{end}}</td></tr>{{end}}
{{end}}</table>{{else}}<p>No datasets ingested.</p>{{end}}
{{if .Removed}}<p>Removed from the index (loaded, then taken out; in no count of this report):</p><table>
<thead><tr><th>Source</th><th>SHA-256</th><th>Removed (UTC)</th><th>Audit line</th><th>Reason</th></tr></thead>
{{range .Removed}}<tr><td>{{oneLine .Name}}</td><td class="hash">{{.SHA256}}</td><td>{{.Time}}</td><td class="n">{{.AuditSeq}}</td><td>{{oneLine .Reason}}</td></tr>{{end}}
</table>{{end}}

<h3>Unique identities (victims) in the case</h3>
{{if .Identities.Unique}}<table>
<thead><tr><th>Kind</th><th>Unique identities</th></tr></thead>
{{$u := .Identities.Unique}}{{range kinds $u}}<tr><td>{{.}}</td><td class="n">{{num (index $u .)}}</td></tr>{{end}}
<tr><th>All kinds (one person may have an identity of several kinds)</th><th class="n">{{num .Identities.Total}}</th></tr>
</table>{{else}}<p>No identities indexed.</p>{{end}}
{{range charts .}}
<figure>
<svg xmlns="http://www.w3.org/2000/svg" width="700" height="{{.Height}}" role="img" aria-label="{{.Title}}">
<text x="0" y="12" font-weight="bold">{{.Title}}</text>
<rect x="420" y="3" width="10" height="10" fill="#2b6cb0"/><text x="434" y="12">{{.LegA}}</text>
{{if .LegB}}<rect x="560" y="3" width="10" height="10" fill="#c05621"/><text x="574" y="12">{{.LegB}}</text>{{end}}
{{range .Bars}}<text x="0" y="{{.Y}}" dy="12">{{.Label}}</text>
<rect x="200" y="{{.Y}}" width="{{printf "%.1f" .A}}" height="16" fill="#2b6cb0"/>
{{if .VB}}<rect x="{{printf "%.1f" (add 200 .A)}}" y="{{.Y}}" width="{{printf "%.1f" .B}}" height="16" fill="#c05621"/>{{end}}
<text x="{{printf "%.1f" (add 204 (add .A .B))}}" y="{{.Y}}" dy="12">{{num .VA}}{{if .VB}} + {{num .VB}}{{end}}</text>
{{end}}</svg>
</figure>
{{end}}

<h2>3. Audit log</h2>
<p>{{.Audit.Lines}} entries; chain {{if .Audit.Intact}}<span class="ok">intact</span>{{else}}<span class="bad">BROKEN: {{.Audit.Problem}}</span>{{end}}.
SHA-256 of the audit log head (last line) when this report was made: <code>{{.Audit.Head}}</code>.</p>
<table>
<thead><tr><th>#</th><th>Time (UTC, ISO 8601)</th><th>Action</th><th>Outcome</th><th>User@host</th><th>Inputs</th></tr></thead>
{{range .Audit.Actions}}<tr><td class="n">{{.Seq}}</td><td><code>{{.Time}}</code></td><td>{{.Action}}</td><td>{{.Outcome}}{{if .Error}}: {{oneLine .Error}}{{end}}</td><td>{{.User}}@{{.Host}}</td>
<td>{{range .Inputs}}{{.Kind}} {{.ID}} <code>{{oneLine .Path}}</code>{{if .SHA256}} SHA-256 <span class="hash">{{.SHA256}}</span>{{end}}<br>{{end}}</td></tr>
{{end}}</table>

<h2>4. Errors and limitations</h2>
<h3>Errors recorded</h3>
{{if .Errors}}<ul>{{range .Errors}}<li>{{oneLine .}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
<h3>Limitations</h3>
<ul>{{range .Limitations}}<li>{{.}}</li>{{end}}</ul>

<section class="interpretation">
<h2>5. Interpretation</h2>
<p>evidx makes no interpretation. Conclusions drawn from the findings above are the examiner's and are to be stated separately, citing the evidence item, byte offsets and hashes they rest on.</p>
</section>
</body>
</html>
`))

func writeHTML(w io.Writer, r *Report) error {
	return reportTmpl.Execute(w, r)
}

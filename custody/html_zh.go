package custody

import (
	"html/template"
	"io"
	"strings"
)

// The Chinese report follows the record the procedural rules ask for:
// 法发〔2016〕22号 arts. 5 and 14 (案由, object, content, time, place,
// method and process, and the item list with type, format and check
// value), and the Procuratorate's rules on electronic evidence (start and
// end times, staff, equipment and software versions, steps and results,
// reproducible). It is drawn from the same Report as report.html.

var zhFuncs = template.FuncMap{
	"verdictZh": func(v *bool) string {
		switch {
		case v == nil:
			return "未比对（无可比对的哈希值）"
		case *v:
			return "校验一致"
		default:
			return "校验不一致"
		}
	},
	"actionZh": func(a string) string {
		if zh, ok := actionNamesZh[a]; ok {
			return zh + "（" + a + "）"
		}
		return a
	},
	"outcomeZh": func(o string) string {
		switch o {
		case OutcomeOK:
			return "完成"
		case OutcomeError:
			return "出错"
		case "started":
			return "开始"
		}
		return o
	},
	"orDash": func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "—"
		}
		return s
	},
}

// actionNamesZh names the audit actions in the report's language.
var actionNamesZh = map[string]string{
	"case.init": "建立案件", "evidence.add": "登记检材并计算哈希值", "evidence.walk": "解析文件系统并提取文件",
	"evidence.carve": "未分配空间数据恢复", "evidence.scan": "原始数据个人信息扫描", "evidence.resume": "继续中断的检查",
	"evidence.damage": "记录检材损坏区域", "dataset.add": "导入数据集并去重", "dataset.remove": "移除数据集",
	"index.shards": "记录索引分片哈希值", "report": "生成报告", "verify": "校验", "export": "导出文件",
	"custody.transfer": "检材移交", "hashset.add": "登记哈希库", "evidence.hashsets": "哈希库比对",
}

var reportZhTmpl = template.Must(template.New("report.zh").Funcs(htmlFuncs).Funcs(reportPersonsFuncs).Funcs(zhFuncs).Parse(chartDef + `<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>电子数据检查笔录 {{.Case.CaseNumber}}</title>
<style>
@page { size: A4; margin: 18mm 15mm 20mm;
  @top-center { content: "电子数据检查笔录  案件编号 {{.Case.CaseNumber}}"; font-size: 8pt; }
  @bottom-center { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; font-size: 8pt; } }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 16pt; text-align: center; } h2 { font-size: 12pt; border-bottom: 1px solid #999; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0; } th, td { border: 1px solid #aaa; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; white-space: nowrap; } .hash, .t { font-family: monospace; white-space: nowrap; font-size: 7.5pt; } .hash { font-size: 6.2pt; }
.sign td { height: 3em; } td.n { text-align: right; white-space: nowrap; }
figure { margin: .5em 0; } svg { width: 100%; max-width: 700px; height: auto; } svg text { font: 9pt "Noto Sans CJK SC", sans-serif; }
.level-serious, .level-especially_serious { color: #a00; font-weight: bold; }
@media print { tr, svg { page-break-inside: avoid; } }
</style></head><body>
<h1>电子数据检查笔录</h1>
<table>
<tr><th>案件编号</th><td>{{.Case.CaseNumber}}</td><th>检查单位</th><td>{{orDash .Case.Agency}}</td></tr>
<tr><th>案由</th><td colspan="3">{{orDash .Case.Description}}</td></tr>
<tr><th>检查人员</th><td colspan="3">{{examiners .Audit.Actions}}</td></tr>
<tr><th>检查时间</th><td colspan="3"><span class="t">{{first .Audit.Actions}}</span> 至 <span class="t">{{last .Audit.Actions}}</span>（UTC）</td></tr>
<tr><th>检查地点</th><td colspan="3">检查工作站 {{.Environment.Host}}</td></tr>
<tr><th>检查设备与软件</th><td colspan="3">{{.Tool}}；操作系统 {{.Environment.OSSysname}} {{.Environment.OSRelease}} {{.Environment.Arch}}</td></tr>
</table>

<h2>一、检查对象（电子数据清单）</h2>
<table>
<tr><th>编号</th><th>类型</th><th>格式</th><th>大小（字节）</th><th>校验结论</th></tr>
{{range .Evidence}}<tr><td>{{.ID}}</td><td>{{orDash .Seizure.DeviceModel}}{{if .Seizure.DeviceSerial}}（序列号 {{.Seizure.DeviceSerial}}）{{end}}</td><td>{{.Format}}</td><td>{{num .Size}}</td><td>{{verdictZh .Verified}}：{{.HashReason}}</td></tr>
<tr><td></td><td colspan="4">校验值（哈希值）<br><span class="hash">MD5 {{.Computed.MD5}}<br>SHA-1 {{.Computed.SHA1}}<br>SHA-256 {{.Computed.SHA256}}</span></td></tr>
{{end}}</table>

<h2>二、提取与保管</h2>
<table>
<tr><th>编号</th><th>提取人</th><th>提取时间</th><th>提取地点</th><th>封存编号</th><th>描述</th></tr>
{{range .Evidence}}<tr><td>{{.ID}}</td><td>{{orDash .Seizure.SeizedBy}}</td><td class="t">{{if not .Seizure.SeizedAt.IsZero}}{{rfc3339 .Seizure.SeizedAt}}{{else}}—{{end}}</td><td>{{orDash .Seizure.SeizedWhere}}</td><td>{{orDash .Seizure.Seal}}</td><td>{{orDash .Seizure.Description}}</td></tr>
{{range .Transfers}}<tr><td></td><td colspan="5">移交：<span class="t">{{rfc3339 .At}}</span> 由 {{.From}} 交 {{.To}}，事由：{{.Reason}}（审计记录第 {{.AuditSeq}} 条）</td></tr>{{end}}
{{end}}</table>

<h2>三、检查方法和过程</h2>
<p>检材以只读方式打开，未对原始检材作任何写入；每一步骤记入带哈希链的审计日志（audit.log），可用 evidx verify 复核，
检查过程可按下列步骤重现。</p>
<table>
<tr><th>序号</th><th>时间（UTC）</th><th>步骤</th><th>检查人员</th><th>结果</th></tr>
{{range .Audit.Actions}}<tr><td>{{.Seq}}</td><td class="t">{{short .Time}}</td><td>{{actionZh .Action}}</td><td>{{orDash .Examiner}}</td><td>{{outcomeZh .Outcome}}{{if .Error}}：{{oneLine .Error}}{{end}}</td></tr>
{{end}}</table>

<h2>四、检查结果</h2>
<table>
<tr><th>编号</th><th>文件（已分配/已删除）</th><th>目录</th><th>提取文件</th><th>恢复文件</th></tr>
{{range .Evidence}}<tr><td>{{.ID}}</td><td>{{num .Counts.Allocated}} / {{num .Counts.Deleted}}</td><td>{{num .Counts.Dirs}}</td><td>{{num .Counts.Extracted}}</td><td>{{num .Counts.Carved}}</td></tr>
{{end}}</table>
{{if .Datasets}}<table>
<tr><th>数据集</th><th>来源</th><th>行数</th><th>去重后个人信息条数</th><th>校验值（SHA-256）</th></tr>
{{range .Datasets}}<tr><td>{{.Name}}</td><td>{{if .EvidenceID}}{{.EvidenceID}} {{.EvidencePath}}{{else}}直接提交{{end}}</td><td>{{num .Rows}}</td><td>{{range $k := kinds .Unique}}{{$k}} {{num (index $.Identities.Unique $k)}} {{end}}</td><td class="hash">{{.SHA256}}</td></tr>
{{end}}</table>{{end}}
{{if .HashsetMatches}}<p>哈希库比对命中（已知违规文件在前；已知正常文件的命中全部列于 report.json）：</p><table>
<tr><th>哈希库</th><th>类别</th><th>编号</th><th>文件</th><th>校验值（SHA-256）</th></tr>
{{range .HashsetMatches}}{{if ne .Kind "known-good"}}<tr><td>{{oneLine .Hashset}}</td><td>{{if eq .Kind "known-bad"}}已知违规{{else}}{{.Kind}}{{end}}</td><td>{{.EvidenceID}}</td><td>{{oneLine .Path}}</td><td class="hash">{{.SHA256}}</td></tr>
{{end}}{{end}}</table>{{end}}
<p>全案去重后：{{range $k := kinds .Identities.Unique}}{{$k}} {{num (index $.Identities.Unique $k)}}；{{end}}审计日志共 {{.Audit.Lines}} 条，末条哈希值 <span class="hash">{{.Audit.Head}}</span>。</p>

<h2>（一）涉及的自然人</h2>
{{with .Persons}}{{$p := .}}<table>
<tr><th>去重后自然人数</th><td class="n persons-unique">{{num .Unique}}</td><th>关联的记录数</th><td class="n">{{num .Records}}</td></tr>
<tr><th>公共值（不据以关联）</th><td class="n">{{num .HubsTotal}}</td><th>关联时间（UTC）</th><td class="t">{{.Built}}</td></tr>
</table>
<p><b>关联方法：</b>{{linkMethodZh .}}</p>
{{if .Hubs}}<table class="hubs">
<tr><th>类型</th><th>值</th><th>涉及人数</th><th>规则</th></tr>
{{range firstHubs .Hubs}}<tr><td>{{.Kind}}</td><td><code>{{oneLine .Value}}</code></td><td class="n">{{num .People}}</td><td>{{.Rule}}</td></tr>
{{end}}</table>{{if gt .HubsTotal 50}}<p>以上为涉及人数最多的 50 个公共值；涉及人数最多的 {{numInt (len .Hubs)}} 个列于 report.json，全部 {{num .HubsTotal}} 个可由 <code>evidx export CASE --hubs OUT.csv</code> 导出。</p>{{end}}{{end}}
{{if .Sources}}<table>
<tr><th>数据集</th><th>信息类别</th><th>涉及人数</th><th>新增人数</th></tr>
{{range .Sources}}<tr><td>{{oneLine .Name}}</td><td>{{if .Category}}{{categoryZh .Category}}{{else}}—{{end}}</td><td class="n">{{num .Persons}}</td><td class="n">{{num .New}}</td></tr>
{{end}}</table>{{end}}

<h2>（二）身份证号码所属地区、年龄与性别</h2>
{{with .Demographics}}{{if .Province}}<p>按有效身份证号码（去重）的地址码（GB/T 2260，{{.Edition}}，含已撤销的代码）、出生日期及性别码统计；年龄按 {{.AgeYear}} 年计算。{{if .Unknown}}另有 {{num .Unknown}} 个号码的县级代码不在表中。{{end}}地址码表示号码的签发地，不表示现住址。</p>
<table class="provinces">
<tr><th>代码</th><th>省级行政区</th><th>身份证号码数（去重）</th></tr>
{{range .Province}}<tr><td>{{.Code}}</td><td>{{.Name}}</td><td class="n">{{num .CNID}}</td></tr>
{{end}}</table>
{{template "chart" (provinceChart . "各省级行政区身份证号码数（去重）" "身份证号码数")}}
<table class="ages">
<tr><th>年龄段</th><th>人数</th></tr>
{{range .AgeBand}}<tr><td>{{if eq .Label "unknown"}}不详{{else}}{{.Label}} 岁{{end}}</td><td class="n">{{num .CNID}}</td></tr>{{end}}
</table>
<table class="sex">
<tr><th>性别（第十七位）</th><th>人数</th></tr>
{{range .Sex}}<tr><td>{{sexZh .Label}}</td><td class="n">{{num .CNID}}</td></tr>{{end}}
</table>{{else}}<p>无有效身份证号码。</p>{{end}}{{end}}

<h2>（三）量刑情节计数（法释〔2017〕10号第五条）</h2>
{{with .Sentencing}}{{if .Categories}}<table class="sentencing">
<tr><th>信息类别</th><th>数据集</th><th>条数（去重后人数）</th><th>情节严重标准</th><th>情节特别严重标准</th><th>达到的情节</th></tr>
{{range .Categories}}<tr><td>{{.Label}}</td><td>{{sourceNames $p .Sources}}</td><td class="n">{{num .Persons}}</td><td class="n">{{num .Serious}}</td><td class="n">{{num .EspeciallySerious}}</td><td class="level-{{.Level}}">{{levelZh .Level}}</td></tr>
{{end}}<tr><th colspan="5">各类别按数量与标准之比合计：{{ratio .Combined}}</th><th class="level-{{.CombinedLevel}}">{{levelZh .CombinedLevel}}</th></tr>
</table>{{else}}<p>未为任何数据集标注信息类别（evidx source set-category），不作量刑情节计数。</p>{{end}}
{{if .Uncategorized}}<p>另有 {{num .Uncategorized}} 人所在数据集未标注类别，未计入上表。</p>{{end}}
<p><b>计数方法：</b>{{sentencingMethodZh}}</p>{{end}}
{{else}}<p>本案的个人信息标识尚未关联为自然人（未运行关联：导入数据集或运行 evidx link），以上计数为标识数而非人数，不作地区分布和量刑情节计数。</p>{{end}}

{{if .Errors}}<h2>五、检查中发现的问题</h2><ul>{{range .Errors}}<li>{{oneLine .}}</li>{{end}}</ul>{{end}}

<h2>签名</h2>
<table class="sign"><tr><th>检查人</th><td></td><th>日期</th><td></td></tr><tr><th>见证人</th><td></td><th>日期</th><td></td></tr></table>
</body></html>
`))

func writeHTMLZh(w io.Writer, r *Report) error { return reportZhTmpl.Execute(w, r) }

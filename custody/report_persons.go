package custody

import (
	"fmt"
	"sort"
	"strings"
)

// ReportPersons is what the linking of identifiers into persons found, as
// the report shows it. custody sits below the persons package: the caller
// (package pipeline) fills it in from the case's persons store. The JSON
// names are those of `evidx stats --json` (persons, demographics,
// sentencing), so the two can be compared number for number.
type ReportPersons struct {
	Unique int64       `json:"unique"`
	Hubs   []ReportHub `json:"hubs"` // those touching the most people
	// HubsTotal counts every hub (evidx export --hubs lists them).
	HubsTotal int64                 `json:"hubs_total"`
	Method    string                `json:"method"`
	Records   int64                 `json:"records"`
	Built     string                `json:"built"`
	HubIDs    int                   `json:"hub_ids"`    // hub rule: more than this many distinct ID numbers
	HubPhone  int                   `json:"hub_phones"` // hub rule: more than this many distinct phone numbers
	Sources   []ReportSourcePersons `json:"sources"`
	Evidence  []ReportEvidencePers  `json:"evidence"`
	// Unlinked lists sources with no records to link (loaded before
	// linking existed, or cut short): their persons are in no count.
	Unlinked     []int64            `json:"unlinked_sources"`
	Demographics ReportDemographics `json:"demographics"`
	Sentencing   ReportSentencing   `json:"sentencing"`
}

// ReportHub is a value shared by so many people that it links nobody.
type ReportHub struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`
	People int64  `json:"people"`
	Rule   string `json:"rule"`
}

// ReportSourcePersons is the persons one source holds.
type ReportSourcePersons struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Persons  int64  `json:"persons"`
	New      int64  `json:"new"`
	Category string `json:"category,omitempty"`
}

// ReportEvidencePers is the persons the sources of one evidence item hold.
type ReportEvidencePers struct {
	ID      string `json:"id"`
	Persons int64  `json:"persons"`
}

// ReportDemographics counts unique ID numbers by what the number encodes:
// the address code (GB/T 2260), birth date and sex digit.
type ReportDemographics struct {
	Province   []ReportProvince `json:"province"`
	Prefecture []ReportPlace    `json:"prefecture"`
	County     []ReportPlace    `json:"county"`
	BirthYear  []ReportBand     `json:"birth_year"`
	AgeBand    []ReportBand     `json:"age_band"`
	Sex        []ReportBand     `json:"sex"`
	Unknown    int64            `json:"unknown_code"`
	Edition    string           `json:"edition"`
	AgeYear    int              `json:"age_year"`
}

// ReportProvince is the unique ID numbers of one province.
type ReportProvince struct {
	Code string `json:"code"`
	Name string `json:"name"`
	CNID int64  `json:"cn_id"`
}

// ReportPlace is the unique ID numbers of one prefecture or county.
type ReportPlace struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Province string `json:"province"`
	CNID     int64  `json:"cn_id"`
	Retired  bool   `json:"retired,omitempty"`
}

// ReportBand is a count of unique ID numbers under a label.
type ReportBand struct {
	Label string `json:"label"`
	CNID  int64  `json:"cn_id"`
}

// ReportSentencing is the persons per information category against the
// thresholds of 法释〔2017〕10号 art. 5.
type ReportSentencing struct {
	Categories    []ReportCategory `json:"categories"`
	Combined      float64          `json:"combined"`
	CombinedLevel string           `json:"combined_level"`
	Uncategorized int64            `json:"uncategorized"`
	Method        string           `json:"method"`
}

// ReportCategory is the count of one information category.
type ReportCategory struct {
	Category          string  `json:"category"`
	Label             string  `json:"label"` // the interpretation's name of it
	Serious           int64   `json:"serious"`
	EspeciallySerious int64   `json:"especially_serious"`
	Persons           int64   `json:"persons"`
	Level             string  `json:"level"` // below, serious, especially_serious
	Sources           []int64 `json:"sources"`
}

// personsLimitations are the report's limitations about persons: what the
// counts rest on, or that the case was never linked.
func personsLimitations(p *ReportPersons) []string {
	if p == nil {
		return []string{"The identifiers of this case were not linked into persons (no linking has run: load a dataset, or run evidx link CASE): " +
			"the report counts identifiers, not people, gives no demographics of the ID numbers and no sentencing counts."}
	}
	out := []string{
		"Persons are identifiers linked through shared records as the linking method states; two records of one person that share no identifier are counted as two persons, and a hub value links nobody.",
		"Province, age band and sex are read from each valid ID number (its address code, birth date and sex digit): they say where and when the number was issued, not where the person lives now.",
		"Sentencing counts cover only the sources the examiner tagged with an information category; the category is the examiner's statement, not a finding of evidx.",
	}
	if len(p.Unlinked) > 0 {
		out = append(out, fmt.Sprintf("Sources %s have no records to link (loaded before linking, or cut short): their persons are in no person count (evidx dataset add --reload links them).", ids(p.Unlinked)))
	}
	return out
}

func ids(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// bandChart is a one-series bar chart of labelled counts.
func bandChart(title, legend string, labels []string, vals []int64) chart {
	c := chart{Title: title, LegA: legend, Height: 54 + 22*len(vals)}
	var maxv int64 = 1
	for _, v := range vals {
		maxv = max(maxv, v)
	}
	for i, v := range vals {
		c.Bars = append(c.Bars, bar{Label: chartLabel(labels[i]), Y: 44 + i*22, A: chartWidth * float64(v) / float64(maxv), VA: v})
	}
	return c
}

// provinceChart charts the unique ID numbers per province.
func provinceChart(d ReportDemographics, title, legend string) chart {
	var labels []string
	var vals []int64
	for _, p := range d.Province {
		labels = append(labels, p.Code+" "+p.Name)
		vals = append(vals, p.CNID)
	}
	return bandChart(title, legend, labels, vals)
}

// ageChart charts the unique ID numbers per age band.
func ageChart(d ReportDemographics, title, legend string) chart {
	var labels []string
	var vals []int64
	for _, b := range d.AgeBand {
		labels = append(labels, b.Label)
		vals = append(vals, b.CNID)
	}
	return bandChart(title, legend, labels, vals)
}

// sourceNames names the sources ids by the persons' source list.
func sourceNames(p *ReportPersons, ids []int64) []string {
	var out []string
	for _, id := range ids {
		name := fmt.Sprintf("source %d", id)
		for _, s := range p.Sources {
			if s.ID == id {
				name = s.Name
			}
		}
		out = append(out, name)
	}
	return out
}

var levelsEn = map[string]string{"below": "below 情节严重", "serious": "情节严重 (serious)", "especially_serious": "情节特别严重 (especially serious)"}
var levelsZh = map[string]string{"below": "未达到情节严重标准", "serious": "情节严重", "especially_serious": "情节特别严重"}
var sexZh = map[string]string{"male": "男", "female": "女"}
var categoryZh = map[string]string{"location": "行踪轨迹信息", "communication": "通信内容", "credit": "征信信息", "property": "财产信息",
	"lodging": "住宿信息", "call_records": "通信记录", "health": "健康生理信息", "transaction": "交易信息", "other": "其他公民个人信息"}

func lookupOr(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// linkMethodZh is the linking method in Chinese, with the case's hub rule.
func linkMethodZh(p *ReportPersons) string {
	return fmt.Sprintf("同一条记录中出现的标识（手机号、电子邮箱、身份证号、银行卡号）视为同一人；同一数据库中以关联字段（同名字段，或“<表>_id = <表>.id”）相连的各表记录视为同一条记录；"+
		"关联跨数据源、跨检材传递（并查集）。某一值所在的记录中出现超过 %d 个不同身份证号，或超过 %d 个不同手机号的，视为公共值（如占位号码、客服电话、测试邮箱），"+
		"不据以关联任何人，本身也不计为一人。", max(p.HubIDs, 1), max(p.HubPhone, 1))
}

// sentencingMethodZh states the sentencing count in Chinese.
const sentencingMethodZh = "检查人员按《最高人民法院、最高人民检察院关于办理侵犯公民个人信息刑事案件适用法律若干问题的解释》（法释〔2017〕10号）第五条区分的信息类别，" +
	"为每个数据源（泄露文件）标注其所含信息的类别。每一类别的条数，是该类别数据源中出现的不同自然人的人数：同一人的信息无论在一个文件或多个文件中重复出现多少次，" +
	"只计一次（第十一条），人员依上述关联方法以手机号、电子邮箱、身份证号、银行卡号识别。行踪轨迹信息、通信内容、征信信息、财产信息五十条以上，" +
	"住宿信息、通信记录、健康生理信息、交易信息五百条以上，其他公民个人信息五千条以上的，为“情节严重”；达到上述标准十倍以上的，为“情节特别严重”。" +
	"各类别数量均未达到标准的，按各类别数量与其标准之比相加，合计达到1的，为“情节严重”（第五条第一款第（六）项），达到10的，为“情节特别严重”。"

// reportPersonsFuncs are the template functions of the persons section.
var reportPersonsFuncs = map[string]any{
	"provinceChart":      provinceChart,
	"ageChart":           ageChart,
	"sourceNames":        func(p *ReportPersons, ids []int64) string { return strings.Join(sourceNames(p, ids), ", ") },
	"levelEn":            func(l string) string { return lookupOr(levelsEn, l) },
	"levelZh":            func(l string) string { return lookupOr(levelsZh, l) },
	"sexZh":              func(s string) string { return lookupOr(sexZh, s) },
	"categoryZh":         func(c string) string { return lookupOr(categoryZh, c) },
	"linkMethodZh":       linkMethodZh,
	"sentencingMethodZh": func() string { return sentencingMethodZh },
	"numInt":             func(n int) string { return htmlFuncs["num"].(func(int64) string)(int64(n)) },
	"ratio":              func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"firstHubs":          func(hs []ReportHub) []ReportHub { return hs[:min(len(hs), maxHubRows)] },
	"firstPlaces": func(ps []ReportPlace) []ReportPlace {
		top := append([]ReportPlace{}, ps...)
		sort.SliceStable(top, func(i, j int) bool { return top[i].CNID > top[j].CNID })
		return top[:min(len(top), maxPlaceRows)]
	},
}

// The HTML lists the largest hubs and prefectures; report.json has all.
const (
	maxHubRows   = 50
	maxPlaceRows = 20
)

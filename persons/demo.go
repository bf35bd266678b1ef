package persons

import (
	"cmp"
	"slices"
)

// ProvinceCount is the unique ID numbers of one province (address code's
// first two digits).
type ProvinceCount struct {
	Code string `json:"code"`
	Name string `json:"name"`
	CNID int64  `json:"cn_id"`
}

// PlaceCount is the unique ID numbers of one prefecture or county.
type PlaceCount struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Province string `json:"province"` // the name of its province ("市辖区" alone says little)
	CNID     int64  `json:"cn_id"`
	Retired  bool   `json:"retired,omitempty"` // code absent from the newest edition
}

// Band is a count of unique ID numbers by a label (age band, sex, year).
type Band struct {
	Label string `json:"label"`
	CNID  int64  `json:"cn_id"`
}

// SourceDemographics is one source's province counts.
type SourceDemographics struct {
	ID       int64           `json:"id"`
	Name     string          `json:"name"`
	Province []ProvinceCount `json:"province"`
}

// Demographics counts unique ID numbers by where their address code
// points, birth year, age band and sex.
type Demographics struct {
	Province   []ProvinceCount      `json:"province"`
	Prefecture []PlaceCount         `json:"prefecture"`
	County     []PlaceCount         `json:"county"`
	BirthYear  []Band               `json:"birth_year"`
	AgeBand    []Band               `json:"age_band"`
	Sex        []Band               `json:"sex"`
	Unknown    int64                `json:"unknown_code"` // ID numbers whose county code the table lacks
	Edition    string               `json:"edition"`
	AgeYear    int                  `json:"age_year"` // ages are as of this year
	Sources    []SourceDemographics `json:"sources"`
}

type demoCounter struct {
	year                         int
	province, prefecture, county map[string]int64
	birth, age, sex              map[string]int64
	perSource                    []map[string]int64
	unknown                      int64
}

func (d *demoCounter) init(year, sources int) {
	*d = demoCounter{year: year, province: map[string]int64{}, prefecture: map[string]int64{}, county: map[string]int64{},
		birth: map[string]int64{}, age: map[string]int64{}, sex: map[string]int64{}, perSource: make([]map[string]int64, sources)}
	for i := range d.perSource {
		d.perSource[i] = map[string]int64{}
	}
}

// add counts one unique ID number held by the sources srcs (indices).
func (d *demoCounter) add(id string, srcs []int) {
	if len(id) != 18 {
		return
	}
	d.province[id[:2]]++
	d.prefecture[id[:4]]++
	d.county[id[:6]]++
	if _, ok := regions()[id[:6]]; !ok {
		d.unknown++
	}
	y := BirthYear(id)
	d.birth[id[6:10]]++
	d.age[AgeBand(y, d.year)]++
	d.sex[Sex(id)]++
	for _, s := range srcs {
		d.perSource[s][id[:2]]++
	}
}

func provinces(m map[string]int64) []ProvinceCount {
	out := []ProvinceCount{}
	for c, n := range m {
		out = append(out, ProvinceCount{Code: c, Name: regions()[c+"0000"].name, CNID: n})
	}
	slices.SortFunc(out, func(a, b ProvinceCount) int { return cmp.Compare(a.Code, b.Code) })
	return out
}

func places(m map[string]int64, pad string) []PlaceCount {
	out := []PlaceCount{}
	for c, n := range m {
		r, ok := regions()[c+pad]
		out = append(out, PlaceCount{Code: c, Name: r.name, Province: regions()[c[:2]+"0000"].name, CNID: n, Retired: ok && r.last != "201607"})
	}
	slices.SortFunc(out, func(a, b PlaceCount) int { return cmp.Compare(a.Code, b.Code) })
	return out
}

func bands(m map[string]int64) []Band {
	out := []Band{}
	for l, n := range m {
		out = append(out, Band{Label: l, CNID: n})
	}
	slices.SortFunc(out, func(a, b Band) int { return cmp.Compare(a.Label, b.Label) })
	return out
}

func (d *demoCounter) result(sources []Source) Demographics {
	r := Demographics{Province: provinces(d.province), Prefecture: places(d.prefecture, "00"), County: places(d.county, ""),
		BirthYear: bands(d.birth), AgeBand: bands(d.age), Sex: bands(d.sex), Unknown: d.unknown,
		Edition: GB2260Edition, AgeYear: d.year, Sources: []SourceDemographics{}}
	for i, s := range sources {
		if i < len(d.perSource) {
			r.Sources = append(r.Sources, SourceDemographics{ID: s.ID, Name: s.Name, Province: provinces(d.perSource[i])})
		}
	}
	return r
}

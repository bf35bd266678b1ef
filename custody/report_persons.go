package custody

import (
	"fmt"
	"strings"
)

// ReportPersons is what the linking of identifiers into persons found, as
// the report shows it. custody sits below the persons package: the caller
// (package pipeline) fills it in from the case's persons store. The JSON
// names are those of `evidx stats --json` (persons, demographics,
// sentencing), so the two can be compared number for number.
type ReportPersons struct {
	Unique   int64                 `json:"unique"`
	Hubs     []ReportHub           `json:"hubs"`
	Method   string                `json:"method"`
	Records  int64                 `json:"records"`
	Built    string                `json:"built"`
	HubIDs   int                   `json:"hub_ids"`    // hub rule: more than this many distinct ID numbers
	HubPhone int                   `json:"hub_phones"` // hub rule: more than this many distinct phone numbers
	Sources  []ReportSourcePersons `json:"sources"`
	Evidence []ReportEvidencePers  `json:"evidence"`
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

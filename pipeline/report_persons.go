package pipeline

import (
	"context"
	"errors"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/persons"
)

// ReportPersons reads case c's linked persons for the court report: the
// same summary, demographics and sentencing counts `evidx stats --json`
// prints, copied into custody's plain types (custody does not import
// persons). nil, nil when the case was never linked.
func ReportPersons(ctx context.Context, c *custody.Case) (*custody.ReportPersons, error) {
	st, err := persons.OpenStore(persons.Dir(c.IndexDir()))
	if errors.Is(err, persons.ErrNotBuilt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sum, err := st.Summary(ctx)
	if err != nil {
		return nil, err
	}
	return reportPersons(sum), nil
}

func reportPersons(s *persons.Summary) *custody.ReportPersons {
	r := &custody.ReportPersons{Unique: s.Unique, HubsTotal: s.HubsTotal, Method: s.Method, Records: s.Records, Built: s.Built,
		HubIDs: s.Options.HubIDs, HubPhone: s.Options.HubPhones,
		Hubs: []custody.ReportHub{}, Sources: []custody.ReportSourcePersons{}, Evidence: []custody.ReportEvidencePers{},
		Unlinked: append([]int64{}, s.Unlinked...)}
	for _, h := range s.Hubs {
		r.Hubs = append(r.Hubs, custody.ReportHub{Kind: h.Kind, Value: h.Value, People: h.People, Rule: h.Rule})
	}
	for _, p := range s.Sources {
		r.Sources = append(r.Sources, custody.ReportSourcePersons{ID: p.ID, Name: p.Name, Persons: p.Persons, New: p.New, Category: p.Category})
	}
	for _, e := range s.Evidence {
		r.Evidence = append(r.Evidence, custody.ReportEvidencePers{ID: e.ID, Persons: e.Persons})
	}
	d := s.Demographics
	r.Demographics = custody.ReportDemographics{Province: []custody.ReportProvince{}, Prefecture: reportPlaces(d.Prefecture),
		County: reportPlaces(d.County), BirthYear: reportBands(d.BirthYear), AgeBand: reportBands(d.AgeBand), Sex: reportBands(d.Sex),
		Unknown: d.Unknown, Edition: d.Edition, AgeYear: d.AgeYear}
	for _, p := range d.Province {
		r.Demographics.Province = append(r.Demographics.Province, custody.ReportProvince{Code: p.Code, Name: p.Name, CNID: p.CNID})
	}
	se := s.Sentencing
	r.Sentencing = custody.ReportSentencing{Categories: []custody.ReportCategory{}, Combined: se.Combined,
		CombinedLevel: se.CombinedLevel, Uncategorized: se.Uncategorized, Method: se.Method}
	if r.Sentencing.Method == "" {
		r.Sentencing.Method = persons.SentencingMethod
	}
	for _, c := range se.Categories {
		r.Sentencing.Categories = append(r.Sentencing.Categories, custody.ReportCategory{Category: c.Name, Label: c.Label,
			Serious: c.Serious, EspeciallySerious: c.EspeciallySerious, Persons: c.Persons, Level: c.Level,
			Sources: append([]int64{}, c.Sources...)})
	}
	return r
}

func reportPlaces(ps []persons.PlaceCount) []custody.ReportPlace {
	out := make([]custody.ReportPlace, 0, len(ps))
	for _, p := range ps {
		out = append(out, custody.ReportPlace{Code: p.Code, Name: p.Name, Province: p.Province, CNID: p.CNID, Retired: p.Retired})
	}
	return out
}

func reportBands(bs []persons.Band) []custody.ReportBand {
	out := make([]custody.ReportBand, 0, len(bs))
	for _, b := range bs {
		out = append(out, custody.ReportBand{Label: b.Label, CNID: b.CNID})
	}
	return out
}

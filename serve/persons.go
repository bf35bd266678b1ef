package serve

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/persons"
)

// casePersons serves the persons linked in a case (package persons), read
// only. A relink while the server runs makes a new generation: the store
// is opened again when the case's current one changes.
type casePersons struct {
	dir string // the case's persons directory

	mu    sync.Mutex
	cur   string // content of the "current" pointer the store was opened at
	store *persons.Store
}

// CasePersons returns the Persons of the case whose index is in indexDir;
// New uses it when Options.Persons is nil.
func CasePersons(indexDir string) Persons {
	return &casePersons{dir: persons.Dir(indexDir)}
}

// open returns the store of the current generation, nil when the case was
// never linked. Called with mu held.
func (p *casePersons) open() (*persons.Store, error) {
	cur, err := os.ReadFile(filepath.Join(p.dir, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.store != nil && string(cur) == p.cur {
		return p.store, nil
	}
	st, err := persons.OpenStore(p.dir)
	if errors.Is(err, persons.ErrNotBuilt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.store != nil {
		p.store.Close()
	}
	p.store, p.cur = st, string(cur)
	return st, nil
}

func (p *casePersons) Of(ctx context.Context, kind, value string) ([]Person, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.open()
	if st == nil || err != nil {
		return nil, err
	}
	got, err := st.Lookup(ctx, identity.Kind(kind), value)
	if got == nil || err != nil || got.Hub != nil {
		return nil, err // a hub (a value shared by many people) is no person
	}
	out := Person{Names: got.Names}
	for _, id := range got.Identifiers {
		out.Identifiers = append(out.Identifiers, Identifier{Kind: id.Kind, Value: id.Value})
	}
	for _, s := range got.Sources {
		out.Sources = append(out.Sources, s.Name)
	}
	for _, l := range got.Locations {
		out.Locations = append(out.Locations, Location{Source: l.Source, Loc: l.Loc})
	}
	return []Person{out}, nil
}

func (p *casePersons) Stats(ctx context.Context) (PersonStats, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.open()
	if st == nil || err != nil {
		return PersonStats{}, false, err
	}
	sum, err := st.Summary(ctx)
	if err != nil {
		return PersonStats{}, false, err
	}
	return PersonStats{Unique: sum.Unique, Hubs: sum.HubsTotal}, true, nil
}

package persons

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/evidx/evidx/ingest/identity"
	_ "github.com/mattn/go-sqlite3" // SQLite driver "sqlite3"
)

// dbSchema is persons.sqlite: ident maps each non-hub identifier to its
// person (numbered from 1: the component's least record + 1); records
// holds every record of a person, keyed by person, as a packed payload
// (source id, location, then kind and value per item, TAB separated);
// hubs lists the values that join nothing; meta holds the summary JSON.
const dbSchema = `
CREATE TABLE IF NOT EXISTS ident(kind TEXT NOT NULL, value TEXT NOT NULL, person INTEGER NOT NULL, PRIMARY KEY(kind, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(person INTEGER NOT NULL, rec INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY(person, rec)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hubs(kind TEXT NOT NULL, value TEXT NOT NULL, people INTEGER NOT NULL, rule TEXT NOT NULL, PRIMARY KEY(kind, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

func openDB(path string, readOnly bool) (*sql.DB, error) {
	if !readOnly {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("persons: %w", err)
		}
		f.Close()
	}
	u := url.URL{Scheme: "file", Path: path}
	params := "_busy_timeout=30000"
	if readOnly {
		params += "&mode=ro&_query_only=1"
	}
	db, err := sql.Open("sqlite3", u.String()+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// ErrNotBuilt is returned by OpenStore when no link has run yet.
var ErrNotBuilt = errors.New("persons: not linked yet")

// Store reads persons.sqlite.
type Store struct {
	db   *sql.DB
	srcs map[int64]Source
}

// OpenStore opens dir's persons database read-only; ErrNotBuilt when
// there is none.
func OpenStore(dir string) (*Store, error) {
	p := filepath.Join(dir, DBName)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotBuilt
	}
	db, err := openDB(p, true)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) meta(ctx context.Context, key string, v any) error {
	var js string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, key).Scan(&js); err != nil {
		return fmt.Errorf("persons: meta %s: %w", key, err)
	}
	return json.Unmarshal([]byte(js), v)
}

// Summary returns what the last Build found.
func (s *Store) Summary(ctx context.Context) (*Summary, error) {
	var sum Summary
	if err := s.meta(ctx, "summary", &sum); err != nil {
		return nil, err
	}
	if err := s.meta(ctx, "demographics", &sum.Demographics); err != nil {
		return nil, err
	}
	return &sum, nil
}

// Ident is one identifier of a person.
type Ident struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Location is one record of a person: the source and where in it.
type Location struct {
	SourceID int64  `json:"source_id"`
	Source   string `json:"source"`
	Loc      string `json:"loc"`
}

// SourceRef names a source of a person's records.
type SourceRef struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Evidence []string `json:"evidence"` // the evidence items it was found on
}

// Person is everything linked to one identifier.
type Person struct {
	ID          int64    `json:"id"`
	Identifiers []Ident  `json:"identifiers"`
	Names       []string `json:"names"`
	// NamesNote says why Names is empty (the records carry no name column).
	NamesNote string      `json:"names_note,omitempty"`
	Addresses []string    `json:"addresses"`
	Sources   []SourceRef `json:"sources"`
	Evidence  []string    `json:"evidence"`
	// Locations lists every record of the person (up to maxLocations;
	// Truncated then says so and Records counts them all).
	Locations []Location `json:"locations"`
	Records   int64      `json:"records"`
	Truncated bool       `json:"truncated,omitempty"`
	// Hub is set, instead of the rest, when the value is a hub.
	Hub *Hub `json:"hub,omitempty"`
}

// maxLocations bounds the locations one lookup lists.
const maxLocations = 100_000

func newPerson() *Person {
	return &Person{Identifiers: []Ident{}, Names: []string{}, Addresses: []string{}, Sources: []SourceRef{},
		Evidence: []string{}, Locations: []Location{}}
}

// sources returns the sources the last Build linked, by id.
func (s *Store) sources(ctx context.Context) (map[int64]Source, error) {
	if s.srcs != nil {
		return s.srcs, nil
	}
	var list []Source
	if err := s.meta(ctx, "sources", &list); err != nil {
		return nil, err
	}
	s.srcs = map[int64]Source{}
	for _, src := range list {
		s.srcs[src.ID] = src
	}
	return s.srcs, nil
}

// Lookup returns the person holding (kind, value), or nil. Each query's
// rows are read and closed before the next one runs: the store has one
// connection.
func (s *Store) Lookup(ctx context.Context, kind identity.Kind, value string) (*Person, error) {
	var h Hub
	err := s.db.QueryRowContext(ctx, `SELECT kind, value, people, rule FROM hubs WHERE kind=? AND value=?`, string(kind), value).Scan(&h.Kind, &h.Value, &h.People, &h.Rule)
	switch {
	case err == nil:
		p := newPerson()
		p.Hub = &h
		return p, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("persons: %w", err)
	}
	var id int64
	err = s.db.QueryRowContext(ctx, `SELECT person FROM ident WHERE kind=? AND value=?`, string(kind), value).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	return s.Person(ctx, id)
}

// Person returns person id (as numbered by the last Build), or nil.
func (s *Store) Person(ctx context.Context, id int64) (*Person, error) {
	srcs, err := s.sources(ctx)
	if err != nil {
		return nil, err
	}
	p := newPerson()
	p.ID = id
	seen := map[Ident]bool{}
	var cands []Ident // identifiers of the records: hubs are dropped below
	var srcIDs []int64
	err = func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT payload FROM records WHERE person=? ORDER BY rec`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var pl string
			if err := rows.Scan(&pl); err != nil {
				return err
			}
			f := strings.Split(pl, "\t")
			if len(f) < 2 {
				continue
			}
			src, _ := strconv.ParseInt(f[0], 10, 64)
			p.Records++
			if len(p.Locations) < maxLocations {
				p.Locations = append(p.Locations, Location{SourceID: src, Source: srcs[src].Name, Loc: f[1]})
			} else {
				p.Truncated = true
			}
			if !slices.Contains(srcIDs, src) {
				srcIDs = append(srcIDs, src)
			}
			for i := 2; i+1 < len(f); i += 2 {
				it := Ident{Kind: f[i], Value: f[i+1]}
				if seen[it] || it.Kind == "key" {
					continue
				}
				seen[it] = true
				switch identity.Kind(it.Kind) {
				case identity.Name:
					p.Names = append(p.Names, it.Value)
				case identity.Address:
					p.Addresses = append(p.Addresses, it.Value)
				default:
					cands = append(cands, it)
				}
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("persons: person %d: %w", id, err)
	}
	if p.Records == 0 {
		return nil, nil
	}
	for _, it := range cands {
		var hub bool
		if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM hubs WHERE kind=? AND value=?)`, it.Kind, it.Value).Scan(&hub); err != nil {
			return nil, fmt.Errorf("persons: %w", err)
		}
		if !hub {
			p.Identifiers = append(p.Identifiers, it)
		}
	}
	if len(p.Names) == 0 {
		p.NamesNote = "the records of this person carry no name column"
	}
	slices.SortFunc(p.Identifiers, func(a, b Ident) int { return strings.Compare(a.Kind+"\x00"+a.Value, b.Kind+"\x00"+b.Value) })
	slices.Sort(srcIDs)
	for _, id := range srcIDs {
		src := srcs[id]
		p.Sources = append(p.Sources, SourceRef{ID: id, Name: src.Name, Evidence: append([]string{}, src.Evidence...)})
		for _, e := range src.Evidence {
			if !slices.Contains(p.Evidence, e) {
				p.Evidence = append(p.Evidence, e)
			}
		}
	}
	slices.Sort(p.Evidence)
	return p, nil
}

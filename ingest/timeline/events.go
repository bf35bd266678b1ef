package timeline

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"
)

// Kinds of events, as mactime names them in its "macb" column.
const (
	Modified = "M" // content modified
	Accessed = "A" // accessed
	Changed  = "C" // metadata changed
	Born     = "B" // created
)

// Event is one row of evidx's timeline: one time of one file.
type Event struct {
	Time  time.Time
	Kind  string // Modified, Accessed, Changed or Born
	Entry *Entry
}

// Events are the entry's known times, one event each, in M, A, C, B order.
func Events(e *Entry) []Event {
	var out []Event
	for _, k := range []struct {
		t    time.Time
		kind string
	}{{e.Mtime, Modified}, {e.Atime, Accessed}, {e.Ctime, Changed}, {e.Btime, Born}} {
		if !k.t.IsZero() {
			out = append(out, Event{Time: k.t, Kind: k.kind, Entry: e})
		}
	}
	return out
}

// Sorter collects the events of entries and writes them sorted by time.
type Sorter struct {
	events []Event
}

// Add adds the events of e.
func (s *Sorter) Add(e *Entry) { s.events = append(s.events, Events(e)...) }

// Len is the number of events added.
func (s *Sorter) Len() int { return len(s.events) }

// Sorted returns the events by time, then evidence, path and kind (M, A,
// C, B), so the order is stable across runs.
func (s *Sorter) Sorted() []Event {
	rank := map[string]int{Modified: 0, Accessed: 1, Changed: 2, Born: 3}
	slices.SortStableFunc(s.events, func(a, b Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Entry.Evidence, b.Entry.Evidence); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Entry.Name, b.Entry.Name); c != 0 {
			return c
		}
		return cmp.Compare(rank[a.Kind], rank[b.Kind])
	})
	return s.events
}

// CSVHeader names the columns WriteCSV writes.
var CSVHeader = []string{"time", "unix", "kind", "evidence", "partition", "path", "layer", "inode", "type", "deleted", "size", "md5"}

// WriteCSV writes events as CSV with a header line; times are RFC 3339 in
// loc (UTC when nil) and Unix seconds.
func WriteCSV(w io.Writer, events []Event, loc *time.Location) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, ev := range events {
		e := ev.Entry
		if err := cw.Write([]string{ev.Time.In(zoneOr(loc)).Format(time.RFC3339Nano), strconv.FormatInt(ev.Time.Unix(), 10), ev.Kind,
			e.Evidence, strconv.Itoa(e.Partition), e.Path, e.Layer, strconv.FormatUint(e.Inode, 10), e.Type,
			strconv.FormatBool(e.Deleted), strconv.FormatInt(e.Size, 10), e.MD5}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jsonEvent is one line of WriteJSON.
type jsonEvent struct {
	Time string `json:"time"`
	Unix int64  `json:"unix"`
	Kind string `json:"kind"`
	*Entry
}

// WriteJSON writes events as JSON lines, one object each: time (RFC 3339
// in loc, UTC when nil), unix, kind and the entry's fields.
func WriteJSON(w io.Writer, events []Event, loc *time.Location) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, ev := range events {
		if err := enc.Encode(jsonEvent{ev.Time.In(zoneOr(loc)).Format(time.RFC3339Nano), ev.Time.Unix(), ev.Kind, ev.Entry}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func zoneOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

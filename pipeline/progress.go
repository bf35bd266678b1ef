package pipeline

import "sync"

// Progress is told how far long work is: which stage it is in, the unit
// and total of that stage, and how much more is done. The terminal display
// lives in the CLI; work here only reports. Implementations must be safe
// for concurrent use (carving and shard writing report from several
// goroutines).
type Progress interface {
	// Stage starts a stage: its name ("hashing media", "carving"), the
	// unit of its counts ("bytes", "rows", "entries") and its total, 0
	// when unknown.
	Stage(name, unit string, total int64)
	// Add counts n more units of the current stage done.
	Add(n int64)
}

// NoProgress discards progress.
type NoProgress struct{}

func (NoProgress) Stage(string, string, int64) {}
func (NoProgress) Add(int64)                   {}

func orNone(p Progress) Progress {
	if p == nil {
		return NoProgress{}
	}
	return p
}

// loadProgress adapts Progress to the index's: bytes of the file read
// (counted by the record reader), then rows written to the shards, which
// the shard writers report as a running total.
type loadProgress struct {
	p       Progress
	mu      sync.Mutex
	writing bool
	done    int64
}

func (l *loadProgress) Read(int64) {} // identifiers: the bytes read say more

func (l *loadProgress) Write(done, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.writing {
		l.writing = true
		l.p.Stage("writing the shards", "rows", total)
	}
	if done > l.done {
		l.p.Add(done - l.done)
		l.done = done
	}
}

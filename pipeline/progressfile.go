package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ProgressName is the file in the case directory where a running
// `dataset add` or `evidence add` publishes its stage and counts, for
// readers that must not touch the case's locks (evidx serve). It is
// replaced whole (temporary file, rename) at most twice a second, so a
// reader sees one consistent state.
const ProgressName = "progress.json"

// ProgressState is the content of progress.json.
type ProgressState struct {
	Work     string    `json:"work"`  // "dataset add leak.csv", "evidence add EV1"
	Stage    string    `json:"stage"` // the current stage's name
	Unit     string    `json:"unit"`
	Total    int64     `json:"total"` // 0: unknown
	Done     int64     `json:"done"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Finished bool      `json:"finished"`
	Error    string    `json:"error,omitempty"`
}

// ReadProgress reads a case's progress.json; ok is false when there is
// none (no load ever ran, or the file is unreadable).
func ReadProgress(caseDir string) (st ProgressState, ok bool) {
	b, err := os.ReadFile(filepath.Join(caseDir, ProgressName))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return ProgressState{}, false
	}
	return st, true
}

// fileProgress forwards to inner and publishes the state to progress.json.
type fileProgress struct {
	inner Progress
	path  string
	done  atomic.Int64

	mu   sync.Mutex
	st   ProgressState
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// newFileProgress starts publishing the progress of work in caseDir.
// finish stops it. Failing to write the file never fails the work.
func newFileProgress(caseDir, work string, inner Progress) *fileProgress {
	now := time.Now().UTC()
	f := &fileProgress{inner: orNone(inner), path: filepath.Join(caseDir, ProgressName), quit: make(chan struct{}),
		st: ProgressState{Work: work, PID: os.Getpid(), Started: now}}
	f.write()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f.write()
			case <-f.quit:
				return
			}
		}
	}()
	return f
}

func (f *fileProgress) Stage(name, unit string, total int64) {
	f.mu.Lock()
	f.st.Stage, f.st.Unit, f.st.Total = name, unit, total
	f.done.Store(0)
	f.mu.Unlock()
	f.inner.Stage(name, unit, total)
}

func (f *fileProgress) Add(n int64) {
	f.done.Add(n)
	f.inner.Add(n)
}

// setWork renames the work (the next file of a dataset add).
func (f *fileProgress) setWork(work string) {
	f.mu.Lock()
	f.st.Work = work
	f.mu.Unlock()
}

// finish writes the final state and stops the updates.
func (f *fileProgress) finish(err error) {
	f.once.Do(func() {
		close(f.quit)
		f.wg.Wait()
		f.mu.Lock()
		f.st.Finished = true
		if err != nil {
			f.st.Error = err.Error()
		}
		f.mu.Unlock()
		f.write()
	})
}

func (f *fileProgress) write() {
	f.mu.Lock()
	st := f.st
	f.mu.Unlock()
	st.Done = f.done.Load()
	st.Updated = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".progress-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); werr == nil && cerr == nil {
		if os.Rename(tmp.Name(), f.path) == nil {
			return
		}
	}
	os.Remove(tmp.Name())
}

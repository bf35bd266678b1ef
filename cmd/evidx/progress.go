package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// termProgress is the one progress display of evidx: a line on stderr,
// redrawn five times a second while stderr is a terminal, naming the
// stage, how much of it is done (of its total when known), the rate and
// an ETA. It implements pipeline.Progress; commands whose work reports
// plain byte or entry counts use Stage and Add directly. When stderr is
// not a terminal it draws nothing.
type termProgress struct {
	w     io.Writer
	label string

	mu    sync.Mutex
	stage string
	unit  string
	total int64
	start time.Time
	done  atomic.Int64

	quit, ended chan struct{}
	stopOnce    sync.Once
}

// newProgress starts the display for the work named label ("evidence
// EV1", a file name). stop removes the line.
func newProgress(label string) *termProgress {
	p := &termProgress{w: os.Stderr, label: oneLine(label), quit: make(chan struct{}), ended: make(chan struct{}), start: time.Now()}
	if !stderrIsTerminal() {
		close(p.ended)
		return p
	}
	go func() {
		defer close(p.ended)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprint(p.w, "\r\033[K"+p.line())
			case <-p.quit:
				fmt.Fprint(p.w, "\r\033[K")
				return
			}
		}
	}()
	return p
}

// Stage starts a stage of total units (0: unknown).
func (p *termProgress) Stage(name, unit string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.unit, p.total, p.start = name, unit, total, time.Now()
	p.done.Store(0)
}

// Add counts n more units done.
func (p *termProgress) Add(n int64) { p.done.Add(n) }

// stop ends the display; safe to call more than once.
func (p *termProgress) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.ended:
		default:
			close(p.quit)
		}
		<-p.ended
	})
}

// line formats the display: "evidence EV1: carving 42% (1.1 GiB of 2.6
// GiB), 310 MiB/s, ETA 5s".
func (p *termProgress) line() string {
	p.mu.Lock()
	stage, unit, total, start := p.stage, p.unit, p.total, p.start
	p.mu.Unlock()
	done := p.done.Load()
	el := time.Since(start)
	s := p.label + ":"
	if stage != "" {
		s += " " + stage
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		s += fmt.Sprintf(" %.0f%% (%s of %s)", 100*frac, amount(done, unit), amount(total, unit))
		if frac > 0.01 && el > 2*time.Second {
			s += ", ETA " + (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
		}
	} else if done > 0 {
		s += " " + amount(done, unit)
	}
	if secs := el.Seconds(); secs > 0.5 && done > 0 {
		s += ", " + amount(int64(float64(done)/secs), unit) + "/s"
	}
	return s
}

// amount prints a count of a unit: bytes in binary units, anything else
// as a number followed by the unit.
func amount(n int64, unit string) string {
	if unit != "bytes" {
		return fmt.Sprintf("%d %s", n, unit)
	}
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	}
	return fmt.Sprintf("%d B", n)
}

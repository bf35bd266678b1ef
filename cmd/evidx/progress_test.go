package main

import (
	"strings"
	"testing"
	"time"
)

// TestProgressLine: the one progress line names the stage, the share of
// its total, the rate and an ETA; a stage without a total shows counts.
func TestProgressLine(t *testing.T) {
	p := &termProgress{label: "evidence EV1"}
	p.Stage("hashing media", "bytes", 4<<30)
	p.start = time.Now().Add(-10 * time.Second)
	p.Add(1 << 30)
	got := p.line()
	for _, want := range []string{"evidence EV1: hashing media 25% (1.0 GiB of 4.0 GiB)", "ETA 30s", "102.4 MiB/s"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
	p.Stage("walking", "entries", 0)
	p.start = time.Now().Add(-2 * time.Second)
	p.Add(500)
	if got := p.line(); !strings.Contains(got, "walking 500 entries, 2") || strings.Contains(got, "%") {
		t.Errorf("line %q", got)
	}
	// A stage restarts the count: no 229.9% from bytes of another stage.
	p.Stage("carving", "bytes", 100)
	p.Add(100)
	if got := p.line(); !strings.Contains(got, "carving 100%") {
		t.Errorf("line %q", got)
	}
}

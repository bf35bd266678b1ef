package ordered

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// TestMapEmitsInOrder gives pieces random durations: results must still
// come back in index order, each once, with the bound on pieces in flight.
func TestMapEmitsInOrder(t *testing.T) {
	const n, workers = 200, 3
	var inFlight, most atomic.Int64
	next := 0
	err := Map(context.Background(), n, workers,
		func() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) },
		func(_ context.Context, rng *rand.Rand, i int) int {
			if v := inFlight.Add(1); v > most.Load() {
				most.Store(v)
			}
			time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
			return i * i
		},
		func(i, r int) error {
			inFlight.Add(-1)
			if i != next || r != i*i {
				t.Fatalf("emitted (%d, %d), want (%d, %d)", i, r, next, next*next)
			}
			next++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if next != n {
		t.Fatalf("emitted %d pieces, want %d", next, n)
	}
	// +1: emit counts a piece out just after Map has let the next one in.
	if m := most.Load(); m > 2*workers+2 {
		t.Errorf("%d pieces in flight, bound is %d", m, 2*workers+1)
	}
}

func TestMapStopsOnEmitError(t *testing.T) {
	stop := errors.New("stop")
	var started atomic.Int64
	err := Map(context.Background(), 10000, 2, func() struct{} { return struct{}{} },
		func(context.Context, struct{}, int) int { started.Add(1); return 0 },
		func(i, _ int) error {
			if i == 5 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) {
		t.Fatalf("got %v, want the emit error", err)
	}
	if s := started.Load(); s > 5+2*2+1+2 {
		t.Errorf("%d pieces started after the error at piece 5", s)
	}
}

func TestMapCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Map(ctx, 100, 2, func() int { return 0 },
		func(context.Context, int, int) int { return 0 },
		func(int, int) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestMapNothing(t *testing.T) {
	if err := Map(context.Background(), 0, 2, func() int { return 0 },
		func(context.Context, int, int) int { t.Fatal("work called"); return 0 },
		func(int, int) error { t.Fatal("emit called"); return nil }); err != nil {
		t.Fatal(err)
	}
}

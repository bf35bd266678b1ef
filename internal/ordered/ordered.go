// Package ordered runs independent pieces of work on several goroutines and
// hands their results back in input order, with a bounded number of pieces
// between being started and being handed back. The carver and the scanner
// use it to spread an image's chunks over both cores while emitting in
// offset order.
package ordered

import (
	"context"
	"sync"
)

// Map calls work(ctx, state, i) for every i in [0, n) on workers goroutines
// (each with its own state from newState, never shared) and emit(i, result)
// for each i in increasing order from the calling goroutine. At most
// 2*workers+1 pieces are under way or waiting to be emitted, so a slow piece
// cannot make finished ones pile up in memory.
//
// Map stops at the first error from emit and returns it, or when ctx is
// cancelled (returning ctx.Err()); the work of pieces not yet emitted is
// abandoned and every goroutine Map started has returned or will return
// without blocking.
func Map[S, T any](ctx context.Context, n, workers int, newState func() S,
	work func(ctx context.Context, state S, i int) T, emit func(i int, result T) error) error {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type done struct {
		i int
		r T
	}
	indices := make(chan int)
	out := make(chan done, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := newState()
			for i := range indices {
				r := work(ctx, state, i)
				select {
				case out <- done{i, r}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	ahead := make(chan struct{}, 2*workers+1)
	go func() {
		defer close(indices)
		for i := range n {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case indices <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()

	pending := map[int]T{}
	next := 0
	for d := range out {
		pending[d.i] = d.r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			<-ahead
			if err := emit(next, r); err != nil {
				return err
			}
			next++
		}
	}
	return ctx.Err()
}

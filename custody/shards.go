package custody

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/evidx/evidx/index"
	"golang.org/x/sync/errgroup"
)

// ShardItems hashes every index shard file (index/shard-NNN.sqlite) and
// returns them as audit items with case-relative paths, in name order.
// Callers that load the index put these in the outputs of the load's audit
// entry (or call RecordShards), so verify can tell a shard edited later.
func (c *Case) ShardItems(ctx context.Context) ([]Item, error) {
	paths, err := index.ShardFiles(filepath.Join(c.dir, IndexDir))
	if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	// Shards are hashed in parallel: after a large load they are about a
	// GB, and SHA-256 runs at one core's speed.
	items := make([]Item, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			sum, n, err := hashFile(p)
			if err != nil {
				return fmt.Errorf("custody: shard %s: %w", p, err)
			}
			rel, _ := filepath.Rel(c.dir, p)
			items[i] = Item{Kind: "shard", Path: rel, Size: n, SHA256: sum}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return items, nil
}

// RecordShards appends an audit entry ("index.shards") with the SHA-256 of
// every shard file. Call it when a load has finished and closed its shards.
func (c *Case) RecordShards(ctx context.Context) ([]Item, error) {
	items, err := c.ShardItems(ctx)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, nil
	}
	return items, c.Audit(Entry{Action: "index.shards", Outputs: items, Outcome: OutcomeOK})
}

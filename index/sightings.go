package index

import (
	"context"
	"fmt"

	"github.com/evidx/evidx/ingest/identity"
)

// Sightings calls fn for every identity source id holds, shard by shard,
// with how often the source holds it and where it was first seen: what a
// merge feeds into another case. Each shard is read in one pass (the
// sightings table is keyed by identity, so this scans it).
func (ix *Index) Sightings(ctx context.Context, id int64, fn func(s identity.Sighting, occurrences int64) error) error {
	for i := range ix.n {
		db, err := ix.openShardRead(i)
		if err != nil {
			return err
		}
		if db == nil {
			continue
		}
		err = func() error {
			defer db.Close()
			rows, err := db.QueryContext(ctx, `SELECT kind, value, occurrences, first_loc FROM sightings WHERE source_id=?`, id)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var s identity.Sighting
				var n int64
				if err := rows.Scan(&s.Kind, &s.Value, &n, &s.Loc); err != nil {
					return err
				}
				if err := fn(s, n); err != nil {
					return err
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("index: shard %d: source %d: %w", i, id, err)
		}
	}
	return nil
}

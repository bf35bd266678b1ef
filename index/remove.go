package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidx/evidx/ingest/identity"
	"golang.org/x/sync/errgroup"
)

// ErrNoSource is returned when a source reference names no source.
var ErrNoSource = errors.New("no such source")

// FindSources returns the sources ref names: a catalog id ("3" or "#3"), a
// SHA-256 or a prefix of it of at least 8 hex digits, or a name. Several
// sources may share a name; the caller decides whether that is ambiguous.
func (ix *Index) FindSources(ctx context.Context, ref string) ([]SourceStats, error) {
	all, err := ix.Sources(ctx)
	if err != nil {
		return nil, err
	}
	if id, err := strconv.ParseInt(strings.TrimPrefix(ref, "#"), 10, 64); err == nil {
		for _, s := range all {
			if s.ID == id {
				return []SourceStats{s}, nil
			}
		}
	}
	var out []SourceStats
	lower := strings.ToLower(ref)
	if len(ref) >= 8 && isHex(lower) {
		for _, s := range all {
			if strings.HasPrefix(s.SHA256, lower) {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	for _, s := range all {
		if s.Name == ref {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("index: %q: %w", ref, ErrNoSource)
	}
	return out, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// Removal is what RemoveSource did.
type Removal struct {
	Source SourceStats `json:"source"` // the source as it was before removal
	// Gained counts, per later source (by id), the identities that source
	// now brings to the case: the removed source had brought them first.
	Gained map[int64]map[identity.Kind]int64 `json:"gained"`
}

// RemoveSource takes a source out of the index so that every count
// afterwards (unique identities, each source's new identities, overlaps)
// is what it would be had the source never been loaded. Steps, each safe to
// be killed at: (1) the removal is recorded in source_removals; the source
// is still whole and counted; (2) the shards are scanned for identities
// the source brought first that later sources also hold; (3) one catalog
// transaction adds those to the new counts of the source that held each one
// next, drops the source from every other's shared counts, puts it in
// status loading and clears the record of step 1; (4) like any interrupted
// load, its sightings go from every shard and its row is deleted. A removal
// killed before (3) is redone from (2) by the next writer (load or remove);
// after (3), the next writer finishes (4).
func (ix *Index) RemoveSource(ctx context.Context, id int64, reason string) (Removal, error) {
	unlock, err := ix.lock(ctx)
	if err != nil {
		return Removal{}, err
	}
	defer unlock()
	list, err := ix.querySources(ctx, `WHERE id=?`, id)
	if err != nil {
		return Removal{}, err
	}
	if len(list) == 0 {
		return Removal{}, fmt.Errorf("index: source %d: %w", id, ErrNoSource)
	}
	if _, err := ix.catalog.ExecContext(ctx, `INSERT OR IGNORE INTO source_removals(source_id, requested, reason) VALUES (?, ?, ?)`,
		id, time.Now().UTC().Format(time.RFC3339Nano), reason); err != nil {
		return Removal{}, fmt.Errorf("index: remove source %d: %w", id, err)
	}
	done, err := ix.finishRemovals(ctx, "")
	if err != nil {
		return Removal{}, err
	}
	for _, r := range done {
		if r.Source.ID == id {
			return r, nil
		}
	}
	// Only a source in status loading (an interrupted load) gets here: it
	// counted for nothing, and recover has purged it.
	return Removal{Source: list[0], Gained: map[int64]map[identity.Kind]int64{}}, nil
}

// finishRemovals carries out every recorded removal, oldest first, then
// purges what they (and any interrupted load) left. The caller holds the
// load lock.
// keep is passed on to recover: the SHA-256 of a file about to be loaded
// again, whose row an interrupted load of it may be reused.
func (ix *Index) finishRemovals(ctx context.Context, keep string) ([]Removal, error) {
	// Interrupted loads first: their sightings must not count as holders.
	if err := ix.recover(ctx, keep); err != nil {
		return nil, err
	}
	rows, err := ix.catalog.QueryContext(ctx, `SELECT source_id FROM source_removals ORDER BY requested, source_id`)
	if err != nil {
		return nil, fmt.Errorf("index: removals: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("index: removals: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index: removals: %w", err)
	}
	var out []Removal
	for _, id := range ids {
		list, err := ix.querySources(ctx, `WHERE id=? AND status='done'`, id)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 { // already gone, or a load that recover purged
			if _, err := ix.catalog.ExecContext(ctx, `DELETE FROM source_removals WHERE source_id=?`, id); err != nil {
				return nil, fmt.Errorf("index: removals: %w", err)
			}
			continue
		}
		gained, err := ix.removalGains(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := ix.applyRemoval(ctx, id, gained); err != nil {
			return nil, err
		}
		if err := ix.recover(ctx, keep); err != nil {
			return nil, err
		}
		out = append(out, Removal{Source: list[0], Gained: gained})
	}
	return out, nil
}

// removalGains scans every shard for the identities source id holds with
// the lowest id and some later source holds too: each becomes new for the
// lowest-numbered of those later sources. All sightings in the shards are
// of done sources here (recover ran).
func (ix *Index) removalGains(ctx context.Context, id int64) (map[int64]map[identity.Kind]int64, error) {
	gained := map[int64]map[identity.Kind]int64{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ix.opts.Workers)
	for i := range ix.n {
		g.Go(func() error {
			db, err := ix.openShardRead(i)
			if err != nil || db == nil {
				return err
			}
			defer db.Close()
			var has bool
			if err := db.QueryRowContext(gctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sightings')`).Scan(&has); err != nil || !has {
				return err
			}
			// The key is (kind, value, source_id): groups stream in key
			// order and min() is the group's first row.
			rows, err := db.QueryContext(gctx, `SELECT kind, group_concat(source_id) FROM sightings
				GROUP BY kind, value HAVING min(source_id) = ? AND count(*) > 1`, id)
			if err != nil {
				return fmt.Errorf("index: shard %d: removal of source %d: %w", i, id, err)
			}
			defer rows.Close()
			local := map[int64]map[identity.Kind]int64{}
			for rows.Next() {
				var kind, list string
				if err := rows.Scan(&kind, &list); err != nil {
					return fmt.Errorf("index: shard %d: removal of source %d: %w", i, id, err)
				}
				next := int64(-1)
				for f := range strings.SplitSeq(list, ",") {
					n, err := strconv.ParseInt(f, 10, 64)
					if err != nil {
						return fmt.Errorf("index: shard %d: source list %q: %w", i, list, err)
					}
					if n != id && (next < 0 || n < next) {
						next = n
					}
				}
				if local[next] == nil {
					local[next] = map[identity.Kind]int64{}
				}
				local[next][identity.Kind(kind)]++
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("index: shard %d: removal of source %d: %w", i, id, err)
			}
			mu.Lock()
			defer mu.Unlock()
			for src, m := range local {
				if gained[src] == nil {
					gained[src] = map[identity.Kind]int64{}
				}
				for k, n := range m {
					gained[src][k] += n
				}
			}
			return nil
		})
	}
	return gained, g.Wait()
}

// applyRemoval is step (3) of RemoveSource, one transaction.
func (ix *Index) applyRemoval(ctx context.Context, id int64, gained map[int64]map[identity.Kind]int64) error {
	tx, err := ix.catalog.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: remove source %d: %w", id, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, new_json, shared_json FROM sources WHERE id > ? AND status='done'`, id)
	if err != nil {
		return fmt.Errorf("index: remove source %d: %w", id, err)
	}
	type update struct {
		id     int64
		nw     string
		shared sql.NullString
	}
	var ups []update
	for rows.Next() {
		var u update
		var nw string
		var shared sql.NullString
		if err := rows.Scan(&u.id, &nw, &shared); err != nil {
			rows.Close()
			return fmt.Errorf("index: remove source %d: %w", id, err)
		}
		counts := map[identity.Kind]int64{}
		if err := json.Unmarshal([]byte(nw), &counts); err != nil {
			rows.Close()
			return fmt.Errorf("index: source %d new counts %q: %w", u.id, nw, err)
		}
		for k, n := range gained[u.id] {
			counts[k] += n
		}
		b, _ := json.Marshal(counts)
		u.nw = string(b)
		if shared.Valid {
			m := map[int64]int64{}
			if err := json.Unmarshal([]byte(shared.String), &m); err != nil {
				rows.Close()
				return fmt.Errorf("index: source %d shared counts %q: %w", u.id, shared.String, err)
			}
			delete(m, id)
			b, _ := json.Marshal(m)
			u.shared = sql.NullString{String: string(b), Valid: true}
		}
		ups = append(ups, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: remove source %d: %w", id, err)
	}
	for _, u := range ups {
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET new_json=?, shared_json=? WHERE id=?`, u.nw, u.shared, u.id); err != nil {
			return fmt.Errorf("index: remove source %d: update source %d: %w", id, u.id, err)
		}
	}
	for _, q := range []string{
		`UPDATE sources SET status='loading' WHERE id=?`,
		`DELETE FROM source_origins WHERE source_id=?`,
		`DELETE FROM source_removals WHERE source_id=?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("index: remove source %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: remove source %d: %w", id, err)
	}
	return nil
}

// SourceOfFile returns the done source holding the bytes of the file at
// path, or nil. The file is hashed only when a done source has its size.
func (ix *Index) SourceOfFile(ctx context.Context, path string) (*SourceStats, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var sameSize bool
	if err := ix.catalog.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sources WHERE size=? AND status='done')`, fi.Size()).Scan(&sameSize); err != nil {
		return nil, fmt.Errorf("index: sources: %w", err)
	}
	if !sameSize {
		return nil, nil
	}
	sum, _, err := hashFile(ctx, path)
	if err != nil {
		return nil, err
	}
	s, err := ix.sourceBySHA(ctx, sum)
	if err != nil || s == nil || s.Status != "done" {
		return nil, err
	}
	return s, nil
}

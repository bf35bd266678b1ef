package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/index"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/pipeline"
	"golang.org/x/sync/errgroup"
)

// cache holds what costs more than a page may take (the stats, the
// province scan of every shard), recomputed when the catalog's sources
// change: a load that finishes changes them in the one catalog
// transaction that makes its source "done".
type cache struct {
	s *Server

	mu       sync.Mutex
	statsKey string
	st       index.Stats
	stErr    error
	geoKey   string
	g        geoStats
	geoErr   error
	statsRun sync.Mutex
	geoRun   sync.Mutex

	auditMu   sync.Mutex
	auditSize int64
	verify    *verifyInfo
}

func newCache(s *Server) *cache { return &cache{s: s} }

// key names the state of the catalog's sources.
func (c *cache) key(ctx context.Context) (string, error) {
	var n, maxID, done int64
	var fin string
	err := c.s.c.DB().QueryRowContext(ctx, `SELECT count(*), coalesce(max(id),0), coalesce(sum(status='done'),0), coalesce(max(finished),'') FROM sources`).Scan(&n, &maxID, &done, &fin)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return "empty", nil
		}
		return "", fmt.Errorf("serve: catalog: %w", err)
	}
	return fmt.Sprint(n, maxID, done, fin), nil
}

// stats returns index.Stats of the current sources (overlap from the
// catalog's shared counts where recorded).
func (c *cache) stats(ctx context.Context) (index.Stats, error) {
	c.statsRun.Lock()
	defer c.statsRun.Unlock()
	k, err := c.key(ctx)
	if err != nil {
		return index.Stats{}, err
	}
	c.mu.Lock()
	if c.statsKey == k && c.stErr == nil {
		st := c.st
		c.mu.Unlock()
		return st, nil
	}
	c.mu.Unlock()
	var st index.Stats
	if k == "empty" {
		st = index.Stats{Unique: map[identity.Kind]int64{}}
	} else if st, err = c.s.ix.Stats(ctx, index.StatsOptions{}); err != nil {
		return st, err
	}
	c.mu.Lock()
	c.statsKey, c.st, c.stErr = k, st, nil
	c.mu.Unlock()
	return st, nil
}

// doneIDs lists the sources whose load finished.
func doneIDs(st index.Stats) []string {
	var ids []string
	for _, s := range st.Sources {
		if s.Status == "done" {
			ids = append(ids, strconv.FormatInt(s.ID, 10))
		}
	}
	return ids
}

// geoStats counts unique ID numbers by province (first two digits of the
// address code), sex (17th digit) and birth year (digits 7-10).
type geoStats struct {
	Total    int64
	Province map[string]*geoRow // by 2-digit code
	Year     string             // the year ages are counted at
	Stale    bool               // a newer count is being made
}

type geoRow struct {
	Code         string
	Count        int64
	Male, Female int64
	Bands        [len(ageBands)]int64
	Width        int // bar width in the chart, of 100
	Name, NameZh string
	Unknown      bool
	AgeUnknown   int64
	Share        float64
}

// ageBands are the lower bounds of the bands shown.
var ageBands = [...]int{0, 18, 30, 45, 60}

// geo returns the province counts. Only the first call waits for the
// scan of every shard (seconds on millions of ID numbers); after a load
// changes the sources, the last counts are served, marked Stale, while a
// new scan runs in the background.
func (c *cache) geo(ctx context.Context) (geoStats, error) {
	k, err := c.key(ctx)
	if err != nil {
		return geoStats{}, err
	}
	c.mu.Lock()
	have, g, fresh := c.geoKey != "", c.g, c.geoKey == k
	c.mu.Unlock()
	if fresh {
		return g, nil
	}
	if have {
		go c.refreshGeo(context.WithoutCancel(ctx))
		g.Stale = true
		return g, nil
	}
	return c.refreshGeo(ctx)
}

func (c *cache) refreshGeo(ctx context.Context) (geoStats, error) {
	if !c.geoRun.TryLock() {
		// Another scan runs: wait for it.
		c.geoRun.Lock()
		defer c.geoRun.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.g, c.geoErr
	}
	defer c.geoRun.Unlock()
	k, err := c.key(ctx)
	if err != nil {
		return geoStats{}, err
	}
	st, err := c.stats(ctx)
	if err != nil {
		return geoStats{}, err
	}
	g, err := c.scanGeo(ctx, doneIDs(st))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.geoErr = err
	if err != nil {
		return g, err
	}
	c.geoKey, c.g = k, g
	return g, nil
}

func (c *cache) scanGeo(ctx context.Context, ids []string) (geoStats, error) {
	now := time.Now().UTC().Year()
	g := geoStats{Province: map[string]*geoRow{}, Year: strconv.Itoa(now)}
	if len(ids) == 0 {
		return g, nil
	}
	// Aggregated in SQL per shard: at most 34 provinces × ~120 years × 2
	// sexes come back, however many ID numbers there are. Distinct values
	// first (GROUP BY value streams in key order): one number in three
	// sources is one person.
	q := `SELECT p, y, sx, count(*) FROM (SELECT substr(value,1,2) p, substr(value,7,4) y, CAST(substr(value,17,1) AS INTEGER) % 2 sx
		FROM sightings WHERE kind='cn_id' AND source_id IN (` + strings.Join(ids, ",") + `) GROUP BY value) GROUP BY p, y, sx`
	var mu sync.Mutex
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(2)
	for i := range c.s.ix.Shards() {
		eg.Go(func() error {
			db, err := c.s.ix.OpenShardRead(i)
			if err != nil || db == nil {
				return err
			}
			defer db.Close()
			rows, err := db.QueryContext(ectx, q)
			if err != nil {
				if strings.Contains(err.Error(), "no such table") {
					return nil
				}
				return fmt.Errorf("serve: shard %d: %w", i, err)
			}
			defer rows.Close()
			for rows.Next() {
				var p, y string
				var sx, n int64
				if err := rows.Scan(&p, &y, &sx, &n); err != nil {
					return fmt.Errorf("serve: shard %d: %w", i, err)
				}
				mu.Lock()
				r := g.Province[p]
				if r == nil {
					r = &geoRow{Code: p}
					g.Province[p] = r
				}
				r.Count += n
				g.Total += n
				if sx == 1 {
					r.Male += n
				} else {
					r.Female += n
				}
				by, err := strconv.Atoi(y)
				if age := now - by; err != nil || by < 1850 || age < 0 || age > 130 {
					r.AgeUnknown += n
				} else {
					b := 0
					for j, lo := range ageBands {
						if age >= lo {
							b = j
						}
					}
					r.Bands[b] += n
				}
				mu.Unlock()
			}
			return rows.Err()
		})
	}
	if err := eg.Wait(); err != nil {
		return g, err
	}
	return g, nil
}

// rows returns the provinces, largest first, with names and bar widths.
func (g geoStats) rows() []*geoRow {
	out := make([]*geoRow, 0, len(g.Province))
	var top int64
	for _, r := range g.Province {
		p, ok := provinces[r.Code]
		r.Name, r.NameZh, r.Unknown = p.en, p.zh, !ok
		if !ok {
			r.Name, r.NameZh = "unknown code "+r.Code, "未知代码 "+r.Code
		}
		top = max(top, r.Count)
		out = append(out, r)
	}
	for _, r := range out {
		if top > 0 {
			r.Width = int(r.Count * 100 / top)
		}
		if g.Total > 0 {
			r.Share = float64(r.Count) * 100 / float64(g.Total)
		}
	}
	slices.SortFunc(out, func(a, b *geoRow) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// verifyInfo is the latest `evidx verify` in the audit log.
type verifyInfo struct {
	Time     string
	OK       bool
	Failures string
	Lines    int64
	ChainErr string
}

// lastVerify reads the audit log (again only when it grew) for the last
// verify line.
func (c *cache) lastVerify() *verifyInfo {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	p := filepath.Join(c.s.c.Dir(), custody.AuditName)
	fi, err := os.Stat(p)
	if err != nil {
		return &verifyInfo{ChainErr: err.Error()}
	}
	if c.verify != nil && fi.Size() == c.auditSize {
		return c.verify
	}
	lines, ch, err := c.s.c.ReadAudit(context.Background())
	v := &verifyInfo{Lines: ch.Lines}
	if err != nil {
		v.ChainErr = err.Error()
	}
	for _, l := range slices.Backward(lines) {
		if l.Action == "verify" {
			v.Time, v.OK, v.Failures = l.Time, l.Outcome == custody.OutcomeOK, l.Error
			break
		}
	}
	c.auditSize, c.verify = fi.Size(), v
	return v
}

// progress is a load's state as the overview shows it.
type progress struct {
	pipeline.ProgressState
	Running bool
	Percent int
	Stopped bool // not finished, but its process is gone
}

func (s *Server) progress() *progress {
	st, ok := pipeline.ReadProgress(s.c.Dir())
	if !ok {
		return nil
	}
	p := &progress{ProgressState: st}
	if !st.Finished {
		alive := st.PID > 0 && syscall.Kill(st.PID, 0) != syscall.ESRCH
		p.Running, p.Stopped = alive, !alive
	} else if time.Since(st.Updated) > 10*time.Minute {
		return nil
	}
	if st.Total > 0 {
		p.Percent = int(min(st.Done*100/st.Total, 100))
	}
	return p
}

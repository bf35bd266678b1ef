package persons

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/evidx/evidx/ingest/identity"
)

// A leak whose numbers were drawn from a recycled pool has a hub for
// nearly every repeated value: millions of them. So hubs never live in
// memory. The union pass spills each hub with its records to a work file
// (hubSpill), in the order the values are merged; once the union-find is
// done, countHubs streams that file back, counts each hub's distinct
// persons, writes the generation's hub files (hub-NNN.bin and .idx, the
// format of the identifier files, the number after each value being
// people<<2 | rule) and keeps only the MaxListedHubs touching the most
// people for the Summary.

// Why a value is a hub (the low two bits of a hub file's number).
const (
	ruleIDs    = 1 // seen with more than HubIDs distinct ID numbers
	rulePhones = 2 // seen with more than HubPhones distinct phone numbers
)

// ruleText states rule in words, with the thresholds of o.
func ruleText(o Options, rule byte) string {
	o.defaults()
	switch rule {
	case ruleIDs:
		return fmt.Sprintf("seen with more than %d distinct ID numbers", o.HubIDs)
	case rulePhones:
		return fmt.Sprintf("seen with more than %d distinct phone numbers", o.HubPhones)
	}
	return "hub"
}

// hubSpill writes hubs with their records to a work file: per hub its
// shard, kind code, value, rule and records (ascending, delta-coded).
type hubSpill struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
	n   int64
}

func newHubSpill(path string) (*hubSpill, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	return &hubSpill{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (h *hubSpill) add(shard int, kind identity.Kind, value []byte, rule byte, recs []uint32) error {
	c, ok := kindCode(kind)
	if !ok {
		return fmt.Errorf("persons: hub of kind %q", kind)
	}
	b := binary.AppendUvarint(h.buf[:0], uint64(shard))
	b = append(b, c)
	b = binary.AppendUvarint(b, uint64(len(value)))
	b = append(b, value...)
	b = append(b, rule)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	last := uint32(0)
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(r-last))
		last = r
	}
	h.buf = b
	h.n++
	if _, err := h.w.Write(b); err != nil {
		return fmt.Errorf("persons: hubs: %w", err)
	}
	return nil
}

func (h *hubSpill) close() {
	if h != nil && h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// spilledHub is one hub read back; recs is valid until the next read.
type spilledHub struct {
	shard int
	kind  identity.Kind
	value []byte
	rule  byte
	recs  []uint32
}

// each reads the spilled hubs back in the order they were written.
func (h *hubSpill) each(ctx context.Context, records uint32, fn func(*spilledHub) error) error {
	if err := h.w.Flush(); err != nil {
		return fmt.Errorf("persons: hubs: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(h.f, 0, math.MaxInt64), 1<<20)
	var sh spilledHub
	bad := func(err error) error { return fmt.Errorf("persons: %s: %w", h.f.Name(), cmpErr(err)) }
	for i := int64(0); i < h.n; i++ {
		if i&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		shard, err := binary.ReadUvarint(r)
		if err != nil {
			return bad(err)
		}
		c, err := r.ReadByte()
		if err != nil || int(c) >= len(itemKinds) {
			return bad(err)
		}
		l, err := binary.ReadUvarint(r)
		if err != nil || l > maxItem {
			return bad(err)
		}
		sh.value = slices.Grow(sh.value[:0], int(l))[:l]
		if _, err := io.ReadFull(r, sh.value); err != nil {
			return bad(err)
		}
		if sh.rule, err = r.ReadByte(); err != nil {
			return bad(err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(records) {
			return bad(err)
		}
		sh.recs = sh.recs[:0]
		last := uint64(0)
		for range n {
			d, err := binary.ReadUvarint(r)
			if err != nil || last+d >= uint64(records) {
				return bad(err)
			}
			last += d
			sh.recs = append(sh.recs, uint32(last))
		}
		sh.shard, sh.kind = int(shard), itemKinds[c]
		if err := fn(&sh); err != nil {
			return err
		}
	}
	return nil
}

// countHubs counts the distinct persons of every spilled hub (the
// union-find flattened), writes the hub files and fills sum's hub fields.
func (b *builder) countHubs(ctx context.Context, sum *Summary) error {
	sum.Hubs, sum.HubsByKind = []Hub{}, map[string]int64{}
	hw := &identWriter{dir: b.tmp, name: "hub"}
	if b.spill != nil && b.spill.n > 0 {
		// stamp[root] = the number of the last hub that counted root.
		stamp, err := b.array(len(b.parent))
		if err != nil {
			return err
		}
		var top []Hub
		floor := int64(-1) // the people of the least listed hub once the list is full
		i := uint32(0)
		err = b.spill.each(ctx, uint32(len(b.parent)), func(h *spilledHub) error {
			i++
			people := int64(0)
			for _, r := range h.recs {
				if root := b.parent[r]; b.holds(r) && stamp[root] != i {
					stamp[root] = i
					people++
				}
			}
			sum.HubsTotal++
			sum.HubsByKind[string(h.kind)]++
			// Only a hub touching at least as many people as the least
			// listed can be listed (a tie may sort before it).
			if people >= floor {
				top = append(top, Hub{Kind: string(h.kind), Value: string(h.value), People: people, Rule: ruleText(b.opts, h.rule)})
				if len(top) >= 2*MaxListedHubs {
					top = topHubs(top)
					floor = top[len(top)-1].People
				}
			}
			return hw.add(h.shard, h.kind, h.value, uint64(people)<<2|uint64(h.rule))
		})
		b.free(stamp)
		if err != nil {
			if e := hw.close(); e != nil {
				err = fmt.Errorf("%w (and %v)", err, e)
			}
			return err
		}
		sum.Hubs = topHubs(top)
	}
	return hw.finish(b.opts.Shards)
}

// topHubs sorts hubs by persons touched (most first), then kind and value,
// and keeps the first MaxListedHubs. The cut is exact however the hubs
// arrive: a hub dropped here touches no more people than the last kept.
func topHubs(hs []Hub) []Hub {
	slices.SortFunc(hs, func(x, y Hub) int {
		return cmp.Or(cmp.Compare(y.People, x.People), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Value, y.Value))
	})
	return hs[:min(len(hs), MaxListedHubs)]
}

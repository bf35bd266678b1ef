package source

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// tolerantUnit is the granularity at which a failed read is retried: a
// bad range costs at most this much around the damage.
const tolerantUnit = 4096

// BadRange is a byte range of the media that could not be read (a bad
// EWF chunk, a failing sector), read as zeros.
type BadRange struct {
	Off, Len int64
	Err      string
}

// Tolerant reads media so that damage costs only what it touches: a read
// that fails is retried in 4 KiB pieces, the pieces that still fail read
// as zeros and are recorded as bad ranges, and everything else reads as
// it is. The file-system walk, extraction, carving and the scan then go
// on past a bad chunk instead of stopping at it. Safe for concurrent use
// when the media are.
type Tolerant struct {
	r    io.ReaderAt
	size int64

	mu  sync.Mutex
	bad []BadRange // sorted by Off, not overlapping
}

// NewTolerant wraps media r of size bytes.
func NewTolerant(r io.ReaderAt, size int64) *Tolerant { return &Tolerant{r: r, size: size} }

// ReadAt implements io.ReaderAt; it fails only past the end of the media.
func (t *Tolerant) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := t.size - off; int64(want) > rest {
		want = int(rest)
	}
	n, err := t.r.ReadAt(p[:want], off)
	if err == nil || errors.Is(err, io.EOF) && n == want {
		return t.done(want, len(p))
	}
	// Retry piece by piece, aligned to the unit, from where it failed.
	for pos := int64(n); pos < int64(want); {
		at := off + pos
		end := min((at/tolerantUnit+1)*tolerantUnit, off+int64(want))
		piece := p[pos : end-off]
		if k, perr := t.r.ReadAt(piece, at); perr != nil && !(errors.Is(perr, io.EOF) && k == len(piece)) {
			clear(piece)
			t.record(at, int64(len(piece)), perr)
		}
		pos = end - off
	}
	return t.done(want, len(p))
}

func (t *Tolerant) done(n, asked int) (int, error) {
	if n < asked {
		return n, io.EOF
	}
	return n, nil
}

// record adds a bad range, joining it to a neighbour it touches.
func (t *Tolerant) record(off, n int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.bad), func(i int) bool { return t.bad[i].Off+t.bad[i].Len >= off })
	if i < len(t.bad) && t.bad[i].Off <= off+n {
		b := &t.bad[i]
		end := max(b.Off+b.Len, off+n)
		b.Off = min(b.Off, off)
		b.Len = end - b.Off
		return
	}
	t.bad = append(t.bad, BadRange{})
	copy(t.bad[i+1:], t.bad[i:])
	t.bad[i] = BadRange{Off: off, Len: n, Err: err.Error()}
}

// Bad returns the bad ranges met so far, sorted.
func (t *Tolerant) Bad() []BadRange {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]BadRange(nil), t.bad...)
}

// Overlaps returns the first bad range met so far that overlaps
// [off, off+n).
func (t *Tolerant) Overlaps(off, n int64) (BadRange, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.bad), func(i int) bool { return t.bad[i].Off+t.bad[i].Len > off })
	if i < len(t.bad) && t.bad[i].Off < off+n {
		return t.bad[i], true
	}
	return BadRange{}, false
}

// Problems names every bad range with its sectors, one line each.
func (t *Tolerant) Problems() []string {
	var out []string
	for _, b := range t.Bad() {
		out = append(out, fmt.Sprintf("media bytes %#x-%#x (sectors %d-%d) unreadable, read as zeros: %s",
			b.Off, b.Off+b.Len-1, b.Off/512, (b.Off+b.Len-1)/512, b.Err))
	}
	return out
}

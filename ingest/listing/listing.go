// Package listing lists every file of every file system on a disk, with
// the MD5, SHA-1 and SHA-256 of each regular file's content: the work of
// `evidx ls` (like fls -r plus hashdeep), without its printing.
//
// The walk runs on one goroutine, the hashing on a pool of workers (small
// files are dominated by per-file overhead, so hashing several files at
// once uses the cores better than one parallel stream), and the entries
// come back in walk order with a bounded number in flight, so memory stays
// flat however many files the image holds.
package listing

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/layer"
)

// Entry is one row of a listing: the file as its file system reports it
// (runs in image offsets) plus its partition and content digests.
type Entry struct {
	Partition int `json:"partition"` // Partition.Index of the file's volume (of the top disk for a file inside a virtual disk)
	*fs.File
	Layer  string  `json:"layer,omitempty"` // for a file inside media held in a file: the inner media's format and path
	SHA256 *string `json:"sha256"`          // null when the content is unreadable, not hashed, or the entry is not a regular file
	MD5    *string `json:"md5"`
	SHA1   *string `json:"sha1"`
	// Hashsets names the hash sets holding the content's hash (set by
	// the caller: evidx ls --hashset); omitted when none.
	Hashsets []string `json:"hashsets,omitempty"`

	open func() (io.Reader, error)
}

// Counts sums up a listing.
type Counts struct {
	Files       int `json:"files"`       // regular files listed
	Dirs        int `json:"dirs"`        // directories listed
	Deleted     int `json:"deleted"`     // deleted entries listed
	Recoverable int `json:"recoverable"` // deleted regular files whose content was recovered
	Hashed      int `json:"hashed"`      // files whose content was read and hashed
	Errors      int `json:"errors"`      // files with damaged content or metadata
}

// Add counts one entry.
func (c *Counts) Add(e *Entry) {
	switch e.Type {
	case "dir":
		c.Dirs++
	case "file":
		c.Files++
		if e.Deleted && e.SHA256 != nil {
			c.Recoverable++
		}
	}
	if e.Deleted {
		c.Deleted++
	}
	if e.SHA256 != nil {
		c.Hashed++
	}
	if e.Err != "" {
		c.Errors++
	}
}

// Options says what Walk lists and how.
type Options struct {
	DeletedOnly bool // list deleted entries only, like fls -d
	NoHash      bool // list only: read no content (fls speed)
	Workers     int  // files hashed at once; 0: runtime.GOMAXPROCS(0); negative is an error
	// Problem, if set, receives after the walk each problem of the media
	// found inside files (what could not be opened, limits reached).
	Problem func(string)
}

// ErrWorkers says Options.Workers is negative.
var ErrWorkers = errors.New("listing: Workers must be 0 or more")

// InFlight is the most entries Walk holds between the walk and emit
// (walked, being hashed, or hashed and waiting for an earlier one).
const InFlight = 1024

// BigFile is the size in bytes from which a file's three digests run on
// their own goroutines (digest.Sum): a large file alone then still uses
// every core.
const BigFile = 32 << 20

// bufSize is the read buffer of each worker (bytes).
const bufSize = 256 << 10

// Walk walks every file system of disk and calls emit for each entry, in
// walk order, from one goroutine (not the caller's). Unless opts.NoHash,
// every recoverable regular file is read and its digests set before emit
// sees it; a file whose content cannot be read gets the reason appended to
// its Err and no digests. An entry and its File stay valid after emit
// returns; Walk does not touch them again.
//
// Walk returns the counts of what it emitted (an entry is counted before
// emit sees it). It stops at the first error from emit or from the walk, or
// when ctx is cancelled (emitting nothing more, returning ctx.Err()), and
// returns that error with the counts so far; every goroutine it started has
// then returned.
func Walk(ctx context.Context, disk *fs.Disk, opts Options, emit func(*Entry) error) (Counts, error) {
	var c Counts
	if opts.Workers < 0 {
		return c, ErrWorkers
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// item is one entry in flight: done is closed once it is hashed (or
	// needs no hashing).
	type item struct {
		e    *Entry
		done chan struct{}
	}
	queue := make(chan *item, InFlight) // walk order, to the emitter
	jobs := make(chan *item, InFlight)  // to the hashers
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for it := range jobs {
				if ctx.Err() == nil {
					hashContent(ctx, it.e, buf)
				}
				close(it.done)
			}
		}()
	}
	emitErr := make(chan error, 1)
	go func() {
		var err error
		for it := range queue {
			<-it.done
			if err == nil && ctx.Err() != nil {
				// Cancelled from outside: the workers skip what is left, so
				// nothing is emitted after this, lest an entry lack digests
				// it should have.
				err = ctx.Err()
			}
			if err != nil {
				continue // drain so the walk and the workers can finish
			}
			c.Add(it.e)
			if err = emit(it.e); err != nil {
				cancel()
			}
		}
		emitErr <- err
	}()
	problems, walkErr := layer.Walk(ctx, disk, func(lf *layer.File) error {
		f := lf.File
		if opts.DeletedOnly && !f.Deleted {
			return nil
		}
		it := &item{e: &Entry{Partition: lf.Partition, File: f, Layer: lf.Layer, open: lf.Open}, done: make(chan struct{})}
		select {
		case queue <- it:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !opts.NoHash && f.Type == "file" && f.Recoverable {
			jobs <- it
		} else {
			close(it.done)
		}
		return nil
	})
	close(jobs)
	close(queue)
	wg.Wait()
	if opts.Problem != nil {
		for _, p := range problems {
			opts.Problem(p)
		}
	}
	if err := <-emitErr; err != nil {
		return c, err
	}
	return c, walkErr
}

// hashContent reads one file's content with buf as scratch and sets its digests,
// or appends the reason it could not to its Err.
func hashContent(ctx context.Context, e *Entry, buf []byte) {
	r, err := e.open()
	if err != nil {
		e.Err = fs.AppendErr(e.Err, err.Error())
		return
	}
	var s digest.Sums
	if e.Size >= BigFile {
		s, err = digest.Sum(ctx, r, nil)
	} else {
		w := digest.NewWriter()
		_, err = io.CopyBuffer(w, r, buf)
		s = w.Sums()
	}
	if err != nil {
		e.Err = fs.AppendErr(e.Err, "content: "+err.Error())
		return
	}
	e.SHA256, e.MD5, e.SHA1 = &s.SHA256, &s.MD5, &s.SHA1
}

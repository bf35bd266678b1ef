package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/probe"
	"github.com/evidx/evidx/ingest/source"
)

// lsOptions are the flags of `evidx ls`.
type lsOptions struct {
	JSON    bool
	Deleted bool // only deleted entries, like fls -d
	NoHash  bool // list only; skip reading content (fls speed)
	Workers int  // files hashed at once; 0 = one per CPU
}

func newLsCmd() *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:   "ls IMAGE",
		Short: "List partitions and every file, allocated and deleted, with hashes (like mmls + fls -r -p)",
		Long: `List the partitions of a disk image (MBR with logical partitions, GPT, or a
bare file system) and every file of every readable file system, allocated
and deleted, with its size, timestamps, inode, byte runs in the image, and
the MD5 and SHA-256 of its content (for deleted files: of what is
recoverable). Unallocated byte ranges and any damage found are listed too.
The image is opened read-only.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return runLs(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.BoolVarP(&opts.Deleted, "deleted", "d", false, "list deleted entries only")
	f.BoolVar(&opts.NoHash, "no-hash", false, "do not read or hash file content")
	f.IntVar(&opts.Workers, "workers", 0, "files hashed in parallel (0: one per CPU)")
	return cmd
}

// lsFile is one row of the listing: the file as the file system reports
// it (runs in image offsets) plus its partition and content hashes.
type lsFile struct {
	Partition int `json:"partition"`
	*fs.File
	SHA256 *string `json:"sha256"` // null when the content is unreadable or the entry is a directory
	MD5    *string `json:"md5"`
	SHA1   *string `json:"sha1"`
}

// lsHead is what `ls --json` prints before the files.
type lsHead struct {
	Image      string         `json:"image"`
	Size       int64          `json:"size"`
	Scheme     string         `json:"scheme"`
	Partitions []fs.Partition `json:"partitions"`
}

// lsTail is what `ls --json` prints after the files.
type lsTail struct {
	Unallocated []fs.Range `json:"unallocated"`
	Problems    []string   `json:"problems"`
	Counts      lsCounts   `json:"counts"`
}

type lsCounts struct {
	Files       int `json:"files"`       // regular files listed
	Dirs        int `json:"dirs"`        // directories listed
	Deleted     int `json:"deleted"`     // deleted entries listed
	Recoverable int `json:"recoverable"` // deleted regular files whose content was recovered
	Hashed      int `json:"hashed"`      // files whose content was read and hashed
	Errors      int `json:"errors"`      // files with damaged content or metadata
}

// lsOpenImage opens evidence read-only through ingest/source: raw, split
// raw (x.001 ...) and EWF (x.E01 ...) images alike.
func lsOpenImage(path string) (*source.Image, error) {
	return source.Open(path)
}

func runLs(ctx context.Context, cmd *cobra.Command, opts lsOptions, a []string) error {
	if opts.Workers < 0 {
		return usageError{errors.New("--workers must be 0 or more")}
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	img, err := lsOpenImage(a[0])
	if err != nil {
		return err
	}
	defer img.Close()
	disk, err := probe.OpenDisk(img, img.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", a[0], err)
	}
	head := lsHead{Image: a[0], Size: disk.Size, Scheme: disk.Scheme, Partitions: disk.Partitions}
	var out lsOutput
	if opts.JSON {
		out = newLsJSON(cmd.OutOrStdout())
	} else {
		out = &lsText{w: bufio.NewWriter(cmd.OutOrStdout())}
	}
	if err := out.head(&head); err != nil {
		return err
	}
	var tail lsTail
	emit := out.file
	if stderrIsTerminal() {
		// Progress for people at a terminal: a count on stderr, redrawn at
		// most every 200 ms, from the emitting goroutine only.
		var last time.Time
		emit = func(f *lsFile) error {
			if now := time.Now(); now.Sub(last) > 200*time.Millisecond {
				last = now
				fmt.Fprintf(cmd.ErrOrStderr(), "\r%d entries listed, %d hashed", tail.Counts.Files+tail.Counts.Dirs, tail.Counts.Hashed)
			}
			return out.file(f)
		}
		defer fmt.Fprint(cmd.ErrOrStderr(), "\r\033[K")
	}
	if err := lsStream(ctx, disk, opts, &tail.Counts, emit); err != nil {
		return err
	}
	tail.Unallocated = disk.Unallocated()
	tail.Problems = disk.Problems()
	if tail.Unallocated == nil {
		tail.Unallocated = []fs.Range{}
	}
	if tail.Problems == nil {
		tail.Problems = []string{}
	}
	return out.tail(&tail)
}

// lsItem is one file in flight: done is closed once it is hashed.
type lsItem struct {
	f    *lsFile
	done chan struct{}
}

// lsInFlight bounds the files walked but not yet printed, so memory stays
// flat however many files the image holds.
const lsInFlight = 1024

// lsStream walks the disk, hashes regular files in a pool of opts.Workers
// goroutines (small files are dominated by per-file overhead, so parallel
// files use both cores better than one parallel stream), and hands files to
// emit in walk order from one goroutine.
func lsStream(ctx context.Context, disk *fs.Disk, opts lsOptions, c *lsCounts, emit func(*lsFile) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *lsItem, lsInFlight)
	jobs := make(chan *lsItem, lsInFlight)
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for it := range jobs {
				if ctx.Err() == nil {
					lsHashOne(ctx, disk, it.f, buf)
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
			if err != nil {
				continue // drain so the walk and the workers can finish
			}
			c.add(it.f)
			if err = emit(it.f); err != nil {
				cancel()
			}
		}
		emitErr <- err
	}()
	walkErr := disk.Walk(ctx, func(part int, f *fs.File) error {
		if opts.Deleted && !f.Deleted {
			return nil
		}
		it := &lsItem{f: &lsFile{Partition: part, File: f}, done: make(chan struct{})}
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
	if err := <-emitErr; err != nil {
		return err
	}
	return walkErr
}

func (c *lsCounts) add(f *lsFile) {
	switch f.Type {
	case "dir":
		c.Dirs++
	case "file":
		c.Files++
		if f.Deleted && f.SHA256 != nil {
			c.Recoverable++
		}
	}
	if f.Deleted {
		c.Deleted++
	}
	if f.SHA256 != nil {
		c.Hashed++
	}
	if f.Err != "" {
		c.Errors++
	}
}

// lsOutput prints a listing as it streams: head, each file, tail.
type lsOutput interface {
	head(*lsHead) error
	file(*lsFile) error
	tail(*lsTail) error
}

// lsJSON writes the single JSON object of `ls --json` piece by piece, in
// the layout writeJSON gives (two-space indent, no HTML escaping), so a
// listing of millions of files never sits in memory whole.
type lsJSON struct {
	w     *bufio.Writer
	buf   bytes.Buffer  // one encoded file
	enc   *json.Encoder // writes into buf
	first bool
}

func newLsJSON(w io.Writer) *lsJSON {
	j := &lsJSON{w: bufio.NewWriterSize(w, 256<<10), first: true}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	j.enc.SetIndent("    ", "  ")
	return j
}

// fields writes the members of a JSON object (without its braces) at
// object depth one; more says a member follows.
func (j *lsJSON) fields(v any, more bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, "", "  "); err != nil {
		return err
	}
	body := bytes.TrimSpace(ind.Bytes())
	body = bytes.TrimSuffix(bytes.TrimPrefix(body, []byte("{")), []byte("}"))
	body = bytes.TrimRight(body, " \n")
	j.w.Write(body)
	if more {
		j.w.WriteString(",")
	}
	return nil
}

func (j *lsJSON) head(h *lsHead) error {
	j.w.WriteString("{")
	if err := j.fields(h, true); err != nil {
		return err
	}
	_, err := j.w.WriteString("\n  \"files\": [")
	return err
}

func (j *lsJSON) file(f *lsFile) error {
	j.buf.Reset()
	if err := j.enc.Encode(f); err != nil { // into j.buf, newline-terminated
		return err
	}
	if j.first {
		j.w.WriteString("\n    ")
		j.first = false
	} else {
		j.w.WriteString(",\n    ")
	}
	_, err := j.w.Write(bytes.TrimSuffix(j.buf.Bytes(), []byte("\n")))
	return err
}

func (j *lsJSON) tail(t *lsTail) error {
	if j.first {
		j.w.WriteString("],")
	} else {
		j.w.WriteString("\n  ],")
	}
	if err := j.fields(t, false); err != nil {
		return err
	}
	j.w.WriteString("\n}\n")
	return j.w.Flush()
}

// lsBigFile is the size from which a file's three hashes run on their own
// goroutines (digest.Sum): a large file alone then still uses every core.
const lsBigFile = 32 << 20

// lsHashOne reads one file and sets its digests, or its Err.
func lsHashOne(ctx context.Context, disk *fs.Disk, f *lsFile, buf []byte) {
	r, err := disk.Open(f.Partition, f.File)
	if err != nil {
		f.Err = lsJoinErr(f.Err, err.Error())
		return
	}
	var s digest.Sums
	if f.Size >= lsBigFile {
		s, err = digest.Sum(ctx, r, nil)
	} else {
		w := digest.NewWriter()
		_, err = io.CopyBuffer(w, r, buf)
		s = w.Sums()
	}
	if err != nil {
		f.Err = lsJoinErr(f.Err, "content: "+err.Error())
		return
	}
	f.SHA256, f.MD5, f.SHA1 = &s.SHA256, &s.MD5, &s.SHA1
}

func lsJoinErr(a, b string) string {
	if a == "" || strings.Contains(a, b) {
		return b
	}
	return a + "; " + b
}

// lsText writes the human listing: an mmls-like partition table, then one
// fls-like line per file, then a summary. Names from evidence are escaped.
type lsText struct {
	w *bufio.Writer
}

func (t *lsText) head(h *lsHead) error {
	bw := t.w
	fmt.Fprintf(bw, "%s: %d bytes, partition table: %s\n", lsEscape(h.Image), h.Size, h.Scheme)
	fmt.Fprintf(bw, "%-4s %14s %14s %-38s %-9s %s\n", "part", "start", "size", "type", "fs", "note")
	for _, p := range h.Partitions {
		typ := p.Type
		if typ == "" {
			typ = "-"
		}
		if p.TypeName != "" {
			typ += " (" + p.TypeName + ")"
		}
		note := p.Error
		if p.Name != "" {
			note = strings.TrimSpace("name=" + p.Name + " " + note)
		}
		fmt.Fprintf(bw, "p%-3d %14d %14d %-38s %-9s %s\n", p.Index, p.Start, p.Size, typ, p.FileSystem, lsEscape(note))
	}
	_, err := fmt.Fprintln(bw)
	return err
}

func (t *lsText) file(f *lsFile) error {
	typ := "r/r"
	switch f.Type {
	case "file":
	case "dir":
		typ = "d/d"
	default:
		typ = "-/-"
	}
	del := ""
	if f.Deleted {
		del = "* "
	}
	sum := "-"
	if f.SHA256 != nil {
		sum = *f.SHA256
	}
	mt := "-"
	if !f.Mtime.IsZero() {
		mt = f.Mtime.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(t.w, "p%d %s %s%d:\t%s\t%d\t%s\t%s", f.Partition, typ, del, f.Inode, lsEscape(f.Path), f.Size, mt, sum)
	if f.Err != "" {
		fmt.Fprintf(t.w, "\t(%s)", lsEscape(f.Err))
	}
	_, err := fmt.Fprintln(t.w)
	return err
}

func (t *lsText) tail(tl *lsTail) error {
	c := tl.Counts
	fmt.Fprintf(t.w, "\n%d files, %d directories, %d deleted (%d recoverable), %d hashed, %d with errors; %d unallocated ranges\n",
		c.Files, c.Dirs, c.Deleted, c.Recoverable, c.Hashed, c.Errors, len(tl.Unallocated))
	for _, p := range tl.Problems {
		fmt.Fprintf(t.w, "problem: %s\n", lsEscape(p))
	}
	return t.w.Flush()
}

// lsEscape escapes what a terminal would interpret: C0 and C1 control
// characters, DEL, and invalid UTF-8 become \xNN; a backslash is doubled so
// the escaping is unambiguous. Names from evidence are data.
func lsEscape(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteString(strings.Trim(strconv.QuoteRuneToASCII(r), "'"))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

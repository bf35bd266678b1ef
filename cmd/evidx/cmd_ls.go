package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/listing"
	"github.com/evidx/evidx/ingest/timeline"
	"github.com/evidx/evidx/pipeline"
)

// lsOptions are the flags of `evidx ls`.
type lsOptions struct {
	JSON    bool
	Deleted bool   // only deleted entries, like fls -d
	NoHash  bool   // list only; skip reading content (fls speed)
	Workers int    // files hashed at once; 0 = one per CPU
	Body    string // -m PREFIX: print the TSK body file (fls -m), names under PREFIX
	Part    int    // --partition N: list that volume only; 0: all
	Sector  int64  // -o SECTOR: list the volume starting there only (fls -o); -1: all
	// Hashsets are the hash sets whose matches are marked ([NAME=]FILE).
	Hashsets []string
}

func newLsCmd() *cobra.Command {
	opts := lsOptions{Sector: -1}
	cmd := &cobra.Command{
		Use:   "ls IMAGE",
		Short: "List partitions and every file, allocated and deleted, with hashes (like mmls + fls -r -p)",
		Long: `List the partitions of a disk image (MBR with logical partitions, GPT, or a
bare file system) and every file of every readable file system, allocated
and deleted, with its size, timestamps, inode, byte runs in the image, and
the MD5 and SHA-256 of its content (for deleted files: of what is
recoverable). Unallocated byte ranges and any damage found are listed too.

-o SECTOR (the volume's start in 512-byte sectors, as fls -o) or
--partition N lists one volume only. -m PREFIX prints the files as
The Sleuth Kit's body file instead, as fls -r -m PREFIX does (mactime -b
reads it; see evidx timeline). The image is opened read-only.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if cmd.Flags().Changed("body") {
				return runLsBody(cmd.Context(), cmd, opts, a)
			}
			return runLs(cmd.Context(), cmd, opts, a)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object on stdout")
	f.BoolVarP(&opts.Deleted, "deleted", "d", false, "list deleted entries only")
	f.BoolVar(&opts.NoHash, "no-hash", false, "do not read or hash file content")
	f.IntVar(&opts.Workers, "workers", 0, "files hashed in parallel (0: one per CPU)")
	f.StringVarP(&opts.Body, "body", "m", "", "print the TSK body file with names under `PREFIX` (as fls -r -m PREFIX; e.g. / or C:)")
	f.IntVar(&opts.Part, "partition", 0, "list only the volume with this index (pN, as ls prints it)")
	f.Int64VarP(&opts.Sector, "offset", "o", -1, "list only the volume starting at this `SECTOR` (512-byte sectors, as fls -o)")
	f.StringArrayVar(&opts.Hashsets, "hashset", nil, "mark files whose hash is in this set: NSRL RDSv3 SQLite, hashdeep, md5sum/sha256sum or one hash per line; NAME=FILE names it (default: its base name); repeatable. An RDS without a sha256 index is indexed once into $XDG_CACHE_HOME/evidx/hashsets")
	return cmd
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
	Unallocated []fs.Range     `json:"unallocated"`
	Problems    []string       `json:"problems"`
	Counts      listing.Counts `json:"counts"`
}

func runLs(ctx context.Context, cmd *cobra.Command, opts lsOptions, a []string) error {
	if opts.Workers < 0 {
		return usageError{errors.New("--workers must be 0 or more")}
	}
	if len(opts.Hashsets) > 0 && opts.NoHash {
		return usageError{errors.New("--hashset needs the files' hashes; drop --no-hash")}
	}
	sets, err := openHashsets(opts.Hashsets)
	if err != nil {
		return err
	}
	defer sets.Close()
	img, disk, err := openDisk(a[0])
	if err != nil {
		return err
	}
	defer img.Close()
	if opts.Part != 0 || opts.Sector >= 0 {
		p, err := disk.Select(opts.Part, opts.Sector)
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", a[0], err)}
		}
		if disk, err = disk.Only(p.Index); err != nil {
			return err
		}
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
	bar := newProgress("ls")
	defer bar.stop()
	bar.Stage("listing", "entries", 0)
	emit := func(e *listing.Entry) error {
		bar.Add(1)
		if err := sets.mark(e); err != nil {
			return err
		}
		return out.file(e)
	}
	var inner []string
	counts, err := listing.Walk(ctx, disk, listing.Options{DeletedOnly: opts.Deleted, NoHash: opts.NoHash, Workers: opts.Workers,
		Problem: func(p string) { inner = append(inner, p) }}, emit)
	if err != nil {
		return err
	}
	tail := lsTail{Unallocated: disk.Unallocated(), Problems: append(append(img.Problems(), disk.Problems()...), inner...), Counts: counts}
	for _, p := range tail.Problems {
		fmt.Fprintln(cmd.ErrOrStderr(), "evidx: "+oneLine(p))
	}
	if tail.Unallocated == nil {
		tail.Unallocated = []fs.Range{}
	}
	if tail.Problems == nil {
		tail.Problems = []string{}
	}
	return out.tail(&tail)
}

// runLsBody is ls -m: the body file of every file (one volume with -o or
// --partition), as fls -r -m writes it.
func runLsBody(ctx context.Context, cmd *cobra.Command, opts lsOptions, a []string) error {
	loc, err := zone()
	if err != nil {
		return usageError{err}
	}
	prefix := opts.Body
	if prefix == "" {
		prefix = "/"
	}
	w := bufio.NewWriter(cmd.OutOrStdout())
	problems, err := pipeline.ImageTimeline(ctx, a[0], timeline.Options{Prefix: prefix}, opts.Part, opts.Sector, loc,
		func(e *timeline.Entry) error {
			if opts.Deleted && !e.Deleted {
				return nil
			}
			return timeline.WriteBody(w, e)
		})
	for _, p := range problems {
		fmt.Fprintln(cmd.ErrOrStderr(), "evidx: "+oneLine(p))
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// lsOutput prints a listing as it streams: head, each file, tail.
type lsOutput interface {
	head(*lsHead) error
	file(*listing.Entry) error
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

func (j *lsJSON) file(f *listing.Entry) error {
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

func (t *lsText) file(f *listing.Entry) error {
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
	if len(f.Hashsets) > 0 {
		fmt.Fprintf(t.w, "\t[hashset: %s]", lsEscape(strings.Join(f.Hashsets, ", ")))
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

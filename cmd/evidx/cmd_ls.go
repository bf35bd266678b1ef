package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
}

type lsResult struct {
	Image       string         `json:"image"`
	Size        int64          `json:"size"`
	Scheme      string         `json:"scheme"`
	Partitions  []fs.Partition `json:"partitions"`
	Files       []*lsFile      `json:"files"`
	Unallocated []fs.Range     `json:"unallocated"`
	Problems    []string       `json:"problems"`
	Counts      lsCounts       `json:"counts"`
}

type lsCounts struct {
	Files       int `json:"files"`       // regular files listed
	Dirs        int `json:"dirs"`        // directories listed
	Deleted     int `json:"deleted"`     // deleted entries listed
	Recoverable int `json:"recoverable"` // deleted regular files whose content was recovered
	Hashed      int `json:"hashed"`      // files whose content was read and hashed
	Errors      int `json:"errors"`      // files with damaged content or metadata
}

// lsImage is what the fs layer needs from an opened evidence file.
type lsImage interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// lsRawImage is a raw image file opened read-only.
type lsRawImage struct {
	*os.File
	size int64
}

func (r *lsRawImage) Size() int64 { return r.size }

// lsOpenImage opens evidence read-only. Raw images only until ingest/source
// (split raw, E01) is available.
func lsOpenImage(path string) (lsImage, error) {
	f, err := os.Open(path) // O_RDONLY: evidence is never written
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	return &lsRawImage{File: f, size: st.Size()}, nil
}

func runLs(ctx context.Context, cmd *cobra.Command, opts lsOptions, a []string) error {
	if opts.Workers < 0 {
		return usageError{errors.New("--workers must be 0 or more")}
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
	res := lsResult{Image: a[0], Size: disk.Size, Scheme: disk.Scheme, Partitions: disk.Partitions}
	err = disk.Walk(ctx, func(part int, f *fs.File) error {
		if opts.Deleted && !f.Deleted {
			return nil
		}
		res.Files = append(res.Files, &lsFile{Partition: part, File: f})
		return nil
	})
	if err != nil {
		return err
	}
	if !opts.NoHash {
		if err := lsHashFiles(ctx, disk, res.Files, opts.Workers); err != nil {
			return err
		}
	}
	res.Unallocated = disk.Unallocated()
	res.Problems = disk.Problems()
	if res.Files == nil {
		res.Files = []*lsFile{}
	}
	if res.Unallocated == nil {
		res.Unallocated = []fs.Range{}
	}
	if res.Problems == nil {
		res.Problems = []string{}
	}
	for _, f := range res.Files {
		c := &res.Counts
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
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	return printLs(cmd.OutOrStdout(), &res)
}

// lsHashFiles reads every readable regular file once and sets its MD5 and
// SHA-256. Files are hashed by a small worker pool (one per CPU by
// default): small files are dominated by seeks and per-file overhead, so
// parallel files use both cores better than one parallel stream.
func lsHashFiles(ctx context.Context, disk *fs.Disk, files []*lsFile, workers int) error {
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan *lsFile, 64)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for f := range jobs {
				lsHashOne(disk, f, buf)
			}
		}()
	}
	var err error
	for _, f := range files {
		if f.Type != "file" || !f.Recoverable {
			continue
		}
		if err = ctx.Err(); err != nil {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return err
}

func lsHashOne(disk *fs.Disk, f *lsFile, buf []byte) {
	r, err := disk.Open(f.Partition, f.File)
	if err != nil {
		f.Err = lsJoinErr(f.Err, err.Error())
		return
	}
	w := digest.NewWriter()
	if _, err := io.CopyBuffer(w, r, buf); err != nil {
		f.Err = lsJoinErr(f.Err, "content: "+err.Error())
		return
	}
	s := w.Sums()
	f.SHA256, f.MD5 = &s.SHA256, &s.MD5
}

func lsJoinErr(a, b string) string {
	if a == "" || strings.Contains(a, b) {
		return b
	}
	return a + "; " + b
}

// printLs writes the human listing: an mmls-like partition table, then one
// fls-like line per file. Names from the evidence are escaped.
func printLs(w io.Writer, r *lsResult) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s: %d bytes, partition table: %s\n", lsEscape(r.Image), r.Size, r.Scheme)
	fmt.Fprintf(bw, "%-4s %14s %14s %-38s %-9s %s\n", "part", "start", "size", "type", "fs", "note")
	for _, p := range r.Partitions {
		typ := p.Type
		if p.TypeName != "" {
			typ += " (" + p.TypeName + ")"
		}
		note := p.Error
		if p.Name != "" {
			note = strings.TrimSpace("name=" + lsEscape(p.Name) + " " + note)
		}
		fmt.Fprintf(bw, "p%-3d %14d %14d %-38s %-9s %s\n", p.Index, p.Start, p.Size, typ, p.FileSystem, lsEscape(note))
	}
	fmt.Fprintln(bw)
	for _, f := range r.Files {
		t := "r/r"
		if f.Type == "dir" {
			t = "d/d"
		} else if f.Type != "file" {
			t = "-/-"
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
		fmt.Fprintf(bw, "p%d %s %s%d:\t%s\t%d\t%s\t%s", f.Partition, t, del, f.Inode, lsEscape(f.Path), f.Size, mt, sum)
		if f.Err != "" {
			fmt.Fprintf(bw, "\t(%s)", lsEscape(f.Err))
		}
		fmt.Fprintln(bw)
	}
	c := r.Counts
	fmt.Fprintf(bw, "\n%d files, %d directories, %d deleted (%d recoverable), %d hashed, %d with errors; %d unallocated ranges\n",
		c.Files, c.Dirs, c.Deleted, c.Recoverable, c.Hashed, c.Errors, len(r.Unallocated))
	for _, p := range r.Problems {
		fmt.Fprintf(bw, "problem: %s\n", lsEscape(p))
	}
	return bw.Flush()
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

package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
)

// Expand lists the input files: local paths as given (a glob is
// expanded), Beam filesystem URLs and their globs through Beam's
// filesystem package.
func Expand(ctx context.Context, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if !remote(a) && !strings.ContainsAny(a, "*?[") {
			out = append(out, a)
			continue
		}
		fs, err := filesystem.New(ctx, a)
		if err != nil {
			return nil, err
		}
		list, err := fs.List(ctx, a)
		fs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%s: no file matches", a)
		}
		out = append(out, list...)
	}
	return out, nil
}

// Result is what a run gave: the runner's job id and the report.
type Result struct {
	JobID  string
	Report []byte
}

// Count runs the count pipeline on runner over files and returns the
// JSON document evidx count --json prints.
func Count(ctx context.Context, runner string, files []string, o Options) (Result, error) {
	o.defaults()
	if _, err := o.ingestOptions(); err != nil {
		return Result{}, err
	}
	cleanup := func() {}
	if o.Work == "" {
		d, err := os.MkdirTemp("", "evidx-beam-")
		if err != nil {
			return Result{}, err
		}
		o.Work = d
		cleanup = func() { os.RemoveAll(d) }
	}
	defer cleanup()
	out := joinPath(o.Work, fmt.Sprintf("count-%d.json", time.Now().UnixNano()))

	p, s := beam.NewPipelineWithRoot()
	refs := make([]FileRef, len(files))
	for i, f := range files {
		refs[i] = FileRef{Index: i, Path: f}
	}
	in := beam.CreateList(s, refs)
	work := beam.ParDo(s.Scope("plan"), &planFn{Opt: o}, in)
	work = beam.Reshuffle(s, work)
	sightings, parts := beam.ParDo2(s.Scope("read"), &readFn{Opt: o}, work)
	grouped := beam.GroupByKey(s, sightings)
	shardCounts := beam.ParDo(s.Scope("dedupe"), shardFn{}, grouped)
	if o.Load {
		beam.ParDo0(s.Scope("load"), &loadFn{Out: o.Out}, grouped)
	}
	stats := beam.ParDo(s.Scope("merge"), &mergeFn{Opt: o}, beam.GroupByKey(s, parts))
	all := beam.Flatten(s, shardCounts, stats)
	beam.ParDo0(s.Scope("report"), &reportFn{Out: out, Files: len(files)}, beam.GroupByKey(s, all))

	res, err := beam.Run(ctx, runner, p)
	if err != nil {
		return Result{}, fmt.Errorf("%s runner: %w", runner, err)
	}
	r := Result{}
	if res != nil {
		r.JobID = res.JobID()
	}
	r.Report, err = readFile(ctx, out)
	return r, err
}

func joinPath(dir, name string) string {
	if remote(dir) {
		return strings.TrimSuffix(dir, "/") + "/" + name
	}
	return path.Join(dir, name)
}

func readFile(ctx context.Context, p string) ([]byte, error) {
	fs, err := filesystem.New(ctx, p)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

package exfat

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
)

func BenchmarkFuzzBody(b *testing.B) {
	data := seed(b)
	data = append(data, make([]byte, fuzzVolume-len(data))...)
	for b.Loop() {
		fsys, err := New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		fsys.Walk(context.Background(), func(file *fs.File) error {
			if r, err := fsys.Open(file); err == nil {
				io.Copy(io.Discard, r)
			}
			return nil
		})
		fsys.Unallocated()
	}
}

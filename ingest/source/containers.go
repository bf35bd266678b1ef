package source

import (
	"io"

	"github.com/evidx/evidx/ingest/source/vhd"
)

func init() {
	containerReaders = append(containerReaders, containerReader{
		detect: vhd.Detect,
		open: func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error) {
			d, err := vhd.Open(r, size, name, open)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
	})
}

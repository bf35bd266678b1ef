package source

import (
	"io"

	"github.com/evidx/evidx/ingest/source/qcow2"
	"github.com/evidx/evidx/ingest/source/vhd"
	"github.com/evidx/evidx/ingest/source/vhdx"
	"github.com/evidx/evidx/ingest/source/vmdk"
)

// The virtual-disk readers, tried in this order by Open.
func init() {
	containerReaders = append(containerReaders,
		containerReader{detect: vhd.Detect, open: func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error) {
			return asVirtual(vhd.Open(r, size, name, open))
		}},
		containerReader{detect: vhdx.Detect, open: func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error) {
			return asVirtual(vhdx.Open(r, size, name, open))
		}},
		containerReader{detect: vmdk.Detect, open: func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error) {
			return asVirtual(vmdk.Open(r, size, name, open))
		}},
		containerReader{detect: qcow2.Detect, open: func(r io.ReaderAt, size int64, name string, open func(string) (io.ReaderAt, int64, error)) (VirtualDisk, error) {
			return asVirtual(qcow2.Open(r, size, name, open))
		}},
	)
}

// asVirtual keeps a typed nil *Disk from becoming a non-nil interface.
func asVirtual[D VirtualDisk](d D, err error) (VirtualDisk, error) {
	if err != nil {
		return nil, err
	}
	return d, nil
}

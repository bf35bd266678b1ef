// Package probe opens a disk image with every file-system reader evidx has.
// It exists because package fs cannot import its own readers (they import
// fs for its types); callers that want a whole disk read use OpenDisk here.
package probe

import (
	"io"
	"time"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/ingest/fs/apfs"
	"github.com/evidx/evidx/ingest/fs/exfat"
	"github.com/evidx/evidx/ingest/fs/ext"
	"github.com/evidx/evidx/ingest/fs/fat"
	"github.com/evidx/evidx/ingest/fs/hfsplus"
	"github.com/evidx/evidx/ingest/fs/iso"
	"github.com/evidx/evidx/ingest/fs/ntfs"
	"github.com/evidx/evidx/ingest/fs/zipfs"
)

// Options returns one fs.WithOpener per file-system family evidx reads.
func Options() []fs.Option { return OptionsIn(nil) }

// OptionsIn is Options with the time zone of the file systems that store
// local times (FAT; exFAT entries without a UTC offset); nil leaves them
// read as UTC, with a problem saying so.
func OptionsIn(loc *time.Location) []fs.Option {
	fatOpen, exfatOpen := fat.Open, exfat.Open
	if loc != nil {
		fatOpen, exfatOpen = fat.OpenIn(loc), exfat.OpenIn(loc)
	}
	return []fs.Option{
		fs.WithOpener("fat", fatOpen),
		fs.WithOpener("exfat", exfatOpen),
		fs.WithOpener("ext", ext.Open),
		fs.WithOpener("iso9660", iso.Open),
		fs.WithOpener("ntfs", ntfs.Open),
		fs.WithOpener("apfs", apfs.Open),
		fs.WithOpener("zip", zipfs.Open),
		fs.WithOpener("hfsplus", hfsplus.Open),
	}
}

// OpenDisk is fs.OpenDisk with every reader: partitions found, each file
// system opened read-only, unknown ones left whole to the carver.
func OpenDisk(r io.ReaderAt, size int64) (*fs.Disk, error) {
	return fs.OpenDisk(r, size, Options()...)
}

// OpenDiskIn is OpenDisk reading local times in loc.
func OpenDiskIn(r io.ReaderAt, size int64, loc *time.Location) (*fs.Disk, error) {
	return fs.OpenDisk(r, size, OptionsIn(loc)...)
}

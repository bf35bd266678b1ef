// Package fs finds the volumes of a disk image (MBR with extended partitions,
// GPT, or a bare file system) and reads the file systems on them read-only:
// allocated and deleted files, their byte runs in the image, and the
// unallocated space the carver works on. Each file-system reader lives in a
// subpackage (fat, exfat, ntfs, ext, iso, apfs, hfsplus, zipfs) and implements FileSystem.
//
// ReadPartitions reads the table alone. OpenDisk also opens each volume
// with the readers passed as options; package ingest/fs/probe passes all
// of them (probe.OpenDisk), because this package cannot import its readers.
// A Disk's Walk reports files with Run offsets in the image, Open reads a
// file's content, and Unallocated gives the carver every byte range no
// file system claims. Select and Only pick one volume by index or start
// sector, as TSK's -o does.
package fs

import (
	"context"
	"io"
	"strings"
	"time"
)

// FileSystem is one file system opened read-only on a volume. Offsets it
// reports (Run.Offset, Range.Off) are relative to the start of the volume.
// Implementations must not panic on corrupt input: damaged structures are
// reported through File.Err or as errors naming the offset.
type FileSystem interface {
	// Type names the file system: "fat12", "fat16", "fat32", "ntfs", "ext2",
	// "ext3", "ext4", "iso9660", "apfs", "exfat", "hfsplus", "hfsx", "zip".
	Type() string
	// Walk calls fn for every file and directory, allocated and deleted,
	// in a stable order. A non-nil error from fn stops the walk and is
	// returned. Damage met on the way is reported as Problems, not errors.
	Walk(ctx context.Context, fn func(*File) error) error
	// Open returns the content of a file Walk reported. For deleted files it
	// is what the surviving allocation says (File.Recoverable).
	Open(f *File) (io.Reader, error)
	// Unallocated returns the byte ranges of the volume that the file system
	// does not allocate to any file (from FAT, $Bitmap, block bitmaps),
	// sorted and merged.
	Unallocated() ([]Range, error)
	// Problems lists damage found so far, each naming its offset.
	Problems() []string
}

// File is one directory entry, inode or MFT record.
type File struct {
	Path    string    `json:"path"`            // "/dir/name", or "/dir/name:stream" for an NTFS data stream, "/dir/name/..namedfork/rsrc" for an HFS+ resource fork; names are data, never host paths
	Size    int64     `json:"size"`            // bytes of content
	Type    string    `json:"type"`            // "file", "dir", "symlink", "other"
	Deleted bool      `json:"deleted"`         // not allocated any more
	Inode   uint64    `json:"inode"`           // inode, MFT entry or first cluster, as the file system numbers its files
	Mtime   time.Time `json:"mtime,omitzero"`  // content modified
	Atime   time.Time `json:"atime,omitzero"`  // accessed
	Ctime   time.Time `json:"ctime,omitzero"`  // metadata changed (NTFS: MFT entry changed)
	Btime   time.Time `json:"crtime,omitzero"` // created
	// Mode is the Unix st_mode (type and permission bits) where the file
	// system records one (ext), else 0; UID and GID its owner there.
	Mode uint32 `json:"mode,omitempty"`
	UID  uint32 `json:"uid,omitempty"`
	GID  uint32 `json:"gid,omitempty"`
	Runs []Run  `json:"byte_runs,omitempty"`
	// Recoverable says Open can return the content: always for allocated
	// files; for deleted ones when the reader could map their content to
	// clusters that are still free (Recovery says how, and how sure).
	Recoverable bool `json:"recoverable"`
	// Recovery says how a deleted file's content was mapped and whether
	// its bytes were checked: a method, "contiguous" (the clusters from
	// the start on, all free) or "skip-allocated" (as tsk_recover: the
	// free clusters from the start on, stepping over clusters now in
	// use) or "fat-chain" (exFAT: the FAT chain the deletion left, every
	// cluster of it free), then optionally "+verified" (the format's own checksums cover
	// every byte and match: ZIP member CRC-32s and directory offsets, PNG
	// chunk CRCs, gzip CRC-32 and length), "+plausible" (head and tail
	// structure of a format without content checksums match: PDF, JPEG;
	// the middle is not proven) or "+mismatch" (the check failed, Err
	// says where: the bytes are not, or not all, the file's). Without a
	// suffix the type allowed no check. Empty for allocated files.
	Recovery string `json:"recovery,omitempty"`
	Err      string `json:"error,omitempty"` // why the content or metadata is damaged
}

// Run maps Length bytes of a file starting at file offset Logical to Offset
// in the volume (the image, once Walk on a disk adds the volume's start).
// Sparse runs have no Offset.
type Run struct {
	Logical int64 `json:"file_offset"`
	Offset  int64 `json:"img_offset"`
	Length  int64 `json:"len"`
	Sparse  bool  `json:"sparse,omitempty"`
}

// AppendRun adds n bytes at volume offset off to the end of a file's runs
// (the next logical bytes), growing the last run when off follows it.
func AppendRun(runs []Run, off, n int64) []Run {
	if k := len(runs); k > 0 && !runs[k-1].Sparse && runs[k-1].Offset+runs[k-1].Length == off {
		runs[k-1].Length += n
		return runs
	}
	var logical int64
	if k := len(runs); k > 0 {
		logical = runs[k-1].Logical + runs[k-1].Length
	}
	return append(runs, Run{Logical: logical, Offset: off, Length: n})
}

// Range is a byte range [Off, Off+Len).
type Range struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// AppendErr appends b to the error text a of a File (File.Err), unless a
// already says it.
func AppendErr(a, b string) string {
	switch {
	case a == "":
		return b
	case strings.Contains(a, b):
		return a
	}
	return a + "; " + b
}

// NameComponent makes one on-disk name a path component: '%' becomes
// "%25" and '/' "%2F" (so that a name never splits into two components
// and the mapping stays reversible), and a name that is "." or ".." (not
// the directory's own links, which readers skip) becomes "%2E" or
// "%2E%2E". suspicious says a '/' or a dot name was escaped: a name no
// honest file system writes, which the reader records as a problem.
func NameComponent(raw string) (name string, suspicious bool) {
	switch raw {
	case ".":
		return "%2E", true
	case "..":
		return "%2E%2E", true
	}
	if !strings.ContainsAny(raw, "%/") {
		return raw, false
	}
	suspicious = strings.Contains(raw, "/")
	return strings.NewReplacer("%", "%25", "/", "%2F").Replace(raw), suspicious
}

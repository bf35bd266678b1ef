// Package parse holds the one error type of evidx's binary parsers
// (volume systems, file systems, EWF, the carver's validators): which
// structure was being read, at which byte offset, in which file, and why.
// Dataset rows have a line or table row instead of an offset and use
// ingest/records' ParseError.
package parse

import "fmt"

// Error locates damage in untrusted input.
type Error struct {
	Path   string // the file read, when the parser knows it ("" inside an image)
	Format string // the format being parsed ("ext", "ntfs", "carve"; "" for a partition table)
	Op     string // the structure read: "superblock", "mft entry 12", "gpt header"
	Offset int64  // byte offset in the file, image or volume
	Err    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s at %#x: %v", e.Op, e.Offset, e.Err)
	if e.Format != "" {
		s = e.Format + ": " + s
	}
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

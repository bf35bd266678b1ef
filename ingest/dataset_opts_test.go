package ingest

import "github.com/evidx/evidx/ingest/records"

// smallChunks makes many chunks from small test files.
func smallChunks() records.Options { return records.Options{ChunkSize: 4096} }

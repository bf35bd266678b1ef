package index

import "encoding/json"

// A load computed elsewhere (evidx-beam load) arrives as a directory: per
// shard a file of ImportEntry JSON lines (shard-NNN.jsonl) and the manifest
// (ImportManifestName) that says what was read and what was written. The
// types live here so the writer and `evidx dataset import` share them.

// ImportManifestName is the manifest's file name in an import directory.
const ImportManifestName = "manifest.json"

// ImportEntry is one identity of one input file: how often the file holds
// it and where it was first seen, in file order.
type ImportEntry struct {
	Kind        string `json:"kind"`
	Value       string `json:"value"`
	File        int    `json:"file"` // ImportInput.Index
	Occurrences int64  `json:"occurrences"`
	FirstLoc    string `json:"first_loc"`
}

// ImportInput is one input file of the job.
type ImportInput struct {
	Index  int    `json:"index"`
	Path   string `json:"path"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Error  string `json:"error,omitempty"` // the file could not be read
	// Records is the file's persons record file (persons.RecordFileMagic,
	// then its records in file order: what `dataset add` of the file
	// records), named records-NNNNNN.rec. Manifests written before the
	// job recorded them have none: such sources are not linked.
	Records *ImportOutput `json:"records,omitempty"`
}

// ImportOutput is one file the job wrote, with its SHA-256.
type ImportOutput struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ImportManifest describes an import directory: the job (tool, runner,
// job id, times), its inputs and outputs, and the count report of the run
// (what `evidx count --json` prints for the inputs: rows, rejected,
// invalid, formats, column roles and problems per file).
type ImportManifest struct {
	Tool     string          `json:"tool"`
	Runner   string          `json:"runner"`
	JobID    string          `json:"job_id"`
	Shards   int             `json:"shards"`
	Started  string          `json:"started"`
	Finished string          `json:"finished"`
	Inputs   []ImportInput   `json:"inputs"`
	Outputs  []ImportOutput  `json:"outputs"`
	Count    json.RawMessage `json:"count"`
}

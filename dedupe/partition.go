// Package dedupe counts distinct identities exactly, out of core: identities
// are partitioned by hash, and each partition is deduplicated by comparing
// the full normalised bytes.
package dedupe

import "github.com/cespare/xxhash/v2"

// Partition returns the partition (and index shard) in [0, n) of an
// identity. The kind is part of the key so that equal strings of different
// kinds are different identities. It is the one function both the dedupe
// and the index shards use, so a partition's keys are a shard's keys.
func Partition(kind, value string, n int) int {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(kind)
	d.Write([]byte{0})
	d.WriteString(value)
	return int(d.Sum64() % uint64(n))
}

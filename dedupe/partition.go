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
	return int(Hash(kind, value) % uint64(n))
}

// Hash is the 64-bit xxhash of kind, a zero byte, and value: the key hash
// Partition reduces modulo n. Hashes choose partitions and speed up
// lookups; they never decide equality.
func Hash(kind, value string) uint64 {
	// Short keys (nearly all) are hashed from a small stack buffer: one
	// call instead of a streaming digest.
	var buf [48]byte
	if len(kind)+1+len(value) <= len(buf) {
		n := copy(buf[:], kind)
		buf[n] = 0
		n++
		n += copy(buf[n:], value)
		return xxhash.Sum64(buf[:n])
	}
	var d xxhash.Digest
	d.Reset()
	d.WriteString(kind)
	d.Write([]byte{0})
	d.WriteString(value)
	return d.Sum64()
}

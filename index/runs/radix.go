package runs

import (
	"math/bits"
	"slices"
)

// sortKeys sorts a shard's keys like compareKeys, by an MSD radix sort
// over the 24 bytes of (k0, k1, k2): a pdqsort over the same keys spent
// most of a load's sort time in comparisons of values that share long
// prefixes ("+86138…"). Each pass scatters the keys into tmp (len(tmp) >=
// len(a)) by one byte and copies them back: sequential reads and a few
// sequential write streams, which an in-place permutation was not. Buckets
// of at most insertionMax keys, and keys equal in all 24 bytes, are
// finished by comparison. Every step is stable: equal keys stay in the
// order they were added, which is file order.
func sortKeys(data []byte, a, tmp []key) {
	radixSort(data, a, tmp[:len(a)], 0)
}

const insertionMax = 16

// byteAt returns byte d (0 = most significant) of k's 24-byte prefix.
func byteAt(k *key, d int) byte {
	switch {
	case d < 8:
		return byte(k.k0 >> (56 - 8*d))
	case d < 16:
		return byte(k.k1 >> (56 - 8*(d-8)))
	default:
		return byte(k.k2 >> (56 - 8*(d-16)))
	}
}

func radixSort(data []byte, a, tmp []key, depth int) {
	sortInto(data, a, a, tmp, depth)
}

// sortInto sorts the keys in src into dst (dst may be src), using other
// (the one of the two buffers that is not dst, same length) as scratch.
// Each level scatters between the two buffers, so no pass copies back.
func sortInto(data []byte, src, dst, other []key, depth int) {
	if len(src) <= insertionMax {
		copy(dst, src) // no-op when src is dst
		insertionSort(data, dst)
		return
	}
	var count [256]int
	depth, ok := countAt(src, depth, &count)
	if !ok { // equal in all 24 bytes
		copy(dst, src)
		slices.SortStableFunc(dst, func(x, y key) int { return compareKeys(data, &x, &y) })
		return
	}
	// Scatter into the buffer that is not src; the buckets are then sorted
	// from there into dst.
	into := dst
	if &src[0] == &dst[0] {
		into = other
	}
	var next [256]int
	pos := 0
	for b := range 256 {
		next[b] = pos
		pos += count[b]
	}
	for i := range src {
		b := byteAt(&src[i], depth)
		into[next[b]] = src[i]
		next[b]++
	}
	start := 0
	for b := range 256 {
		n := count[b]
		if n == 0 {
			continue
		}
		part := into[start : start+n]
		switch {
		case &into[0] == &dst[0]: // scattered straight into dst: sort there
			if n > 1 {
				sortInto(data, part, part, src[start:start+n], depth+1)
			}
		default: // scattered into other: sort back into dst
			sortInto(data, part, dst[start:start+n], part, depth+1)
		}
		start += n
	}
}

// countAt counts the keys of a by their byte at depth, first skipping the
// bytes every key shares (the "+861" of phone numbers, the "user" of
// e-mails): one pass counts and notes where keys differ, and only when
// they all agree at depth does a second pass count at the first byte where
// they differ. ok is false when all keys agree on all 24 bytes.
func countAt(a []key, depth int, count *[256]int) (int, bool) {
	f := &a[0]
	var d0, d1, d2 uint64
	for i := range a {
		count[byteAt(&a[i], depth)]++
		d0 |= a[i].k0 ^ f.k0
		d1 |= a[i].k1 ^ f.k1
		d2 |= a[i].k2 ^ f.k2
	}
	if count[byteAt(f, depth)] != len(a) {
		return depth, true
	}
	var at int
	switch {
	case d0 != 0:
		at = bits.LeadingZeros64(d0) / 8
	case d1 != 0:
		at = 8 + bits.LeadingZeros64(d1)/8
	case d2 != 0:
		at = 16 + bits.LeadingZeros64(d2)/8
	default:
		return depth, false
	}
	*count = [256]int{}
	for i := range a {
		count[byteAt(&a[i], at)]++
	}
	return at, true
}

func insertionSort(data []byte, a []key) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && less(data, &a[j], &a[j-1]); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// less is compareKeys(data, a, b) < 0 with the common case inlined.
func less(data []byte, a, b *key) bool {
	if a.k0 != b.k0 {
		return a.k0 < b.k0
	}
	if a.k1 != b.k1 {
		return a.k1 < b.k1
	}
	if a.k2 != b.k2 {
		return a.k2 < b.k2
	}
	return compareKeys(data, a, b) < 0
}

package runs

import "slices"

// sortKeys sorts a shard's keys like compareKeys, by an in-place MSD radix
// sort (American flag sort) over the 24 bytes of (k0, k1, k2): a pdqsort
// over the same keys spent most of a load's sort time in comparisons of
// values that share long prefixes ("+86138…"). Buckets of at most
// insertionMax keys, and keys equal in all 24 bytes, are finished by
// comparison.
func sortKeys(data []byte, a []key) {
	radixSort(data, a, 0)
}

const insertionMax = 24

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

func radixSort(data []byte, a []key, depth int) {
	for {
		if len(a) <= insertionMax {
			insertionSort(data, a)
			return
		}
		if depth == 24 {
			slices.SortFunc(a, func(x, y key) int { return compareKeys(data, &x, &y) })
			return
		}
		var count [256]int
		for i := range a {
			count[byteAt(&a[i], depth)]++
		}
		if count[byteAt(&a[0], depth)] == len(a) {
			depth++ // every key has the same byte here: nothing to move
			continue
		}
		var next, end [256]int
		pos := 0
		for b := range 256 {
			next[b] = pos
			pos += count[b]
			end[b] = pos
		}
		// Cycle each misplaced key to its bucket's next free slot.
		for b := range 256 {
			for next[b] < end[b] {
				v := a[next[b]]
				for {
					d := byteAt(&v, depth)
					if int(d) == b {
						break
					}
					v, a[next[d]] = a[next[d]], v
					next[d]++
				}
				a[next[b]] = v
				next[b]++
			}
		}
		start := 0
		for b := range 256 {
			if n := count[b]; n > 1 {
				radixSort(data, a[start:start+n], depth+1)
			}
			start += count[b]
		}
		return
	}
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

package source_test

import (
	"context"
	"fmt"

	"github.com/evidx/evidx/ingest/source"
)

// Open an E01 (its first segment), hash the media in one pass and compare
// with the hashes stored in the image.
func Example() {
	img, err := source.Open("../../testdata/ewf/small.E01")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()
	res, err := source.Hash(context.Background(), img, source.Expected{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Format, res.Size, "bytes,", len(res.Segments), "segment, case", res.Header["case_number"])
	fmt.Println("stored md5 matches:", res.Stored.MD5 == res.MD5, "verified:", *res.Verified)
	// Output:
	// ewf 99840 bytes, 1 segment, case CASE-2026-042
	// stored md5 matches: true verified: true
}

package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/ingest/source/ewf"
)

// Expected holds hashes an examiner supplies (from acquisition notes), hex;
// empty fields are not compared.
type Expected struct {
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Check is one comparison of a computed hash with a stored or expected one.
type Check struct {
	Source    string `json:"source"` // "stored" (in the container) or "expected" (given by the user)
	Algorithm string `json:"algorithm"`
	Want      string `json:"want"`
	Got       string `json:"got"`
	OK        bool   `json:"ok"`
}

// Result is the outcome of hashing one image.
type Result struct {
	digest.Sums
	Format     string            `json:"format"`
	Segments   []Segment         `json:"segments"`
	SectorSize int               `json:"sector_size"`
	Stored     Stored            `json:"stored"`
	Header     map[string]string `json:"header,omitempty"`
	// Verified is true when every stored and expected hash matches and no
	// chunk failed, false on any mismatch or bad chunk, nil when there was
	// nothing to compare and nothing failed.
	Verified *bool   `json:"verified"`
	Checks   []Check `json:"checks"`
	// Errors lists, one line each, the bad chunks (with sector ranges) in
	// media order first, then the failed comparisons in Checks order.
	Errors []string `json:"errors"`
	// AcquisitionErrors are sectors the imager could not read (EWF error2);
	// informational, they do not make Verified false.
	AcquisitionErrors []string `json:"acquisition_errors,omitempty"`
}

// Hash reads the media of img once and computes MD5, SHA-1 and SHA-256
// together (digest.Sum: MD5 on one core, SHA-1 and SHA-256 on the other),
// then compares them with the hashes stored in the container and with want.
// Like ewfverify, a bad chunk does not stop the pass: it is recorded in
// Errors with its sector range, hashed as zeros, and makes Verified false.
// progress, if not nil, receives byte counts from the hashing goroutine.
// The error is only for I/O failures and cancellation.
func Hash(ctx context.Context, img *Image, want Expected, progress func(n int64)) (Result, error) {
	res := Result{
		Format:     img.Format(),
		Segments:   img.Segments(),
		SectorSize: img.SectorSize(),
		Stored:     img.Stored(),
		Header:     img.Header(),
		Checks:     []Check{},
		Errors:     []string{},
	}
	for _, r := range img.AcquisitionErrors() {
		res.AcquisitionErrors = append(res.AcquisitionErrors,
			fmt.Sprintf("sectors %d-%d not read at acquisition", r.Start, r.Start+max(r.Count, 1)-1))
	}
	sr := &skipReader{r: img, size: img.Size(), sector: int64(img.SectorSize())}
	sums, err := digest.Sum(ctx, sr, progress)
	if err != nil {
		return res, err
	}
	res.Sums = sums
	bad := len(sr.bad) > 0
	for _, ce := range sr.bad {
		res.Errors = append(res.Errors, fmt.Sprintf("bad chunk %d: sectors %d-%d (%s at offset %#x): %v",
			ce.Chunk, ce.FirstSector, ce.LastSector, ce.Path, ce.Offset, ce.Err))
	}
	compare := func(source, alg, wantHex, got string) {
		if wantHex == "" {
			return
		}
		c := Check{Source: source, Algorithm: alg, Want: strings.ToLower(strings.TrimSpace(wantHex)), Got: got}
		c.OK = c.Want == got
		if !c.OK {
			bad = true
			res.Errors = append(res.Errors, fmt.Sprintf("%s %s %s does not match computed %s", source, alg, c.Want, got))
		}
		res.Checks = append(res.Checks, c)
	}
	compare("stored", "md5", res.Stored.MD5, sums.MD5)
	compare("stored", "sha1", res.Stored.SHA1, sums.SHA1)
	if er := img.EWF(); er != nil && bad {
		if declared, stored := er.Beyond(); stored > declared {
			// Chunk data past the declared media: say whether the stored
			// hash is of the media with it, so a court sees both facts.
			if msg, err := matchesWithTail(ctx, img, er, res.Stored, stored-declared); err != nil {
				return res, err
			} else if msg != "" {
				res.Errors = append(res.Errors, msg)
			}
		}
	}
	compare("expected", "md5", want.MD5, sums.MD5)
	compare("expected", "sha1", want.SHA1, sums.SHA1)
	compare("expected", "sha256", want.SHA256, sums.SHA256)
	if bad || len(res.Checks) > 0 {
		ok := !bad
		res.Verified = &ok
	}
	return res, nil
}

// skipReader reads an image sequentially; a bad EWF chunk is recorded and
// read as zeros so the pass can go on, as ewfverify does.
type skipReader struct {
	r      io.ReaderAt
	off    int64
	size   int64
	sector int64
	bad    []*ewf.ChunkError
}

func (s *skipReader) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if rest := s.size - s.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.ReadAt(p, s.off)
	s.off += int64(n)
	var ce *ewf.ChunkError
	if errors.As(err, &ce) {
		if k := len(s.bad); k == 0 || s.bad[k-1].Chunk != ce.Chunk {
			s.bad = append(s.bad, ce) // a chunk read in two parts fails twice; list it once
		}
		end := min(int64(ce.LastSector+1)*s.sector, s.size) // media end of the bad chunk
		fill := int(min(end-s.off, int64(len(p)-n)))
		if fill <= 0 {
			return n, fmt.Errorf("source: bad chunk at media offset %#x does not advance: %w", s.off, err)
		}
		clear(p[n : n+fill])
		s.off += int64(fill)
		return n + fill, nil
	}
	if err == io.EOF && n > 0 {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("media offset %#x: %w", s.off, err)
	}
	return n, err
}

// matchesWithTail hashes the media followed by the chunk bytes past the
// declared media size and reports the stored hashes that match only so.
func matchesWithTail(ctx context.Context, img *Image, er *ewf.Reader, stored Stored, extra int64) (string, error) {
	tail, err := er.ReadBeyond()
	if err != nil {
		return "", nil // the tail is damaged: nothing to say of it
	}
	sr := &skipReader{r: img, size: img.Size(), sector: int64(img.SectorSize())}
	sums, err := digest.Sum(ctx, io.MultiReader(sr, bytes.NewReader(tail)), nil)
	if err != nil {
		return "", err
	}
	var which []string
	if stored.MD5 != "" && strings.EqualFold(stored.MD5, sums.MD5) {
		which = append(which, "MD5")
	}
	if stored.SHA1 != "" && strings.EqualFold(stored.SHA1, sums.SHA1) {
		which = append(which, "SHA-1")
	}
	if len(which) == 0 {
		return "", nil
	}
	return fmt.Sprintf("stored %s matches only with the %d bytes past the declared media size (%d bytes); the declared media do not match it (ewfverify reports FAILURE)",
		strings.Join(which, " and "), extra, img.Size()), nil
}

package source

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/digest"
	"github.com/evidx/evidx/internal/testutil"
)

// genMedia returns size bytes of seeded test media: 32 KiB blocks that are
// random (incompressible: ewfacquire stores them uncompressed), zero, or
// repeated text (compressible: stored as zlib chunks), so every EWF chunk
// kind occurs.
func genMedia(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	const block = 32 << 10
	for off := 0; off < size; off += block {
		end := min(off+block, size)
		switch rng.IntN(3) {
		case 0:
			for i := off; i < end; i++ {
				b[i] = byte(rng.Uint32())
			}
		case 1: // zeros
		case 2:
			line := []byte("record " + hex.EncodeToString([]byte{byte(rng.Uint32()), byte(rng.Uint32())}) + " phone 13800138000 mail a@b.cn\n")
			for i := off; i < end; i++ {
				b[i] = line[(i-off)%len(line)]
			}
		}
	}
	return b
}

// truth is the digest of media computed with the standard library alone.
func truth(b []byte) digest.Sums {
	m, s1, s2 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return digest.Sums{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s1[:]),
		SHA256: hex.EncodeToString(s2[:]), Size: int64(len(b))}
}

// writeRaw writes media to dir/name and returns its path.
func writeRaw(t testing.TB, dir, name string, media []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, media, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// acquire makes an EWF image of raw with ewfacquire (EnCase 6 format, MD5
// and SHA-1 stored, segSize per segment file) and returns its .E01 path.
func acquire(t testing.TB, raw, target, compression, segSize string) string {
	t.Helper()
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", target, "-f", "encase6", "-c", compression,
		"-S", segSize, "-d", "sha1", "-C", "CASE-2026-042", "-E", "EV-7", "-e", "Jane Examiner",
		"-D", "seized laptop disk", "-N", "bag 12; seal intact", raw)
	return target + ".E01"
}

// ewfSegments lists target.E01, target.E02, ... that exist.
func ewfSegments(t testing.TB, first string) []string {
	var out []string
	for n := 1; ; n++ {
		p := ewfSegmentName(first, n)
		if _, err := os.Stat(p); err != nil {
			return out
		}
		out = append(out, p)
	}
}

// readAll reads the whole image through ReadAt in uneven pieces and
// compares it with media.
func checkReadAt(t *testing.T, im *Image, media []byte) {
	t.Helper()
	if im.Size() != int64(len(media)) {
		t.Fatalf("Size %d, want %d", im.Size(), len(media))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		off := rng.IntN(len(media))
		n := min(rng.IntN(100000)+1, len(media)-off)
		buf := make([]byte, n)
		got, err := im.ReadAt(buf, int64(off))
		if err != nil || got != n {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(buf, media[off:off+n]) {
			t.Fatalf("ReadAt(%d, %d): data differs", n, off)
		}
	}
	// Past the end: io.EOF with the bytes that exist.
	buf := make([]byte, 100)
	n, err := im.ReadAt(buf, int64(len(media)-10))
	if n != 10 || err == nil {
		t.Fatalf("ReadAt across end = %d, %v; want 10, EOF", n, err)
	}
}

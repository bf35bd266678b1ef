package source

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// The committed fixture testdata/ewf/small.E01 is an ewfacquire image
// (EnCase 6, deflate:best, MD5+SHA-1 stored) of genMedia(fixtureSeed,
// fixtureSize): 3 full 32 KiB chunks and a short last one, mixing stored
// and zlib chunks. It seeds the fuzz targets. Regenerate it with
// EVIDX_UPDATE_FIXTURES=1 go test -run TestFixture ./ingest/source/
const (
	fixtureSeed = 9
	fixtureSize = 3*32768 + 3*512
	fixturePath = "../../testdata/ewf/small.E01"
)

func TestFixture(t *testing.T) {
	media := genMedia(fixtureSeed, fixtureSize)
	if os.Getenv("EVIDX_UPDATE_FIXTURES") != "" {
		dir := t.TempDir()
		raw := writeRaw(t, dir, "small.dd", media)
		e01 := acquire(t, raw, filepath.Join(dir, "small"), "deflate:best", "1MiB")
		b, err := os.ReadFile(e01)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(fixturePath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Unchanged(t, fixturePath)
	im, err := Open(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	got := make([]byte, fixtureSize)
	if n, err := im.ReadAt(got, 0); n != fixtureSize || err != nil || !bytes.Equal(got, media) {
		t.Fatalf("fixture reads %d bytes, %v; equal to generator: %v", n, err, bytes.Equal(got, media))
	}
	res, err := Hash(context.Background(), im, Expected{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sums != truth(media) || res.Verified == nil || !*res.Verified {
		t.Fatalf("fixture hash %+v verified %v, want %+v", res.Sums, res.Verified, truth(media))
	}
	var plain, packed int
	for ci := range im.EWF().Chunks() {
		if _, _, _, c, _ := im.EWF().ChunkLocation(ci); c {
			packed++
		} else {
			plain++
		}
	}
	if plain == 0 || packed == 0 {
		t.Errorf("fixture has %d stored and %d zlib chunks; want both kinds", plain, packed)
	}
}

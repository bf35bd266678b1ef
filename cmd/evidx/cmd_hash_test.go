package main

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// hashRun runs the CLI in-process: stdout and the exit code.
func hashRun(t *testing.T, argv ...string) ([]byte, int) {
	r := runCLI(t, argv...)
	if r.err != nil {
		t.Logf("evidx %v: %v", argv, r.err)
	}
	return r.stdout, r.code
}

// hashMedia is 2 MiB + 7 sectors of seeded bytes, half random, half text,
// so an E01 of it has both stored and zlib chunks and a short last chunk.
func hashMedia() []byte {
	rng := rand.New(rand.NewPCG(11, 12))
	b := make([]byte, 2<<20+7*512)
	for i := range b {
		if (i/32768)%2 == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = "evidence text "[i%14]
		}
	}
	return b
}

type hashJSON struct {
	Path     string            `json:"path"`
	MD5      string            `json:"md5"`
	SHA1     string            `json:"sha1"`
	SHA256   string            `json:"sha256"`
	Size     int64             `json:"size"`
	Verified *bool             `json:"verified"`
	Format   string            `json:"format"`
	Segments []json.RawMessage `json:"segments"`
	Stored   map[string]string `json:"stored"`
	Header   map[string]string `json:"header"`
	Errors   []string          `json:"errors"`
}

func TestHashCLI(t *testing.T) {
	dir := t.TempDir()
	media := hashMedia()
	m, s1, s2 := md5.Sum(media), sha1.Sum(media), sha256.Sum256(media)
	wantMD5, wantSHA1, wantSHA256 := hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])
	raw := filepath.Join(dir, "disk.dd")
	os.WriteFile(raw, media, 0o644)
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "disk"), "-f", "encase6", "-c", "deflate:fast",
		"-S", "1MiB", "-d", "sha1", "-C", "C-1", "-e", "Examiner One", raw)
	e01 := filepath.Join(dir, "disk.E01")
	testutil.Run(t, "split", "-b", "1M", "-a", "3", "--numeric-suffixes=1", raw, filepath.Join(dir, "disk.dd."))
	split := filepath.Join(dir, "disk.dd.001")
	evidence, _ := filepath.Glob(filepath.Join(dir, "disk*"))
	testutil.Unchanged(t, evidence...)

	for _, tc := range []struct {
		path, format string
		verified     *bool
	}{{raw, "raw", nil}, {split, "split", nil}, {e01, "ewf", new(true)}} {
		out, code := hashRun(t, "hash", "--json", tc.path)
		var got hashJSON
		if err := json.Unmarshal(out, &got); err != nil || code != 0 {
			t.Fatalf("%s: exit %d, %v\n%s", tc.path, code, err, out)
		}
		if got.MD5 != wantMD5 || got.SHA1 != wantSHA1 || got.SHA256 != wantSHA256 || got.Size != int64(len(media)) || got.Format != tc.format {
			t.Errorf("%s: %+v", tc.path, got)
		}
		if (tc.verified == nil) != (got.Verified == nil) || (got.Verified != nil && *got.Verified != *tc.verified) {
			t.Errorf("%s: verified %v, want %v", tc.path, got.Verified, tc.verified)
		}
		if tc.format == "ewf" && (got.Stored["md5"] != wantMD5 || got.Header["case_number"] != "C-1" || len(got.Segments) < 2) {
			t.Errorf("E01: stored %v header %v segments %d", got.Stored, got.Header, len(got.Segments))
		}
		if !bytes.Contains(out, []byte(`"verified": `)) {
			t.Errorf("%s: no verified key:\n%s", tc.path, out)
		}
	}

	// Several images: one object with an images array.
	out, code := hashRun(t, "hash", "--json", raw, e01)
	var multi struct {
		Images []hashJSON `json:"images"`
	}
	if err := json.Unmarshal(out, &multi); err != nil || code != 0 || len(multi.Images) != 2 || multi.Images[1].MD5 != wantMD5 {
		t.Fatalf("multi: exit %d %v %s", code, err, out)
	}

	// Expected hashes: a match verifies, a mismatch exits 1.
	if _, code := hashRun(t, "hash", "--json", "--sha256", wantSHA256, raw); code != 0 {
		t.Errorf("matching --sha256: exit %d", code)
	}
	out, code = hashRun(t, "hash", "--json", "--md5", strings.Repeat("ab", 16), raw)
	var got hashJSON
	json.Unmarshal(out, &got)
	if code != 1 || got.Verified == nil || *got.Verified {
		t.Errorf("wrong --md5: exit %d verified %v", code, got.Verified)
	}
	if _, code := hashRun(t, "hash", "--md5", "xyz", raw); code != 2 {
		t.Errorf("malformed --md5: exit %d, want 2", code)
	}
	if _, code := hashRun(t, "hash"); code != 2 {
		t.Errorf("no image: exit %d, want 2", code)
	}
	if out, code := hashRun(t, "hash", filepath.Join(dir, "missing.E01")); code != 1 || len(out) != 0 {
		t.Errorf("missing image: exit %d, stdout %q; want 1 and nothing", code, out)
	}
	if _, code := hashRun(t, "hash", dir); code != 1 {
		t.Errorf("directory: exit %d, want 1", code)
	}

	// Human output: a header that does not claim hashdeep format, one line per image.
	out, code = hashRun(t, "hash", raw)
	lines := strings.Split(string(out), "\n")
	if code != 0 || !strings.HasPrefix(lines[0], "## evidx media hashes (not a hashdeep manifest") || strings.Contains(string(out), "HASHDEEP") || !strings.Contains(string(out), "\n"+strings.Join([]string{
		strconv.Itoa(len(media)), wantMD5, wantSHA1, wantSHA256, raw}, ",")+"\n") {
		t.Errorf("hashdeep output:\n%s", out)
	}
}

// TestHashCLIBadChunk damages one byte of an uncompressed chunk's data in
// a copy of the E01: evidx exits 1 and names the chunk's sectors.
func TestHashCLIBadChunk(t *testing.T) {
	dir := t.TempDir()
	media := hashMedia()
	raw := filepath.Join(dir, "d.dd")
	os.WriteFile(raw, media, 0o644)
	testutil.Run(t, "ewfacquire", "-u", "-q", "-t", filepath.Join(dir, "d"), "-f", "encase6", "-c", "none", "-S", "8MiB", raw)
	e01 := filepath.Join(dir, "d.E01")
	b, _ := os.ReadFile(e01)
	// Chunk 2 (media bytes 65536..98303, random data) is stored as is;
	// find its first 64 bytes in the file and flip a byte after them.
	at := bytes.Index(b, media[65536:65536+64])
	if at < 0 {
		t.Fatal("chunk 2 data not found in the E01")
	}
	b[at+100] ^= 1
	os.WriteFile(e01, b, 0o644)
	out, code := hashRun(t, "hash", "--json", e01)
	var got hashJSON
	json.Unmarshal(out, &got)
	if code != 1 || got.Verified == nil || *got.Verified || len(got.Errors) == 0 || !strings.Contains(got.Errors[0], "sectors 128-191") {
		t.Fatalf("exit %d verified %v errors %q", code, got.Verified, got.Errors)
	}
}

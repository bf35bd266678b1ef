package hashset

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidx/evidx/internal/testutil"
)

func sumsOf(b []byte) Sums {
	m, s1, s2 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return Sums{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s2[:])}
}

// makeRDS writes an RDSv3-shaped database with the real SQLite library:
// FILE holds hits (upper-case hex, as NIST ships) among decoys random
// rows, with an index on sha256 when indexed.
func makeRDS(t testing.TB, path string, hits [][]byte, decoys int, indexed bool) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := `
CREATE TABLE FILE(sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, crc32 VARCHAR NOT NULL,
	file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL);
CREATE TABLE PKG(package_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
	operating_system_id INTEGER NOT NULL, manufacturer_id INTEGER NOT NULL, language VARCHAR NOT NULL, application_type VARCHAR NOT NULL);
CREATE TABLE OS(operating_system_id INTEGER NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL, manufacturer_id INTEGER NOT NULL);
CREATE TABLE MFG(manufacturer_id INTEGER NOT NULL, name VARCHAR NOT NULL);
INSERT INTO MFG VALUES(1, 'Example Corp');
INSERT INTO OS VALUES(1, 'ExampleOS', '1.0', 1);
INSERT INTO PKG VALUES(1, 'Example Suite', '2.0', 1, 1, 'English', 'Operating System');`
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO FILE VALUES(?,?,?,?,?,?,1)`)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ins := func(b []byte, name string) {
		s := sumsOf(b)
		if _, err := st.Exec(strings.ToUpper(s.SHA256), strings.ToUpper(s.SHA1), strings.ToUpper(s.MD5), "00000000", name, len(b)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	for i := range decoys {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		ins(buf, fmt.Sprintf("decoy%d.dll", i))
		if i == decoys/2 {
			for k, h := range hits {
				ins(h, fmt.Sprintf("hit%d.exe", k))
			}
		}
	}
	if decoys == 0 {
		for k, h := range hits {
			ins(h, fmt.Sprintf("hit%d.exe", k))
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if indexed {
		if _, err := db.Exec(`CREATE INDEX FILE_sha256 ON FILE(sha256)`); err != nil {
			t.Fatal(err)
		}
	}
}

func contents(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "file %d content\n%s", i, strings.Repeat("x", i))
	}
	return out
}

func TestRDS(t *testing.T) {
	files := contents(10)
	hits := files[:3]
	for _, v := range []struct{ indexed, cache, lower bool }{{true, false, false}, {true, false, true}, {false, false, false}, {false, true, false}, {false, false, true}} {
		indexed, cache := v.indexed, v.cache
		{
			t.Run(fmt.Sprintf("indexed=%v,cache=%v,lower=%v", indexed, cache, v.lower), func(t *testing.T) {
				dir := t.TempDir()
				rds := filepath.Join(dir, "RDS_2024.12.1_modern_minimal.db")
				makeRDS(t, rds, hits, 5000, indexed)
				if v.lower {
					db, _ := sql.Open("sqlite3", rds)
					if _, err := db.Exec(`UPDATE FILE SET sha256=lower(sha256)`); err != nil {
						t.Fatal(err)
					}
					db.Close()
				}
				testutil.Unchanged(t, rds)
				opts := Options{Kind: KnownGood, MemLimit: 4096} // small: the side file takes the external sort
				if cache {
					opts.CacheDir = filepath.Join(dir, "cache")
					os.Mkdir(opts.CacheDir, 0o700)
				}
				before, _ := os.ReadDir(dir)
				for round := range 3 {
					if cache && round == 2 {
						// A side file without its fence is scanned for one.
						fences, _ := filepath.Glob(filepath.Join(opts.CacheDir, "*.fence"))
						if len(fences) != 1 {
							t.Fatalf("fence files %v", fences)
						}
						os.Remove(fences[0])
					}
					s, err := Open(rds, opts)
					if err != nil {
						t.Fatal(err)
					}
					if s.Format != FormatRDS || s.Name != "RDS_2024.12.1_modern_minimal" {
						t.Errorf("format %q name %q", s.Format, s.Name)
					}
					if indexed != strings.HasPrefix(s.Indexed, "sqlite ") {
						t.Errorf("indexed %v but lookups by %q", indexed, s.Indexed)
					}
					if !indexed && s.Entries != 5003 {
						t.Errorf("entries %d, want 5003", s.Entries)
					}
					// Lookups from several goroutines at once (run with -race).
					var wg sync.WaitGroup
					for range 4 {
						wg.Go(func() {
							for i, f := range files {
								if ok, err := s.Contains(sumsOf(f)); err != nil || ok != (i < 3) {
									t.Errorf("concurrent: file %d: %v %v", i, ok, err)
								}
							}
						})
					}
					wg.Wait()
					for i, f := range files {
						ok, err := s.Contains(sumsOf(f))
						if err != nil {
							t.Fatal(err)
						}
						if ok != (i < 3) {
							t.Errorf("round %d file %d: contains %v", round, i, ok)
						}
						// Only SHA-256 is looked up in an RDS.
						if ok, _ := s.Contains(Sums{MD5: sumsOf(f).MD5}); ok {
							t.Errorf("file %d matched by MD5 alone", i)
						}
					}
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
				}
				after, _ := os.ReadDir(dir)
				if len(after) != len(before) {
					t.Errorf("directory of the RDS file changed: %d entries, was %d", len(after), len(before))
				}
				if cache {
					side, _ := filepath.Glob(filepath.Join(opts.CacheDir, "rds-*.sha256"))
					if len(side) != 1 {
						t.Errorf("cache holds %v", side)
					}
				}
			})
		}
	}
}

// TestTextLists checks lists the real tools wrote: md5sum, sha1sum,
// sha256sum (text and binary mode), hashdeep, and a plain list.
func TestTextLists(t *testing.T) {
	dir := t.TempDir()
	files := contents(8)
	var listed []string
	for i, f := range files {
		name := fmt.Sprintf("f, %d.bin", i) // a space and a comma (hashdeep's separator) in the name
		if i == 2 {
			name = fmt.Sprintf(`back\slash %d.bin`, i) // md5sum escapes the line: "\HEX  back\\slash"
		}
		if err := os.WriteFile(filepath.Join(dir, name), f, 0o600); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			listed = append(listed, name)
		}
	}
	run := func(name string, args ...string) []byte {
		testutil.NeedTool(t, name)
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}
	lists := map[string][]byte{
		"md5sum":      run("md5sum", listed...),
		"sha1sum":     run("sha1sum", listed...),
		"sha256sum":   run("sha256sum", listed...),
		"sha256sum-b": run("sha256sum", append([]string{"-b"}, listed...)...),
		"hashdeep":    run("hashdeep", listed...),
		"hashdeep-3":  run("hashdeep", append([]string{"-c", "md5,sha1,sha256,tiger"}, listed...)...),
	}
	var plain bytes.Buffer
	for i := 0; i < len(files); i += 2 {
		fmt.Fprintf(&plain, "%s\r\n", strings.ToUpper(sumsOf(files[i]).SHA256))
	}
	lists["plain"] = plain.Bytes()
	want := map[string]string{"md5sum": FormatSums, "sha1sum": FormatSums, "sha256sum": FormatSums, "sha256sum-b": FormatSums,
		"hashdeep": FormatHashdeep, "hashdeep-3": FormatHashdeep, "plain": FormatPlain}
	for name, data := range lists {
		p := filepath.Join(t.TempDir(), name+".txt")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.Unchanged(t, p)
		for _, limit := range []int{0, 48} {
			s, err := Open(p, Options{Kind: KnownBad, MemLimit: limit})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Format != want[name] || s.Name != name {
				t.Errorf("%s: format %q name %q", name, s.Format, s.Name)
			}
			for i, f := range files {
				ok, err := s.Contains(sumsOf(f))
				if err != nil {
					t.Fatal(err)
				}
				if ok != (i%2 == 0) {
					t.Errorf("%s limit %d: file %d contains %v", name, limit, i, ok)
				}
			}
			tmp := s.tmp
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if limit == 0 && tmp != "" {
				t.Errorf("%s: a list in memory made %s", name, tmp)
			}
			if limit > 0 && tmp == "" {
				t.Errorf("%s: limit %d but no side file", name, limit)
			}
			if _, err := os.Stat(tmp); tmp != "" && !os.IsNotExist(err) {
				t.Errorf("%s: side files left in %s", name, tmp)
			}
		}
	}
}

func TestTextErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no hashes"},
		{"abc  x\n", "line 1 at 0x0: 3 hex digits"},
		{strings.Repeat("a", 64) + "\nzz" + strings.Repeat("a", 62) + "\n", "line 2 at 0x41: not hex"},
		{"%%%% HASHDEEP-1.0\n12,abc\n", "line 2 at 0x12: hashdeep line before the column header"},
		{"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n12\n", "line 3 at 0x29: 1 fields, the header names 3"},
		{strings.Repeat("a", maxLine+10), "longer than"},
	} {
		_, err := parseText(strings.NewReader(tc.in), "list.txt", func(Alg, []byte) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "list.txt") {
			t.Errorf("%.40q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestSideFileLarge checks the external sort against an in-memory set
// over many hashes with repeats, and concurrent lookups (run with -race).
func TestSideFileLarge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var list bytes.Buffer
	var keys []string
	for range 20000 {
		var b [32]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		h := hex.EncodeToString(b[:])
		keys = append(keys, h)
		fmt.Fprintf(&list, "%s\n", h)
		if r.IntN(10) == 0 {
			fmt.Fprintf(&list, "%s\n", h) // a repeat
		}
	}
	p := filepath.Join(t.TempDir(), "big.txt")
	os.WriteFile(p, list.Bytes(), 0o600)
	s, err := Open(p, Options{MemLimit: 32 * 1000}) // 20+ runs
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Entries != 20000 || s.tables[SHA256].mem != nil {
		t.Fatalf("entries %d, in memory %v", s.Entries, s.tables[SHA256].mem != nil)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i, k := range keys {
				if i%4 != g {
					continue
				}
				if ok, err := s.Contains(Sums{SHA256: k}); !ok || err != nil {
					t.Errorf("key %d: %v %v", i, ok, err)
				}
				miss := []byte(k)
				miss[63] ^= 1
				if ok, _ := s.Contains(Sums{SHA256: string(miss)}); ok {
					// a one-in-a-huge chance the flipped key is listed
					t.Errorf("key %d flipped: found", i)
				}
			}
		})
	}
	wg.Wait()
}

func FuzzParseText(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte("%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n## comment\n5," + h[:32] + "," + h + ",/a,b\n"))
	f.Add([]byte(h + "  name\n" + h[:32] + " *bin\n\\" + h[:40] + "  esc\\nname\n"))
	f.Add([]byte(h + "\r\n# c\n\n" + strings.ToUpper(h) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		_, err := parseText(bytes.NewReader(data), "fuzz", func(a Alg, b []byte) error {
			if len(b) != a.Size() {
				t.Fatalf("%v hash of %d bytes", a, len(b))
			}
			got = append(got, append([]byte(nil), b...))
			return nil
		})
		if err != nil {
			return
		}
		// Every hash parsed is found in the set built from the same list.
		s := &Set{Name: "fuzz"}
		if err := s.openText(bytes.NewReader(data), "fuzz", Options{MemLimit: DefaultMemLimit}); err != nil {
			t.Fatalf("parsed, then: %v", err)
		}
		defer s.Close()
		for _, b := range got {
			var sums Sums
			switch len(b) {
			case 16:
				sums.MD5 = hex.EncodeToString(b)
			case 20:
				sums.SHA1 = hex.EncodeToString(b)
			case 32:
				sums.SHA256 = hex.EncodeToString(b)
			}
			if ok, err := s.Contains(sums); !ok || err != nil {
				t.Fatalf("%x parsed but not found: %v", b, err)
			}
		}
	})
}

// BenchmarkRDSLookup measures lookups per second on an RDS of 1M rows,
// through its sha256 index and through the side file.
func BenchmarkRDSLookup(b *testing.B) {
	dir := b.TempDir()
	files := contents(3)
	for _, indexed := range []bool{true, false} {
		rds := filepath.Join(dir, fmt.Sprintf("rds-%v.db", indexed))
		makeRDS(b, rds, files, 1_000_000, indexed)
		start := time.Now()
		s, err := Open(rds, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("open %s: %.2f s, lookups by %s", filepath.Base(rds), time.Since(start).Seconds(), s.Indexed)
		queries := make([]Sums, 1024)
		for i := range queries {
			if i%8 == 0 {
				queries[i] = sumsOf(files[i%3])
			} else {
				queries[i] = Sums{SHA256: sumsOf(fmt.Appendf(nil, "miss %d", i)).SHA256}
			}
		}
		name := "side-file"
		if indexed {
			name = "sqlite-index"
		}
		b.Run(name, func(b *testing.B) {
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Contains(queries[i%len(queries)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
		s.Close()
	}
}

// BenchmarkTextOpen measures loading a sha256sum list of 1M lines into
// memory and into a side file (a small memory bound).
func BenchmarkTextOpen(b *testing.B) {
	p := filepath.Join(b.TempDir(), "big.sha256")
	var buf bytes.Buffer
	for i := range 1_000_000 {
		s := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		fmt.Fprintf(&buf, "%x  ./dir/file%d\n", s, i)
	}
	os.WriteFile(p, buf.Bytes(), 0o600)
	for _, limit := range []int{0, 4 << 20} {
		b.Run(fmt.Sprintf("memlimit=%d", limit), func(b *testing.B) {
			for b.Loop() {
				s, err := Open(p, Options{MemLimit: limit})
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
			b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

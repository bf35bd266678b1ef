package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/evidx/evidx/dedupe"
	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/ingest/records"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// countCorpus runs ReadDataset over files with a dedupe.Counter as sink,
// as `evidx count` does, and returns per-file stats and the counts.
func countCorpus(t *testing.T, paths []string, mem int64) ([]FileStats, dedupe.Result, *bytes.Buffer) {
	t.Helper()
	c, err := dedupe.New(dedupe.Options{MemBytes: mem, TmpDir: t.TempDir(), Partitions: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var rejects bytes.Buffer
	var stats []FileStats
	for i, p := range paths {
		st, err := ReadDataset(context.Background(), p, Options{Rejects: &rejects, ConcurrentSink: true, NoLoc: i%2 == 0},
			func(b []identity.Sighting) error { return c.Add(i, b) })
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		stats = append(stats, st)
	}
	r, err := c.Result(len(paths))
	if err != nil {
		t.Fatal(err)
	}
	return stats, r, &rejects
}

func counts(m map[identity.Kind]int64) string {
	var b strings.Builder
	for _, k := range identity.Kinds() {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return b.String()
}

func truthCounts(m leakgen.Counts) string {
	var b strings.Builder
	for _, k := range identity.Kinds() {
		fmt.Fprintf(&b, "%s=%d ", k, m[string(k)])
	}
	return b.String()
}

// TestCorpusMatchesTruth generates every format, encoding and compression
// with leakgen and checks the counts against the generator's own truth,
// per file and overall, and that no file was modified.
func TestCorpusMatchesTruth(t *testing.T) {
	testutil.NeedTool(t, "bzip2")
	for _, mem := range []int64{0, 1 << 17} {
		t.Run(fmt.Sprintf("mem=%d", mem), func(t *testing.T) {
			dir := t.TempDir()
			truth, err := leakgen.Generate(dir, leakgen.Options{Seed: 11, Rows: 14 * 1500, Dup: 0.3})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, f := range truth.Files {
				paths = append(paths, f.Path)
			}
			testutil.Unchanged(t, paths...)
			stats, res, rejects := countCorpus(t, paths, mem)
			for i, f := range truth.Files {
				st := stats[i]
				name := filepath.Base(f.Path)
				if got, want := counts(res.PerFile[i]), truthCounts(f.Unique); got != want {
					t.Errorf("%s unique: %s, want %s", name, got, want)
				}
				if got, want := counts(st.Invalid), truthCounts(f.Invalid); got != want {
					t.Errorf("%s invalid: %s, want %s", name, got, want)
				}
				if st.Rows != f.Rows || st.Rejected != f.Rejected {
					t.Errorf("%s rows %d rejected %d, want %d and %d", name, st.Rows, st.Rejected, f.Rows, f.Rejected)
				}
				if st.Format != f.Format || st.Encoding != f.Encoding || st.Compression != f.Compression {
					t.Errorf("%s: format %q encoding %q compression %q, want %q %q %q", name,
						st.Format, st.Encoding, st.Compression, f.Format, f.Encoding, f.Compression)
				}
				if want := testutil.SHA256File(t, f.Path); st.SHA256 != want {
					t.Errorf("%s sha256 %s, want %s", name, st.SHA256, want)
				}
			}
			if got, want := counts(res.Unique), truthCounts(truth.Unique); got != want {
				t.Errorf("overall unique: %s, want %s", got, want)
			}
			if n := strings.Count(rejects.String(), "\n"); int64(n) != sum(truth) {
				t.Errorf("%d rejects written, want %d", n, sum(truth))
			}
		})
	}
}

func sum(t *leakgen.Truth) int64 {
	var n int64
	for _, f := range t.Files {
		n += f.Rejected
	}
	return n
}

// TestSerialSink checks that without ConcurrentSink the sink is never
// called concurrently and Loc is filled.
func TestSerialSink(t *testing.T) {
	dir := t.TempDir()
	truth, err := leakgen.Generate(dir, leakgen.Options{Seed: 5, Rows: 3000, Formats: "users.csv"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	busy := false
	n := 0
	_, err = ReadDataset(context.Background(), truth.Files[0].Path, Options{Records: smallChunks()}, func(b []identity.Sighting) error {
		if !mu.TryLock() {
			t.Error("sink called concurrently")
			return nil
		}
		defer mu.Unlock()
		if busy {
			t.Error("reentrant sink")
		}
		for _, s := range b {
			if !strings.HasPrefix(s.Loc, "line ") {
				t.Fatalf("sighting without location: %+v", s)
			}
		}
		n += len(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no sightings")
	}
}

// BenchmarkCountCSV counts a generated bench CSV (name, phone, ID, email,
// address; 30% duplicate rows) as `evidx count` does.
func BenchmarkCountCSV(b *testing.B) {
	const rows = 500_000
	path := filepath.Join(b.TempDir(), "bench.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	truth, err := leakgen.WriteBenchCSV(f, 1, rows, 0.3)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c, _ := dedupe.New(dedupe.Options{TmpDir: b.TempDir()})
		_, err := ReadDataset(context.Background(), path, Options{ConcurrentSink: true, NoLoc: true},
			func(s []identity.Sighting) error { return c.Add(0, s) })
		if err != nil {
			b.Fatal(err)
		}
		r, err := c.Result(1)
		if err != nil {
			b.Fatal(err)
		}
		if r.Unique[identity.Phone] != truth.Unique["phone"] {
			b.Fatalf("phones %d, want %d", r.Unique[identity.Phone], truth.Unique["phone"])
		}
		c.Close()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(rows*b.N), "cpu-ns/row")
}

// cpuTime is the process's user+system CPU time in ns: on a shared
// machine it measures work better than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// smallChunks makes many chunks from small test files.
func smallChunks() records.Options { return records.Options{ChunkSize: 4096} }

// TestPlainList: a text file listing one identifier per line, written
// with spaces inside, counts each line whole.
func TestPlainList(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	data := "+86 138 1234 5678\n138-1234-5678\n(+86) 139 0000 1111\nAlice@Example.com\n不是号码 12\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	stats, res, _ := countCorpus(t, []string{p}, 0)
	if got := counts(res.Unique); got != "phone=2 email=1 cn_id=0 bank_card=0 " {
		t.Errorf("unique %s", got)
	}
	if stats[0].Format != "text" || stats[0].Rows != 5 {
		t.Errorf("format %s rows %d", stats[0].Format, stats[0].Rows)
	}
}

// TestMessyShapes: shapes leakgen does not write, each with the canonical
// values the test put in (three people, spelled several ways).
func TestMessyShapes(t *testing.T) {
	phones := []string{"13812345678", "15900001111", "18611112222"}
	ids := []string{"11010519491231002X", "440304199003071234", "310104198512120011"}
	for i, id := range ids { // fix the check characters
		ids[i] = id[:17] + string(identity.CNIDCheck([]byte(id[:17])))
	}
	emails := []string{"alice@example.com", "bob@qq.com", "carol@163.com"}
	gbkPipe, _ := simplifiedchinese.GBK.NewEncoder().String(
		"姓名|手机号码|身份证|邮箱\n" +
			"张三|+86 138 1234 5678|" + ids[0] + "|ALICE@EXAMPLE.COM\n" +
			"李四|0086-159-0000-1111|" + strings.ToLower(ids[1]) + "|bob＠qq.com\n" +
			"王五|(+86)186.1111.2222|" + ids[2] + "|carol@163.com\n")
	files := map[string]string{
		"english.csv": "Name,Mobile Phone,E-mail,ID Card,Order No\n" +
			"A," + phones[0] + "," + emails[0] + "," + ids[0] + ",20231105000001\n" +
			"B,+86" + phones[1] + "," + strings.ToUpper(emails[1]) + "," + ids[1] + ",20231105000002\n" +
			"C,86" + phones[2] + "," + emails[2] + "," + ids[2][:17] + "0,20231105000003\n", // bad check
		"semicolon.csv": "x;y;z\n" + phones[0] + ";" + emails[1] + ";foo\n" + phones[1] + ";" + emails[2] + ";bar\n" +
			phones[2] + ";" + emails[0] + ";baz\n",
		"contacts.jsonl": `{"u":{"contacts":[{"v":"` + phones[0] + `"},{"v":"` + emails[0] + `"}]}}` + "\n" +
			`{"u":{"contacts":[{"v":"` + emails[1] + `"}]}}` + "\n" +
			`{"u":{"contacts":[{"v":"+86 ` + phones[2] + `"},{"v":"` + ids[2] + `"}]}}` + "\n",
		"gbk_pipe.txt": gbkPipe,
		"dump.sql": "-- x\nCREATE TABLE t (`id` int, `tel` varchar(20), `mail` text);\n" +
			"INSERT INTO t VALUES (1,'" + phones[0] + "','" + emails[0] + "');\n" +
			"@@ garbage @@\n" +
			"INSERT INTO t VALUES (2,'" + phones[1] + "',NULL),(3,'not a phone','x@y');\n",
	}
	want := map[string]string{
		"english.csv":    "phone=3 email=3 cn_id=2 bank_card=0 ",
		"semicolon.csv":  "phone=3 email=3 cn_id=0 bank_card=0 ",
		"contacts.jsonl": "phone=2 email=2 cn_id=1 bank_card=0 ",
		"gbk_pipe.txt":   "phone=3 email=3 cn_id=3 bank_card=0 ",
		"dump.sql":       "phone=2 email=1 cn_id=0 bank_card=0 ",
	}
	dir := t.TempDir()
	var names, paths []string
	for name, data := range files {
		names = append(names, name)
		p := filepath.Join(dir, name)
		paths = append(paths, p)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stats, res, _ := countCorpus(t, paths, 0)
	for i, name := range names {
		if got := counts(res.PerFile[i]); got != want[name] {
			t.Errorf("%s: %s, want %s (format %s)", name, got, want[name], stats[i].Format)
		}
	}
	if got := counts(res.Unique); got != "phone=3 email=3 cn_id=3 bank_card=0 " {
		t.Errorf("overall %s", got)
	}
	if st := stats[indexOf(names, "english.csv")]; st.Invalid[identity.CNID] != 1 {
		t.Errorf("english.csv invalid %v, want 1 cn_id", st.Invalid)
	}
	if st := stats[indexOf(names, "dump.sql")]; st.Rejected != 1 || st.Rows != 3 || st.Invalid[identity.Phone] != 0 || st.Invalid[identity.Email] != 1 {
		t.Errorf("dump.sql rows %d rejected %d invalid %v", st.Rows, st.Rejected, st.Invalid)
	}
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// TestHeaderShorterThanRows: a header naming fewer columns than the rows
// hold must not break the reader; extra columns are sniffed by value.
func TestHeaderShorterThanRows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "short.csv")
	var b strings.Builder
	b.WriteString("name,phone\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "n%d,1381234%04d,u%d@example.com\n", i, i, i)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, res, _ := countCorpus(t, []string{p}, 0)
	if got := counts(res.Unique); got != "phone=20 email=20 cn_id=0 bank_card=0 " {
		t.Errorf("unique %s", got)
	}
}

// FuzzReadDataset runs the whole pipeline (reader, roles, normalisers) on
// arbitrary file contents: no panics, every sighting canonical.
func FuzzReadDataset(f *testing.F) {
	f.Add([]byte("name,phone\n张三,+86 138 1234 5678\n"))
	f.Add([]byte("a----13812345678----11010519491231002x\n"))
	f.Add([]byte(`{"u":{"c":[{"v":"a@b.com"},{"v":"13812345678"}]}}` + "\n"))
	f.Add([]byte("INSERT INTO t (tel) VALUES ('13812345678'),('x');\n"))
	f.Add([]byte("free text 13812345678 and a@b.com\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		opts := Options{Workers: 2, SampleRows: 50, Records: records.Options{ChunkSize: 128, MaxSpill: 1 << 20, TmpDir: t.TempDir()}}
		_, _ = ReadDataset(context.Background(), p, opts, func(b []identity.Sighting) error {
			for _, s := range b {
				if v, r := identity.Normalize(s.Kind, s.Value); r != identity.Valid || v != s.Value {
					t.Fatalf("non-canonical sighting %+v", s)
				}
			}
			return nil
		})
	})
}

// TestJoinKeys: the key columns of database tables, including those whose
// header names no identity ("uid", "id", "user_id" are never sniffed), are
// the join keys the persons linking reads; a table's own "id" is
// "<table>_id"; outside databases nothing is a key.
func TestJoinKeys(t *testing.T) {
	for _, c := range []struct {
		col, table string
		kind       identity.Kind
		key        string
	}{
		{"uid", "contacts", KindKey, "uid"},
		{"id", "customer", KindKey, "customer_id"},
		{"customer_id", "login", KindKey, "customer_id"},
		{"user_id", "orders", KindKey, "user_id"},
		{"cid", "login", KindKey, "cid"},
		{"uid", "", "", ""},
		{"id_no", "login", "", ""}, // an ID number column, an identity
		{"手机号", "t", "", ""},
		{"name", "t", identity.Name, ""},
		{"qq", "t", "", ""},
	} {
		k, key := attrRole(c.col, c.table)
		if k != c.kind || key != c.key {
			t.Errorf("attrRole(%q, %q) = %q %q, want %q %q", c.col, c.table, k, key, c.kind, c.key)
		}
	}
	// A dump whose login rows join customer rows by customer_id = id: each
	// row's sightings carry the key, the same value in both tables.
	id2 := "44030419900307123" + string(identity.CNIDCheck([]byte("44030419900307123")))
	dump := "CREATE TABLE `customer` (`id` int, `name` varchar(20), `phone` varchar(20));\n" +
		"INSERT INTO `customer` VALUES (7,'张伟','13812345678'),(8,'李娜','13900001111');\n" +
		"CREATE TABLE `login` (`lid` int, `customer_id` int, `id_no` varchar(18));\n" +
		"INSERT INTO `login` VALUES (1,8,'11010519491231002X'),(2,7,'" + id2 + "');\n"
	p := filepath.Join(t.TempDir(), "shop.sql")
	if err := os.WriteFile(p, []byte(dump), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Unchanged(t, p)
	keys := map[string]string{} // key value -> identities of its rows
	var mu sync.Mutex
	_, err := ReadDataset(context.Background(), p, Options{Attributes: true}, func(ss []identity.Sighting) error {
		mu.Lock()
		defer mu.Unlock()
		byLoc := map[string][]identity.Sighting{}
		for _, s := range ss {
			byLoc[s.Loc] = append(byLoc[s.Loc], s)
		}
		for _, row := range byLoc {
			key, ids := "", ""
			for _, s := range row {
				if s.Kind == KindKey && strings.HasPrefix(s.Value, "customer_id=") {
					key = s.Value
				} else if s.Kind.IsIdentity() {
					ids += string(s.Kind) + ":" + s.Value + " "
				}
			}
			if key != "" {
				keys[key] += ids
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !strings.Contains(keys["customer_id=7"], "+8613812345678") || !strings.Contains(keys["customer_id=7"], id2) ||
		!strings.Contains(keys["customer_id=8"], "+8613900001111") || !strings.Contains(keys["customer_id=8"], "11010519491231002X") {
		t.Errorf("join keys %q", keys)
	}
}

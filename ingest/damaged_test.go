package ingest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/identity"
	"github.com/evidx/evidx/internal/testutil"
)

// TestSQLiteDamagedTable: a SQLite dataset with one damaged table page
// loses that table's rows from the damage on, not the file: every row of
// the intact table is read, and the loss is named in the problems. The
// database is made by the sqlite3 shell; the damaged page is one of the
// other table's leaves (found with dbstat).
func TestSQLiteDamagedTable(t *testing.T) {
	testutil.NeedTool(t, "sqlite3")
	dir := t.TempDir()
	db := filepath.Join(dir, "two.sqlite")
	var sql strings.Builder
	sql.WriteString("PRAGMA page_size=4096; CREATE TABLE a(phone TEXT); CREATE TABLE b(email TEXT); BEGIN;\n")
	const nb = 2857
	for i := range 4000 {
		fmt.Fprintf(&sql, "INSERT INTO a VALUES('138%08d');\n", i)
	}
	for i := range nb {
		fmt.Fprintf(&sql, "INSERT INTO b VALUES('user%d@example.com');\n", i)
	}
	sql.WriteString("COMMIT;\n")
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(sql.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	leaf := testutil.Run(t, "sqlite3", db, "SELECT pageno FROM dbstat WHERE name='a' AND pagetype='leaf' LIMIT 1 OFFSET 3")
	page, err := strconv.Atoi(strings.TrimSpace(string(leaf)))
	if err != nil {
		t.Fatalf("dbstat leaf page %q: %v", leaf, err)
	}
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(strings.Repeat("\xff", 64)), int64(page-1)*4096) // the page header: not a b-tree page any more
	f.Close()
	testutil.Unchanged(t, db)

	seen := map[identity.Kind]map[string]bool{identity.Phone: {}, identity.Email: {}}
	st, err := ReadDataset(context.Background(), db, Options{Records: smallChunks()}, func(b []identity.Sighting) error {
		for _, s := range b {
			seen[s.Kind][s.Value] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadDataset: %v", err)
	}
	if n := len(seen[identity.Email]); n != nb {
		t.Errorf("intact table: %d emails read, want %d", n, nb)
	}
	if n := len(seen[identity.Phone]); n == 0 || n >= 4000 {
		t.Errorf("damaged table: %d phones read, want the rows before the damage (0 < n < 4000)", n)
	}
	if !strings.Contains(strings.Join(st.Problems, "\n"), "lost: sqlite rows") {
		t.Errorf("the damaged table is not named in the problems: %q", st.Problems)
	}
}

// TestOverlongLine: a CSV line longer than the record limit (the default
// 64 MiB, and a small limit with small chunks so the skip crosses many
// chunk reads) costs only itself: every phone before and after it is read,
// with its own line number, and the skipped line is named in the problems.
func TestOverlongLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "long.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const before, after = 300, 500
	fmt.Fprintf(f, "name,phone\n")
	for i := range before {
		fmt.Fprintf(f, "a%d,139%08d\n", i, i)
	}
	long := 64<<20 + 12345
	chunk := []byte(strings.Repeat("x", 1<<20))
	f.WriteString("junk,")
	for n := 0; n < long; n += len(chunk) {
		f.Write(chunk[:min(len(chunk), long-n)])
	}
	f.WriteString("\n")
	for i := range after {
		fmt.Fprintf(f, "b%d,137%08d\n", i, i)
	}
	f.Close()
	testutil.Unchanged(t, path)
	for _, o := range []Options{{}, {Records: smallChunks()}} {
		seen := map[string]bool{}
		st, err := ReadDataset(context.Background(), path, o, func(b []identity.Sighting) error {
			for _, s := range b {
				if s.Kind == identity.Phone {
					seen[s.Value] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ReadDataset: %v", err)
		}
		if len(seen) != before+after {
			t.Errorf("chunk %d: %d phones read, want %d", o.Records.ChunkSize, len(seen), before+after)
		}
		for _, p := range []string{"+8613900000000", "+8613900000299", "+8613700000000", "+8613700000499"} {
			if !seen[p] {
				t.Errorf("chunk %d: %s not read", o.Records.ChunkSize, p)
			}
		}
		probs := strings.Join(st.Problems, "\n")
		if !strings.Contains(probs, fmt.Sprintf("line %d: record of", before+2)) || !strings.Contains(probs, fmt.Sprintf("resumed at line %d", before+3)) {
			t.Errorf("chunk %d: the skipped line %d is not named: %q", o.Records.ChunkSize, before+2, probs)
		}
	}
}

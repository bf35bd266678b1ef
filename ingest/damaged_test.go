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

package custody

import (
	"context"
	"path/filepath"
	"testing"
)

// TestFileModeOwner: a file's mode and owner are stored and read back, and
// a case made before the columns existed gets them on open (its rows: 0).
func TestFileModeOwner(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "case")
	c, err := Init(ctx, dir, Meta{CaseNumber: "M-1", Examiner: "E"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddEvidence(ctx, &Evidence{ID: "EV1", Format: "raw", Size: 1 << 20, SectorSize: 512}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddFile(ctx, File{EvidenceID: "EV1", Volume: 1, Path: "/old", Size: 1}); err != nil {
		t.Fatal(err)
	}
	// As an older evidx left it: no mode, uid, gid columns.
	for _, q := range []string{
		`CREATE TABLE files_old(id INTEGER PRIMARY KEY, evidence_id TEXT NOT NULL REFERENCES evidence(id), volume INTEGER NOT NULL,
			path TEXT NOT NULL, size INTEGER NOT NULL, type TEXT NOT NULL DEFAULT 'file', deleted INTEGER NOT NULL DEFAULT 0,
			inode INTEGER NOT NULL DEFAULT 0, mtime TEXT, atime TEXT, ctime TEXT, crtime TEXT, byte_runs_json TEXT NOT NULL DEFAULT '[]',
			md5 TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '', recoverable INTEGER NOT NULL DEFAULT 0,
			error TEXT NOT NULL DEFAULT '', object TEXT REFERENCES objects(sha256))`,
		`INSERT INTO files_old SELECT id, evidence_id, volume, path, size, type, deleted, inode, mtime, atime, ctime, crtime,
			byte_runs_json, md5, sha256, recoverable, error, object FROM files`,
		`DROP TABLE files`,
		`ALTER TABLE files_old RENAME TO files`,
	} {
		if _, err := c.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if c, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AddFile(ctx, File{EvidenceID: "EV1", Volume: 1, Path: "/suid", Size: 2, Mode: 0o104755, UID: 1234, GID: 70000}); err != nil {
		t.Fatal(err)
	}
	got := map[string]File{}
	if err := c.Files(ctx, "EV1", func(f File) error { got[f.Path] = f; return nil }); err != nil {
		t.Fatal(err)
	}
	if f := got["/suid"]; f.Mode != 0o104755 || f.UID != 1234 || f.GID != 70000 {
		t.Errorf("/suid read back %#o %d %d", f.Mode, f.UID, f.GID)
	}
	if f, ok := got["/old"]; !ok || f.Mode != 0 || f.UID != 0 {
		t.Errorf("/old read back %+v", f)
	}
}

package custody

import (
	"context"
	"fmt"
)

// catalogSchema is the part of catalog.sqlite that custody owns. Hashes are
// lower-case hex; times are UTC RFC 3339; *_json columns hold JSON text.
// Byte offsets are bytes from the start of the evidence image (the media
// data, for E01), so every finding traces back to bytes on a named item.
const catalogSchema = `
CREATE TABLE IF NOT EXISTS case_info(
	id              INTEGER PRIMARY KEY CHECK(id = 1),
	case_number     TEXT    NOT NULL,
	examiner        TEXT    NOT NULL,
	agency          TEXT    NOT NULL DEFAULT '',
	description     TEXT    NOT NULL DEFAULT '',
	shards          INTEGER NOT NULL,            -- identity index shard count, fixed at creation
	created         TEXT    NOT NULL,
	tool            TEXT    NOT NULL,            -- evidx version (VCS revision) that created the case
	sign_public_key TEXT    NOT NULL DEFAULT '', -- hex ed25519 public key, '' when unsigned
	audit_seq       INTEGER NOT NULL DEFAULT 0,  -- seq of the last audit line (truncation check)
	audit_head      TEXT    NOT NULL DEFAULT ''  -- SHA-256 of the last audit line
);
CREATE TABLE IF NOT EXISTS evidence(
	id               TEXT    PRIMARY KEY,         -- examiner's exhibit id (--id)
	format           TEXT    NOT NULL,            -- "raw", "split", "ewf"
	size             INTEGER NOT NULL,            -- bytes of media data
	sector_size      INTEGER NOT NULL,
	stored_md5       TEXT    NOT NULL DEFAULT '', -- hashes stored in the container (E01)
	stored_sha1      TEXT    NOT NULL DEFAULT '',
	stored_sha256    TEXT    NOT NULL DEFAULT '',
	expected_md5     TEXT    NOT NULL DEFAULT '', -- hashes the examiner gave (--md5/--sha1/--sha256)
	expected_sha1    TEXT    NOT NULL DEFAULT '',
	expected_sha256  TEXT    NOT NULL DEFAULT '',
	md5              TEXT    NOT NULL,            -- computed at intake over the media data
	sha1             TEXT    NOT NULL,
	sha256           TEXT    NOT NULL,
	verified         INTEGER,                     -- 1 all given/stored hashes match, 0 mismatch or bad container, NULL nothing to compare
	hash_reason      TEXT    NOT NULL DEFAULT '', -- data hash comparison, in words
	container_json   TEXT    NOT NULL DEFAULT '[]', -- container checksum errors (bad chunks with sector ranges)
	unreadable_json  TEXT    NOT NULL DEFAULT '[]', -- [{"offset","length"}] byte ranges that could not be read
	header_json      TEXT    NOT NULL DEFAULT '{}', -- container case text (E01 header)
	added_at         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS segments(
	evidence_id TEXT    NOT NULL REFERENCES evidence(id),
	seq         INTEGER NOT NULL,                 -- 0-based order
	path        TEXT    NOT NULL,                 -- absolute host path at intake
	size        INTEGER NOT NULL,
	sha256      TEXT    NOT NULL DEFAULT '',      -- of the segment file, when computed
	PRIMARY KEY(evidence_id, seq)
);
CREATE TABLE IF NOT EXISTS volumes(
	evidence_id   TEXT    NOT NULL REFERENCES evidence(id),
	idx           INTEGER NOT NULL,               -- partition index (MBR slot, GPT entry; 1 for a bare file system)
	start         INTEGER NOT NULL,               -- bytes from the start of the image
	size          INTEGER NOT NULL,
	type          TEXT    NOT NULL DEFAULT '',    -- partition type ("0x0c", GPT GUID)
	filesystem    TEXT    NOT NULL DEFAULT '',    -- "fat32", "ntfs", "ext4", "unknown", ...
	problems_json TEXT    NOT NULL DEFAULT '[]',
	PRIMARY KEY(evidence_id, idx)
);
CREATE TABLE IF NOT EXISTS objects(
	sha256    TEXT    PRIMARY KEY,                -- objects/ab/cd/<sha256>
	md5       TEXT    NOT NULL,
	sha1      TEXT    NOT NULL,
	size      INTEGER NOT NULL,
	stored_at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS files(
	id             INTEGER PRIMARY KEY,
	evidence_id    TEXT    NOT NULL REFERENCES evidence(id),
	volume         INTEGER NOT NULL,              -- volumes.idx
	path           TEXT    NOT NULL,              -- path in the file system (data from the evidence)
	size           INTEGER NOT NULL,
	type           TEXT    NOT NULL DEFAULT 'file',
	deleted        INTEGER NOT NULL DEFAULT 0,
	inode          INTEGER NOT NULL DEFAULT 0,
	mtime          TEXT, atime TEXT, ctime TEXT, crtime TEXT,
	byte_runs_json TEXT    NOT NULL DEFAULT '[]', -- [{"file_offset","img_offset","len"}], image offsets
	md5            TEXT    NOT NULL DEFAULT '',
	sha256         TEXT    NOT NULL DEFAULT '',
	recoverable    INTEGER NOT NULL DEFAULT 0,
	error          TEXT    NOT NULL DEFAULT '',
	object         TEXT    REFERENCES objects(sha256), -- stored content, NULL when not extracted
	mode           INTEGER NOT NULL DEFAULT 0,    -- Unix st_mode where the file system records one (ext); 0 when none
	uid            INTEGER NOT NULL DEFAULT 0,
	gid            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_evidence ON files(evidence_id, volume);
CREATE TABLE IF NOT EXISTS carved(
	id             INTEGER PRIMARY KEY,
	evidence_id    TEXT    NOT NULL REFERENCES evidence(id),
	offset         INTEGER NOT NULL,              -- bytes from the start of the image
	length         INTEGER NOT NULL,
	type           TEXT    NOT NULL,              -- "jpeg", "png", "zip", ...
	byte_runs_json TEXT    NOT NULL DEFAULT '[]',
	md5            TEXT    NOT NULL DEFAULT '',
	sha256         TEXT    NOT NULL DEFAULT '',
	object         TEXT    REFERENCES objects(sha256),
	layer          TEXT    NOT NULL DEFAULT ''    -- "" on the image, else the file holding the disk carved ("p1:/VMs/a.vhd"): offsets are in that disk
);
CREATE INDEX IF NOT EXISTS carved_evidence ON carved(evidence_id, offset);
`

func (c *Case) createSchema(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, catalogSchema+custodySchema+hashsetSchema); err != nil {
		return fmt.Errorf("custody: catalog schema: %w", err)
	}
	// Columns added since the first cases were made.
	for _, col := range []struct{ table, name, def string }{
		{"carved", "layer", "TEXT NOT NULL DEFAULT ''"},
		{"files", "mode", "INTEGER NOT NULL DEFAULT 0"}, // older rows: no mode recorded
		{"files", "uid", "INTEGER NOT NULL DEFAULT 0"},
		{"files", "gid", "INTEGER NOT NULL DEFAULT 0"},
	} {
		var n int
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name=?`, col.table, col.name).Scan(&n); err != nil {
			return fmt.Errorf("custody: catalog schema: %w", err)
		}
		if n == 0 {
			// Identifiers cannot be parameters; these are constants above.
			if _, err := c.db.ExecContext(ctx, "ALTER TABLE "+col.table+" ADD COLUMN "+col.name+" "+col.def); err != nil {
				return fmt.Errorf("custody: catalog schema: add %s.%s: %w", col.table, col.name, err)
			}
		}
	}
	return nil
}

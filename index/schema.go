package index

import (
	"context"
	"database/sql"
	"fmt"
)

// shardSchema is the DDL of one shard file (index/shard-NNN.sqlite). One
// table, WITHOUT ROWID and keyed by the normalised identity and the source,
// so a lookup is one B-tree descent and a bulk insert maintains one B-tree
// (a separate identities table doubled the load's SQLite work). An
// identity's rows are adjacent: distinct identities are a streaming GROUP BY
// on the key. The identities view gives the analyst one row per identity.
// See SCHEMA.md.
const shardSchema = `
CREATE TABLE IF NOT EXISTS sightings(
	kind        TEXT    NOT NULL,   -- "phone", "email", "cn_id", "bank_card", ...
	value       TEXT    NOT NULL,   -- normalised form (E.164, lower-case email, 18-char ID)
	source_id   INTEGER NOT NULL,   -- catalog sources.id
	occurrences INTEGER NOT NULL,   -- times the identity was seen in that source
	first_loc   TEXT    NOT NULL,   -- where it was first seen ("line 12", "table t row 5")
	PRIMARY KEY(kind, value, source_id)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS identities(kind, value, first_source, sources) AS
	SELECT kind, value, min(source_id), count(*) FROM sightings GROUP BY kind, value;
CREATE TABLE IF NOT EXISTS shard_meta(
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// catalogSchema is the part of the case catalog (catalog.sqlite) the index
// owns: one row per ingested dataset file. The JSON columns hold
// {"kind": count} objects.
const catalogSchema = `
CREATE TABLE IF NOT EXISTS sources(
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL,          -- file base name or --source NAME
	sha256        TEXT    NOT NULL UNIQUE,   -- hex SHA-256 of the file as stored
	size          INTEGER NOT NULL,          -- bytes
	evidence_id   TEXT,                      -- evidence item it was found on; NULL when handed over
	evidence_path TEXT,                      -- its path inside the evidence item
	path          TEXT,                      -- host path it was read from
	format        TEXT,
	encoding      TEXT,
	compression   TEXT,
	rows          INTEGER NOT NULL DEFAULT 0,  -- records parsed
	rejected      INTEGER NOT NULL DEFAULT 0,  -- malformed records
	sightings     INTEGER NOT NULL DEFAULT 0,  -- identifiers seen (with repeats)
	invalid_json  TEXT    NOT NULL DEFAULT '{}', -- per kind: values that failed validation
	unique_json   TEXT    NOT NULL DEFAULT '{}', -- per kind: distinct identities in this source
	new_json      TEXT    NOT NULL DEFAULT '{}', -- per kind: identities the case did not hold before
	shared_json   TEXT,                      -- {"source id": n}: identities each earlier source already held; NULL if not recorded
	columns_json  TEXT,                      -- [{schema,name,index,kind,decided_by,sample_share,valid_share,values}]: column roles and why
	problems_json TEXT,                      -- ["..."]: doubts about the counts (columns that failed their role, rows yielding nothing)
	status        TEXT    NOT NULL CHECK(status IN ('loading','done')),
	started       TEXT    NOT NULL,          -- UTC RFC 3339
	finished      TEXT,                      -- UTC RFC 3339, set with status done
	seconds       REAL                       -- wall time of the load
);
CREATE TABLE IF NOT EXISTS source_origins(  -- further places the same file (same SHA-256) was found
	source_id     INTEGER NOT NULL,          -- sources.id
	evidence_id   TEXT    NOT NULL DEFAULT '', -- '' when handed over
	evidence_path TEXT    NOT NULL DEFAULT '',
	path          TEXT    NOT NULL DEFAULT '', -- host path it was read from
	added         TEXT    NOT NULL,          -- UTC RFC 3339
	PRIMARY KEY(source_id, evidence_id, evidence_path)
);
CREATE TABLE IF NOT EXISTS source_removals(  -- removals asked for and not yet carried out (see RemoveSource)
	source_id     INTEGER PRIMARY KEY,       -- sources.id
	requested     TEXT    NOT NULL,          -- UTC RFC 3339
	reason        TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS index_meta(
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`

// EnsureCatalog creates the index's tables (sources, index_meta) in the case
// catalog if they are missing, and adds the columns later versions added to
// a catalog an earlier version made. It is idempotent.
func EnsureCatalog(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, catalogSchema); err != nil {
		return fmt.Errorf("index: catalog schema: %w", err)
	}
	for _, col := range []string{"shared_json", "columns_json", "problems_json"} {
		if err := ensureColumn(ctx, db, "sources", col, "TEXT"); err != nil {
			return fmt.Errorf("index: catalog schema: %w", err)
		}
	}
	return nil
}

// ensureColumn adds a column an earlier version's table lacks. Another
// process may add it at the same moment: only an error that leaves the
// column missing counts.
func ensureColumn(ctx context.Context, db *sql.DB, table, col, typ string) error {
	has := func() (bool, error) {
		var ok bool
		err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pragma_table_info(?) WHERE name = ?)`, table, col).Scan(&ok)
		return ok, err
	}
	ok, err := has()
	if err != nil || ok {
		return err
	}
	// Table and column names are this package's constants, never input.
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+col+" "+typ); err != nil {
		if ok, qerr := has(); qerr != nil || !ok {
			return err
		}
	}
	return nil
}

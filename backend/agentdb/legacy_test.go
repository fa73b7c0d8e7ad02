package agentdb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/lastseen/lastseen/backend/agentdb"
)

// oldLayout writes an agent database as releases before the shared sqlitedb
// left it: the first schema, its record in a table named "migrations" under
// the embedded path, three queued beats and the device token.
func oldLayout(t *testing.T, path string) {
	t.Helper()
	schema, err := os.ReadFile(filepath.Join("migrations", "0001_init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		`CREATE TABLE migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_ns INTEGER NOT NULL
		)`,
		string(schema),
		`INSERT INTO migrations VALUES (1, 'migrations/0001_init.sql', 42)`,
		`INSERT INTO outbox (seq, at_ns, state, idle_s) VALUES (1, 1, 'active', 0), (2, 2, 'idle', 300), (3, 3, 'active', 0)`,
		`UPDATE counters SET value = 3 WHERE name = 'last_seq'`,
		`INSERT INTO settings (key, value) VALUES ('device_token', 'ls_dev_kept')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("old layout: %v", err)
		}
	}
}

// An agent database from the previous release opens, keeps its queue and
// settings, and has its record of migrations moved where every Lastseen
// store keeps it.
func TestOldAgentDatabaseOpensAndKeepsItsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	oldLayout(t, path)

	for round := range 2 { // the second open finds the new layout
		db, err := agentdb.Open(path, agentdb.Options{})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		if got := seqs(outbox(t, db)); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
			t.Errorf("open %d: outbox %v, want [1 2 3]", round, got)
		}
		if db.LastSeq() != 3 {
			t.Errorf("open %d: last seq %d, want 3", round, db.LastSeq())
		}
		if v, ok, err := db.Setting(ctx, agentdb.KeyDeviceToken); err != nil || !ok || v != "ls_dev_kept" {
			t.Errorf("open %d: device token %q, %v, %v", round, v, ok, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var old int
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'migrations'`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if old != 0 {
		t.Error("the old migrations table is still there")
	}
	var (
		version int
		name    string
		at      int64
	)
	if err := raw.QueryRow(`SELECT version, name, applied_ns FROM schema_migrations ORDER BY version LIMIT 1`).Scan(&version, &name, &at); err != nil {
		t.Fatal(err)
	}
	if version != 1 || name != "0001_init.sql" || at != 42 {
		t.Errorf("first migration recorded as (%d, %q, %d), want (1, \"0001_init.sql\", 42) carried over", version, name, at)
	}
}

// A database a newer agent has migrated is refused, not misread.
func TestNewerAgentDatabaseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	open(t, path, agentdb.Options{}).Close()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if db, err := agentdb.Open(path, agentdb.Options{}); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		if err == nil {
			db.Close()
		}
		t.Errorf("open a newer database: %v, want a clear refusal", err)
	}
}

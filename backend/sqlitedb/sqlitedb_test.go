package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openT(t *testing.T, path string, o Options) *sql.DB {
	t.Helper()
	db, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(`PRAGMA ` + name).Scan(&v); err != nil {
		t.Fatalf("pragma %s: %v", name, err)
	}
	return v
}

// A path that a naive "file:"+path DSN would cut at '?' or '#', or decode
// at '%', still names exactly that file.
func TestOddPathsNameTheirFile(t *testing.T) {
	for _, name := range []string{"plain.db", "with space.db", "what?.db", "hash#tag.db", "pct%20.db", "all of ?#%3f &x=1.db"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dir ?#%")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			w := openT(t, path, Options{})
			if _, err := w.Exec(`CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')`); err != nil {
				t.Fatal(err)
			}
			r := openT(t, path, Options{Readers: 2})
			var v string
			if err := r.QueryRow(`SELECT v FROM t`).Scan(&v); err != nil || v != "kept" {
				t.Fatalf("reader got %q, %v: it opened another file", v, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), name) {
					t.Errorf("stray file %q beside %q", e.Name(), name)
				}
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the database is not at its path: %v", err)
			}
		})
	}
}

func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	w := openT(t, path, Options{})
	for name, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL, the default
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"query_only":   "0",
	} {
		if got := pragma(t, w, name); got != want {
			t.Errorf("writer %s = %s, want %s", name, got, want)
		}
	}
	if got := w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer allows %d connections, want 1", got)
	}

	r := openT(t, path, Options{Readers: 3, Synchronous: "normal", BusyTimeout: time.Second})
	for name, want := range map[string]string{
		"synchronous":  "1", // NORMAL, as asked
		"foreign_keys": "1",
		"busy_timeout": "1000",
		"query_only":   "1",
	} {
		if got := pragma(t, r, name); got != want {
			t.Errorf("reader %s = %s, want %s", name, got, want)
		}
	}
	if got := r.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("reader pool allows %d connections, want 3", got)
	}
	if _, err := r.Exec(`CREATE TABLE nope (x)`); err == nil {
		t.Error("a reader wrote")
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path string
		o    Options
	}{
		{"", Options{}},
		{":memory:", Options{}},
		{"file:x.db", Options{}},
		{filepath.Join(dir, "a.db"), Options{Synchronous: "SOMETIMES"}},
		{filepath.Join(dir, "b.db"), Options{Readers: -1}},
		{filepath.Join(dir, "c.db"), Options{BusyTimeout: -time.Second}},
	} {
		if db, err := Open(tc.path, tc.o); err == nil {
			db.Close()
			t.Errorf("Open(%q, %+v) succeeded", tc.path, tc.o)
		}
	}
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFilesAreOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "x.db")
	w := openT(t, path, Options{})
	if _, err := w.Exec(`CREATE TABLE t (v); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	// Both companions exist while the writer is open in WAL mode.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if got := perm(t, p); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), got)
		}
	}
}

// A mistyped --db must not become a new, empty database in a new folder.
func TestMissingDirectoryIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "x.db")
	if db, err := Open(path, Options{}); err == nil {
		db.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing directory was created: %v", err)
	}
}

// childEnv makes the test binary a second process that opens the database
// named by its value, writes once and closes: an admin command beside a
// running service.
const childEnv = "SQLITEDB_TEST_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		db, err := Open(path, Options{})
		if err == nil {
			_, err = db.Exec(`INSERT INTO t VALUES (-1)`)
			if cerr := db.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A read pool opened beside the writer must leave the writer's locks alone:
// closing any descriptor of the database drops every POSIX lock the
// process holds on it. Once that happened, the next process to close the
// database (an admin command) believed itself the last one, checkpointed
// and deleted the WAL under the running service, whose reads then failed
// with "disk I/O error". Here a writer and its read pool stay open while
// another process opens, writes and closes; the pool still reads, and the
// WAL is still there.
func TestPoolsBesideAWriterKeepItsLocks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX advisory locks")
	}
	path := filepath.Join(t.TempDir(), "busy.db")
	w := openT(t, path, Options{})
	if _, err := w.Exec(`CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	r := openT(t, path, Options{Readers: 2})
	var n int
	if err := r.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+path)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("second process: %v\n%s", err, out)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("the WAL is gone after another process closed the database: %v", err)
	}
	if _, err := w.Exec(`INSERT INTO t VALUES (2)`); err != nil {
		t.Errorf("writer after another process closed: %v", err)
	}
	if err := r.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Errorf("pool after another process closed: %d rows, %v; want 3", n, err)
	}
}

func TestLooseFilesAreTightened(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "old.db")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`CREATE TABLE t (v); INSERT INTO t VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// As an older build or a careless copy may have left them.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path+"-wal", 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	if got := perm(t, path); got != 0o644 {
		t.Fatalf("setup: mode %v", got)
	}

	r := openT(t, path, Options{Readers: 1})
	var v string
	if err := r.QueryRow(`SELECT v FROM t`).Scan(&v); err != nil || v != "kept" {
		t.Fatalf("data after tightening: %q, %v", v, err)
	}
	for _, p := range []string{path, path + "-wal"} {
		if got := perm(t, p); got != 0o600 {
			t.Errorf("%s: mode %v after open, want 0600", filepath.Base(p), got)
		}
	}
}

func TestMigrate(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0001_users.sql":   {Data: []byte(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);`)},
		"m/0002_seed.sql":    {Data: []byte(`INSERT INTO users (name) VALUES ('ada');`)},
		"m/README.md":        {Data: []byte(`not a migration`)},
		"0009_elsewhere.sql": {Data: []byte(`not in m/`)},
	}
	db := openT(t, filepath.Join(t.TempDir(), "m.db"), Options{})
	if err := Migrate(db, fsys, "m", t0); err != nil {
		t.Fatal(err)
	}
	// A second run applies nothing: the seed row is not inserted twice.
	if err := Migrate(db, fsys, "m", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM users`); n != 1 {
		t.Errorf("%d users, want 1: a migration ran twice", n)
	}
	rows, err := db.Query(`SELECT version, name, applied_ns FROM ` + Table + ` ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			v  int
			n  string
			at int64
		)
		if err := rows.Scan(&v, &n, &at); err != nil {
			t.Fatal(err)
		}
		if at != t0.UnixNano() {
			t.Errorf("%s applied at %d, want the injected clock's %d", n, at, t0.UnixNano())
		}
		got = append(got, n)
	}
	rows.Close()
	if strings.Join(got, ",") != "0001_users.sql,0002_seed.sql" {
		t.Errorf("recorded %v", got)
	}

	// A failing migration leaves the previous version whole: its first
	// statement is rolled back with it.
	fsys["m/0003_broken.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE half (x); INSERT INTO nowhere VALUES (1);`)}
	if err := Migrate(db, fsys, "m", t0); err == nil || !strings.Contains(err.Error(), "0003_broken.sql") {
		t.Fatalf("broken migration: %v, want an error naming it", err)
	}
	if v, _ := Version(db); v != 2 {
		t.Errorf("version %d after a failed migration, want 2", v)
	}
	if n := count(`SELECT count(*) FROM sqlite_schema WHERE name = 'half'`); n != 0 {
		t.Error("the failed migration left a table behind")
	}

	// A database from a newer build is refused, not misread.
	delete(fsys, "m/0003_broken.sql")
	if _, err := db.Exec(`INSERT INTO ` + Table + ` VALUES (9, '0009_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	err = Migrate(db, fsys, "m", t0)
	if !errors.Is(err, ErrTooNew) || !strings.Contains(err.Error(), "newer than this build") || !strings.Contains(err.Error(), "9") {
		t.Errorf("newer database: %v, want ErrTooNew naming its version", err)
	}
}

func TestMigrationsRefusesBadSets(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"empty":      {},
		"no number":  {"init.sql": {}},
		"zero":       {"0000_init.sql": {}},
		"no _":       {"0001init.sql": {}},
		"duplicates": {"0001_a.sql": {}, "1_b.sql": {}},
	} {
		if ms, err := Migrations(fsys, "."); err == nil {
			t.Errorf("%s: accepted %+v", name, ms)
		}
	}
	ms, err := Migrations(fstest.MapFS{"0010_c.sql": {}, "0002_b.sql": {}, "0001_a.sql": {}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Version != 1 || ms[1].Version != 2 || ms[2].Version != 10 {
		t.Errorf("order %+v, want by number (10 after 2)", ms)
	}
}

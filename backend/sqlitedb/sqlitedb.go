// Package sqlitedb opens a SQLite file the way every Lastseen store does:
// WAL, a busy timeout, foreign keys and a chosen synchronous level on every
// connection; the file and its -wal and -shm companions private to their
// owner; one writer connection beside an optional read-only pool; and the
// store's numbered migrations applied one per transaction, refusing a
// database that a newer build has already moved on.
package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"
)

// Defaults for Options' zero values.
const (
	// DefaultBusyTimeout is how long a connection waits for another
	// process's write lock (the command line adding a user, a second agent
	// losing the single-instance race, a backup tool) before failing.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultSynchronous is SyncFull: what a store acknowledges must be on
	// the disk, not in the page cache.
	DefaultSynchronous = SyncFull
)

// The synchronous levels a store chooses between (PRAGMA synchronous).
const (
	// SyncFull fsyncs the WAL at every commit: once COMMIT returns, the
	// transaction survives a power cut as well as kill -9.
	SyncFull = "FULL"
	// SyncNormal fsyncs only at checkpoints: a commit survives a crash of
	// the process (kill -9) once COMMIT returns, but a power loss may drop
	// the last transactions (never corrupting the file). Cheaper per
	// commit, for data that can be sent again.
	SyncNormal = "NORMAL"
)

// Options say which kind of handle Open returns. The zero value is the
// writer.
type Options struct {
	// Readers, when above zero, makes Open return a pool of that many
	// read-only connections instead of the one writer connection.
	Readers int
	// Synchronous is the PRAGMA synchronous level: OFF, NORMAL, FULL or
	// EXTRA (DefaultSynchronous when empty).
	Synchronous string
	// BusyTimeout is the PRAGMA busy_timeout (DefaultBusyTimeout when zero).
	BusyTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Synchronous == "" {
		o.Synchronous = DefaultSynchronous
	}
	o.Synchronous = strings.ToUpper(o.Synchronous)
	switch o.Synchronous {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return o, fmt.Errorf("synchronous %q: want OFF, NORMAL, FULL or EXTRA", o.Synchronous)
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.BusyTimeout < 0 || o.Readers < 0 {
		return o, errors.New("busy timeout and readers must not be negative")
	}
	return o, nil
}

// Open opens the database file at path, creating it (and its directory,
// 0700) if needed. The file is made owner-only (0600) before SQLite sees it,
// and a looser existing file, -wal or -shm is tightened: SQLite creates the
// -wal and -shm files with the main file's mode, and the stores hold token
// hashes or a device token.
//
// Every pragma rides in the DSN so that every connection a pool opens gets
// it:
//
//   - journal_mode=WAL (writer): readers never block the writer nor it them,
//     and a commit is one append;
//   - synchronous: see DefaultSynchronous;
//   - busy_timeout: wait out another process's write instead of failing;
//   - foreign_keys: SQLite leaves them off by default;
//   - _txlock=immediate (writer): take the write lock at BEGIN, so a
//     transaction never fails half way on a lock upgrade;
//   - query_only (readers): a read path can never write by mistake.
//
// The writer is a single connection, so every statement on it sees every
// commit and writes never contend inside the process.
func Open(path string, opts Options) (*sql.DB, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open %q: want a database file path", path)
	}
	if err := makePrivate(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", dsn(path, opts))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	conns := max(opts.Readers, 1)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// dsn is the driver's data source name: a file: URI, so that any path
// works. SQLite decodes %XX escapes in the path; '?' and '#' would end it,
// and '%' would start an escape. The driver cuts its own parameters at the
// first '?', which must therefore be the one that starts them.
func dsn(path string, o Options) string {
	params := []string{
		"_busy_timeout=" + strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10),
		"_foreign_keys=on",
		"_synchronous=" + o.Synchronous,
	}
	if o.Readers > 0 {
		params = append(params, "_query_only=true")
	} else {
		params = append(params, "_journal_mode=WAL", "_txlock=immediate")
	}
	// Clean collapses a leading "//", which a URI would read as a host.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(path))
	return "file:" + esc + "?" + strings.Join(params, "&")
}

// makePrivate creates the file (0600) if missing, and sets an existing
// file, -wal or -shm that others may read to 0600. It never opens an
// existing database: closing any descriptor of a file drops every POSIX
// lock this process holds on it, SQLite's included, so a second Open in
// the same process (the read pool beside the writer) would silently unlock
// the first. A missing directory is an error, not created: a mistyped
// --db must not become a new, empty database somewhere.
func makePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	if runtime.GOOS == "windows" {
		// Mode bits do not express Windows' ACLs (every file reads as
		// 0666) and the per-user data dir is private already; Chmod would
		// only flip the read-only attribute, and on an -shm file SQLite
		// holds open it fails (Wine: sharing violation).
		return nil
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("make %s owner-only: %w", filepath.Base(p), err)
			}
		}
	}
	return nil
}

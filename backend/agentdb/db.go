// Package agentdb is the agent's own SQLite database: the outbox of beats
// waiting for the service, the quarantine of beats the service refused, the
// device's local history of spans, persistent counters (seq, drops) and the
// agent's settings.
//
// Every beat is committed here before anything tries to send it, so a crash,
// a sleep or an outage loses nothing that was produced. While the file
// cannot be written (a full disk, a read-only file system) beats are held
// in a bounded queue in memory instead, sent from there, and written at
// the first write that succeeds (see Trouble). The database is
// written only when a beat is produced or acknowledged: a sampling tick that
// changes nothing costs no write.
package agentdb

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DefaultMaxOutbox bounds the outbox: about two months of beats at the default
// 30 s interval, before compaction (which roughly halves a steady queue).
const DefaultMaxOutbox = 200_000

// DefaultMaxQuarantine bounds the quarantine; beyond it the oldest entries
// leave and are counted.
const DefaultMaxQuarantine = 10_000

// Options configure a DB. Zero values take defaults.
type Options struct {
	// Now is the clock for quarantine and sync times (time.Now by default).
	Now func() time.Time
	// Pulse is the agent's cadence: its window joins local-history beats into
	// spans and bounds how far compaction may thin the outbox. Default
	// presence.DefaultPulse.
	Pulse presence.Pulse
	// MaxOutbox is the most beats the outbox holds (DefaultMaxOutbox).
	MaxOutbox int
	// MaxQuarantine is the most quarantined beats kept (DefaultMaxQuarantine).
	MaxQuarantine int
	// MaxHeld is the most beats kept in memory while the file cannot be
	// written (DefaultMaxHeld).
	MaxHeld int
	// Logger receives warnings about thinned and dropped beats.
	Logger *slog.Logger
	// FailWrites, when set, is asked before every write; an error it returns
	// fails the write as a full or read-only disk does. Tests put the
	// agent on a failing disk with it.
	FailWrites func() error
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Pulse.Interval == 0 {
		o.Pulse = presence.DefaultPulse
	}
	if o.MaxOutbox == 0 {
		o.MaxOutbox = DefaultMaxOutbox
	}
	if o.MaxQuarantine == 0 {
		o.MaxQuarantine = DefaultMaxQuarantine
	}
	if o.MaxHeld == 0 {
		o.MaxHeld = DefaultMaxHeld
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// DB is the agent's database. It is safe for concurrent use: writes are
// serialised, so the loop that produces beats and the sender that settles
// them never interleave inside one another's transaction.
type DB struct {
	db   *sql.DB
	path string
	opts Options
	log  *slog.Logger

	// mu serialises write transactions and guards the cached fields below,
	// which mirror committed rows so a beat needs no read before its write.
	mu      sync.Mutex
	pulse   presence.Pulse
	lastSeq int64
	depth   int64
	// hist is the local history's fold state (its open tail and last beat);
	// histMaxID the highest history span id, so new spans take the next.
	hist      presence.DeviceState
	histMaxID int64
	commits   int64
	// relaxed: the connection runs at synchronous=NORMAL for one
	// acknowledgement (see writeRelaxed) and must be put back before any
	// other commit.
	relaxed bool
	// held is what waits in memory for the file to take writes again.
	// lastSeq and depth count it: they are what the agent sees.
	held held
}

// Open opens (creating if needed, directory included) the database at path
// and applies pending migrations. The file is readable by its owner only: it
// holds the device token.
func Open(path string, opts Options) (*DB, error) {
	opts = opts.withDefaults()
	if err := opts.Pulse.Validate(); err != nil {
		return nil, fmt.Errorf("open agent db: %w", err)
	}
	if opts.MaxOutbox < 2 || opts.MaxQuarantine < 1 || opts.MaxHeld < 1 {
		return nil, presence.Errorf(presence.EINVALID, "outbox bound must be at least 2, quarantine and memory bounds at least 1")
	}
	if path == "" {
		return nil, presence.Errorf(presence.EINVALID, "agent db path is required")
	}
	// One connection, the writer: the agent's load is tiny and a single
	// connection makes every statement see every commit without any busy
	// handling. sqlitedb keeps the file (which holds the device token)
	// readable by its owner only.
	db, err := sqlitedb.Open(path, sqlitedb.Options{Synchronous: sqlitedb.SyncFull})
	if err != nil {
		return nil, fmt.Errorf("open agent db: %w", err)
	}
	d := &DB{db: db, path: path, opts: opts, log: opts.Logger, pulse: opts.Pulse}
	if err := d.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open agent db %s: %w", path, err)
	}
	if err := d.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open agent db %s: %w", path, err)
	}
	return d, nil
}

// Close closes the database. Everything written was committed already,
// unless the file could not be written: Close tries once more to write
// what memory holds, and says what is lost when it cannot.
func (db *DB) Close() error {
	if err := db.Flush(context.Background()); err != nil {
		t := db.Trouble()
		db.log.Error("closing with beats the agent database could not take; they are lost",
			slog.Int("beats", t.Held), slog.Any("err", err))
	}
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("close agent db: %w", err)
	}
	return nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// Pulse is the cadence local history and compaction currently use.
func (db *DB) Pulse() presence.Pulse {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.pulse
}

// SetPulse changes the cadence (when the user changes the interval).
func (db *DB) SetPulse(p presence.Pulse) error {
	if err := p.Validate(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.pulse = p
	return nil
}

// migrate applies the embedded migrations not yet applied (sqlitedb.Migrate),
// after adopting the record of an agent database from a release that kept it
// in a table of its own.
func (db *DB) migrate() error {
	if err := adoptLegacyMigrations(db.db); err != nil {
		return err
	}
	return sqlitedb.Migrate(db.db, migrationFS, "migrations", db.opts.Now())
}

// legacyMigrations is where releases before the shared sqlitedb recorded
// applied migrations, by their embedded path ("migrations/0001_init.sql").
const legacyMigrations = "migrations"

// adoptLegacyMigrations moves the rows of the old table into
// sqlitedb.Table, named as sqlitedb names them, and drops the old table, in
// one transaction: without it the first migration would run again on a
// database that already holds its tables, and fail.
func adoptLegacyMigrations(db *sql.DB) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, legacyMigrations).Scan(&n); err != nil {
		return fmt.Errorf("look for the old migrations table: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := db.Begin()
	if err != nil {
		return fmt.Errorf("adopt the old migrations table: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + sqlitedb.Table + ` (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_ns INTEGER NOT NULL
		)`,
		`INSERT OR IGNORE INTO ` + sqlitedb.Table + ` (version, name, applied_ns)
			SELECT version, replace(name, 'migrations/', ''), applied_ns FROM ` + legacyMigrations,
		`DROP TABLE ` + legacyMigrations,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("adopt the old migrations table: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("adopt the old migrations table: %w", err)
	}
	return nil
}

// load fills the cached fields from the committed rows.
func (db *DB) load() error {
	if err := db.db.QueryRow(`SELECT value FROM counters WHERE name = 'last_seq'`).Scan(&db.lastSeq); err != nil {
		return fmt.Errorf("read last seq: %w", err)
	}
	// A seq counter behind the outbox can only come from a hand-edited or
	// damaged file; never hand out a seq that is already queued.
	var maxSeq sql.NullInt64
	if err := db.db.QueryRow(`SELECT COUNT(*), MAX(seq) FROM outbox`).Scan(&db.depth, &maxSeq); err != nil {
		return fmt.Errorf("count outbox: %w", err)
	}
	if maxSeq.Valid && maxSeq.Int64 > db.lastSeq {
		db.lastSeq = maxSeq.Int64
	}
	return db.loadHistory()
}

// inTx runs fn in one write transaction with db.mu held, and calls after
// (still under the lock) only once the commit succeeded, so cached fields
// never run ahead of the file.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) (after func(), err error)) error {
	return db.write(ctx, fn, nil)
}

// inTxLocked is inTx with db.mu held. What memory holds (see held) is
// written first, in the same transaction.
func (db *DB) inTxLocked(ctx context.Context, fn func(tx *sql.Tx) (after func(), err error)) (err error) {
	if db.opts.FailWrites != nil {
		if err := db.opts.FailWrites(); err != nil {
			return troubleError{err}
		}
	}
	// Writing held history folds into the cached fold state at once; a
	// transaction that does not commit puts it back.
	hist, histMaxID := db.hist, db.histMaxID
	defer func() {
		if err != nil {
			db.hist, db.histMaxID = hist, histMaxID
		}
	}()
	if err := db.restoreSyncLocked(); err != nil {
		return err
	}
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var wrote func()
	if db.held.active() {
		if wrote, err = db.writeHeld(ctx, tx); err != nil {
			return err
		}
	}
	after, err := fn(tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.commits++
	if wrote != nil {
		wrote()
	}
	if after != nil {
		after()
	}
	return nil
}

// Commits is the number of write transactions committed since Open. It is a
// diagnostic, and how tests prove that a quiet tick writes nothing.
func (db *DB) Commits() int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.commits
}

func counter(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = ?`, name).Scan(&v); err != nil {
		return 0, fmt.Errorf("read counter %s: %w", name, err)
	}
	return v, nil
}

func setCounter(ctx context.Context, tx *sql.Tx, name string, v int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = ?`, v, name); err != nil {
		return fmt.Errorf("write counter %s: %w", name, err)
	}
	return nil
}

func addCounter(ctx context.Context, tx *sql.Tx, name string, d int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + ? WHERE name = ?`, d, name); err != nil {
		return fmt.Errorf("write counter %s: %w", name, err)
	}
	return nil
}

func toNS(t time.Time) int64 { return t.UnixNano() }

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

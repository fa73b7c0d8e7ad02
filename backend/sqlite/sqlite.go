// Package sqlite is the presence service's store on SQLite: users, devices
// and token hashes, and the spans that beats build (DESIGN §3: spans, not
// raw beats).
//
// Writes go through one connection; beats through a group-commit writer that
// answers each Ingest only after the transaction holding it committed, so an
// acknowledged beat survives kill -9. Presence (every device's last beat,
// high-water mark and open tail span) lives in memory, loaded at Open and
// kept current by the writer; reads of it never touch the disk. Accounts are
// read from the database, so a user or device that the command line creates
// or revokes in another process counts at once; credentials the database
// confirmed are remembered until a change that could take one away (see
// authCache), which another process's changes reach within a second.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Group commit: a batch holds at most this many beats (plus one per
// request) in one transaction, and does not linger for company (negative
// Linger): each commit syncs the disk, and the requests that arrive during
// one sync form the next group, so groups grow with the load by themselves
// while a lone beat is written at once. A linger would only add its length
// to every answer.
const (
	ingestLinger   = -1
	ingestMaxBatch = 5000
	// readConns bounds the read pool; WAL lets readers run beside the writer.
	readConns = 4
)

// Store is a presence.Store on one SQLite database file.
type Store struct {
	opts presence.Options
	db   *sql.DB // the one writer connection
	rdb  *sql.DB // the read pool

	writer *groupcommit.Writer[ingestReq, ingestRes]
	stmts  writeStmts
	// On rdb: see authQuery, sessionQuery and authVersionQuery.
	authStmt, sessionStmt, authVersionStmt *sql.Stmt
	auth                                   *authCache

	// mu guards the in-memory presence below. The writer holds it only to
	// install a committed batch and announce it, never across disk I/O.
	mu      sync.RWMutex
	devices map[int64]*devEntry
	users   map[int64]*userEntry
	catalog int64      // the meta 'catalog' counter the maps reflect
	loadMu  sync.Mutex // serialises catalog loads (see refresh)
	// Event IDs: lastEvent is the last one handed out, eventCeil the
	// persisted bound below which they stay (see reserveEvents).
	lastEvent int64
	eventCeil int64

	wake      chan struct{} // pokes the expiry loop when a device comes online
	stop      chan struct{}
	loopDone  chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once

	// lock is held shared while the store is open, so that a restore
	// refuses to replace the file under it (see sqlitedb.Lock).
	lock *sqlitedb.Lock
}

var _ presence.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies pending
// migrations, loads every device's presence and starts the writer and the
// expiry loop, with the default Config. Close releases it.
func Open(path string, opts presence.Options) (*Store, error) {
	return OpenWith(path, opts, Config{})
}

// OpenWith is Open with a Config.
func OpenWith(path string, opts presence.Options, cfg Config) (*Store, error) {
	opts = opts.WithDefaults()
	if err := opts.Pulse.Validate(); err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" {
		return nil, presence.Errorf(presence.EINVALID, "sqlite store needs a database file path")
	}
	s := &Store{
		opts:     opts,
		devices:  map[int64]*devEntry{},
		users:    map[int64]*userEntry{},
		catalog:  -1,
		auth:     newAuthCache(),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	var err error
	if s.lock, err = sqlitedb.LockShared(path, sqlitedb.DefaultBusyTimeout); err != nil {
		return nil, err
	}
	if s.db, err = sqlitedb.Open(path, sqlitedb.Options{Synchronous: cfg.Synchronous}); err != nil {
		s.lock.Unlock()
		return nil, err
	}
	if err := sqlitedb.Migrate(s.db, migrations, "migrations", opts.Now()); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if s.rdb, err = openDB(path, false); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.stmts, err = prepareWrites(s.db); err != nil {
		s.closeDBs()
		return nil, err
	}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&s.authStmt, authQuery}, {&s.sessionStmt, sessionQuery}, {&s.authVersionStmt, authVersionQuery}} {
		if *p.dst, err = s.rdb.Prepare(p.query); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("prepare credential lookup: %w", err)
		}
	}
	ctx := context.Background()
	if err := s.seedEvents(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.refresh(ctx, s.rdb); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("load presence: %w", err)
	}
	s.writer = groupcommit.New(s.commitIngest, cfg.writerOptions())
	go s.expiryLoop()
	return s, nil
}

// openDB opens a writer (one connection, at the default synchronous
// level) or the read pool, with the pragmas every Lastseen store uses (see
// sqlitedb.Open).
func openDB(file string, writer bool) (*sql.DB, error) {
	var o sqlitedb.Options
	if !writer {
		o.Readers = readConns
	}
	return sqlitedb.Open(file, o)
}

// Event IDs must rise across restarts. Each Open starts above both the
// persisted ceiling and the clock in microseconds, and persists a new
// ceiling a reservation ahead; commits move the ceiling on before it is
// reached. So no ID is ever handed out twice, even after kill -9, and IDs
// stay near the clock (readable as a rough time, far below 2^53).
const (
	eventReserve = 1 << 20
	eventRefill  = 1 << 18 // move the ceiling when fewer IDs than this remain
)

func (s *Store) seedEvents(ctx context.Context) error {
	var ceil int64
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'event_id'`).Scan(&ceil); err != nil {
		return fmt.Errorf("read event ceiling: %w", err)
	}
	s.lastEvent = max(ceil, s.opts.Now().UnixMicro())
	s.eventCeil = s.lastEvent + eventReserve
	if _, err := s.db.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'event_id'`, s.eventCeil); err != nil {
		return fmt.Errorf("reserve event ids: %w", err)
	}
	return nil
}

// Pulse is the cadence the store judges TTLs and span joins by.
func (s *Store) Pulse() presence.Pulse { return s.opts.Pulse }

// Close commits every accepted beat, stops the expiry loop and closes the
// database. Later calls return nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		werr := s.writer.Close()
		close(s.stop)
		<-s.loopDone
		err = errors.Join(werr, s.closeDBs())
	})
	return err
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stmts.updateDevice, s.stmts.insertSpan, s.stmts.updateSpan, s.stmts.replaySpan, s.authStmt, s.sessionStmt, s.authVersionStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	// The writer last: closing the last connection checkpoints the WAL.
	errs = append(errs, s.db.Close(), s.lock.Unlock())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// usable refuses calls after Close with a domain error the API maps to 503.
func (s *Store) usable() error {
	if s.closed.Load() {
		return presence.Errorf(presence.EUNAVAILABLE, "the store is closed")
	}
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ns and fromNS convert times to and from the stored Unix nanoseconds; the
// zero time is stored as 0.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

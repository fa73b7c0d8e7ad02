// Package postgres is Lastseen's presence.Store on PostgreSQL, for services
// that run more than one stateless lastseend against one database.
//
// Writes are group-committed: concurrent Ingest calls are collected for a
// millisecond and applied in one transaction that locks the devices
// involved, checks each device's last_seq in the database (so beats of one
// device reaching two instances stay idempotent and ordered), merges the
// beats into the tail spans read in that transaction, and writes spans,
// devices and events with a few multi-row statements. A transaction costs
// two round trips: BEGIN travels with the locking read, COMMIT with the
// writes. Two writers, each owning half of the devices, overlap one group's
// locking read with the other's writes. Ingest returns after COMMIT.
//
// Every request authenticates its credential (a session, a user or device
// token); the database's answer is kept in memory and dropped at every
// wake-up that may take one away (a user disabled, a device or token
// revoked, a session ended), so such a change on any instance holds here
// within the NOTIFY round trip (see tokenCache). One-time secrets (links,
// pairing codes) are spent under a row lock, so exactly once whichever
// instances race for them.
//
// Presence is served from memory. Instances keep each other's memory true
// through the events table and LISTEN/NOTIFY: every committed state change is
// written to the events table, and a tiny NOTIFY (the new highest event id)
// wakes the other instances, which read the table from the last id they saw.
// A periodic poll and a catch-up after every reconnect mean a lost
// notification delays an event but never loses it. Beats that change nothing
// visible (a span extended) produce no event; every instance refreshes
// devices' last beats from the table instead, and before announcing a TTL
// expiry confirms it in the database with a conditional UPDATE that only one
// instance can win.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
)

// Config configures a Store beyond presence.Options. Zero values take the
// defaults documented on each field.
type Config struct {
	// DSN is a libpq-style connection string or postgres:// URL. pgxpool
	// parameters such as pool_max_conns are honoured.
	DSN     string
	Options presence.Options
	Logger  *slog.Logger // default: discard

	// Linger is how long a writer waits to gather a group after its first
	// request (default 1 ms; negative: no wait, a group is whatever queued
	// during the previous commit). With two writers one group gathers while
	// the other commits, so a long linger buys little but latency.
	Linger time.Duration
	// MaxBatch bounds the beats of one write transaction (default 4000).
	MaxBatch int
	// MaxWaiting bounds, per writer, the beats (counting one more per
	// request) waiting to be committed (default DefaultMaxWaiting). Past it
	// Ingest answers EUNAVAILABLE at once with a retry hint
	// (presence.RetryAfterer, sent as Retry-After) instead of queueing
	// without bound behind a slow database. Negative: no bound.
	MaxWaiting int
	// Writers is how many write groups may be in flight at once (default
	// 2). Devices are split between the writers by id, so each device's
	// beats still go through one queue in order and the groups of one
	// instance never wait on each other's row locks. A group's first round
	// trip (BEGIN and the locking read) overlaps the previous group's
	// writes; merging, writing and committing stay one group at a time.
	// More than two rarely helps.
	Writers int

	// Tick is how often TTL expiries are checked (default 1 s).
	Tick time.Duration
	// PollEvery is the safety poll of the events table when no NOTIFY
	// arrives, and the liveness check of the listener connection (default 2 s).
	PollEvery time.Duration
	// RefreshEvery is how often devices and users changed by other
	// instances are re-read (default 5 s). It must stay well below the pulse
	// grace so a device heard by another instance never looks expired here.
	RefreshEvery time.Duration
	// FullRefreshEvery re-reads every device and user (default 5 min).
	FullRefreshEvery time.Duration

	// EventRetention and EventMaxRows bound the events table (defaults 24 h
	// and 100 000 rows); PruneEvery is how often it is pruned (default 1 min).
	EventRetention time.Duration
	EventMaxRows   int64
	PruneEvery     time.Duration

	// ReconnectMin and ReconnectMax bound the listener's reconnect backoff
	// (defaults 100 ms and 5 s).
	ReconnectMin, ReconnectMax time.Duration

	// TokenCacheSize bounds how many tokens the database confirmed
	// Authenticate keeps in memory (default 100 000); TokenCacheAge is how
	// long one is trusted before the database is asked again (default
	// 5 min). Revocations drop them at once whatever the age (see
	// tokenCache). Negative values disable the cache.
	TokenCacheSize int
	TokenCacheAge  time.Duration
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	c.Options = c.Options.WithDefaults()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Linger, time.Millisecond)
	def(&c.Tick, time.Second)
	def(&c.PollEvery, 2*time.Second)
	def(&c.RefreshEvery, 5*time.Second)
	def(&c.FullRefreshEvery, 5*time.Minute)
	def(&c.EventRetention, 24*time.Hour)
	def(&c.PruneEvery, time.Minute)
	def(&c.ReconnectMin, 100*time.Millisecond)
	def(&c.ReconnectMax, 5*time.Second)
	def(&c.TokenCacheAge, 5*time.Minute)
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = 100_000
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 4000
	}
	if c.Writers == 0 {
		c.Writers = 2
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = DefaultMaxWaiting
	}
	if c.EventMaxRows == 0 {
		c.EventMaxRows = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// DefaultMaxWaiting is Config.MaxWaiting's default, the SQLite store's
// bound: room for four full batches (presence.MaxBatchBeats) or two
// thousand single beats per writer. An accepted beat never waits long for
// the database, and when the writers fall behind the rest is answered
// "later" (503) instead of piling up in memory.
const DefaultMaxWaiting = 4096

// Validate checks a configuration (after defaults).
func (c Config) Validate() error {
	if c.DSN == "" {
		return presence.Errorf(presence.EINVALID, "postgres: DSN is required")
	}
	if err := c.Options.Pulse.Validate(); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{
		"Tick": c.Tick, "PollEvery": c.PollEvery, "RefreshEvery": c.RefreshEvery,
		"FullRefreshEvery": c.FullRefreshEvery, "EventRetention": c.EventRetention, "PruneEvery": c.PruneEvery,
		"ReconnectMin": c.ReconnectMin, "ReconnectMax": c.ReconnectMax,
	} {
		if d < 0 {
			return presence.Errorf(presence.EINVALID, "postgres: %s must not be negative", name)
		}
	}
	if c.ReconnectMax < c.ReconnectMin {
		return presence.Errorf(presence.EINVALID, "postgres: ReconnectMax below ReconnectMin")
	}
	if c.MaxBatch < 0 || c.EventMaxRows < 0 {
		return presence.Errorf(presence.EINVALID, "postgres: MaxBatch and EventMaxRows must not be negative")
	}
	if c.Writers < 1 || c.Writers > maxWriters {
		return presence.Errorf(presence.EINVALID, "postgres: Writers must be 1..%d", maxWriters)
	}
	return nil
}

// Store is a presence.Store on PostgreSQL. Its methods are safe for
// concurrent use; any number of Stores (in any number of processes) may share
// one database.
type Store struct {
	cfg  Config
	opts presence.Options
	log  *slog.Logger
	pool *pgxpool.Pool
	// writers[i] commits the groups of the devices whose id is i modulo
	// len(writers).
	writers []*groupcommit.Writer[ingestReq, ingestRes]
	cache   *cache
	tokens  *tokenCache

	// drainMu serialises reading the events table, so Notify sees every
	// event once, in id order, whichever goroutine drains.
	drainMu   sync.Mutex
	lastEvent int64 // highest event id handed to Notify; under drainMu

	listenerPID   atomic.Uint32 // backend pid of the current listener connection
	confirmFailed atomic.Int64  // when a read's expiry check last failed (unix ns)
	// listening is true while the listener connection is LISTENing, so
	// that every revocation made anywhere reaches this instance; the token
	// cache is used only then.
	listening atomic.Bool

	// applyMu lets one write group at a time merge, write and commit (see
	// commitIngest); the writers overlap only their first round trip.
	applyMu sync.Mutex

	// refreshMu orders refreshes; refreshedAt is the database time of the
	// latest one, where the next incremental refresh starts.
	refreshMu   sync.Mutex
	refreshedAt time.Time

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

var _ presence.Store = (*Store)(nil)

// Open connects to the database at dsn, applies pending migrations and starts
// the writer, the listener and the background loops.
func Open(ctx context.Context, dsn string, opts presence.Options) (*Store, error) {
	return OpenConfig(ctx, Config{DSN: dsn, Options: opts})
}

// OpenConfig is Open with every tunable.
func OpenConfig(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, presence.Errorf(presence.EINVALID, "postgres: bad DSN: %v", err)
	}
	// Each writer holds a connection while its group commits; token
	// lookups, reads and catch-ups need a couple besides.
	if need := int32(cfg.Writers + 2); pcfg.MaxConns < need {
		pcfg.MaxConns = need
	}
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "lastseend"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := migrate(ctx, pool, cfg.Logger); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{
		cfg:    cfg,
		opts:   cfg.Options,
		log:    cfg.Logger,
		pool:   pool,
		cache:  newCache(),
		tokens: newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheAge),
	}
	// Events already in the table happened before this instance existed: its
	// memory is loaded from the tables, and Notify starts with what is new.
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&s.lastEvent); err != nil {
		pool.Close()
		return nil, fmt.Errorf("read last event id: %w", err)
	}
	if err := s.refreshFull(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("load presence: %w", err)
	}
	for range cfg.Writers {
		s.writers = append(s.writers, groupcommit.New(s.commitIngest, groupcommit.Options[ingestReq]{
			Linger:     cfg.Linger,
			MaxBatch:   cfg.MaxBatch,
			Weight:     func(r ingestReq) int { return len(r.beats) + 1 },
			MaxWaiting: max(cfg.MaxWaiting, 0),
		}))
	}
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.listen(bg) }()
	go func() { defer s.wg.Done(); s.background(bg) }()
	return s, nil
}

// Pulse is the cadence TTLs and span joins are judged by.
func (s *Store) Pulse() presence.Pulse { return s.opts.Pulse }

// Close commits every accepted beat, stops the listener and loops, and
// closes the pool. Calls after the first return nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	var errs []error
	for _, w := range s.writers {
		errs = append(errs, w.Close())
	}
	err := errors.Join(errs...)
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return err
}

func (s *Store) isClosed() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	return s.closed
}

var errClosed = presence.Errorf(presence.EUNAVAILABLE, "store is closed")

func (s *Store) now() time.Time { return s.opts.Now().UTC() }

// background runs the periodic work: TTL expiry, refresh of what other
// instances changed, and pruning of the events table.
func (s *Store) background(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	lastRefresh, lastFull, lastPrune := time.Now(), time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.expire(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("postgres: TTL expiry check failed", "err", err)
		}
		var err error
		switch {
		case time.Since(lastFull) >= s.cfg.FullRefreshEvery:
			err = s.refreshFull(ctx)
			lastFull, lastRefresh = time.Now(), time.Now()
		case time.Since(lastRefresh) >= s.cfg.RefreshEvery:
			err = s.refreshSince(ctx)
			lastRefresh = time.Now()
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("postgres: refresh failed", "err", err)
		}
		if time.Since(lastPrune) >= s.cfg.PruneEvery {
			lastPrune = time.Now()
			if err := s.prune(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("postgres: pruning events failed", "err", err)
			}
		}
	}
}

// refreshFull re-reads every user and device.
func (s *Store) refreshFull(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	at, err := s.refresh(ctx, time.Time{})
	if err == nil {
		s.refreshedAt = at
	}
	return err
}

// refreshSince re-reads users and devices changed since the last refresh.
func (s *Store) refreshSince(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	at, err := s.refresh(ctx, s.refreshedAt)
	if err == nil {
		s.refreshedAt = at
	}
	return err
}

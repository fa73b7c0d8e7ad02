package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Every API request authenticates, so a credential the database confirmed
// is remembered (authCache) and the next request with it reads no table.
//
// What may make a remembered answer wrong is a change that takes a
// credential away: a session ended, a token revoked, a user disabled, a
// device revoked. Each moves one of the meta counters 'catalog' and 'auth'
// (triggers, whatever process writes), and:
//
//   - a write of this store that may take a credential away forgets
//     everything as soon as it commits, and a lookup that began before
//     cannot store its answer (the generation), so in this process the
//     change counts at the next request;
//   - the counters are read again when authRecheck has passed since the last
//     read (by a request: an idle store reads nothing), and everything is
//     forgotten when they moved, so a change another process made (the
//     command line) counts within authRecheck.
//
// A session also ends by not being used: its last use is kept with it and
// checked against the store's clock at every request. Touches (last use)
// move no counter.
const (
	authRecheck  = 250 * time.Millisecond
	authCacheMax = 10000
)

// authQuery finds a live token by its hash, of a user who is not disabled;
// sessionQuery a session likewise. Prepared once on the read pool
// (database/sql prepares them again on each pool connection that first runs
// them): compiling the statement was half the lookup's cost.
const (
	authQuery = `SELECT t.hash, t.kind, t.user_id, t.device_id
	FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN devices d ON d.id = t.device_id
	WHERE t.hash = ? AND t.revoked_ns IS NULL AND d.revoked_ns IS NULL AND NOT u.disabled`
	sessionQuery = `SELECT s.hash, s.id, s.user_id, s.last_used_ns
	FROM sessions s JOIN users u ON u.id = s.user_id
	WHERE s.hash = ? AND NOT u.disabled`
	authVersionQuery = `SELECT coalesce(sum(value), 0) FROM meta WHERE key IN ('catalog', 'auth')`
)

// authCache holds the principals of credentials the database confirmed,
// keyed by the credential's SHA-256 (never the credential itself), at most
// authCacheMax of them. It only ever holds positive answers: an unknown
// or refused credential always goes to the database.
type authCache struct {
	mu      sync.RWMutex
	gen     uint64 // moves at every invalidation
	entries map[[sha256.Size]byte]authEntry

	checkMu sync.Mutex // one counter read at a time
	version int64      // the counters' sum the entries were confirmed under
	// checked is when the counters were last read, as time since born plus
	// one (0: never). The real, monotonic clock: when to look again is the
	// cache's own business, not a rule of the domain.
	born    time.Time
	checked atomic.Int64
}

type authEntry struct {
	p        presence.Principal
	lastUsed time.Time // a session's last use as the database had it
}

func newAuthCache() *authCache {
	return &authCache{entries: map[[sha256.Size]byte]authEntry{}, version: -1, born: time.Now()}
}

func (c *authCache) get(h [sha256.Size]byte) (authEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[h]
	return e, ok
}

// generation is taken before a database lookup and handed to put, which
// stores the answer only if nothing was invalidated in between.
func (c *authCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *authCache) put(h [sha256.Size]byte, e authEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // something may have been taken away while the lookup ran
	}
	if _, ok := c.entries[h]; !ok && len(c.entries) >= authCacheMax {
		// Make room in one go (map order is as good as any), so that a
		// full cache does not pay for a sweep on every put.
		for k := range c.entries {
			if len(c.entries) < authCacheMax-authCacheMax/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[h] = e
}

// invalidate forgets every entry and fails every lookup in flight.
func (c *authCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

func (c *authCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// fresh says whether the counters were read less than authRecheck ago.
func (c *authCache) fresh() bool {
	at := c.checked.Load()
	return at != 0 && time.Since(c.born)-time.Duration(at-1) < authRecheck
}

// recheckAuth reads the counters again when authRecheck has passed since
// the last read, and forgets everything when they moved. The usual call
// costs an atomic load.
func (s *Store) recheckAuth(ctx context.Context) error {
	c := s.auth
	if c.fresh() {
		return nil
	}
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	if c.fresh() {
		return nil // another request read them meanwhile
	}
	start := time.Since(c.born) // the read sees what was committed before it began
	var v int64
	if err := s.authVersionStmt.QueryRowContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("read credential version: %w", err)
	}
	if v != c.version {
		c.invalidate()
		c.version = v
	}
	c.checked.Store(int64(start) + 1)
	return nil
}

var errUnauthorized = presence.Errorf(presence.EUNAUTHORIZED, "unknown or revoked token")

// Authenticate resolves a user token, device token or session secret.
func (s *Store) Authenticate(ctx context.Context, token string) (presence.Principal, error) {
	if err := s.usable(); err != nil {
		return presence.Principal{}, err
	}
	session := strings.HasPrefix(token, presence.SessionPrefix)
	var kind presence.TokenKind
	if !session {
		var err error
		if kind, err = presence.TokenKindOf(token); err != nil {
			return presence.Principal{}, err
		}
	}
	// The lookups are primary-key probes that never wait on a lock (WAL
	// readers do not), so there is nothing to cancel; under a cancellable
	// context database/sql and the driver would each start a goroutine per
	// query just to watch it.
	ctx = context.WithoutCancel(ctx)
	if err := s.recheckAuth(ctx); err != nil {
		return presence.Principal{}, err
	}
	hash := presence.HashToken(token)
	key := [sha256.Size]byte(hash)
	now := s.opts.Now()
	if e, ok := s.auth.get(key); ok && (!session || !idle(e.lastUsed, now)) {
		return e.p, nil
	}
	gen := s.auth.generation()
	var e authEntry
	var err error
	if session {
		e, err = s.lookupSession(ctx, hash, now)
	} else {
		e, err = s.lookupToken(ctx, hash, kind)
	}
	if err != nil {
		return presence.Principal{}, err
	}
	s.auth.put(key, e, gen)
	return e.p, nil
}

// idle says whether a session last used at lastUsed has lapsed at now.
func idle(lastUsed, now time.Time) bool { return now.Sub(lastUsed) > presence.SessionIdle }

func (s *Store) lookupToken(ctx context.Context, hash []byte, kind presence.TokenKind) (authEntry, error) {
	var (
		stored   []byte
		stKind   string
		p        presence.Principal
		deviceID sql.NullInt64
	)
	err := s.authStmt.QueryRowContext(ctx, hash).Scan(&stored, &stKind, &p.UserID, &deviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return authEntry{}, errUnauthorized
	}
	if err != nil {
		return authEntry{}, fmt.Errorf("authenticate: %w", err)
	}
	// The index found the row by hash; comparing again in constant time
	// keeps the decision itself free of timing.
	if !presence.HashesEqual(stored, hash) || presence.TokenKind(stKind) != kind || (kind == presence.DeviceToken) != deviceID.Valid {
		return authEntry{}, errUnauthorized
	}
	p.Kind, p.DeviceID = kind, deviceID.Int64
	if kind == presence.UserToken {
		p.TokenID = tokenID(hash)
	}
	return authEntry{p: p}, nil
}

func (s *Store) lookupSession(ctx context.Context, hash []byte, now time.Time) (authEntry, error) {
	var (
		stored   []byte
		p        = presence.Principal{Kind: presence.UserToken}
		lastUsed int64
	)
	err := s.sessionStmt.QueryRowContext(ctx, hash).Scan(&stored, &p.SessionID, &p.UserID, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return authEntry{}, errUnauthorized
	}
	if err != nil {
		return authEntry{}, fmt.Errorf("authenticate session: %w", err)
	}
	e := authEntry{p: p, lastUsed: fromNS(lastUsed)}
	if !presence.HashesEqual(stored, hash) || idle(e.lastUsed, now) {
		return authEntry{}, errUnauthorized
	}
	return e, nil
}

// tokenID is a user token's public ID: the first 8 bytes of its hash, in hex.
func tokenID(hash []byte) string { return hex.EncodeToString(hash[:8]) }

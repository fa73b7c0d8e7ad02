package postgres

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// tokenCache remembers the tokens the database has confirmed, so that the
// one query every request would otherwise make (the token lookup) is made
// once per token and age instead. It only ever holds positive answers: an
// unknown or revoked token always goes to the database.
//
// An entry may be trusted only while nothing that could revoke it has
// happened since the database confirmed it. The store enforces that with
// three rules:
//
//   - every entry is confirmed by a lookup that started after this
//     instance's LISTEN was in place (no entry is used while the listener
//     is down, and all are dropped when it is back), so every later
//     revocation anywhere reaches this instance as a wake-up;
//   - every users/devices wake-up (also sent when sessions end, API
//     tokens are revoked or users disabled), every local revocation and every
//     (re)connect of the listener drops every entry (invalidate), and a
//     lookup that started before a drop cannot store its answer (the
//     generation check in put), so a revocation takes effect here at once,
//     or within the NOTIFY round trip when it was made on another instance;
//   - a credential is trusted only while its in-memory user (kept by the
//     periodic refreshes too) is known and not disabled, and a device
//     token only while its in-memory device is known and not revoked,
//     which bounds even a listener connection that died without a word.
//
// The map is keyed by the token's SHA-256, never by the token: a lookup's
// timing can tell no more about a token than the database index could.
type tokenCache struct {
	max    int
	maxAge time.Duration

	mu      sync.RWMutex
	gen     uint64
	entries map[[sha256.Size]byte]tokenEntry

	hits, misses atomic.Int64
}

type tokenEntry struct {
	p  presence.Principal
	at time.Time // when the database confirmed it
	// until, when set, is when the credential lapses by itself (a session
	// unused for presence.SessionIdle): it is not trusted after that, however
	// recently confirmed.
	until time.Time
}

// newTokenCache returns a cache of at most max entries, each trusted for
// maxAge. A zero or negative max or maxAge disables it.
func newTokenCache(max int, maxAge time.Duration) *tokenCache {
	return &tokenCache{max: max, maxAge: maxAge, entries: map[[sha256.Size]byte]tokenEntry{}}
}

func (c *tokenCache) enabled() bool { return c.max > 0 && c.maxAge > 0 }

// get returns the principal of a token hash the database confirmed less
// than maxAge before now.
func (c *tokenCache) get(h [sha256.Size]byte, now time.Time) (presence.Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[h]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= c.maxAge || (!e.until.IsZero() && now.After(e.until)) {
		c.misses.Add(1)
		return presence.Principal{}, false
	}
	c.hits.Add(1)
	return e.p, true
}

// generation is taken before a database lookup and handed to put, which
// stores the answer only if no invalidation happened in between.
func (c *tokenCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put stores a principal the database confirmed at now, by a lookup that
// started at generation gen.
func (c *tokenCache) put(h [sha256.Size]byte, p presence.Principal, gen uint64, now time.Time) {
	c.putUntil(h, p, gen, now, time.Time{})
}

// putUntil is put for a credential that lapses by itself at until.
func (c *tokenCache) putUntil(h [sha256.Size]byte, p presence.Principal, gen uint64, now, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // something may have been revoked while the lookup ran
	}
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[h] = tokenEntry{p: p, at: now, until: until}
}

// evictLocked makes room: expired entries go first, then arbitrary ones
// (map order) down to seven eighths of max, so a full cache does not pay
// a sweep on every put.
func (c *tokenCache) evictLocked(now time.Time) {
	for h, e := range c.entries {
		if now.Sub(e.at) >= c.maxAge {
			delete(c.entries, h)
		}
	}
	for h := range c.entries {
		if len(c.entries) < c.max-c.max/8 {
			break
		}
		delete(c.entries, h)
	}
}

// invalidate drops every entry and fails every lookup in flight.
func (c *tokenCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

package httpapi

import (
	"sync"
	"time"
)

// limiter is a set of token buckets keyed by token hash, or by client
// address for failed authentications. Keys are hashes, not tokens, so a
// heap dump holds nothing a caller could replay.
//
// Token buckets are made only for tokens the store accepted, so their
// number is bounded by the number of live tokens. Address buckets are made
// for anyone, so that limiter has a maximum size: past it, arbitrary
// buckets are evicted (the price is that a caller with very many
// addresses may get a fresh bucket back; memory stays bounded). A bucket
// that has refilled completely is indistinguishable from a new one and is
// evicted on the next sweep, so idle keys cost nothing.
type limiter struct {
	now func() time.Time
	max int // the most buckets kept; 0 is no limit

	mu        sync.Mutex
	buckets   map[[32]byte]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
	rate   Rate
}

// sweepEvery bounds how often allow walks the whole map.
const sweepEvery = time.Minute

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, buckets: make(map[[32]byte]*bucket)}
}

// newBoundedLimiter is a limiter that keeps at most max buckets.
func newBoundedLimiter(now func() time.Time, max int) *limiter {
	l := newLimiter(now)
	l.max = max
	return l
}

// allow takes one token from key's bucket. When none is left it returns false
// and how long until one is.
func (l *limiter) allow(key [32]byte, r Rate) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil || b.rate != r {
		if b == nil && l.max > 0 && len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: float64(r.Burst), last: now, rate: r}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+el.Seconds()*r.PerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / r.PerSecond * float64(time.Second))
	return false, wait
}

// peek reports whether key's bucket has a token left, without taking it,
// and if not, how long until it has. A key without a bucket has them all,
// and peeking makes none: only failures (allow) cost memory.
func (l *limiter) peek(key [32]byte, r Rate) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || b.rate != r {
		return true, 0
	}
	tokens := b.tokens
	if el := now.Sub(b.last); el > 0 {
		tokens = min(float64(r.Burst), tokens+el.Seconds()*r.PerSecond)
	}
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / r.PerSecond * float64(time.Second))
}

// sweep drops the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		refill := time.Duration(float64(b.rate.Burst) / b.rate.PerSecond * float64(time.Second))
		if now.Sub(b.last) >= refill {
			delete(l.buckets, k)
		}
	}
}

// evict makes room for one more bucket: the full ones first (at most once
// a second, as that walks the whole map), then arbitrary ones.
func (l *limiter) evict(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second {
		l.sweep(now)
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			return
		}
		delete(l.buckets, k)
	}
}

func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

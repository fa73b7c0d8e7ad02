package agent

import (
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Config is the agent's cadence and sender tuning.
type Config struct {
	// IdleAfter is the idle threshold (CheckIdleAfter; the dashboard's
	// settings keep to the narrower CheckSettingsIdleAfter).
	IdleAfter time.Duration
	// Interval is the beat interval while running (CheckInterval).
	Interval time.Duration
	// Jitter spreads each interval by ±Jitter (a fraction, 0–0.5) so a
	// fleet started together does not beat in lockstep.
	Jitter float64
	// Tick is how often the idle time is sampled while a sample can tell
	// something new and nothing else would (1 s – 1 min): idle with an
	// idle reader that cannot wait for input (see InputWaiter), locked,
	// asleep, or while reads fail. While active the agent reads only with
	// its beats and when the threshold can first pass; while idle with an
	// InputWaiter it waits. With the beat timer this keeps the agent under
	// two wakeups a second.
	Tick time.Duration
	// IdleErrorGrace is how long the last known state is kept while the idle
	// time cannot be read; after it the agent reports away.
	IdleErrorGrace time.Duration
	// FinalDeadline bounds how long the final beat (quit, sleep, logout) may
	// take to send; it stays in the outbox if that is not enough.
	FinalDeadline time.Duration
	// BatchSize is the most beats per request (1–1000).
	BatchSize int
	// BackoffMin and BackoffMax bound the retry delay, which doubles per
	// failure with full jitter between BackoffMin and the doubled cap.
	BackoffMin, BackoffMax time.Duration
	// RequestTimeout bounds one request.
	RequestTimeout time.Duration
	// CountCallsAndMedia lets a call or a video (Deps.Signals) keep the
	// user active past IdleAfter while the screen is unlocked. Off by
	// default: presence then follows input alone.
	CountCallsAndMedia bool
}

// DefaultConfig is DESIGN §2's cadence.
func DefaultConfig() Config {
	return Config{
		IdleAfter:      5 * time.Minute,
		Interval:       30 * time.Second,
		Jitter:         0.1,
		Tick:           2 * time.Second,
		IdleErrorGrace: time.Minute,
		FinalDeadline:  2 * time.Second,
		BatchSize:      500,
		BackoffMin:     time.Second,
		BackoffMax:     5 * time.Minute,
		RequestTimeout: 30 * time.Second,
	}
}

// WithDefaults fills zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.IdleAfter == 0 {
		c.IdleAfter = d.IdleAfter
	}
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Jitter == 0 {
		c.Jitter = d.Jitter
	}
	if c.Tick == 0 {
		c.Tick = d.Tick
	}
	if c.IdleErrorGrace == 0 {
		c.IdleErrorGrace = d.IdleErrorGrace
	}
	if c.FinalDeadline == 0 {
		c.FinalDeadline = d.FinalDeadline
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = d.BackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = d.BackoffMax
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	return c
}

// Validate checks every field, naming the first bad one.
func (c Config) Validate() error {
	if err := CheckIdleAfter("idle threshold", c.IdleAfter); err != nil {
		return err
	}
	if err := CheckInterval("beat interval", c.Interval); err != nil {
		return err
	}
	bad := func(format string, args ...any) error { return presence.Errorf(presence.EINVALID, format, args...) }
	switch {
	case c.Jitter < 0 || c.Jitter > 0.5:
		return bad("jitter must be between 0 and 0.5, not %g", c.Jitter)
	case c.Tick < time.Second || c.Tick > time.Minute:
		return bad("sampling tick must be 1 s to 1 min, not %s", c.Tick)
	case c.IdleErrorGrace < 0:
		return bad("idle error grace must not be negative")
	case c.FinalDeadline <= 0 || c.FinalDeadline > 30*time.Second:
		return bad("final-beat deadline must be positive and at most 30 s, not %s", c.FinalDeadline)
	case c.BatchSize < 1 || c.BatchSize > presence.MaxBatchBeats:
		return bad("batch size must be 1 to %d, not %d", presence.MaxBatchBeats, c.BatchSize)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return bad("backoff must be positive with max ≥ min (got %s..%s)", c.BackoffMin, c.BackoffMax)
	case c.RequestTimeout <= 0:
		return bad("request timeout must be positive")
	}
	return nil
}

// Pulse is the cadence local history joins beats by: the interval plus an
// equal grace, which covers the jitter with room to spare.
func (c Config) Pulse() presence.Pulse {
	return presence.Pulse{Interval: c.Interval, Grace: c.Interval}
}

// jittered spreads d by ±frac using r in [0, 1).
func jittered(d time.Duration, frac, r float64) time.Duration {
	return d + time.Duration((2*r-1)*frac*float64(d))
}

// backoffDelay is the wait after the n-th consecutive failure (n ≥ 1): full
// jitter between min and min·2^(n−1), capped at max.
func backoffDelay(n int, lo, hi time.Duration, r float64) time.Duration {
	ceil := lo
	for i := 1; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	return lo + time.Duration(r*float64(ceil-lo))
}

// Package storetest is the contract suite every presence.Store passes
// (SQLite, PostgreSQL). It checks behaviour through the presence.Store
// interface only, so it knows nothing of any database.
//
// A store's test runs it with an Opener:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Open {
//			path := filepath.Join(t.TempDir(), "lastseen.db")
//			return func(opts presence.Options) (presence.Store, error) {
//				return sqlite.Open(path, opts)
//			}
//		})
//	}
//
// Rules the suite relies on, beyond presence.Store's own documentation:
//
//   - Opener is called once per subtest and must prepare a fresh, empty
//     database for it (and remove it in t.Cleanup).
//   - The Open it returns may be called many times: each call opens a store
//     over that same database, so restart tests close a store and open it
//     again. The suite closes every store it opens.
//   - Close may be called more than once; later calls return nil.
//   - Times are compared with time.Equal at whole seconds, so a store may
//     keep any precision down to the microsecond.
//   - Spans(q) returns the spans that overlap [q.From, q.To): Start < To and
//     End > From, plus zero-length spans with Start = From. A zero From or To
//     leaves that side unbounded.
//   - A beat older than the device's latest beat (by time, with a higher
//     seq) is accepted (its seq is consumed) but changes no span, even after
//     an offline beat closed the tail: a span never starts in the past of a
//     device's last beat.
//   - Ingest's Accepted counts beats above last_seq, Duplicates those at or
//     below it; Accepted + Duplicates = len(beats). Ingest of a revoked
//     device fails with EUNAUTHORIZED, of an unknown one with ENOTFOUND.
//   - Expiry (no beat within the pulse window) is announced with an
//     EventPresence (status offline) and an EventSession (Open false) at the
//     latest a few seconds after the store's clock passed it, or at once on
//     the next presence read (Presence, Devices, DeviceStatus).
//   - Events may be delivered from another goroutine, after Ingest returns;
//     the suite waits for them (up to eventWait).
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

// Open opens a store over one subtest's database. Every call within a
// subtest opens the same database again.
type Open func(opts presence.Options) (presence.Store, error)

// Opener prepares a fresh, empty database for one subtest and says how to
// open stores over it. It removes the database in t.Cleanup.
type Opener func(t *testing.T) Open

// Run runs the whole contract suite against the store that opener opens.
func Run(t *testing.T, opener Opener) {
	t.Run("SpanMerge", func(t *testing.T) { testSpanMerge(t, opener) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, opener) })
	t.Run("StaleBeats", func(t *testing.T) { testStaleBeats(t, opener) })
	t.Run("IngestValidation", func(t *testing.T) { testIngestValidation(t, opener) })
	t.Run("PresenceAndTTL", func(t *testing.T) { testPresence(t, opener) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, opener) })
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, opener) })
	t.Run("UpdateUser", func(t *testing.T) { testUpdateUser(t, opener) })
	t.Run("SpanFilters", func(t *testing.T) { testSpanFilters(t, opener) })
	t.Run("DailyTotals", func(t *testing.T) { testDailyTotals(t, opener) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, opener) })
	t.Run("Events", func(t *testing.T) { testEvents(t, opener) })
	t.Run("MatchesFold", func(t *testing.T) { testMatchesFold(t, opener) })
	t.Run("WhyEvents", func(t *testing.T) { testWhyEvents(t, opener) })
	t.Run("GapReasons", func(t *testing.T) { testGapReasons(t, opener) })
	t.Run("Portable", func(t *testing.T) { testPortable(t, opener) })
	t.Run("People", func(t *testing.T) { testPeople(t, opener) })
	t.Run("Watches", func(t *testing.T) { testWatches(t, opener) })
}

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Recorder collects the events a store notifies, for Options.Notify.
type Recorder struct {
	mu     sync.Mutex
	events []presence.Event
}

// Notify records e. It never blocks for long, as Notifier requires.
func (r *Recorder) Notify(e presence.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of everything recorded so far, in delivery order.
func (r *Recorder) Events() []presence.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]presence.Event(nil), r.events...)
}

// T0 is the suite's starting time: a Wednesday morning, UTC.
var T0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// pulse is the cadence of every store the suite opens: DESIGN's default, so
// the window is one minute.
var pulse = presence.Pulse{Interval: 30 * time.Second, Grace: 30 * time.Second}

// eventWait bounds how long the suite waits for an asynchronous effect.
const eventWait = 5 * time.Second

// env is one subtest's database, clock, event log and current store.
type env struct {
	t      *testing.T
	ctx    context.Context
	open   Open
	clock  *Clock
	events *Recorder

	obsMu    sync.Mutex
	observed int // beats reported to Observe

	store presence.Store
}

func newEnv(t *testing.T, opener Opener) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), open: opener(t), clock: NewClock(T0), events: &Recorder{}}
	e.reopen()
	t.Cleanup(func() {
		if e.store != nil {
			if err := e.store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	})
	return e
}

func (e *env) options() presence.Options {
	return presence.Options{
		Pulse:  pulse,
		Now:    e.clock.Now,
		Notify: e.events.Notify,
		Observe: func(beats int, _ time.Duration) {
			e.obsMu.Lock()
			defer e.obsMu.Unlock()
			e.observed += beats
		},
	}
}

// reopen closes the current store, if any, and opens the database again:
// a restart of the service.
func (e *env) reopen() presence.Store {
	e.t.Helper()
	if e.store != nil {
		if err := e.store.Close(); err != nil {
			e.t.Fatalf("close store: %v", err)
		}
		e.store = nil
	}
	s, err := e.open(e.options())
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.store = s
	return s
}

func (e *env) user(handle string) presence.User {
	e.t.Helper()
	u, _, err := e.store.CreateUser(e.ctx, handle, "Name of "+handle)
	if err != nil {
		e.t.Fatalf("create user %s: %v", handle, err)
	}
	return u
}

func (e *env) device(u presence.User, name string) presence.Device {
	e.t.Helper()
	d, _, err := e.store.CreateDevice(e.ctx, u.ID, name)
	if err != nil {
		e.t.Fatalf("create device %s: %v", name, err)
	}
	return d
}

func (e *env) ingest(d presence.Device, beats ...presence.Beat) presence.IngestResult {
	e.t.Helper()
	res, err := e.store.Ingest(e.ctx, d.ID, beats, nil)
	if err != nil {
		e.t.Fatalf("ingest into device %d: %v", d.ID, err)
	}
	if res.Accepted+res.Duplicates+len(res.Rejected) != len(beats) {
		e.t.Errorf("ingest %d beats: accepted %d + duplicates %d + rejected %d do not add up", len(beats), res.Accepted, res.Duplicates, len(res.Rejected))
	}
	return res
}

func (e *env) spans(q presence.SpanQuery) []presence.Span {
	e.t.Helper()
	out, err := e.store.Spans(e.ctx, q)
	if err != nil {
		e.t.Fatalf("spans %+v: %v", q, err)
	}
	return out
}

// deviceSpans lists every span of d within a day of T0.
func (e *env) deviceSpans(u presence.User, d presence.Device) []presence.Span {
	e.t.Helper()
	return e.spans(presence.SpanQuery{UserID: u.ID, DeviceID: d.ID, From: T0.Add(-24 * time.Hour), To: T0.Add(24 * time.Hour)})
}

func (e *env) status(d presence.Device) presence.DeviceStatus {
	e.t.Helper()
	st, err := e.store.DeviceStatus(e.ctx, d.ID)
	if err != nil {
		e.t.Fatalf("device status %d: %v", d.ID, err)
	}
	return st
}

func (e *env) observedBeats() int {
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
	return e.observed
}

// beat is a beat at T0 + off.
func beat(seq int64, off time.Duration, st presence.State) presence.Beat {
	return presence.Beat{Seq: seq, At: T0.Add(off), State: st}
}

// sec is n seconds, for compact tables.
func sec(n int) time.Duration { return time.Duration(n) * time.Second }

// waitFor polls cond until it holds or eventWait passes. poke, when not nil,
// runs before each poll (e.g. a presence read that lets a store notice
// expiry at once).
func waitFor(t *testing.T, what string, poke func(), cond func() bool) {
	t.Helper()
	testutil.WaitUntil(t, what, eventWait, func() bool {
		if poke != nil {
			poke()
		}
		return cond()
	})
}

// wantCode fails unless err carries the domain code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := presence.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

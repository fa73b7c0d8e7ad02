package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// Deps are what an Agent works with.
type Deps struct {
	// DB is the agent's database (required).
	DB *agentdb.DB
	// Idle reads the user's idle time (required).
	Idle IdleReader
	// Events delivers lock, sleep and logout changes (optional). The agent
	// assumes the screen is unlocked at start: send Locked first if not.
	Events <-chan OSEvent
	// Signals reports calls and media (optional); the agent listens only
	// while Config.CountCallsAndMedia is on.
	Signals SignalSource
	// Facts describe the machine; they go with the first batch sent to each
	// service (optional).
	Facts *presence.Facts
	// Logger receives the agent's logs (discarded when nil).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Location is the zone "today" is cut in (time.Local when nil).
	Location *time.Location
}

// Status is what the tray and the local API show.
type Status struct {
	Mode Mode
	// Until is when a pause ends (zero otherwise).
	Until time.Time
	// State is the machine's real state ("" before the first sample).
	State presence.State
	// Why is what makes the machine active: input, or with
	// CountCallsAndMedia a call or media ("" unless State is active).
	Why presence.Why
	// CountCallsAndMedia mirrors the setting.
	CountCallsAndMedia bool
	// SentState is the state last queued for the service ("" before any).
	SentState presence.State
	// Idle is the user's idle time at the last sample.
	Idle time.Duration
	// IdleError is why the idle time cannot be read ("" when it can).
	IdleError string
	// Suspended is set between a sleep or logout and the resume.
	Suspended bool
	// Connected reports a service is configured (an Uploader is set).
	Connected bool
	// Reachable reports the service answered the last attempt.
	Reachable bool
	// Revoked is set while the service refuses the device's token; sending
	// has stopped until the uploader changes.
	Revoked bool
	// LastSync is the last successful exchange (zero: never).
	LastSync time.Time
	// SyncError is the current sending problem ("" once an exchange
	// succeeds), for example RevokedMessage.
	SyncError string
	// StoreError is why beats cannot be written to the agent's database
	// ("" when they can): while the disk is full or read-only the agent
	// keeps beating into memory (a bounded queue) and sends from there,
	// and the database catches up once it takes writes again.
	StoreError string
	// TodayActive is today's active time from local history.
	TodayActive time.Duration
}

// Diagnostics is the detail behind the local API's diagnostics page.
type Diagnostics struct {
	OutboxDepth       int64
	OldestQueued      time.Time
	OutboxDropped     int64 // oldest beats dropped by the outbox bound (counted, never silent)
	OutboxCompacted   int64 // beats thinned without changing any span
	LastSeq           int64
	Quarantine        []agentdb.Quarantined // most recent first, up to 100
	QuarantineCount   int64
	QuarantineDropped int64
	LastSync          time.Time
	LastError         string // the last sending problem, kept after recovery
	LastErrorAt       time.Time
	Failures          int       // consecutive failed attempts
	NextRetry         time.Time // zero unless backing off
	Revoked           bool
	// StoreError is Status.StoreError; StoreErrorSince when it began.
	StoreError      string
	StoreErrorSince time.Time
	// Held is how many queued beats memory holds while the database cannot
	// be written; HeldDropped how many the memory bound dropped meanwhile.
	Held        int
	HeldDropped int64
}

// Agent is the always-on loop: activity → state → outbox → sender.
type Agent struct {
	db      *agentdb.DB
	idle    IdleReader
	events  <-chan OSEvent
	signals SignalSource
	log     *slog.Logger
	now     func() time.Time
	loc     *time.Location
	rand    func() float64
	s       *sender

	wake    chan struct{} // cap 1: mode or config changed
	running atomic.Bool
	beatNow atomic.Bool // the service changed: beat at once

	mu      sync.Mutex
	cfg     Config
	mode    Mode
	until   time.Time
	st      Status // the loop's part: State, Why, SentState, Idle, IdleError, Suspended, StoreError, TodayActive
	subs    map[int]chan Status
	nextSub int
	last    Status
	havePub bool
}

// New returns an agent with the mode and until persisted in the database
// (a pause that ended while the agent was off is over).
func New(d Deps, cfg Config) (*Agent, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DB == nil || d.Idle == nil {
		return nil, presence.Errorf(presence.EINVALID, "agent needs a database and an idle reader")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Location == nil {
		d.Location = time.Local
	}
	a := &Agent{
		db: d.DB, idle: d.Idle, events: d.Events, signals: d.Signals, log: d.Logger, now: d.Now, loc: d.Location,
		rand: rand.Float64, cfg: cfg, mode: Automatic,
		wake: make(chan struct{}, 1),
		subs: map[int]chan Status{},
	}
	a.s = newSender(d.DB, cfg, d.Logger, d.Now, a.rand, d.Facts)
	a.s.onChange = a.publish
	if err := d.DB.SetPulse(cfg.Pulse()); err != nil {
		return nil, err
	}
	ctx := context.Background()
	set, err := d.DB.Settings(ctx)
	if err != nil {
		return nil, err
	}
	if set.Mode != "" {
		m, err := ParseMode(set.Mode)
		switch {
		case err != nil:
			a.log.Warn("ignoring stored mode", slog.String(logMode, set.Mode))
		case m == Pause && !d.Now().Before(set.ModeUntil):
			// The pause ended while the agent was not running. A disk
			// that cannot take the change must not keep the agent from
			// beating: the stored pause is over either way.
			if err := d.DB.SetMode(ctx, string(Automatic), time.Time{}); err != nil {
				a.log.Warn("cannot store the end of a pause", slog.Any(logErr, err))
			}
		default:
			a.mode, a.until = m, set.ModeUntil
		}
	}
	stats, err := d.DB.Stats(ctx)
	if err != nil {
		return nil, err
	}
	a.s.lastSync = stats.LastSync
	if t, err := d.DB.ActiveToday(ctx, d.Now(), d.Location); err == nil {
		a.st.TodayActive = t
	}
	return a, nil
}

// Status is the agent's current status.
func (a *Agent) Status() Status {
	t := a.db.Trouble() // outside a.mu: the database's lock waits for commits
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.statusLocked(t)
}

func (a *Agent) statusLocked(t agentdb.Trouble) Status {
	st := a.st
	st.Mode, st.Until, st.CountCallsAndMedia = a.mode, a.until, a.cfg.CountCallsAndMedia
	ss := a.s.status()
	st.Connected, st.Reachable, st.LastSync, st.SyncError = ss.connected, ss.reachable, ss.lastSync, ss.curErr
	st.Revoked = ss.stopped != ""
	if st.StoreError == "" {
		st.StoreError = troubleText(t)
	}
	return st
}

// troubleText is the status line for a database that cannot be written.
func troubleText(t agentdb.Trouble) string {
	if t.Err == "" {
		return ""
	}
	s := fmt.Sprintf("cannot write the agent database (%s): %d beats kept in memory, sent from there, saved when it can", t.Err, t.Held)
	if t.Dropped > 0 {
		s += fmt.Sprintf("; %d oldest dropped", t.Dropped)
	}
	return s
}

// Subscribe returns a channel that receives the status whenever it changes
// (other than the idle seconds, which change every sample), latest first: a
// slow reader misses intermediate states, never the newest. cancel ends the
// subscription.
func (a *Agent) Subscribe() (updates <-chan Status, cancel func()) {
	ch := make(chan Status, 1)
	a.mu.Lock()
	id := a.nextSub
	a.nextSub++
	a.subs[id] = ch
	a.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.subs, id)
			a.mu.Unlock()
		})
	}
}

// publish sends the status to subscribers when it changed.
func (a *Agent) publish() {
	t := a.db.Trouble()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.statusLocked(t)
	if a.havePub && sameForDisplay(st, a.last) {
		return
	}
	a.last, a.havePub = st, true
	for _, ch := range a.subs {
		select { // latest wins: drop a stale unread status
		case <-ch:
		default:
		}
		ch <- st
	}
}

func sameForDisplay(x, y Status) bool {
	x.Idle, y.Idle = 0, 0
	return x.Until.Equal(y.Until) && x.LastSync.Equal(y.LastSync) &&
		x.Mode == y.Mode && x.State == y.State && x.Why == y.Why && x.SentState == y.SentState &&
		x.CountCallsAndMedia == y.CountCallsAndMedia &&
		x.IdleError == y.IdleError && x.Suspended == y.Suspended && x.Connected == y.Connected &&
		x.Reachable == y.Reachable && x.Revoked == y.Revoked && x.SyncError == y.SyncError &&
		x.StoreError == y.StoreError && x.TodayActive == y.TodayActive
}

// SetMode changes the manual mode. until is required for Pause (after now,
// at most MaxPause ahead; see NextMidnight for "until tomorrow") and must be
// zero otherwise. The mode is persisted before it takes effect.
func (a *Agent) SetMode(ctx context.Context, mode Mode, until time.Time) error {
	if _, err := ParseMode(string(mode)); err != nil {
		return err
	}
	now := a.now()
	if mode == Pause {
		switch {
		case until.IsZero():
			return presence.Errorf(presence.EINVALID, "pause needs an end time")
		case !until.After(now):
			return presence.Errorf(presence.EINVALID, "pause end %s is not in the future", until.Format(time.RFC3339))
		case until.Sub(now) > MaxPause:
			return presence.Errorf(presence.EINVALID, "pause must end within %s", MaxPause)
		}
	} else if !until.IsZero() {
		return presence.Errorf(presence.EINVALID, "only pause takes an end time")
	}
	if err := a.db.SetMode(ctx, string(mode), until); err != nil {
		return err
	}
	a.mu.Lock()
	a.mode, a.until = mode, until
	a.mu.Unlock()
	a.log.Info("mode changed", slog.String(logMode, string(mode)))
	a.publish()
	poke(a.wake)
	return nil
}

// SetConfig changes the cadence at run time.
func (a *Agent) SetConfig(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := a.db.SetPulse(cfg.Pulse()); err != nil {
		return err
	}
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
	a.s.setConfig(cfg)
	a.publish()
	poke(a.wake)
	return nil
}

// Config is the current configuration.
func (a *Agent) Config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// SetUploader switches the service beats go to (nil: none, beats queue up).
// target names the service and credentials (for example its URL and a hash of
// the token, or "local"); when it differs from the last target, the first
// exchange probes with one beat so that a service already holding higher
// seqs for this device is noticed before any beat is lost. A new uploader
// also ends a token refusal and any backoff.
func (a *Agent) SetUploader(ctx context.Context, u Uploader, target string) error {
	a.s.mu.Lock()
	switched := a.s.up != nil && a.s.target != target
	a.s.mu.Unlock()
	if err := a.s.setUploader(ctx, u, target); err != nil {
		return err
	}
	if switched {
		// A service switched to at run time hears the current state at
		// once, not at the next interval.
		a.beatNow.Store(true)
		poke(a.wake)
	}
	return nil
}

// Diagnostics gathers the outbox, quarantine and sync details.
func (a *Agent) Diagnostics(ctx context.Context) (Diagnostics, error) {
	stats, err := a.db.Stats(ctx)
	if err != nil {
		return Diagnostics{}, err
	}
	q, err := a.db.Quarantined(ctx, 100)
	if err != nil {
		return Diagnostics{}, err
	}
	ss := a.s.status()
	a.mu.Lock()
	storeErr := a.st.StoreError
	a.mu.Unlock()
	trouble := a.db.Trouble()
	if storeErr == "" {
		storeErr = troubleText(trouble)
	}
	return Diagnostics{
		StoreErrorSince: trouble.Since, Held: trouble.Held, HeldDropped: trouble.Dropped,
		OutboxDepth: stats.OutboxDepth, OldestQueued: stats.OldestQueued,
		OutboxDropped: stats.Dropped, OutboxCompacted: stats.Compacted, LastSeq: stats.LastSeq,
		Quarantine: q, QuarantineCount: stats.Quarantined, QuarantineDropped: stats.QuarantineDropped,
		LastSync: ss.lastSync, LastError: ss.lastErr, LastErrorAt: ss.lastErrAt,
		Failures: ss.failures, NextRetry: ss.nextRetry, Revoked: ss.stopped != "", StoreError: storeErr,
	}, nil
}

// Run runs the agent until ctx ends, then writes the final offline beat,
// sends it within FinalDeadline and returns. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	// The sender outlives ctx by the final flush; it stops when Run returns.
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.s.run(sendCtx) })
	defer func() {
		stopSend()
		wg.Wait()
	}()
	l := &loop{a: a, events: a.events}
	l.run(ctx)
	return nil
}

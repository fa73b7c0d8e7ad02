package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// loop is the sampling goroutine's state; only that goroutine touches it.
type loop struct {
	a      *Agent
	events <-chan OSEvent

	locked      bool
	suspended   bool // asleep or logged out: final beat written, silent until resumed
	suspendedAt time.Time

	idle      time.Duration // last good sample
	idleKnown bool          // a sample succeeded, and not longer than IdleErrorGrace ago if reads now fail
	idleOKAt  time.Time
	idleErr   error

	lastLocal, lastSent presence.State // last written; "" before the first beat
	nextBeat            time.Time      // zero: no periodic beat (everything is offline)
	nextTick            time.Time
	storeErr            error
}

func (l *loop) run(ctx context.Context) {
	a := l.a
	// Writes must complete even while quitting: that is when the final beat
	// is written.
	wctx := context.WithoutCancel(ctx)
	now := a.now()
	l.sample(ctx, now)
	l.evaluate(wctx, now)
	timer := time.NewTimer(l.sleepFor(now))
	defer timer.Stop()
	events := l.events
	for {
		select {
		case <-ctx.Done():
			l.final(wctx)
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the event source is gone; keep sampling
				continue
			}
			l.handle(ctx, wctx, ev)
		case <-a.wake:
		case <-timer.C:
		}
		now := a.now()
		if !now.Before(l.nextTick) {
			l.sample(ctx, now)
		}
		l.evaluate(wctx, now)
		timer.Reset(l.sleepFor(now))
	}
}

// sleepFor is the wait until the next thing to do: a sample, a periodic beat
// or the end of a pause.
func (l *loop) sleepFor(now time.Time) time.Duration {
	next := l.nextTick
	if !l.nextBeat.IsZero() && l.nextBeat.Before(next) {
		next = l.nextBeat
	}
	l.a.mu.Lock()
	if l.a.mode == Pause && l.a.until.Before(next) {
		next = l.a.until
	}
	l.a.mu.Unlock()
	return max(0, next.Sub(now))
}

// handle applies an OS event, beats at once if the state changed, and for a
// sleep or logout sends the final beat before saying it is done.
func (l *loop) handle(ctx, wctx context.Context, ev OSEvent) {
	a := l.a
	now := a.now()
	a.log.Debug("os event", slog.String(logEvent, ev.Kind.String()))
	switch ev.Kind {
	case Locked:
		l.locked = true
	case Unlocked:
		l.locked = false
		l.suspended = false // an unlocked screen is a running machine
		l.sample(ctx, now)
	case Woke:
		l.suspended = false
		l.sample(ctx, now)
	case Sleeping, LoggingOut:
		if !l.suspended {
			l.suspended, l.suspendedAt = true, now
		}
	}
	l.evaluate(wctx, now)
	if ev.Kind == Sleeping || ev.Kind == LoggingOut {
		a.s.flush(a.Config().FinalDeadline)
	}
	if ev.Done != nil {
		ev.Done()
	}
}

// sample reads the idle time. On failure the last known value stands for
// IdleErrorGrace, after which the state is away (never active on a guess).
func (l *loop) sample(ctx context.Context, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	a := l.a
	cfg := a.Config()
	l.nextTick = now.Add(cfg.Tick)
	rctx, cancel := context.WithTimeout(ctx, cfg.Tick)
	d, err := a.idle.Idle(rctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		if l.idleErr == nil {
			a.log.Warn("cannot read idle time", slog.Any(logErr, err))
		}
		l.idleErr = err
		if l.idleKnown && now.Sub(l.idleOKAt) > cfg.IdleErrorGrace {
			l.idleKnown = false
		}
		return
	}
	if l.idleErr != nil {
		a.log.Info("idle time readable again")
	}
	if d < 0 {
		d = 0
	}
	if l.suspended && d < now.Sub(l.suspendedAt) {
		// Input after the sleep or logout began: it did not happen, or the
		// resume event was missed. Either way the machine is in use.
		l.suspended = false
	}
	l.idleErr, l.idle, l.idleKnown, l.idleOKAt = nil, d, true, now
}

// evaluate decides the state and beats when it changed or the interval is due.
func (l *loop) evaluate(wctx context.Context, now time.Time) {
	a := l.a
	a.mu.Lock()
	cfg, mode, until := a.cfg, a.mode, a.until
	a.mu.Unlock()
	if mode == Pause && !now.Before(until) {
		mode = l.endPause(wctx, until)
	}
	real := realState(l.locked, l.idleKnown, l.idle, cfg.IdleAfter)
	if l.suspended {
		real = presence.Offline
	}
	local, send := decide(mode, real, l.suspended)
	changed := local != l.lastLocal || send != l.lastSent
	// A new service hears the current state at once rather than at the next
	// interval; with nothing being sent (offline, invisible) it hears nothing.
	due := !l.nextBeat.IsZero() && (!now.Before(l.nextBeat) || a.beatNow.Swap(false))
	if changed || due {
		l.beat(wctx, now, local, send, cfg)
	}
	a.mu.Lock()
	a.st.State, a.st.SentState, a.st.Idle, a.st.Suspended = real, l.lastSent, l.idle, l.suspended
	a.st.IdleError = ""
	if l.idleErr != nil {
		a.st.IdleError = l.idleErr.Error()
	}
	a.st.StoreError = ""
	if l.storeErr != nil {
		a.st.StoreError = l.storeErr.Error()
	}
	a.mu.Unlock()
	a.publish()
}

// endPause returns to Automatic when the pause that ends at until is over
// (unless the user changed the mode meanwhile) and returns the mode now.
func (l *loop) endPause(wctx context.Context, until time.Time) Mode {
	a := l.a
	a.mu.Lock()
	ended := a.mode == Pause && a.until.Equal(until)
	if ended {
		a.mode, a.until = Automatic, time.Time{}
	}
	mode := a.mode
	a.mu.Unlock()
	if ended {
		a.log.Info("pause ended")
		if err := a.db.SetMode(wctx, string(Automatic), time.Time{}); err != nil {
			a.log.Error("cannot store the mode", slog.Any(logErr, err))
		}
	}
	return mode
}

// beat writes one beat: local history and outbox in one transaction.
// Offline is written once: it means "nothing follows", so repeating it would
// only cost writes.
func (l *loop) beat(wctx context.Context, now time.Time, local, send presence.State, cfg Config) {
	a := l.a
	e := agentdb.Entry{At: now, IdleS: int64(l.idle / time.Second)}
	if local != presence.Offline || l.lastLocal != presence.Offline {
		e.Local = local
	}
	if send != presence.Offline || l.lastSent != presence.Offline {
		e.Send = send
	}
	if e.Local == "" && e.Send == "" {
		l.nextBeat = time.Time{}
		return
	}
	b, err := a.db.Record(wctx, e)
	if err != nil {
		// Retried at the next tick: lastLocal/lastSent still differ, or the
		// beat is still due.
		if l.storeErr == nil {
			a.log.Error("cannot write beat", slog.Any(logErr, err))
		}
		l.storeErr = err
		return
	}
	if l.storeErr != nil {
		a.log.Info("writing beats again")
		l.storeErr = nil
	}
	if send != l.lastSent || local != l.lastLocal {
		a.log.Debug("state", slog.String(logState, string(local)), slog.String("sent", string(send)))
	}
	l.lastLocal, l.lastSent = local, send
	if local == presence.Offline && send == presence.Offline {
		l.nextBeat = time.Time{}
	} else {
		l.nextBeat = now.Add(jittered(cfg.Interval, cfg.Jitter, a.rand()))
	}
	if b.Seq != 0 {
		poke(a.s.wake)
	}
	if e.Local != "" {
		if t, err := a.db.ActiveToday(wctx, now, a.loc); err == nil {
			a.mu.Lock()
			a.st.TodayActive = t
			a.mu.Unlock()
		}
	}
}

// final writes the quit beat (offline, unless already offline) and gives the
// sender FinalDeadline to deliver it.
func (l *loop) final(wctx context.Context) {
	a := l.a
	now := a.now()
	cfg := a.Config()
	l.suspended = true
	l.beat(wctx, now, presence.Offline, presence.Offline, cfg)
	a.mu.Lock()
	a.st.State, a.st.SentState, a.st.Suspended = presence.Offline, l.lastSent, true
	a.mu.Unlock()
	a.publish()
	a.s.flush(cfg.FinalDeadline)
}

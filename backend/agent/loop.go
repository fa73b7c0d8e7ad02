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
	sampledAt time.Time // when the last read (good or not) returned
	// quickRead: a read came sooner than a Tick after the one before since
	// the last input. See nextSample.
	quickRead bool

	// The input waiter (nil when the idle reader cannot wait): while the
	// machine is idle a goroutine blocks in WaitInput until the user's next
	// input and answers on input (nil while no wait runs).
	waiter      InputWaiter
	input       chan error
	stopWait    context.CancelFunc
	waitedAt    time.Time // when the last wait began
	waitRetryAt time.Time // after a failed wait: poll until then
	waitErr     error     // the failure of the last wait, logged once per streak

	lastLocal, lastSent presence.State // last written; "" before the first beat
	nextBeat            time.Time      // zero: no periodic beat (everything is offline)
	storeErr            error
}

// waitResample is the safety read while an input waiter runs: the waiter
// says when input comes, so the read is only there in case it never does.
const waitResample = time.Minute

func (l *loop) run(ctx context.Context) {
	a := l.a
	// Writes must complete even while quitting: that is when the final beat
	// is written.
	wctx := context.WithoutCancel(ctx)
	l.waiter, _ = a.idle.(InputWaiter)
	defer l.endWait(true)
	now := a.now()
	l.sample(ctx, now)
	l.evaluate(wctx, now)
	l.planWait(ctx, now)
	timer := time.NewTimer(l.sleepFor(now))
	defer timer.Stop()
	events := l.events
	for {
		// resample: something happened that the last read cannot answer
		// for (the user's settings changed, or the input waiter returned).
		resample := false
		select {
		case <-ctx.Done():
			l.endWait(true)
			l.final(wctx)
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the event source is gone; keep sampling
				continue
			}
			l.handle(ctx, wctx, ev)
		case <-a.wake:
			resample = true
		case err := <-l.input:
			l.stopWait()
			l.input, l.stopWait = nil, nil
			if ctx.Err() != nil {
				continue // quitting: the wait ended with ctx, not of itself
			}
			l.waited(err)
			resample = true
		case <-timer.C:
		}
		now := a.now()
		if resample || !now.Before(l.nextSample()) || l.beatDue(now) {
			l.sample(ctx, now)
		}
		l.evaluate(wctx, now)
		l.planWait(ctx, now)
		timer.Reset(l.sleepFor(now))
	}
}

// sleepFor is the wait until the next thing to do: a sample, a periodic beat
// or the end of a pause.
func (l *loop) sleepFor(now time.Time) time.Duration {
	next := l.nextSample()
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

func (l *loop) beatDue(now time.Time) bool {
	return !l.nextBeat.IsZero() && !now.Before(l.nextBeat)
}

// nextSample is when the idle time must be read again. Reads cost wakeups
// (and on X11 a round trip through the server), so the loop reads only when
// a read can change something:
//   - active: input only keeps the machine active, and a lock or sleep
//     arrives as an event, so nothing can change before the idle time could
//     reach the threshold, IdleAfter − idle after the last read;
//   - idle with an input waiter running: the waiter reports the input, and
//     the read is a safety net;
//   - otherwise (idle without a waiter, locked, asleep, reads failing):
//     every Tick.
//
// Beats read too (see run), so their idle seconds are fresh. Planned reads
// come a Tick apart at least, with one exception: the threshold is read on
// time even when a beat's read came just before it, once per stretch of
// activity (so no reader, not even one whose counter stands still, can make
// the loop spin). That, the beat interval and waits started at most once a
// Tick keep the loop under two wakeups a second.
func (l *loop) nextSample() time.Time {
	cfg := l.a.Config()
	wait := cfg.Tick
	switch {
	case l.input != nil:
		wait = waitResample
	case l.realState(cfg) == presence.Active && l.idleErr == nil:
		wait = cfg.IdleAfter - l.idle
		if !l.quickRead {
			return l.sampledAt.Add(max(wait, 0))
		}
	}
	return l.sampledAt.Add(max(wait, cfg.Tick))
}

func (l *loop) realState(cfg Config) presence.State {
	if l.suspended {
		return presence.Offline
	}
	return realState(l.locked, l.idleKnown, l.idle, cfg.IdleAfter)
}

// planWait runs the input waiter while the machine is idle (unlocked,
// awake, read without error, no input past the threshold) and stops it
// otherwise.
func (l *loop) planWait(ctx context.Context, now time.Time) {
	cfg := l.a.Config()
	want := l.waiter != nil && l.realState(cfg) == presence.Idle && l.idleErr == nil && ctx.Err() == nil
	if !want {
		l.endWait(false)
		return
	}
	if l.input != nil || now.Before(l.waitRetryAt) {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	l.input, l.stopWait, l.waitedAt = done, cancel, now
	go func() { done <- l.waiter.WaitInput(wctx) }()
}

// waited takes the answer of a wait that returned by itself: nil means
// input came. The next wait starts a Tick after this one began at the
// earliest, so a waiter that returns at once cannot spin the loop; after a
// failure the loop polls for waitResample before trying again.
func (l *loop) waited(err error) {
	a := l.a
	l.waitRetryAt = l.waitedAt.Add(a.Config().Tick)
	if err == nil {
		if l.waitErr != nil {
			a.log.Info("waiting for input works again")
			l.waitErr = nil
		}
		return
	}
	if l.waitErr == nil {
		a.log.Warn("cannot wait for input; sampling the idle time instead", slog.Any(logErr, err))
	}
	l.waitErr = err
	l.waitRetryAt = a.now().Add(waitResample)
}

// endWait stops a running waiter; with drain it also waits for it to
// return (the idle reader may be closed once Run returns).
func (l *loop) endWait(drain bool) {
	if l.input == nil {
		return
	}
	l.stopWait()
	if drain {
		<-l.input
	}
	l.input, l.stopWait = nil, nil
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
	rctx, cancel := context.WithTimeout(ctx, cfg.Tick)
	d, err := a.idle.Idle(rctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	// Taken after the read: the next one is planned from the idle time
	// just read, and planning from an earlier instant would come too soon.
	readAt := a.now()
	if readAt.Sub(l.sampledAt) < cfg.Tick {
		l.quickRead = true
	}
	l.sampledAt = readAt
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
	if d < l.idle {
		l.quickRead = false // input since the last read: a new stretch
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
	real := l.realState(cfg)
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

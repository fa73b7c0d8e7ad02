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
	lockedAt    time.Time // when the screen locked: the away state's edge
	suspended   bool      // asleep or logged out: final beat written, silent until resumed
	suspendedAt time.Time // when the machine went: the offline state's edge
	// suspendedBy is why: asleep, shut down or logged off, or quit. The
	// final beat carries it (presence.Beat.Reason).
	suspendedBy presence.EndReason

	idle      time.Duration // last good sample
	idleKnown bool          // a sample succeeded, and not longer than IdleErrorGrace ago if reads now fail
	idleOKAt  time.Time
	idleErr   error
	lastInput time.Time // the user's last input as of the last good sample: its time minus the idle time
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

	// sig is the call or media signal as of the last evaluation (zero
	// while the setting is off or no source is wired).
	sig Signal

	// Edges (DESIGN §2): a state begins when it really happened, and the
	// beat that changes a state says when (presence.Beat.Since).
	//
	// real is the machine's state at the last evaluation and realSince when
	// it began. edgeFloor is the earliest the next state may claim to have
	// begun: the wake after a sleep, the moment the user changed whether
	// calls count. forceIdle makes the machine idle for one evaluation: a
	// lock after minutes without input first ends the active span at the
	// last input.
	real      shown
	realSince time.Time
	edgeFloor time.Time
	forceIdle bool
	// What local history and the service are told follows the real state
	// unless a mode (or a pause) decides it; localFloor and sendFloor are
	// when that rule last changed for each, so a state it brings never
	// begins before the user chose it.
	mode                  Mode
	counting              bool // Config.CountCallsAndMedia at the last evaluation
	localFloor, sendFloor time.Time

	lastLocal, lastSent shown     // last written; zero before the first beat
	lastBeatAt          time.Time // when the last beat was written
	nextBeat            time.Time // zero: no periodic beat (everything is offline)
	storeErr            error
}

// shown is what one side (local history, the service) is told: a state and,
// for active, why; for away by the screen lock, presence.ByLock. Why is empty
// for every other state.
type shown struct {
	state presence.State
	why   presence.Why
}

// lockInputTolerance is how recent the last input may be for a lock to end
// an active span at the lock itself. A lock that soon after input is the
// user locking at the keyboard (a shortcut, a menu): the span runs to the
// lock. An older last input means the user had left before the screen
// locked (an automatic lock after minutes): the active span ends at the last
// input, an idle span runs from there to the lock, and away begins at the
// lock. Pressing the lock shortcut is itself input, a second or two before
// the lock arrives; five seconds leaves room for a slow lock screen without
// letting a walk-away count.
const lockInputTolerance = 5 * time.Second

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
	a.mu.Lock()
	l.mode, l.counting = a.mode, a.cfg.CountCallsAndMedia
	a.mu.Unlock()
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
			l.final(wctx, stopReason(ctx))
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the event source is gone; keep sampling
				continue
			}
			l.handle(ctx, wctx, ev)
		case <-a.wake:
			resample = true
		case <-l.signalChanged():
			// A call or a video began or ended: the idle time says whether
			// input still counts, and when it last came.
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
//   - active by input: input only keeps the machine active, a lock or sleep
//     arrives as an event and a call or video as a signal, so nothing can
//     change before the idle time could reach the threshold, IdleAfter −
//     idle after the last read;
//   - idle (or active by a call or media) with an input waiter running: the
//     waiter reports the input, and the read is a safety net;
//   - otherwise (the same without a waiter, locked, asleep, reads
//     failing): every Tick.
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
	case l.realNow(cfg).byInput() && l.idleErr == nil:
		wait = cfg.IdleAfter - l.idle
		if !l.quickRead {
			return l.sampledAt.Add(max(wait, 0))
		}
	}
	return l.sampledAt.Add(max(wait, cfg.Tick))
}

// realNow is the machine's state now, with why when active: input within
// the threshold, else (with the setting on and the screen unlocked) a call
// or media.
func (l *loop) realNow(cfg Config) shown {
	if l.suspended {
		return shown{state: presence.Offline}
	}
	st := realState(l.locked, l.idleKnown, l.idle, cfg.IdleAfter)
	if st == presence.Active && l.forceIdle {
		st = presence.Idle
	}
	switch {
	case st == presence.Active:
		return shown{presence.Active, presence.ByInput}
	case st == presence.Idle && l.sig.On():
		return shown{presence.Active, l.sig.Why}
	case st == presence.Away && l.locked:
		return shown{presence.Away, presence.ByLock}
	}
	return shown{state: st}
}

// activeWhy is what makes s present, "" unless s is active (Status.Why).
func (s shown) activeWhy() presence.Why {
	if s.state != presence.Active {
		return ""
	}
	return s.why
}

// byInput reports whether s is the state only input keeps: active by input.
func (s shown) byInput() bool { return s.state == presence.Active && s.why == presence.ByInput }

// waitsForInput reports whether s is a state input would end: idle, or
// active by a call or media.
func (s shown) waitsForInput() bool {
	return s.state == presence.Idle || s.state == presence.Active && s.why != presence.ByInput
}

// signalChanged is the signal source's change channel while the setting is
// on, else nil (a select never takes it).
func (l *loop) signalChanged() <-chan struct{} {
	a := l.a
	if a.signals == nil || !a.Config().CountCallsAndMedia {
		return nil
	}
	return a.signals.Changed()
}

// signal reads the call and media signal, zero while the setting is off.
func (l *loop) signal(cfg Config) Signal {
	if l.a.signals == nil || !cfg.CountCallsAndMedia {
		return Signal{}
	}
	s := l.a.signals.Signal()
	if !s.On() {
		s.Why, s.Since = "", time.Time{}
	}
	return s
}

// planWait runs the input waiter while the machine is idle, or active only
// by a call or media (unlocked, awake, read without error, no input past the
// threshold), and stops it otherwise.
func (l *loop) planWait(ctx context.Context, now time.Time) {
	cfg := l.a.Config()
	want := l.waiter != nil && l.realNow(cfg).waitsForInput() && l.idleErr == nil && ctx.Err() == nil
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
	at := eventTime(ev, now)
	a.log.Debug("os event", slog.String(logEvent, ev.Kind.String()))
	final := false
	switch ev.Kind {
	case Locked:
		if !l.locked {
			l.lock(wctx, ctx, now, at)
		}
	case Unlocked:
		l.locked = false
		if l.suspended {
			l.resume(now) // an unlocked screen is a running machine
		}
		l.sample(ctx, now)
	case Woke:
		if l.suspended {
			l.resume(later(at, l.suspendedAt))
		}
		l.sample(ctx, now)
	case Sleeping, LoggingOut:
		final = l.sleep(ctx, wctx, ev.Kind, now, at)
	}
	l.evaluate(wctx, now)
	if final {
		a.s.flush(a.Config().FinalDeadline)
	}
	if ev.Done != nil {
		ev.Done()
	}
}

// eventTime is when ev happened: its At, never after now (zero: now).
func eventTime(ev OSEvent, now time.Time) time.Time {
	if ev.At.IsZero() || ev.At.After(now) {
		return now
	}
	return ev.At
}

// lock locks the screen at at. When the user had left before it locked, the
// active span ends at the last input first (see lockInputTolerance): one idle
// beat, then away.
func (l *loop) lock(wctx, ctx context.Context, now, at time.Time) {
	l.sample(ctx, now) // the last input, fresh: an active machine reads only at its beats
	cfg := l.a.Config()
	l.sig = l.signal(cfg)
	if r := l.realNow(cfg); r.byInput() && l.idleKnown && !l.sig.On() &&
		at.Sub(l.idleEdge(cfg)) > lockInputTolerance {
		l.forceIdle = true
		l.evaluate(wctx, now)
		l.forceIdle = false
	}
	l.locked, l.lockedAt = true, at
}

// sleep takes a Sleeping or LoggingOut event and reports whether a final
// beat must be flushed now. A suspend reported after the wake (At older
// than LateSleep) gets an offline beat stamped at its At — the last moment
// the machine was known awake, after every beat written so far — so that
// the next beat can start at the first input after the wake, which a beat
// stamped now would hide. Input since then ends the suspend at once (see
// sample); else the Woke that follows the report does. Unless beats were
// written after that At: the agent ran after the last moment the detector
// knew it awake, those beats already tell the story (the service ends the
// span at the last of them before the gap), and an offline beat now would
// cut the span the wake began.
func (l *loop) sleep(ctx, wctx context.Context, kind OSEventKind, now, at time.Time) (final bool) {
	a := l.a
	late := kind == Sleeping && now.Sub(at) > LateSleep
	switch {
	case l.suspended:
		return false
	case late && at.Before(l.lastBeatAt):
		a.log.Debug("a suspend reported after beats that followed it; the beats stand",
			slog.Time("since", at), slog.Time("last_beat", l.lastBeatAt))
		l.sample(ctx, now)
		return false
	case late:
		l.suspended, l.suspendedAt, l.suspendedBy = true, at, presence.EndSleep
		l.evaluate(wctx, at) // offline from the last moment known awake
		l.sample(ctx, now)   // input after it: awake, active from that input
		return false
	}
	// Never before the last beat: a beat written while the event waited
	// in the queue stands.
	l.suspended, l.suspendedAt = true, later(at, l.lastBeatAt)
	l.suspendedBy = presence.EndSleep
	if kind == LoggingOut {
		l.suspendedBy = presence.EndShutdown
	}
	return true
}

// resume ends a suspend: no state after it begins before at (the wake),
// whatever the idle counter says of the time asleep.
func (l *loop) resume(at time.Time) {
	l.suspended = false
	l.edgeFloor, l.localFloor, l.sendFloor = at, at, at
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
		l.resume(now.Add(-d))
	}
	if d < l.idle {
		l.quickRead = false // input since the last read: a new stretch
	}
	l.idleErr, l.idle, l.idleKnown, l.idleOKAt = nil, d, true, now
	l.lastInput = now.Add(-d)
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
	l.rulesChanged(now, mode, cfg)
	l.sig = l.signal(cfg)
	real := l.realNow(cfg)
	if real != l.real {
		l.realSince, l.real = l.edge(real, now, cfg), real
	}
	local, send := l.sides(mode, real)
	changed := local != l.lastLocal || send != l.lastSent
	// A new service hears the current state at once rather than at the next
	// interval; with nothing being sent (offline, invisible) it hears nothing.
	due := !l.nextBeat.IsZero() && (!now.Before(l.nextBeat) || a.beatNow.Swap(false))
	if changed || due {
		var localSince, sendSince time.Time
		if local != l.lastLocal {
			localSince = l.since(now, local == real && (l.suspended || mode != Pause), l.localFloor)
		}
		if send != l.lastSent {
			sendSince = l.since(now, send == real && (l.suspended || mode == Automatic), l.sendFloor)
		}
		l.beat(wctx, now, local, localSince, send, sendSince, cfg)
	}
	a.mu.Lock()
	a.st.State, a.st.Why, a.st.SentState, a.st.Idle, a.st.Suspended = real.state, real.activeWhy(), l.lastSent.state, l.idle, l.suspended
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

// rulesChanged notes a change of what decides the beats: a new mode starts
// whatever it imposes now (a pause, for local history too), and turning
// calls and media on or off starts the state it brings now, never at the
// call's start or the last input before the user chose.
func (l *loop) rulesChanged(now time.Time, mode Mode, cfg Config) {
	if mode != l.mode {
		l.sendFloor = now
		if mode == Pause || l.mode == Pause {
			l.localFloor = now
		}
		l.mode = mode
	}
	if cfg.CountCallsAndMedia != l.counting {
		l.edgeFloor = now
		l.counting = cfg.CountCallsAndMedia
	}
}

// sides is what local history and the service are told for the real state
// under mode (see decide), with why for an active state that follows the
// machine; a mode's own active ("appear online") has no why.
func (l *loop) sides(mode Mode, real shown) (local, send shown) {
	ls, ss := decide(mode, real.state, l.suspended)
	local, send = shown{state: ls}, shown{state: ss}
	if ls == real.state {
		local = real
	}
	if ss == real.state && mode == Automatic {
		send = real
	}
	return local, send
}

// since is the edge of a side's new state: the real state's edge when the
// side follows the machine, else (a mode or pause imposed it) the moment
// the rule changed; never before floor, never after now.
func (l *loop) since(now time.Time, follows bool, floor time.Time) time.Time {
	e := floor
	if follows {
		e = later(l.realSince, floor)
	}
	if e.IsZero() || e.After(now) {
		return now
	}
	return e
}

// edge is when the machine's new state s began, as far as the agent can
// tell (DESIGN §2): active at the input that made it so (the first after
// a wake); a call or media at its start, or at the last input when the user
// stopped typing during it — and when one signal takes over from another
// (a call ends while a video plays on, whose start is long past), at the
// change, which the agent hears of at once; idle at the last input, or at
// the end of the call or video that kept the user present when that is
// later; away at the lock; offline at the sleep. Never before the state it
// follows began, nor before edgeFloor, nor after now.
func (l *loop) edge(s shown, now time.Time, cfg Config) time.Time {
	var e time.Time
	switch {
	case s.byInput():
		e = l.lastInput
	case s.state == presence.Active && l.real.state == presence.Active && !l.real.byInput():
		e = now // one signal after another
		if l.sig.Since.After(l.realSince) {
			e = l.sig.Since
		}
	case s.state == presence.Active: // a call or media
		e = later(l.lastInput, l.sig.Since)
	case s.state == presence.Idle:
		e = l.idleEdge(cfg)
	case s.state == presence.Away && l.locked:
		e = l.lockedAt
	case s.state == presence.Offline:
		e = l.suspendedAt
	default: // away because the idle time cannot be read: from now
		e = now
	}
	e = later(e, later(l.realSince, l.edgeFloor))
	if e.IsZero() || e.After(now) {
		return now
	}
	return e
}

// idleEdge is when the user stopped being present by input or by a signal:
// the later of the last input and the end of the last call or video (while
// the setting is on).
func (l *loop) idleEdge(cfg Config) time.Time {
	if cfg.CountCallsAndMedia {
		return later(l.lastInput, l.sig.Ended)
	}
	return l.lastInput
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
// only cost writes, and it carries why (offlineReason). A side whose state
// changed carries its edge (since); every active beat carries its why, or a
// periodic beat of a call would split the call's span.
func (l *loop) beat(wctx context.Context, now time.Time, local shown, localSince time.Time, send shown, sendSince time.Time, cfg Config) {
	a := l.a
	e := agentdb.Entry{At: now, IdleS: int64(l.idle / time.Second), Reason: l.offlineReason()}
	if local.state != presence.Offline || l.lastLocal.state != presence.Offline {
		e.Local, e.Why, e.Since = local.state, local.why, localSince
	}
	if send.state != presence.Offline || l.lastSent.state != presence.Offline {
		e.Send, e.SendWhy, e.SendSince = send.state, send.why, sendSince
	}
	if e.Local == "" && e.Send == "" {
		l.nextBeat = time.Time{}
		return
	}
	b, err := a.db.Record(wctx, e)
	if err != nil {
		// Retried a tick later: lastLocal/lastSent still differ, or the
		// beat is still due. Not at once: a due beat that cannot be
		// written would spin the loop. (A full or read-only disk is no
		// error here: the database holds the beat in memory.)
		if l.storeErr == nil {
			a.log.Error("cannot write beat", slog.Any(logErr, err))
		}
		l.storeErr = err
		if !l.nextBeat.IsZero() {
			l.nextBeat = now.Add(cfg.Tick)
		}
		return
	}
	if l.storeErr != nil {
		a.log.Info("writing beats again")
		l.storeErr = nil
	}
	if send != l.lastSent || local != l.lastLocal {
		a.log.Debug("state", slog.String(logState, string(local.state)), slog.String("why", string(local.why)),
			slog.String("sent", string(send.state)), slog.Time("since", later(localSince, sendSince)))
	}
	l.lastLocal, l.lastSent, l.lastBeatAt = local, send, now
	if local.state == presence.Offline && send.state == presence.Offline {
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

// offlineReason is why a side the loop tells offline is offline: the
// machine went (asleep, shut down, quit), else the user paused or went
// invisible. Empty while nothing makes it offline.
func (l *loop) offlineReason() presence.EndReason {
	switch {
	case l.suspended:
		return l.suspendedBy
	case l.mode == Pause:
		return presence.EndPaused
	case l.mode == Invisible:
		return presence.EndInvisible
	}
	return ""
}

// final writes the final beat (offline for reason, unless already offline)
// and gives the sender FinalDeadline to deliver it.
func (l *loop) final(wctx context.Context, reason presence.EndReason) {
	a := l.a
	now := a.now()
	cfg := a.Config()
	l.suspended, l.suspendedAt, l.suspendedBy = true, now, reason
	off := shown{state: presence.Offline}
	l.beat(wctx, now, off, now, off, now, cfg)
	a.mu.Lock()
	a.st.State, a.st.Why, a.st.SentState, a.st.Suspended = presence.Offline, "", l.lastSent.state, true
	a.mu.Unlock()
	a.publish()
	a.s.flush(cfg.FinalDeadline)
}

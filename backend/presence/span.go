package presence

import "time"

// Pulse is the beat cadence a service expects. A beat no later than
// previous + Interval + Grace continues a span; a device with no beat for
// Interval + Grace is offline.
type Pulse struct {
	Interval time.Duration
	Grace    time.Duration
}

// DefaultPulse is DESIGN §2's 30 s interval with 30 s grace.
var DefaultPulse = Pulse{Interval: 30 * time.Second, Grace: 30 * time.Second}

// Window is the pulse window: the longest gap that still joins two beats.
func (p Pulse) Window() time.Duration { return p.Interval + p.Grace }

// Validate checks the pulse is usable.
func (p Pulse) Validate() error {
	if p.Interval <= 0 || p.Grace < 0 {
		return Errorf(EINVALID, "pulse interval must be positive and grace not negative")
	}
	return nil
}

// Span is a run of consecutive beats of one device in one state. It runs from
// its first beat to its last beat, or to the beat that changed the state.
// Its duration is wall-clock End − Start: never a fixed amount per beat.
//
// Closed marks a span ended by an explicit beat (a new state, offline) or by a
// gap. A span that is not Closed may still be extended by a late beat within
// the pulse window; whether it is "open" right now also depends on the clock,
// see OpenAt. Expiry never rewrites End, so a device that went silent is
// never stretched to "now".
type Span struct {
	ID       int64 `json:"id"`
	DeviceID int64 `json:"device_id"`
	State    State `json:"state"`
	// Why is what made an active span present (input, call, media), or
	// "locked" for an away span the screen lock began; empty otherwise.
	Why   Why       `json:"why,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// EndReason says why nothing followed the span: the reason of the
	// offline beat that ended it (empty when that beat gave none), or
	// EndSilence when a gap ended it. Empty while it runs and when a new
	// state took over. A span that is not Closed and no longer open ended
	// in silence too; see Ended.
	EndReason EndReason `json:"end_reason,omitempty"`
	// Replayed marks a span some of whose beats reached the service more
	// than the pulse window late: queued while the network was gone and
	// replayed (the live status said offline meanwhile).
	Replayed bool `json:"replayed,omitempty"`
	Closed   bool `json:"-"`
}

// Ended is the span's EndReason as of a read: a span no beat closed that is
// no longer open (open, from OpenAt) went silent, with no final beat.
func (s Span) Ended(open bool) EndReason {
	if s.EndReason == "" && !s.Closed && !open {
		return EndSilence
	}
	return s.EndReason
}

// Duration is End − Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// OpenAt reports whether the span is still running at now: not closed, and its
// last beat within the pulse window.
func (s Span) OpenAt(now time.Time, window time.Duration) bool {
	return !s.Closed && now.Sub(s.End) <= window
}

// Outcome is what one beat did to a device's tail span.
type Outcome struct {
	// Closed is the previous tail, finalised, when the beat ended it (a new
	// state, an offline beat, or a gap longer than the window). Its End is
	// final. Nil when the previous tail was extended or untouched.
	Closed *Span
	// Tail is the device's tail after the beat: the extended previous tail or
	// a new span (Started). Nil after an offline beat.
	Tail *Span
	// Started reports that Tail is a new span (to be inserted; ID is zero).
	Started bool
	// Stale reports a beat older than the tail's end: it changes nothing.
	Stale bool
}

// Changed reports whether the beat changed any span.
func (o Outcome) Changed() bool { return !o.Stale && (o.Closed != nil || o.Tail != nil) }

// Merge applies beat b to a device's tail span (nil for none). It is pure: the
// same tail, beat and window always give the same outcome, and tail is not
// modified. The rules (DESIGN §2):
//
//   - a beat before the tail's end is stale and changes nothing (a re-sent
//     beat whose seq slipped past the duplicate check still cannot count twice);
//   - a beat of another state (or another Why: a call after typing), or an
//     offline beat, ends the tail at the edge
//     — the moment the new state began (b.Since), never before the tail's
//     start nor after the beat — and starts the next span there: an active
//     span ends at the last input, not when the idle threshold was crossed;
//   - a beat more than window after the tail's end closes the tail at its last
//     beat and starts a new span at its edge (the first input after waking),
//     never before the tail's end nor more than a window before the beat;
//     an offline beat after such a gap (a suspend the agent found late)
//     closes the tail at its edge instead — the last moment the machine was
//     known awake — but at most a window past the tail's last beat;
//   - a beat of the same state extends the tail to the beat.
//
// A span closed by an offline beat takes the beat's reason (EndReason); one
// closed by a gap, EndSilence, unless an offline beat after the gap tells
// why (a suspend found late). A beat received more than window after its
// time (Beat.Received) marks the span it starts or extends Replayed.
//
// With no tail the new span starts at the edge, at most a window before the
// beat (Fold also keeps it after the device's last beat).
func Merge(tail *Span, b Beat, window time.Duration) Outcome {
	if tail != nil && tail.Closed {
		tail = nil // a closed span is history; it is never reopened
	}
	if tail != nil && b.At.Before(tail.End) {
		return Outcome{Tail: cp(tail), Stale: true}
	}
	start := func(from time.Time) *Span {
		if b.State == Offline {
			return nil
		}
		return &Span{DeviceID: deviceOf(tail), State: b.State, Why: b.Why.Of(b.State), Start: from, End: b.At, Replayed: b.late(window)}
	}
	if tail == nil {
		n := start(b.edge(b.At.Add(-window)))
		return Outcome{Tail: n, Started: n != nil}
	}
	switch {
	case b.At.Sub(tail.End) > window:
		closed := cp(tail)
		closed.Closed = true
		closed.EndReason = EndSilence
		if b.State == Offline {
			closed.End = earlier(b.edge(tail.End), tail.End.Add(window))
			closed.EndReason = b.Reason
		}
		n := start(b.edge(later(tail.End, b.At.Add(-window))))
		return Outcome{Closed: closed, Tail: n, Started: n != nil}
	case b.State != tail.State || b.Why.Of(b.State) != tail.Why.Of(tail.State):
		edge := b.edge(tail.Start)
		closed := cp(tail)
		closed.End = edge
		closed.Closed = true
		closed.EndReason = b.Reason.Of(b.State)
		n := start(edge)
		return Outcome{Closed: closed, Tail: n, Started: n != nil}
	default:
		ext := cp(tail)
		ext.End = b.At
		ext.Replayed = ext.Replayed || b.late(window)
		return Outcome{Tail: ext}
	}
}

// edge is when b's state began: b.Since, kept between lo and b.At.
func (b Beat) edge(lo time.Time) time.Time {
	e := b.At
	if !b.Since.IsZero() && b.Since.Before(e) {
		e = b.Since
	}
	return later(e, lo)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func cp(s *Span) *Span {
	c := *s
	return &c
}

func deviceOf(s *Span) int64 {
	if s == nil {
		return 0
	}
	return s.DeviceID
}

package presence

import (
	"cmp"
	"slices"
	"time"
)

// Beat is one "I'm here" from a device: its state at At. Seq rises per device;
// a beat at or below the device's high-water mark (last_seq) is a duplicate.
type Beat struct {
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
	State State     `json:"state"`
	IdleS int64     `json:"idle_s"`
	// Since, when set, is the moment the beat's state really began, if
	// earlier than At: the last input for idle, the lock for away, the
	// sleep or quit for offline, the first input after waking for active.
	// Spans take their edges from it (see Merge). Zero means At.
	Since time.Time `json:"since,omitzero"`
	// Why, for an active beat, says what makes the user present: input, a
	// call or media (empty means input); for an away beat, "locked" when
	// the screen lock took the user away. Ignored on other states.
	Why Why `json:"why,omitempty"`
	// Reason, for an offline beat, says why the device goes: asleep, shut
	// down or logged off, quit, paused or invisible. Empty is an agent that
	// predates reasons. Ignored on other states.
	Reason EndReason `json:"reason,omitempty"`
	// Received is when the service got the beat (set by PrepareBatch, never
	// on the wire). A beat received more than the pulse window after its
	// time was queued and replayed: its span is marked Replayed. Zero (a
	// beat folded where it was made, as the agent's history does) is on time.
	Received time.Time `json:"-"`
}

// late reports whether b reached the service more than window after its
// time: queued while the network was gone, replayed later.
func (b Beat) late(window time.Duration) bool {
	return !b.Received.IsZero() && b.Received.Sub(b.At) > window
}

// Batch limits of the v1 API (DESIGN §3).
const (
	MaxBatchBeats = 1000
	MaxBatchBytes = 1 << 20
)

// Limits bound how far a beat's time may stray from the service's clock after
// the skew shift. MaxPast must cover the longest outage an agent replays (its
// outbox keeps a week and more); MaxFuture absorbs jitter, not broken clocks.
type Limits struct {
	MaxPast       time.Duration
	MaxFuture     time.Duration
	SkewTolerance time.Duration
}

// DefaultLimits accept a month of queued beats and two minutes of future,
// and shift batches whose device clock is more than five seconds off.
var DefaultLimits = Limits{
	MaxPast:       30 * 24 * time.Hour,
	MaxFuture:     2 * time.Minute,
	SkewTolerance: 5 * time.Second,
}

// Skew returns how much to shift a batch's beats: receivedAt − sentAt when
// that exceeds tolerance in either direction, else zero. Network latency is
// far below any sensible tolerance, so small offsets are left alone rather
// than adding noise to every beat.
func Skew(sentAt, receivedAt time.Time, tolerance time.Duration) time.Duration {
	if sentAt.IsZero() {
		return 0
	}
	d := receivedAt.Sub(sentAt)
	if d > tolerance || d < -tolerance {
		return d
	}
	return 0
}

// MaxSeq bounds a beat's seq: 2^53, the largest integer a JavaScript number
// holds exactly, and far more than a device beating every second makes in
// a lifetime. A bound also keeps a hostile seq of 2^63−1 from making every
// later beat of the device a duplicate.
const MaxSeq = 1 << 53

// CheckForm checks what a beat must be whatever the clock says: a seq in
// 1..MaxSeq, a known state, a time, no negative idle time, a why that fits
// its state and a known reason.
func (b Beat) CheckForm() error {
	switch {
	case b.Seq <= 0:
		return Errorf(EINVALID, "seq must be a positive integer")
	case b.Seq > MaxSeq:
		return Errorf(EINVALID, "seq must be at most 2^53 (%d)", int64(MaxSeq))
	case !b.State.Valid():
		return Errorf(EINVALID, "unknown state %q (want active, idle, away or offline)", string(b.State))
	case b.At.IsZero():
		return Errorf(EINVALID, "at is required")
	case b.IdleS < 0:
		return Errorf(EINVALID, "idle_s must not be negative")
	case b.Since.After(b.At):
		return Errorf(EINVALID, "since must not be after at")
	case !b.Why.Valid():
		return Errorf(EINVALID, "unknown why %q (want input, call or media; locked for away)", string(b.Why))
	case !b.Why.ValidFor(b.State):
		return Errorf(EINVALID, "why %q is for away beats only", string(b.Why))
	case !b.Reason.BeatValid():
		return Errorf(EINVALID, "unknown reason %q (want sleep, shutdown, quit, paused or invisible)", string(b.Reason))
	}
	return nil
}

// Validate checks one beat (already shifted for skew) against now: its
// form, and how far its time strays from now.
func (b Beat) Validate(now time.Time, l Limits) error {
	if err := b.CheckForm(); err != nil {
		return err
	}
	switch {
	case b.At.After(now.Add(l.MaxFuture)):
		return Errorf(EINVALID, "at is %s in the future", b.At.Sub(now).Round(time.Second))
	case b.At.Before(now.Add(-l.MaxPast)):
		return Errorf(EINVALID, "at is older than %s", l.MaxPast)
	}
	return nil
}

// Rejection names a beat the service refused and why.
type Rejection struct {
	Seq   int64  `json:"seq"`
	Error string `json:"error"`
}

// PrepareBatch shifts a batch for clock skew, validates every beat and returns
// the valid ones sorted by seq (one seq once: a repeat inside the batch is
// rejected) plus the rejected ones with their reasons. One bad beat never
// costs the rest of the batch. Each valid beat is stamped Received at
// receivedAt, so the fold can tell a replayed beat from a live one.
func PrepareBatch(sentAt time.Time, beats []Beat, receivedAt time.Time, l Limits) (valid []Beat, rejected []Rejection) {
	shift := Skew(sentAt, receivedAt, l.SkewTolerance)
	valid = make([]Beat, 0, len(beats))
	for _, b := range beats {
		if !b.At.IsZero() {
			b.At = b.At.Add(shift).UTC()
		}
		if !b.Since.IsZero() {
			b.Since = b.Since.Add(shift).UTC()
		}
		if err := b.Validate(receivedAt, l); err != nil {
			rejected = append(rejected, Rejection{Seq: b.Seq, Error: ErrorMessage(err)})
			continue
		}
		b.Received = receivedAt.UTC()
		valid = append(valid, b)
	}
	slices.SortStableFunc(valid, func(a, b Beat) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([]Beat, 0, len(valid))
	for _, b := range valid {
		if n := len(out); n > 0 && out[n-1].Seq == b.Seq {
			rejected = append(rejected, Rejection{Seq: b.Seq, Error: "seq repeated within the batch"})
			continue
		}
		out = append(out, b)
	}
	return out, rejected
}

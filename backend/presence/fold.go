package presence

import (
	"cmp"
	"slices"
	"time"
)

// Precision is the resolution every store keeps times at. PostgreSQL's
// timestamptz holds microseconds; the fold cuts beats to it, so the same
// beats give the same spans on every store and in the agent's history.
const Precision = time.Microsecond

// DeviceState is what the fold needs to know of one device: its presence
// (high-water mark included) and the span the next beat may extend.
type DeviceState struct {
	Presence DevicePresence
	// Tail is the device's open tail span: not closed by a beat. Nil before
	// the first beat and after an offline beat.
	Tail *Span
}

// SpanChange is one span a fold touched, as it stands after the batch.
type SpanChange struct {
	Span Span
	// New marks a span the batch started: it is to be inserted. Its ID is
	// the one the fold's newID gave it.
	New bool
	// Started and Ended tell what the batch did to it: started it, ended it
	// (closed by a beat or a gap), both, or neither (only extended).
	Started, Ended bool
}

// Folded is what a batch of beats did to one device: its state afterwards,
// every span to write (each once, in the order first touched), and the counts
// the API answers with.
type Folded struct {
	Device DeviceState
	Spans  []SpanChange
	// Accepted beats consumed a seq (Stale ones among them); Duplicates were
	// at or below the device's high-water mark; Rejected were malformed.
	Accepted, Duplicates, Stale int
	Rejected                    []Rejection
}

// Changed reports whether the fold moved anything a store must write.
func (f Folded) Changed() bool { return f.Accepted > 0 }

// Fold applies a device's beats to its state: the one rule every store and
// the agent's local history follow, so that they cannot disagree. It is
// pure: st is not modified, and newID is called once per span the batch
// starts, in the order they start; it must never return the id of a span
// the device already has.
//
// Beats are taken in seq order, cut to Precision. For each:
//   - a malformed beat (Beat.CheckForm) is rejected and consumes nothing;
//   - a seq at or below the high-water mark is a duplicate: counted, not
//     applied, so a re-sent beat never counts twice;
//   - a beat older than the device's latest beat is stale: it consumes its
//     seq and changes nothing else — no span, no last beat, no last seen —
//     even when no tail is left to judge it by (after an offline beat), so
//     a span never starts in a device's past;
//   - any other beat goes through Merge and DevicePresence.Apply.
func Fold(st DeviceState, beats []Beat, window time.Duration, newID func() int64) Folded {
	sorted := slices.Clone(beats)
	slices.SortStableFunc(sorted, func(a, b Beat) int { return cmp.Compare(a.Seq, b.Seq) })

	f := Folded{Device: DeviceState{Presence: st.Presence}}
	if st.Tail != nil && !st.Tail.Closed {
		t := *st.Tail
		f.Device.Tail = &t
	}
	// A batch touches a handful of spans: a linear search beats a map.
	touch := func(sp Span) *SpanChange {
		for i := range f.Spans {
			if f.Spans[i].Span.ID == sp.ID {
				f.Spans[i].Span = sp
				return &f.Spans[i]
			}
		}
		f.Spans = append(f.Spans, SpanChange{Span: sp})
		return &f.Spans[len(f.Spans)-1]
	}
	pres := &f.Device.Presence
	for _, b := range sorted {
		if err := b.CheckForm(); err != nil {
			f.Rejected = append(f.Rejected, Rejection{Seq: b.Seq, Error: ErrorMessage(err)})
			continue
		}
		b.At = b.At.UTC().Truncate(Precision)
		if !b.Since.IsZero() {
			b.Since = b.Since.UTC().Truncate(Precision)
		}
		if b.Seq <= pres.LastSeq {
			f.Duplicates++
			continue
		}
		f.Accepted++
		pres.LastSeq = b.Seq
		if b.At.Before(pres.LastBeat) {
			f.Stale++
			continue
		}
		tail := f.Device.Tail
		if tail == nil && !b.Since.IsZero() && b.Since.Before(pres.LastBeat) {
			b.Since = pres.LastBeat // an edge never goes back past what was recorded
		}
		o := Merge(tail, b, window)
		if o.Stale { // unreachable while tail.End ≤ LastBeat; kept as Merge's own guard
			f.Stale++
			continue
		}
		if o.Closed != nil {
			touch(*o.Closed).Ended = true
		}
		if o.Tail != nil {
			if o.Started {
				o.Tail.ID, o.Tail.DeviceID = newID(), pres.DeviceID
				c := touch(*o.Tail)
				c.New, c.Started = true, true
			} else {
				touch(*o.Tail)
			}
		}
		f.Device.Tail = o.Tail
		prev := *pres
		*pres = pres.Apply([]Beat{b})
		// An active span cut back to its last input takes "last seen" with it.
		if c := o.Closed; c != nil && c.State == Active && b.State != Active && pres.LastActive.After(c.End) {
			pres.LastActive = c.End
		}
		switch {
		case o.Started:
			pres.Since = o.Tail.Start
		case b.State == Offline && prev.State != Offline:
			pres.Since = b.At
			if c := o.Closed; c != nil {
				pres.Since = c.End // offline from the edge the span ended at
			}
		case prev.State != b.State || pres.Since.IsZero():
			pres.Since = b.At
		}
	}
	return f
}

// SessionEvents are the live events of a fold: one per span the batch
// started or ended, as the span stands after the batch. An event's At is
// when it happened — the span's end when it ended, else its start — never
// when the store got round to it, so every store and every view agree.
func (f Folded) SessionEvents(userID int64, now time.Time, window time.Duration) []Event {
	var out []Event
	for _, c := range f.Spans {
		if !c.Started && !c.Ended {
			continue
		}
		sp := c.Span
		at := sp.Start
		if c.Ended {
			at = sp.End
		}
		out = append(out, Event{
			Kind: EventSession, UserID: userID, At: at,
			Session: &sp, Open: sp.OpenAt(now, window),
		})
	}
	return out
}

// StatusSince is when a device's status became st, for a presence event:
// its last beat, or — when it is offline only because it fell silent — the
// moment its TTL says it went (OfflineSince), not when somebody noticed.
func (d DevicePresence) StatusSince(st State, p Pulse) time.Time {
	switch {
	case st == Offline && d.State != Offline:
		return d.OfflineSince(p)
	case st == d.State && !d.Since.IsZero():
		return d.Since
	}
	return d.LastBeat
}

// ExpiredSessionEvent is the live event of a tail span whose device fell
// silent past its TTL: the span is no longer open, it ended at its last
// beat (expiry never moves an end), which is when the event says it
// happened, and it ended in silence: no final beat came.
func ExpiredSessionEvent(userID int64, tail Span) Event {
	tail.EndReason = tail.Ended(false)
	return Event{Kind: EventSession, UserID: userID, At: tail.End, Session: &tail, Open: false}
}

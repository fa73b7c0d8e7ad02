package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func testConcurrentWriters(t *testing.T, opener Opener) {
	const (
		users      = 2
		perUser    = 4
		batches    = 20
		batchBeats = 5
	)
	e := newEnv(t, opener)
	e.clock.Set(T0.Add(sec(batches * batchBeats)))
	type dev struct {
		u presence.User
		d presence.Device
	}
	var devs []dev
	for i := range users {
		u := e.user(fmt.Sprintf("busy%d", i))
		for j := range perUser {
			devs = append(devs, dev{u, e.device(u, fmt.Sprintf("machine %d", j))})
		}
	}
	batch := func(k int) []presence.Beat {
		bs := make([]presence.Beat, batchBeats)
		for i := range bs {
			n := k*batchBeats + i
			bs[i] = beat(int64(n+1), sec(n), presence.Active)
		}
		return bs
	}

	// Every device has a sender that sends its batches in order, and a
	// re-sender that sends every acknowledged batch again, as an agent
	// whose acknowledgement got lost would: all at once, all devices.
	var mu sync.Mutex
	accepted, duplicates := 0, 0
	count := func(r presence.IngestResult) {
		mu.Lock()
		defer mu.Unlock()
		accepted += r.Accepted
		duplicates += r.Duplicates
	}
	var wg sync.WaitGroup
	for _, dv := range devs {
		acked := make(chan int, batches)
		wg.Go(func() {
			defer close(acked)
			for k := range batches {
				r, err := e.store.Ingest(e.ctx, dv.d.ID, batch(k), nil)
				if err != nil {
					t.Errorf("device %d batch %d: %v", dv.d.ID, k, err)
					return
				}
				count(r)
				acked <- k
			}
		})
		wg.Go(func() {
			for k := range acked {
				r, err := e.store.Ingest(e.ctx, dv.d.ID, batch(k), nil)
				if err != nil {
					t.Errorf("device %d re-sent batch %d: %v", dv.d.ID, k, err)
					return
				}
				count(r)
			}
		})
	}
	wg.Wait()

	total := len(devs) * batches * batchBeats
	if accepted != total || duplicates != total {
		t.Errorf("accepted %d, duplicates %d; want %d each", accepted, duplicates, total)
	}
	last := batches*batchBeats - 1
	for _, dv := range devs {
		checkSpans(t, dv.d, e.deviceSpans(dv.u, dv.d), []wantSpan{{presence.Active, 0, last, false}})
		if st := e.status(dv.d); st.Presence.LastSeq != int64(total/len(devs)) {
			t.Errorf("device %d last_seq = %d, want %d", dv.d.ID, st.Presence.LastSeq, total/len(devs))
		}
	}
	// Four machines active side by side count once per user.
	for i := range users {
		u := devs[i*perUser].u
		spans := e.spans(presence.SpanQuery{UserID: u.ID, From: T0, To: T0.Add(time.Hour)})
		days := presence.DailyTotals(spans, time.UTC, T0, T0)
		if len(days) != 1 || days[0].ActiveS != int64(last) {
			t.Errorf("user %s totals = %+v, want %d s active", u.Handle, days, last)
		}
	}
}

func testEvents(t *testing.T, opener Opener) {
	A, I, O := presence.Active, presence.Idle, presence.Offline
	e := newEnv(t, opener)
	u := e.user("ev")
	d := e.device(u, "desk")
	poke := func() { e.store.Presence(e.ctx) }

	// since returns the events recorded after the first n.
	since := func(n int) []presence.Event { return e.events.Events()[n:] }
	find := func(evs []presence.Event, match func(presence.Event) bool) *presence.Event {
		for i := range evs {
			if match(evs[i]) {
				return &evs[i]
			}
		}
		return nil
	}
	// An event's At is when the change happened, on every store: a
	// session event at the span's start (started) or end (ended), a
	// presence event at the beat that made it, an expiry at last beat + grace.
	session := func(st presence.State, start, end int, open bool) func(presence.Event) bool {
		at := T0.Add(sec(end))
		if open {
			at = T0.Add(sec(start))
		}
		return func(ev presence.Event) bool {
			s := ev.Session
			return ev.Kind == presence.EventSession && s != nil && s.DeviceID == d.ID && s.State == st &&
				s.Start.Equal(T0.Add(sec(start))) && s.End.Equal(T0.Add(sec(end))) && ev.Open == open && ev.At.Equal(at)
		}
	}
	status := func(dev, user presence.State, at time.Duration) func(presence.Event) bool {
		return func(ev presence.Event) bool {
			p := ev.Presence
			return ev.Kind == presence.EventPresence && p != nil && p.DeviceID == d.ID && p.Status == dev && p.UserStatus == user &&
				ev.At.Equal(T0.Add(at))
		}
	}
	// expect waits for events after mark matching every want, and returns
	// the new events once they are there.
	expect := func(what string, mark int, poke func(), wants ...func(presence.Event) bool) []presence.Event {
		t.Helper()
		var got []presence.Event
		waitFor(t, what, poke, func() bool {
			got = since(mark)
			for _, w := range wants {
				if find(got, w) == nil {
					return false
				}
			}
			return true
		})
		return got
	}
	dump := func(evs []presence.Event) string {
		s := ""
		for _, ev := range evs {
			s += fmt.Sprintf("\n\t#%d %s", ev.ID, ev.Kind)
			if ev.Session != nil {
				s += fmt.Sprintf(" %s [%v, %v] open=%v", ev.Session.State, ev.Session.Start.Sub(T0), ev.Session.End.Sub(T0), ev.Open)
			}
			if ev.Presence != nil {
				s += fmt.Sprintf(" device %s user %s", ev.Presence.Status, ev.Presence.UserStatus)
			}
		}
		return s
	}

	e.clock.Set(T0)
	mark := len(e.events.Events())
	e.ingest(d, beat(1, 0, A))

	t.Run("a first beat starts a session and brings the device online", func(t *testing.T) {
		got := expect("session start and presence active", mark, nil, session(A, 0, 0, true), status(A, A, 0))
		p := find(got, status(A, A, 0)).Presence
		if p.Handle != "ev" || p.DeviceName != "desk" || !p.LastSeen.Equal(T0) {
			t.Errorf("presence payload = %+v, want handle ev, device desk, last seen T0", *p)
		}
	})

	t.Run("extending a session announces nothing; a transition closes and opens", func(t *testing.T) {
		mark := len(e.events.Events())
		e.clock.Set(T0.Add(sec(30)))
		e.ingest(d, beat(2, sec(30), A))
		e.clock.Set(T0.Add(sec(41))) // a second late: events still say when it happened
		e.ingest(d, beat(3, sec(40), I))
		got := expect("the transition's events", mark, nil, session(A, 0, 40, false), session(I, 40, 40, true), status(I, I, sec(40)))
		if len(got) != 3 {
			t.Errorf("events after an extension and a transition:%s\nwant exactly: active closed, idle started, presence idle", dump(got))
		}
	})

	t.Run("expiry announces offline and ends the session without moving it", func(t *testing.T) {
		mark := len(e.events.Events())
		e.clock.Set(T0.Add(sec(40) + pulse.Window() + time.Second))
		expect("expiry events", mark, poke, session(I, 40, 40, false), status(O, O, sec(40)+pulse.Grace))
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 40, true}, {I, 40, 40, false}})
	})

	t.Run("an offline beat announces at once", func(t *testing.T) {
		e.clock.Set(T0.Add(sec(202)))
		mark := len(e.events.Events())
		e.ingest(d, beat(4, sec(200), A))
		expect("back online", mark, nil, session(A, 200, 200, true), status(A, A, sec(200)))
		mark = len(e.events.Events())
		e.clock.Set(T0.Add(sec(210)))
		e.ingest(d, beat(5, sec(210), O))
		expect("offline beat", mark, nil, session(A, 200, 210, false), status(O, O, sec(210)))
	})

	t.Run("re-sent and stale beats announce nothing", func(t *testing.T) {
		mark := len(e.events.Events())
		e.clock.Set(T0.Add(sec(250)))
		e.ingest(d, beat(5, sec(210), O), beat(6, sec(205), A)) // a duplicate, then a stale beat
		// Events come in order: once the next beat's events are here, any
		// event of the batch above would have come before them.
		e.ingest(d, beat(7, sec(250), A))
		got := expect("the next beat's events", mark, nil, session(A, 250, 250, true), status(A, A, sec(250)))
		if len(got) != 2 {
			t.Errorf("events after a duplicate, a stale beat and a new beat:%s\nwant only the new beat's two", dump(got))
		}
		e.clock.Set(T0.Add(sec(260)))
		e.ingest(d, beat(8, sec(260), O))
	})

	t.Run("IDs increase in delivery order and across a restart", func(t *testing.T) {
		checkIDs := func(evs []presence.Event) {
			t.Helper()
			for i, ev := range evs {
				if ev.UserID != u.ID || ev.At.IsZero() {
					t.Errorf("event #%d: user %d at %v, want user %d and a time", ev.ID, ev.UserID, ev.At, u.ID)
				}
				if i > 0 && ev.ID <= evs[i-1].ID {
					t.Errorf("event IDs not increasing:%s", dump(evs))
					return
				}
			}
		}
		checkIDs(e.events.Events())
		e.reopen()
		mark := len(e.events.Events())
		e.clock.Set(T0.Add(sec(300)))
		e.ingest(d, beat(9, sec(300), A))
		expect("events after restart", mark, nil, session(A, 300, 300, true), status(A, A, sec(300)))
		checkIDs(e.events.Events())
	})
}

// A call starting while the device is already active changes no status,
// but it is news: every store announces the new why at once, with the edge.
func testWhyEvents(t *testing.T, opener Opener) {
	A := presence.Active
	e := newEnv(t, opener)
	u := e.user("why")
	d := e.device(u, "desk")
	e.clock.Set(T0.Add(sec(31)))
	e.ingest(d, beat(1, 0, A), beat(2, sec(30), A))
	mark := len(e.events.Events())
	call := beat(3, sec(31), A)
	call.Why, call.Since = presence.ByCall, T0.Add(sec(20))
	e.ingest(d, call)
	var got *presence.Event
	waitFor(t, "a presence event saying in a call", nil, func() bool {
		for _, ev := range e.events.Events()[mark:] {
			if p := ev.Presence; ev.Kind == presence.EventPresence && p != nil && p.DeviceID == d.ID && p.Why == presence.ByCall {
				got = &ev
				return true
			}
		}
		return false
	})
	if got.Presence.Status != A || !got.At.Equal(T0.Add(sec(20))) {
		t.Errorf("presence event %+v at %v, want active since +20s", *got.Presence, got.At)
	}
	if st := e.status(d); st.View().Why != presence.ByCall {
		t.Errorf("device view why = %q, want call", st.View().Why)
	}
	// Another call beat is no news.
	mark = len(e.events.Events())
	e.ingest(d, presence.Beat{Seq: 4, At: T0.Add(sec(32)), State: A, Why: presence.ByCall})
	e.ingest(d, presence.Beat{Seq: 5, At: T0.Add(sec(33)), State: presence.Idle}) // a marker: its events come after any of the call beat's
	waitFor(t, "the marker's presence event", nil, func() bool {
		for _, ev := range e.events.Events()[mark:] {
			if p := ev.Presence; p != nil && p.Status == presence.Idle {
				return true
			}
		}
		return false
	})
	for _, ev := range e.events.Events()[mark:] {
		if p := ev.Presence; p != nil && p.Status == A {
			t.Errorf("a second call beat announced %+v", *p)
		}
	}
}

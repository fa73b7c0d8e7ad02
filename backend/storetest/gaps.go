package storetest

import (
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// testGapReasons holds every store to why a span ended and whether it was
// replayed: kept as the fold says, read back after a restart, told in the
// live session events (silence by expiry included), and carried by import.
func testGapReasons(t *testing.T, opener Opener) {
	A, W, O := presence.Active, presence.Away, presence.Offline
	e := newEnv(t, opener)
	u := e.user("gaps")
	poke := func() { e.store.Presence(e.ctx) }
	e.clock.Set(T0.Add(sec(60)))

	// endOf finds d's span that starts at off.
	endOf := func(d presence.Device, off time.Duration) presence.Span {
		t.Helper()
		for _, sp := range e.deviceSpans(u, d) {
			if sp.Start.Equal(T0.Add(off)) {
				return sp
			}
		}
		t.Fatalf("no span of %s starts at +%v:%s", d.Name, off, describe(e.deviceSpans(u, d)))
		return presence.Span{}
	}
	sessionEvent := func(what string, mark int, d presence.Device, match func(presence.Event) bool) presence.Event {
		t.Helper()
		var got presence.Event
		waitFor(t, what, poke, func() bool {
			for _, ev := range e.events.Events()[mark:] {
				if ev.Kind == presence.EventSession && ev.Session != nil && ev.Session.DeviceID == d.ID && match(ev) {
					got = ev
					return true
				}
			}
			return false
		})
		return got
	}

	sleeper := e.device(u, "sleeper")
	mark := len(e.events.Events())
	off := beat(3, sec(40), O)
	off.Reason = presence.EndSleep
	e.ingest(sleeper, beat(1, 0, A), beat(2, sec(30), A), off)
	if sp := endOf(sleeper, 0); !sp.Closed || sp.EndReason != presence.EndSleep || sp.Replayed {
		t.Errorf("span closed by a sleep beat: %+v, want closed with end_reason sleep, not replayed", sp)
	}
	ev := sessionEvent("the sleep's session event", mark, sleeper, func(ev presence.Event) bool { return !ev.Open })
	if ev.Session.EndReason != presence.EndSleep {
		t.Errorf("session event %+v, want end_reason sleep", *ev.Session)
	}

	locked := e.device(u, "locked")
	lock := beat(1, sec(10), W)
	lock.Why = presence.ByLock
	e.ingest(locked, lock)
	if sp := endOf(locked, sec(10)); sp.Why != presence.ByLock {
		t.Errorf("away span by the lock has why %q, want locked", sp.Why)
	}

	// Beats queued while the network was gone reach the store ten minutes late.
	replayed := e.device(u, "replayed")
	var late []presence.Beat
	for i, s := range []presence.State{A, A, O} {
		b := beat(int64(i+1), sec(10*i), s)
		b.Received = b.At.Add(10 * time.Minute)
		late = append(late, b)
	}
	late[2].Reason = presence.EndQuit
	e.ingest(replayed, late...)
	if sp := endOf(replayed, 0); !sp.Replayed || sp.EndReason != presence.EndQuit {
		t.Errorf("replayed span %+v, want replayed, ended by quit", sp)
	}

	// A device that falls silent: its expiry says silence, live, while the
	// span itself stays as the fold left it; the next beat after the gap
	// closes it in silence for good.
	silent := e.device(u, "silent")
	e.ingest(silent, beat(1, sec(50), A), beat(2, sec(60), A))
	mark = len(e.events.Events())
	e.clock.Set(T0.Add(sec(60) + pulse.Window() + time.Second))
	ev = sessionEvent("the expiry's session event", mark, silent, func(ev presence.Event) bool { return !ev.Open })
	if ev.Session.EndReason != presence.EndSilence {
		t.Errorf("expiry session event %+v, want end_reason silence", *ev.Session)
	}
	sp := endOf(silent, sec(50))
	if sp.Closed || sp.Ended(sp.OpenAt(e.clock.Now(), pulse.Window())) != presence.EndSilence {
		t.Errorf("expired tail %+v read as ended %q, want open in the store and silence at the read", sp, sp.Ended(false))
	}
	e.clock.Set(T0.Add(sec(300)))
	e.ingest(silent, beat(3, sec(300), A))
	if sp := endOf(silent, sec(50)); !sp.Closed || sp.EndReason != presence.EndSilence {
		t.Errorf("span closed by a gap %+v, want end_reason silence", sp)
	}

	// One bad reason costs its beat alone.
	bad := beat(4, sec(301), O)
	bad.Reason = "nap"
	res := e.ingest(silent, beat(5, sec(302), A), bad)
	if res.Accepted != 1 || len(res.Rejected) != 1 || res.Rejected[0].Seq != 4 {
		t.Errorf("a beat with an unknown reason: %+v, want it rejected alone", res)
	}

	// Import carries both; an older export without them still imports.
	imp := e.device(u, "imported")
	e.importSpans(imp,
		presence.Span{State: A, Start: T0.Add(-sec(600)), End: T0.Add(-sec(500)), EndReason: presence.EndShutdown, Replayed: true},
		presence.Span{State: A, Start: T0.Add(-sec(400)), End: T0.Add(-sec(300))},
	)
	if sp := endOf(imp, -sec(600)); sp.EndReason != presence.EndShutdown || !sp.Replayed {
		t.Errorf("imported span %+v, want end_reason shutdown, replayed", sp)
	}
	if sp := endOf(imp, -sec(400)); sp.EndReason != "" || sp.Replayed {
		t.Errorf("imported span without reasons %+v", sp)
	}

	// What was written is what is read after a restart.
	e.reopen()
	if sp := endOf(sleeper, 0); sp.EndReason != presence.EndSleep {
		t.Errorf("after a restart: %+v, want end_reason sleep", sp)
	}
	if sp := endOf(replayed, 0); !sp.Replayed {
		t.Errorf("after a restart: %+v, want replayed", sp)
	}
	// A replayed tail stays replayed when an on-time beat extends it after
	// the restart.
	tail := e.device(u, "tail")
	first := beat(1, sec(100), A)
	first.Received = first.At.Add(5 * time.Minute)
	e.ingest(tail, first)
	e.reopen()
	next := beat(2, sec(120), A)
	next.Received = next.At
	e.ingest(tail, next)
	if sp := endOf(tail, sec(100)); !sp.Replayed || !sp.End.Equal(T0.Add(sec(120))) {
		t.Errorf("tail extended after a restart: %+v, want replayed, to +120s", sp)
	}
}

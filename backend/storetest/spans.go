package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// step is one beat of a table case, at T0 + At seconds.
type step struct {
	At    int
	State presence.State
}

// wantSpan is an expected span, times in seconds after T0.
type wantSpan struct {
	State      presence.State
	Start, End int
	Closed     bool
}

func (w wantSpan) String() string {
	c := "open"
	if w.Closed {
		c = "closed"
	}
	return fmt.Sprintf("%s [%ds, %ds] %s", w.State, w.Start, w.End, c)
}

func describe(spans []presence.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n\t%s", wantSpan{s.State, int(s.Start.Sub(T0) / time.Second), int(s.End.Sub(T0) / time.Second), s.Closed})
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

// checkSpans compares a device's spans with the expected ones.
func checkSpans(t *testing.T, d presence.Device, got []presence.Span, want []wantSpan) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.State == w.State && g.Start.Equal(T0.Add(sec(w.Start))) && g.End.Equal(T0.Add(sec(w.End))) &&
			g.Closed == w.Closed && g.DeviceID == d.ID && g.ID != 0
	}
	if !ok {
		var ws []presence.Span
		for _, w := range want {
			ws = append(ws, presence.Span{State: w.State, Start: T0.Add(sec(w.Start)), End: T0.Add(sec(w.End)), Closed: w.Closed})
		}
		t.Errorf("spans of device %d:%s\nwant:%s\n(every span needs an ID and device %d)", d.ID, describe(got), describe(ws), d.ID)
	}
}

// ingestSteps sends each step as its own one-beat batch, numbering from seq.
func (e *env) ingestSteps(d presence.Device, seq int64, steps []step) int64 {
	e.t.Helper()
	for _, s := range steps {
		e.clock.Set(T0.Add(sec(s.At)))
		e.ingest(d, beat(seq, sec(s.At), s.State))
		seq++
	}
	return seq
}

func testSpanMerge(t *testing.T, opener Opener) {
	A, I, W, O := presence.Active, presence.Idle, presence.Away, presence.Offline
	cases := []struct {
		name  string
		steps []step
		want  []wantSpan
	}{
		{"two beats one second apart make a one-second span",
			[]step{{0, A}, {1, A}}, []wantSpan{{A, 0, 1, false}}},
		{"a lone beat is a zero-length span",
			[]step{{0, A}}, []wantSpan{{A, 0, 0, false}}},
		{"beats at the interval extend one span",
			[]step{{0, A}, {30, A}, {60, A}, {90, A}}, []wantSpan{{A, 0, 90, false}}},
		{"a gap of exactly the pulse window still joins",
			[]step{{0, A}, {60, A}}, []wantSpan{{A, 0, 60, false}}},
		{"a gap longer than the pulse window splits at the last beat",
			[]step{{0, A}, {1, A}, {62, A}}, []wantSpan{{A, 0, 1, true}, {A, 62, 62, false}}},
		{"an offline beat closes the span at its own time",
			[]step{{0, A}, {10, A}, {15, O}}, []wantSpan{{A, 0, 15, true}}},
		{"a new state closes the span at the transition and opens the next",
			[]step{{0, A}, {10, A}, {20, I}, {30, I}}, []wantSpan{{A, 0, 20, true}, {I, 20, 30, false}}},
		{"a beat after offline starts a new span",
			[]step{{0, A}, {5, O}, {100, A}}, []wantSpan{{A, 0, 5, true}, {A, 100, 100, false}}},
		{"offline beats alone make no span",
			[]step{{0, O}, {30, O}}, nil},
		{"away and idle are spans too",
			[]step{{0, W}, {30, W}, {40, I}, {50, A}}, []wantSpan{{W, 0, 40, true}, {I, 40, 50, true}, {A, 50, 50, false}}},
		{"a transition at the tail's own instant closes it there",
			[]step{{0, A}, {10, A}, {10, I}}, []wantSpan{{A, 0, 10, true}, {I, 10, 10, false}}},
	}
	e := newEnv(t, opener)
	u := e.user("merge")
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.device(u, fmt.Sprintf("case %d", i))
			e.ingestSteps(d, 1, c.steps)
			checkSpans(t, d, e.deviceSpans(u, d), c.want)
		})
	}

	t.Run("a batch merges like single beats", func(t *testing.T) {
		d := e.device(u, "batch")
		e.clock.Set(T0.Add(sec(200)))
		res := e.ingest(d, beat(1, 0, A), beat(2, sec(30), A), beat(3, sec(40), I), beat(4, sec(200), A), beat(5, sec(210), O))
		if res.Accepted != 5 || res.Duplicates != 0 || res.LastSeq != 5 {
			t.Errorf("result %+v, want 5 accepted, last_seq 5", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 40, true}, {I, 40, 40, true}, {A, 200, 210, true}})
	})

	t.Run("the tail keeps its ID while it grows", func(t *testing.T) {
		d := e.device(u, "stable id")
		e.ingestSteps(d, 1, []step{{0, A}})
		first := e.deviceSpans(u, d)
		e.ingestSteps(d, 2, []step{{30, A}})
		second := e.deviceSpans(u, d)
		if len(first) != 1 || len(second) != 1 || first[0].ID != second[0].ID {
			t.Errorf("spans before%s\nafter%s\nwant one span keeping its ID", describe(first), describe(second))
		}
	})

	t.Run("a late beat within the window extends a silent tail", func(t *testing.T) {
		// The service saw the device go silent (expired), then the agent's
		// outbox replays a beat it could not send: the span it belongs to
		// grows, exactly as if the beat had arrived in time.
		d := e.device(u, "replay")
		e.ingestSteps(d, 1, []step{{0, A}})
		e.clock.Set(T0.Add(10 * time.Minute))
		if st := e.status(d).Status; st != O {
			t.Errorf("status after 10 min of silence = %s, want offline", st)
		}
		e.ingest(d, beat(2, sec(50), A), beat(3, sec(100), A))
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 100, false}})
		if st := e.status(d).Status; st != O {
			t.Errorf("status after replaying old beats = %s, want still offline", st)
		}
	})
}

func testIdempotency(t *testing.T, opener Opener) {
	A := presence.Active
	e := newEnv(t, opener)
	u := e.user("idem")
	batch := func(from, to int64) []presence.Beat {
		var bs []presence.Beat
		for s := from; s <= to; s++ {
			bs = append(bs, beat(s, sec(int(s-1)), A)) // seq n at n-1 s
		}
		return bs
	}
	e.clock.Set(T0.Add(sec(60)))

	t.Run("a re-sent batch changes nothing and counts as duplicates", func(t *testing.T) {
		d := e.device(u, "resend")
		e.ingest(d, batch(1, 5)...)
		before := e.deviceSpans(u, d)
		res := e.ingest(d, batch(1, 5)...)
		if res.Accepted != 0 || res.Duplicates != 5 || res.LastSeq != 5 {
			t.Errorf("re-sent batch: %+v, want 0 accepted, 5 duplicates, last_seq 5", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 4, false}})
		if len(before) != 1 {
			t.Errorf("spans before the re-send:%s", describe(before))
		}
	})

	t.Run("an overlapping batch applies only the new beats", func(t *testing.T) {
		d := e.device(u, "overlap")
		e.ingest(d, batch(1, 5)...)
		res := e.ingest(d, batch(3, 8)...)
		if res.Accepted != 3 || res.Duplicates != 3 || res.LastSeq != 8 {
			t.Errorf("overlapping batch: %+v, want 3 accepted, 3 duplicates, last_seq 8", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 7, false}})
	})

	t.Run("a seq at or below last_seq is a duplicate whatever its time", func(t *testing.T) {
		d := e.device(u, "old seq")
		e.ingest(d, batch(1, 5)...)
		res := e.ingest(d, beat(3, sec(50), A), beat(5, sec(55), presence.Offline))
		if res.Accepted != 0 || res.Duplicates != 2 {
			t.Errorf("old seqs with new times: %+v, want 2 duplicates", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 4, false}})
	})

	t.Run("an agent that lost its store learns last_seq", func(t *testing.T) {
		d := e.device(u, "wiped")
		e.ingest(d, batch(1, 5)...)
		res := e.ingest(d) // the wiped agent's first, empty batch
		if res.LastSeq != 5 || res.Accepted != 0 {
			t.Fatalf("empty batch: %+v, want last_seq 5", res)
		}
		res = e.ingest(d, beat(res.LastSeq+1, sec(6), A))
		if res.Accepted != 1 || res.LastSeq != 6 {
			t.Errorf("numbering on from last_seq: %+v, want 1 accepted, last_seq 6", res)
		}
		if res.Device.ID != d.ID || res.Device.Status != A {
			t.Errorf("result device = %+v, want device %d active", res.Device, d.ID)
		}
	})

	t.Run("a new device starts at last_seq zero", func(t *testing.T) {
		d := e.device(u, "fresh")
		if res := e.ingest(d); res.LastSeq != 0 {
			t.Errorf("fresh device last_seq = %d, want 0", res.LastSeq)
		}
		if st := e.status(d); st.Presence.LastSeq != 0 || st.Status != presence.Offline {
			t.Errorf("fresh device status %+v, want offline at last_seq 0", st)
		}
	})

	t.Run("last_seq survives a restart", func(t *testing.T) {
		d := e.device(u, "restart")
		e.ingest(d, batch(1, 5)...)
		e.reopen()
		res := e.ingest(d, batch(1, 6)...)
		if res.Accepted != 1 || res.Duplicates != 5 || res.LastSeq != 6 {
			t.Errorf("after restart: %+v, want 1 accepted, 5 duplicates, last_seq 6", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 5, false}})
	})
}

func testStaleBeats(t *testing.T, opener Opener) {
	A, I, O := presence.Active, presence.Idle, presence.Offline
	e := newEnv(t, opener)
	u := e.user("stale")
	e.clock.Set(T0.Add(sec(30)))

	t.Run("a newer seq with an older time changes nothing", func(t *testing.T) {
		d := e.device(u, "older time")
		e.ingest(d, beat(1, sec(10), A))
		res := e.ingest(d, beat(2, sec(5), I))
		if res.Accepted != 1 || res.LastSeq != 2 {
			t.Errorf("stale beat: %+v, want it accepted (seq consumed), last_seq 2", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 10, 10, false}})
		if st := e.status(d); st.Status != A || !st.Presence.LastBeat.Equal(T0.Add(sec(10))) {
			t.Errorf("status %s, last beat %v; want active at +10s", st.Status, st.Presence.LastBeat)
		}
	})

	t.Run("a batch out of seq order is applied in seq order", func(t *testing.T) {
		d := e.device(u, "shuffled")
		res := e.ingest(d, beat(3, sec(2), A), beat(1, 0, A), beat(2, sec(1), A))
		if res.Accepted != 3 || res.LastSeq != 3 {
			t.Errorf("shuffled batch: %+v, want 3 accepted, last_seq 3", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 2, false}})
	})

	t.Run("an old beat after offline does not open a span in the past", func(t *testing.T) {
		d := e.device(u, "after offline")
		e.ingest(d, beat(1, 0, A), beat(2, sec(10), O))
		res := e.ingest(d, beat(3, sec(5), A))
		if res.Accepted != 1 || res.Stale != 1 || res.LastSeq != 3 {
			t.Errorf("stale beat after offline: %+v, want 1 accepted, 1 stale, last_seq 3", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 10, true}})
		st := e.status(d)
		if st.Status != O {
			t.Errorf("status = %s, want offline", st.Status)
		}
		// A stale beat changes nothing, last seen included: on every store.
		if !st.LastSeen().Equal(T0) || !st.Presence.LastBeat.Equal(T0.Add(sec(10))) {
			t.Errorf("last seen %v, last beat %v; want T0 and T0+10s", st.LastSeen(), st.Presence.LastBeat)
		}
	})

	t.Run("times are kept to the microsecond on every store", func(t *testing.T) {
		d := e.device(u, "precise")
		b := beat(1, 0, A)
		b.At = b.At.Add(1234567 * time.Nanosecond)
		e.ingest(d, b)
		want := T0.Add(1234 * time.Microsecond)
		if got := e.deviceSpans(u, d); len(got) != 1 || !got[0].Start.Equal(want) {
			t.Errorf("spans%s; want one starting at %v", describe(got), want)
		}
		if st := e.status(d); !st.LastSeen().Equal(want) {
			t.Errorf("last seen %v, want %v", st.LastSeen(), want)
		}
	})

	t.Run("a repeated seq inside one batch counts once", func(t *testing.T) {
		d := e.device(u, "repeat")
		res := e.ingest(d, beat(1, 0, A), beat(1, 0, A), beat(2, sec(2), A))
		if res.Accepted != 2 || res.Duplicates != 1 {
			t.Errorf("repeated seq: %+v, want 2 accepted, 1 duplicate", res)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 2, false}})
	})
}

func testIngestValidation(t *testing.T, opener Opener) {
	A := presence.Active
	e := newEnv(t, opener)
	u := e.user("valid")
	d := e.device(u, "laptop")

	t.Run("an unknown device is not found", func(t *testing.T) {
		_, err := e.store.Ingest(e.ctx, d.ID+1000, []presence.Beat{beat(1, 0, A)}, nil)
		wantCode(t, "ingest into unknown device", err, presence.ENOTFOUND)
	})

	bad := []struct {
		name string
		b    presence.Beat
	}{
		{"unknown state", presence.Beat{Seq: 2, At: T0, State: "asleep"}},
		{"zero seq", presence.Beat{Seq: 0, At: T0, State: A}},
		{"negative seq", presence.Beat{Seq: -4, At: T0, State: A}},
		{"no time", presence.Beat{Seq: 2, State: A}},
		{"negative idle", presence.Beat{Seq: 2, At: T0, State: A, IdleS: -1}},
	}
	ub := e.user("valid-bad")
	for i, c := range bad {
		t.Run("invalid beat: "+c.name, func(t *testing.T) {
			// A malformed beat is rejected alone (Fold): the valid beats of
			// the same call are applied, as PrepareBatch does for a batch.
			dev := e.device(ub, fmt.Sprintf("invalid %d", i))
			res, err := e.store.Ingest(e.ctx, dev.ID, []presence.Beat{beat(1, 0, A), c.b}, nil)
			if err != nil {
				t.Fatalf("ingest %s: %v", c.name, err)
			}
			if res.Accepted != 1 || len(res.Rejected) != 1 || res.Rejected[0].Seq != c.b.Seq || res.Rejected[0].Error == "" {
				t.Errorf("ingest %s: %+v, want 1 accepted and the bad beat rejected with a reason", c.name, res)
			}
			checkSpans(t, dev, e.deviceSpans(ub, dev), []wantSpan{{A, 0, 0, false}})
			if st := e.status(dev); st.Presence.LastSeq != 1 {
				t.Errorf("last_seq after a rejected beat = %d, want 1", st.Presence.LastSeq)
			}
		})
	}

	t.Run("facts update the device", func(t *testing.T) {
		res, err := e.store.Ingest(e.ctx, d.ID, nil, &presence.Facts{Hostname: "tower", OS: "linux", Platform: "debian 12", Version: "1.4.0"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Device.OS != "linux" || res.Device.Hostname != "tower" || res.Device.Platform != "debian 12" || res.Device.Version != "1.4.0" {
			t.Errorf("device after facts = %+v", res.Device.Device)
		}
		list, err := e.store.Devices(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].OS != "linux" || list[0].Version != "1.4.0" {
			t.Errorf("devices after facts = %+v, want os linux, version 1.4.0", list)
		}
		e.reopen()
		if st := e.status(d); st.OS != "linux" || st.Hostname != "tower" || st.Version != "1.4.0" {
			t.Errorf("device after restart = %+v, want its facts kept", st.Device)
		}
		// Facts without a version keep the one the device said last; a new
		// one replaces it.
		if res, err := e.store.Ingest(e.ctx, d.ID, nil, &presence.Facts{Hostname: "tower"}); err != nil || res.Device.Version != "1.4.0" {
			t.Errorf("facts without a version: %+v, %v; want version 1.4.0 kept", res.Device.Device, err)
		}
		if res, err := e.store.Ingest(e.ctx, d.ID, nil, &presence.Facts{Version: "1.5.0"}); err != nil || res.Device.Version != "1.5.0" || res.Device.OS != "linux" {
			t.Errorf("facts with a new version: %+v, %v; want version 1.5.0, os kept", res.Device.Device, err)
		}
		if st := e.status(d); st.Version != "1.5.0" {
			t.Errorf("device status after a new version = %+v", st.Device)
		}
	})

	t.Run("write batches are observed", func(t *testing.T) {
		before := e.observedBeats()
		e.ingest(d, beat(1, 0, A), beat(2, sec(1), A), beat(3, sec(2), A))
		waitFor(t, "Observe to count 3 more beats", nil, func() bool { return e.observedBeats() >= before+3 })
	})
}

func testSpanFilters(t *testing.T, opener Opener) {
	A, I, W, O := presence.Active, presence.Idle, presence.Away, presence.Offline
	e := newEnv(t, opener)
	ann, bob := e.user("ann"), e.user("bob")
	d1, d2, bobs := e.device(ann, "desk"), e.device(ann, "laptop"), e.device(bob, "phone")
	e.clock.Set(T0.Add(sec(1000)))
	// desk:   active [0,100] idle [100,200] away [200,300], closed by offline
	// laptop: active [50,80] closed by offline, a point span at 400
	// bob:    active [0,500]
	e.ingest(d1, beat(1, 0, A), beat(2, sec(50), A), beat(3, sec(100), I), beat(4, sec(150), I),
		beat(5, sec(200), W), beat(6, sec(250), W), beat(7, sec(300), O))
	e.ingest(d2, beat(1, sec(50), A), beat(2, sec(80), O), beat(3, sec(400), A))
	var bb []presence.Beat
	for i := range 11 {
		bb = append(bb, beat(int64(i+1), sec(50*i), A))
	}
	e.ingest(bobs, bb...)

	type key struct {
		dev   int64
		state presence.State
		start int
	}
	cases := []struct {
		name string
		q    presence.SpanQuery
		want []key
	}{
		{"every span of the user, ordered by start", presence.SpanQuery{From: T0, To: T0.Add(sec(1000))},
			[]key{{d1.ID, A, 0}, {d2.ID, A, 50}, {d1.ID, I, 100}, {d1.ID, W, 200}, {d2.ID, A, 400}}},
		{"one device", presence.SpanQuery{DeviceID: d2.ID, From: T0, To: T0.Add(sec(1000))},
			[]key{{d2.ID, A, 50}, {d2.ID, A, 400}}},
		{"one state", presence.SpanQuery{States: []presence.State{I}, From: T0, To: T0.Add(sec(1000))},
			[]key{{d1.ID, I, 100}}},
		{"two states", presence.SpanQuery{States: []presence.State{I, W}, From: T0, To: T0.Add(sec(1000))},
			[]key{{d1.ID, I, 100}, {d1.ID, W, 200}}},
		{"overlap, not containment", presence.SpanQuery{From: T0.Add(sec(90)), To: T0.Add(sec(110))},
			[]key{{d1.ID, A, 0}, {d1.ID, I, 100}}},
		{"To is exclusive", presence.SpanQuery{From: T0.Add(sec(150)), To: T0.Add(sec(200))},
			[]key{{d1.ID, I, 100}}},
		{"a span ending at From is left out", presence.SpanQuery{From: T0.Add(sec(300)), To: T0.Add(sec(350))},
			nil},
		{"a zero-length span at From is in", presence.SpanQuery{From: T0.Add(sec(400)), To: T0.Add(sec(401))},
			[]key{{d2.ID, A, 400}}},
		{"a zero-length span at To is out", presence.SpanQuery{From: T0.Add(sec(350)), To: T0.Add(sec(400))},
			nil},
		{"unbounded both sides", presence.SpanQuery{},
			[]key{{d1.ID, A, 0}, {d2.ID, A, 50}, {d1.ID, I, 100}, {d1.ID, W, 200}, {d2.ID, A, 400}}},
		{"unbounded end", presence.SpanQuery{From: T0.Add(sec(301))},
			[]key{{d2.ID, A, 400}}},
		{"another user's device yields nothing", presence.SpanQuery{DeviceID: bobs.ID, From: T0, To: T0.Add(sec(1000))},
			nil},
		{"before any span", presence.SpanQuery{From: T0.Add(-sec(100)), To: T0}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.UserID = ann.ID
			got := e.spans(q)
			var keys []key
			for _, s := range got {
				keys = append(keys, key{s.DeviceID, s.State, int(s.Start.Sub(T0) / time.Second)})
			}
			if fmt.Sprint(keys) != fmt.Sprint(c.want) {
				t.Errorf("spans %+v:\n got %v\nwant %v", c.q, keys, c.want)
			}
		})
	}

	t.Run("bob sees only his own", func(t *testing.T) {
		got := e.spans(presence.SpanQuery{UserID: bob.ID, From: T0, To: T0.Add(sec(1000))})
		checkSpans(t, bobs, got, []wantSpan{{A, 0, 500, false}})
	})
}

func testDailyTotals(t *testing.T, opener Opener) {
	A, I, O := presence.Active, presence.Idle, presence.Offline
	e := newEnv(t, opener)
	u := e.user("paris")
	tz := "Europe/Paris"
	if _, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{TZ: &tz}); err != nil {
		t.Fatal(err)
	}
	desk, laptop := e.device(u, "desk"), e.device(u, "laptop")
	at := func(h, m int) time.Time { return time.Date(2026, 11, 24, h, m, 0, 0, time.UTC) }
	// every 30 s from a to b inclusive, starting at seq
	run := func(seq int64, a, b time.Time, st presence.State) []presence.Beat {
		var bs []presence.Beat
		for t := a; !t.After(b); t = t.Add(30 * time.Second) {
			bs = append(bs, presence.Beat{Seq: seq, At: t, State: st})
			seq++
		}
		return bs
	}
	e.clock.Set(at(23, 59))
	// desk: active 22:30–23:30 UTC (23:30–00:30 in Paris, across midnight),
	// then idle 23:30–23:40 UTC, then offline.
	dbeats := run(1, at(22, 30), at(23, 30), A)
	dbeats = append(dbeats, run(int64(len(dbeats)+1), at(23, 30), at(23, 40), I)...)
	dbeats = append(dbeats, presence.Beat{Seq: int64(len(dbeats) + 1), At: at(23, 40), State: O})
	e.ingest(desk, dbeats...)
	// laptop: active 23:00–23:15 UTC while the desk is active: counts once.
	// Then idle 23:35-23:50 UTC: the first 5 minutes lie under the desk's
	// idle and count once; the last 10 are idle on their own.
	lbeats := run(1, at(23, 0), at(23, 15), A)
	lbeats = append(lbeats, presence.Beat{Seq: int64(len(lbeats) + 1), At: at(23, 15), State: O})
	lbeats = append(lbeats, run(int64(len(lbeats)+1), at(23, 35), at(23, 50), I)...)
	e.ingest(laptop, lbeats...)

	paris, err := time.LoadLocation(tz)
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	got, err := e.store.UserByID(e.ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	loc := got.Location()
	if loc.String() != paris.String() {
		t.Fatalf("user location = %v, want %v", loc, paris)
	}

	cases := []struct {
		name string
		loc  *time.Location
		want []presence.DayTotal
	}{
		{"cut at Paris midnight", paris, []presence.DayTotal{
			{Date: "2026-11-24", ActiveS: 30 * 60},
			{Date: "2026-11-25", ActiveS: 30 * 60, IdleS: 20 * 60},
		}},
		{"cut at UTC midnight", time.UTC, []presence.DayTotal{
			{Date: "2026-11-24", ActiveS: 60 * 60, IdleS: 20 * 60},
			{Date: "2026-11-25"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := time.Date(2026, 11, 24, 0, 0, 0, 0, c.loc)
			to := time.Date(2026, 11, 26, 0, 0, 0, 0, c.loc)
			spans := e.spans(presence.SpanQuery{UserID: u.ID, From: from, To: to})
			days := presence.DailyTotals(spans, c.loc, from, to.Add(-time.Nanosecond))
			if fmt.Sprint(days) != fmt.Sprint(c.want) {
				t.Errorf("daily totals in %v:\n got %+v\nwant %+v\nspans:%s", c.loc, days, c.want, describe(spans))
			}
		})
	}
}

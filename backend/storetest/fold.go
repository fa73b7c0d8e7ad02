package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// foldBatches is a reproducible stream of awkward batches for one device:
// runs of one state, transitions, offline beats, gaps past the pulse window,
// batches re-sent whole or in part, beats whose time slipped behind the
// device's latest, edges (Since) before the beat, shuffled seq order,
// sub-microsecond times, offline beats with and without their reasons,
// away beats by the lock, and beats that reached the service late
// (replayed from an outbox).
func foldBatches(seed uint64, n int) [][]presence.Beat {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	states := []presence.State{presence.Active, presence.Active, presence.Idle, presence.Away, presence.Offline}
	var out [][]presence.Beat
	seq, at := int64(0), time.Duration(0)
	for range n {
		var b []presence.Beat
		for range 1 + r.IntN(6) {
			seq++
			switch k := r.IntN(10); {
			case k == 0: // a gap longer than the pulse window
				at += pulse.Window() + time.Duration(r.IntN(120))*time.Second
			case k == 1: // a beat from the past (the clock stepped back)
				at -= time.Duration(1+r.IntN(20)) * time.Second
			default:
				at += time.Duration(1+r.IntN(40)) * time.Second
			}
			beat := presence.Beat{
				Seq: seq, State: states[r.IntN(len(states))],
				At: T0.Add(at + time.Duration(r.IntN(1000))*time.Nanosecond),
			}
			if r.IntN(3) == 0 { // the state began earlier: an edge
				beat.Since = beat.At.Add(-time.Duration(r.IntN(90)) * time.Second)
			}
			if beat.State == presence.Active && r.IntN(3) == 0 { // present by a call or media
				beat.Why = []presence.Why{presence.ByInput, presence.ByCall, presence.ByMedia}[r.IntN(3)]
			}
			if beat.State == presence.Away && r.IntN(2) == 0 { // away by the lock
				beat.Why = presence.ByLock
			}
			if beat.State == presence.Offline && r.IntN(4) != 0 { // a final beat that says why
				beat.Reason = []presence.EndReason{presence.EndSleep, presence.EndShutdown, presence.EndQuit, presence.EndPaused, presence.EndInvisible}[r.IntN(5)]
			}
			if r.IntN(5) == 0 { // queued offline, replayed minutes later
				beat.Received = beat.At.Add(pulse.Window() + time.Duration(r.IntN(600))*time.Second)
			} else {
				beat.Received = beat.At.Add(time.Duration(r.IntN(3)) * time.Second)
			}
			b = append(b, beat)
		}
		if len(out) > 0 && r.IntN(4) == 0 { // re-send part of the last batch
			last := out[len(out)-1]
			b = append(b, last[:1+r.IntN(len(last))]...)
		}
		r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		out = append(out, b)
	}
	return out
}

// testMatchesFold holds every store to the domain's one rule: the same
// batches give exactly the spans, counts, presence and session events that
// presence.Fold gives, stale and re-sent beats included.
func testMatchesFold(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	// The clock stays at T0, before most beats: no device ever passes its
	// TTL, so every event below comes from a batch, none from expiry (which
	// the events contract covers).
	e.clock.Set(T0)
	u := e.user("fold")
	for seed := range uint64(3) {
		d := e.device(u, fmt.Sprintf("fold %d", seed))
		mark := len(e.events.Events())
		var (
			ref     presence.DeviceState
			refID   int64
			spans   = map[int64]presence.Span{} // reference spans by reference id
			want    []string                    // reference session events
			batches = foldBatches(seed, 40)
		)
		ref.Presence.DeviceID = d.ID
		for i, b := range batches {
			f := presence.Fold(ref, b, pulse.Window(), func() int64 { refID++; return refID })
			ref = f.Device
			for _, c := range f.Spans {
				spans[c.Span.ID] = c.Span
			}
			for _, ev := range f.SessionEvents(u.ID, T0, pulse.Window()) {
				want = append(want, sessionKey(ev))
			}
			res := e.ingest(d, b...)
			if res.Accepted != f.Accepted || res.Duplicates != f.Duplicates || res.Stale != f.Stale || res.LastSeq != f.Device.Presence.LastSeq {
				t.Fatalf("seed %d batch %d: store %+v, fold accepted %d duplicates %d stale %d last_seq %d",
					seed, i, res, f.Accepted, f.Duplicates, f.Stale, f.Device.Presence.LastSeq)
			}
		}

		var wantSpans []presence.Span
		for _, sp := range spans {
			wantSpans = append(wantSpans, sp)
		}
		// Stores list spans by start, then id; ids rise in the order spans
		// start, here as in every store.
		slices.SortFunc(wantSpans, func(a, b presence.Span) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		checkFoldSpans(t, seed, e.deviceSpans(u, d), wantSpans)
		st := e.status(d)
		if !st.Presence.LastBeat.Equal(ref.Presence.LastBeat) || !st.LastSeen().Equal(ref.Presence.LastActive) || st.Presence.State != ref.Presence.State {
			t.Errorf("seed %d: store presence %+v, fold %+v", seed, st.Presence, ref.Presence)
		}

		// Session events, in order, with the times they happened.
		var gotEv []string
		waitFor(t, "every session event", nil, func() bool {
			gotEv = gotEv[:0]
			for _, ev := range e.events.Events()[mark:] {
				if ev.Kind == presence.EventSession && ev.Session != nil && ev.Session.DeviceID == d.ID {
					gotEv = append(gotEv, sessionKey(ev))
				}
			}
			return len(gotEv) >= len(want)
		})
		if !slices.Equal(gotEv, want) {
			t.Errorf("seed %d: store session events\n\t%v\nfold\n\t%v", seed, gotEv, want)
		}
		// What was written is what is read after a restart, reasons included.
		e.reopen()
		checkFoldSpans(t, seed, e.deviceSpans(u, d), wantSpans)
	}
}

func checkFoldSpans(t *testing.T, seed uint64, got, want []presence.Span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("seed %d: store spans:%s\nfold spans:%s", seed, describe(got), describe(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.State != w.State || g.Why != w.Why || !g.Start.Equal(w.Start) || !g.End.Equal(w.End) ||
			g.EndReason != w.EndReason || g.Replayed != w.Replayed {
			t.Fatalf("seed %d span %d: store %s(%s) [%v, %v] ended %q replayed %v, fold %s(%s) [%v, %v] ended %q replayed %v", seed, i,
				g.State, g.Why, g.Start, g.End, g.EndReason, g.Replayed, w.State, w.Why, w.Start, w.End, w.EndReason, w.Replayed)
		}
	}
}

// sessionKey is what two stores must agree on in a session event (ids and
// the open flag depend on when it is read).
func sessionKey(ev presence.Event) string {
	s := ev.Session
	return fmt.Sprintf("%s(%s)[%s,%s]%s/%v@%s", s.State, s.Why, s.Start.Sub(T0), s.End.Sub(T0), s.EndReason, s.Replayed, ev.At.Sub(T0))
}

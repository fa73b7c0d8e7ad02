package presence

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFoldEndReasons: why each span ended, and which were replayed, as the
// fold decides it for every store and the agent's history.
func TestFoldEndReasons(t *testing.T) {
	w := DefaultPulse.Window() // 60 s
	off := func(seq int64, sec int, r EndReason) Beat {
		return Beat{Seq: seq, At: at(sec), State: Offline, Reason: r}
	}
	late := func(bt Beat, by time.Duration) Beat {
		bt.Received = bt.At.Add(by)
		return bt
	}
	type want struct {
		state    State
		why      Why
		end      int
		reason   EndReason
		replayed bool
	}
	tests := []struct {
		name  string
		beats []Beat
		want  []want
	}{
		{"an offline beat gives its reason",
			[]Beat{b(1, 0, Active), b(2, 30, Active), off(3, 40, EndSleep)},
			[]want{{Active, ByInput, 40, EndSleep, false}}},
		{"each reason an agent tells is kept",
			[]Beat{b(1, 0, Active), off(2, 10, EndShutdown), b(3, 20, Idle), off(4, 30, EndQuit),
				b(5, 40, Away), off(6, 50, EndPaused), b(7, 60, Active), off(8, 70, EndInvisible)},
			[]want{{Active, ByInput, 10, EndShutdown, false}, {Idle, "", 30, EndQuit, false},
				{Away, "", 50, EndPaused, false}, {Active, ByInput, 70, EndInvisible, false}}},
		{"an offline beat without a reason (an older agent) gives none",
			[]Beat{b(1, 0, Active), off(2, 10, "")},
			[]want{{Active, ByInput, 10, "", false}}},
		{"a gap with no final beat is silence",
			[]Beat{b(1, 0, Active), b(2, 30, Active), b(3, 200, Active)},
			[]want{{Active, ByInput, 30, EndSilence, false}, {Active, ByInput, 200, "", false}}},
		{"a suspend found late tells its reason, not silence",
			[]Beat{b(1, 0, Active), {Seq: 2, At: at(300), Since: at(20), State: Offline, Reason: EndSleep}},
			[]want{{Active, ByInput, 20, EndSleep, false}}},
		{"a change of state is no end reason",
			[]Beat{b(1, 0, Active), b(2, 10, Idle)},
			[]want{{Active, ByInput, 10, "", false}, {Idle, "", 10, "", false}}},
		{"a reason on a beat that is not offline is ignored",
			[]Beat{b(1, 0, Active), {Seq: 2, At: at(10), State: Idle, Reason: EndSleep}},
			[]want{{Active, ByInput, 10, "", false}, {Idle, "", 10, "", false}}},
		{"the lock: away by lock is its own span",
			[]Beat{b(1, 0, Away), {Seq: 2, At: at(10), State: Away, Why: ByLock}, {Seq: 3, At: at(20), State: Away, Why: ByLock}},
			[]want{{Away, "", 10, "", false}, {Away, ByLock, 20, "", false}}},
		{"beats replayed later mark their span",
			[]Beat{late(b(1, 0, Active), 10*time.Minute), late(b(2, 30, Active), 10*time.Minute), late(off(3, 40, EndQuit), 10*time.Minute)},
			[]want{{Active, ByInput, 40, EndQuit, true}}},
		{"one late beat extending a live span marks it",
			[]Beat{late(b(1, 0, Active), time.Second), late(b(2, 30, Active), 5*time.Minute)},
			[]want{{Active, ByInput, 30, "", true}}},
		{"a beat a window late is still on time; a late closing beat does not mark the span it closes",
			[]Beat{late(b(1, 0, Active), w), late(b(2, 10, Idle), w+time.Second)},
			[]want{{Active, ByInput, 10, "", false}, {Idle, "", 10, "", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := DeviceState{}
			f := Fold(st, tt.beats, w, spanIDs())
			if len(f.Rejected) > 0 {
				t.Fatalf("rejected %+v", f.Rejected)
			}
			var got []Span
			for _, c := range f.Spans {
				got = append(got, c.Span)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("spans %s, want %d", describeChanges(f.Spans), len(tt.want))
			}
			for i, g := range got {
				x := tt.want[i]
				if g.State != x.state || g.Why != x.why || !g.End.Equal(at(x.end)) || g.EndReason != x.reason || g.Replayed != x.replayed {
					t.Errorf("span %d = %s(%s) end %v reason %q replayed %v, want %s(%s) end +%ds reason %q replayed %v",
						i, g.State, g.Why, g.End.Sub(t0), g.EndReason, g.Replayed, x.state, x.why, x.end, x.reason, x.replayed)
				}
			}
		})
	}
}

// TestFoldReplayedTailCarriesOver: a tail marked replayed stays so when a
// later batch extends it on time, as a store hands the tail back.
func TestFoldReplayedTailCarriesOver(t *testing.T) {
	w := DefaultPulse.Window()
	first := Beat{Seq: 1, At: at(0), State: Active, Received: at(600)}
	f := Fold(DeviceState{}, []Beat{first}, w, spanIDs())
	g := Fold(f.Device, []Beat{{Seq: 2, At: at(30), State: Active, Received: at(31)}}, w, spanIDs())
	if len(g.Spans) != 1 || !g.Spans[0].Span.Replayed {
		t.Fatalf("spans %s, want the one replayed tail", describeChanges(g.Spans))
	}
}

func TestEndedAtRead(t *testing.T) {
	open := Span{State: Active, Start: at(0), End: at(10)}
	if r := open.Ended(true); r != "" {
		t.Errorf("an open span ended %q", r)
	}
	if r := open.Ended(false); r != EndSilence {
		t.Errorf("a tail past its TTL ended %q, want silence", r)
	}
	closed := Span{State: Active, Start: at(0), End: at(10), Closed: true}
	if r := closed.Ended(false); r != "" {
		t.Errorf("a span ended by a new state ended %q", r)
	}
	closed.EndReason = EndSleep
	if r := closed.Ended(false); r != EndSleep {
		t.Errorf("ended %q, want sleep", r)
	}
	ev := ExpiredSessionEvent(1, open)
	if ev.Session.EndReason != EndSilence || ev.Open {
		t.Errorf("expiry event %+v, want a closed session ended in silence", *ev.Session)
	}
}

func TestBeatReasonAndWhyValidation(t *testing.T) {
	now := at(0)
	tests := []struct {
		name string
		beat Beat
		err  string // "" valid
	}{
		{"offline with a reason", Beat{Seq: 1, At: now, State: Offline, Reason: EndSleep}, ""},
		{"offline without one", Beat{Seq: 1, At: now, State: Offline}, ""},
		{"an unknown reason", Beat{Seq: 1, At: now, State: Offline, Reason: "nap"}, `unknown reason "nap"`},
		{"silence is the service's, not a beat's", Beat{Seq: 1, At: now, State: Offline, Reason: EndSilence}, `unknown reason "silence"`},
		{"a reason on an active beat is ignored", Beat{Seq: 1, At: now, State: Active, Reason: EndQuit}, ""},
		{"an unknown reason on an active beat", Beat{Seq: 1, At: now, State: Active, Reason: "x"}, `unknown reason "x"`},
		{"away locked", Beat{Seq: 1, At: now, State: Away, Why: ByLock}, ""},
		{"locked is for away only", Beat{Seq: 1, At: now, State: Active, Why: ByLock}, `why "locked" is for away beats only`},
		{"locked on idle", Beat{Seq: 1, At: now, State: Idle, Why: ByLock}, `why "locked" is for away beats only`},
		{"an unknown why", Beat{Seq: 1, At: now, State: Away, Why: "coffee"}, `unknown why "coffee"`},
	}
	for _, tt := range tests {
		err := tt.beat.Validate(now, DefaultLimits)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestPrepareBatchStampsArrival(t *testing.T) {
	recv := at(600)
	valid, rejected := PrepareBatch(time.Time{}, []Beat{
		{Seq: 1, At: at(0), State: Active},
		{Seq: 2, At: at(1), State: Offline, Reason: "nap"},
	}, recv, DefaultLimits)
	if len(valid) != 1 || len(rejected) != 1 || rejected[0].Seq != 2 {
		t.Fatalf("valid %+v rejected %+v, want seq 1 kept and seq 2 rejected alone", valid, rejected)
	}
	if !valid[0].Received.Equal(recv) {
		t.Errorf("received = %v, want %v", valid[0].Received, recv)
	}
	// Arrival is the service's own fact: never read from the wire.
	var bt Beat
	if err := json.Unmarshal([]byte(`{"seq":1,"at":"2026-11-25T09:00:00Z","state":"offline","reason":"sleep","Received":"2026-11-25T09:10:00Z"}`), &bt); err != nil {
		t.Fatal(err)
	}
	if !bt.Received.IsZero() || bt.Reason != EndSleep {
		t.Errorf("decoded %+v", bt)
	}
	out, _ := json.Marshal(Span{State: Active, Start: at(0), End: at(1), EndReason: EndSleep, Replayed: true})
	for _, s := range []string{`"end_reason":"sleep"`, `"replayed":true`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("span JSON %s lacks %s", out, s)
		}
	}
}

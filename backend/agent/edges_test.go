package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Edges (DESIGN §2): every beat that changes a state says when that state
// really began (Since), and every active beat says why. Each case runs one
// agent from t = 0 (whole seconds of the bubble's clock) and reads what it
// queued for the service, and what its local history made of it.
//
// edges lists the queued beats that change the state or the reason, as
// "state@at<since" ("state(why)" for a call, media or the lock; since is at when the
// beat has none). history lists the local spans, "state[start,end]", the
// last one open-ended ("state[start,…]") since periodic beats are jittered.
func TestEdges(t *testing.T) {
	A, C, M := presence.Active, presence.ByCall, presence.ByMedia
	lockAt := func(r *rig, sec float64) { r.send(OSEvent{Kind: Locked, At: r.at(sec)}) }
	tests := []struct {
		name    string
		cfg     Config
		waits   bool // the idle reader waits for input (X11's SYNC alarm)
		do      func(r *rig)
		edges   string
		history string
		why     presence.Why // the status's why at the end ("" to skip)
	}{
		{
			name: "active to idle: the span ends at the last input, not at the threshold",
			cfg:  Config{IdleAfter: time.Minute}, waits: true,
			do: func(r *rig) {
				r.until(20)
				r.idle.touch()
				r.until(40)
				r.idle.touch()
				r.until(160)
			},
			edges:   "active@0<0 idle@100<40",
			history: "active[0,40] idle[40,…]",
		},
		{
			name: "setting off: a call changes nothing but the edges",
			cfg:  Config{IdleAfter: time.Minute}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.sig.start(presence.ByCall)
				r.until(40)
				r.idle.touch()
				r.until(160)
			},
			edges:   "active@0<0 idle@100<40",
			history: "active[0,40] idle[40,…]",
		},
		{
			name: "coming back: active from the input, not from the sample that saw it",
			cfg:  Config{IdleAfter: time.Minute}, waits: false, // polled every 2 s
			do: func(r *rig) {
				r.until(5)
				r.idle.touch()
				r.until(100)
				r.advance(500 * time.Millisecond) // input between two samples
				r.idle.touch()
				r.until(110)
			},
			edges:   "active@0<0 idle@65<5 active@101<100.5",
			history: "active[0,5] idle[5,100.5] active[100.5,…]",
			why:     presence.ByInput,
		},
		{
			name: "a lock after minutes without input: active to the last input, idle, away from the lock",
			cfg:  Config{IdleAfter: 5 * time.Minute},
			do: func(r *rig) {
				r.until(10)
				r.idle.touch()
				r.until(130)
				lockAt(r, 129)
			},
			edges:   "active@0<0 idle@130<10 away(locked)@130<129",
			history: "active[0,10] idle[10,129] away[129,…]",
		},
		{
			name: "a lock right after input: away from the lock, no idle between",
			cfg:  Config{IdleAfter: 5 * time.Minute},
			do: func(r *rig) {
				r.until(127)
				r.idle.touch()
				r.until(130)
				lockAt(r, 130)
			},
			edges:   "active@0<0 away(locked)@130<130",
			history: "active[0,130] away[130,…]",
		},
		{
			name: "a lock after the threshold: idle stays at the last input, away from the lock",
			cfg:  Config{IdleAfter: time.Minute}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.idle.touch()
				r.until(130)
				lockAt(r, 130)
				r.until(200)
				r.idle.touch() // the password
				r.send(OSEvent{Kind: Unlocked})
			},
			edges:   "active@0<0 idle@70<10 away(locked)@130<130 active@200<200",
			history: "active[0,10] idle[10,130] away[130,200] active[200,…]",
		},
		{
			name: "sleep: offline from the moment the OS announced it",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(20)
				r.idle.touch()
				r.until(50)
				r.send(OSEvent{Kind: Sleeping, At: r.at(49)})
			},
			edges:   "active@0<0 offline@50<49",
			history: "active[0,49]",
		},
		{
			name: "quit: offline from the quit",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(50)
				r.stop()
			},
			edges:   "active@0<0 offline@50<50",
			history: "active[0,50]",
		},
		{
			name: "waking: active from the first input after the wake, not the next tick",
			cfg:  Config{IdleAfter: time.Minute}, waits: false,
			do: func(r *rig) {
				r.until(30)
				r.send(OSEvent{Kind: Sleeping})
				r.until(1000)
				r.send(OSEvent{Kind: Woke, At: r.at(1000)})
				r.advance(1500 * time.Millisecond)
				r.idle.touch() // polled every 2 s: seen at 1002
				r.until(1010)
			},
			edges:   "active@0<0 offline@30<30 idle@1000<1000 active@1002<1001.5",
			history: "active[0,30] idle[1000,1001.5] active[1001.5,…]",
		},
		{
			name: "a silent suspend found late: offline from the last moment known awake, then the next beat",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(20)
				r.idle.touch()
				r.until(35)
				r.suspend(time.Hour)   // the wall clock jumps; timers and the idle counter do not
				r.idle.touch()         // the key that woke it, at 3635
				r.advance(time.Second) // the detector's tick comes first, at 3636
				r.send(OSEvent{Kind: Sleeping, At: r.at(35)})
				r.send(OSEvent{Kind: Woke, At: r.at(3636)})
				r.advance(10 * time.Second)
			},
			edges:   "active@0<0 offline@35<35 active@3636<3635",
			history: "active[0,35] active[3635,…]",
		},
		{
			name: "a silent suspend found late, no input since: idle from the wake the detector reports",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(35)
				r.suspend(time.Hour)
				r.idle.age(time.Hour) // an idle counter that counts the time asleep
				r.advance(time.Second)
				r.send(OSEvent{Kind: Sleeping, At: r.at(35)})
				r.send(OSEvent{Kind: Woke, At: r.at(3636)})
				r.advance(5 * time.Second)
			},
			edges:   "active@0<0 offline@35<35 idle@3636<3636",
			history: "active[0,35] idle[3636,…]",
		},
		{
			name: "a suspend reported after beats that followed it: the beats stand",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(35) // beats at 0 and 30
				r.suspend(time.Hour)
				r.idle.touch()
				r.until(3661) // the agent's own beat, at 3660, comes first
				r.send(OSEvent{Kind: Sleeping, At: r.at(35)})
				r.send(OSEvent{Kind: Woke})
				r.advance(5 * time.Second)
			},
			edges:   "active@0<0",
			history: "active[0,30] active[3660,…]",
		},
		{
			name: "a call keeps the user active past the threshold; idle from the call's end",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.sig.start(presence.ByCall)
				r.until(20)
				r.idle.touch() // typing during the call: present by input
				r.until(200)
				r.sig.end()
				r.until(230)
			},
			edges:   "active@0<0 active(call)@80<20 idle@200<200",
			history: "active[0,20] active[20,200] idle[200,…]",
		},
		{
			name: "a call that ended before the last input: idle from the input",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.sig.start(presence.ByCall)
				r.until(30)
				r.sig.end()
				r.until(40)
				r.idle.touch()
				r.until(130)
			},
			edges:   "active@0<0 idle@100<40",
			history: "active[0,40] idle[40,…]",
		},
		{
			name: "a video starting while idle: active from its start; input: active by input from it",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.idle.touch()
				r.until(120)
				r.sig.start(presence.ByMedia)
				r.until(150)
				r.idle.touch()
				r.until(160)
			},
			edges:   "active@0<0 idle@70<10 active(media)@120<120 active@150<150",
			history: "active[0,10] idle[10,120] active[120,150] active[150,…]",
			why:     presence.ByInput,
		},
		{
			name: "while a call is on and input stops, the call keeps the user active and says so",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.sig.start(presence.ByCall)
				r.until(15)
				r.idle.touch()
				r.until(300)
			},
			edges:   "active@0<0 active(call)@75<15",
			history: "active[0,15] active[15,…]",
			why:     presence.ByCall,
		},
		{
			name: "a call during a video, then the video alone: each from when it took over",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.until(5)
				r.sig.start(presence.ByMedia)
				video := r.sig.Signal()
				r.until(100)
				r.sig.start(presence.ByCall)
				r.until(150)
				r.sig.set(video) // the call ended; the video plays on
				r.until(160)
			},
			edges:   "active@0<0 active(media)@60<5 active(call)@100<100 active(media)@150<150",
			history: "active[0,5] active[5,100] active[100,150] active[150,…]",
			why:     presence.ByMedia,
		},
		{
			name: "a lock beats the call: away from the lock, no idle between",
			cfg:  Config{IdleAfter: time.Minute, CountCallsAndMedia: true}, waits: true,
			do: func(r *rig) {
				r.sig.start(presence.ByCall)
				r.until(100)
				lockAt(r, 100)
				r.until(150)
			},
			edges:   "active@0<0 active(call)@60<0 away(locked)@100<100",
			history: "active[0,0] active[0,100] away[100,…]",
		},
		{
			name: "turning the setting on during a call counts from then; off, idle from then",
			cfg:  Config{IdleAfter: time.Minute}, waits: true,
			do: func(r *rig) {
				r.until(10)
				r.idle.touch()
				r.until(30)
				r.sig.start(presence.ByCall)
				r.until(120)
				r.setCount(true)
				r.until(200)
				r.setCount(false)
				r.until(210)
			},
			edges:   "active@0<0 idle@70<10 active(call)@120<120 idle@200<200",
			history: "active[0,10] idle[10,120] active[120,200] idle[200,…]",
		},
		{
			name: "appear away, then automatic: the service hears idle from the switch, not the last input",
			cfg:  Config{IdleAfter: time.Minute},
			do: func(r *rig) {
				r.until(5)
				r.idle.touch()
				r.until(10)
				r.setMode(Away)
				r.until(100)
				r.setMode(Automatic)
				r.until(110)
			},
			edges:   "active@0<0 away@10<10 idle@100<100",
			history: "active[0,5] idle[5,…]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := buildRig(t, tc.cfg, "", tc.waits)
				r.a.rand = func() float64 { return 0.5 } // beats exactly every interval
				r.start()
				tc.do(r)
				if got := r.edges(); got != tc.edges {
					t.Errorf("queued edges\n got %s\nwant %s", got, tc.edges)
				}
				if got := r.spans(); got != tc.history {
					t.Errorf("local history\n got %s\nwant %s", got, tc.history)
				}
				if tc.why != "" {
					if st := r.a.Status(); st.State != presence.Active || st.Why != tc.why {
						t.Errorf("status %s, why %q; want active, %q", st.State, st.Why, tc.why)
					}
				}
				for _, b := range r.outbox() {
					// Active says call or media (input is the default); away says
					// locked when the lock took the user away; nothing else has one.
					if b.Why != "" && !(b.State == A && (b.Why == C || b.Why == M)) && !(b.State == presence.Away && b.Why == presence.ByLock) {
						t.Errorf("beat %+v carries a why it must not", b)
					}
					if err := b.CheckForm(); err != nil {
						t.Errorf("beat %+v would be refused: %v", b, err)
					}
				}
			})
		})
	}
}

// at is sec seconds after the rig started, on the agent's (wall) clock.
func (r *rig) at(sec float64) time.Time {
	return r.t0.Add(time.Duration(sec * float64(time.Second)))
}

// until advances time until the agent's clock reads sec seconds after start.
func (r *rig) until(sec float64) {
	r.t.Helper()
	d := r.at(sec).Sub(r.wall())
	if d < 0 {
		r.t.Fatalf("until(%v): already at %s", sec, r.sec(r.wall()))
	}
	r.advance(d)
}

func (r *rig) setMode(m Mode) {
	r.t.Helper()
	if err := r.a.SetMode(context.Background(), m, time.Time{}); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
}

func (r *rig) setCount(on bool) {
	r.t.Helper()
	cfg := r.a.Config()
	cfg.CountCallsAndMedia = on
	if err := r.a.SetConfig(cfg); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
}

// sec renders t as seconds after the rig started.
func (r *rig) sec(t time.Time) string {
	d := t.Sub(r.t0).Seconds()
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", d), "0"), ".")
}

func label(s presence.State, w presence.Why) string {
	if s == presence.Active && (w == presence.ByCall || w == presence.ByMedia) || s == presence.Away && w == presence.ByLock {
		return fmt.Sprintf("%s(%s)", s, w)
	}
	return string(s)
}

func (r *rig) edges() string {
	var out []string
	prev := ""
	for _, b := range r.outbox() {
		l := label(b.State, b.Why)
		if l == prev {
			continue
		}
		prev = l
		since := b.At
		if !b.Since.IsZero() {
			since = b.Since
		}
		out = append(out, fmt.Sprintf("%s@%s<%s", l, r.sec(b.At), r.sec(since)))
	}
	return strings.Join(out, " ")
}

func (r *rig) spans() string {
	h := r.history()
	var out []string
	for i, s := range h {
		end := r.sec(s.End)
		if i == len(h)-1 && !s.Closed {
			end = "…"
		}
		out = append(out, fmt.Sprintf("%s[%s,%s]", s.State, r.sec(s.Start), end))
	}
	return strings.Join(out, " ")
}

// With the setting off the agent never reads the signal source nor wakes
// for it: calls and videos cost nothing.
func TestSignalsOffCostNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: time.Minute}, "")
		r.start()
		for range 10 {
			r.sig.start(presence.ByCall)
			r.advance(time.Second)
			r.sig.end()
		}
		r.sig.mu.Lock()
		reads := r.sig.reads
		r.sig.mu.Unlock()
		if reads != 0 {
			t.Fatalf("%d signal reads with the setting off", reads)
		}
		if st := r.a.Status(); st.CountCallsAndMedia || st.Why != presence.ByInput {
			t.Fatalf("status %+v", st)
		}
	})
}

// The setting is in the status, and a change of it is published.
func TestCountCallsAndMediaInStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: time.Minute}, "")
		ch, cancel := r.a.Subscribe()
		defer cancel()
		r.start()
		r.setCount(true)
		var last Status
		for {
			select {
			case last = <-ch:
				continue
			default:
			}
			break
		}
		if !last.CountCallsAndMedia {
			t.Fatalf("last published status %+v, want the setting on", last)
		}
	})
}

// A call keeps the user present without polling: while it lasts the agent
// waits for input (and the signal's end) instead of reading the idle time.
func TestCallWaitsInsteadOfPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newWaitingRig(t, Config{IdleAfter: time.Minute, CountCallsAndMedia: true})
		r.start()
		r.sig.start(presence.ByCall)
		r.until(60 + 3) // the threshold, read within a Tick of it
		if st := r.a.Status(); st.State != presence.Active || st.Why != presence.ByCall {
			t.Fatalf("past the threshold in a call: %+v", st)
		}
		reads := r.idle.readCount()
		r.until(63 + 3600)
		// One safety read a minute while waiting, plus the beats' reads.
		if got := r.idle.readCount() - reads; got > 60+125 {
			t.Fatalf("%d idle reads in an hour of a call", got)
		}
		if waits, running := r.idle.waitCounts(); waits == 0 || running != 1 {
			t.Fatalf("%d waits, %d running; want one waiting for input", waits, running)
		}
		states := slices.Compact(states(r.outbox()))
		if !slices.Equal(states, []presence.State{presence.Active}) {
			t.Fatalf("states %v", states)
		}
	})
}

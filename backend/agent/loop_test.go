package agent

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

type step struct {
	name string
	do   func(r *rig)
	// want is the state of the newest queued beat right after do, and
	// whether do must have produced it at this very instant.
	want presence.State
	now  bool
}

func TestStateTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		steps := []step{
			{"start beats at once", func(r *rig) {}, presence.Active, true},
			{"input keeps active", func(r *rig) { r.advance(2 * time.Minute); r.idle.touch(); r.advance(2 * time.Minute) }, presence.Active, false},
			{"no input for the threshold: idle", func(r *rig) { r.advance(5*time.Minute + 2*time.Second) }, presence.Idle, false},
			// Idle without an input waiter: read every Tick, so active within one.
			{"input: active within a tick", func(r *rig) { r.idle.touch(); r.advance(2 * time.Second) }, presence.Active, false},
			{"lock: away at once", func(r *rig) { r.send(OSEvent{Kind: Locked}) }, presence.Away, true},
			{"locked stays away despite input", func(r *rig) { r.idle.touch(); r.advance(time.Minute) }, presence.Away, false},
			{"unlock: re-sampled at once", func(r *rig) { r.idle.touch(); r.send(OSEvent{Kind: Unlocked}) }, presence.Active, true},
			{"sleep: offline at once", func(r *rig) { r.send(OSEvent{Kind: Sleeping}) }, presence.Offline, true},
			{"asleep: nothing more", func(r *rig) { r.advance(10 * time.Minute) }, presence.Offline, false},
			{"wake: re-sampled at once", func(r *rig) { r.idle.touch(); r.send(OSEvent{Kind: Woke}) }, presence.Active, true},
			{"logout: offline at once", func(r *rig) { r.send(OSEvent{Kind: LoggingOut}) }, presence.Offline, true},
			{"input after a missed resume brings it back", func(r *rig) { r.advance(time.Minute); r.idle.touch(); r.advance(2 * time.Second) }, presence.Active, true},
		}
		for _, s := range steps {
			before := len(r.outbox())
			s.do(r)
			bs := r.outbox()
			last := bs[len(bs)-1]
			if last.State != s.want {
				t.Fatalf("%s: newest beat %s, want %s (states %v)", s.name, last.State, s.want, states(bs))
			}
			if s.now && (len(bs) == before && s.name != steps[0].name || !last.At.Equal(time.Now())) {
				t.Fatalf("%s: no beat at this instant (newest at %v, now %v)", s.name, last.At, time.Now())
			}
			if st := r.a.Status(); st.SentState != s.want {
				t.Fatalf("%s: status sent %s, want %s", s.name, st.SentState, s.want)
			}
		}
		// Asleep means silent: exactly one offline beat between sleep and wake.
		bs := r.outbox()
		for i := 1; i < len(bs); i++ {
			if bs[i].State == presence.Offline && bs[i-1].State == presence.Offline {
				t.Fatalf("offline beat repeated at %d: %v", i, states(bs))
			}
		}
	})
}

func TestIdleThresholdFollowsConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: time.Minute}, "")
		r.start()
		r.advance(61 * time.Second)
		if st := r.a.Status(); st.State != presence.Idle {
			t.Fatalf("after 61 s with a 1 min threshold: %s", st.State)
		}
		cfg := r.a.Config()
		cfg.IdleAfter = 10 * time.Minute
		if err := r.a.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := r.a.Status(); st.State != presence.Active {
			t.Fatalf("after raising the threshold: %s", st.State)
		}
		cfg.Interval = time.Second
		if err := r.a.SetConfig(cfg); presence.ErrorCode(err) != presence.EINVALID {
			t.Fatalf("SetConfig(1 s interval) = %v", err)
		}
	})
}

// TestIntervalJitterAndQuietTicks: periodic beats every 30 s ± 10 %, no write
// between them, at most two wakeups a second.
func TestIntervalJitterAndQuietTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{IdleAfter: time.Hour}, "")
		r.start()
		commits0, reads0 := r.db.Commits(), r.idle.readCount()
		// Just under the threshold, so the state never changes.
		const span = 55 * time.Minute
		for range int(span / time.Second) {
			r.advance(time.Second)
		}
		bs := r.outbox()
		var gaps []time.Duration
		for i := 1; i < len(bs); i++ {
			gaps = append(gaps, bs[i].At.Sub(bs[i-1].At))
		}
		lo, hi := gaps[0], gaps[0]
		for _, g := range gaps {
			if g < 27*time.Second || g > 33*time.Second {
				t.Fatalf("beat gap %v outside 30 s ± 10 %%", g)
			}
			lo, hi = min(lo, g), max(hi, g)
		}
		if hi-lo < 2*time.Second {
			t.Fatalf("gaps %v..%v: no jitter", lo, hi)
		}
		beats := len(bs) - 1
		if beats < int(span/(33*time.Second)) || beats > int(span/(27*time.Second))+1 {
			t.Fatalf("%d beats in %v", beats, span)
		}
		if got := r.db.Commits() - commits0; got != int64(beats) {
			t.Fatalf("%d commits for %d beats: a quiet tick wrote", got, beats)
		}
		// Active far from the threshold: the idle time is read with each
		// beat, never on a tick of its own.
		reads := r.idle.readCount() - reads0
		if reads > beats+1 {
			t.Fatalf("%d idle samples for %d beats in %v: an active machine is read only with its beats", reads, beats, span)
		}
		// Wakeups: at most one per sample plus one per beat.
		if perSec := float64(reads+beats) / span.Seconds(); perSec > 2 {
			t.Fatalf("%.2f wakeups a second", perSec)
		}
		t.Logf("%d beats, gaps %v..%v, %d samples, %.2f wakeups/s", beats, lo, hi, reads, float64(reads+beats)/span.Seconds())
	})
}

func TestModes(t *testing.T) {
	A, I, W, O := presence.Active, presence.Idle, presence.Away, presence.Offline
	tests := []struct {
		name    string
		mode    Mode
		sent    []presence.State // outbox after 10 min without input, then input
		history []presence.State // local spans, in order
	}{
		{"automatic", Automatic, []presence.State{A, I, A}, []presence.State{A, I, A}},
		{"appear online", Online, []presence.State{A}, []presence.State{A, I, A}},
		{"appear away", Away, []presence.State{W}, []presence.State{A, I, A}},
		{"invisible", Invisible, []presence.State{O}, []presence.State{A, I, A}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, Config{}, "")
				if err := r.a.SetMode(context.Background(), tt.mode, time.Time{}); err != nil {
					t.Fatal(err)
				}
				r.start()
				r.advance(10 * time.Minute)
				r.idle.touch()
				r.advance(4 * time.Minute)
				got := dedupe(states(r.outbox()))
				if !reflect.DeepEqual(got, tt.sent) {
					t.Fatalf("sent %v, want %v", got, tt.sent)
				}
				if tt.mode == Invisible && len(r.outbox()) != 1 {
					t.Fatalf("invisible sent %d beats, want the one offline", len(r.outbox()))
				}
				var hs []presence.State
				for _, s := range r.history() {
					hs = append(hs, s.State)
				}
				if !reflect.DeepEqual(hs, tt.history) {
					t.Fatalf("history %v, want %v", hs, tt.history)
				}
				if st := r.a.Status(); st.Mode != tt.mode || st.State != A {
					t.Fatalf("status %+v", st)
				}
			})
		})
	}
}

func dedupe(ss []presence.State) []presence.State {
	var out []presence.State
	for _, s := range ss {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func TestModeSwitchBeatsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		ctx := context.Background()
		for _, m := range []struct {
			mode Mode
			want presence.State
		}{{Away, presence.Away}, {Online, presence.Active}, {Invisible, presence.Offline}, {Automatic, presence.Active}} {
			r.advance(3 * time.Second)
			if err := r.a.SetMode(ctx, m.mode, time.Time{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			bs := r.outbox()
			if last := bs[len(bs)-1]; last.State != m.want || !last.At.Equal(time.Now()) {
				t.Fatalf("mode %s: newest beat %+v at %v", m.mode, last, time.Now())
			}
		}
	})
}

func TestPauseExpiresAndPersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		ctx := context.Background()
		r.advance(time.Minute)
		until := time.Now().Add(30 * time.Minute)
		if err := r.a.SetMode(ctx, Pause, until); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		bs := r.outbox()
		if last := bs[len(bs)-1]; last.State != presence.Offline {
			t.Fatalf("pause sent %s, want offline", last.State)
		}
		h := r.history()
		if !h[len(h)-1].Closed {
			t.Fatal("pause left the local span open")
		}
		commits := r.db.Commits()
		r.advance(29 * time.Minute)
		if r.db.Commits() != commits {
			t.Fatalf("paused agent wrote %d times", r.db.Commits()-commits)
		}
		if st := r.a.Status(); st.Mode != Pause || !st.Until.Equal(until) {
			t.Fatalf("status while paused %+v", st)
		}
		set, _ := r.db.Settings(ctx)
		if set.Mode != "pause" || !set.ModeUntil.Equal(until) {
			t.Fatalf("stored mode %q until %v", set.Mode, set.ModeUntil)
		}
		r.idle.touch()
		r.advance(time.Minute)
		// Back to Automatic at the end, by itself, beating at that instant.
		if st := r.a.Status(); st.Mode != Automatic || !st.Until.IsZero() {
			t.Fatalf("after the pause: %+v", st)
		}
		bs = r.outbox()
		var resumed presence.Beat
		for _, b := range bs {
			if b.At.Equal(until) {
				resumed = b
			}
		}
		if resumed.State != presence.Active {
			t.Fatalf("no active beat at the pause's end (%v): %v", until, bs[len(bs)-3:])
		}
		set, _ = r.db.Settings(ctx)
		if set.Mode != "auto" || !set.ModeUntil.IsZero() {
			t.Fatalf("stored after expiry: %q %v", set.Mode, set.ModeUntil)
		}
	})
}

func TestModePersistsAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := newRig(t, Config{}, "")
		tomorrow := NextMidnight(time.Now())
		if err := r.a.SetMode(ctx, Pause, tomorrow); err != nil {
			t.Fatal(err)
		}
		r2 := newRig(t, Config{}, r.path)
		if st := r2.a.Status(); st.Mode != Pause || !st.Until.Equal(tomorrow) {
			t.Fatalf("restarted with %+v", st)
		}
		// Restarted after the pause ended: Automatic, stored too.
		time.Sleep(tomorrow.Sub(time.Now()) + time.Second)
		r3 := newRig(t, Config{}, r.path)
		if st := r3.a.Status(); st.Mode != Automatic {
			t.Fatalf("restarted after the pause with %+v", st)
		}
		if set, _ := r3.db.Settings(ctx); set.Mode != "auto" {
			t.Fatalf("stored %q", set.Mode)
		}
		if err := r3.a.SetMode(ctx, Invisible, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if st := newRig(t, Config{}, r.path).a.Status(); st.Mode != Invisible {
			t.Fatalf("invisible not kept: %+v", st)
		}
	})
}

func TestSetModeValidates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		ctx := context.Background()
		now := time.Now()
		bad := []struct {
			mode  Mode
			until time.Time
		}{
			{"busy", time.Time{}},
			{Pause, time.Time{}},
			{Pause, now},
			{Pause, now.Add(-time.Minute)},
			{Pause, now.Add(MaxPause + time.Minute)},
			{Away, now.Add(time.Hour)},
		}
		for _, b := range bad {
			if err := r.a.SetMode(ctx, b.mode, b.until); presence.ErrorCode(err) != presence.EINVALID {
				t.Errorf("SetMode(%s, %v) = %v", b.mode, b.until, err)
			}
		}
		if st := r.a.Status(); st.Mode != Automatic {
			t.Fatalf("a refused mode took effect: %+v", st)
		}
	})
}

func TestIdleReadErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		if st := r.a.Status(); st.State != presence.Active || st.IdleError != "" {
			t.Fatalf("start: %+v", st)
		}
		r.idle.setErr(errors.New("screensaver extension gone"))
		// While active the idle time is read at the next beat (30 s ± 10 %),
		// not every tick: nothing but a read can change the state before
		// the threshold.
		r.advance(35 * time.Second)
		// Within the grace the last known state stands, with the error shown.
		if st := r.a.Status(); st.State != presence.Active || st.IdleError == "" {
			t.Fatalf("within grace: %+v", st)
		}
		r.advance(32 * time.Second)
		// Past it: away, never a guessed active.
		if st := r.a.Status(); st.State != presence.Away || st.SentState != presence.Away {
			t.Fatalf("past grace: %+v", st)
		}
		r.idle.setErr(nil)
		r.idle.touch()
		r.advance(2 * time.Second)
		if st := r.a.Status(); st.State != presence.Active || st.IdleError != "" {
			t.Fatalf("recovered: %+v", st)
		}
		if n := r.logs.count("cannot read idle time"); n != 1 {
			t.Fatalf("idle error logged %d times, want once per streak", n)
		}
	})
}

func TestIdleUnreadableFromStartIsAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.idle.setErr(errors.New("no idle source"))
		r.start()
		bs := r.outbox()
		if len(bs) != 1 || bs[0].State != presence.Away {
			t.Fatalf("first beat %v, want away", states(bs))
		}
	})
}

func TestSubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		ch, cancel := r.a.Subscribe()
		defer cancel()
		r.start()
		st := <-ch
		if st.State != presence.Active || st.SentState != presence.Active {
			t.Fatalf("first status %+v", st)
		}
		// Idle seconds alone do not notify.
		r.advance(time.Minute)
		select {
		case st := <-ch:
			if st.State == presence.Active && st.SentState == presence.Active && st.TodayActive == 0 {
				t.Fatalf("notified with nothing changed: %+v", st)
			}
		default:
		}
		r.send(OSEvent{Kind: Locked})
		var last Status
		for {
			select {
			case s := <-ch:
				last = s
				continue
			default:
			}
			break
		}
		if last.State != presence.Away {
			t.Fatalf("after lock got %+v", last)
		}
		cancel()
		r.send(OSEvent{Kind: Unlocked})
		select {
		case s := <-ch:
			t.Fatalf("cancelled subscription got %+v", s)
		default:
		}
	})
}

func TestTodayActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, "")
		r.start()
		for range 20 {
			r.idle.touch()
			r.advance(30 * time.Second)
		}
		got := r.a.Status().TodayActive
		if got < 9*time.Minute || got > 10*time.Minute {
			t.Fatalf("TodayActive after 10 active minutes = %v", got)
		}
	})
}

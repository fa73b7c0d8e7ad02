package sqlite

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
)

// sweepClock is time.Now counting its calls: with nothing else running, the
// expiry loop reads the clock twice per wake (to sweep, then to plan), and
// an idle store must not wake every second (the agent embeds this store,
// and its wakeups count).
type sweepClock struct{ calls atomic.Int64 }

func (c *sweepClock) Now() time.Time {
	c.calls.Add(1)
	return time.Now()
}

// offlineEvents are the presence events saying the device went offline.
func offlineEvents(rec *storetest.Recorder) []presence.Event {
	var out []presence.Event
	for _, ev := range rec.Events() {
		if ev.Kind == presence.EventPresence && ev.Presence.Status == presence.Offline {
			out = append(out, ev)
		}
	}
	return out
}

func TestExpiryLoopSleepsUntilTheNextExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &sweepClock{}
		rec := &storetest.Recorder{}
		pulse := presence.Pulse{Interval: 10 * time.Second, Grace: 10 * time.Second} // window 20 s
		s, err := Open(tempDB(t), presence.Options{Pulse: pulse, Notify: rec.Notify, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		u, _, err := s.CreateUser(ctx, "sleepy", "")
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := s.CreateDevice(ctx, u.ID, "desk")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		// Nothing online: one safety sweep per maxSweep, not one a second.
		n := clock.calls.Load()
		time.Sleep(10 * maxSweep)
		synctest.Wait()
		if got := (clock.calls.Load() - n) / 2; got > 10 {
			t.Fatalf("%d wakes in %v with no device online, want at most 10", got, 10*maxSweep)
		}

		// The device comes online in the middle of a long sleep: the loop
		// plans for it at once, not at its next safety wake.
		time.Sleep(maxSweep / 2)
		first := time.Now()
		if _, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: first, State: presence.Active}}, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		n = clock.calls.Load()
		// A beat within the window pushes the expiry back without waking
		// the loop; the loop finds that when it wakes at the old expiry.
		time.Sleep(pulse.Interval)
		synctest.Wait()
		if got := clock.calls.Load() - n; got != 0 {
			t.Fatalf("%d clock reads before the first possible expiry, want none", got)
		}
		last := time.Now()
		if _, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: 2, At: last, State: presence.Active}}, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		n = clock.calls.Load()
		time.Sleep(time.Until(first.Add(pulse.Window())) + minSweep)
		synctest.Wait()
		if evs := offlineEvents(rec); len(evs) != 0 {
			t.Fatalf("offline announced at the first beat's expiry though a later beat extended it: %+v", evs)
		}
		time.Sleep(time.Until(last.Add(pulse.Window())) + minSweep)
		synctest.Wait()
		evs := offlineEvents(rec)
		if len(evs) != 1 || !evs[0].At.Equal(last.Add(pulse.Grace)) {
			t.Fatalf("offline events %+v, want one at the last beat + grace (%v)", evs, last.Add(pulse.Grace))
		}
		// Two wakes for two planned expiries, nothing in between.
		if got := (clock.calls.Load() - n) / 2; got > 2 {
			t.Fatalf("%d wakes between the last beat and its expiry, want at most 2", got)
		}
	})
}

func TestExpiryWait(t *testing.T) {
	now := t0
	tests := []struct {
		name string
		next time.Time
		want time.Duration
	}{
		{"nothing online: the safety cap", time.Time{}, maxSweep},
		{"just past the expiry instant", now.Add(20 * time.Second), 20*time.Second + time.Nanosecond},
		{"never sooner than minSweep", now.Add(time.Millisecond), minSweep},
		{"already due: minSweep", now.Add(-time.Second), minSweep},
		{"far away: the safety cap", now.Add(time.Hour), maxSweep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expiryWait(tt.next, now); got != tt.want {
				t.Errorf("expiryWait = %v, want %v", got, tt.want)
			}
		})
	}
}

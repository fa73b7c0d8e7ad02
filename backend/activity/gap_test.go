package activity

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestGapMissing(t *testing.T) {
	const tick = 5 * time.Second
	tests := []struct {
		name        string
		dWall, dMon time.Duration
		want        time.Duration
	}{
		{"on schedule", tick, tick, 0},
		{"jitter", tick + 30*time.Millisecond, tick + 30*time.Millisecond, 30 * time.Millisecond},
		{"monotonic paused during suspend", tick + time.Hour, tick, time.Hour},
		{"monotonic counted the suspend", tick + time.Hour, tick + time.Hour, time.Hour},
		{"wall clock stepped back", tick - time.Minute, tick, 0},
		{"both clocks jumped, wall further", 2 * time.Hour, time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gapMissing(tt.dWall, tt.dMon, tick); got != tt.want {
				t.Errorf("gapMissing(%v, %v) = %v, want %v", tt.dWall, tt.dMon, got, tt.want)
			}
		})
	}
}

// skewClock is a wall and a monotonic clock over synctest's fake time, each
// with an offset the test moves to act out a suspend.
type skewClock struct {
	start           time.Time
	wallOff, monOff atomic.Int64
}

func newSkewClock() *skewClock { return &skewClock{start: time.Now()} }

func (c *skewClock) wall() time.Time {
	return time.Now().Add(time.Duration(c.wallOff.Load())).Round(0)
}

func (c *skewClock) mono() time.Duration {
	return time.Since(c.start) + time.Duration(c.monOff.Load())
}

func (c *skewClock) cfg() GapConfig {
	return GapConfig{Tick: 5 * time.Second, Threshold: 20 * time.Second, Wall: c.wall, Mono: c.mono}
}

func noEvent(t *testing.T, ch <-chan Event) {
	t.Helper()
	synctest.Wait()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %v", ev)
		}
		t.Fatal("events closed early")
	default:
	}
}

func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	synctest.Wait()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	default:
		t.Fatal("no event")
	}
	return Event{}
}

func TestGapDetectorQuietWhenNothingHappens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGapDetector(GapConfig{}) // default clocks: synctest's fake time
		time.Sleep(time.Hour)
		noEvent(t, g.Events())
		g.Close()
		if _, ok := <-g.Events(); ok {
			t.Fatal("Events not closed by Close")
		}
	})
}

func TestGapDetectorSuspendWithPausedMonotonic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSkewClock()
		g := NewGapDetector(c.cfg())
		defer g.Close()
		time.Sleep(12 * time.Second) // ticks at 5 s and 10 s
		noEvent(t, g.Events())
		lastTick := c.start.Add(10 * time.Second)

		// The machine sleeps for an hour between two ticks: the wall clock
		// moves on, the monotonic one does not.
		c.wallOff.Store(int64(time.Hour))
		time.Sleep(5 * time.Second) // tick at 15 s
		sl := nextEvent(t, g.Events())
		wk := nextEvent(t, g.Events())
		if sl.Kind != Sleeping || !sl.At.Equal(lastTick) || sl.Source != GapName {
			t.Errorf("first event = %v, want sleeping at %v", sl, lastTick)
		}
		wantWake := c.start.Add(15*time.Second + time.Hour)
		if wk.Kind != Woke || !wk.At.Equal(wantWake) {
			t.Errorf("second event = %v, want woke at %v", wk, wantWake)
		}
		// The new offset is the new normal: no repeat.
		time.Sleep(time.Minute)
		noEvent(t, g.Events())
	})
}

func TestGapDetectorLateTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSkewClock()
		g := NewGapDetector(c.cfg())
		defer g.Close()
		time.Sleep(6 * time.Second) // tick at 5 s
		// Both clocks jump: a monotonic clock that counts suspend, or a
		// frozen process.
		c.wallOff.Store(int64(10 * time.Minute))
		c.monOff.Store(int64(10 * time.Minute))
		time.Sleep(5 * time.Second)
		if ev := nextEvent(t, g.Events()); ev.Kind != Sleeping || !ev.At.Equal(c.start.Add(5*time.Second)) {
			t.Errorf("got %v, want sleeping at start+5s", ev)
		}
		if ev := nextEvent(t, g.Events()); ev.Kind != Woke {
			t.Errorf("got %v, want woke", ev)
		}
	})
}

func TestGapDetectorIgnoresSmallGapsAndBackwardSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSkewClock()
		g := NewGapDetector(c.cfg())
		defer g.Close()
		time.Sleep(6 * time.Second)
		c.wallOff.Store(int64(15 * time.Second)) // below the 20 s threshold
		time.Sleep(10 * time.Second)
		c.wallOff.Store(int64(-time.Hour)) // clock set back
		time.Sleep(10 * time.Second)
		noEvent(t, g.Events())
	})
}

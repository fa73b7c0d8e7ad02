package activity

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDedup(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	ev := func(k EventKind, min int, src string) Event { return Event{Kind: k, At: at(min), Source: src} }
	tests := []struct {
		name   string
		locked *bool
		in     []Event
		want   []bool
	}{
		{"lock then unlock", nil,
			[]Event{ev(Locked, 0, "a"), ev(Unlocked, 1, "a")}, []bool{true, true}},
		{"two backends report one lock", nil,
			[]Event{ev(Locked, 0, "a"), ev(Locked, 0, "b"), ev(Unlocked, 1, "b"), ev(Unlocked, 1, "a")},
			[]bool{true, false, true, false}},
		{"unlock while known unlocked", new(false),
			[]Event{ev(Unlocked, 0, "a"), ev(Locked, 1, "a")}, []bool{false, true}},
		{"signalled sleep, gap noticed after the signalled wake", nil,
			[]Event{ev(Sleeping, 10, "logind"), ev(Woke, 70, "logind"), ev(Sleeping, 9, GapName), ev(Woke, 70, GapName)},
			[]bool{true, true, false, false}},
		{"signalled sleep, gap noticed before the signalled wake", nil,
			[]Event{ev(Sleeping, 10, "logind"), ev(Sleeping, 9, GapName), ev(Woke, 70, GapName), ev(Woke, 70, "logind")},
			[]bool{true, false, true, false}},
		{"unannounced suspend", nil,
			[]Event{ev(Sleeping, 9, GapName), ev(Woke, 70, GapName)}, []bool{true, true}},
		{"two suspends, the second unannounced", nil,
			[]Event{ev(Sleeping, 10, "logind"), ev(Woke, 20, "logind"), ev(Sleeping, 30, GapName), ev(Woke, 40, GapName)},
			[]bool{true, true, true, true}},
		{"a new sleep stamped at the last wake", nil,
			[]Event{ev(Sleeping, 10, "logind"), ev(Woke, 20, "logind"), ev(Sleeping, 20, "logind"), ev(Woke, 30, "logind")},
			[]bool{true, true, true, true}},
		{"woke without sleeping", nil, []Event{ev(Woke, 5, "logind")}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDedup()
			d.locked = tt.locked
			for i, e := range tt.in {
				if got := d.keep(e); got != tt.want[i] {
					t.Errorf("event %d (%v): keep = %v, want %v", i, e, got, tt.want[i])
				}
			}
		})
	}
}

func TestMuxMergesPollAndGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var locked atomic.Bool
		read := func(ctx context.Context) (bool, error) { return locked.Load(), ctx.Err() }
		ctx := context.Background()
		logger := slog.New(slog.DiscardHandler)
		p, err := newPollLock(ctx, "test-lock", read, time.Second, time.Now, logger)
		if err != nil {
			t.Fatal(err)
		}
		c := newSkewClock()
		g := NewGapDetector(c.cfg())
		m := newMux(ctx, logger, p, g)
		if got := m.Name(); got != "test-lock+clock-gap" {
			t.Errorf("Name = %q", got)
		}

		locked.Store(true)
		time.Sleep(1500 * time.Millisecond)
		if ev := nextEvent(t, m.Events()); ev.Kind != Locked || ev.Source != "test-lock" {
			t.Errorf("got %v, want locked", ev)
		}
		if l, err := m.LockedNow(ctx); err != nil || !l {
			t.Errorf("LockedNow = %v, %v; want true", l, err)
		}
		c.wallOff.Store(int64(time.Hour))
		time.Sleep(5 * time.Second)
		if ev := nextEvent(t, m.Events()); ev.Kind != Sleeping {
			t.Errorf("got %v, want sleeping", ev)
		}
		if ev := nextEvent(t, m.Events()); ev.Kind != Woke {
			t.Errorf("got %v, want woke", ev)
		}
		noEvent(t, m.Events())

		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-m.Events(); ok {
			t.Fatal("Events not closed")
		}
	})
}

func TestMuxLockedNowUnsupported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMux(context.Background(), slog.New(slog.DiscardHandler), NewGapDetector(GapConfig{}))
		defer m.Close()
		if _, err := m.LockedNow(context.Background()); !errors.Is(err, ErrUnsupported) {
			t.Errorf("LockedNow error = %v, want ErrUnsupported", err)
		}
	})
}

func TestPollLockSurvivesReadErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			locked  atomic.Bool
			failing atomic.Bool
		)
		read := func(context.Context) (bool, error) {
			if failing.Load() {
				return false, errors.New("desktop unavailable")
			}
			return locked.Load(), nil
		}
		p, err := newPollLock(context.Background(), "p", read, 2*time.Second, time.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		failing.Store(true)
		time.Sleep(10 * time.Second)
		noEvent(t, p.Events())
		locked.Store(true)
		failing.Store(false)
		time.Sleep(2 * time.Second)
		if ev := nextEvent(t, p.Events()); ev.Kind != Locked {
			t.Errorf("got %v, want locked", ev)
		}
	})
}

func TestEventKindString(t *testing.T) {
	for k, want := range map[EventKind]string{Locked: "locked", Unlocked: "unlocked", Sleeping: "sleeping", Woke: "woke", 9: "EventKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}

package httpapi

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	c := &clock{now: T0}
	l := newLimiter(c.Now)
	r := Rate{PerSecond: 2, Burst: 3}
	a, b := [32]byte{1}, [32]byte{2}
	steps := []struct {
		advance time.Duration
		key     [32]byte
		ok      bool
		wait    time.Duration
	}{
		{0, a, true, 0},
		{0, a, true, 0},
		{0, a, true, 0},
		{0, a, false, 500 * time.Millisecond}, // empty: one token per 500 ms
		{0, b, true, 0},                       // other keys are untouched
		{250 * time.Millisecond, a, false, 250 * time.Millisecond},
		{250 * time.Millisecond, a, true, 0},
		{10 * time.Second, a, true, 0}, // refilled, but never past the burst
		{0, a, true, 0},
		{0, a, true, 0},
		{0, a, false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		ok, wait := l.allow(s.key, r)
		if ok != s.ok || wait != s.wait {
			t.Errorf("step %d: %v %v, want %v %v", i, ok, wait, s.ok, s.wait)
		}
	}
	// A full bucket is the same as none: the sweep forgets it.
	c.Advance(2 * time.Minute)
	l.allow([32]byte{3}, r)
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want only the fresh one", n)
	}
}

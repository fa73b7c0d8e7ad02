package notify

import (
	"fmt"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time          { return c.now }
func (c *manualClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func watches(handles ...string) []presence.Watch {
	var ws []presence.Watch
	for _, h := range handles {
		ws = append(ws, presence.Watch{Handle: h, Name: "N" + h})
	}
	return ws
}

func TestDeciderTransitions(t *testing.T) {
	c := &manualClock{now: t0}
	d := NewDecider(c.Now)
	d.SetWatches(watches("bob", "ann"))
	d.Snapshot(map[string]presence.State{"bob": presence.Away, "cat": presence.Offline})
	for _, tt := range []struct {
		name string
		ch   Change
		want bool
	}{
		{"away to active", Change{"bob", "laptop", presence.Active}, true},
		{"active to idle stays online", Change{"bob", "laptop", presence.Idle}, false},
		{"not watched", Change{"cat", "pc", presence.Active}, false},
		{"oneself, even if watched", Change{"ann", "pc", presence.Active}, false},
		{"unknown before counts as offline", Change{"dan", "pc", presence.Active}, false}, // not watched
	} {
		n, ok := d.Observe(tt.ch, "ann", true)
		if ok != tt.want {
			t.Errorf("%s: announced %v (%+v), want %v", tt.name, ok, n, tt.want)
		}
		if ok && (n.Title != "Nbob is online" || n.Body != "laptop") {
			t.Errorf("%s: notification %+v", tt.name, n)
		}
	}
	// Someone never seen before who comes online is announced.
	d.SetWatches(watches("eve"))
	if _, ok := d.Observe(Change{"eve", "pc", presence.Idle}, "ann", true); !ok {
		t.Error("eve, absent from the snapshot, coming online (idle) was not announced")
	}
	// A watch without a name shows the handle.
	d.SetWatches([]presence.Watch{{Handle: "fay"}})
	if n, ok := d.Observe(Change{"fay", "pc", presence.Active}, "ann", true); !ok || n.Title != "fay is online" {
		t.Errorf("fay: %+v %v", n, ok)
	}
}

func TestDeciderSnapshotAnnouncesNobody(t *testing.T) {
	d := NewDecider((&manualClock{now: t0}).Now)
	d.SetWatches(watches("bob"))
	d.Snapshot(map[string]presence.State{"bob": presence.Active})
	if _, ok := d.Observe(Change{"bob", "phone", presence.Active}, "", true); ok {
		t.Error("bob, online at the snapshot, announced on his next change")
	}
}

func TestDeciderDisabledSpendsNothing(t *testing.T) {
	d := NewDecider((&manualClock{now: t0}).Now)
	d.SetWatches(watches("bob"))
	if _, ok := d.Observe(Change{"bob", "pc", presence.Active}, "", false); ok {
		t.Fatal("announced with notifications off")
	}
	d.Observe(Change{"bob", "pc", presence.Offline}, "", true)
	if _, ok := d.Observe(Change{"bob", "pc", presence.Active}, "", true); !ok {
		t.Error("switched back on, bob coming online is not announced: the silenced one spent his limit")
	}
}

func TestDeciderPerPersonLimit(t *testing.T) {
	c := &manualClock{now: t0}
	d := NewDecider(c.Now)
	d.SetWatches(watches("bob"))
	flap := func() bool {
		d.Observe(Change{"bob", "pc", presence.Offline}, "", true)
		_, ok := d.Observe(Change{"bob", "pc", presence.Active}, "", true)
		return ok
	}
	var got []bool
	for _, step := range []time.Duration{0, time.Minute, 8 * time.Minute, time.Minute, 5 * time.Minute} {
		c.Advance(step)
		got = append(got, flap())
	}
	// At 0, 1, 9, 10 and 15 minutes: the first, then 10 minutes later.
	if fmt.Sprint(got) != "[true false false true false]" {
		t.Errorf("announced %v, want [true false false true false]", got)
	}
}

func TestDeciderHourlyLimit(t *testing.T) {
	c := &manualClock{now: t0}
	d := NewDecider(c.Now)
	var hs []string
	for i := range 30 {
		hs = append(hs, fmt.Sprintf("p%02d", i))
	}
	d.SetWatches(watches(hs...))
	count := func(from, to int) int {
		n := 0
		for _, h := range hs[from:to] {
			d.Observe(Change{h, "pc", presence.Offline}, "", true)
			if _, ok := d.Observe(Change{h, "pc", presence.Active}, "", true); ok {
				n++
			}
			c.Advance(time.Second)
		}
		return n
	}
	if n := count(0, 25); n != PerHour {
		t.Fatalf("25 people online within a minute: %d announced, want %d", n, PerHour)
	}
	c.Advance(59 * time.Minute)
	if n := count(25, 30); n != 0 {
		t.Errorf("59 minutes later: %d announced, want 0 (the hour is not over)", n)
	}
	c.Advance(time.Minute)
	if n := count(25, 30); n != 5 {
		t.Errorf("an hour after the first: %d announced, want 5", n)
	}
}

package httpapi

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func ev(id int64, kind presence.EventKind, user int64) presence.Event {
	return presence.Event{ID: id, Kind: kind, UserID: user, At: T0}
}

func ids(evs []presence.Event) []int64 {
	out := make([]int64, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestHubReplay(t *testing.T) {
	h := NewHub(4, nil)
	all := func(presence.Event) bool { return true }
	for id := range int64(6) {
		h.Publish(ev(id+1, presence.EventPresence, 1))
	}
	tests := []struct {
		name   string
		after  int64
		replay bool
		match  func(presence.Event) bool
		want   []int64
	}{
		{"no Last-Event-ID: live only", 0, false, all, []int64{}},
		{"after an id the ring still holds", 4, true, all, []int64{5, 6}},
		{"after the newest", 6, true, all, []int64{}},
		{"older than the ring: what is left", 1, true, all, []int64{3, 4, 5, 6}},
		{"filtered", 0, true, func(e presence.Event) bool { return e.ID%2 == 0 }, []int64{4, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			past, sub := h.subscribe(tt.after, tt.replay, tt.match)
			defer h.unsubscribe(sub)
			if got := ids(past); !slices.Equal(got, tt.want) {
				t.Errorf("replay %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHubSlowSubscriberIsDropped(t *testing.T) {
	logs := &logBuffer{}
	h := NewHub(16, slog.New(slog.NewTextHandler(logs, nil)))
	h.buffer = 4
	_, slow := h.subscribe(0, false, func(presence.Event) bool { return true })
	_, picky := h.subscribe(0, false, func(e presence.Event) bool { return e.Kind == presence.EventSession })

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range int64(10) {
			kind := presence.EventPresence
			if i == 9 {
				kind = presence.EventSession
			}
			h.Publish(ev(i+1, kind, 1))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	var got []int64
	for e := range slow.c { // ends: the hub closed the channel
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Errorf("the slow stream got %v, want what fitted its buffer: [1 2 3 4]", got)
	}
	if !h.wasDropped(slow) || h.wasDropped(picky) {
		t.Errorf("dropped: slow %v, picky %v; want only slow", h.wasDropped(slow), h.wasDropped(picky))
	}
	if e := <-picky.c; e.ID != 10 {
		t.Errorf("the picky stream got %d, want only the session event 10", e.ID)
	}
	if h.subscribers() != 1 {
		t.Errorf("subscribers %d, want 1", h.subscribers())
	}
	h.unsubscribe(slow) // safe after a drop
	h.unsubscribe(picky)
	if h.subscribers() != 0 {
		t.Errorf("subscribers %d after unsubscribe", h.subscribers())
	}
	if _, ok := <-picky.c; ok {
		t.Errorf("unsubscribe did not close the channel")
	}
	if logs.String() == "" {
		t.Errorf("the drop was not logged")
	}
}

func TestHubConcurrentPublishers(t *testing.T) {
	h := NewHub(0, nil)
	var wg sync.WaitGroup
	var got [4][]int64
	for i := range got {
		_, sub := h.subscribe(0, false, func(presence.Event) bool { return true })
		wg.Go(func() {
			for e := range sub.c {
				got[i] = append(got[i], e.ID)
				if len(got[i]) == 200 {
					h.unsubscribe(sub)
				}
			}
		})
	}
	var pub sync.WaitGroup
	for p := range 4 {
		pub.Go(func() {
			for i := range 50 {
				h.Publish(ev(int64(p*1000+i), presence.EventPresence, 1))
			}
		})
	}
	pub.Wait()
	wg.Wait()
	for i, g := range got {
		if len(g) != 200 {
			t.Errorf("subscriber %d got %d events, want 200", i, len(g))
		}
	}
}

func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := NewHub(DefaultHubRing, nil)
			var wg sync.WaitGroup
			subs := make([]*subscription, n)
			for i := range subs {
				// Half see every event, half only their own user's sessions.
				user := int64(i)
				_, subs[i] = h.subscribe(0, false, func(e presence.Event) bool {
					return e.Kind == presence.EventPresence || e.UserID == user
				})
				wg.Go(func() {
					for range subs[i].c {
					}
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.Publish(ev(int64(i), presence.EventPresence, 1))
			}
			b.StopTimer()
			for _, s := range subs {
				h.unsubscribe(s)
			}
			wg.Wait()
		})
	}
}

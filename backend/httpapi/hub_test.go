package httpapi

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/lastseen/lastseen/backend/presence"
)

// ev is an event with its payload: presence for everyone, or a session of
// user.
func ev(id int64, kind presence.EventKind, user int64) presence.Event {
	e := presence.Event{ID: id, Kind: kind, UserID: user, At: T0}
	switch kind {
	case presence.EventPresence:
		e.Presence = &presence.PresenceChange{Handle: fmt.Sprintf("u%d", user), DeviceID: id, Status: presence.Active}
	case presence.EventSession:
		e.Session = &presence.Span{ID: id, DeviceID: 1, State: presence.Active, Start: T0, End: T0}
	}
	return e
}

func frameIDs(fs []*frame) []int64 {
	out := make([]int64, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.id)
	}
	return out
}

// drain takes everything s may read now, in batches of batch.
func drain(h *Hub, s *subscription, batch int) (ids []int64, done bool) {
	ids = []int64{}
	for {
		fs, d := h.take(s, make([]*frame, 0, batch))
		ids = append(ids, frameIDs(fs)...)
		if d || len(fs) < batch {
			return ids, d
		}
	}
}

// woken reports whether s has a wake-up waiting, and consumes it.
func woken(s *subscription) bool {
	select {
	case <-s.wake:
		return true
	default:
		return false
	}
}

func TestHubReplay(t *testing.T) {
	// 1 presence, 2 session of user 1, 3 presence, 4 session of user 2,
	// 5 presence, 6 session of user 1: the ring keeps 3..6.
	filled := func() *Hub {
		h := NewHub(4, nil)
		for id := range int64(6) {
			kind, user := presence.EventPresence, int64(9)
			if id%2 == 1 {
				kind, user = presence.EventSession, 1+(id/2)%2
			}
			h.Publish(ev(id+1, kind, user))
		}
		return h
	}
	tests := []struct {
		name   string
		after  int64
		replay bool
		user   int64
		want   []int64
	}{
		{"no Last-Event-ID: live only", 0, false, 1, []int64{}},
		{"after an id the ring still holds", 4, true, 1, []int64{5, 6}},
		{"after the newest", 6, true, 1, []int64{}},
		{"older than the ring: what is left", 1, true, 3, []int64{3, 5}},
		{"sessions only for their owner", 0, true, 2, []int64{3, 4, 5}},
		{"the owner's own sessions", 0, true, 1, []int64{3, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := filled()
			past, sub := h.subscribe(tt.after, tt.replay, tt.user, 0)
			defer h.unsubscribe(sub)
			if got := frameIDs(past); !slices.Equal(got, tt.want) {
				t.Errorf("replay %v, want %v", got, tt.want)
			}
			// Live follows the replay with nothing between or twice.
			h.Publish(ev(100, presence.EventPresence, 9))
			if got, _ := drain(h, sub, 8); !slices.Equal(got, []int64{100}) {
				t.Errorf("live after the replay %v, want [100]", got)
			}
		})
	}
}

func TestHubEventsWithoutPayloadAreNotFiled(t *testing.T) {
	h := NewHub(8, nil)
	_, s := h.subscribe(0, false, 1, 0)
	h.Publish(presence.Event{ID: 1, Kind: presence.EventPresence})           // no Presence
	h.Publish(presence.Event{ID: 2, Kind: presence.EventSession, UserID: 1}) // no Session
	h.Publish(presence.Event{ID: 3, Kind: "unknown", UserID: 1, Presence: ev(3, presence.EventPresence, 1).Presence})
	if woken(s) {
		t.Errorf("a stream was woken for events nobody may see")
	}
	if got, _ := drain(h, s, 8); len(got) != 0 {
		t.Errorf("took %v", got)
	}
}

func TestHubWakeUp(t *testing.T) {
	h := NewHub(64, nil)
	_, ann := h.subscribe(0, false, 1, 0)
	_, bob := h.subscribe(0, false, 2, 0)

	for i := range int64(10) {
		h.Publish(ev(i+1, presence.EventPresence, 9))
	}
	if !woken(ann) || woken(ann) {
		t.Errorf("ten events should leave exactly one wake-up token")
	}
	if got, _ := drain(h, ann, 4); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("ann took %v", got)
	}

	// Bob has not read; ann has. A session of ann's wakes only ann and
	// leaves bob where he was.
	woken(bob)
	h.Publish(ev(11, presence.EventSession, 1))
	if !woken(ann) || woken(bob) {
		t.Errorf("a session woke the wrong streams")
	}
	if got, _ := drain(h, ann, 4); !slices.Equal(got, []int64{11}) {
		t.Errorf("ann took %v", got)
	}
	if got, _ := drain(h, bob, 4); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("bob took %v, want the presence events without ann's session", got)
	}
}

func TestHubEncodesOnceForEveryone(t *testing.T) {
	h := NewHub(8, nil)
	_, a := h.subscribe(0, false, 1, 0)
	_, b := h.subscribe(0, false, 2, 0)
	h.Publish(ev(1, presence.EventPresence, 1))
	fa, _ := h.take(a, make([]*frame, 0, 1))
	fb, _ := h.take(b, make([]*frame, 0, 1))
	if len(fa) != 1 || len(fb) != 1 || fa[0] != fb[0] {
		t.Fatalf("the streams got different frames: %v %v", fa, fb)
	}
	x, y := fa[0].bytes("ann"), fb[0].bytes("bob")
	if &x[0] != &y[0] {
		t.Errorf("the frame was encoded twice")
	}
	if !strings.HasPrefix(string(x), "id: 1\nevent: presence\ndata: {") || !strings.HasSuffix(string(x), "}\n\n") {
		t.Errorf("frame %q", x)
	}
}

func TestHubSlowSubscriberIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logBuffer{}
		h := NewHub(16, slog.New(slog.NewTextHandler(logs, nil)))
		if h.lagLimit != 12 {
			t.Fatalf("lag limit %d, want three quarters of the ring", h.lagLimit)
		}
		_, slow := h.subscribe(0, false, 1, 0)
		_, fast := h.subscribe(0, false, 2, 0)

		// The fast stream reads as events come, the slow one never does.
		var got []int64
		reader := make(chan struct{})
		go func() {
			defer close(reader)
			for range fast.wake {
				ids, done := drain(h, fast, 4)
				got = append(got, ids...)
				if done || len(got) == 14 {
					return
				}
			}
		}()
		// Were Publish to wait on the slow stream, the bubble would
		// deadlock here and the test fail.
		// The slow stream is 13 behind at the 13th event: dropped.
		for i := range int64(14) {
			h.Publish(ev(i+1, presence.EventPresence, 9))
			synctest.Wait() // let the fast stream keep up
		}
		<-reader
		if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}; !slices.Equal(got, want) {
			t.Errorf("the fast stream got %v", got)
		}
		if !h.wasDropped(slow) || h.wasDropped(fast) {
			t.Errorf("dropped: slow %v, fast %v; want only slow", h.wasDropped(slow), h.wasDropped(fast))
		}
		if h.subscribers() != 1 {
			t.Errorf("subscribers %d, want 1", h.subscribers())
		}
		// It was woken to learn it is done, and it is told what it had
		// not read when it was dropped (the ring still has it), then no more.
		if !woken(slow) {
			t.Errorf("the dropped stream was not woken")
		}
		ids, done := drain(h, slow, 5)
		if !done || !slices.Equal(ids, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
			t.Errorf("the dropped stream took %v (done %v), want 1..12 and done", ids, done)
		}
		h.unsubscribe(slow) // safe after a drop
		h.unsubscribe(fast)
		if h.subscribers() != 0 {
			t.Errorf("subscribers %d after unsubscribe", h.subscribers())
		}
		if !strings.Contains(logs.String(), "dropped slow event streams") {
			t.Errorf("the drop was not logged: %q", logs.String())
		}
	})
}

func TestHubDroppedTooLateLeavesNoHole(t *testing.T) {
	h := NewHub(8, nil) // lag limit 6
	_, s := h.subscribe(0, false, 1, 0)
	for i := range int64(20) {
		h.Publish(ev(i+1, presence.EventPresence, 9))
	}
	if !h.wasDropped(s) {
		t.Fatal("not dropped")
	}
	// Dropped at event 7 with 1..6 unread, but those left the ring since:
	// telling 7.. would skip them, so the stream is done with nothing.
	if ids, done := drain(h, s, 4); !done || len(ids) != 0 {
		t.Errorf("took %v (done %v), want nothing and done", ids, done)
	}
}

func TestHubOthersSessionsDoNotMakeAStreamLag(t *testing.T) {
	h := NewHub(8, nil)
	_, idle := h.subscribe(0, false, 1, 0)
	_, busy := h.subscribe(0, false, 2, 0)
	for i := range int64(100) {
		h.Publish(ev(i+1, presence.EventSession, 2))
		if ids, _ := drain(h, busy, 4); !slices.Equal(ids, []int64{i + 1}) {
			t.Fatalf("busy took %v at %d", ids, i+1)
		}
	}
	if h.wasDropped(idle) || woken(idle) {
		t.Errorf("someone else's sessions dropped or woke a stream (dropped %v)", h.wasDropped(idle))
	}
	h.Publish(ev(101, presence.EventPresence, 9))
	if ids, done := drain(h, idle, 4); done || !slices.Equal(ids, []int64{101}) {
		t.Errorf("idle took %v (done %v), want [101]", ids, done)
	}
}

func TestHubConcurrentPublishers(t *testing.T) {
	h := NewHub(0, nil)
	var wg sync.WaitGroup
	var got [4][]int64
	for i := range got {
		_, sub := h.subscribe(0, false, int64(i+1), 0)
		wg.Go(func() {
			defer h.unsubscribe(sub)
			for range sub.wake {
				ids, done := drain(h, sub, 7)
				got[i] = append(got[i], ids...)
				if done || len(got[i]) >= 200 {
					return
				}
			}
		})
	}
	var pub sync.WaitGroup
	for p := range 4 {
		pub.Go(func() {
			for i := range 50 {
				h.Publish(ev(int64(p*1000+i), presence.EventPresence, 9))
			}
		})
	}
	pub.Wait()
	wg.Wait()
	for i, g := range got {
		if len(g) != 200 {
			t.Errorf("subscriber %d got %d events, want 200", i, len(g))
		}
		// Each publisher's events arrive in its order.
		last := map[int64]int64{}
		for _, id := range g {
			p := id / 1000
			if prev, ok := last[p]; ok && id <= prev {
				t.Errorf("subscriber %d: %d after %d", i, id, prev)
			}
			last[p] = id
		}
	}
}

func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := NewHub(DefaultHubRing, nil)
			var wg sync.WaitGroup
			subs := make([]*subscription, n)
			stop := make(chan struct{})
			for i := range subs {
				_, subs[i] = h.subscribe(0, false, int64(i+1), 0)
				wg.Go(func() {
					batch := make([]*frame, 0, takeMax)
					for {
						select {
						case <-stop:
							return
						case <-subs[i].wake:
							for {
								fs, done := h.take(subs[i], batch[:0])
								for _, f := range fs {
									f.bytes("u")
								}
								if done || len(fs) < takeMax {
									break
								}
							}
						}
					}
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.Publish(ev(int64(i), presence.EventPresence, 1))
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
}

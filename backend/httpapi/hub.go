package httpapi

import (
	"log/slog"
	"sync"

	"github.com/lastseen/lastseen/backend/presence"
)

// DefaultHubRing is the replay ring's size when NewHub is given none.
const DefaultHubRing = 1024

// Hub fans committed events out to SSE streams.
//
// Every event goes once into a shared ring, and its SSE frame is encoded at
// most once, by the first stream that sends it; the other streams write the
// same bytes. A stream is only a position in that ring and a one-slot wake-up
// channel, so an idle stream holds no events and no buffer of its own.
//
// Publish never blocks: it files the event and pokes the streams that may
// want it. A stream that falls more than lagLimit events behind (its client
// stopped reading) is dropped: it still sends what it had not read up to
// that point, then ends, and the browser reconnects with Last-Event-ID and
// resumes from the ring. The limit stays a quarter of the ring short of the
// ring itself, so a dropped stream's unread events are still there to be
// sent, and a reconnect that comes back soon finds nothing missing.
type Hub struct {
	log      *slog.Logger
	lagLimit uint64
	// tee hands every event to the public status feeds (public_stream.go).
	tee publicTee

	// mu guards everything below. Publish and subscribe take it to write;
	// streams take it to read (each writes only its own position, which
	// Publish reads under the write lock), so a thousand streams woken by
	// one event do not queue behind each other.
	mu   sync.RWMutex
	ring []*frame // the event at position p sits at ring[p%len(ring)]
	head uint64   // the position the next event takes
	subs map[*subscription]struct{}
}

// frame is one event as the streams send it.
type frame struct {
	id int64
	// owner is the only user who may see the event (a session belongs to
	// one person); 0 means every signed-in user (presence is shared).
	owner int64

	once sync.Once
	ev   presence.Event // until encoded
	b    []byte         // the SSE frame, once encoded
}

// visibleTo reports whether a stream of user may see the event.
func (f *frame) visibleTo(user int64) bool { return f.owner == 0 || f.owner == user }

// bytes is the event's SSE frame, encoded by the first caller for all of
// them. handle is the reader's, which names the owner of a session event:
// only its owner reads one, so every reader passes the same handle.
func (f *frame) bytes(handle string) []byte {
	f.once.Do(func() {
		f.b = appendEvent(nil, f.ev, handle)
		f.ev = presence.Event{} // the bytes are all that is needed now
	})
	return f.b
}

// credential is what a stream was opened with, so that whatever ends
// the credential (a revoked device or API token, an ended session, a
// disabled user) can end the stream too.
type credential struct {
	user int64
	// device is the device whose token opened the stream (0 for a user
	// credential).
	device int64
	// session is the browser session that opened it (0 for a token);
	// token the user API token's id ("" for others).
	session int64
	token   string
}

// subscription is one stream's place in the hub.
type subscription struct {
	credential
	// wake holds one token when there may be something to read: Publish
	// never waits on it, and however many events arrive meanwhile, one read
	// takes them all.
	wake chan struct{}

	// Under the hub's lock. next is the position of the first event the
	// stream has not read; end, once dropped, is where its feed stops.
	next    uint64
	end     uint64
	dropped bool
	// cut ends the stream at once, sending nothing more: its token was
	// revoked.
	cut bool
}

// NewHub returns a hub that keeps the latest ring events for replay
// (DefaultHubRing when ring <= 0).
func NewHub(ring int, logger *slog.Logger) *Hub {
	if ring <= 0 {
		ring = DefaultHubRing
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		log:      logger,
		lagLimit: uint64(max(ring-ring/4, 1)),
		ring:     make([]*frame, ring),
		subs:     make(map[*subscription]struct{}),
	}
}

// audience says who may see ev: owner 0 is everyone; ok false is nobody
// (an event without its payload).
func audience(ev presence.Event) (owner int64, ok bool) {
	switch ev.Kind {
	case presence.EventPresence:
		return 0, ev.Presence != nil
	case presence.EventSession:
		return ev.UserID, ev.Session != nil && ev.UserID != 0
	}
	return 0, false
}

// Publish records ev in the ring and wakes every stream that may want it.
// It never waits on a stream (the lock is only ever held for a few pointer
// copies): it is the store's presence.Options.Notify, called from the
// writer that commits beats. Encoding is left to the first stream that
// sends the event, so a server nobody watches spends nothing on it.
func (h *Hub) Publish(ev presence.Event) {
	h.tee.observe(ev)
	owner, ok := audience(ev)
	if !ok {
		return
	}
	f := &frame{id: ev.ID, owner: owner, ev: ev}
	h.mu.Lock()
	defer h.mu.Unlock()
	pos := h.head
	h.ring[pos%uint64(len(h.ring))] = f
	h.head++
	dropped := 0
	for s := range h.subs {
		visible := f.visibleTo(s.user)
		if !visible && s.next == pos {
			// A stream that has read everything skips what is not its
			// own at once, so other people's sessions never make it look
			// behind.
			s.next = h.head
			continue
		}
		if h.head-s.next > h.lagLimit {
			// Its feed stops before this event: what it has not read is
			// still in the ring, and it may send that before it ends.
			s.dropped, s.end = true, pos
			delete(h.subs, s)
			dropped++
		} else if !visible {
			continue
		}
		select {
		case s.wake <- struct{}{}:
		default: // already woken; that read will see this event too
		}
	}
	if dropped > 0 {
		h.log.Warn("dropped slow event streams", attrDropped, dropped)
	}
}

// subscribe registers a stream of user, opened with device's token (0 for
// a user token). With replay it also returns the ring's events after
// afterID (a Last-Event-ID) that the user may see. Registering and copying
// happen under one lock, so no event falls between the replay and the live
// feed, and none comes twice.
func (h *Hub) subscribe(afterID int64, replay bool, user, device int64) ([]*frame, *subscription) {
	return h.subscribeAs(afterID, replay, credential{user: user, device: device})
}

// subscribeAs is subscribe for a stream opened with o's credential.
func (h *Hub) subscribeAs(afterID int64, replay bool, o credential) ([]*frame, *subscription) {
	user := o.user
	s := &subscription{credential: o, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	var past []*frame
	if replay {
		n := uint64(len(h.ring))
		for p := h.head - min(h.head, n); p < h.head; p++ {
			if f := h.ring[p%n]; f.id > afterID && f.visibleTo(user) {
				past = append(past, f)
			}
		}
	}
	s.next = h.head
	h.subs[s] = struct{}{}
	return past, s
}

// take appends to dst, up to its capacity, the events s has not read yet
// and moves s past them. done reports that the stream has nothing more to
// be told: it was dropped and has taken what it still could. An event that
// left the ring before s took it ends the stream there rather than leave a
// hole in it; the reconnect's replay picks up from the last one sent.
func (h *Hub) take(s *subscription, dst []*frame) (out []*frame, done bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if s.cut {
		return dst, true
	}
	n := uint64(len(h.ring))
	stop := h.head
	if s.dropped {
		stop = s.end
	}
	if h.head-s.next > n {
		return dst, true
	}
	next := s.next
	for ; next < stop && len(dst) < cap(dst); next++ {
		if f := h.ring[next%n]; f.visibleTo(s.user) {
			dst = append(dst, f)
		}
	}
	s.next = next
	return dst, s.dropped && next == stop
}

// unsubscribe forgets a stream. It is safe after the hub dropped it.
func (h *Hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// endDevice ends every stream opened with device's token, at once and
// with nothing more sent, and returns how many there were.
func (h *Hub) endDevice(device int64) int {
	return h.end(func(o credential) bool { return o.device == device })
}

// end ends every stream whose credential matches, at once and with nothing more
// sent, and returns how many there were.
func (h *Hub) end(match func(credential) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for s := range h.subs {
		if !match(s.credential) {
			continue
		}
		s.cut = true
		delete(h.subs, s)
		n++
		select {
		case s.wake <- struct{}{}:
		default: // already woken; that read will see the cut
		}
	}
	return n
}

// streamDevices lists the devices that have streams open, each once.
func (h *Hub) streamDevices() []int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []int64
	seen := map[int64]bool{}
	for s := range h.subs {
		if s.device != 0 && !seen[s.device] {
			seen[s.device] = true
			out = append(out, s.device)
		}
	}
	return out
}

// credentials lists the credentials that have streams open, each once.
func (h *Hub) credentials() []credential {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []credential
	seen := map[credential]bool{}
	for s := range h.subs {
		if !seen[s.credential] {
			seen[s.credential] = true
			out = append(out, s.credential)
		}
	}
	return out
}

// wasDropped reports whether the hub gave up on s for being slow.
func (h *Hub) wasDropped(s *subscription) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return s.dropped
}

// subscribers is the number of live streams.
func (h *Hub) subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

package httpapi

import (
	"log/slog"
	"sync"

	"github.com/lastseen/lastseen/backend/presence"
)

// DefaultHubRing is the replay ring's size when NewHub is given none.
const DefaultHubRing = 1024

// subscriberBuffer is how many events a stream may fall behind before it is
// dropped. A browser on a live connection drains events in microseconds; one
// that lags this far is stalled, and resuming it from the ring on its
// reconnect is cheaper than letting it hold anything up.
const subscriberBuffer = 256

// Hub fans committed events out to SSE streams. Publish never blocks: a
// stream whose buffer is full is dropped (its channel closes, its response
// ends, the browser reconnects with Last-Event-ID and resumes from the ring).
// The ring keeps the latest events so a reconnect loses nothing that
// happened in between, as long as it comes back within the ring's span.
type Hub struct {
	log    *slog.Logger
	buffer int

	mu   sync.Mutex
	ring []presence.Event // circular; next is where the next event goes
	next int
	full bool
	subs map[*subscription]struct{}
}

// subscription is one stream's view of the hub.
type subscription struct {
	c     chan presence.Event
	match func(presence.Event) bool
	// dropped is set, under the hub's lock, when the hub gave up on it.
	dropped bool
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
		log:    logger,
		buffer: subscriberBuffer,
		ring:   make([]presence.Event, ring),
		subs:   make(map[*subscription]struct{}),
	}
}

// Publish records ev in the ring and hands it to every stream that wants it.
// It never waits: it is the store's presence.Options.Notify, called from the
// writer that commits beats.
func (h *Hub) Publish(ev presence.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = ev
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
	dropped := 0
	for s := range h.subs {
		if !s.match(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			// Closing hands the stream what it already has, then EOF.
			s.dropped = true
			close(s.c)
			delete(h.subs, s)
			dropped++
		}
	}
	if dropped > 0 {
		h.log.Warn("dropped slow event streams", attrDropped, dropped)
	}
}

// subscribe registers a stream for the events match accepts. With replay it
// also returns the ring's matching events after afterID (a Last-Event-ID).
// Registering and copying happen under one lock, so no event falls between
// the replay and the live feed, and none comes twice.
func (h *Hub) subscribe(afterID int64, replay bool, match func(presence.Event) bool) ([]presence.Event, *subscription) {
	s := &subscription{c: make(chan presence.Event, h.buffer), match: match}
	h.mu.Lock()
	defer h.mu.Unlock()
	var past []presence.Event
	if replay {
		h.each(func(ev presence.Event) {
			if ev.ID > afterID && match(ev) {
				past = append(past, ev)
			}
		})
	}
	h.subs[s] = struct{}{}
	return past, s
}

// unsubscribe forgets a stream. It is safe after the hub dropped it.
func (h *Hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

// wasDropped reports whether the hub gave up on s for being slow.
func (h *Hub) wasDropped(s *subscription) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.dropped
}

// each visits the ring oldest first. The caller holds mu.
func (h *Hub) each(f func(presence.Event)) {
	if h.full {
		for _, ev := range h.ring[h.next:] {
			f(ev)
		}
	}
	for _, ev := range h.ring[:h.next] {
		f(ev)
	}
}

// subscribers is the number of live streams.
func (h *Hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

const eventsRoute = "GET /api/v1/events"

// sseRetry is the reconnect delay the stream asks browsers to use.
const sseRetry = 2 * time.Second

// drainMax bounds how many queued events go out under one flush.
const drainMax = 64

// events is GET /api/v1/events, the live stream (Server-Sent Events).
//
// Presence events go to every signed-in user (the presence list is shared
// by the whole server); session events only to the span's owner. After a
// reconnect, Last-Event-ID (or ?last_event_id= for clients that cannot set
// headers) replays what the hub's ring still holds.
func (s *Server) events(w http.ResponseWriter, r *http.Request, c caller) error {
	if s.closing() {
		return presence.Errorf(presence.EUNAVAILABLE, "shutting down")
	}
	after, replay, err := lastEventID(r)
	if err != nil {
		return err
	}
	u, err := s.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		return fmt.Errorf("user %d: %w", c.UserID, err)
	}
	userID := c.UserID
	past, sub := s.hub.subscribe(after, replay, func(ev presence.Event) bool {
		switch ev.Kind {
		case presence.EventPresence:
			return ev.Presence != nil
		case presence.EventSession:
			return ev.Session != nil && ev.UserID == userID
		}
		return false
	})
	defer s.hub.unsubscribe(sub)

	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut every stream; this one lives as
	// long as its client. Writers that cannot (ErrNotSupported) have no
	// deadline to clear.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // reverse proxies: do not buffer a stream
	w.WriteHeader(http.StatusOK)
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	buf := make([]byte, 0, 1024)
	buf = fmt.Appendf(buf, "retry: %d\n\n", sseRetry.Milliseconds())
	for _, ev := range past {
		buf = appendEvent(buf, ev, u.Handle)
	}
	if !s.send(w, rc, buf) {
		return nil
	}
	keep := time.NewTicker(s.cfg.KeepAlive)
	defer keep.Stop()
	for {
		buf = buf[:0]
		select {
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		case <-keep.C:
			buf = append(buf, ": keepalive\n\n"...)
		case ev, ok := <-sub.c:
			if !ok {
				s.ended(sub, c)
				return nil
			}
			buf = appendEvent(buf, ev, u.Handle)
			// Whatever queued meanwhile goes out under the same flush.
		drain:
			for range drainMax {
				select {
				case ev, ok := <-sub.c:
					if !ok {
						s.send(w, rc, buf)
						s.ended(sub, c)
						return nil
					}
					buf = appendEvent(buf, ev, u.Handle)
				default:
					break drain
				}
			}
		}
		if !s.send(w, rc, buf) {
			return nil
		}
	}
}

// send writes and flushes; false means the client is gone.
func (s *Server) send(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// ended notes a stream the hub gave up on.
func (s *Server) ended(sub *subscription, c caller) {
	if s.hub.wasDropped(sub) {
		s.metrics.dropped.Inc()
		s.log.Info("event stream dropped: client too slow; it will resume from Last-Event-ID", attrUser, c.UserID)
	}
}

// lastEventID reads where a reconnecting stream left off.
func lastEventID(r *http.Request) (after int64, replay bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, false, presence.Errorf(presence.EINVALID, "Last-Event-ID must be an event id (a non-negative integer), not %q", v)
	}
	return id, true, nil
}

// appendEvent renders one event in SSE framing. The data is one line: JSON
// never holds a raw newline.
func appendEvent(buf []byte, ev presence.Event, handle string) []byte {
	var data any
	switch {
	case ev.Kind == presence.EventPresence && ev.Presence != nil:
		p := ev.Presence
		data = PresenceEvent{
			Handle:     p.Handle,
			DeviceID:   p.DeviceID,
			DeviceName: p.DeviceName,
			Status:     p.Status,
			UserStatus: p.UserStatus,
			LastSeen:   timePtr(p.LastSeen),
			At:         ev.At.UTC(),
		}
	case ev.Kind == presence.EventSession && ev.Session != nil:
		data = SessionEvent{Session: sessionOf(*ev.Session, ev.Open), Handle: handle}
	default:
		return buf
	}
	js, err := json.Marshal(data)
	if err != nil {
		return buf // our own structs always marshal
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, ev.ID, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, ev.Kind...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, js...)
	return append(buf, "\n\n"...)
}

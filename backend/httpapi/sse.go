package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

const eventsRoute = "GET /api/v1/events"

// sseRetry is the reconnect delay the stream asks browsers to use.
const sseRetry = 2 * time.Second

// takeMax bounds how many events go out under one write, and so how long a
// stream holds the hub's read lock and how big its scratch buffer gets.
const takeMax = 64

// streamWriteTimeout bounds one write to a stream. A client that cannot
// take a few hundred bytes in this long is stalled; ending its stream frees
// its goroutine, and the browser resumes with Last-Event-ID when it can.
const streamWriteTimeout = 10 * time.Second

// hangUpProbe is how long a keepalive waits on the socket to learn whether
// the client hung up: long enough for the read to reach the kernel, short
// enough not to matter every KeepAlive.
const hangUpProbe = time.Millisecond

// scratchKeep is the largest scratch buffer kept for reuse: a replay can be
// far bigger than live traffic, and should not pin that much forever.
const scratchKeep = 64 << 10

// events is GET /api/v1/events, the live stream (Server-Sent Events).
//
// Presence events go to every signed-in user (the presence list is shared
// by the whole server); session events only to the span's owner. After a
// reconnect, Last-Event-ID (or ?last_event_id= for clients that cannot set
// headers) replays what the hub's ring still holds.
//
// Over HTTP/1 the stream takes the connection over from net/http once the
// request is read: it writes the response head itself (no chunking, no
// length, Connection: close, so the body runs to the end of the
// connection, which EventSource expects) and the handler returns. What is
// left of an idle stream is then one small goroutine, its ticker and its
// socket: net/http's per-connection goroutines, buffers and request state
// are gone. Where the connection cannot be taken (HTTP/2) the stream runs
// on the handler's goroutine through the ResponseWriter.
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
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // reverse proxies: do not buffer a stream
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if err := s.streamStarts(c); err != nil {
		return err
	}
	past, sub := s.hub.subscribeAs(after, replay, credential{user: c.UserID, device: c.DeviceID, session: c.SessionID, token: c.TokenID})
	st := &stream{srv: s, sub: sub, handle: u.Handle}

	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	switch {
	case err == nil:
		// The hijack's buffers are net/http's; dropping them here is what
		// makes the stream small. The request is read in full (a GET has
		// no body), so whatever the reader holds was never ours to read.
		st.out = connOut{conn}
		s.hijacks.hijacked()
		go st.serve(responseHead(r, h, s.now()), past)
		return nil
	case errors.Is(err, http.ErrNotSupported):
		// The server's WriteTimeout would cut every stream; each write
		// sets its own deadline instead. Writers that cannot
		// (ErrNotSupported) have no deadline to clear.
		_ = rc.SetWriteDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
		st.out = flushOut{w: w, rc: rc}
		st.gone = r.Context().Done()
		st.serve(nil, past)
		return nil
	default:
		st.finish()
		return fmt.Errorf("take over the event stream's connection: %w", err)
	}
}

// responseHead is the status line and headers of a stream that owns its
// connection, as net/http would have written them, minus the chunking.
func responseHead(r *http.Request, h http.Header, now time.Time) []byte {
	h.Set("Connection", "close")
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	var b bytes.Buffer
	if r.ProtoAtLeast(1, 1) {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	}
	_ = h.Write(&b) // a bytes.Buffer does not fail
	b.WriteString("\r\n")
	return b.Bytes()
}

// streamCapRetry is the Retry-After of a stream refused for a cap: streams
// end when tabs close, which takes a while.
const streamCapRetry = 10 * time.Second

// streamStarts counts a stream of c in, for Close to wait on, for the gauge
// and for the caps; it refuses one over a cap (429) or once Close has begun
// (503). Per user, so that one account, however many device tokens it
// mints, holds at most MaxStreamsPerUser of the server's streams (and
// descriptors); in all, so that streams leave room for everything else.
func (s *Server) streamStarts(c caller) error {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	switch {
	case s.closing():
		return presence.Errorf(presence.EUNAVAILABLE, "shutting down")
	case s.userStreams[c.UserID] >= s.cfg.MaxStreamsPerUser:
		s.metrics.capped.WithLabelValues(capUserStreams).Inc()
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "this user has %d event streams open, the most allowed: close one (another tab or device) first", s.cfg.MaxStreamsPerUser),
			after: streamCapRetry,
		}
	case s.streamCount >= s.cfg.MaxStreams:
		s.metrics.capped.WithLabelValues(capStreams).Inc()
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "the server has as many event streams open as it allows (%d); retry later", s.cfg.MaxStreams),
			after: streamCapRetry,
		}
	}
	s.streams.Add(1)
	s.streamCount++
	s.userStreams[c.UserID]++
	if c.Kind == presence.DeviceToken {
		s.deviceStreams++
	}
	if !s.watching {
		s.watching = true
		s.bg.Add(1)
		go s.watchRevocations()
	}
	s.metrics.streams.Inc()
	return nil
}

// streamEnds counts out a stream that streamStarts counted in.
func (s *Server) streamEnds(sub *subscription) {
	s.streamsMu.Lock()
	s.streamCount--
	if s.userStreams[sub.user]--; s.userStreams[sub.user] <= 0 {
		delete(s.userStreams, sub.user)
	}
	if sub.device != 0 {
		s.deviceStreams--
	}
	s.streamsMu.Unlock()
	s.metrics.streams.Dec()
	s.streams.Done()
}

// endDeviceStreams ends the streams of a revoked device.
func (s *Server) endDeviceStreams(device int64) {
	if n := s.hub.endDevice(device); n > 0 {
		s.metrics.revoked.Add(float64(n))
		s.log.Info("event streams of a revoked device ended", "device_id", device, "streams", n)
	}
}

// watchRevocations ends the streams of credentials ended outside this
// server (another instance, the command line in another process), which it
// learns of only from the store. It runs while streams are open, every
// RevocationCheck. For devices: one read of the store's in-memory presence
// (which is how the store notices a catalog changed elsewhere, and which
// leaves out revoked devices), and for each device with a stream that is
// missing from it, one DeviceStatus to tell revoked from merely not yet
// known here. For users, sessions and API tokens: endRevokedCredentials.
func (s *Server) watchRevocations() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.RevocationCheck)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.streamsMu.Lock()
		if s.streamCount == 0 {
			s.watching = false
			s.streamsMu.Unlock()
			return
		}
		s.streamsMu.Unlock()
		s.endRevokedStreams()
	}
}

func (s *Server) endRevokedStreams() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.endRevokedCredentials(ctx, s.hub.credentials())
	ids := s.hub.streamDevices()
	if len(ids) == 0 {
		return
	}
	users, err := s.store.Presence(ctx)
	if err != nil {
		s.log.Debug("revocation check: presence unavailable", attrErr, err)
		return
	}
	live := make(map[int64]bool)
	for _, u := range users {
		for _, d := range u.Devices {
			live[d.ID] = true
		}
	}
	for _, id := range ids {
		if live[id] {
			continue
		}
		if _, err := s.store.DeviceStatus(ctx, id); presence.ErrorCode(err) == presence.ENOTFOUND {
			s.endDeviceStreams(id)
		}
	}
}

// stream is one live event stream.
type stream struct {
	srv    *Server
	sub    *subscription
	handle string // the user's, which session events carry
	out    streamOut
	// gone is the request's end, for a stream left on net/http's
	// goroutine; nil (never ready) for one that owns its connection.
	gone <-chan struct{}
}

// streamOut is where a stream's bytes go.
type streamOut interface {
	// write sends b at once, within streamWriteTimeout.
	write(b []byte) error
	// hungUp reports, without waiting more than a moment, whether the
	// client is known to be gone. scratch is room for whatever it reads.
	hungUp(scratch []byte) bool
	close()
}

// serve runs a stream to its end: the response head (for a stream that
// owns its connection), the retry hint and the replay in one write, then
// the live feed.
func (st *stream) serve(head []byte, past []*frame) {
	defer st.finish()
	if st.begin(head, past) {
		st.run()
	}
}

// run is the stream's loop. It parks in one select and does each wake's
// work in calls that return before it parks again, so an idle stream's
// stack holds little more than this frame.
func (st *stream) run() {
	keep := time.NewTicker(st.srv.cfg.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-st.srv.done:
			return
		case <-st.gone:
			return
		case <-keep.C:
			if !st.keepalive() {
				return
			}
		case <-st.sub.wake:
			if !st.deliver() {
				return
			}
		}
	}
}

// begin writes the stream's start; false when the client is gone.
func (st *stream) begin(head []byte, past []*frame) bool {
	bp := st.srv.scratch()
	defer st.srv.release(bp)
	buf := append((*bp)[:0], head...)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, sseRetry.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	for _, f := range past {
		buf = append(buf, f.bytes(st.handle)...)
	}
	*bp = buf
	return st.out.write(buf) == nil
}

// deliver sends what the hub has for the stream; false ends the stream.
func (st *stream) deliver() bool {
	var batch [takeMax]*frame
	bp := st.srv.scratch()
	defer st.srv.release(bp)
	for {
		frames, done := st.srv.hub.take(st.sub, batch[:0])
		buf := (*bp)[:0]
		for _, f := range frames {
			buf = append(buf, f.bytes(st.handle)...)
		}
		*bp = buf
		if len(buf) > 0 && st.out.write(buf) != nil {
			return false
		}
		if done {
			return false
		}
		if len(frames) < takeMax {
			return true // caught up
		}
	}
}

// keepalive checks the client is still there and sends it a comment.
func (st *stream) keepalive() bool {
	bp := st.srv.scratch()
	defer st.srv.release(bp)
	if st.out.hungUp((*bp)[:cap(*bp)]) {
		return false
	}
	*bp = append((*bp)[:0], ": keepalive\n\n"...)
	return st.out.write(*bp) == nil
}

// finish unregisters the stream and releases its connection.
func (st *stream) finish() {
	s := st.srv
	s.hub.unsubscribe(st.sub)
	if s.hub.wasDropped(st.sub) {
		s.metrics.dropped.Inc()
		s.log.Info("event stream dropped: client too slow; it will resume from Last-Event-ID", attrUser, st.sub.user)
	}
	if st.out != nil {
		st.out.close()
	}
	s.streamEnds(st.sub)
}

// scratch lends a buffer for one write; release takes it back.
func (s *Server) scratch() *[]byte { return s.bufs.Get().(*[]byte) }

func (s *Server) release(b *[]byte) {
	if cap(*b) <= scratchKeep {
		s.bufs.Put(b)
	}
}

// connOut writes to a connection the stream owns.
type connOut struct{ conn net.Conn }

func (o connOut) write(b []byte) error {
	if err := o.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := o.conn.Write(b)
	return err
}

// hungUp reads with a deadline a moment away. Nobody reads the connection
// otherwise (a blocked read would cost a goroutine per stream), so this is
// how a client that closed its end is noticed at the next keepalive rather
// than only when a write fails, which takes one more. A client has nothing
// to send on an event stream; if it sends anyway, the bytes are dropped.
func (o connOut) hungUp(scratch []byte) bool {
	if err := o.conn.SetReadDeadline(time.Now().Add(hangUpProbe)); err != nil {
		return true
	}
	_, err := o.conn.Read(scratch)
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func (o connOut) close() { _ = o.conn.Close() }

// flushOut writes through net/http, for streams it keeps (HTTP/2).
type flushOut struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// write bounds each write with a deadline and clears it after: over HTTP/2
// a deadline left standing would reset an idle stream when it passed.
func (o flushOut) write(b []byte) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	defer o.rc.SetWriteDeadline(time.Time{})
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.rc.Flush()
}

// hungUp is false: net/http watches the connection and ends the request's
// context, which the stream's loop selects on.
func (flushOut) hungUp([]byte) bool { return false }

func (flushOut) close() {}

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
		return 0, false, presence.Errorf(presence.EINVALID, "Last-Event-ID must be an event id (a non-negative integer), not %q", clip(v, maxValueLen))
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
			Why:        p.Why,
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

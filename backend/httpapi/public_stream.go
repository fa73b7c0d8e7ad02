package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

const publicEventsRoute = "GET /api/v1/public/{handle}/events"

// DefaultMaxPublicStreamsPerAddr caps the public streams one client address
// may hold open: a page with a few widgets in a few tabs, not a script
// opening thousands of connections from one machine.
const DefaultMaxPublicStreamsPerAddr = 16

// capPublicStreams is the metrics label of MaxPublicStreamsPerAddr.
const capPublicStreams = "public_streams_per_addr"

// publicEventKind is the SSE event name of a public view.
const publicEventKind = "status"

// publicHub fans the public view of each user who has open public streams
// out to those streams.
//
// It is fed by the same store notifications as the Hub (the hub hands it
// every event it publishes, see Hub.tee), and keeps one feed per user with
// streams, holding only the latest view: a public stream needs nothing
// older, so there is no backlog to hold or to fall behind in. A presence
// event recomputes the user's view once; only when the view changed is a
// frame encoded, once, and every stream of that user woken to write the
// same bytes. A stream that cannot keep up only ever has the latest frame
// to write: nothing queues behind it, and the feed never waits for it (a
// stalled client's stream ends at its write deadline).
type publicHub struct {
	srv *Server
	// lastID is the highest event id seen: the id of frames that no event
	// caused (a change of level, a stream's first view).
	lastID atomic.Int64
	// feeds counts the feeds, so that events for a server with no public
	// streams cost one atomic load.
	feeds atomic.Int64

	// mu guards byUser and everything in the feeds. The notifier and
	// joins take it to write; streams take it to read their next frame.
	mu       sync.RWMutex
	byUser   map[int64]*publicFeed
	checking bool // checkUsers runs

	// addrStreams counts open public streams by client address; it is
	// guarded by the server's streamsMu, with the stream caps.
	addrStreams map[[32]byte]int
}

// publicFeed is one user's public view and the streams that show it.
type publicFeed struct {
	userID   int64
	handle   string
	detail   presence.PublicDetail
	status   presence.State
	lastSeen time.Time
	// latest is the current view's frame; nil until the feed is loaded.
	latest *publicFrame
	// dirty is set by events that arrive while the feed loads.
	dirty bool
	subs  map[*publicSub]struct{}
}

// publicFrame is one view as every stream of its user sends it.
type publicFrame struct {
	view presence.PublicView
	b    []byte // the SSE frame
}

// publicSub is one stream's place in a feed.
type publicSub struct {
	feed *publicFeed
	// wake holds one token when the feed has something new (or ended).
	wake chan struct{}
	// ended is set, under the hub's lock, when the user stopped being
	// public or the feed could not load: the stream ends, sending nothing
	// more.
	ended bool
}

func newPublicHub(s *Server) *publicHub {
	return &publicHub{srv: s, byUser: make(map[int64]*publicFeed), addrStreams: make(map[[32]byte]int)}
}

// observe is the hub's tee: every event the store commits passes here. It
// never blocks on a stream (each wake is a one-slot, non-blocking send).
func (p *publicHub) observe(ev presence.Event) {
	for {
		last := p.lastID.Load()
		if ev.ID <= last || p.lastID.CompareAndSwap(last, ev.ID) {
			break
		}
	}
	if ev.Kind != presence.EventPresence || ev.Presence == nil || p.feeds.Load() == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.byUser[ev.UserID]
	if f == nil {
		return
	}
	f.status, f.lastSeen = ev.Presence.UserStatus, ev.Presence.LastSeen
	if f.latest == nil {
		f.dirty = true
		return
	}
	f.render(ev.ID)
}

// render recomputes the feed's view and, when it changed, encodes it once
// and wakes every stream. Callers hold p.mu.
func (f *publicFeed) render(id int64) {
	v := presence.PublicViewOf(f.handle, f.detail, f.status, f.lastSeen)
	if f.latest != nil && sameView(f.latest.view, v) {
		return // nothing this level shows has changed
	}
	f.latest = &publicFrame{view: v, b: appendPublicEvent(nil, id, v)}
	for s := range f.subs {
		poke(s.wake)
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // already woken; that read sees the latest frame
	}
}

// sameView reports whether two views show the same.
func sameView(a, b presence.PublicView) bool {
	if a.Handle != b.Handle || a.Online != b.Online || (a.Status == nil) != (b.Status == nil) || (a.LastSeen == nil) != (b.LastSeen == nil) {
		return false
	}
	return (a.Status == nil || *a.Status == *b.Status) && (a.LastSeen == nil || a.LastSeen.Equal(*b.LastSeen))
}

// appendPublicEvent renders a view as an SSE "status" event.
func appendPublicEvent(buf []byte, id int64, v presence.PublicView) []byte {
	js, err := json.Marshal(v)
	if err != nil {
		return buf // a PublicView always marshals
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, "\nevent: "+publicEventKind+"\ndata: "...)
	buf = append(buf, js...)
	return append(buf, "\n\n"...)
}

// join registers a stream for u's feed, making the feed when it is the
// first. load reports that the caller made it and must load it.
func (p *publicHub) join(u presence.User) (sub *publicSub, load bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.byUser[u.ID]
	if f == nil {
		f = &publicFeed{userID: u.ID, handle: u.Handle, detail: u.PublicDetail.Or(), subs: make(map[*publicSub]struct{})}
		p.byUser[u.ID] = f
		p.feeds.Add(1)
		load = true
		if !p.checking {
			p.checking = true
			p.srv.bg.Add(1)
			go p.checkUsers()
		}
	}
	sub = &publicSub{feed: f, wake: make(chan struct{}, 1)}
	f.subs[sub] = struct{}{}
	return sub, load
}

// loadTries bounds how often a feed's load is read again because events
// for the user arrived during the read.
const loadTries = 3

// load reads the feed's first view from the store. Its feed is already
// registered, so no event after the read is missed; one that arrives
// during the read may be older or newer than what the read saw, so the
// read is done again until none does (a few times at most: after that,
// the next event sets things right).
func (p *publicHub) load(ctx context.Context, f *publicFeed) error {
	for try := 1; ; try++ {
		status, lastSeen, err := p.srv.userPresence(ctx, f.userID)
		if err != nil {
			p.abandon(f)
			return fmt.Errorf("devices of %q: %w", f.handle, err)
		}
		p.mu.Lock()
		if f.dirty && try < loadTries {
			f.dirty = false
			p.mu.Unlock()
			continue
		}
		f.status, f.lastSeen = status, lastSeen
		f.render(p.lastID.Load())
		p.mu.Unlock()
		return nil
	}
}

// abandon ends a feed and every stream on it.
func (p *publicHub) abandon(f *publicFeed) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.end(f)
}

// end ends every stream of f and forgets f. Callers hold p.mu.
func (p *publicHub) end(f *publicFeed) {
	for s := range f.subs {
		s.ended = true
		poke(s.wake)
	}
	f.subs = nil
	if p.byUser[f.userID] == f {
		delete(p.byUser, f.userID)
		p.feeds.Add(-1)
	}
}

// leave unregisters a stream; the last one out forgets the feed.
func (p *publicHub) leave(s *publicSub) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.ended {
		return
	}
	delete(s.feed.subs, s)
	if len(s.feed.subs) == 0 {
		p.end(s.feed)
	}
}

// next is what the stream should send now: the latest frame, and whether
// the stream has ended.
func (p *publicHub) next(s *publicSub) (*publicFrame, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return s.feed.latest, s.ended
}

// userChanged applies a change to a user: no longer public (or disabled)
// ends their streams; a new level of detail re-renders their view.
func (p *publicHub) userChanged(u presence.User) {
	if p.feeds.Load() == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.byUser[u.ID]
	switch {
	case f == nil:
	case !shownPublicly(u):
		p.end(f)
	case u.PublicDetail.Or() != f.detail:
		f.detail = u.PublicDetail.Or()
		if f.latest != nil {
			f.render(p.lastID.Load())
		}
	}
}

// userGone ends the streams of a user who no longer exists.
func (p *publicHub) userGone(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.byUser[id]; f != nil {
		p.end(f)
	}
}

// checkUsers reads, every RevocationCheck while feeds exist, each user who
// has one: a change made where this server does not see it (another
// instance, the command line) still ends their streams or changes their
// level within that period. One indexed read per watched user.
func (p *publicHub) checkUsers() {
	s := p.srv
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.RevocationCheck)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if len(p.byUser) == 0 {
			p.checking = false
			p.mu.Unlock()
			return
		}
		ids := make([]int64, 0, len(p.byUser))
		for id := range p.byUser {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		p.checkOnce(ids)
	}
}

func (p *publicHub) checkOnce(ids []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range ids {
		u, err := p.srv.store.UserByID(ctx, id)
		switch {
		case presence.ErrorCode(err) == presence.ENOTFOUND:
			p.userGone(id)
		case err != nil:
			p.srv.log.Debug("public stream check: user unavailable", attrUser, id, attrErr, err)
		default:
			p.userChanged(u)
		}
	}
}

// publicEvents is GET /api/v1/public/{handle}/events: the public status,
// live (Server-Sent Events). Anyone may read it from any origin; it never
// looks at cookies or credentials. The first event is the current view;
// after that, one whenever what the user's level shows changes. Each
// event's data is the same JSON object GET /api/v1/public/{handle} answers.
//
// A reconnect (Last-Event-ID, or ?last_event_id=) gets the current view
// first, like a new stream: a view has no history worth replaying, and the
// client may have missed the latest change, which the current view holds.
//
// The stream owns its connection once its head is written, like
// GET /api/v1/events (see Server.events).
func (s *Server) publicEvents(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if s.closing() {
		return presence.Errorf(presence.EUNAVAILABLE, "shutting down")
	}
	u, err := s.publicLookup(r.Context(), r.PathValue("handle"))
	if err != nil {
		return err
	}
	if _, _, err := lastEventID(r); err != nil {
		return err
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	addr := addrKey(r.RemoteAddr)
	if err := s.publicStreamStarts(addr); err != nil {
		return err
	}
	sub, load := s.public.join(u)
	st := &publicStream{srv: s, sub: sub, addr: addr}
	if load {
		if err := s.public.load(r.Context(), sub.feed); err != nil {
			st.finish()
			return err
		}
	}

	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	switch {
	case err == nil:
		st.out = connOut{conn}
		s.hijacks.hijacked()
		go st.serve(responseHead(r, h, s.now()))
		return nil
	case errors.Is(err, http.ErrNotSupported):
		_ = rc.SetWriteDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
		st.out = flushOut{w: w, rc: rc}
		st.gone = r.Context().Done()
		st.serve(nil)
		return nil
	default:
		st.finish()
		return fmt.Errorf("take over the public stream's connection: %w", err)
	}
}

// publicStreamStarts counts a public stream from addr in, against the
// per-address cap and the server's stream cap (public and signed-in
// streams share it), or refuses it.
func (s *Server) publicStreamStarts(addr [32]byte) error {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	switch {
	case s.closing():
		return presence.Errorf(presence.EUNAVAILABLE, "shutting down")
	case s.public.addrStreams[addr] >= s.cfg.MaxPublicStreamsPerAddr:
		s.metrics.capped.WithLabelValues(capPublicStreams).Inc()
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "this address has %d public streams open, the most allowed: close one first", s.cfg.MaxPublicStreamsPerAddr),
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
	s.public.addrStreams[addr]++
	s.metrics.streams.Inc()
	return nil
}

// publicStreamEnds counts out a stream publicStreamStarts counted in.
func (s *Server) publicStreamEnds(addr [32]byte) {
	s.streamsMu.Lock()
	s.streamCount--
	if s.public.addrStreams[addr]--; s.public.addrStreams[addr] <= 0 {
		delete(s.public.addrStreams, addr)
	}
	s.streamsMu.Unlock()
	s.metrics.streams.Dec()
	s.streams.Done()
}

// publicStream is one live public stream.
type publicStream struct {
	srv  *Server
	sub  *publicSub
	addr [32]byte
	out  streamOut
	gone <-chan struct{} // as stream.gone
	sent *publicFrame    // the last frame written
}

func (st *publicStream) serve(head []byte) {
	defer st.finish()
	if st.begin(head) {
		st.run()
	}
}

// run parks in one select between wakes, as stream.run does.
func (st *publicStream) run() {
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

// begin writes the head, the retry hint and the current view in one write.
func (st *publicStream) begin(head []byte) bool {
	f, ended := st.srv.public.next(st.sub)
	if ended {
		return false
	}
	bp := st.srv.scratch()
	defer st.srv.release(bp)
	buf := append((*bp)[:0], head...)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, sseRetry.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	if f != nil {
		buf = append(buf, f.b...)
		st.sent = f
	}
	*bp = buf
	return st.out.write(buf) == nil
}

// deliver writes the latest view if this stream has not sent it yet.
func (st *publicStream) deliver() bool {
	f, ended := st.srv.public.next(st.sub)
	if ended {
		return false
	}
	if f == nil || f == st.sent {
		return true
	}
	st.sent = f
	return st.out.write(f.b) == nil
}

func (st *publicStream) keepalive() bool {
	bp := st.srv.scratch()
	defer st.srv.release(bp)
	if st.out.hungUp((*bp)[:cap(*bp)]) {
		return false
	}
	return st.out.write(keepaliveFrame) == nil
}

var keepaliveFrame = []byte(": keepalive\n\n")

func (st *publicStream) finish() {
	st.srv.public.leave(st.sub)
	if st.out != nil {
		st.out.close()
	}
	st.srv.publicStreamEnds(st.addr)
}

// publicTee hands a hub's events to the public feeds of the server that
// uses the hub (the last one made with it, when there are several).
type publicTee struct{ p atomic.Pointer[publicHub] }

func (t *publicTee) observe(ev presence.Event) {
	if p := t.p.Load(); p != nil {
		p.observe(ev)
	}
}

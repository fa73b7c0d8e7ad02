package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// ends reports whether the stream ends (the server closes it) within d,
// skipping whatever it still sends.
func ends(s *EventStream, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := s.Next(); err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		s.Close()
		return false
	}
}

// feeds is how many public feeds the server keeps, and the streams on each.
func (e *env) feeds() (int, int) {
	p := e.srv.public
	p.mu.RLock()
	defer p.mu.RUnlock()
	subs := 0
	for _, f := range p.byUser {
		subs += len(f.subs)
	}
	return len(p.byUser), subs
}

func TestPublicStreamSendsViewChangesOnly(t *testing.T) {
	e := newEnv(t)
	_, tok, dev := e.publicUser("ann")
	e.setDetail(tok, presence.PublicOnline)

	s, _ := e.openPublic("ann", nil)
	first := nextEvent(t, s, "status")
	if m := dataOf(t, first); m["online"] != false || keys(m) != "handle,online" {
		t.Fatalf("first view %v, want offline with nothing else", m)
	}
	if _, err := strconv.ParseInt(first.ID, 10, 64); err != nil {
		t.Errorf("event id %q is not a number", first.ID)
	}
	e.beats(dev, beat(1, T0.Add(-2*time.Second), presence.Active))
	if m := dataOf(t, nextEvent(t, s, "status")); m["online"] != true {
		t.Fatalf("after an active beat: %v", m)
	}
	// Idle is still online at this level: nothing to send. Away is not: the
	// next event must be that one, with no idle one before it.
	e.beats(dev, beat(2, T0.Add(-time.Second), presence.Idle))
	e.beats(dev, beat(3, T0, presence.Away))
	if m := dataOf(t, nextEvent(t, s, "status")); m["online"] != false {
		t.Fatalf("after idle then away: %v, want offline (idle sends nothing at level online)", m)
	}

	// At level state, idle is news.
	e.setDetail(tok, presence.PublicState)
	if m := dataOf(t, nextEvent(t, s, "status")); m["status"] != "away" || keys(m) != "handle,online,status" {
		t.Fatalf("after the level changed to state: %v", m)
	}
	e.clock.Advance(time.Second)
	e.beats(dev, beat(4, T0.Add(time.Second), presence.Idle))
	if m := dataOf(t, nextEvent(t, s, "status")); m["status"] != "idle" || m["online"] != true {
		t.Fatalf("after idle at level state: %v", m)
	}
	if n, subs := e.feeds(); n != 1 || subs != 1 {
		t.Errorf("%d feeds, %d streams; want one of each", n, subs)
	}
}

func TestPublicStreamFanOut(t *testing.T) {
	// Keepalives find closed streams.
	e := newEnv(t, func(c *Config) { c.KeepAlive = 50 * time.Millisecond })
	_, _, dev := e.publicUser("ann")
	const n = 5
	streams := make([]*EventStream, n)
	for i := range streams {
		streams[i], _ = e.openPublic("ann", nil)
		nextEvent(t, streams[i], "status")
	}
	if f, subs := e.feeds(); f != 1 || subs != n {
		t.Fatalf("%d feeds, %d streams; want 1 feed of %d", f, subs, n)
	}
	e.beats(dev, beat(1, T0, presence.Active))
	var raw string
	for i, s := range streams {
		ev := nextEvent(t, s, "status")
		if i == 0 {
			raw = ev.ID + ev.Data
		} else if ev.ID+ev.Data != raw {
			t.Errorf("stream %d got %s %s, stream 0 %s", i, ev.ID, ev.Data, raw)
		}
	}
	for _, s := range streams {
		s.Close()
	}
	// The last stream out forgets the feed.
	within(t, "the feed forgotten", func() bool { f, _ := e.feeds(); return f == 0 })
}

func TestPublicStreamResumes(t *testing.T) {
	e := newEnv(t)
	_, _, dev := e.publicUser("ann")
	s, _ := e.openPublic("ann", nil)
	first := nextEvent(t, s, "status")
	s.Close()

	t.Run("unchanged: the current view again", func(t *testing.T) {
		s, _ := e.openPublic("ann", map[string]string{"Last-Event-ID": first.ID})
		ev := nextEvent(t, s, "status")
		if ev.Data != first.Data {
			t.Errorf("resumed with %s, want %s", ev.Data, first.Data)
		}
	})
	t.Run("changed while away: the current view, with a later id", func(t *testing.T) {
		e.beats(dev, beat(1, T0, presence.Active))
		s, _ := e.openPublic("ann", map[string]string{"Last-Event-ID": first.ID})
		ev := nextEvent(t, s, "status")
		id0, _ := strconv.ParseInt(first.ID, 10, 64)
		id1, err := strconv.ParseInt(ev.ID, 10, 64)
		if m := dataOf(t, ev); m["status"] != "active" || err != nil || id1 <= id0 {
			t.Errorf("resumed after %s: id %s %v", first.ID, ev.ID, m)
		}
	})
	t.Run("query parameter", func(t *testing.T) {
		s, _ := e.openPublicPath("/api/v1/public/ann/events?last_event_id="+first.ID, nil)
		if m := dataOf(t, nextEvent(t, s, "status")); m["status"] != "active" {
			t.Errorf("resumed: %v", m)
		}
	})
	t.Run("a bad id is refused", func(t *testing.T) {
		if _, resp := e.openPublic("ann", map[string]string{"Last-Event-ID": "yesterday"}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Last-Event-ID yesterday: %d", resp.StatusCode)
		}
	})
}

func TestPublicStreamEndsWhenPrivate(t *testing.T) {
	e := newEnv(t)
	ann, tok, _ := e.publicUser("ann")
	no, yes := false, true

	t.Run("through the API: at once", func(t *testing.T) {
		a, _ := e.openPublic("ann", nil)
		b, _ := e.openPublic("ann", nil)
		nextEvent(t, a, "status")
		nextEvent(t, b, "status")
		start := time.Now()
		if _, err := e.client(tok).UpdateMe(e.ctx, MeUpdate{Public: &no}); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*EventStream{a, b} {
			if !ends(s, time.Second) {
				t.Fatalf("a stream still open a second after the user went private")
			}
		}
		t.Logf("ended after %v", time.Since(start))
		if _, resp := e.openPublic("ann", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a new stream: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("elsewhere (the command line, another instance): within a second", func(t *testing.T) {
		if _, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Public: &yes}); err != nil {
			t.Fatal(err)
		}
		s, _ := e.openPublic("ann", nil)
		nextEvent(t, s, "status")
		// Behind the server's back: only the store knows.
		start := time.Now()
		if _, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Public: &no}); err != nil {
			t.Fatal(err)
		}
		if !ends(s, time.Second) {
			t.Fatalf("the stream still open a second after the user went private")
		}
		t.Logf("ended after %v", time.Since(start))
		within(t, "no feeds left", func() bool { f, _ := e.feeds(); return f == 0 })
	})

	t.Run("disabled by an administrator: within a second, and 404 after", func(t *testing.T) {
		if _, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Public: &yes}); err != nil {
			t.Fatal(err)
		}
		s, _ := e.openPublic("ann", nil)
		nextEvent(t, s, "status")
		if _, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Disabled: &yes}); err != nil {
			t.Fatal(err)
		}
		if !ends(s, time.Second) {
			t.Fatalf("the stream still open a second after the user was disabled")
		}
		if status, _ := e.publicJSON("ann"); status != http.StatusNotFound {
			t.Errorf("JSON of a disabled user: %d", status)
		}
	})
}

func TestPublicStreamCaps(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxPublicStreamsPerAddr, c.KeepAlive = 2, 50*time.Millisecond })
		e.publicUser("ann")
		e.publicUser("bob")
		a, _ := e.openPublic("ann", nil)
		e.openPublic("bob", nil)
		_, resp := e.openPublic("ann", nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("third stream from one address: %d %v", resp.StatusCode, resp.Header)
		}
		a.Close()
		within(t, "a slot free again", func() bool {
			s, resp := e.openPublic("ann", nil)
			if s != nil {
				s.Close()
			}
			return resp.StatusCode == http.StatusOK
		})
	})
	t.Run("the server's stream cap counts them", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.MaxStreams = 2 })
		_, tok, _ := e.publicUser("ann")
		priv, err := e.client(tok).Events(e.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer priv.Close()
		e.openPublic("ann", nil)
		if _, resp := e.openPublic("ann", nil); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("a public stream over the server's cap: %d", resp.StatusCode)
		}
		if _, err := e.client(tok).Events(e.ctx, ""); presence.ErrorCode(err) != presence.ERATELIMIT {
			t.Errorf("a signed-in stream over the server's cap: %v", err)
		}
	})
}

func TestPublicStreamKeepalive(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepAlive = 20 * time.Millisecond })
	e.publicUser("ann")
	s, _ := e.openPublic("ann", nil)
	nextEvent(t, s, "status")
	got := make(chan error, 1)
	go func() {
		for {
			f, err := s.r.Next()
			if err != nil || f.Keepalive {
				got <- err
				return
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no keepalive")
	}
}

func TestPublicStreamsEndOnClose(t *testing.T) {
	e := newEnv(t)
	e.publicUser("ann")
	s, _ := e.openPublic("ann", nil)
	nextEvent(t, s, "status")
	done := make(chan struct{})
	go func() { e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a public stream open")
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) && err == nil {
		t.Errorf("the stream still reads after Close")
	}
}

// TestPublicStreamStalledClient: a client that stops reading holds up
// nobody (the feed goes on taking changes) and is cut off at the write
// timeout.
func TestPublicStreamStalledClient(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "lastseen.db"), presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	u, _, err := store.CreateUser(ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if u, err = store.UpdateUser(ctx, u.ID, presence.UserUpdate{Public: &yes}); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		s := loopServer(t, store)
		sub, _ := s.public.join(u)
		s.public.mu.Lock()
		sub.feed.render(1)
		s.public.mu.Unlock()
		addr := addrKey("192.0.2.1:1234")
		if err := s.publicStreamStarts(addr); err != nil {
			t.Fatal(err)
		}
		srvEnd, client := net.Pipe()
		defer client.Close()
		st := &publicStream{srv: s, sub: sub, addr: addr, out: connOut{srvEnd}}
		go st.serve(nil)
		// Nobody reads: the stream's first write blocks. Changes still go
		// through the feed at once.
		for i := range 1000 {
			state := []presence.State{presence.Active, presence.Idle}[i%2]
			s.public.observe(presence.Event{ID: int64(i + 2), Kind: presence.EventPresence, UserID: u.ID,
				Presence: &presence.PresenceChange{Handle: "ann", Status: state, UserStatus: state}})
		}
		subs := func() int {
			s.public.mu.RLock()
			defer s.public.mu.RUnlock()
			return len(sub.feed.subs)
		}
		time.Sleep(streamWriteTimeout - time.Millisecond)
		synctest.Wait()
		if subs() != 1 {
			t.Fatal("the stream ended before its write timed out")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if subs() != 0 {
			t.Errorf("a stalled client pins its public stream past the write timeout")
		}
		s.Close()
	})
}

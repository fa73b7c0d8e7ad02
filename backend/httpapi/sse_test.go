package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/ssestream"
)

// nextEvent reads events until one of kind arrives, failing after a second.
func nextEvent(t testing.TB, s *EventStream, kind string) SSEEvent {
	t.Helper()
	type result struct {
		ev  SSEEvent
		err error
	}
	got := make(chan result, 1)
	go func() {
		for {
			ev, err := s.Next()
			if err != nil || ev.Event == kind {
				got <- result{ev, err}
				return
			}
		}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("waiting for a %s event: %v", kind, r.err)
		}
		return r.ev
	case <-time.After(time.Second):
		s.Close()
		t.Fatalf("no %s event within a second", kind)
		return SSEEvent{}
	}
}

// collect reads events for a while (until quiet for 200 ms).
func collect(t testing.TB, s *EventStream) []SSEEvent {
	t.Helper()
	evs := make(chan SSEEvent, 64)
	go func() {
		defer close(evs)
		for {
			ev, err := s.Next()
			if err != nil {
				return
			}
			evs <- ev
		}
	}()
	var out []SSEEvent
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-time.After(200 * time.Millisecond):
			s.Close()
			for ev := range evs {
				out = append(out, ev)
			}
			return out
		}
	}
}

func TestEventsLive(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	laptop, annDev := e.device(ann, "laptop")
	bob, bobTok := e.user("bob")
	phone, bobDev := e.device(bob, "phone")
	ctx := e.ctx

	annStream, err := e.client(annTok).Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer annStream.Close()
	bobStream, err := e.client(bobTok).Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer bobStream.Close()
	within(t, "two open streams", func() bool { return e.hub.subscribers() == 2 })

	start := time.Now()
	e.beats(annDev, beat(1, T0, presence.Active))
	pe := nextEvent(t, annStream, "presence")
	if d := time.Since(start); d > time.Second {
		t.Errorf("the event took %v", d)
	}
	p, err := pe.Presence()
	want := PresenceEvent{Handle: "ann", DeviceID: laptop.ID, DeviceName: "laptop", Status: presence.Active, UserStatus: presence.Active, LastSeen: &T0, At: T0}
	if err != nil || p.Handle != want.Handle || p.DeviceID != want.DeviceID || p.DeviceName != want.DeviceName ||
		p.Status != want.Status || p.UserStatus != want.UserStatus || p.LastSeen == nil || !p.LastSeen.Equal(T0) || p.At.IsZero() {
		t.Errorf("presence event %+v (%v), want %+v", p, err, want)
	}
	if _, err := strconv.ParseInt(pe.ID, 10, 64); err != nil {
		t.Errorf("event id %q is not a number", pe.ID)
	}
	if annStream.Retry() != 2*time.Second {
		t.Errorf("retry %v, want 2s", annStream.Retry())
	}

	t.Run("session events go to their owner", func(t *testing.T) {
		// ann's stream had the session event before or after the presence one.
		e.beats(annDev, beat(2, T0.Add(10*time.Second), presence.Idle))
		se := nextEvent(t, annStream, "session")
		s, err := se.Session()
		if err != nil || s.Handle != "ann" || s.DeviceID != laptop.ID || s.ID == 0 {
			t.Errorf("session event %+v (%v)", s, err)
		}
	})

	t.Run("presence events go to everyone signed in, sessions only to the owner", func(t *testing.T) {
		e.beats(bobDev, beat(1, T0, presence.Active))
		evs := collect(t, bobStream)
		var annPresence, bobSession bool
		for _, ev := range evs {
			switch ev.Event {
			case "presence":
				p, _ := ev.Presence()
				annPresence = annPresence || p.Handle == "ann"
			case "session":
				s, _ := ev.Session()
				if s.Handle != "bob" || s.DeviceID != phone.ID {
					t.Errorf("bob got someone else's session: %+v", s)
				}
				bobSession = true
			}
		}
		if !annPresence || !bobSession {
			t.Errorf("bob's stream: %+v; want ann's presence and bob's own session", evs)
		}
	})
}

func TestEventsReplay(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	_, dev := e.device(ann, "laptop")
	c := e.client(annTok)

	s, err := c.Events(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })
	e.beats(dev, beat(1, T0, presence.Active))
	e.beats(dev, beat(2, T0.Add(time.Second), presence.Idle))
	first := collect(t, s)
	if len(first) < 4 {
		t.Fatalf("events: %+v, want at least 4", first)
	}

	t.Run("Last-Event-ID header", func(t *testing.T) {
		s2, err := c.Events(e.ctx, first[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		again := collect(t, s2)
		if len(again) != len(first)-1 {
			t.Fatalf("replay after %s: %+v, want %+v", first[0].ID, again, first[1:])
		}
		for i := range again {
			if again[i] != first[i+1] {
				t.Errorf("replayed #%d = %+v, want %+v", i, again[i], first[i+1])
			}
		}
		if s2.LastEventID() != first[len(first)-1].ID {
			t.Errorf("LastEventID %q, want %q", s2.LastEventID(), first[len(first)-1].ID)
		}
	})

	t.Run("last_event_id query for clients without headers", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(e.ctx, "GET", e.ts.URL+"/api/v1/events?last_event_id="+first[len(first)-2].ID, nil)
		req.Header.Set("Authorization", "Bearer "+annTok)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		s3 := &EventStream{body: resp.Body, r: ssestream.NewReader(resp.Body)}
		again := collect(t, s3)
		if len(again) != 1 || again[0] != first[len(first)-1] {
			t.Errorf("replay: %+v, want the last event only", again)
		}
	})
}

func TestEventsKeepAlive(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepAlive = 20 * time.Millisecond })
	_, tok := e.user("ann")
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != "no-cache" {
		t.Errorf("headers: Content-Type %q Cache-Control %q", ct, cc)
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	start := time.Now()
	for len(lines) < 4 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
	}
	want := []string{"retry: 2000", "", ": keepalive", ""}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("stream began %q, want %q", lines, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("keepalive after %v", d)
	}
}

func TestEventsEndWithServerClose(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("ann")
	s, err := e.client(tok).Events(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })
	if body := string(e.do(request{method: "GET", path: "/metrics"}).body); !strings.Contains(body, "lastseen_sse_streams 1") {
		t.Errorf("the stream gauge does not show the open stream")
	}
	e.srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Next()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want EOF", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the stream outlived Close")
	}
	within(t, "the hub to forget the stream", func() bool { return e.hub.subscribers() == 0 })
	if _, err := e.client(tok).Events(e.ctx, ""); presence.ErrorCode(err) != presence.EUNAVAILABLE {
		t.Errorf("a new stream after Close: %v, want unavailable", err)
	}
	if resp := e.do(request{method: "GET", path: "/healthz"}); resp.status != 503 {
		t.Errorf("health after Close: %d", resp.status)
	}
}

// dropAll does to every stream what Publish does to a slow one.
func (h *Hub) dropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.dropped, s.end = true, h.head
		delete(h.subs, s)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func TestEventsDroppedStreamEndsAndResumes(t *testing.T) {
	e := newEnv(t)
	ann, tok := e.user("ann")
	_, dev := e.device(ann, "laptop")
	c := e.client(tok)
	s, err := c.Events(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	within(t, "an open stream", func() bool { return e.hub.subscribers() == 1 })
	e.beats(dev, beat(1, T0, presence.Active))
	ev := nextEvent(t, s, "presence")
	e.hub.dropAll()
	for {
		_, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v, want EOF", err)
		}
	}
	if !strings.Contains(string(e.do(request{method: "GET", path: "/metrics"}).body), "lastseen_sse_dropped_total 1") {
		t.Errorf("the drop is not counted")
	}
	e.beats(dev, beat(2, T0.Add(time.Second), presence.Away))
	s2, err := c.Events(e.ctx, s.LastEventID())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p, err := nextEvent(t, s2, "presence").Presence()
	if err != nil || p.Status != presence.Away {
		t.Errorf("resumed with %+v (%v), want the away event missed while away; last id was %s", p, err, ev.ID)
	}
}

func TestEventStreamParsing(t *testing.T) {
	raw := "retry: 1500\n\n: comment\r\nid: 7\r\nevent: presence\r\ndata: {\"a\":1}\r\n\r\n" +
		"data: line one\ndata: line two\n\n" +
		"id: 9\n\n" + // an id alone dispatches nothing but sets the id
		"event: session\ndata:no-space\n\n" +
		"data: unterminated"
	s := &EventStream{body: io.NopCloser(strings.NewReader(raw)), r: ssestream.NewReader(strings.NewReader(raw))}
	want := []SSEEvent{
		{ID: "7", Event: "presence", Data: `{"a":1}`},
		{ID: "7", Event: "message", Data: "line one\nline two"},
		{ID: "9", Event: "session", Data: "no-space"},
	}
	for i, w := range want {
		got, err := s.Next()
		if err != nil || got != w {
			t.Errorf("event %d: %+v, %v; want %+v", i, got, err, w)
		}
	}
	if _, err := s.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("after an unterminated event: %v", err)
	}
	if s.Retry() != 1500*time.Millisecond {
		t.Errorf("retry %v", s.Retry())
	}
}

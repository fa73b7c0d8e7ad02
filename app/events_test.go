package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/ssestream"
)

// TestReadSSE covers the pump's use of the ssestream reader (whose tests hold
// the grammar): events become StreamEvents, keepalives feed the watchdog
// only, a clean end is no error and a broken stream is one.
func TestReadSSE(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []StreamEvent
		alive    int
		err      bool
	}{
		{"one event", "id: 1\nevent: presence\ndata: {\"a\":1}\n\n",
			[]StreamEvent{{"1", "presence", `{"a":1}`}}, 1, false},
		{"keepalives are alive, not events", ": keepalive\n\n: hi\r\nid: 3\r\nevent: presence\r\ndata: x\r\n\r\n",
			[]StreamEvent{{"3", "presence", "x"}}, 3, false},
		{"id persists, event resets", "id: 7\nevent: presence\ndata: a\n\ndata: b\n\n",
			[]StreamEvent{{"7", "presence", "a"}, {"7", "message", "b"}}, 2, false},
		{"unterminated event is not dispatched", "id: 1\ndata: a\n", nil, 0, false},
		{"cut mid-line", "id: 1\ndata: a", nil, 0, true},
		{"line too long", "data: " + strings.Repeat("x", ssestream.MaxLine) + "\n\n", nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []StreamEvent
			alive := 0
			err := readSSE(strings.NewReader(tc.in), func() { alive++ }, func(ev StreamEvent) { got = append(got, ev) })
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events = %#v, want %#v", got, tc.want)
			}
			if alive != tc.alive {
				t.Errorf("alive %d times, want %d", alive, tc.alive)
			}
		})
	}
}

// recorder collects what the pump emits to the frontend.
type recorder struct {
	mu     sync.Mutex
	events []StreamEvent
	conns  []ConnState
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 100)} }

func (r *recorder) emitter() frontendEvents {
	return frontendEvents{emit: func(name string, data ...any) {
		r.mu.Lock()
		switch name {
		case eventChannel:
			r.events = append(r.events, data[0].(StreamEvent))
		case connectionChannel:
			r.conns = append(r.conns, ConnState(data[0].(string)))
		default:
			panic("unknown channel " + name)
		}
		r.mu.Unlock()
		select {
		case r.signal <- struct{}{}:
		default:
		}
	}}
}

// waitFor polls cond on every emission, up to a few seconds.
func (r *recorder) waitFor(t *testing.T, what string, cond func(events []StreamEvent, conns []ConnState) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.events, r.conns)
		ev, cs := fmt.Sprint(r.events), fmt.Sprint(r.conns)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.signal:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("never saw %s; events %s, connection %s", what, ev, cs)
		}
	}
}

func fastPump(link *agentLink, r *recorder) *pump {
	p := newPump(link, newLoopbackClient(), r.emitter(), slog.New(slog.DiscardHandler))
	p.minBackoff, p.maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	p.offlineAfter = 3
	return p
}

// TestPumpResumes: the agent drops the stream after two events; the pump
// reports reconnecting, comes back with Last-Event-ID, and the events after
// that id arrive once each.
func TestPumpResumes(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var lastIDs []string
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Authorization") != "Bearer s" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		calls++
		n := calls
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		if n == 1 {
			io.WriteString(w, ": keepalive\n\nid: 1\nevent: presence\ndata: {\"n\":1}\n\nid: 2\nevent: session\ndata: {\"n\":2}\n\n")
			return // the agent hiccups
		}
		io.WriteString(w, "id: 3\nevent: presence\ndata: {\"n\":3}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})

	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := fastPump(newAgentLink(dir), r)
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()

	r.waitFor(t, "event 3", func(ev []StreamEvent, _ []ConnState) bool { return len(ev) == 3 })
	want := []StreamEvent{{"1", "presence", `{"n":1}`}, {"2", "session", `{"n":2}`}, {"3", "presence", `{"n":3}`}}
	r.mu.Lock()
	if !reflect.DeepEqual(r.events, want) {
		t.Errorf("events = %v, want %v", r.events, want)
	}
	wantConns := []ConnState{ConnLive, ConnReconnecting, ConnLive}
	if !reflect.DeepEqual(r.conns, wantConns) {
		t.Errorf("connection = %v, want %v", r.conns, wantConns)
	}
	r.mu.Unlock()
	mu.Lock()
	if !reflect.DeepEqual(lastIDs, []string{"", "2"}) {
		t.Errorf("Last-Event-ID sent = %q, want none then 2", lastIDs)
	}
	mu.Unlock()
	if p.State() != ConnLive {
		t.Errorf("State = %s", p.State())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not stop")
	}
}

// TestPumpOfflineThenBack: no agent for a while turns the state offline;
// an agent appearing (a new agent.json) brings it back live.
func TestPumpOfflineThenBack(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := fastPump(newAgentLink(dir), r)
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()

	r.waitFor(t, "offline", func(_ []StreamEvent, c []ConnState) bool { return len(c) > 0 && c[len(c)-1] == ConnOffline })
	r.mu.Lock()
	if !reflect.DeepEqual(r.conns, []ConnState{ConnOffline}) {
		// Starting from "reconnecting", the first change seen is offline.
		t.Errorf("connection = %v, want [offline]", r.conns)
	}
	r.mu.Unlock()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "id: 10\nevent: presence\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})
	r.waitFor(t, "live with an event", func(ev []StreamEvent, c []ConnState) bool {
		return len(ev) == 1 && c[len(c)-1] == ConnLive
	})
	// Hang up before the server closes: it waits for open streams.
	cancel()
	<-done
}

// TestPumpIdleWatchdog: a stream that goes silent (no keepalive) is taken
// for dead and reopened.
func TestPumpIdleWatchdog(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent forever
	}))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := fastPump(newAgentLink(dir), r)
	p.idle = 50 * time.Millisecond
	go p.run(ctx)
	r.waitFor(t, "a reconnect after silence", func(_ []StreamEvent, c []ConnState) bool {
		return len(c) >= 3 // live, reconnecting, live
	})
	mu.Lock()
	defer mu.Unlock()
	if calls < 2 {
		t.Errorf("stream opened %d times, want a reopen", calls)
	}
}

func TestPumpRejectedStream(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad secret", http.StatusUnauthorized)
	}))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})
	p := fastPump(newAgentLink(dir), newRecorder())
	live, err := p.stream(context.Background())
	if live || err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("stream = %v, %v; want not live, a 401 error", live, err)
	}
	if errors.Is(err, errStreamIdle) {
		t.Error("a refusal is not silence")
	}
}

func TestBackoff(t *testing.T) {
	p := &pump{minBackoff: 100 * time.Millisecond, maxBackoff: time.Second}
	for _, tc := range []struct {
		failures int
		lo, hi   time.Duration
	}{
		{1, 75 * time.Millisecond, 100 * time.Millisecond},
		{2, 150 * time.Millisecond, 200 * time.Millisecond},
		{4, 600 * time.Millisecond, 800 * time.Millisecond},
		{5, 750 * time.Millisecond, time.Second},
		{50, 750 * time.Millisecond, time.Second},
	} {
		for range 20 {
			if d := p.backoff(tc.failures); d < tc.lo || d > tc.hi {
				t.Errorf("backoff(%d) = %v, want in [%v, %v]", tc.failures, d, tc.lo, tc.hi)
			}
		}
	}
}

//go:build cgo

// The test against a real service needs its SQLite store, which needs cgo.

package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

// readyService tells when a Watcher has taken its snapshot: from then on
// it is following live.
type readyService struct {
	Service
	ready chan struct{}
}

func (s readyService) Presence(ctx context.Context) (map[string]presence.State, error) {
	m, err := s.Service.Presence(ctx)
	if err == nil {
		s.ready <- struct{}{}
	}
	return m, err
}

// Against a real service: ann's agent (a device token) watches bob; bob
// coming online announces him once, with his device's name; cat, who was
// online when the agent connected, and dan, who is not watched, are not.
func TestWatcherAgainstARealService(t *testing.T) {
	ctx := t.Context()
	hub := httpapi.NewHub(httpapi.DefaultHubRing, nil)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "lastseen.db"), presence.Options{Notify: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := httpapi.New(httpapi.Config{Store: st, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })

	tokens := map[string]string{}
	for _, h := range []string{"ann", "bob", "cat", "dan"} {
		u, _, err := st.CreateUser(ctx, h, "Person "+h)
		if err != nil {
			t.Fatal(err)
		}
		_, tok, err := st.CreateDevice(ctx, u.ID, h+"-laptop")
		if err != nil {
			t.Fatal(err)
		}
		tokens[h] = tok
	}
	seq := int64(0)
	beat := func(h string, s presence.State) {
		t.Helper()
		seq++
		now := time.Now()
		_, err := httpapi.NewClient(ts.URL, tokens[h], ts.Client()).PostHeartbeats(ctx,
			presence.Batch{SentAt: now, Beats: []presence.Beat{{Seq: seq, At: now, State: s}}})
		if err != nil {
			t.Fatalf("beat of %s: %v", h, err)
		}
	}
	agent := httpapi.NewClient(ts.URL, tokens["ann"], ts.Client())
	for _, h := range []string{"bob", "cat"} {
		if _, err := agent.Watch(ctx, h); err != nil {
			t.Fatalf("watch %s: %v", h, err)
		}
	}
	beat("cat", presence.Active)

	rec := &recorder{}
	svc := readyService{HTTPService{BaseURL: ts.URL, Token: tokens["ann"], Client: ts.Client()}, make(chan struct{}, 1)}
	w := NewWatcher(Config{Service: svc, Sender: rec, Self: func() string { return "ann" }})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-svc.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher never took its snapshot")
	}

	beat("cat", presence.Idle)
	beat("dan", presence.Active)
	beat("ann", presence.Active)
	beat("bob", presence.Active)
	testutil.WaitUntil(t, "bob announced", 10*time.Second, func() bool { return rec.count() > 0 })
	// bob's beat came last: whatever the others would have announced
	// would have been sent before his.
	if got := rec.titles(); got != "[Person bob is online (bob-laptop)]" {
		t.Errorf("sent %s", got)
	}
}

// A stream that falls silent (no event, no keepalive) is ended, so the
// Watcher reconnects instead of waiting forever on a dead connection.
func TestSilentStreamEnds(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": keepalive\n\nevent: presence\ndata: {\"handle\":\"bob\",\"device_name\":\"pc\",\"user_status\":\"active\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	svc := HTTPService{BaseURL: ts.URL, Token: "tok", Client: ts.Client(), Silence: 200 * time.Millisecond}
	st, err := svc.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Next()
	if err != nil || c != (Change{Handle: "bob", Device: "pc", Status: presence.Active}) {
		t.Fatalf("first change %+v, %v", c, err)
	}
	start := time.Now()
	if _, err := st.Next(); err == nil || !strings.Contains(err.Error(), "silent") {
		t.Fatalf("Next on a silent stream = %v, want it ended as silent", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a silent stream ended after %s", d)
	}
	// A refused token is the service's error, with its code.
	bad := HTTPService{BaseURL: ts.URL, Token: "nope", Client: ts.Client()}
	if _, err := bad.Events(t.Context()); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("refused token: %v, want unauthorized", err)
	}
}

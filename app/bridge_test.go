package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeLocalAPI is an agent's local API as far as the bridge can tell: it
// insists on the secret and echoes what it received.
func fakeLocalAPI(t *testing.T, secret string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad secret"}}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/local/v1/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		json.NewEncoder(w).Encode(map[string]string{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"body": string(body), "content_type": r.Header.Get("Content-Type"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeAgentJSON(t *testing.T, dir string, info AgentInfo) {
	t.Helper()
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, AgentFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func testBridge(t *testing.T, dir string) *Bridge {
	t.Helper()
	ready := make(chan struct{})
	close(ready)
	return &Bridge{
		link: newAgentLink(dir), client: newLoopbackClient(), log: slog.New(slog.DiscardHandler),
		ready: ready, base: context.Background, state: func() ConnState { return ConnLive },
		timeout: 5 * time.Second,
	}
}

func TestBridgeForwards(t *testing.T) {
	dir := t.TempDir()
	srv := fakeLocalAPI(t, "s3cret")
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s3cret", PID: 1})
	b := testBridge(t, dir)

	resp, err := b.Request("put", "/local/v1/mode?x=1", `{"mode":"invisible"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	want := map[string]string{"method": "PUT", "path": "/local/v1/mode", "query": "x=1", "body": `{"mode":"invisible"}`, "content_type": "application/json"}
	if resp.Status != 200 || len(got) != len(want) {
		t.Fatalf("resp = %d %v", resp.Status, got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	// A non-2xx answer is passed through, not turned into an error.
	resp, err = b.Request("GET", "/local/v1/missing", "")
	if err != nil || resp.Status != 404 {
		t.Errorf("404 passthrough: %+v, %v", resp, err)
	}
	if got := b.Connection(); got != "live" {
		t.Errorf("Connection = %q", got)
	}
}

func TestBridgeAllowList(t *testing.T) {
	dir := t.TempDir()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})
	b := testBridge(t, dir)
	for _, tc := range []struct {
		method, path string
		ok           bool
	}{
		{"GET", "/api/v1/presence", true},
		{"GET", "/api/v1/sessions?from=2026-11-01T00:00:00Z&state=active", true},
		{"PATCH", "/api/v1/me", true},
		{"DELETE", "/api/v1/devices/3", true},
		{"POST", "/local/v1/service/test", true},
		{"GET", "/local/v1/status", true},
		{"GET", "/api/v1/events", false}, // a stream, not a request
		{"GET", "/metrics", false},
		{"GET", "/", false},
		{"GET", "/api/v2/presence", false},
		{"GET", "/api/v1", false},
		{"GET", "/api/v1/../../metrics", false},
		{"GET", "/api/v1/%2e%2e/%2e%2e/metrics", false},
		{"GET", "/api/v1/devices%2f..%2f..%2fmetrics", false},
		{"GET", "/api/v1//presence", false},
		{"GET", "http://evil.example/api/v1/presence", false},
		{"GET", "//evil.example/api/v1/presence", false},
		{"GET", "api/v1/presence", false},
		{"GET", "/api/v1/presence#x", false},
		{"TRACE", "/api/v1/presence", false},
		{"CONNECT", "/api/v1/presence", false},
		{"", "/api/v1/presence", false},
	} {
		before := hits.Load()
		_, err := b.Request(tc.method, tc.path, "")
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: err = %v, want ok=%v", tc.method, tc.path, err, tc.ok)
		}
		if sent := hits.Load() > before; sent != tc.ok {
			t.Errorf("%s %s: reached the agent = %v", tc.method, tc.path, sent)
		}
	}
}

func TestBridgeAgentDown(t *testing.T) {
	dir := t.TempDir()
	b := testBridge(t, dir)
	// No agent.json at all.
	resp, err := b.Request("GET", "/local/v1/status", "")
	if err != nil {
		t.Fatal(err)
	}
	assertUnavailable(t, resp, "not running")

	// agent.json names a port nobody listens on.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: url, Secret: "s"})
	resp, err = b.Request("GET", "/local/v1/status", "")
	if err != nil {
		t.Fatal(err)
	}
	assertUnavailable(t, resp, "cannot reach the Lastseen agent")
}

func assertUnavailable(t *testing.T, resp Response, want string) {
	t.Helper()
	var env struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(resp.Body), &env); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	if resp.Status != 503 || env.Error.Code != "unavailable" || !strings.Contains(env.Error.Message, want) {
		t.Errorf("got %d %+v, want 503 unavailable mentioning %q", resp.Status, env.Error, want)
	}
}

// TestBridgeFollowsRestartedAgent: the agent restarted while the window was
// open, with a new port and secret; the next request finds it.
func TestBridgeFollowsRestartedAgent(t *testing.T) {
	dir := t.TempDir()
	old := fakeLocalAPI(t, "old")
	writeAgentJSON(t, dir, AgentInfo{URL: old.URL, Secret: "old"})
	b := testBridge(t, dir)
	if resp, _ := b.Request("GET", "/local/v1/status", ""); resp.Status != 200 {
		t.Fatalf("first request: %+v", resp)
	}

	outer := t // the new agent outlives the first subtest
	t.Run("new port", func(t *testing.T) {
		old.Close()
		fresh := fakeLocalAPI(outer, "new")
		writeAgentJSON(t, dir, AgentInfo{URL: fresh.URL, Secret: "new"})
		resp, err := b.Request("POST", "/local/v1/mode", `{"mode":"away"}`)
		if err != nil || resp.Status != 200 {
			t.Fatalf("after restart: %+v, %v", resp, err)
		}
	})
	t.Run("same port, new secret", func(t *testing.T) {
		// The window still holds a secret the agent no longer accepts; the
		// 401 makes it re-read agent.json, which has the current one.
		info, _ := ReadAgentInfo(dir)
		b.link.set(AgentInfo{URL: info.URL, Secret: "stale"}, nil)
		resp, err := b.Request("PUT", "/local/v1/settings", `{}`)
		if err != nil || resp.Status != 200 {
			t.Fatalf("after secret change: %+v, %v", resp, err)
		}
	})
}

// roundTripFunc answers requests in memory, so a test in a synctest bubble
// has no network I/O that would keep its goroutines from blocking.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBridgeWaitsForStartup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		writeAgentJSON(t, dir, AgentInfo{URL: "http://127.0.0.1:1", Secret: "s"})
		b := testBridge(t, dir)
		var calls atomic.Int32
		b.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{}`)), Request: r}, nil
		})}
		ready := make(chan struct{})
		b.ready = ready
		done := make(chan Response, 1)
		go func() {
			resp, _ := b.Request("GET", "/local/v1/status", "")
			done <- resp
		}()
		// Every goroutine of the bubble is now blocked for good: a Request
		// that did not wait for startup has already called the agent.
		synctest.Wait()
		if n := calls.Load(); n != 0 || len(done) != 0 {
			t.Fatalf("Request ran before startup finished (%d calls to the agent)", n)
		}
		close(ready)
		if resp := <-done; resp.Status != 200 || calls.Load() != 1 {
			t.Errorf("after startup: %+v, %d calls", resp, calls.Load())
		}
	})
}

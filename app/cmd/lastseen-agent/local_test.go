package main

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
	"testing"
	"testing/fstest"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// runAgent opens and runs a headless agent in a temp dir and returns its
// discovery file; the agent is stopped (final beat and all) at cleanup.
func runAgent(t *testing.T, dir string) Discovery {
	t.Helper()
	// Keep the agent off any desktop the test runner may have.
	t.Setenv("DISPLAY", "")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	f, err := ParseFlags([]string{"--data-dir", dir, "--headless"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m, err := Open(ctx, f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	var d Discovery
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, discovery))
		if err == nil && json.Unmarshal(b, &d) == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s: %v", discovery, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func call(t *testing.T, d Discovery, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, d.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// TestLocalModeAndSwitching runs the real agent: local mode out of the box,
// the local API's controls, and a switch to a remote service and back.
func TestLocalModeAndSwitching(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	dir := t.TempDir()
	d := runAgent(t, dir)

	if fi, err := os.Stat(filepath.Join(dir, discovery)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent.json must be owner-only: %v %v", fi.Mode(), err)
	}
	// Without the secret, nothing.
	resp, err := http.Get(d.URL + "/local/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no secret: %d", resp.StatusCode)
	}

	// Local mode: the embedded service knows this device; no idle source
	// here, so the agent says away, never a guessed active.
	var pres httpapi.PresenceResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code := call(t, d, "GET", "/api/v1/presence", "", &pres); code != 200 {
			t.Fatalf("presence: %d", code)
		}
		if len(pres.Users) == 1 && len(pres.Users[0].Devices) == 1 && pres.Users[0].Devices[0].Status == presence.Away {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local presence %+v", pres)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var st struct {
		Mode    string `json:"mode"`
		Service struct {
			Kind string `json:"kind"`
		} `json:"service"`
		Handle string `json:"handle"`
	}
	call(t, d, "GET", "/local/v1/status", "", &st)
	if st.Service.Kind != "local" || st.Handle == "" || st.Mode != "auto" {
		t.Fatalf("status %+v", st)
	}

	// Modes: invisible sends one offline beat.
	if code := call(t, d, "PUT", "/local/v1/mode", `{"mode":"invisible"}`, &st); code != 200 || st.Mode != "invisible" {
		t.Fatalf("mode: %d %+v", code, st)
	}
	waitPresence(t, d, presence.Offline)
	for _, bad := range []string{`{"mode":"pause"}`, `{"mode":"away","for_s":60}`, `{"mode":"pause","until":"friday"}`, `{"mode":"nap"}`} {
		if code := call(t, d, "PUT", "/local/v1/mode", bad, nil); code != 400 {
			t.Errorf("mode %s: %d, want 400", bad, code)
		}
	}
	if code := call(t, d, "PUT", "/local/v1/mode", `{"mode":"pause","for_s":1800}`, &st); code != 200 || st.Mode != "pause" {
		t.Fatalf("pause: %d %+v", code, st)
	}
	call(t, d, "PUT", "/local/v1/mode", `{"mode":"auto"}`, nil)

	// Settings.
	var set struct {
		IdleAfterS int64 `json:"idle_after_s"`
		IntervalS  int64 `json:"interval_s"`
	}
	if code := call(t, d, "PUT", "/local/v1/settings", `{"idle_after_s":600}`, &set); code != 200 || set.IdleAfterS != 600 {
		t.Fatalf("settings: %d %+v", code, set)
	}
	if code := call(t, d, "PUT", "/local/v1/settings", `{"interval_s":120}`, nil); code != 400 {
		t.Fatalf("an interval above the embedded service's pulse must be refused in local mode: %d", code)
	}

	// A remote service: tested before it is used.
	remote, devToken := remoteService(t)
	if code := call(t, d, "POST", "/local/v1/service/test", `{"server_url":"`+remote.URL+`","token":"ls_dev_wrong"}`, nil); code != 400 {
		t.Fatalf("wrong token: %d, want 400", code)
	}
	if code := call(t, d, "POST", "/local/v1/service/test", `{"server_url":"http://127.0.0.1:1","token":"`+devToken+`"}`, nil); code != 502 {
		t.Fatalf("unreachable: %d, want 502", code)
	}
	if code := call(t, d, "PUT", "/local/v1/service", `{"server_url":"`+remote.URL+`","token":"`+devToken+`"}`, nil); code != 200 {
		t.Fatalf("switch: %d", code)
	}
	waitFor(t, 5*time.Second, "the remote identity in the status", func() bool {
		var rs struct {
			Service struct{ Kind string } `json:"service"`
			Handle  string                `json:"handle"`
			Device  struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"device"`
		}
		call(t, d, "GET", "/local/v1/status", "", &rs)
		return rs.Service.Kind == "remote" && rs.Handle == "grace" && rs.Device.ID != 0 && rs.Device.Name == "desk"
	})
	// The dashboard's reads now come from the remote service, through the agent.
	waitFor(t, 5*time.Second, "the remote service to show the device", func() bool {
		var p httpapi.PresenceResponse
		return call(t, d, "GET", "/api/v1/presence", "", &p) == 200 && len(p.Users) == 1 && p.Users[0].Handle == "grace" &&
			len(p.Users[0].Devices) == 1 && p.Users[0].Devices[0].Status == presence.Away
	})
	// Remote down: reads say so with a 502, local history still answers.
	remote.Close()
	if code := call(t, d, "GET", "/api/v1/presence", "", nil); code != 502 {
		t.Fatalf("remote down: %d, want 502", code)
	}
	var hist struct {
		Local    bool              `json:"local"`
		Sessions []json.RawMessage `json:"sessions"`
	}
	if code := call(t, d, "GET", "/local/v1/history", "", &hist); code != 200 || !hist.Local {
		t.Fatalf("history: %d %+v", code, hist)
	}
	// And back to local mode.
	if code := call(t, d, "PUT", "/local/v1/service", `{"server_url":""}`, nil); code != 200 {
		t.Fatalf("back to local: %d", code)
	}
	call(t, d, "GET", "/local/v1/status", "", &st)
	if st.Service.Kind != "local" {
		t.Fatalf("status %+v", st)
	}
	var diag struct {
		ActivityBackend string `json:"activity_backend"`
		RSSBytes        uint64 `json:"rss_bytes"`
	}
	if code := call(t, d, "GET", "/local/v1/diagnostics", "", &diag); code != 200 || diag.ActivityBackend == "" || diag.RSSBytes == 0 {
		t.Fatalf("diagnostics: %d %+v", code, diag)
	}
}

func waitPresence(t *testing.T, d Discovery, want presence.State) {
	t.Helper()
	waitFor(t, 5*time.Second, "local presence "+string(want), func() bool {
		var p httpapi.PresenceResponse
		return call(t, d, "GET", "/api/v1/presence", "", &p) == 200 && len(p.Users) > 0 && p.Users[0].Status == want
	})
}

// remoteService is a real lastseend handler on loopback with one user and device.
func remoteService(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	hub := httpapi.NewHub(64, nil)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "remote.db"), presence.Options{Notify: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, err := httpapi.New(httpapi.Config{Store: store, Hub: hub, Frontend: fstest.MapFS{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	ctx := context.Background()
	u, _, err := store.CreateUser(ctx, "grace", "Grace")
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := store.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	return ts, tok
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", limit, what)
	return 0
}

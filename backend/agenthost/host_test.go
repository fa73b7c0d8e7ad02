package agenthost

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

// unreadableIdle is an idle reader that never can: the agent then says
// away, never a guessed active.
type unreadableIdle struct{}

func (unreadableIdle) Idle(context.Context) (time.Duration, error) {
	return 0, errors.New("no idle source in tests")
}

// fakeLogin is a login item in memory.
type fakeLogin struct {
	on   bool
	args []string
}

func (f *fakeLogin) Enabled() (bool, error) { return f.on, nil }
func (f *fakeLogin) Enable(exe string, args []string) error {
	f.on, f.args = true, args
	return nil
}
func (f *fakeLogin) Disable() error { f.on = false; return nil }

// runHost opens and runs a host in dir and returns its discovery file; the
// host is stopped (final beat and all) and closed at cleanup.
func runHost(t *testing.T, dir string) localapi.Discovery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := Open(ctx, Config{
		DataDir: dir, Idle: unreadableIdle{}, IdleName: "unavailable", LockName: "none",
		Login: &fakeLogin{}, Version: "test", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, localapi.DiscoveryFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind after close: %v", localapi.DiscoveryFile, err)
		}
	})
	var d localapi.Discovery
	waitFor(t, 5*time.Second, localapi.DiscoveryFile, func() bool {
		d, err = localapi.ReadDiscovery(dir)
		return err == nil
	})
	return d
}

func call(t *testing.T, d localapi.Discovery, method, path, body string, out any) int {
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

// TestLocalModeAndSwitching runs a whole host: local mode out of the box,
// the local API's controls, and a switch to a remote service and back.
func TestLocalModeAndSwitching(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	dir := t.TempDir()
	d := runHost(t, dir)

	if fi, err := os.Stat(filepath.Join(dir, localapi.DiscoveryFile)); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("agent.json must be owner-only: %v %v", fi.Mode(), err)
	}
	if d.Version != "test" || d.PID != os.Getpid() {
		t.Fatalf("discovery %+v", d)
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

	// Local mode: the embedded service knows this device; the idle time
	// cannot be read here, so the agent says away, never a guessed active.
	var pres httpapi.PresenceResponse
	waitFor(t, 5*time.Second, "the local service to show the device away", func() bool {
		if code := call(t, d, "GET", "/api/v1/presence", "", &pres); code != 200 {
			t.Fatalf("presence: %d", code)
		}
		return len(pres.Users) == 1 && len(pres.Users[0].Devices) == 1 && pres.Users[0].Devices[0].Status == presence.Away
	})
	var st struct {
		Mode    string `json:"mode"`
		Service struct {
			Kind string `json:"kind"`
			URL  string `json:"url"`
		} `json:"service"`
		Handle string `json:"handle"`
		Device struct {
			ID int64 `json:"id"`
		} `json:"device"`
	}
	call(t, d, "GET", "/local/v1/status", "", &st)
	if st.Service.Kind != "local" || st.Service.URL != d.URL || st.Handle == "" || st.Device.ID == 0 || st.Mode != "auto" {
		t.Fatalf("status %+v", st)
	}
	localHandle, localDevice := st.Handle, st.Device.ID

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
	if code := call(t, d, "PUT", "/local/v1/mode", `{"mode":"pause","until":"tomorrow"}`, &st); code != 200 || st.Mode != "pause" {
		t.Fatalf("pause until tomorrow: %d %+v", code, st)
	}
	if code := call(t, d, "PUT", "/local/v1/mode", `{"mode":"pause","for_s":1800}`, &st); code != 200 || st.Mode != "pause" {
		t.Fatalf("pause: %d %+v", code, st)
	}
	call(t, d, "PUT", "/local/v1/mode", `{"mode":"auto"}`, nil)

	// Settings, within the agent's bounds.
	var set struct {
		IdleAfterS   int64 `json:"idle_after_s"`
		IntervalS    int64 `json:"interval_s"`
		StartAtLogin bool  `json:"start_at_login"`
	}
	if code := call(t, d, "PUT", "/local/v1/settings", `{"idle_after_s":600}`, &set); code != 200 || set.IdleAfterS != 600 {
		t.Fatalf("settings: %d %+v", code, set)
	}
	for _, bad := range []string{`{"idle_after_s":30}`, `{"idle_after_s":3601}`, `{"interval_s":5}`, `{"interval_s":301}`} {
		if code := call(t, d, "PUT", "/local/v1/settings", bad, nil); code != 400 {
			t.Errorf("settings %s: %d, want 400", bad, code)
		}
	}
	if code := call(t, d, "PUT", "/local/v1/settings", `{"interval_s":120}`, nil); code != 400 {
		t.Fatalf("an interval above the embedded service's pulse must be refused in local mode: %d", code)
	}
	if code := call(t, d, "PUT", "/local/v1/settings", `{"start_at_login":true}`, &set); code != 200 || !set.StartAtLogin || set.IdleAfterS != 600 {
		t.Fatalf("start at login: %d %+v", code, set)
	}

	// A remote service: tested before it is used.
	remote, devToken := remoteService(t)
	if code := call(t, d, "POST", "/local/v1/service/test", `{"server_url":"`+remote.URL+`","token":"ls_dev_wrong"}`, nil); code != 400 {
		t.Fatalf("wrong token: %d, want 400", code)
	}
	if code := call(t, d, "POST", "/local/v1/service/test", `{"server_url":"`+remote.URL+`","token":"ls_usr_x"}`, nil); code != 400 {
		t.Fatalf("a user token: %d, want 400", code)
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
	// And back to local mode, as the same local user and device.
	if code := call(t, d, "PUT", "/local/v1/service", `{"server_url":""}`, nil); code != 200 {
		t.Fatalf("back to local: %d", code)
	}
	call(t, d, "GET", "/local/v1/status", "", &st)
	if st.Service.Kind != "local" || st.Service.URL != d.URL || st.Handle != localHandle || st.Device.ID != localDevice {
		t.Fatalf("status %+v, want local mode as %s, device %d", st, localHandle, localDevice)
	}
	var diag struct {
		ActivityBackend string `json:"activity_backend"`
		Version         string `json:"version"`
		RSSBytes        uint64 `json:"rss_bytes"`
	}
	if code := call(t, d, "GET", "/local/v1/diagnostics", "", &diag); code != 200 || diag.ActivityBackend != "unavailable" || diag.Version != "test" || diag.RSSBytes == 0 {
		t.Fatalf("diagnostics: %d %+v", code, diag)
	}
}

// The same data dir opened again is the same local account.
func TestLocalAccountSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	dir := t.TempDir()
	status := func() (handle string, device int64) {
		ctx := context.Background()
		h, err := Open(ctx, Config{DataDir: dir, Idle: unreadableIdle{}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		st, err := (*controls)(h).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Handle, st.Device.ID
	}
	h1, d1 := status()
	h2, d2 := status()
	if h1 == "" || h1 != h2 || d1 != d2 {
		t.Fatalf("first run %s/%d, second %s/%d", h1, d1, h2, d2)
	}
}

func waitPresence(t *testing.T, d localapi.Discovery, want presence.State) {
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
	srv, err := httpapi.New(httpapi.Config{Store: store, Hub: hub})
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

// waitFor polls ok until it holds; it waits for something to happen, never
// to prove that something did not.
func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	testutil.WaitUntil(t, what, limit, ok)
}

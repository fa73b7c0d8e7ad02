package agenthost

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// quickClock paces polls a hundred times faster than asked, so a test
// waits milliseconds for a 5 s interval.
type quickClock struct{}

func (quickClock) Now() time.Time                         { return time.Now() }
func (quickClock) After(d time.Duration) <-chan time.Time { return time.After(d / 100) }

// pairingService is a real service with the pairing endpoints in front of
// it, decided by the test: pending until decide is called. Its approval
// creates a real device, so the agent's beats after the switch are taken.
type pairingService struct {
	*httptest.Server
	store *sqlite.Store

	mu       sync.Mutex
	started  []string // device name and OS of each start
	polls    int
	decision string // "", "approve" or "deny"
}

func newPairingService(t *testing.T) *pairingService {
	t.Helper()
	hub := httpapi.NewHub(64, nil)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "remote.db"), presence.Options{Notify: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	api, err := httpapi.New(httpapi.Config{Store: store, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ps := &pairingService{store: store}
	user, _, err := store.CreateUser(context.Background(), "grace", "Grace")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/pair", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DeviceName string `json:"device_name"`
			OS         string `json:"os"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		ps.mu.Lock()
		ps.started = append(ps.started, in.DeviceName+"/"+in.OS)
		ps.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		base := "http://" + r.Host
		json.NewEncoder(w).Encode(map[string]any{"device_code": "ls_pair_test", "user_code": "BDFG-HJKL",
			"verification_uri": base + "/pair", "verification_uri_complete": base + "/pair?code=BDFGHJKL",
			"interval": 5, "expires_in": 600})
	})
	mux.HandleFunc("POST /api/v1/pair/token", func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		ps.polls++
		decision := ps.decision
		if decision == "approve" {
			ps.decision = "spent"
		}
		ps.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch decision {
		case "approve":
			dev, tok, err := store.CreateDevice(r.Context(), user.ID, "laptop")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "device": dev, "handle": "grace"})
			return
		case "deny":
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"error": "access_denied", "interval": 5})
		case "spent":
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_grant"})
		default:
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"error": "authorization_pending", "interval": 5})
		}
	})
	mux.Handle("/", api)
	ps.Server = httptest.NewServer(mux)
	t.Cleanup(ps.Close)
	return ps
}

func (ps *pairingService) decide(d string) {
	ps.mu.Lock()
	ps.decision = d
	ps.mu.Unlock()
}

func (ps *pairingService) pollCount() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.polls
}

// runPairingHost runs a host in dir whose pairing polls at quickClock.
func runPairingHost(t *testing.T, dir string) (*Host, localapi.Discovery) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := Open(ctx, Config{DataDir: dir, Idle: unreadableIdle{}, IdleName: "unavailable", LockName: "none",
		Login: &fakeLogin{}, Version: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.pairs.clock = quickClock{}
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
	})
	var d localapi.Discovery
	waitFor(t, 5*time.Second, localapi.DiscoveryFile, func() bool {
		d, err = localapi.ReadDiscovery(dir)
		return err == nil
	})
	return h, d
}

func pairStatus(t *testing.T, d localapi.Discovery) localapi.PairStatus {
	t.Helper()
	var st localapi.PairStatus
	if code := call(t, d, "GET", "/local/v1/pair", "", &st); code != 200 {
		t.Fatalf("GET /local/v1/pair: %d", code)
	}
	return st
}

// Pairing from the window: codes first, then, on approval, the agent
// switches itself to the service with the new device token, saved for the
// next start; its local history stays.
func TestPairingApprovalSwitchesTheService(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	dir := t.TempDir()
	ps := newPairingService(t)
	_, d := runPairingHost(t, dir)

	var st localapi.PairStatus
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`/"}`, &st); code != 200 {
		t.Fatalf("start: %d %+v", code, st)
	}
	if st.State != localapi.PairPending || st.UserCode != "BDFG-HJKL" || st.URL != ps.URL ||
		st.VerificationURIComplete != ps.URL+"/pair?code=BDFGHJKL" || st.ExpiresAt == nil ||
		st.ExpiresAt.Sub(time.Now()) < 9*time.Minute {
		t.Fatalf("start answered %+v", st)
	}
	ps.mu.Lock()
	started := ps.started
	ps.mu.Unlock()
	if want := DeviceName() + "/" + DeviceOS(); len(started) != 1 || started[0] != want {
		t.Fatalf("the service was asked for %v, want [%s]", started, want)
	}
	waitFor(t, 5*time.Second, "a few pending polls", func() bool { return ps.pollCount() >= 2 })
	var status localapi.Status
	call(t, d, "GET", "/local/v1/status", "", &status)
	if status.Pairing.State != localapi.PairPending || status.Service.Kind != kindLocal {
		t.Fatalf("while pending, status %+v", status)
	}
	localHandle := status.Handle

	ps.decide("approve")
	waitFor(t, 5*time.Second, "the pairing to be approved", func() bool {
		return pairStatus(t, d).State == localapi.PairApproved
	})
	st = pairStatus(t, d)
	if st.Handle != "grace" || st.Device == nil || st.Device.Name != "laptop" || st.Error != "" {
		t.Fatalf("approved: %+v", st)
	}
	call(t, d, "GET", "/local/v1/status", "", &status)
	if status.Service.Kind != kindRemote || status.Service.URL != ps.URL || status.Handle != "grace" ||
		status.Device.Name != "laptop" || status.Device.ID != st.Device.ID || status.Pairing.State != localapi.PairApproved {
		t.Fatalf("after approval, status %+v", status)
	}
	var set localapi.Settings
	if call(t, d, "GET", "/local/v1/settings", "", &set); set.ServerURL != ps.URL || !set.HasToken {
		t.Fatalf("settings %+v: the paired service is not saved", set)
	}
	// The agent beats as the new device there.
	waitFor(t, 5*time.Second, "the paired device on the service", func() bool {
		var p httpapi.PresenceResponse
		return call(t, d, "GET", "/api/v1/presence", "", &p) == 200 && len(p.Users) == 1 && p.Users[0].Handle == "grace" &&
			len(p.Users[0].Devices) == 1 && p.Users[0].Devices[0].Name == "laptop"
	})
	var hist struct {
		Local bool `json:"local"`
	}
	if code := call(t, d, "GET", "/local/v1/history", "", &hist); code != 200 || !hist.Local {
		t.Fatalf("local history: %d", code)
	}
	// Cancelling an approved pairing forgets its outcome, not the service.
	if code := call(t, d, "DELETE", "/local/v1/pair", "", &st); code != 200 || st.State != localapi.PairNone {
		t.Fatalf("cancel: %d %+v", code, st)
	}
	if call(t, d, "GET", "/local/v1/status", "", &status); status.Service.Kind != kindRemote || status.Handle == localHandle {
		t.Fatalf("after cancelling an approved pairing, status %+v", status)
	}
}

// The next start uses the paired service: it is saved as PUT
// /local/v1/service saves it.
func TestPairedServiceIsSaved(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	dir := t.TempDir()
	ps := newPairingService(t)
	h, d := runPairingHost(t, dir)
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`"}`, nil); code != 200 {
		t.Fatalf("start: %d", code)
	}
	ps.decide("approve")
	waitFor(t, 5*time.Second, "the pairing to be approved", func() bool {
		return pairStatus(t, d).State == localapi.PairApproved
	})
	s, err := h.db.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerURL != ps.URL || s.DeviceToken == "" {
		t.Fatalf("saved %q with token %q", s.ServerURL, s.DeviceToken)
	}
	if p, err := ps.store.Authenticate(context.Background(), s.DeviceToken); err != nil || p.Kind != presence.DeviceToken {
		t.Fatalf("the saved token is not the new device's: %v", err)
	}
}

func TestPairingDenied(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	ps := newPairingService(t)
	_, d := runPairingHost(t, t.TempDir())
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`"}`, nil); code != 200 {
		t.Fatalf("start: %d", code)
	}
	ps.decide("deny")
	waitFor(t, 5*time.Second, "the pairing to be denied", func() bool {
		return pairStatus(t, d).State == localapi.PairDenied
	})
	if st := pairStatus(t, d); st.Error == "" || st.Handle != "" {
		t.Fatalf("denied: %+v", st)
	}
	var status localapi.Status
	if call(t, d, "GET", "/local/v1/status", "", &status); status.Service.Kind != kindLocal {
		t.Fatalf("a denied pairing switched the service: %+v", status.Service)
	}
}

// A cancelled pairing is forgotten at once, and a new start replaces the
// one in progress.
func TestPairingCancelAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	ps := newPairingService(t)
	_, d := runPairingHost(t, t.TempDir())
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`"}`, nil); code != 200 {
		t.Fatalf("start: %d", code)
	}
	var st localapi.PairStatus
	if code := call(t, d, "DELETE", "/local/v1/pair", "", &st); code != 200 || st.State != localapi.PairNone {
		t.Fatalf("cancel: %d %+v", code, st)
	}
	if st := pairStatus(t, d); st.State != localapi.PairNone {
		t.Fatalf("after cancel: %+v", st)
	}
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`"}`, nil); code != 200 {
		t.Fatalf("start again: %d", code)
	}
	if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+ps.URL+`"}`, nil); code != 200 {
		t.Fatalf("start a third time: %d", code)
	}
	ps.decide("approve")
	waitFor(t, 5*time.Second, "the last pairing to be approved", func() bool {
		return pairStatus(t, d).State == localapi.PairApproved
	})
}

// A service that gives no codes says why, in the local API's terms.
func TestPairingStartFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	_, d := runPairingHost(t, t.TempDir())
	// A service from before pairing answers 404 there.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		w.Write([]byte(`{"error":{"code":"not_found","message":"not found"}}`))
	}))
	defer old.Close()
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(429)
		w.Write([]byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
	}))
	defer limited.Close()
	for _, tc := range []struct {
		url    string
		status int
		text   string
	}{
		{"ftp://example.com", 400, "must look like"},
		{"https://user:pw@example.com", 400, "credentials"},
		{"http://127.0.0.1:1", 502, "cannot reach"},
		{old.URL, 502, "does not offer pairing"},
		{limited.URL, 429, "too many"},
	} {
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if code := call(t, d, "POST", "/local/v1/pair", `{"url":"`+tc.url+`"}`, &env); code != tc.status || !strings.Contains(env.Error.Message, tc.text) {
			t.Errorf("%s: %d %+v, want %d with %q", tc.url, code, env.Error, tc.status, tc.text)
		}
	}
	if st := pairStatus(t, d); st.State != localapi.PairNone {
		t.Fatalf("a failed start left %+v", st)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/internal/testutil"
)

// quickClock paces polls a hundred times faster than asked.
type quickClock struct{}

func (quickClock) Now() time.Time                         { return time.Now() }
func (quickClock) After(d time.Duration) <-chan time.Time { return time.After(d / 100) }

// fakePairing answers the pairing endpoints: pending for pending polls,
// then the decision ("approve" or "deny").
type fakePairing struct {
	*httptest.Server
	mu       sync.Mutex
	name     string
	pending  int
	decision string
	polls    int
}

func newFakePairing(t *testing.T, pending int, decision string, interval int) *fakePairing {
	t.Helper()
	fp := &fakePairing{pending: pending, decision: decision}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/pair", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DeviceName string `json:"device_name"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		fp.mu.Lock()
		fp.name = in.DeviceName
		fp.mu.Unlock()
		base := "http://" + r.Host
		json.NewEncoder(w).Encode(map[string]any{"device_code": "ls_pair_x", "user_code": "BDFG-HJKL",
			"verification_uri": base + "/pair", "verification_uri_complete": base + "/pair?code=BDFGHJKL",
			"interval": interval, "expires_in": 600})
	})
	mux.HandleFunc("POST /api/v1/pair/token", func(w http.ResponseWriter, r *http.Request) {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		fp.polls++
		switch {
		case fp.polls <= fp.pending:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"authorization_pending","interval":5}`)
		case fp.decision == "approve":
			json.NewEncoder(w).Encode(map[string]any{"access_token": "ls_dev_paired", "token_type": "Bearer",
				"device": map[string]any{"id": 9, "name": fp.name}, "handle": "ada"})
		default:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"access_denied"}`)
		}
	})
	fp.Server = httptest.NewServer(mux)
	t.Cleanup(fp.Close)
	return fp
}

func savedServer(t *testing.T, dir string) agentdb.Settings {
	t.Helper()
	db, err := agentdb.Open(filepath.Join(dir, agenthost.AgentDBFile), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParsePairFlags(t *testing.T) {
	env := func(string) string { return "" }
	f, err := parsePairFlags([]string{"--data-dir", "rel", "--name", " laptop ", "https://s.example/"}, env, io.Discard)
	if err != nil || f.URL != "https://s.example" || f.Name != "laptop" || !filepath.IsAbs(f.DataDir) {
		t.Fatalf("%+v %v", f, err)
	}
	// Flags after the URL, as people type them, mean the same.
	g, err := parsePairFlags([]string{"https://s.example/", "--name", "laptop", "--data-dir", "rel"}, env, io.Discard)
	if err != nil || g != f {
		t.Errorf("flags after the URL: %+v %v, want %+v", g, err, f)
	}
	for _, args := range [][]string{
		{}, {"https://a.example", "https://b.example"}, {"https://a.example", "--name", "x", "extra"}, {"lastseen.example.com"}, {"https://u:p@s.example"},
		{"--name", strings.Repeat("x", 65), "https://s.example"}, {"--name", "", "https://s.example"},
	} {
		if _, err := parsePairFlags(args, env, io.Discard); err == nil {
			t.Errorf("pair %q: no error", args)
		}
	}
}

// With no agent running, pair saves the service and token where the agent
// reads them at its next start, and says who this computer is there.
func TestPairSavesTheService(t *testing.T) {
	fp := newFakePairing(t, 2, "approve", 5)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := pairMain(context.Background(), []string{"--data-dir", dir, "--name", "laptop", fp.URL}, func(string) string { return "" },
		&out, &errOut, pairDeps{clock: quickClock{}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{fp.URL + "/pair?code=BDFGHJKL", "BDFG-HJKL", "Paired: this computer is laptop of ada on " + fp.URL} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if s := savedServer(t, dir); s.ServerURL != fp.URL || s.DeviceToken != "ls_dev_paired" {
		t.Fatalf("saved %q %q", s.ServerURL, s.DeviceToken)
	}
}

func TestPairDenied(t *testing.T) {
	fp := newFakePairing(t, 1, "deny", 5)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := pairMain(context.Background(), []string{"--data-dir", dir, fp.URL}, func(string) string { return "" },
		&out, &errOut, pairDeps{clock: quickClock{}})
	if code != 1 || !strings.Contains(errOut.String(), "denied") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if s := savedServer(t, dir); s.ServerURL != "" || s.DeviceToken != "" {
		t.Fatalf("a denied pairing saved %q %q", s.ServerURL, s.DeviceToken)
	}
}

func TestPairUsage(t *testing.T) {
	var errOut bytes.Buffer
	if code := pairMain(context.Background(), nil, func(string) string { return "" }, io.Discard, &errOut, pairDeps{}); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "usage: lastseen-agent pair") {
		t.Fatalf("no usage: %s", errOut.String())
	}
}

// While an agent runs for the data dir, pair asks it to pair rather than
// write under it; the agent switches at once.
func TestPairThroughRunningAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	fp := newFakePairing(t, 0, "approve", 1)
	dir := t.TempDir()
	lock, err := acquireLock(filepath.Join(dir, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.release()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := agenthost.Open(ctx, agenthost.Config{DataDir: dir, Idle: unavailableIdle{err: io.EOF}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		h.Close()
	}()
	testutil.WaitUntil(t, "the agent's discovery file", 5*time.Second, func() bool {
		_, err := localapi.ReadDiscovery(dir)
		return err == nil
	})

	var out, errOut bytes.Buffer
	code := pairMain(context.Background(), []string{"--data-dir", dir, "--name", "desk", fp.URL}, func(string) string { return "" },
		&out, &errOut, pairDeps{agentPoll: 50 * time.Millisecond})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "running agent") || !strings.Contains(out.String(), "Paired: this computer is desk of ada on "+fp.URL) {
		t.Fatalf("output:\n%s", out.String())
	}
	if h.Service() != fp.URL {
		t.Fatalf("the agent uses %s, want %s", h.Service(), fp.URL)
	}
}

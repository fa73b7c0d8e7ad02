package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

// manualClock is the one clock of the service and the pairing command: a
// poll waits until the test fires its timer, which moves the time on by
// the wait. The service sees polls exactly an interval apart.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan manualTimer
}

type manualTimer struct {
	d  time.Duration
	ch chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Now(), timers: make(chan manualTimer, 1)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.timers <- manualTimer{d, ch}
	return ch
}

// next waits until the command waits to poll; fire lets it poll.
func (c *manualClock) next(t *testing.T) manualTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		return tm
	case <-time.After(10 * time.Second):
		t.Fatal("the pair command does not wait to poll")
		return manualTimer{}
	}
}

func (c *manualClock) fire(tm manualTimer) {
	c.mu.Lock()
	c.now = c.now.Add(tm.d)
	now := c.now
	c.mu.Unlock()
	tm.ch <- now
}

// syncBuffer is stdout written by the command while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lastseend is a real service in process, on SQLite, at clk's time, with
// one user; it returns the service, its store and the user's token.
func lastseend(t *testing.T, clk *manualClock) (*httptest.Server, *sqlite.Store, string) {
	t.Helper()
	hub := httpapi.NewHub(64, nil)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "service.db"), presence.Options{Notify: hub.Publish, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	api, err := httpapi.New(httpapi.Config{Store: store, Hub: hub, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	_, token, err := store.CreateUser(context.Background(), "ada", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	return srv, store, token
}

// asUser sends one request to the service as the user and decodes the answer.
func asUser(t *testing.T, srv *httptest.Server, token, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

var userCodeRE = regexp.MustCompile(`\b[B-Z]{4}-[B-Z]{4}\b`)

// pairAgainst runs `lastseen-agent pair` against srv in the background.
func pairAgainst(t *testing.T, srv *httptest.Server, dir string, clk *manualClock) (stdout, stderr *syncBuffer, exit <-chan int) {
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- pairMain(context.Background(), []string{"--data-dir", dir, "--name", "laptop", srv.URL},
			func(string) string { return "" }, stdout, stderr, pairDeps{clock: clk})
	}()
	return stdout, stderr, done
}

// The whole pairing against a real service: the command shows a code, the
// person (the test, with their user token) finds the computer by it and
// approves; the command saves the device token, and the agent's next start
// uses the service as that device.
func TestPairEndToEnd(t *testing.T) {
	clk := newManualClock()
	srv, store, userToken := lastseend(t, clk)
	dir := t.TempDir()
	stdout, stderr, exit := pairAgainst(t, srv, dir, clk)

	first := clk.next(t) // codes shown, waiting to poll
	code := userCodeRE.FindString(stdout.String())
	if code == "" || !strings.Contains(stdout.String(), srv.URL+"/pair?code="+strings.ReplaceAll(code, "-", "")) {
		t.Fatalf("no code or verification URL shown:\n%s", stdout.String())
	}
	var info httpapi.PairInfo
	if status := asUser(t, srv, userToken, "GET", "/api/v1/pair/"+code, "", &info); status != 200 ||
		info.DeviceName != "laptop" || info.OS != agenthost.DeviceOS() || info.State != presence.PairingPending {
		t.Fatalf("the person sees %d %+v", status, info)
	}
	if first.d != presence.PairingInterval {
		t.Fatalf("first poll after %v, want %v", first.d, presence.PairingInterval)
	}
	clk.fire(first) // pending
	second := clk.next(t)
	if status := asUser(t, srv, userToken, "POST", "/api/v1/pair/"+code, `{"approve":true}`, nil); status != 200 {
		t.Fatalf("approve: %d", status)
	}
	clk.fire(second) // approved
	select {
	case c := <-exit:
		if c != 0 {
			t.Fatalf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pair command did not finish after the approval")
	}
	if want := "Paired: this computer is laptop of ada on " + srv.URL; !strings.Contains(stdout.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, stdout.String())
	}

	s := savedServer(t, dir)
	if s.ServerURL != srv.URL {
		t.Fatalf("saved server %q", s.ServerURL)
	}
	p, err := store.Authenticate(context.Background(), s.DeviceToken)
	if err != nil || p.Kind != presence.DeviceToken {
		t.Fatalf("the saved token does not authenticate as a device: %+v %v", p, err)
	}
	ds, err := store.DeviceStatus(context.Background(), p.DeviceID)
	if err != nil || ds.Name != "laptop" {
		t.Fatalf("device %+v %v", ds, err)
	}

	// The next start uses it.
	h, err := agenthost.Open(context.Background(), agenthost.Config{DataDir: dir, Idle: unavailableIdle{err: io.EOF}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.Service(); got != srv.URL {
		t.Fatalf("the agent starts with %q, want the paired %s", got, srv.URL)
	}
}

func TestPairEndToEndDenied(t *testing.T) {
	clk := newManualClock()
	srv, _, userToken := lastseend(t, clk)
	dir := t.TempDir()
	stdout, stderr, exit := pairAgainst(t, srv, dir, clk)
	first := clk.next(t)
	code := userCodeRE.FindString(stdout.String())
	if status := asUser(t, srv, userToken, "POST", "/api/v1/pair/"+code, `{"approve":false}`, nil); status != 200 {
		t.Fatalf("deny %q: %d", code, status)
	}
	clk.fire(first)
	select {
	case c := <-exit:
		if c != 1 || !strings.Contains(stderr.String(), "denied") {
			t.Fatalf("exit %d, stderr %q", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pair command did not finish after the denial")
	}
	if s := savedServer(t, dir); s.ServerURL != "" || s.DeviceToken != "" {
		t.Fatalf("a denied pairing saved %q", s.ServerURL)
	}
}

// A code nobody approves expires: the service says so, the command stops.
func TestPairEndToEndExpired(t *testing.T) {
	clk := newManualClock()
	srv, _, _ := lastseend(t, clk)
	_, stderr, exit := pairAgainst(t, srv, t.TempDir(), clk)
	start := clk.Now()
	for {
		select {
		case c := <-exit:
			if c != 1 || !strings.Contains(stderr.String(), "expired") {
				t.Fatalf("exit %d, stderr %q", c, stderr.String())
			}
			return
		case tm := <-clk.timers:
			if clk.Now().Sub(start) > presence.PairingTTL+time.Minute {
				t.Fatal("still polling well past the code's life")
			}
			clk.fire(tm)
		case <-time.After(10 * time.Second):
			t.Fatal("the pair command neither polls nor ends")
		}
	}
}

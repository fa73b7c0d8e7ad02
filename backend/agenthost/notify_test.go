package agenthost

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/notify"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
)

type sentNotifications struct {
	mu   sync.Mutex
	sent []notify.Notification
}

func (s *sentNotifications) Send(_ context.Context, n notify.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, n)
	return nil
}

func (s *sentNotifications) list() []notify.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notify.Notification(nil), s.sent...)
}

// In remote mode the window watches someone through the agent's proxy, and
// their coming online is announced through the host's Notifications.
func TestWatchedPersonAnnounced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	ctx := context.Background()
	hub := httpapi.NewHub(64, nil)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "remote.db"), presence.Options{Notify: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// A generous device rate: henry keeps beating until the agent sees it.
	srv, err := httpapi.New(httpapi.Config{Store: store, Hub: hub, DeviceRate: httpapi.Rate{PerSecond: 1000, Burst: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	grace, _, err := store.CreateUser(ctx, "grace", "Grace")
	if err != nil {
		t.Fatal(err)
	}
	_, graceTok, err := store.CreateDevice(ctx, grace.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	henry, _, err := store.CreateUser(ctx, "henry", "Henry")
	if err != nil {
		t.Fatal(err)
	}
	_, henryTok, err := store.CreateDevice(ctx, henry.ID, "henry-laptop")
	if err != nil {
		t.Fatal(err)
	}

	sent := &sentNotifications{}
	dir := t.TempDir()
	runCtx, cancel := context.WithCancel(ctx)
	h, err := Open(runCtx, Config{
		DataDir: dir, Server: ts.URL, Token: graceTok, Idle: unreadableIdle{}, IdleName: "unavailable", LockName: "none",
		Login: &fakeLogin{}, Version: "test", Logger: slog.New(slog.DiscardHandler), Notifications: sent,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		h.Close()
	})
	var d localapi.Discovery
	waitFor(t, 5*time.Second, localapi.DiscoveryFile, func() bool {
		d, err = localapi.ReadDiscovery(dir)
		return err == nil
	})

	if code, body := answer(t, d, "PUT", "/api/v1/watches/henry", ""); code != 200 {
		t.Fatalf("PUT /api/v1/watches/henry through the agent: %d %s", code, body)
	}
	var ws httpapi.WatchesResponse
	if code := call(t, d, "GET", "/api/v1/watches", "", &ws); code != 200 || len(ws.Watches) != 1 || ws.Watches[0].Name != "Henry" {
		t.Fatalf("GET /api/v1/watches through the agent: %d %+v", code, ws)
	}

	// Only a change seen live is announced, and the agent may still be
	// connecting: henry goes away and comes back until it is (the
	// per-person limit keeps that to one notification).
	henryClient := httpapi.NewClient(ts.URL, henryTok, ts.Client())
	seq := int64(0)
	beat := func(st presence.State) {
		seq++
		now := time.Now()
		if _, err := henryClient.PostHeartbeats(ctx, presence.Batch{SentAt: now, Beats: []presence.Beat{{Seq: seq, At: now, State: st}}}); err != nil {
			t.Fatalf("henry's beat: %v", err)
		}
	}
	waitFor(t, 10*time.Second, "henry announced", func() bool {
		if len(sent.list()) > 0 {
			return true
		}
		beat(presence.Away)
		beat(presence.Active)
		return false
	})
	if got := fmt.Sprint(sent.list()); got != "[{Henry is online henry-laptop}]" {
		t.Errorf("notifications %s", got)
	}
}

// The notifications setting is on out of the box, silenced through the
// local API and kept across a restart.
func TestNotificationsSetting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*Host, *controls) {
		t.Helper()
		h, err := Open(ctx, Config{DataDir: dir, Idle: unreadableIdle{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, (*controls)(h)
	}
	h, c := open()
	if s, err := c.Settings(ctx); err != nil || !s.Notifications || !h.notifyOn.Load() {
		t.Fatalf("out of the box: %+v, %v; want on", s, err)
	}
	off := false
	if s, err := c.UpdateSettings(ctx, localapi.SettingsUpdate{Notifications: &off}); err != nil || s.Notifications || h.notifyOn.Load() {
		t.Fatalf("silence: %+v, %v", s, err)
	}
	h.Close()
	h, c = open()
	if s, err := c.Settings(ctx); err != nil || s.Notifications || h.notifyOn.Load() {
		t.Fatalf("after a restart: %+v, %v; want off", s, err)
	}
}

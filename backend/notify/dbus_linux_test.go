package notify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/internal/testutil"
)

// notificationServer is a notification daemon: it owns
// org.freedesktop.Notifications and records each Notify call.
type notificationServer struct {
	mu    sync.Mutex
	calls []notifyCall
	got   chan struct{}
}

type notifyCall struct {
	app, icon, summary, body string
	replaces                 uint32
	actions                  []string
	hints                    map[string]dbus.Variant
	timeout                  int32
}

func (s *notificationServer) Notify(app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, notifyCall{app, icon, summary, body, replaces, actions, hints, timeout})
	s.got <- struct{}{}
	return uint32(len(s.calls)), nil
}

func startNotificationServer(t *testing.T, addr string) *notificationServer {
	t.Helper()
	// No dbus.WithContext: its end would close the connection.
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &notificationServer{got: make(chan struct{}, 8)}
	if err := conn.Export(s, notificationsPath, notificationsIface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(notificationsName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", notificationsName, reply, err)
	}
	return s
}

// The agent's notification reaches a real session bus's notification
// daemon: one Notify call from "Lastseen" with the title and the body.
func TestDBusNotifyOnARealSessionBus(t *testing.T) {
	addr := testutil.StartSessionBus(t)
	srv := startNotificationServer(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := (DBus{Address: addr}).Send(ctx, Notification{Title: "Ann is online", Body: "ann-laptop"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.got:
	case <-ctx.Done():
		t.Fatal("no Notify call reached the daemon")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.calls) != 1 {
		t.Fatalf("%d Notify calls, want 1", len(srv.calls))
	}
	c := srv.calls[0]
	if c.app != AppName || c.summary != "Ann is online" || c.body != "ann-laptop" || c.replaces != 0 || c.timeout != -1 {
		t.Errorf("Notify(%q, %d, %q, %q, %q, …, %d), want (%q, 0, \"\", \"Ann is online\", \"ann-laptop\", …, -1)",
			c.app, c.replaces, c.icon, c.summary, c.body, c.timeout, AppName)
	}
	if v, ok := c.hints["desktop-entry"]; !ok || v.Value() != desktopEntry {
		t.Errorf("hints %v, want desktop-entry %q", c.hints, desktopEntry)
	}
}

// Without a notification daemon on the bus the error says so; the
// Watcher logs it and goes on.
func TestDBusNotifyWithoutADaemon(t *testing.T) {
	addr := testutil.StartSessionBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := (DBus{Address: addr}).Send(ctx, Notification{Title: "x"}); err == nil {
		t.Fatal("Send succeeded with nobody owning org.freedesktop.Notifications")
	}
}

// The session bus comes from the environment, else XDG_RUNTIME_DIR/bus;
// never an autolaunched one.
func TestSessionBusAddress(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/x")
	if a, err := sessionBus(); err != nil || a != "unix:path=/run/x" {
		t.Errorf("from the environment: %q, %v", a, err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if a, err := sessionBus(); err == nil {
		t.Errorf("no bus anywhere: %q, want an error", a)
	}
}

package activity

import (
	"context"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/internal/testutil"
)

// The desktop tests run against a real X server and real bus daemons,
// started by testutil: without them they are skipped, unless
// LASTSEEN_REQUIRE_DESKTOP=1 says they must run.

// needTool finds a program the test needs.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testutil.Tool(t, name, testutil.RequireDesktop)
}

// startBus starts a private bus daemon and returns its address; tests use
// it as the session bus, the system bus, or both.
func startBus(t *testing.T) string { return testutil.StartSessionBus(t) }

// serve connects to the bus and owns name, for a test service.
func serve(t *testing.T, addr, name string) *dbus.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialBus(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", name, reply, err)
	}
	return conn
}

// env is a session environment for Config.Getenv.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// eventWait bounds the wait for an event that must come: generous, since a
// bus round trip on a loaded machine can take a while, and giving up early
// is a flake rather than a finding.
const eventWait = 10 * time.Second

// waitEvent waits (in real time) for the next event.
func waitEvent(t *testing.T, w Watcher) Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatalf("no event within %v", eventWait)
	}
	return Event{}
}

// closeAndDrain closes w and fails on any event still queued: what a test
// did not wait for must not have happened. (Each test shows, with a later
// event it does wait for, that whatever it must not see would have come
// before that one.)
func closeAndDrain(t *testing.T, w Watcher) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return
			}
			t.Errorf("unexpected event %v", ev)
		case <-time.After(eventWait):
			t.Fatal("Events not closed after Close")
		}
	}
}

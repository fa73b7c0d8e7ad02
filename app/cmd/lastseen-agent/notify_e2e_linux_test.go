//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

// The freedesktop notification service, written out: the specification's
// names, not what the agent's notifier calls them.
const (
	fakeNotifyName  = "org.freedesktop.Notifications"
	fakeNotifyPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	fakeNotifyIface = "org.freedesktop.Notifications"
)

// notifyDaemon stands in for the desktop's notification daemon on the
// test's session bus and records every Notify call.
type notifyDaemon struct {
	mu    sync.Mutex
	calls []string // "app|summary|body"
}

func (d *notifyDaemon) Notify(app string, _ uint32, _, summary, body string, _ []string, _ map[string]dbus.Variant, _ int32) (uint32, *dbus.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, app+"|"+summary+"|"+body)
	return uint32(len(d.calls)), nil
}

func (d *notifyDaemon) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// TestAgentNotifiesWatchedPeople runs the real agent (headless, on a real
// X server and a private session bus) against a real lastseend: Ada's
// agent watches Bob and Cat; each coming online is one Notify call from
// "Lastseen" naming them and their device, however often Bob flaps.
func TestAgentNotifiesWatchedPeople(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs binaries")
	}
	display := testutil.StartXvfb(t)
	bus := testutil.StartSessionBus(t)
	conn, err := dbus.Connect(bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	daemon := &notifyDaemon{}
	if err := conn.Export(daemon, fakeNotifyPath, fakeNotifyIface); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(fakeNotifyName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", fakeNotifyName, reply, err)
	}

	dir := t.TempDir()
	svc := &service{t: t, bin: testutil.BuildBinary(t, "./backend/cmd/lastseend"), addr: freePort(t), db: filepath.Join(dir, "svc.db")}
	agentBin := testutil.BuildBinary(t, "./app/cmd/lastseen-agent")
	tokens := map[string]string{}
	for _, p := range []struct{ handle, name, device string }{{"ada", "Ada", "ada-desk"}, {"bob", "Bob", "bob-laptop"}, {"cat", "Cat", "cat-phone"}} {
		svc.admin("user", "add", p.handle, "--name", p.name)
		tokens[p.handle] = svc.admin("device", "add", p.handle, p.device)
	}
	svc.start()
	t.Cleanup(svc.kill)
	base := "http://" + svc.addr
	ctx := context.Background()
	ada := httpapi.NewClient(base, tokens["ada"], nil)
	for _, h := range []string{"bob", "cat"} {
		if _, err := ada.Watch(ctx, h); err != nil {
			t.Fatalf("ada watches %s: %v", h, err)
		}
	}

	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(agentBin, "--data-dir", filepath.Join(dir, "agent"), "--server", base, "--token", tokens["ada"],
		"--headless", "--log-level", "debug")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LASTSEEN_") && !strings.HasPrefix(kv, "DBUS_") {
			env = append(env, kv)
		}
	}
	agent.Env = append(env, "DISPLAY="+display, "XDG_SESSION_TYPE=x11", "DBUS_SESSION_BUS_ADDRESS="+bus,
		"DBUS_SYSTEM_BUS_ADDRESS="+bus, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "TZ=UTC")
	agent.Stdout, agent.Stderr = log, log
	testutil.DieWithTest(agent)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			agent.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("agent log:\n%s", b)
		}
	})

	seq := map[string]int64{}
	beat := func(handle string, st presence.State) {
		t.Helper()
		seq[handle]++
		now := time.Now()
		c := httpapi.NewClient(base, tokens[handle], nil)
		if _, err := c.PostHeartbeats(ctx, presence.Batch{SentAt: now, Beats: []presence.Beat{{Seq: seq[handle], At: now, State: st}}}); err != nil {
			t.Fatalf("%s's beat: %v", handle, err)
		}
	}
	// Only what the agent sees live is announced, and it may still be
	// connecting: Bob goes away and comes back, every half second, until
	// it is announced.
	var last time.Time
	waitFor(t, 20*time.Second, "a Notify call for Bob", func() bool {
		if len(daemon.list()) > 0 {
			return true
		}
		if time.Since(last) >= 500*time.Millisecond {
			beat("bob", presence.Away)
			beat("bob", presence.Active)
			last = time.Now()
		}
		return false
	})
	// Bob flaps again (within his 10 minutes), then Cat comes online: the
	// agent handles changes in order, so once Cat's call is in, Bob's
	// flaps have been decided too.
	beat("bob", presence.Away)
	beat("bob", presence.Active)
	beat("cat", presence.Active)
	waitFor(t, 10*time.Second, "a Notify call for Cat", func() bool { return len(daemon.list()) >= 2 })
	want := "Lastseen|Bob is online|bob-laptop\nLastseen|Cat is online|cat-phone"
	if got := strings.Join(daemon.list(), "\n"); got != want {
		t.Errorf("Notify calls:\n%s\nwant:\n%s", got, want)
	}
}

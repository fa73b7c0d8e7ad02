package activity

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// needTool finds a program the test needs. Without it the test is skipped,
// unless LASTSEEN_REQUIRE_DESKTOP=1 says the desktop tests must run.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (package %s); desktop integration test skipped", name, pkg)
		if os.Getenv("LASTSEEN_REQUIRE_DESKTOP") == "1" {
			t.Fatal(msg + ", but LASTSEEN_REQUIRE_DESKTOP=1")
		}
		t.Skip(msg)
	}
	return p
}

// readLine reads the first line a child prints on r, within 10 s.
func readLine(t testing.TB, r *os.File, what string) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		ch <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ch:
		if line == "" {
			t.Fatalf("%s printed nothing", what)
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start within 10 s", what)
	}
	return ""
}

func stopOnCleanup(t testing.TB, cmd *exec.Cmd) {
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// startXvfb starts a private X server on a free display (Xvfb picks it and
// tells us through -displayfd) and returns its DISPLAY.
func startXvfb(t testing.TB) string {
	t.Helper()
	bin := needTool(t, "Xvfb", "xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "640x480x24")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	stopOnCleanup(t, cmd)
	return ":" + readLine(t, r, "Xvfb")
}

// startBus starts a private session bus daemon and returns its address.
func startBus(t *testing.T) string {
	t.Helper()
	bin := needTool(t, "dbus-daemon", "dbus")
	dir, err := os.MkdirTemp("", "lsbus") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(bin, "--session", "--nofork", "--print-address", "--address=unix:path="+dir+"/bus")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	stopOnCleanup(t, cmd)
	return readLine(t, out.(*os.File), "dbus-daemon")
}

// serve connects to the bus and owns name, for a test service.
func serve(t *testing.T, addr, name string) *dbus.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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

// waitEvent waits (in real time) for the next event.
func waitEvent(t *testing.T, w Watcher) Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return Event{}
}

// noEventFor checks nothing arrives for d.
func noEventFor(t *testing.T, w Watcher, d time.Duration) {
	t.Helper()
	select {
	case ev := <-w.Events():
		t.Fatalf("unexpected event %v", ev)
	case <-time.After(d):
	}
}

package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// StartSessionBus starts a private D-Bus daemon and returns its address
// (for DBUS_SESSION_BUS_ADDRESS, or DBUS_SYSTEM_BUS_ADDRESS where a test
// stands in for the system bus) once it answers a call. The daemon is
// stopped when the test ends, or with the test process if that dies first.
// Without dbus-daemon the test is skipped, or fails under
// LASTSEEN_REQUIRE_DESKTOP=1.
func StartSessionBus(t testing.TB) string {
	t.Helper()
	bin := Tool(t, "dbus-daemon", RequireDesktop)
	// Not t.TempDir: a unix socket path must fit in 108 bytes, and test
	// names make temp dirs long.
	dir, err := os.MkdirTemp("", "lsbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(bin, "--session", "--nofork", "--nopidfile", "--print-address=1",
		"--address=unix:path="+dir+"/bus")
	// A pipe of our own rather than StdoutPipe: the reader below may still
	// be draining it when the daemon is reaped.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd.Stdout = w
	// The daemon grumbles about fd limits it may not raise; keep that for
	// the message when it fails to start.
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	DieWithTest(cmd)
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	exited := reap(t, cmd)

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
		for sc.Scan() { // keep the pipe drained
		}
	}()
	var addr string
	select {
	case addr = <-lines:
	case <-exited:
	case <-time.After(startWait):
	}
	if addr == "" {
		t.Fatalf("dbus-daemon printed no address within %v: %s", startWait, strings.TrimSpace(stderr.String()))
	}
	// Ready means it answers, not that it printed: a call over a fresh
	// connection goes through authentication, Hello and a method call.
	WaitNoError(t, "the session bus at "+addr+" to answer", startWait, func() error {
		select {
		case <-exited:
			return fmt.Errorf("dbus-daemon exited: %s", strings.TrimSpace(stderr.String()))
		default:
		}
		conn, err := dbus.Connect(addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		var id string
		return conn.BusObject().Call("org.freedesktop.DBus.GetId", 0).Store(&id)
	})
	return addr
}

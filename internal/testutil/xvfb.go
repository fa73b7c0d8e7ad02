package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// XvfbScreen is the virtual screen StartXvfb sets up: room for the
// dashboard's default 1100×760 window with a margin around it.
const XvfbScreen = "1280x800x24"

// startWait bounds how long a helper process may take to come up. It is
// generous: on a loaded two-core machine a server start can take seconds,
// and a wait that gives up early is a flake, not a finding.
const startWait = 30 * time.Second

// StartXvfb starts a private X server on a free display and returns its
// DISPLAY (":N") once the server accepts connections. The server is killed
// when the test ends, or with the test process if that dies first. Without
// Xvfb the test is skipped, or fails under LASTSEEN_REQUIRE_DESKTOP=1.
func StartXvfb(t testing.TB) string {
	t.Helper()
	bin := Tool(t, "Xvfb", RequireDesktop)
	// -displayfd: Xvfb picks a free display itself and writes its number
	// here, so parallel test binaries never fight over ":99".
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// -noreset: by default an X server starts over when its last client
	// leaves, and a connection arriving meanwhile is reset; the readiness
	// probe below, a test's first client or an xdotool run may each be
	// that last client.
	cmd := exec.Command(bin, "-displayfd", "3", "-nolisten", "tcp", "-noreset", "-screen", "0", XvfbScreen)
	cmd.ExtraFiles = []*os.File{w}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Second // xkbcomp children may hold stderr a moment
	DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	exited := reap(t, cmd)

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var n string
	select {
	case n = <-lines:
	case <-exited:
	case <-time.After(startWait):
	}
	if n == "" {
		t.Fatalf("Xvfb reported no display within %v: %s", startWait, strings.TrimSpace(stderr.String()))
	}
	display := ":" + n
	// The number is written once the server listens; dialling its socket
	// anyway means no caller's first connection can race the server.
	WaitNoError(t, "Xvfb to accept connections on "+display, startWait, func() error {
		select {
		case <-exited:
			return fmt.Errorf("Xvfb exited: %s", strings.TrimSpace(stderr.String()))
		default:
		}
		c, err := net.Dial("unix", "/tmp/.X11-unix/X"+n)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return display
}

// reap waits for cmd in the background and stops it when the test ends:
// SIGTERM first, so an X server removes its socket and lock file, then
// SIGKILL for one that does not go. The returned channel is closed once it
// has exited.
func reap(t testing.TB, cmd *exec.Cmd) <-chan struct{} {
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		if cmd.Process.Signal(syscall.SIGTERM) == nil {
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Second):
			}
		}
		cmd.Process.Kill()
		<-exited
	})
	return exited
}

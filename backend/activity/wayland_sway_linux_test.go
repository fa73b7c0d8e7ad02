package activity

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

// The sway tests run the Wayland source against a real compositor: sway
// with its headless backend, and wtype typing through the virtual keyboard
// protocol. Without them the tests are skipped, unless
// LASTSEEN_REQUIRE_DESKTOP=1 says they must run.

// waylandTool finds sway or wtype (Debian packages of the same names).
func waylandTool(t *testing.T, name string) string {
	t.Helper()
	p, err := testutil.LookTool(name)
	if err != nil {
		testutil.Missing(t, testutil.RequireDesktop, "%v (Debian package %s; `make deps-test` installs it)", err, name)
	}
	return p
}

// swayStart bounds how long sway may take to listen: seconds on a loaded
// two-core machine.
const swayStart = 30 * time.Second

// startSway starts a headless sway in a runtime directory of its own and
// returns the environment that reaches it. sway is stopped when the test
// ends, or killed with the test process.
func startSway(t *testing.T) func(string) string {
	t.Helper()
	bin := waylandTool(t, "sway")
	dir, err := os.MkdirTemp("", "lastseen-sway-") // 0700, as a runtime dir must be
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("xwayland disable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Env = []string{
		"XDG_RUNTIME_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"WLR_BACKENDS=headless", "WLR_LIBINPUT_NO_DEVICES=1",
	}
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	testutil.DieWithTest(cmd)
	if os.Geteuid() == 0 {
		// sway refuses to run as root, so a root test (CI) runs it as
		// nobody, in a runtime dir of nobody's; root still reaches its
		// socket.
		uid, gid := nobody()
		for _, p := range []string{dir, cfg} {
			if err := os.Chown(p, int(uid), int(gid)); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sway: %v", err)
	}
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

	var display string
	testutil.WaitNoError(t, "sway to listen", swayStart, func() error {
		select {
		case <-exited:
			return fmt.Errorf("sway exited: %s", lastLines(stderr.String(), 15))
		default:
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if n := e.Name(); strings.HasPrefix(n, "wayland-") && !strings.HasSuffix(n, ".lock") {
				c, err := net.Dial("unix", filepath.Join(dir, n))
				if err != nil {
					return err
				}
				c.Close()
				display = n
				return nil
			}
		}
		return fmt.Errorf("no socket in %s yet", dir)
	})
	return env("WAYLAND_DISPLAY", display, "XDG_RUNTIME_DIR", dir, "XDG_SESSION_TYPE", "wayland")
}

// nobody is the unprivileged user sway runs as under root.
func nobody() (uint32, uint32) {
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			gid = uint32(n)
		}
	}
	return uid, gid
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// TestWaylandSway: on a real sway, DetectIdle picks a Wayland source; the
// idle time appears one step after the last input and grows; WaitInput
// blocks while nobody types and returns when wtype types; then the idle
// time starts over from that input.
func TestWaylandSway(t *testing.T) {
	getenv := startSway(t)
	wtype := waylandTool(t, "wtype")
	ctx := context.Background()
	connected := time.Now()
	src, err := Config{Getenv: getenv}.DetectIdle(ctx)
	if err != nil {
		t.Fatalf("DetectIdle on sway: %v", err)
	}
	defer src.Close()
	t.Logf("idle source on sway: %q", src.Name())
	if n := src.Name(); n != WaylandIdleNotifyName && n != WaylandKDEIdleName {
		t.Fatalf("Name = %q, want a Wayland source", n)
	}
	w, ok := src.(*waylandIdle)
	if !ok {
		t.Fatalf("the source is a %T", src)
	}
	idle := func() time.Duration {
		t.Helper()
		d, err := src.Idle(ctx)
		if err != nil {
			t.Fatalf("Idle: %v", err)
		}
		return d
	}
	// idledAt is when the source took the compositor's idled event.
	idledAt := func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.last.Add(waylandStep)
	}
	waitIdled := func(what string) time.Duration {
		t.Helper()
		var d time.Duration
		testutil.WaitUntil(t, what, eventWait, func() bool {
			d = idle()
			return d > 0
		})
		if d < waylandStep {
			t.Fatalf("%s: idle %v, below the notification's %v", what, d, waylandStep)
		}
		return d
	}

	// Nobody has typed: the compositor counts from the notification.
	waitIdled("the first idled")
	t.Logf("first idled %v after connecting (notification timeout %v)",
		idledAt().Sub(connected).Round(time.Millisecond), waylandStep)

	for round := range 3 {
		var sent atomic.Bool
		type result struct {
			err  error
			sent bool
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			err := w.WaitInput(ctx)
			done <- result{err, sent.Load(), time.Now()}
		}()
		// A second of idle time passes while the wait is pending: a wait
		// that ended on time rather than input is caught below by having
		// ended before the input was sent.
		from := idle()
		testutil.WaitUntil(t, "the idle time to grow by a second", eventWait, func() bool {
			return idle() >= from+time.Second
		})
		sent.Store(true)
		typed := time.Now()
		cmd := exec.Command(wtype, "x")
		cmd.Env = []string{"WAYLAND_DISPLAY=" + getenv("WAYLAND_DISPLAY"), "XDG_RUNTIME_DIR=" + getenv("XDG_RUNTIME_DIR")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("wtype: %v: %s", err, out)
		}
		typedEnd := time.Now()
		var r result
		select {
		case r = <-done:
		case <-time.After(eventWait):
			t.Fatalf("round %d: WaitInput still blocked %v after wtype typed", round, eventWait)
		}
		if !r.sent {
			t.Fatalf("round %d: WaitInput returned %v before any input", round, r.err)
		}
		if r.err != nil {
			t.Fatalf("round %d: WaitInput after input: %v", round, r.err)
		}
		// The derived idle time never exceeds the true one: the key went
		// out after typed.
		if d := idle(); d > time.Since(typed) {
			t.Fatalf("round %d: idle %v right after input typed %v ago", round, d, time.Since(typed))
		}
		d := waitIdled("idled after the input")
		// Nor does it fall short of it by more than the event's delivery;
		// wtype's run bounds when the key went out.
		slack := 500 * time.Millisecond
		if upper, lower := time.Since(typed), time.Since(typedEnd)-slack; d > upper || d < lower {
			t.Fatalf("round %d: idle %v, want between %v and %v", round, d, lower, upper)
		}
		t.Logf("round %d: resumed seen %v after wtype started (wtype ran %v); idled seen %v–%v after the key (timeout %v)",
			round, r.at.Sub(typed).Round(time.Millisecond), typedEnd.Sub(typed).Round(time.Millisecond),
			idledAt().Sub(typedEnd).Round(time.Millisecond), idledAt().Sub(typed).Round(time.Millisecond), waylandStep)
	}
}

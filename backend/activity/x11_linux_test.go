package activity

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

func TestX11Session(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want bool
	}{
		{"no display", env(), false},
		{"x11 session", env("DISPLAY", ":0", "XDG_SESSION_TYPE", "x11"), true},
		{"display, session type unset", env("DISPLAY", ":0"), true},
		{"wayland session with Xwayland", env("DISPLAY", ":0", "XDG_SESSION_TYPE", "wayland", "WAYLAND_DISPLAY", "wayland-0"), false},
		{"wayland session type alone", env("DISPLAY", ":0", "XDG_SESSION_TYPE", "wayland"), false},
		{"unset type but wayland display", env("DISPLAY", ":0", "WAYLAND_DISPLAY", "wayland-0"), false},
		{"tty type from a terminal", env("DISPLAY", ":1", "XDG_SESSION_TYPE", "tty"), true},
		{"explicit x11 wins over a stray wayland display", env("DISPLAY", ":0", "XDG_SESSION_TYPE", "x11", "WAYLAND_DISPLAY", "wayland-0"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := x11Session(tt.env); got != tt.want {
				t.Errorf("x11Session = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestX11IdleFollowsInput reads the idle counter of a real X server and
// sees it drop back to nearly zero when xdotool moves the pointer.
func TestX11IdleFollowsInput(t *testing.T) {
	display := testutil.StartXvfb(t)
	xdotool := needTool(t, "xdotool")
	ctx := context.Background()
	src, err := Config{Getenv: env("DISPLAY", display)}.DetectIdle(ctx)
	if err != nil {
		t.Fatalf("DetectIdle: %v", err)
	}
	defer src.Close()
	if src.Name() != X11Name {
		t.Fatalf("Name = %q, want %q", src.Name(), X11Name)
	}

	// Nobody has touched the new server: idle grows.
	var idle time.Duration
	for deadline := time.Now().Add(5 * time.Second); idle < 400*time.Millisecond; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("idle stuck at %v", idle)
		}
		if idle, err = src.Idle(ctx); err != nil {
			t.Fatal(err)
		}
	}

	for i, pos := range [][2]string{{"17", "23"}, {"301", "199"}} {
		before := time.Now()
		cmd := exec.Command(xdotool, "mousemove", pos[0], pos[1])
		cmd.Env = []string{"DISPLAY=" + display}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xdotool: %v: %s", err, out)
		}
		after, err := src.Idle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The input came after before, so the counter cannot exceed the
		// time since then, however slowly xdotool ran on a busy machine
		// (a few ms of slack for the server's clock ticks).
		if since := time.Since(before); after >= idle || after > since+20*time.Millisecond {
			t.Fatalf("move %d: idle %v after input %v ago (was %v), want the input counted", i, after, since, idle)
		}
		time.Sleep(300 * time.Millisecond)
		if idle, err = src.Idle(ctx); err != nil {
			t.Fatal(err)
		}
		if idle < 250*time.Millisecond {
			t.Fatalf("move %d: idle %v after 300 ms without input", i, idle)
		}
	}
}

// TestX11WaitInput waits for input on a real X server: the wait blocks while
// nobody touches it, returns within a moment of xdotool input, honours its
// context, and fails rather than hanging when the connection closes.
func TestX11WaitInput(t *testing.T) {
	display := testutil.StartXvfb(t)
	xdotool := needTool(t, "xdotool")
	ctx := context.Background()
	src, err := Config{Getenv: env("DISPLAY", display)}.DetectIdle(ctx)
	if err != nil {
		t.Fatalf("DetectIdle: %v", err)
	}
	defer src.Close()
	w, ok := src.(InputWaiter)
	if !ok {
		t.Fatalf("the X11 source (%T) cannot wait for input on a server with SYNC", src)
	}
	x := 10
	move := func() {
		t.Helper()
		x += 37 // a new position each time, or the server sees no motion
		cmd := exec.Command(xdotool, "mousemove", strconv.Itoa(x), "50")
		cmd.Env = []string{"DISPLAY=" + display}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xdotool: %v: %s", err, out)
		}
	}
	// waitIdle lets the idle time grow past the window in which input
	// counts as just happened.
	waitIdle := func() {
		t.Helper()
		for deadline := time.Now().Add(eventWait); ; time.Sleep(100 * time.Millisecond) {
			d, err := src.Idle(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d > inputWindow+200*time.Millisecond {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("idle stuck at %v", d)
			}
		}
	}
	start := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() { done <- w.WaitInput(ctx) }()
		return done
	}

	// A second connection watches the server's idle counter while the
	// source under test waits.
	probe, err := openX11(ctx, display)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for round := range 3 { // alarms are destroyed and their IDs reused
		waitIdle()
		var sent atomic.Bool
		type result struct {
			err  error
			sent bool // whether the input had been sent when the wait returned
		}
		done := make(chan result, 1)
		go func() {
			err := w.WaitInput(ctx)
			done <- result{err, sent.Load()}
		}()
		// A full second of the server's own idle time passes while the wait
		// is pending: a wait that wrongly ends on time rather than on input
		// ends in it, and is caught below by having ended before the input
		// was sent, however long it took to do so.
		from, err := probe.Idle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitUntil(t, "the server's idle time to grow by a second", eventWait, func() bool {
			d, err := probe.Idle(ctx)
			return err == nil && d >= from+time.Second
		})
		sent.Store(true)
		move()
		moved := time.Now()
		select {
		case r := <-done:
			if !r.sent {
				t.Fatalf("round %d: WaitInput returned %v without input", round, r.err)
			}
			if r.err != nil {
				t.Fatalf("round %d: WaitInput after input: %v", round, r.err)
			}
			t.Logf("round %d: input noticed after %v", round, time.Since(moved).Round(time.Millisecond))
		case <-time.After(eventWait):
			t.Fatalf("round %d: WaitInput still blocked %v after input", round, eventWait)
		}
	}

	t.Run("input just before the call counts", func(t *testing.T) {
		move()
		wctx, cancel := context.WithTimeout(ctx, eventWait)
		defer cancel()
		if err := w.WaitInput(wctx); err != nil {
			t.Fatalf("WaitInput right after input: %v", err)
		}
	})

	t.Run("context", func(t *testing.T) {
		waitIdle()
		wctx, cancel := context.WithCancel(ctx)
		done := start(wctx)
		time.Sleep(300 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitInput after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(eventWait):
			t.Fatal("WaitInput ignored its context")
		}
		if err := w.WaitInput(wctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitInput with a done context = %v", err)
		}
		// The source still answers after the abandoned wait.
		if _, err := src.Idle(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("closed connection", func(t *testing.T) {
		waitIdle()
		done := start(ctx)
		time.Sleep(300 * time.Millisecond)
		src.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("WaitInput reported input when the connection closed")
			}
		case <-time.After(eventWait):
			t.Fatal("WaitInput hangs after Close")
		}
		if err := w.WaitInput(ctx); err == nil {
			t.Fatal("WaitInput after Close succeeded")
		}
	})
}

// TestX11NeverReadOnWayland: with a live X server on DISPLAY but a Wayland
// session, the X11 counter must not be offered.
func TestX11NeverReadOnWayland(t *testing.T) {
	display := testutil.StartXvfb(t)
	_, err := Config{Getenv: env("DISPLAY", display, "XDG_SESSION_TYPE", "wayland")}.DetectIdle(context.Background())
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("DetectIdle on Wayland without a bus = %v, want ErrUnsupported", err)
	}
	if strings.Contains(err.Error(), X11Name) {
		t.Errorf("error %q mentions the X11 source: it was tried", err)
	}
	if !strings.Contains(err.Error(), "DBUS_SESSION_BUS_ADDRESS") {
		t.Errorf("error %q does not say why the bus sources failed", err)
	}
}

func TestX11ClosedServerIsAnError(t *testing.T) {
	display := testutil.StartXvfb(t)
	src, err := openX11(context.Background(), display)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if d, err := src.Idle(ctx); err == nil {
		t.Fatalf("Idle after Close = %v, want an error", d)
	}
}

func TestDetectIdleWithNothing(t *testing.T) {
	_, err := Config{Getenv: env()}.DetectIdle(context.Background())
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	for _, name := range []string{MutterName, ScreenSaverName} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func BenchmarkX11Idle(b *testing.B) {
	display := testutil.StartXvfb(b)
	src, err := openX11(context.Background(), display)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := src.Idle(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

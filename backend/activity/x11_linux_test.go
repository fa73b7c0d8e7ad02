package activity

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	display := startXvfb(t)
	xdotool := needTool(t, "xdotool", "xdotool")
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
		cmd := exec.Command(xdotool, "mousemove", pos[0], pos[1])
		cmd.Env = []string{"DISPLAY=" + display}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xdotool: %v: %s", err, out)
		}
		after, err := src.Idle(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after >= idle || after > 250*time.Millisecond {
			t.Fatalf("move %d: idle %v after input (was %v), want near zero", i, after, idle)
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

// TestX11NeverReadOnWayland: with a live X server on DISPLAY but a Wayland
// session, the X11 counter must not be offered.
func TestX11NeverReadOnWayland(t *testing.T) {
	display := startXvfb(t)
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
	display := startXvfb(t)
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
	display := startXvfb(b)
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

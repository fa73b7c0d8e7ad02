package activity

import (
	"slices"
	"testing"
)

// Diagnostics shows the idle backends in the order Detect tries them; the
// order is the session's: X11's counter only in X11, the compositor's idle
// protocols only on Wayland, the desktops' D-Bus monitors in both.
func TestIdleOrder(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name   string
		getenv func(string) string
		want   []string
	}{
		{"x11", env("DISPLAY", ":0", "XDG_SESSION_TYPE", "x11"), []string{X11Name, MutterName, ScreenSaverName}},
		{"wayland", env("DISPLAY", ":0", "WAYLAND_DISPLAY", "wayland-1", "XDG_SESSION_TYPE", "wayland"),
			[]string{MutterName, ScreenSaverName, extIdleNotify.name, kdeIdle.name}},
		{"no display", env(), []string{MutterName, ScreenSaverName}},
	}
	for _, tc := range tests {
		if got := (Config{Getenv: tc.getenv}).IdleOrder(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: order %q, want %q", tc.name, got, tc.want)
		}
	}
}

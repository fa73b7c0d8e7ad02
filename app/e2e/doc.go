//go:build linux

// Package e2e runs the built desktop binaries as a person would, on a real X
// server (Xvfb) with a private session bus standing in for the panel: the
// tray's "Open dashboard" opens the window, real input turns the user active
// and its absence idle (read from the window's own title), the window closes
// the way a window manager closes it, and nothing of it is left behind while
// the agent keeps beating. It also measures what an open, untouched dashboard
// costs next to an empty Wails window (scripts/bench-window.sh).
//
// The package holds only tests. They need the binaries in build/bin (or
// LASTSEEN_BIN_DIR) and Xvfb, xdotool, dbus-daemon and ImageMagick's import,
// and run only when asked: LASTSEEN_DESKTOP_E2E=1 (scripts/desktop-e2e.sh)
// for the acceptance test, LASTSEEN_WINDOW_COST=1 for the benchmark.
package e2e

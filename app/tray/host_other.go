//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package tray

import (
	"context"
	"errors"
	"log/slog"

	"fyne.io/systray"
)

// errNoSessionBus never happens here: Windows and macOS always have a
// notification area.
var errNoSessionBus = errors.New("no D-Bus session bus")

// HostAvailable reports whether a tray host would show our icon: Windows'
// notification area and macOS's menu bar are always there.
func HostAvailable(context.Context) (bool, error) { return true, nil }

func watchHost(context.Context, *slog.Logger) error { return nil }

// runNative runs the native loop on this (main) thread, as macOS requires,
// with ready first and loop beside it until it has the library quit.
func runNative(ready, loop func()) {
	systray.Run(func() {
		ready()
		go loop()
	}, nil)
}

//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package tray

import (
	"context"
	"errors"
	"log/slog"
)

// errNoSessionBus never happens here: Windows and macOS always have a
// notification area.
var errNoSessionBus = errors.New("no D-Bus session bus")

// HostAvailable reports whether a tray host would show our icon: Windows'
// notification area and macOS's menu bar are always there.
func HostAvailable(context.Context) (bool, error) { return true, nil }

func watchHost(context.Context, *slog.Logger) error { return nil }

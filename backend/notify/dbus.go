//go:build !windows && !darwin

package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/godbus/dbus/v5"
)

// The freedesktop notification service (Desktop Notifications
// Specification 1.2), which every Linux desktop and most bars provide.
const (
	notificationsName  = "org.freedesktop.Notifications"
	notificationsPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	notificationsIface = "org.freedesktop.Notifications"
	// desktopEntry names our .desktop file, so the desktop can show our
	// icon and group our notifications.
	desktopEntry = "lastseen"
)

// Desktop is this system's notification service: org.freedesktop.Notifications
// on the session bus.
func Desktop() Sender { return DBus{} }

// DBus shows notifications through org.freedesktop.Notifications.Notify.
// It connects for each notification (there are at most a few an hour), so
// a session bus that restarted, or a notification daemon that started
// late, is simply used the next time.
type DBus struct {
	// Address is the bus; empty: the session bus
	// ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus).
	Address string
}

// Send calls Notify and waits for the notification's id.
func (b DBus) Send(ctx context.Context, n Notification) error {
	addr := b.Address
	if addr == "" {
		var err error
		if addr, err = sessionBus(); err != nil {
			return err
		}
	}
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	hints := map[string]dbus.Variant{"desktop-entry": dbus.MakeVariant(desktopEntry)}
	var id uint32
	err = conn.Object(notificationsName, notificationsPath).CallWithContext(ctx,
		notificationsIface+".Notify", 0,
		AppName, uint32(0), "", n.Title, n.Body, []string{}, hints, int32(-1),
	).Store(&id)
	if err != nil {
		return fmt.Errorf("%s.Notify: %w", notificationsIface, err)
	}
	return nil
}

// sessionBus finds the session bus without ever launching one.
func sessionBus() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if _, err := os.Stat(p); err == nil {
			return "unix:path=" + p, nil
		}
	}
	return "", errors.New("no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist")
}

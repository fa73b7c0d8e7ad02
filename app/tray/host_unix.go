//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// On these systems the tray is a StatusNotifierItem on the session bus: it
// shows only when a panel runs a StatusNotifierWatcher with a host behind
// it. GNOME without the AppIndicator extension, bare window managers and
// headless sessions have none; the item is then exported but nobody draws it.
const (
	watcherName = "org.kde.StatusNotifierWatcher"
	watcherPath = "/StatusNotifierWatcher"
)

// errNoSessionBus marks the absence of a session bus, where no tray (and no
// D-Bus menu) can exist at all.
var errNoSessionBus = errors.New("no D-Bus session bus")

// HostAvailable reports whether a tray host would show our icon now: a
// StatusNotifierWatcher owns its name on the session bus and says a host is
// registered. The error says why there is none when the bus itself is
// missing.
func HostAvailable(ctx context.Context) (bool, error) {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("%w: %v", errNoSessionBus, err)
	}
	defer conn.Close()
	return hostOn(conn)
}

func hostOn(conn *dbus.Conn) (bool, error) {
	var has bool
	err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has)
	if err != nil {
		return false, fmt.Errorf("ask the session bus for %s: %w", watcherName, err)
	}
	if !has {
		return false, nil
	}
	v, err := conn.Object(watcherName, watcherPath).GetProperty(watcherName + ".IsStatusNotifierHostRegistered")
	if err != nil {
		// A watcher that cannot answer is still a watcher; trust it.
		return true, nil
	}
	registered, ok := v.Value().(bool)
	return !ok || registered, nil
}

// watchHost logs once whether a tray host exists, then logs each time one
// appears or goes away (a panel restart), until ctx ends. It returns
// errNoSessionBus when there is no bus to show a tray on.
func watchHost(ctx context.Context, log *slog.Logger) error {
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		log.Warn("no system tray: there is no D-Bus session bus; the agent keeps running without a tray icon (open the dashboard with lastseen)",
			"error", err)
		return fmt.Errorf("%w: %v", errNoSessionBus, err)
	}
	// Subscribe before asking, so a watcher starting in between is not missed.
	err = conn.AddMatchSignal(
		dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, watcherName),
	)
	if err != nil {
		conn.Close()
		return fmt.Errorf("watch for a tray host: %w", err)
	}
	signals := make(chan *dbus.Signal, 8)
	conn.Signal(signals)

	available, err := hostOn(conn)
	if err != nil {
		conn.Close()
		return err
	}
	if available {
		log.Info("system tray host found; showing the tray icon")
	} else {
		log.Warn("no system tray host (no StatusNotifierItem host on the session bus); the agent keeps running without a tray icon (open the dashboard with lastseen)")
	}
	go func() {
		defer conn.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case sig, ok := <-signals:
				if !ok || sig == nil {
					return
				}
				if len(sig.Body) < 3 {
					continue
				}
				newOwner, _ := sig.Body[2].(string)
				now := newOwner != ""
				if now == available {
					continue
				}
				available = now
				if now {
					log.Info("a system tray host appeared; showing the tray icon")
				} else {
					log.Warn("the system tray host went away; the agent keeps running without a tray icon")
				}
			}
		}
	}()
	return nil
}

// runNative runs ready, then exports the tray on the session bus, then runs
// loop until it returns. fyne's systray.Run exports the item while onReady
// runs on another goroutine, and an icon, tooltip or title set between its
// reading them for the export and its taking the exported properties as
// current is lost until it changes again: a tray that showed "Starting…"
// and a grey dot for as long as the agent stayed active. Building
// everything first and exporting it whole closes that gap.
func runNative(ready, loop func()) {
	start, end := systray.RunWithExternalLoop(nil, nil)
	ready()
	start()
	loop()
	end()
}

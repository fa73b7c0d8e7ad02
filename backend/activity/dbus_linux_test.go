package activity

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// saverService is a small org.freedesktop.ScreenSaver (or
// org.gnome.ScreenSaver) exported on a private bus, the way KDE's and
// GNOME's lockers answer.
type saverService struct {
	mu          sync.Mutex
	idleMs      uint32
	active      bool
	refuseIdle  bool // GNOME answers GetSessionIdleTime with an error
	calledNames []string
}

func (s *saverService) GetSessionIdleTime() (uint32, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calledNames = append(s.calledNames, "GetSessionIdleTime")
	if s.refuseIdle {
		return 0, dbus.NewError("org.freedesktop.DBus.Error.NotSupported", []any{"This method is not part of the idle inhibition specification"})
	}
	return s.idleMs, nil
}

func (s *saverService) GetActive() (bool, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, nil
}

func (s *saverService) setActive(conn *dbus.Conn, svc busService, active bool) error {
	s.mu.Lock()
	s.active = active
	s.mu.Unlock()
	return conn.Emit(svc.path, svc.iface+".ActiveChanged", active)
}

func exportSaver(t *testing.T, addr string, svc busService, s *saverService) *dbus.Conn {
	t.Helper()
	conn := serve(t, addr, svc.dest)
	if err := conn.Export(s, svc.path, svc.iface); err != nil {
		t.Fatal(err)
	}
	return conn
}

// mutterService is org.gnome.Mutter.IdleMonitor's Core monitor.
type mutterService struct{ idleMs uint64 }

func (m *mutterService) GetIdletime() (uint64, *dbus.Error) { return m.idleMs, nil }

func TestDetectIdleOverDBus(t *testing.T) {
	addr := startBus(t)
	ctx := context.Background()
	wayland := func() func(string) string {
		return env("DBUS_SESSION_BUS_ADDRESS", addr, "XDG_SESSION_TYPE", "wayland", "DISPLAY", ":99")
	}

	// GNOME-like first: a ScreenSaver that refuses idle times and no Mutter.
	gnomeish := &saverService{refuseIdle: true}
	saverConn := exportSaver(t, addr, freedesktopSaver, gnomeish)
	_, err := Config{Getenv: wayland()}.DetectIdle(ctx)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "NotSupported") {
		t.Fatalf("DetectIdle with a refusing ScreenSaver = %v, want ErrUnsupported naming the refusal", err)
	}

	// KDE-like: the ScreenSaver answers in milliseconds.
	gnomeish.mu.Lock()
	gnomeish.refuseIdle, gnomeish.idleMs = false, 61500
	gnomeish.mu.Unlock()
	src, err := Config{Getenv: wayland()}.DetectIdle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != ScreenSaverName {
		t.Errorf("Name = %q, want %q", src.Name(), ScreenSaverName)
	}
	if d, err := src.Idle(ctx); err != nil || d != 61500*time.Millisecond {
		t.Errorf("Idle = %v, %v; want 1m1.5s", d, err)
	}
	// The service going away is an error, never "idle 0".
	saverConn.Close()
	if d, err := src.Idle(ctx); err == nil {
		t.Errorf("Idle with the service gone = %v, want an error", d)
	}
	src.Close()

	// GNOME: Mutter's monitor wins over the ScreenSaver.
	exportSaver(t, addr, freedesktopSaver, &saverService{idleMs: 5})
	mconn := serve(t, addr, mutterIdle.dest)
	if err := mconn.Export(&mutterService{idleMs: 1234}, mutterIdle.path, mutterIdle.iface); err != nil {
		t.Fatal(err)
	}
	src, err = Config{Getenv: wayland()}.DetectIdle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Name() != MutterName {
		t.Errorf("Name = %q, want %q", src.Name(), MutterName)
	}
	if d, err := src.Idle(ctx); err != nil || d != 1234*time.Millisecond {
		t.Errorf("Idle = %v, %v; want 1.234s", d, err)
	}
}

func TestScreenSaverWatcher(t *testing.T) {
	for _, svc := range []busService{freedesktopSaver, gnomeSaver} {
		t.Run(svc.name, func(t *testing.T) {
			addr := startBus(t)
			saver := &saverService{}
			conn := exportSaver(t, addr, svc, saver)
			// Each signal the watcher takes stamps its event one second
			// later than the last, so an event tells which signal made it.
			at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
			var stamps atomic.Int64
			w, err := Config{
				Getenv: env("DBUS_SESSION_BUS_ADDRESS", addr, "DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
				Now:    func() time.Time { return at.Add(time.Duration(stamps.Add(1)) * time.Second) },
				NoGap:  true,
			}.DetectWatcher(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if w.Name() != svc.name {
				t.Errorf("Name = %q, want %q", w.Name(), svc.name)
			}
			ctx := context.Background()
			if l, err := w.LockedNow(ctx); err != nil || l {
				t.Errorf("LockedNow = %v, %v; want false", l, err)
			}
			if err := saver.setActive(conn, svc, true); err != nil { // signal 1
				t.Fatal(err)
			}
			if ev := waitEvent(t, w); ev.Kind != Locked || !ev.At.Equal(at.Add(time.Second)) || ev.Source != svc.name {
				t.Errorf("got %v, want locked at %v from %s", ev, at.Add(time.Second), svc.name)
			}
			if l, err := w.LockedNow(ctx); err != nil || !l {
				t.Errorf("LockedNow = %v, %v; want true", l, err)
			}
			// A signal of the same name on another path is not the locker's:
			// never taken, it stamps nothing.
			if err := conn.Emit("/elsewhere", svc.iface+".ActiveChanged", false); err != nil {
				t.Fatal(err)
			}
			// A repeat of the same state (signal 2) is dropped by the merge.
			if err := saver.setActive(conn, svc, true); err != nil {
				t.Fatal(err)
			}
			if err := saver.setActive(conn, svc, false); err != nil { // signal 3
				t.Fatal(err)
			}
			// The signals arrive in the order sent, so the next event is the
			// unlock of signal 3 only if neither the other path's signal
			// (an unlock stamped 2) nor the repeat (a lock) got through.
			if ev := waitEvent(t, w); ev.Kind != Unlocked || !ev.At.Equal(at.Add(3*time.Second)) {
				t.Errorf("got %v, want unlocked at %v", ev, at.Add(3*time.Second))
			}
			closeAndDrain(t, w)
		})
	}
}

func TestWatcherWithoutAnyBus(t *testing.T) {
	_, err := Config{Getenv: env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus"), NoGap: true}.DetectWatcher(context.Background())
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	// With the clock-gap detector there is always a watcher.
	w, err := Config{Getenv: env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")}.DetectWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Name() != GapName {
		t.Errorf("Name = %q, want %q", w.Name(), GapName)
	}
	if _, err := w.LockedNow(context.Background()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("LockedNow err = %v, want ErrUnsupported", err)
	}
}

package activity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// The inhibitor tests export small stand-ins for GNOME's session manager,
// the freedesktop PowerManagement service and logind on a private bus
// daemon; what is under test is our subscription, the calls we make and
// how their answers become a Signal.

// signalConfig points detection at addr for both buses and at no ALSA, so
// only the fake service under test can be found.
func signalConfig(t *testing.T, clk *setClock, kv ...string) SignalConfig {
	return SignalConfig{
		Getenv:     env(kv...),
		Now:        clk.Now,
		ProcAsound: filepath.Join(t.TempDir(), "no-asound"),
	}
}

func detectSignals(t *testing.T, c SignalConfig) SignalSource {
	t.Helper()
	src, err := c.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src
}

// gnomeSessionManager answers IsInhibited the way gnome-session does: true
// when any inhibitor held has one of the asked flags.
type gnomeSessionManager struct {
	mu    sync.Mutex
	held  uint32 // the union of the held inhibitors' flags
	asked []uint32
}

func (g *gnomeSessionManager) IsInhibited(flags uint32) (bool, *dbus.Error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, flags)
	return g.held&flags != 0, nil
}

// hold sets the held flags and announces an inhibitor added or removed.
func (g *gnomeSessionManager) hold(t *testing.T, conn *dbus.Conn, flags uint32, member string) {
	t.Helper()
	g.mu.Lock()
	g.held = flags
	g.mu.Unlock()
	if err := conn.Emit(gnomeSMPath, gnomeSMIface+"."+member, dbus.ObjectPath("/org/gnome/SessionManager/Inhibitor42")); err != nil {
		t.Fatal(err)
	}
}

func TestGnomeInhibitor(t *testing.T) {
	const idle = 8 // GsmInhibitorFlag's "idle", written out: what gnome-session defines
	addr := startBus(t)
	sm := &gnomeSessionManager{}
	conn := serve(t, addr, gnomeSMDest)
	if err := conn.Export(sm, gnomeSMPath, gnomeSMIface); err != nil {
		t.Fatal(err)
	}
	clk := &setClock{t: at(0)}
	src := detectSignals(t, signalConfig(t, clk, "DBUS_SESSION_BUS_ADDRESS", addr, "DBUS_SYSTEM_BUS_ADDRESS", addr))
	if got := src.Name(); got != GnomeInhibitName {
		t.Fatalf("Name = %q, want %q alone", got, GnomeInhibitName)
	}
	if got := src.Signal(); got != (Signal{}) {
		t.Fatalf("Signal with no inhibitor = %+v, want none", got)
	}

	// Each step changes the Signal, and the clock moves only once the
	// change is seen, so every stamp is exact. A step that must not count
	// (an inhibitor of another kind) comes as what is left when the idle
	// one goes: counting it would keep the Signal on.
	clk.set(at(1))
	sm.hold(t, conn, 4|idle, "InhibitorAdded") // suspend and idle
	waitSignal(t, src, Signal{Why: presence.ByMedia, Since: at(1)})
	clk.set(at(2))
	sm.hold(t, conn, 4, "InhibitorRemoved") // suspend alone
	waitSignal(t, src, Signal{Ended: at(2)})

	sm.mu.Lock()
	asked := slices.Clone(sm.asked)
	sm.mu.Unlock()
	if len(asked) < 2 || slices.ContainsFunc(asked, func(f uint32) bool { return f != idle }) {
		t.Errorf("IsInhibited asked with flags %v; want the idle flag %d at start and on each signal", asked, idle)
	}

	// The session manager quits while a video plays: its inhibitors are
	// gone with it.
	clk.set(at(3))
	sm.hold(t, conn, idle, "InhibitorAdded")
	waitSignal(t, src, Signal{Why: presence.ByMedia, Since: at(3), Ended: at(2)})
	clk.set(at(4))
	conn.Close()
	waitSignal(t, src, Signal{Ended: at(4)})
}

// powerManagement is org.freedesktop.PowerManagement.Inhibit.
type powerManagement struct {
	mu  sync.Mutex
	has bool
}

func (p *powerManagement) HasInhibit() (bool, *dbus.Error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.has, nil
}

func (p *powerManagement) set(t *testing.T, conn *dbus.Conn, has bool) {
	t.Helper()
	p.mu.Lock()
	p.has = has
	p.mu.Unlock()
	if err := conn.Emit(pmInhibitPath, pmInhibitIface+".HasInhibitChanged", has); err != nil {
		t.Fatal(err)
	}
}

func TestPowerManagementInhibitor(t *testing.T) {
	// KDE's and Xfce's power managers own both names; others one of them.
	for _, dest := range pmInhibitDests {
		t.Run(dest, func(t *testing.T) {
			addr := startBus(t)
			// Inhibited before detection: a video already playing counts
			// from the start.
			pm := &powerManagement{has: true}
			conn := serve(t, addr, dest)
			if err := conn.Export(pm, pmInhibitPath, pmInhibitIface); err != nil {
				t.Fatal(err)
			}
			clk := &setClock{t: at(0)}
			src := detectSignals(t, signalConfig(t, clk, "DBUS_SESSION_BUS_ADDRESS", addr, "DBUS_SYSTEM_BUS_ADDRESS", addr))
			if got := src.Name(); got != PMInhibitName {
				t.Fatalf("Name = %q, want %q alone", got, PMInhibitName)
			}
			if got, want := src.Signal(), (Signal{Why: presence.ByMedia, Since: at(0)}); got != want {
				t.Fatalf("Signal at start = %+v, want %+v", got, want)
			}

			clk.set(at(1))
			pm.set(t, conn, false)
			waitSignal(t, src, Signal{Ended: at(1)})
			clk.set(at(2))
			pm.set(t, conn, true)
			waitSignal(t, src, Signal{Why: presence.ByMedia, Since: at(2), Ended: at(1)})
			clk.set(at(3))
			pm.set(t, conn, false)
			waitSignal(t, src, Signal{Ended: at(3)})
		})
	}
}

// logindInhibitors is the part of org.freedesktop.login1.Manager that
// lists inhibitors.
type logindInhibitors struct {
	mu   sync.Mutex
	list []logindInhibitor
}

func (l *logindInhibitors) ListInhibitors() ([]logindInhibitor, *dbus.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list), nil
}

// set replaces the inhibitors and announces BlockInhibited the way logind
// does, either with the new value or as invalidated.
func (l *logindInhibitors) set(t *testing.T, conn *dbus.Conn, invalidate bool, list ...logindInhibitor) {
	t.Helper()
	l.mu.Lock()
	l.list = list
	l.mu.Unlock()
	var whats []string
	for _, in := range list {
		if in.Mode == "block" && !slices.Contains(whats, in.What) {
			whats = append(whats, in.What)
		}
	}
	changed := map[string]dbus.Variant{}
	invalidated := []string{}
	if invalidate {
		invalidated = append(invalidated, "BlockInhibited")
	} else {
		changed["BlockInhibited"] = dbus.MakeVariant(strings.Join(whats, ":"))
	}
	if err := conn.Emit(login1Path, propsIface+".PropertiesChanged", managerIface, changed, invalidated); err != nil {
		t.Fatal(err)
	}
}

func TestLogindIdleInhibitor(t *testing.T) {
	addr := startBus(t) // the system bus here; no session bus at all
	li := &logindInhibitors{}
	conn := serve(t, addr, login1Dest)
	if err := conn.Export(li, login1Path, managerIface); err != nil {
		t.Fatal(err)
	}
	clk := &setClock{t: at(0)}
	src := detectSignals(t, signalConfig(t, clk, "DBUS_SYSTEM_BUS_ADDRESS", addr))
	if got := src.Name(); got != LogindIdleName {
		t.Fatalf("Name = %q, want %q alone", got, LogindIdleName)
	}

	me, other := uint32(os.Getuid()), uint32(os.Getuid()+1)
	sleepLock := logindInhibitor{What: "sleep", Who: "us", Why: "final beat", Mode: "delay", UID: me, PID: 1}
	othersIdle := logindInhibitor{What: "idle", Who: "player", Why: "video", Mode: "block", UID: other, PID: 2}
	myIdleDelay := logindInhibitor{What: "idle", Who: "odd", Why: "delay is not a block", Mode: "delay", UID: me, PID: 3}
	myIdle := logindInhibitor{What: "sleep:idle", Who: "player", Why: "video", Mode: "block", UID: me, PID: 4}

	// Each step changes the Signal (see TestGnomeInhibitor). Another
	// user's idle lock and a non-blocking one say nothing about this user:
	// they are what is left when this user's lock goes.
	clk.set(at(1))
	li.set(t, conn, false, sleepLock, othersIdle, myIdleDelay, myIdle)
	waitSignal(t, src, Signal{Why: presence.ByMedia, Since: at(1)})
	clk.set(at(2))
	li.set(t, conn, false, sleepLock, othersIdle, myIdleDelay)
	waitSignal(t, src, Signal{Ended: at(2)})
	clk.set(at(3))
	li.set(t, conn, true, sleepLock, myIdle)
	waitSignal(t, src, Signal{Why: presence.ByMedia, Since: at(3), Ended: at(2)})
	// A BlockInhibited without "idle" answers without asking.
	clk.set(at(4))
	li.set(t, conn, false, sleepLock)
	waitSignal(t, src, Signal{Ended: at(4)})
}

func TestIdleBlocked(t *testing.T) {
	for _, tc := range []struct {
		list []logindInhibitor
		want bool
	}{
		{nil, false},
		{[]logindInhibitor{{What: "idle", Mode: "block", UID: 7}}, true},
		{[]logindInhibitor{{What: "sleep:idle:shutdown", Mode: "block", UID: 7}}, true},
		{[]logindInhibitor{{What: "idle", Mode: "block", UID: 8}}, false},
		{[]logindInhibitor{{What: "idle", Mode: "delay", UID: 7}}, false},
		{[]logindInhibitor{{What: "handle-lid-switch", Mode: "block", UID: 7}}, false},
		{[]logindInhibitor{{What: "idleish", Mode: "block", UID: 7}}, false},
	} {
		if got := idleBlocked(tc.list, 7); got != tc.want {
			t.Errorf("idleBlocked(%+v) = %v, want %v", tc.list, got, tc.want)
		}
	}
}

func TestDetectSignalsWithNothing(t *testing.T) {
	_, err := SignalConfig{
		Getenv:     env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none")),
		ProcAsound: filepath.Join(t.TempDir(), "no-asound"),
	}.Detect(context.Background())
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Detect with no bus and no ALSA = %v, want ErrUnsupported", err)
	}
}

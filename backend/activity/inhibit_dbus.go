//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// Names of the idle-inhibitor watchers.
const (
	GnomeInhibitName = "gnome-session-inhibitor"
	PMInhibitName    = "powermanagement-inhibitor"
	LogindIdleName   = "logind-idle-inhibitor"
)

// gnomeInhibitIdle is GsmInhibitorFlag's "idle" bit: the session must not
// be marked idle (what video players and presentations ask for).
const gnomeInhibitIdle uint32 = 8

const (
	gnomeSMDest  = "org.gnome.SessionManager"
	gnomeSMPath  = dbus.ObjectPath("/org/gnome/SessionManager")
	gnomeSMIface = "org.gnome.SessionManager"

	pmInhibitPath  = dbus.ObjectPath("/org/freedesktop/PowerManagement/Inhibit")
	pmInhibitIface = "org.freedesktop.PowerManagement.Inhibit"

	busDest  = "org.freedesktop.DBus"
	busPath  = dbus.ObjectPath("/org/freedesktop/DBus")
	busIface = "org.freedesktop.DBus"
)

// pmInhibitDests: KDE's PowerDevil and xfce4-power-manager own both names
// for the same object; other implementations own only one of them.
var pmInhibitDests = []string{"org.freedesktop.PowerManagement.Inhibit", "org.freedesktop.PowerManagement"}

// Every inhibitor watcher waits for D-Bus signals and asks the service
// again only when one arrives: no wakeups while nothing changes. Each also
// follows its service's NameOwnerChanged, so a service that quits (the
// session ending, a crash) stops counting at once rather than keeping the
// user present with a stale "inhibited".
func inhibitCandidates(c SignalConfig) []candidate[*signalWatcher] {
	return []candidate[*signalWatcher]{
		{GnomeInhibitName, func(ctx context.Context) (*signalWatcher, error) { return openGnomeInhibit(ctx, c) }},
		{PMInhibitName, func(ctx context.Context) (*signalWatcher, error) { return openPMInhibit(ctx, c) }},
		{LogindIdleName, func(ctx context.Context) (*signalWatcher, error) { return openLogindIdle(ctx, c) }},
	}
}

// openGnomeInhibit watches GNOME's session manager: IsInhibited(idle) now,
// and again on every InhibitorAdded/InhibitorRemoved (an inhibitor of
// another kind changes nothing, which the re-check tells). On GNOME, apps'
// org.freedesktop.ScreenSaver.Inhibit and the portal's Inhibit land here.
func openGnomeInhibit(ctx context.Context, c SignalConfig) (*signalWatcher, error) {
	addr, err := sessionBusAddress(c.Getenv)
	if err != nil {
		return nil, err
	}
	check := func(ctx context.Context, conn *dbus.Conn, dest string) (bool, error) {
		var on bool
		err := conn.Object(dest, gnomeSMPath).
			CallWithContext(ctx, gnomeSMIface+".IsInhibited", dbus.FlagNoAutoStart, gnomeInhibitIdle).Store(&on)
		if err != nil {
			return false, fmt.Errorf("%s: IsInhibited: %w", GnomeInhibitName, namedErr(err))
		}
		return on, nil
	}
	return openBusSignal(ctx, c, busSignalSpec{
		name: GnomeInhibitName, addr: addr, dests: []string{gnomeSMDest}, check: check,
		rules: func(dest string) [][]dbus.MatchOption {
			return [][]dbus.MatchOption{
				{dbus.WithMatchSender(dest), dbus.WithMatchObjectPath(gnomeSMPath),
					dbus.WithMatchInterface(gnomeSMIface), dbus.WithMatchMember("InhibitorAdded")},
				{dbus.WithMatchSender(dest), dbus.WithMatchObjectPath(gnomeSMPath),
					dbus.WithMatchInterface(gnomeSMIface), dbus.WithMatchMember("InhibitorRemoved")},
			}
		},
		handle: func(ctx context.Context, sig *dbus.Signal, recheck func(context.Context) (bool, error)) (bool, bool, error) {
			if sig.Path != gnomeSMPath ||
				(sig.Name != gnomeSMIface+".InhibitorAdded" && sig.Name != gnomeSMIface+".InhibitorRemoved") {
				return false, false, nil
			}
			on, err := recheck(ctx)
			return on, err == nil, err
		},
	})
}

// openPMInhibit watches org.freedesktop.PowerManagement.Inhibit (KDE,
// Xfce): HasInhibit now, then HasInhibitChanged carries the new state.
// On KDE this is "the session must not be interrupted", which the screen
// locker's ScreenSaver.Inhibit (video) sets as well as suspend inhibitors;
// a player that blocks only suspend for audio counts too there.
func openPMInhibit(ctx context.Context, c SignalConfig) (*signalWatcher, error) {
	addr, err := sessionBusAddress(c.Getenv)
	if err != nil {
		return nil, err
	}
	check := func(ctx context.Context, conn *dbus.Conn, dest string) (bool, error) {
		var on bool
		err := conn.Object(dest, pmInhibitPath).
			CallWithContext(ctx, pmInhibitIface+".HasInhibit", dbus.FlagNoAutoStart).Store(&on)
		if err != nil {
			return false, fmt.Errorf("%s: HasInhibit: %w", PMInhibitName, namedErr(err))
		}
		return on, nil
	}
	return openBusSignal(ctx, c, busSignalSpec{
		name: PMInhibitName, addr: addr, dests: pmInhibitDests, check: check,
		rules: func(dest string) [][]dbus.MatchOption {
			return [][]dbus.MatchOption{{
				dbus.WithMatchSender(dest), dbus.WithMatchObjectPath(pmInhibitPath),
				dbus.WithMatchInterface(pmInhibitIface), dbus.WithMatchMember("HasInhibitChanged"),
			}}
		},
		handle: func(_ context.Context, sig *dbus.Signal, _ func(context.Context) (bool, error)) (bool, bool, error) {
			if sig.Path != pmInhibitPath || sig.Name != pmInhibitIface+".HasInhibitChanged" || len(sig.Body) != 1 {
				return false, false, nil
			}
			on, ok := sig.Body[0].(bool)
			return on, ok, nil
		},
	})
}

// logindInhibitor is one entry of login1.Manager.ListInhibitors, a(ssssuu).
type logindInhibitor struct {
	What, Who, Why, Mode string
	UID, PID             uint32
}

// idleBlocked reports whether any of list is an "idle" inhibitor in
// "block" mode held by uid. Other users' locks (another seat, a system
// service) say nothing about this user; "delay" mode does not exist for
// idle but is ignored should it appear.
func idleBlocked(list []logindInhibitor, uid uint32) bool {
	return slices.ContainsFunc(list, func(in logindInhibitor) bool {
		return in.Mode == "block" && in.UID == uid && slices.Contains(strings.Split(in.What, ":"), "idle")
	})
}

// openLogindIdle watches logind's idle inhibitors on the system bus
// (systemd-inhibit --what=idle, some players and compositors' idle-inhibit
// bridges). logind has no signal per inhibitor, but it emits
// PropertiesChanged for BlockInhibited (the union of the blocked "what"s)
// on every block inhibitor taken or released, so that is the cue to read
// ListInhibitors again; a BlockInhibited without "idle" answers at once.
func openLogindIdle(ctx context.Context, c SignalConfig) (*signalWatcher, error) {
	uid := uint32(os.Getuid())
	check := func(ctx context.Context, conn *dbus.Conn, dest string) (bool, error) {
		var list []logindInhibitor
		err := conn.Object(dest, login1Path).
			CallWithContext(ctx, managerIface+".ListInhibitors", 0).Store(&list)
		if err != nil {
			return false, fmt.Errorf("%s: ListInhibitors: %w", LogindIdleName, namedErr(err))
		}
		return idleBlocked(list, uid), nil
	}
	return openBusSignal(ctx, c, busSignalSpec{
		name: LogindIdleName, addr: systemBusAddress(c.Getenv), dests: []string{login1Dest}, check: check,
		rules: func(dest string) [][]dbus.MatchOption {
			return [][]dbus.MatchOption{{
				dbus.WithMatchSender(dest), dbus.WithMatchObjectPath(login1Path),
				dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"),
				dbus.WithMatchArg(0, managerIface),
			}}
		},
		handle: func(ctx context.Context, sig *dbus.Signal, recheck func(context.Context) (bool, error)) (bool, bool, error) {
			if sig.Path != login1Path || sig.Name != propsIface+".PropertiesChanged" || len(sig.Body) != 3 {
				return false, false, nil
			}
			iface, _ := sig.Body[0].(string)
			changed, _ := sig.Body[1].(map[string]dbus.Variant)
			invalidated, _ := sig.Body[2].([]string)
			if iface != managerIface {
				return false, false, nil
			}
			if v, ok := changed["BlockInhibited"]; ok {
				if s, ok := v.Value().(string); ok && !slices.Contains(strings.Split(s, ":"), "idle") {
					return false, true, nil
				}
			} else if !slices.Contains(invalidated, "BlockInhibited") {
				return false, false, nil
			}
			on, err := recheck(ctx)
			return on, err == nil, err
		},
	})
}

// busSignalSpec describes one D-Bus inhibitor watcher.
type busSignalSpec struct {
	name  string
	addr  string   // the bus
	dests []string // well-known names to look for, the first owned wins
	// rules are the match rules for the service's signals, given the name found.
	rules func(dest string) [][]dbus.MatchOption
	// check asks the service, owning dest, for the state.
	check func(ctx context.Context, conn *dbus.Conn, dest string) (bool, error)
	// handle maps a signal to a state, calling recheck (check) when the
	// signal only says that something changed: ok false means the signal
	// says nothing (or the re-check failed, err set).
	handle func(ctx context.Context, sig *dbus.Signal, recheck func(context.Context) (bool, error)) (on, ok bool, err error)
}

// openBusSignal dials a private connection (never auto-starting a service
// or a bus), finds the service, subscribes, then reads the state: in that
// order, so that a change between the read and the subscription cannot be
// missed.
func openBusSignal(ctx context.Context, c SignalConfig, spec busSignalSpec) (*signalWatcher, error) {
	conn, err := dialBus(ctx, spec.addr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*signalWatcher, error) {
		conn.Close()
		return nil, err
	}
	dest := ""
	for _, d := range spec.dests {
		ok, err := hasOwner(ctx, conn, d)
		if err != nil {
			return fail(err)
		}
		if ok {
			dest = d
			break
		}
	}
	if dest == "" {
		return fail(fmt.Errorf("%s is not on the bus", strings.Join(spec.dests, " or ")))
	}
	rules := append(spec.rules(dest), []dbus.MatchOption{
		dbus.WithMatchSender(busDest), dbus.WithMatchObjectPath(busPath),
		dbus.WithMatchInterface(busIface), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, dest),
	})
	for _, r := range rules {
		if err := conn.AddMatchSignalContext(ctx, r...); err != nil {
			return fail(fmt.Errorf("%s: subscribe: %w", spec.name, err))
		}
	}
	sigs := make(chan *dbus.Signal, 16)
	conn.Signal(sigs)
	on, err := spec.check(ctx, conn, dest)
	if err != nil {
		conn.RemoveSignal(sigs)
		return fail(err)
	}
	w := &busSignalWatch{spec: spec, dest: dest, conn: conn, sigs: sigs, logger: c.Logger}
	return &signalWatcher{
		name: spec.name, why: presence.ByMedia, on: on, run: w.run,
		close: func() error {
			conn.RemoveSignal(sigs)
			return conn.Close()
		},
	}, nil
}

// busSignalWatch is the loop of one D-Bus inhibitor watcher.
type busSignalWatch struct {
	spec   busSignalSpec
	dest   string
	conn   *dbus.Conn
	sigs   chan *dbus.Signal
	logger *slog.Logger
}

func (w *busSignalWatch) run(ctx context.Context, report func(bool)) {
	failing := false
	for {
		var sig *dbus.Signal
		select {
		case <-ctx.Done():
			return
		case s, ok := <-w.sigs:
			if !ok {
				// The bus went away (session ended, daemon restarted):
				// nothing can be known any more, so nothing counts.
				w.logger.Warn("bus connection lost; this presence signal stops", logBackend, w.spec.name)
				report(false)
				return
			}
			sig = s
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		on, ok, err := w.handleOne(hctx, sig)
		cancel()
		switch {
		case err != nil:
			// Keep the last state: one failed call must not end a call
			// or a video. Log the first failure, not each.
			if !failing && ctx.Err() == nil {
				w.logger.Warn("reading a presence signal failed", logBackend, w.spec.name, logErr, err)
				failing = true
			}
		case ok:
			failing = false
			report(on)
		}
	}
}

func (w *busSignalWatch) handleOne(ctx context.Context, sig *dbus.Signal) (on, ok bool, err error) {
	if sig.Path == busPath && sig.Name == busIface+".NameOwnerChanged" {
		if len(sig.Body) != 3 {
			return false, false, nil
		}
		name, _ := sig.Body[0].(string)
		owner, _ := sig.Body[2].(string)
		if name != w.dest {
			return false, false, nil
		}
		if owner == "" {
			return false, true, nil // the service quit: its inhibitors are gone
		}
		on, err := w.recheck(ctx)
		return on, err == nil, err
	}
	return w.spec.handle(ctx, sig, w.recheck)
}

func (w *busSignalWatch) recheck(ctx context.Context) (bool, error) {
	return w.spec.check(ctx, w.conn, w.dest)
}

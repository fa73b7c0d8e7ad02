//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Backend names of the D-Bus sources.
const (
	MutterName           = "mutter-idlemonitor"
	ScreenSaverName      = "freedesktop-screensaver"
	GnomeScreenSaverName = "gnome-screensaver"
)

// defaultSystemBus is where the system bus listens when
// DBUS_SYSTEM_BUS_ADDRESS does not say otherwise (the D-Bus specification's
// well-known address).
const defaultSystemBus = "unix:path=/var/run/dbus/system_bus_socket"

// sessionBusAddress is the session bus of this login session. Without
// DBUS_SESSION_BUS_ADDRESS there is no session bus to talk to: guessing or
// launching one would reach a bus no desktop component listens on.
func sessionBusAddress(getenv func(string) string) (string, error) {
	a := getenv("DBUS_SESSION_BUS_ADDRESS")
	if a == "" || a == "autolaunch:" {
		return "", unsupported("DBUS_SESSION_BUS_ADDRESS is not set")
	}
	return a, nil
}

func systemBusAddress(getenv func(string) string) string {
	if a := getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return defaultSystemBus
}

// dialBus opens a private connection to the bus at address: never the
// library's shared connection (which other code could close under us) and
// never an auto-launched daemon. The handshake is bounded by ctx.
func dialBus(ctx context.Context, address string) (*dbus.Conn, error) {
	conn, err := dbus.Dial(address)
	if err != nil {
		return nil, fmt.Errorf("dial bus %s: %w", address, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = conn.Auth(nil)
	if err == nil {
		err = conn.Hello()
	}
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("connect to bus %s: %w", address, err)
	}
	return conn, nil
}

// hasOwner reports whether a well-known name has an owner on the bus, so a
// missing service is told apart from a failing one without activating it.
func hasOwner(ctx context.Context, conn *dbus.Conn, name string) (bool, error) {
	var has bool
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
	if err != nil {
		return false, fmt.Errorf("ask the bus about %s: %w", name, err)
	}
	return has, nil
}

// busIdle reads an idle counter over D-Bus: Mutter's GetIdletime (uint64
// milliseconds) or the ScreenSaver's GetSessionIdleTime (uint32
// milliseconds in KDE, its main implementation).
type busIdle struct {
	name   string
	conn   *dbus.Conn
	obj    dbus.BusObject
	method string
}

func (b *busIdle) Name() string { return b.name }

func (b *busIdle) Idle(ctx context.Context) (time.Duration, error) {
	call := b.obj.CallWithContext(ctx, b.method, dbus.FlagNoAutoStart)
	if call.Err != nil {
		return 0, fmt.Errorf("%s: %s: %w", b.name, b.method, namedErr(call.Err))
	}
	if len(call.Body) != 1 {
		return 0, fmt.Errorf("%s: %s returned %d values, want 1", b.name, b.method, len(call.Body))
	}
	switch v := call.Body[0].(type) {
	case uint64:
		return time.Duration(v) * time.Millisecond, nil
	case uint32:
		return time.Duration(v) * time.Millisecond, nil
	}
	return 0, fmt.Errorf("%s: %s returned %T, want an unsigned integer", b.name, b.method, call.Body[0])
}

func (b *busIdle) Close() error { return b.conn.Close() }

// busService is one D-Bus interface we talk to.
type busService struct {
	name  string // backend name
	dest  string // well-known bus name
	path  dbus.ObjectPath
	iface string
}

var (
	mutterIdle       = busService{MutterName, "org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core", "org.gnome.Mutter.IdleMonitor"}
	freedesktopSaver = busService{ScreenSaverName, "org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"}
	gnomeSaver       = busService{GnomeScreenSaverName, "org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"}
)

// openBusIdle returns the first of svcs that owns its name on the session
// bus; the caller's probe then calls method once.
func openBusIdle(ctx context.Context, getenv func(string) string, svc busService, method string) (IdleSource, error) {
	addr, err := sessionBusAddress(getenv)
	if err != nil {
		return nil, err
	}
	conn, err := dialBus(ctx, addr)
	if err != nil {
		return nil, err
	}
	if ok, err := hasOwner(ctx, conn, svc.dest); err != nil || !ok {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("%s is not on the session bus", svc.dest)
		}
		return nil, err
	}
	return &busIdle{name: svc.name, conn: conn, obj: conn.Object(svc.dest, svc.path), method: svc.iface + "." + method}, nil
}

// busWatcher turns the signals of one private connection into Events.
type busWatcher struct {
	name   string
	conn   *dbus.Conn
	now    func() time.Time
	logger *slog.Logger
	// handle maps a signal to events; it may call the bus (ctx bounds it).
	handle func(ctx context.Context, sig *dbus.Signal) []Event
	locked func(ctx context.Context) (bool, error)
	// closing runs once on Close, before the connection closes.
	closing func()

	out    chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// start subscribes to the connection's signals (the match rules are
// already added) and runs the loop.
func (w *busWatcher) start() {
	w.out = make(chan Event, 8)
	w.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	sigs := make(chan *dbus.Signal, 16)
	w.conn.Signal(sigs)
	go w.run(ctx, sigs)
}

func (w *busWatcher) run(ctx context.Context, sigs <-chan *dbus.Signal) {
	defer close(w.done)
	defer close(w.out)
	for {
		var sig *dbus.Signal
		select {
		case <-ctx.Done():
			return
		case s, ok := <-sigs:
			if !ok {
				// The connection dropped (bus restarted, session ended).
				if ctx.Err() == nil {
					w.logger.Warn("bus connection lost; no more events from this backend", logBackend, w.name)
				}
				return
			}
			sig = s
		}
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		evs := w.handle(hctx, sig)
		hcancel()
		for _, ev := range evs {
			select {
			case w.out <- ev:
			case <-ctx.Done():
				ev.Done()
				return
			}
		}
	}
}

func (w *busWatcher) Name() string         { return w.name }
func (w *busWatcher) Events() <-chan Event { return w.out }

func (w *busWatcher) LockedNow(ctx context.Context) (bool, error) {
	if w.locked == nil {
		return false, unsupported("%s cannot tell the lock state", w.name)
	}
	return w.locked(ctx)
}

func (w *busWatcher) Close() error {
	var err error
	w.once.Do(func() {
		w.cancel()
		<-w.done
		if w.closing != nil {
			w.closing()
		}
		if cerr := w.conn.Close(); cerr != nil && !errors.Is(cerr, dbus.ErrClosed) {
			err = cerr
		}
	})
	return err
}

// openSaverWatcher watches the screen saver's ActiveChanged signal: on KDE
// (org.freedesktop.ScreenSaver) and GNOME (org.gnome.ScreenSaver) "active"
// means the lock screen is up.
func openSaverWatcher(ctx context.Context, c Config) (Watcher, error) {
	addr, err := sessionBusAddress(c.Getenv)
	if err != nil {
		return nil, err
	}
	conn, err := dialBus(ctx, addr)
	if err != nil {
		return nil, err
	}
	var (
		svc   busService
		found bool
	)
	for _, s := range []busService{freedesktopSaver, gnomeSaver} {
		if ok, err := hasOwner(ctx, conn, s.dest); err != nil {
			conn.Close()
			return nil, err
		} else if ok {
			svc, found = s, true
			break
		}
	}
	if !found {
		conn.Close()
		return nil, fmt.Errorf("neither %s nor %s is on the session bus", freedesktopSaver.dest, gnomeSaver.dest)
	}
	obj := conn.Object(svc.dest, svc.path)
	getActive := func(ctx context.Context) (bool, error) {
		var active bool
		if err := obj.CallWithContext(ctx, svc.iface+".GetActive", dbus.FlagNoAutoStart).Store(&active); err != nil {
			return false, fmt.Errorf("%s: GetActive: %w", svc.name, namedErr(err))
		}
		return active, nil
	}
	if _, err := getActive(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.AddMatchSignalContext(ctx,
		dbus.WithMatchSender(svc.dest), dbus.WithMatchObjectPath(svc.path),
		dbus.WithMatchInterface(svc.iface), dbus.WithMatchMember("ActiveChanged")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: subscribe: %w", svc.name, err)
	}
	w := &busWatcher{
		name: svc.name, conn: conn, now: c.Now, logger: c.Logger, locked: getActive,
		handle: func(_ context.Context, sig *dbus.Signal) []Event {
			if sig.Path != svc.path || sig.Name != svc.iface+".ActiveChanged" || len(sig.Body) != 1 {
				return nil
			}
			active, ok := sig.Body[0].(bool)
			if !ok {
				return nil
			}
			return []Event{lockEvent(active, c.Now(), svc.name)}
		},
	}
	w.start()
	return w, nil
}

// namedErr keeps a D-Bus error's name (e.g. ...Error.NotSupported) in its
// text: godbus's Error() shows only the message, which rarely says which
// refusal it was.
func namedErr(err error) error {
	var (
		de  dbus.Error
		dep *dbus.Error
	)
	switch {
	case errors.As(err, &de) && de.Name != "":
		return fmt.Errorf("%s: %w", de.Name, err)
	case errors.As(err, &dep) && dep != nil && dep.Name != "":
		return fmt.Errorf("%s: %w", dep.Name, err)
	}
	return err
}

func lockEvent(locked bool, at time.Time, source string) Event {
	if locked {
		return Event{Kind: Locked, At: at, Source: source}
	}
	return Event{Kind: Unlocked, At: at, Source: source}
}

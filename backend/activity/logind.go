//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// LogindName is the Name of the systemd-logind (or elogind) watcher.
const LogindName = "logind"

const (
	login1Dest   = "org.freedesktop.login1"
	login1Path   = dbus.ObjectPath("/org/freedesktop/login1")
	managerIface = "org.freedesktop.login1.Manager"
	sessionIface = "org.freedesktop.login1.Session"
	userIface    = "org.freedesktop.login1.User"
	propsIface   = "org.freedesktop.DBus.Properties"
)

// openLogind watches logind on the system bus: PrepareForSleep on the
// manager for sleep and wake, and on this login session the LockedHint
// property (set by the screen locker once the screen is locked) plus the
// Lock/Unlock signals (logind asking the locker to act, e.g. "loginctl
// lock-session"). Without a session of its own (an agent started outside
// any login session) only sleep and wake are watched.
//
// It holds a "delay" sleep inhibitor so that a Sleeping event reaches the
// caller before the machine goes down; Event.Done releases it, and so does
// Config.SleepHold running out.
func openLogind(ctx context.Context, c Config) (Watcher, error) {
	conn, err := dialBus(ctx, systemBusAddress(c.Getenv))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Watcher, error) {
		conn.Close()
		return nil, err
	}
	if ok, err := hasOwner(ctx, conn, login1Dest); err != nil {
		return fail(err)
	} else if !ok {
		return fail(fmt.Errorf("%s is not on the system bus", login1Dest))
	}
	mgr := conn.Object(login1Dest, login1Path)

	var locked func(context.Context) (bool, error)
	session, err := findSession(ctx, conn, c.Getenv)
	if err == nil {
		obj := conn.Object(login1Dest, session)
		locked = func(ctx context.Context) (bool, error) {
			var v dbus.Variant
			if err := obj.CallWithContext(ctx, propsIface+".Get", 0, sessionIface, "LockedHint").Store(&v); err != nil {
				return false, fmt.Errorf("%s: read LockedHint of %s: %w", LogindName, session, err)
			}
			b, ok := v.Value().(bool)
			if !ok {
				return false, fmt.Errorf("%s: LockedHint is %s, want a boolean", LogindName, v.Signature())
			}
			return b, nil
		}
		if _, err = locked(ctx); err != nil {
			locked = nil
		}
	}
	if locked == nil {
		c.Logger.Info("logind: no session to watch; lock state comes from other backends", logErr, err)
		session = ""
	}

	rules := [][]dbus.MatchOption{{
		dbus.WithMatchSender(login1Dest), dbus.WithMatchObjectPath(login1Path),
		dbus.WithMatchInterface(managerIface), dbus.WithMatchMember("PrepareForSleep"),
	}}
	if session != "" {
		rules = append(rules,
			[]dbus.MatchOption{dbus.WithMatchSender(login1Dest), dbus.WithMatchObjectPath(session),
				dbus.WithMatchInterface(sessionIface), dbus.WithMatchMember("Lock")},
			[]dbus.MatchOption{dbus.WithMatchSender(login1Dest), dbus.WithMatchObjectPath(session),
				dbus.WithMatchInterface(sessionIface), dbus.WithMatchMember("Unlock")},
			[]dbus.MatchOption{dbus.WithMatchSender(login1Dest), dbus.WithMatchObjectPath(session),
				dbus.WithMatchInterface(propsIface), dbus.WithMatchMember("PropertiesChanged"),
				dbus.WithMatchArg(0, sessionIface)},
		)
	}
	for _, r := range rules {
		if err := conn.AddMatchSignalContext(ctx, r...); err != nil {
			return fail(fmt.Errorf("%s: subscribe: %w", LogindName, err))
		}
	}

	inh := &inhibitor{conn: conn, mgr: mgr, logger: c.Logger}
	inh.take(ctx)
	h := &logindHandler{session: session, locked: locked, inh: inh, now: c.Now, hold: c.SleepHold}
	w := &busWatcher{
		name: LogindName, conn: conn, now: c.Now, logger: c.Logger,
		locked: locked, handle: h.handle, closing: inh.release,
	}
	w.start()
	return w, nil
}

// findSession finds this process's login session: the one named by
// XDG_SESSION_ID, else the one logind puts this process in, else the user's
// display session (an agent started by a user service manager sits in no
// session of its own).
func findSession(ctx context.Context, conn *dbus.Conn, getenv func(string) string) (dbus.ObjectPath, error) {
	mgr := conn.Object(login1Dest, login1Path)
	var path dbus.ObjectPath
	var errs []error
	if id := getenv("XDG_SESSION_ID"); id != "" {
		err := mgr.CallWithContext(ctx, managerIface+".GetSession", 0, id).Store(&path)
		if err == nil {
			return path, nil
		}
		errs = append(errs, fmt.Errorf("session %q: %w", id, err))
	}
	err := mgr.CallWithContext(ctx, managerIface+".GetSessionByPID", 0, uint32(os.Getpid())).Store(&path)
	if err == nil {
		return path, nil
	}
	errs = append(errs, fmt.Errorf("session of pid %d: %w", os.Getpid(), err))

	var v dbus.Variant
	err = conn.Object(login1Dest, login1Path+"/user/self").
		CallWithContext(ctx, propsIface+".Get", 0, userIface, "Display").Store(&v)
	if err == nil {
		if s, ok := v.Value().([]any); ok && len(s) == 2 {
			if p, ok := s[1].(dbus.ObjectPath); ok && p != "/" && p.IsValid() {
				return p, nil
			}
		}
		err = fmt.Errorf("no display session")
	}
	errs = append(errs, fmt.Errorf("user's display session: %w", err))
	return "", fmt.Errorf("find login session: %v", errs)
}

// logindHandler turns logind's signals into events.
type logindHandler struct {
	session dbus.ObjectPath
	locked  func(context.Context) (bool, error)
	inh     *inhibitor
	now     func() time.Time
	hold    time.Duration
}

func (h *logindHandler) handle(ctx context.Context, sig *dbus.Signal) []Event {
	switch {
	case sig.Path == login1Path && sig.Name == managerIface+".PrepareForSleep":
		if len(sig.Body) != 1 {
			return nil
		}
		start, ok := sig.Body[0].(bool)
		if !ok {
			return nil
		}
		if !start {
			h.inh.take(ctx) // hold the next sleep too
			return []Event{{Kind: Woke, At: h.now(), Source: LogindName}}
		}
		// Release exactly the lock held now: if the suspend is cancelled
		// and a new lock taken, a late timer must not drop that one.
		release := sync.OnceFunc(h.inh.releaser())
		time.AfterFunc(h.hold, release)
		return []Event{{Kind: Sleeping, At: h.now(), Source: LogindName, release: release}}

	case h.session == "" || sig.Path != h.session:
		return nil

	case sig.Name == sessionIface+".Lock":
		return []Event{lockEvent(true, h.now(), LogindName)}

	case sig.Name == sessionIface+".Unlock":
		return []Event{lockEvent(false, h.now(), LogindName)}

	case sig.Name == propsIface+".PropertiesChanged":
		if len(sig.Body) != 3 {
			return nil
		}
		iface, _ := sig.Body[0].(string)
		changed, _ := sig.Body[1].(map[string]dbus.Variant)
		invalidated, _ := sig.Body[2].([]string)
		if iface != sessionIface {
			return nil
		}
		if v, ok := changed["LockedHint"]; ok {
			if b, ok := v.Value().(bool); ok {
				return []Event{lockEvent(b, h.now(), LogindName)}
			}
		}
		if slices.Contains(invalidated, "LockedHint") && h.locked != nil {
			if b, err := h.locked(ctx); err == nil {
				return []Event{lockEvent(b, h.now(), LogindName)}
			}
		}
	}
	return nil
}

// inhibitor holds logind's "delay" sleep lock: a file descriptor whose
// closing lets the suspend proceed.
type inhibitor struct {
	conn   *dbus.Conn
	mgr    dbus.BusObject
	logger *slog.Logger

	mu  sync.Mutex
	fd  int    // 0 when none is held (the bus code never hands out 0)
	gen uint64 // counts locks taken: descriptor numbers are reused
}

func (in *inhibitor) take(ctx context.Context) {
	if !in.conn.SupportsUnixFDs() {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fd > 0 {
		return
	}
	call := in.mgr.CallWithContext(ctx, managerIface+".Inhibit", 0,
		"sleep", "Lastseen", "Record going offline before the machine sleeps", "delay")
	if call.Err != nil {
		in.logger.Info("logind: no sleep delay lock; the final beat before sleep may be late", logErr, call.Err)
		return
	}
	if len(call.Body) == 1 {
		if fd, ok := call.Body[0].(dbus.UnixFD); ok && fd > 0 {
			in.fd = int(fd)
			in.gen++
		}
	}
}

// release lets go of whatever lock is held.
func (in *inhibitor) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fd > 0 {
		syscall.Close(in.fd)
		in.fd = 0
	}
}

// releaser returns a func that lets go of the lock held now, and of no later one.
func (in *inhibitor) releaser() func() {
	in.mu.Lock()
	gen := in.gen
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.fd > 0 && in.gen == gen {
			syscall.Close(in.fd)
			in.fd = 0
		}
	}
}

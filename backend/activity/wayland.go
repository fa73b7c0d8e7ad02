//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Names of the Wayland idle sources.
const (
	// WaylandIdleNotifyName speaks ext-idle-notify-v1, the staging protocol
	// of wlroots compositors (sway, Hyprland, river, labwc…), KWin and others.
	WaylandIdleNotifyName = "wayland ext-idle-notify-v1"
	// WaylandKDEIdleName speaks org_kde_kwin_idle, its predecessor, still
	// all that older wlroots compositors (before 0.17) and KWin 5 offer.
	WaylandKDEIdleName = "wayland org_kde_kwin_idle"
)

// waylandSession reports whether a Wayland compositor is there to ask.
func waylandSession(getenv func(string) string) bool {
	return getenv("WAYLAND_DISPLAY") != ""
}

// waylandStep is the timeout of the idle notification the source keeps: the
// compositor says "idled" once the user has given no input for this long and
// "resumed" at the next input. It is the precision of the idle time (see
// waylandIdle) and the window in which input counts as just happened for
// WaitInput, like the X11 source's inputWindow.
const waylandStep = inputWindow

// wlIdleProtocol is one of the two idle protocols. Both have a global that
// makes, for a seat and a timeout, a notification object whose events are
// 0 (idled, or idle) and 1 (resumed).
type wlIdleProtocol struct {
	name       string // backend name
	global     string // the interface of the global to bind
	maxVersion uint32 // the highest version this client speaks
	// request makes the notification id on the bound global of that version.
	request func(global, version, id, seat, timeoutMs uint32) *wlRequest
	// obeysInhibitors says, for a version, whether the notification may
	// follow the compositor's idle inhibitors (a video player's) rather
	// than input alone: then an inhibited session reads as active.
	obeysInhibitors func(version uint32) bool
}

const (
	wlNotificationIdled   = 0
	wlNotificationResumed = 1
)

var (
	// ext-idle-notify-v1: get_idle_notification(new_id, uint timeout, object seat)
	// (opcode 1), and from version 2 get_input_idle_notification with the same
	// arguments (opcode 2), which counts input alone as the X11 and D-Bus
	// counters do.
	extIdleNotify = wlIdleProtocol{
		name: WaylandIdleNotifyName, global: "ext_idle_notifier_v1", maxVersion: 2,
		request: func(global, version, id, seat, timeoutMs uint32) *wlRequest {
			opcode := uint16(1)
			if version >= 2 {
				opcode = 2
			}
			return newWlRequest(global, opcode).uint(id).uint(timeoutMs).uint(seat)
		},
		obeysInhibitors: func(version uint32) bool { return version < 2 },
	}
	// org_kde_kwin_idle: get_idle_timeout(new_id, object seat, uint timeout)
	// (opcode 0). wlroots pauses its timers while an idle inhibitor is
	// active.
	kdeIdle = wlIdleProtocol{
		name: WaylandKDEIdleName, global: "org_kde_kwin_idle", maxVersion: 1,
		request: func(global, _, id, seat, timeoutMs uint32) *wlRequest {
			return newWlRequest(global, 0).uint(id).uint(seat).uint(timeoutMs)
		},
		obeysInhibitors: func(uint32) bool { return true },
	}
)

// wlGlobal is an advertised global: its name in the registry and version.
type wlGlobal struct {
	name, version uint32
}

// wlRegistry keeps, of all the globals a compositor advertises, the two the
// source needs (the first seat and the protocol's global): what it keeps
// cannot grow with what the compositor sends.
type wlRegistry struct {
	want string

	mu       sync.Mutex
	seat     *wlGlobal
	notifier *wlGlobal
	bound    bool // the source uses them: their removal ends it
}

func (r *wlRegistry) handle(_ uint32, opcode uint16, a *wlArgs) error {
	switch opcode {
	case wlRegistryGlobal:
		name, iface, version := a.uint(), a.str(), a.uint()
		if err := a.end(); err != nil {
			return fmt.Errorf("wl_registry.global: %w", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case string(iface) == "wl_seat" && r.seat == nil:
			r.seat = &wlGlobal{name, version}
		case string(iface) == r.want && r.notifier == nil:
			r.notifier = &wlGlobal{name, version}
		}
		return nil
	case wlRegistryGlobalRemove:
		name := a.uint()
		if err := a.end(); err != nil {
			return fmt.Errorf("wl_registry.global_remove: %w", err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, g := range []**wlGlobal{&r.seat, &r.notifier} {
			if *g != nil && (*g).name == name {
				if r.bound {
					return fmt.Errorf("the compositor removed the global (%d) the idle source uses", name)
				}
				*g = nil
			}
		}
		return nil
	}
	return fmt.Errorf("wl_registry event %d: %w", opcode, errWlProtocol)
}

// waylandIdle is an idle source on a Wayland compositor. The protocols do
// not tell the idle time, only "no input for T" (idled) and "input again"
// (resumed), for a T the client picks. The source keeps one notification
// with T = waylandStep and derives the idle time from it:
//
//   - after idled, the last input was T before the idled event arrived, so
//     the idle time is now − (that instant), exact but for the event's
//     delivery (a few milliseconds late: the idle time reads that much
//     short);
//   - otherwise there was input within the last T (or the connection is
//     younger than T), and the idle time reads 0: at most T short.
//
// The compositor counts from when the notification was made, so a user who
// was already away when the source connected is counted away from then on.
//
// T is the one second in which WaitInput counts input as just happened, not
// the agent's idle threshold: the source does not know that threshold (it
// changes with the user's settings), and a notification at the threshold
// would leave every idle time below it unknown, so the beats' idle seconds
// and the agent's plan of when to read next would be guesses. The
// notification rings at every pause of T in the user's input, a small event
// read by one goroutine that wakes nothing else; the agent itself waits for
// the resumed event (WaitInput) and does not poll.
type waylandIdle struct {
	name string
	c    *wlConn
	now  func() time.Time

	mu   sync.Mutex
	idle bool
	last time.Time // the last input, as far as known: valid while idle
	// input is closed at the next resumed event, then replaced.
	input chan struct{}
}

var (
	_ IdleSource  = (*waylandIdle)(nil)
	_ InputWaiter = (*waylandIdle)(nil)
)

// openWaylandIdle connects to the compositor named by the environment and
// makes an idle notification with proto. The error wraps ErrUnsupported
// when the environment names no socket or the compositor lacks the
// protocol.
func openWaylandIdle(ctx context.Context, c Config, proto wlIdleProtocol) (*waylandIdle, error) {
	path, err := waylandSocket(c.Getenv)
	if err != nil {
		return nil, err
	}
	conn, err := dialWayland(ctx, path)
	if err != nil {
		return nil, err
	}
	w, err := newWaylandIdle(ctx, conn, proto, c)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", proto.name, err)
	}
	return w, nil
}

// newWaylandIdle sets the notification up on conn: the registry, the seat,
// the protocol's global, then the notification. Each step is confirmed by a
// round trip, so a compositor that refuses one says so here.
func newWaylandIdle(ctx context.Context, conn *wlConn, proto wlIdleProtocol, cfg Config) (*waylandIdle, error) {
	reg := &wlRegistry{want: proto.global}
	regID, err := conn.newObject(reg.handle)
	if err != nil {
		return nil, err
	}
	if err := conn.send(newWlRequest(wlDisplayID, wlDisplayGetRegistry).uint(regID)); err != nil {
		return nil, err
	}
	if err := conn.roundtrip(ctx); err != nil {
		return nil, fmt.Errorf("list the compositor's globals: %w", err)
	}
	reg.mu.Lock()
	seat, notifier := reg.seat, reg.notifier
	reg.bound = seat != nil && notifier != nil
	reg.mu.Unlock()
	switch {
	case notifier == nil:
		return nil, unsupported("the compositor does not offer %s", proto.global)
	case seat == nil:
		return nil, unsupported("the compositor offers no wl_seat")
	}

	// Version 1 of wl_seat is enough to name it, and has no events but
	// capabilities, which the source ignores.
	seatID, err := conn.newObject(func(uint32, uint16, *wlArgs) error { return nil })
	if err != nil {
		return nil, err
	}
	version := min(notifier.version, proto.maxVersion)
	notifierID, err := conn.newObject(func(_ uint32, opcode uint16, _ *wlArgs) error {
		return fmt.Errorf("%s event %d: %w", proto.global, opcode, errWlProtocol) // it has none
	})
	if err != nil {
		return nil, err
	}
	w := &waylandIdle{name: proto.name, c: conn, now: cfg.Now, input: make(chan struct{})}
	notifID, err := conn.newObject(w.handle)
	if err != nil {
		return nil, err
	}
	for _, r := range []*wlRequest{
		bindRequest(regID, seat.name, "wl_seat", 1, seatID),
		bindRequest(regID, notifier.name, proto.global, version, notifierID),
		proto.request(notifierID, version, notifID, seatID, uint32(waylandStep.Milliseconds())),
	} {
		if err := conn.send(r); err != nil {
			return nil, err
		}
	}
	if err := conn.roundtrip(ctx); err != nil {
		return nil, fmt.Errorf("make an idle notification: %w", err)
	}
	if proto.obeysInhibitors(version) {
		cfg.Logger.Info("the compositor's idle notifications may follow idle inhibitors: an application holding one keeps the user active",
			logBackend, proto.name, "version", version)
	}
	return w, nil
}

// bindRequest is wl_registry.bind, whose new_id of no fixed interface is
// spelled out as interface name, version and ID.
func bindRequest(registry, name uint32, iface string, version, id uint32) *wlRequest {
	return newWlRequest(registry, wlRegistryBind).uint(name).str(iface).uint(version).uint(id)
}

// handle takes the notification's events.
func (w *waylandIdle) handle(_ uint32, opcode uint16, a *wlArgs) error {
	if err := a.end(); err != nil {
		return fmt.Errorf("%s event %d: %w", w.name, opcode, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch opcode {
	case wlNotificationIdled:
		if !w.idle { // a repeated idled says nothing new
			w.idle = true
			w.last = w.now().Add(-waylandStep)
		}
	case wlNotificationResumed:
		if w.idle {
			w.idle = false
			close(w.input)
			w.input = make(chan struct{})
		}
	default:
		return fmt.Errorf("%s event %d: %w", w.name, opcode, errWlProtocol)
	}
	return nil
}

func (w *waylandIdle) Name() string { return w.name }

// Idle makes a round trip first, so that every event the compositor sent
// before the call has been taken into account and a compositor that no
// longer answers is an error rather than a stale answer.
func (w *waylandIdle) Idle(ctx context.Context) (time.Duration, error) {
	if err := w.c.roundtrip(ctx); err != nil {
		return 0, fmt.Errorf("%s: %w", w.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.idle {
		return 0, nil
	}
	return max(w.now().Sub(w.last), 0), nil
}

// WaitInput returns at the next resumed event, or at once when the source
// is not idled, that is when there was input within the last waylandStep.
func (w *waylandIdle) WaitInput(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: wait for input: %w", w.name, err)
	}
	if err := w.c.failure(); err != nil {
		return fmt.Errorf("%s: wait for input: %w", w.name, err)
	}
	w.mu.Lock()
	idle, input := w.idle, w.input
	w.mu.Unlock()
	if !idle {
		return nil
	}
	select {
	case <-input:
		return nil
	case <-w.c.dead:
		return fmt.Errorf("%s: wait for input: %w", w.name, w.c.failure())
	case <-ctx.Done():
		return fmt.Errorf("%s: wait for input: %w", w.name, ctx.Err())
	}
}

// Close closes the connection; the compositor drops the notification.
func (w *waylandIdle) Close() error { return w.c.Close() }

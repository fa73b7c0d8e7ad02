// Package activity tells what the operating system knows about the user:
// how long since the last keyboard or pointer input (IdleSource), and when
// the screen locks or unlocks and the machine sleeps or wakes (Watcher).
//
// Each platform has several backends; Detect and DetectWatcher probe them
// once, in order, and return the first that works, named by Name() so the
// Diagnostics page can show which one is in use:
//
//	Linux/BSD  idle:  "x11-screensaver" (X11 sessions only, never on Wayland;
//	                  waits for input with a SYNC alarm, see InputWaiter),
//	                  "mutter-idlemonitor" (GNOME), "freedesktop-screensaver" (KDE and others),
//	                  then, in Wayland sessions only, the compositor's own protocols:
//	                  "wayland ext-idle-notify-v1", "wayland org_kde_kwin_idle" (sway,
//	                  Hyprland, river, labwc…; they wait for input, see InputWaiter;
//	                  the idle time is known to within a second, see waylandIdle)
//	           watch: "logind" (session LockedHint, Lock/Unlock, PrepareForSleep),
//	                  "freedesktop-screensaver"/"gnome-screensaver" (ActiveChanged), "clock-gap"
//	macOS      idle:  "cgeventsource" (cgo builds only)
//	           watch: "cgsession-poll" (lock, cgo builds only), "clock-gap"
//	Windows    idle:  "getlastinputinfo"
//	           watch: "inputdesktop-poll" (lock), "clock-gap"
//
// When no backend works the error wraps ErrUnsupported: an unknown idle time
// is never reported as zero, because "idle 0 s" would keep a user active
// forever. The "clock-gap" detector runs everywhere and reports a suspend that
// no signal announced, noticed on wake by the wall clock having jumped ahead
// of the monotonic one (or a tick arriving far later than scheduled).
//
// D-Bus backends use private connections dialled to the address in the
// session's environment and never start a bus daemon: with no
// DBUS_SESSION_BUS_ADDRESS the session-bus backends are simply unavailable.
package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// ErrUnsupported is wrapped by every error that means "this platform, build
// or session cannot tell": callers test it with errors.Is and show the
// message, which names what was tried.
var ErrUnsupported = errors.New("not supported on this system")

// IdleSource reports the time since the user's last input.
//
// Idle returns an error rather than a guess when it cannot read the counter
// (the X server went away, the compositor restarted): the caller then treats
// the idle time as unknown and may call Detect again.
type IdleSource interface {
	// Name identifies the backend, e.g. "x11-screensaver".
	Name() string
	Idle(ctx context.Context) (time.Duration, error)
	// Close releases the backend's connection. Idle fails after Close.
	Close() error
}

// InputWaiter is what an IdleSource may also do: block until the user's
// next input, so that an idle machine need not be polled. Test for it with
// a type assertion. The X11 source implements it when the X server has the
// SYNC extension's IDLETIME counter (every X.Org server does), and so do the
// Wayland sources; the D-Bus, Windows and macOS sources do not, and are
// polled.
type InputWaiter interface {
	// WaitInput returns nil once the user gives keyboard or pointer input
	// after the call began (input at most a second before it counts too,
	// so input while the wait was being set up is never missed); an error
	// wrapping ctx's when ctx ends first; another error when the source
	// fails (the connection closed).
	WaitInput(ctx context.Context) error
}

// EventKind is what happened to the session.
type EventKind int

// Event kinds.
const (
	Locked   EventKind = iota + 1 // the screen locked (or the screen saver took over)
	Unlocked                      // the screen unlocked
	Sleeping                      // the machine is about to sleep, or slept (see Event.At)
	Woke                          // the machine woke up
)

func (k EventKind) String() string {
	switch k {
	case Locked:
		return "locked"
	case Unlocked:
		return "unlocked"
	case Sleeping:
		return "sleeping"
	case Woke:
		return "woke"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change of the session's lock or power state.
type Event struct {
	Kind EventKind
	// At is when it happened. For a suspend nobody announced, Sleeping
	// arrives only after the wake, with At set to the last instant the
	// process was known to be running: the caller records "offline from At".
	At time.Time
	// Source is the backend that saw it, e.g. "logind" or "clock-gap".
	Source string

	release func()
}

// Done tells the watcher that the caller has handled the event. It matters
// for a Sleeping event announced in advance: the system waits (briefly, the
// watcher also gives up on its own after Config.SleepHold) so the caller can
// write and send its final beat before the machine sleeps. Calling Done on
// any other event, or twice, does nothing.
func (e Event) Done() {
	if e.release != nil {
		e.release()
	}
}

func (e Event) String() string {
	return fmt.Sprintf("%s at %s (%s)", e.Kind, e.At.Format(time.RFC3339), e.Source)
}

// Watcher delivers lock, unlock, sleep and wake events. Events from several
// backends are merged and de-duplicated: a lock reported by two backends
// arrives once, and a suspend announced by a signal is not reported again
// by the clock-gap detector.
type Watcher interface {
	// Name lists the backends in use, e.g. "logind+freedesktop-screensaver+clock-gap".
	Name() string
	// Events is closed after Close. Read it promptly: a full buffer delays
	// the backends (never loses an event).
	Events() <-chan Event
	// LockedNow asks the platform whether the screen is locked right now;
	// the error wraps ErrUnsupported where it cannot tell.
	LockedNow(ctx context.Context) (bool, error)
	Close() error
}

// Config tunes detection. The zero value is ready to use.
type Config struct {
	Logger *slog.Logger
	// Getenv reads the session environment (DISPLAY, XDG_SESSION_TYPE,
	// WAYLAND_DISPLAY, DBUS_SESSION_BUS_ADDRESS, DBUS_SYSTEM_BUS_ADDRESS,
	// XDG_SESSION_ID). Default os.Getenv; tests point it at their own
	// X server and bus.
	Getenv func(string) string
	// Now stamps events. Default time.Now.
	Now func() time.Time
	// ProbeTimeout bounds each backend's probe. Default 3 s.
	ProbeTimeout time.Duration
	// LockPoll is how often platforms without lock notifications (macOS,
	// Windows) read the lock state. Default 2 s.
	LockPoll time.Duration
	// SleepHold is the longest a Sleeping event announced in advance holds
	// the system awake waiting for Event.Done. Default 3 s (logind itself
	// gives up after its InhibitDelayMaxSec, 5 s by default).
	SleepHold time.Duration
	// Gap tunes the clock-gap detector.
	Gap GapConfig
	// NoGap leaves the clock-gap detector out of DetectWatcher (tests of
	// single backends).
	NoGap bool
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 3 * time.Second
	}
	if c.LockPoll <= 0 {
		c.LockPoll = 2 * time.Second
	}
	if c.SleepHold <= 0 {
		c.SleepHold = 3 * time.Second
	}
	if c.Gap.Logger == nil {
		c.Gap.Logger = c.Logger
	}
	return c
}

// Log attribute keys.
const (
	logBackend = "backend"
	logErr     = "err"
	logEvent   = "event"
)

// Detect returns the first idle source that works on this session, probed
// once. The error wraps ErrUnsupported and names every backend tried.
func Detect(ctx context.Context, logger *slog.Logger) (IdleSource, error) {
	return Config{Logger: logger}.DetectIdle(ctx)
}

// DetectWatcher returns a watcher over every lock and sleep backend that
// works on this session, plus the clock-gap detector.
func DetectWatcher(ctx context.Context, logger *slog.Logger) (Watcher, error) {
	return Config{Logger: logger}.DetectWatcher(ctx)
}

// IdleOrder names the idle backends DetectIdle tries on this session, in
// the order it tries them (for Diagnostics: which were passed over).
func (c Config) IdleOrder() []string {
	var names []string
	for _, cand := range idleCandidates(c.withDefaults()) {
		names = append(names, cand.name)
	}
	return names
}

// DetectIdle is Detect with this configuration.
func (c Config) DetectIdle(ctx context.Context) (IdleSource, error) {
	c = c.withDefaults()
	var tried []string
	for _, cand := range idleCandidates(c) {
		pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
		src, err := cand.open(pctx)
		if err == nil {
			_, err = src.Idle(pctx)
			if err != nil {
				src.Close()
			}
		}
		cancel()
		if err == nil {
			c.Logger.Info("idle source selected", logBackend, cand.name)
			return src, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("detect idle source: %w", ctx.Err())
		}
		c.Logger.Debug("idle source unavailable", logBackend, cand.name, logErr, err)
		tried = append(tried, withName(cand.name, err))
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("no idle source for this platform: %w", ErrUnsupported)
	}
	return nil, fmt.Errorf("no idle source works (%s): %w", strings.Join(tried, "; "), ErrUnsupported)
}

// DetectWatcher is the package-level DetectWatcher with this configuration.
// It fails only when no backend at all is available (NoGap with nothing
// else), with an error wrapping ErrUnsupported.
func (c Config) DetectWatcher(ctx context.Context) (Watcher, error) {
	c = c.withDefaults()
	var (
		ws    []Watcher
		tried []string
	)
	for _, cand := range watcherCandidates(c) {
		pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
		w, err := cand.open(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				closeAll(ws)
				return nil, fmt.Errorf("detect watcher: %w", ctx.Err())
			}
			c.Logger.Debug("watcher backend unavailable", logBackend, cand.name, logErr, err)
			tried = append(tried, withName(cand.name, err))
			continue
		}
		c.Logger.Info("watcher backend selected", logBackend, w.Name())
		ws = append(ws, w)
	}
	if !c.NoGap {
		ws = append(ws, NewGapDetector(c.Gap))
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("no lock or sleep backend works (%s): %w", strings.Join(tried, "; "), ErrUnsupported)
	}
	return newMux(ctx, c.Logger, ws...), nil
}

// candidate is one backend to probe.
type candidate[T any] struct {
	name string
	open func(ctx context.Context) (T, error)
}

// withName prefixes err's text with the backend's name unless it has it.
func withName(name string, err error) string {
	if s := err.Error(); !strings.HasPrefix(s, name) {
		return name + ": " + s
	}
	return err.Error()
}

func closeAll(ws []Watcher) {
	for _, w := range ws {
		w.Close()
	}
}

// unsupported builds an error wrapping ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

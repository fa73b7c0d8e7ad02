package agent

import (
	"context"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// IdleReader reports how long the user has given no input.
type IdleReader interface {
	Idle(ctx context.Context) (time.Duration, error)
}

// InputWaiter is what an IdleReader may also do: block until the user's
// next input. With it the agent does not poll while the machine is idle; it
// waits, and turns active the moment input comes. Without it (the reader
// does not implement it) the agent reads the idle time every Config.Tick
// while idle.
type InputWaiter interface {
	// WaitInput returns nil once the user gives input after the call began
	// (input within the last moment before it may count too), ctx's error
	// (wrapped) when ctx ends first, and another error when it cannot wait.
	WaitInput(ctx context.Context) error
}

// Uploader sends a batch of beats to the presence service. Errors carry the
// API code (presence.ErrorCode: EUNAUTHORIZED for 401, ERATELIMIT for 429,
// EINVALID…) and implement presence.RetryAfterer when the service sent
// Retry-After; a failure to reach the service is a plain error.
type Uploader interface {
	PostHeartbeats(ctx context.Context, b presence.Batch) (presence.BatchResult, error)
}

// OSEventKind is an OS session change the agent reacts to at once.
type OSEventKind int

// OS events.
const (
	// Locked: the screen locked. The agent beats away at once.
	Locked OSEventKind = iota + 1
	// Unlocked: the screen unlocked. The agent re-samples at once.
	Unlocked
	// Sleeping: the machine is about to sleep. The agent writes its final
	// offline beat, sends it within FinalDeadline, then stays silent until
	// Woke, Unlocked or fresh input.
	Sleeping
	// Woke: the machine resumed. The agent re-samples at once.
	Woke
	// LoggingOut: the session is ending; handled like Sleeping.
	LoggingOut
)

func (k OSEventKind) String() string {
	switch k {
	case Locked:
		return "locked"
	case Unlocked:
		return "unlocked"
	case Sleeping:
		return "sleeping"
	case Woke:
		return "woke"
	case LoggingOut:
		return "logging-out"
	}
	return "unknown"
}

// OSEvent is one OS session change.
type OSEvent struct {
	Kind OSEventKind
	// At is when it happened (zero: when the agent handles it). Beats keep
	// the agent's clock for their own time, so they stay ordered; At is
	// the edge they carry (presence.Beat.Since): the lock, the sleep, the
	// wake. A Sleeping event stamped more than LateSleep before it is
	// handled reports a suspend that is already over (a clock-gap
	// detector notices one only after the wake): its At is the last moment
	// the machine was known awake.
	At time.Time
	// Done, when set, is called once the agent has handled the event: for
	// Sleeping and LoggingOut after the final beat was written and sent (or
	// FinalDeadline passed), so the caller can release a sleep inhibitor.
	Done func()
}

// LateSleep is how old a Sleeping event's At may be for the event to still
// announce a sleep: one announced by the OS is handled within moments, and a
// clock-gap detector reports a suspend at least its threshold (tens of
// seconds) after the last moment it knew the machine awake.
const LateSleep = 10 * time.Second

// Signal is what may keep the user present without input, when the user
// opted in (Config.CountCallsAndMedia): a call (the microphone in use) or
// media (an application holding an idle inhibitor, a video).
type Signal struct {
	// Why is presence.ByCall or presence.ByMedia while a signal is on, and
	// empty while none is.
	Why presence.Why
	// Since is when the signal that is on began.
	Since time.Time
	// Ended, while no signal is on, is when the last one ended (zero: none
	// has yet).
	Ended time.Time
}

// On reports whether a signal is on.
func (s Signal) On() bool { return s.Why == presence.ByCall || s.Why == presence.ByMedia }

// SignalSource reports the OS's call and media signals. The agent reads
// Signal when Changed is ready (Changed is asked afresh after each change,
// so a source may hand out a new channel every time), and never polls it.
type SignalSource interface {
	Signal() Signal
	Changed() <-chan struct{}
	// Name names the backends, for diagnostics.
	Name() string
	Close() error
}

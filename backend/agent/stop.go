package agent

import (
	"context"
	"errors"
	"syscall"

	"github.com/lastseen/lastseen/backend/presence"
)

// StopCause says why Run's context ended, for the final beat's reason:
// cancel it with context.WithCancelCause and a StopCause (for instance
// StopCause{presence.EndShutdown} when the session ends). A context
// cancelled without one is a quit, except for a SIGTERM caught by
// signal.NotifyContext: what a session manager sends at logout or shutdown.
type StopCause struct {
	Reason presence.EndReason
}

func (c StopCause) Error() string { return "agent stopped: " + string(c.Reason) }

// sigtermCause is the cause signal.NotifyContext gives its context on a
// SIGTERM ("an error describing the signal"; its text is the only handle
// the standard library offers, and a test holds it to that).
var sigtermCause = syscall.SIGTERM.String() + " signal received"

// stopReason is the reason of the final beat when ctx has ended.
func stopReason(ctx context.Context) presence.EndReason {
	cause := context.Cause(ctx)
	var sc StopCause
	switch {
	case errors.As(cause, &sc) && sc.Reason != "" && sc.Reason.BeatValid():
		return sc.Reason
	case cause != nil && cause.Error() == sigtermCause:
		return presence.EndShutdown
	}
	return presence.EndQuit
}

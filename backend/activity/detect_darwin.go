//go:build darwin

package activity

import (
	"context"
	"time"
)

// Backend names on macOS.
const (
	CGEventSourceName = "cgeventsource"
	CGSessionName     = "cgsession-poll"
)

// On macOS the idle time is the HID system's own counter, and the lock state
// is read from the console session's dictionary (CGSSessionScreenIsLocked).
// Both need cgo; a build without it offers neither.
//
// Missing here: NSWorkspace's willSleep/didWake and the distributed
// com.apple.screenIsLocked notifications need an AppKit run loop, which
// this package does not own. Wake is still caught by the clock-gap detector
// (Go's monotonic clock stops during sleep on macOS), so a sleep shows as
// Sleeping stamped at the last tick before it, reported after the wake;
// locks are seen within Config.LockPoll.
func idleCandidates(Config) []candidate[IdleSource] {
	return []candidate[IdleSource]{{CGEventSourceName, func(context.Context) (IdleSource, error) {
		if err := cgoAvailable(); err != nil {
			return nil, err
		}
		return macIdle{}, nil
	}}}
}

func watcherCandidates(c Config) []candidate[Watcher] {
	return []candidate[Watcher]{{CGSessionName, func(ctx context.Context) (Watcher, error) {
		if err := cgoAvailable(); err != nil {
			return nil, err
		}
		return newPollLock(ctx, CGSessionName, macLocked, c.LockPoll, c.Now, c.Logger)
	}}}
}

type macIdle struct{}

func (macIdle) Name() string { return CGEventSourceName }

func (macIdle) Idle(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return macIdleTime()
}

func (macIdle) Close() error { return nil }

//go:build darwin

package activity

import (
	"context"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// CoreAudioMicName is the Name of the macOS microphone watcher.
const CoreAudioMicName = "coreaudio-microphone"

// On macOS the microphone is in use when an audio device that has input
// streams is running in any process (CoreAudio's
// kAudioDevicePropertyDeviceIsRunningSomewhere), read every
// SignalConfig.MicPoll while the SignalSource is open: a few calls to the
// HAL, no subprocess. It needs cgo; a build without it has no microphone
// watcher (and macOS has no media watcher yet: IOKit's power assertions,
// PreventUserIdleDisplaySleep, would be the one).
//
// Why polled: CoreAudio's property listeners call back on a HAL thread into
// C, which would need an exported Go callback and a listener per device
// kept in step with devices coming and going; a read every 10 s costs less
// than that code is worth.
//
// Known gap: "running somewhere" is per device, not per direction, so
// playing music through a headset whose microphone is the same device (USB
// and Bluetooth headsets, not the built-in microphone) counts as a call.
func micCandidates(c SignalConfig) []candidate[*signalWatcher] {
	return []candidate[*signalWatcher]{{CoreAudioMicName, func(context.Context) (*signalWatcher, error) {
		on, err := macInputRunning()
		if err != nil {
			return nil, err
		}
		return &signalWatcher{
			name: CoreAudioMicName, why: presence.ByCall, on: on,
			run: func(ctx context.Context, report func(bool)) {
				pollSignal(ctx, c, CoreAudioMicName, macInputRunning, report)
			},
			close: func() error { return nil },
		}, nil
	}}}
}

// pollSignal reads the state every c.MicPoll until ctx ends; a failed read
// counts as "not in use".
func pollSignal(ctx context.Context, c SignalConfig, name string, read func() (bool, error), report func(bool)) {
	t := time.NewTicker(c.MicPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		on, err := read()
		if err != nil && !failing {
			c.Logger.Warn("reading the microphone state failed", logBackend, name, logErr, err)
		}
		failing = err != nil
		report(on && err == nil)
	}
}

//go:build windows

package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/lastseen/lastseen/backend/presence"
)

// ConsentStoreName is the Name of the Windows microphone watcher.
const ConsentStoreName = "consentstore-microphone"

// consentMicKey is where Windows (10 1903 and later) records, per app, when
// it last began and stopped using the microphone: packaged apps as direct
// subkeys, desktop apps under NonPackaged (one subkey per executable path).
// An app whose LastUsedTimeStart is set and whose LastUsedTimeStop is 0 is
// recording now: the privacy indicator in the taskbar reads the same data.
const consentMicKey = `Software\Microsoft\Windows\CurrentVersion\CapabilityAccessManager\ConsentStore\microphone`

// Why this and not the media: display-required power requests (what a
// player sets while a video plays) are listed only by powercfg /requests,
// which needs an administrator, so Windows has no media signal here.
//
// Why it costs nothing while nothing changes: RegNotifyChangeKeyValue
// signals an event when anything under the key changes, and the watcher
// waits on that event; it reads the store again only then. Should
// notification fail, it reads the store every SignalConfig.MicPoll instead.
func micCandidates(c SignalConfig) []candidate[*signalWatcher] {
	return []candidate[*signalWatcher]{{ConsentStoreName, func(context.Context) (*signalWatcher, error) {
		return openConsentStore(c)
	}}}
}

func openConsentStore(c SignalConfig) (*signalWatcher, error) {
	key, err := registry.OpenKey(registry.CURRENT_USER, consentMicKey,
		registry.QUERY_VALUE|registry.ENUMERATE_SUB_KEYS|registry.NOTIFY)
	if err != nil {
		return nil, unsupported("%s: open HKCU\\%s: %v", ConsentStoreName, consentMicKey, err)
	}
	on, err := micInUse(key)
	if err != nil {
		key.Close()
		return nil, err
	}
	// Manual reset: the loop resets it before each new registration.
	changed, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		key.Close()
		return nil, fmt.Errorf("%s: CreateEvent: %w", ConsentStoreName, err)
	}
	stop, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(changed)
		key.Close()
		return nil, fmt.Errorf("%s: CreateEvent: %w", ConsentStoreName, err)
	}
	w := &consentWatch{key: key, changed: changed, stop: stop, poll: c.MicPoll, logger: c.Logger}
	return &signalWatcher{
		name: ConsentStoreName, why: presence.ByCall, on: on,
		run: w.run, close: w.close,
	}, nil
}

type consentWatch struct {
	key           registry.Key
	changed, stop windows.Handle
	poll          time.Duration
	logger        *slog.Logger
}

func (w *consentWatch) run(ctx context.Context, report func(bool)) {
	// ctx's end wakes the wait below through the stop event.
	defer context.AfterFunc(ctx, func() { windows.SetEvent(w.stop) })()
	armed, notifyFailed, readFailed := false, false, false
	for ctx.Err() == nil {
		if !armed {
			// Registered before the read, so a change during the read is
			// not lost; thread-agnostic, since a goroutine may change OS
			// threads. A registration lasts until it fires.
			windows.ResetEvent(w.changed)
			err := windows.RegNotifyChangeKeyValue(windows.Handle(w.key), true,
				windows.REG_NOTIFY_CHANGE_NAME|windows.REG_NOTIFY_CHANGE_LAST_SET|windows.REG_NOTIFY_THREAD_AGNOSTIC,
				w.changed, true)
			armed = err == nil
			if err != nil && !notifyFailed {
				w.logger.Info("cannot be told when the microphone is used; polling", logBackend, ConsentStoreName,
					"every", w.poll, logErr, err)
				notifyFailed = true
			}
		}
		on, rerr := micInUse(w.key)
		if rerr != nil {
			// Nothing known counts as nothing recording.
			if !readFailed {
				w.logger.Warn("reading the microphone state failed", logBackend, ConsentStoreName, logErr, rerr)
			}
			on = false
		}
		readFailed = rerr != nil
		report(on)
		wait := uint32(windows.INFINITE)
		if !armed || rerr != nil {
			wait = uint32(w.poll.Milliseconds())
		}
		ev, err := windows.WaitForMultipleObjects([]windows.Handle{w.changed, w.stop}, false, wait)
		if err != nil {
			w.logger.Warn("waiting for the microphone state failed", logBackend, ConsentStoreName, logErr, err)
			report(false)
			return
		}
		switch ev {
		case windows.WAIT_OBJECT_0:
			armed = false
		case windows.WAIT_OBJECT_0 + 1:
			return
		}
	}
}

func (w *consentWatch) close() error {
	return errors.Join(
		w.key.Close(),
		windows.CloseHandle(w.changed),
		windows.CloseHandle(w.stop),
	)
}

// micInUse reports whether any app under key (and its NonPackaged subkey)
// is using the microphone now.
func micInUse(key registry.Key) (bool, error) {
	return appsInUse(key, true)
}

func appsInUse(key registry.Key, top bool) (bool, error) {
	names, err := key.ReadSubKeyNames(-1)
	if err != nil {
		return false, fmt.Errorf("%s: list apps: %w", ConsentStoreName, err)
	}
	for _, name := range names {
		sub, err := registry.OpenKey(key, name, registry.QUERY_VALUE|registry.ENUMERATE_SUB_KEYS)
		if err != nil {
			continue // removed since the listing, or not ours to read
		}
		var inUse bool
		if top && name == "NonPackaged" {
			inUse, err = appsInUse(sub, false)
		} else {
			inUse = appInUse(sub)
		}
		sub.Close()
		if err != nil {
			return false, err
		}
		if inUse {
			return true, nil
		}
	}
	return false, nil
}

// appInUse: a use has begun and not stopped. Both values must be there: an
// entry missing one is a record of a different shape, and an unknown must
// never count as a call.
func appInUse(app registry.Key) bool {
	start, _, err := app.GetIntegerValue("LastUsedTimeStart")
	if err != nil || start == 0 {
		return false
	}
	stop, _, err := app.GetIntegerValue("LastUsedTimeStop")
	return err == nil && stop == 0
}

//go:build linux

package activity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// ALSACaptureName is the Name of the Linux microphone watcher.
const ALSACaptureName = "alsa-capture"

// Whatever records on Linux — an app talking to ALSA itself, or PulseAudio
// or PipeWire on an app's behalf — ends at an ALSA capture substream, whose
// /proc/asound/cardN/pcmMc/subK/status reads "state: RUNNING" while audio is
// being captured and "closed" once nobody has the device open. Playback
// and monitor sources never appear there, so music does not count as a call.
//
// Why not the sound server itself: PipeWire's native protocol and
// PulseAudio's (which would say which stream records, and could tell a
// noise-suppression filter from a call) are binary protocols with their own
// handshakes and no pure Go client worth their weight here, and asking
// pactl or pw-dump means a subprocess per sample.
//
// Why it costs (almost) nothing: the kernel tells of every open and close of
// a capture device node (/dev/snd/pcmC*D*c) through inotify, and the sound
// servers close a device a few seconds after its last stream ends (their
// suspend-on-idle). So while no capture device is open the watcher sleeps
// in a read with no timer. Only while one is open (something records, or
// is about to, or a server configured never to suspend keeps it open) does
// it read the few status files every SignalConfig.MicPoll, because a
// stream paused or stopped without a close sends no event. Where inotify
// cannot watch the nodes (no read access, no /dev/snd) it polls at that
// rate the whole time the SignalSource is open.
//
// Known gaps: a Bluetooth headset's microphone goes from BlueZ straight to
// the sound server and never through ALSA, so a call on one is not seen; a
// filter that records all the time (noise suppression, a voice assistant)
// makes every moment a call; a call's end is seen when the server closes
// the device (its suspend timeout, 5 s by default) or at the next poll.
func micCandidates(c SignalConfig) []candidate[*signalWatcher] {
	return []candidate[*signalWatcher]{{ALSACaptureName, func(context.Context) (*signalWatcher, error) {
		return openALSACapture(c)
	}}}
}

// openedSettle is how soon after a capture device opens the watcher looks
// again when it was not yet RUNNING: an app opens, configures and starts
// the device within milliseconds, and the event came at the open.
const openedSettle = time.Second

func openALSACapture(c SignalConfig) (*signalWatcher, error) {
	if fi, err := os.Stat(c.ProcAsound); err != nil || !fi.IsDir() {
		return nil, unsupported("%s: no ALSA here (%s is missing)", ALSACaptureName, c.ProcAsound)
	}
	st, err := readCapture(c.ProcAsound)
	if err != nil {
		return nil, err
	}
	a := &alsaWatch{proc: c.ProcAsound, dev: c.DevSnd, poll: c.MicPoll, logger: c.Logger}
	if err := a.watch(); err != nil {
		c.Logger.Info("cannot be told when a microphone opens; polling its state", logBackend, ALSACaptureName,
			"every", c.MicPoll, logErr, err)
	}
	return &signalWatcher{
		name: ALSACaptureName, why: presence.ByCall, on: st.running,
		run:   func(ctx context.Context, report func(bool)) { a.run(ctx, st, report) },
		close: a.close,
	}, nil
}

// captureState sums up every capture substream.
type captureState struct {
	running bool // one is capturing
	open    bool // one is open (whatever its state)
}

// readCapture reads every capture substream's status. A substream that
// vanishes between the listing and the read (a USB device unplugged) is
// skipped.
func readCapture(proc string) (captureState, error) {
	var st captureState
	files, err := filepath.Glob(filepath.Join(proc, "card[0-9]*", "pcm[0-9]*c", "sub[0-9]*", "status"))
	if err != nil {
		return st, fmt.Errorf("%s: %w", ALSACaptureName, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("%s: %w", ALSACaptureName, err)
		}
		state, err := substreamState(b)
		if err != nil {
			return st, fmt.Errorf("%s: %s: %w", ALSACaptureName, f, err)
		}
		if state != "closed" {
			st.open = true
		}
		if state == "RUNNING" {
			st.running = true
		}
	}
	return st, nil
}

// substreamState returns the state an ALSA substream status file shows:
// "closed", or the PCM state name after "state:" (OPEN, SETUP, PREPARED,
// RUNNING, XRUN, DRAINING, PAUSED, SUSPENDED, DISCONNECTED).
func substreamState(b []byte) (string, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	s := strings.TrimSpace(string(line))
	if s == "closed" {
		return s, nil
	}
	name, value, ok := strings.Cut(s, ":")
	value = strings.TrimSpace(value)
	if !ok || strings.TrimSpace(name) != "state" || value == "" || strings.ContainsAny(value, " \t") {
		return "", fmt.Errorf("unexpected status %q", s)
	}
	return value, nil
}

// alsaWatch is the Linux microphone watcher's loop.
type alsaWatch struct {
	proc, dev string
	poll      time.Duration
	logger    *slog.Logger

	ino    *os.File      // inotify; nil when polling all the time
	events chan struct{} // a capture node opened or closed, or /dev/snd changed (coalesced)
	done   chan struct{} // closed when the reader stops
}

// inotify masks: opens and closes of the capture nodes, and nodes coming
// and going in /dev/snd (a USB headset plugged in; IN_ATTRIB because the
// user's access to a new node arrives a moment after the node itself).
const (
	nodeMask = syscall.IN_OPEN | syscall.IN_CLOSE_WRITE | syscall.IN_CLOSE_NOWRITE
	dirMask  = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_TO | syscall.IN_ATTRIB
)

// watch sets up inotify on /dev/snd and its capture nodes.
func (a *alsaWatch) watch() error {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	// Non-blocking, so the runtime's poller waits for it and Close ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	if _, err := syscall.InotifyAddWatch(fd, a.dev, dirMask); err != nil {
		f.Close()
		return fmt.Errorf("watch %s: %w", a.dev, err)
	}
	a.ino = f
	if err := a.watchNodes(); err != nil {
		f.Close()
		a.ino = nil
		return err
	}
	a.events = make(chan struct{}, 1)
	a.done = make(chan struct{})
	go a.read()
	return nil
}

// watchNodes watches every capture node now in /dev/snd; watching one
// already watched changes nothing.
func (a *alsaWatch) watchNodes() error {
	nodes, err := filepath.Glob(filepath.Join(a.dev, "pcmC[0-9]*D[0-9]*c"))
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if _, err := syscall.InotifyAddWatch(int(a.ino.Fd()), n, nodeMask); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("watch %s: %w", n, err)
		}
	}
	return nil
}

// read turns inotify's records into coalesced wake-ups; their content does
// not matter, since every wake-up reads the whole state again.
func (a *alsaWatch) read() {
	defer close(a.done)
	defer close(a.events)
	buf := make([]byte, 4096)
	for {
		if _, err := a.ino.Read(buf); err != nil {
			return
		}
		select {
		case a.events <- struct{}{}:
		default:
		}
	}
}

func (a *alsaWatch) run(ctx context.Context, st captureState, report func(bool)) {
	events := a.events // nil (never ready) when polling
	polling := a.ino == nil
	settle := false
	failing := false
	for {
		var tick <-chan time.Time
		switch {
		case settle:
			tick = time.After(min(openedSettle, a.poll))
		case polling || st.open:
			tick = time.After(a.poll)
		}
		settle = false
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				a.logger.Warn("microphone events stopped; polling its state", logBackend, ALSACaptureName)
				events, polling = nil, true
				continue
			}
			if err := a.watchNodes(); err != nil && !polling {
				a.logger.Info("cannot watch a new microphone; polling its state", logBackend, ALSACaptureName,
					"every", a.poll, logErr, err)
				polling = true
			}
			settle = true
		case <-tick:
		}
		next, err := readCapture(a.proc)
		if err != nil {
			// Nothing known counts as nothing recording.
			if !failing {
				a.logger.Warn("reading the microphone state failed", logBackend, ALSACaptureName, logErr, err)
				failing = true
			}
			st = captureState{}
			report(false)
			continue
		}
		failing = false
		settle = settle && next.open && !next.running
		st = next
		report(st.running)
	}
}

func (a *alsaWatch) close() error {
	if a.ino == nil {
		return nil
	}
	err := a.ino.Close()
	<-a.done
	return err
}

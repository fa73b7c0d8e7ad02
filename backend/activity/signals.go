package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// A call or a video is not "idle": with the user's opt-in, an unlocked
// session stays active past the idle threshold while an application holds
// an idle inhibitor (a video, a presentation) or the microphone is in use (a
// call). This file combines the OS watchers that tell so; each platform's
// watchers live in inhibit_*.go and mic_*.go:
//
//	Linux/BSD  media: "gnome-session-inhibitor" (org.gnome.SessionManager, idle flag),
//	                  "powermanagement-inhibitor" (org.freedesktop.PowerManagement.Inhibit: KDE, Xfce),
//	                  "logind-idle-inhibitor" (idle "block" inhibitors of this user)
//	           call:  "alsa-capture" (Linux: a capture substream RUNNING)
//	Windows    call:  "consentstore-microphone" (an app's microphone use has begun and not ended)
//	macOS      call:  "coreaudio-microphone" (an input device running somewhere; cgo builds only)

// Signal is what keeps a user present without input.
type Signal struct {
	Why   presence.Why // presence.ByCall (microphone in use) or presence.ByMedia (idle inhibitor); "" when none
	Since time.Time    // when the current signal began (zero when none)
	Ended time.Time    // when the last signal ended (zero if none ended since start)
}

// SignalSource watches the OS for presence without input. Event-driven where the OS allows.
type SignalSource interface {
	Signal() Signal           // the current state; cheap, no I/O
	Changed() <-chan struct{} // receives (coalesced, never blocks the watcher) when Signal changes
	Name() string             // e.g. "gnome-session-inhibitor + alsa-capture", for Diagnostics
	Close() error
}

// DetectSignals starts every signal watcher available on this OS/session and combines them (a call wins over media when both).
//
// Since is when the signal named by Why began, as seen by its watcher (a
// signal already on at start counts from the start). Ended moves only when
// the last signal of any kind ends: a call that ends while a video goes on
// leaves the user present (Why back to ByMedia, Since the video's), so
// "idle from the later of the last input and Ended" stays true.
//
// The error wraps ErrUnsupported when no watcher works here, and names
// what was tried. Changed is never closed, not even by Close.
func DetectSignals(ctx context.Context, log *slog.Logger, now func() time.Time) (SignalSource, error) {
	return SignalConfig{Logger: log, Now: now}.Detect(ctx)
}

// SignalConfig tunes signal detection. The zero value is ready to use.
type SignalConfig struct {
	Logger *slog.Logger
	// Getenv reads the session environment (DBUS_SESSION_BUS_ADDRESS,
	// DBUS_SYSTEM_BUS_ADDRESS). Default os.Getenv; tests point it at their
	// own bus.
	Getenv func(string) string
	// Now stamps Since and Ended. Default time.Now.
	Now func() time.Time
	// ProbeTimeout bounds each watcher's probe. Default 3 s.
	ProbeTimeout time.Duration
	// MicPoll is how often a microphone watcher that cannot be told of a
	// change reads the state again (see mic_*.go). Default 10 s.
	MicPoll time.Duration
	// ProcAsound and DevSnd are where Linux shows ALSA's substream status
	// files and device nodes. Defaults /proc/asound and /dev/snd; tests
	// point them at fakes (a missing ProcAsound leaves the microphone
	// watcher out).
	ProcAsound, DevSnd string
}

func (c SignalConfig) withDefaults() SignalConfig {
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
	if c.MicPoll <= 0 {
		c.MicPoll = 10 * time.Second
	}
	if c.ProcAsound == "" {
		c.ProcAsound = "/proc/asound"
	}
	if c.DevSnd == "" {
		c.DevSnd = "/dev/snd"
	}
	return c
}

// Detect is DetectSignals with this configuration.
func (c SignalConfig) Detect(ctx context.Context) (SignalSource, error) {
	c = c.withDefaults()
	var (
		ws    []*signalWatcher
		tried []string
	)
	for _, cand := range signalCandidates(c) {
		pctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout)
		w, err := cand.open(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				for _, w := range ws {
					w.close()
				}
				return nil, fmt.Errorf("detect presence signals: %w", ctx.Err())
			}
			c.Logger.Debug("presence signal unavailable", logBackend, cand.name, logErr, err)
			tried = append(tried, withName(cand.name, err))
			continue
		}
		c.Logger.Info("presence signal selected", logBackend, w.name, "on", w.on)
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		if len(tried) == 0 {
			return nil, fmt.Errorf("no presence signal for this platform: %w", ErrUnsupported)
		}
		return nil, fmt.Errorf("no presence signal works (%s): %w", strings.Join(tried, "; "), ErrUnsupported)
	}
	return startSignals(c.Now, ws), nil
}

// signalCandidates are the platform's inhibitor watchers, then its
// microphone watchers.
func signalCandidates(c SignalConfig) []candidate[*signalWatcher] {
	return append(inhibitCandidates(c), micCandidates(c)...)
}

// signalWatcher is one OS source of presence without input, opened and
// probed: on is its state at the probe.
type signalWatcher struct {
	name string
	why  presence.Why // ByCall or ByMedia
	on   bool
	// run reports the state until ctx ends (it may repeat a state); a
	// watcher that loses its source reports false: an unknown signal must
	// never keep a user present.
	run func(ctx context.Context, report func(on bool))
	// close releases the watcher's connection once run has returned.
	close func() error
}

// signalSource runs the watchers and combines their reports.
type signalSource struct {
	name string
	ws   []*signalWatcher
	comb *combiner

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func startSignals(now func() time.Time, ws []*signalWatcher) *signalSource {
	names := make([]string, len(ws))
	kinds := make([]presence.Why, len(ws))
	for i, w := range ws {
		names[i], kinds[i] = w.name, w.why
	}
	comb := newCombiner(now, kinds)
	for i, w := range ws {
		comb.init(i, w.on)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &signalSource{name: strings.Join(names, " + "), ws: ws, comb: comb, cancel: cancel}
	for i, w := range ws {
		s.wg.Go(func() { w.run(ctx, func(on bool) { comb.set(i, on) }) })
	}
	return s
}

func (s *signalSource) Signal() Signal           { return s.comb.signal() }
func (s *signalSource) Changed() <-chan struct{} { return s.comb.changed }
func (s *signalSource) Name() string             { return s.name }

func (s *signalSource) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		var errs []error
		for _, w := range s.ws {
			if err := w.close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", w.name, err))
			}
		}
		s.err = errors.Join(errs...)
	})
	return s.err
}

// combiner folds the watchers' states into one Signal: a call wins over
// media, Since is when the winning kind's first watcher turned on, Ended
// when the last watcher of any kind turned off.
type combiner struct {
	now     func() time.Time
	changed chan struct{}

	mu    sync.Mutex
	kinds []presence.Why // per watcher
	on    []bool         // per watcher
	since map[presence.Why]time.Time
	sig   Signal
}

func newCombiner(now func() time.Time, kinds []presence.Why) *combiner {
	return &combiner{
		now: now, changed: make(chan struct{}, 1),
		kinds: kinds, on: make([]bool, len(kinds)), since: map[presence.Why]time.Time{},
	}
}

// init sets watcher i's state at the start, without notifying.
func (c *combiner) init(i int, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(i, on)
}

// set records watcher i's state and notifies when the Signal changed.
func (c *combiner) set(i int, on bool) {
	c.mu.Lock()
	changed := c.apply(i, on)
	c.mu.Unlock()
	if changed {
		select {
		case c.changed <- struct{}{}:
		default: // a notice is already pending; the reader sees the latest Signal
		}
	}
}

func (c *combiner) apply(i int, on bool) bool {
	if c.on[i] == on {
		return false
	}
	c.on[i] = on
	t := c.now()
	kind := c.kinds[i]
	kindOn := false
	for j, k := range c.kinds {
		if k == kind && c.on[j] {
			kindOn = true
			break
		}
	}
	switch {
	case !kindOn:
		delete(c.since, kind)
	case c.since[kind].IsZero():
		c.since[kind] = t
	}
	next := Signal{Ended: c.sig.Ended}
	for _, k := range []presence.Why{presence.ByCall, presence.ByMedia} {
		if s, ok := c.since[k]; ok {
			next.Why, next.Since = k, s
			break
		}
	}
	if next.Why == "" && c.sig.Why != "" {
		next.Ended = t
	}
	if next == c.sig {
		return false
	}
	c.sig = next
	return true
}

func (c *combiner) signal() Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sig
}

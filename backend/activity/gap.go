package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// GapName is the Name of the clock-gap detector.
const GapName = "clock-gap"

// GapConfig tunes the clock-gap detector. Zero values take defaults.
type GapConfig struct {
	// Tick is how often the detector looks at the clocks. It bounds how
	// early before a silent suspend the Sleeping event is stamped. Default
	// 15 s: the agent beats every 30 s, so a span already ends at a beat up
	// to that long before a suspend, and the always-on agent should not wake
	// more often than it must.
	Tick time.Duration
	// Threshold is how much time may go missing between two ticks before
	// it counts as a suspend. Default 30 s: far above scheduling jitter on
	// a loaded machine, below the service's pulse window (60 s), so every
	// suspend that would split a span is seen.
	Threshold time.Duration
	// Wall reads the wall clock. Default time.Now without its monotonic
	// reading.
	Wall func() time.Time
	// Mono reads a monotonic clock as a duration since an arbitrary origin.
	// Default: time elapsed since the detector started, measured on Go's
	// monotonic clock.
	Mono   func() time.Duration
	Logger *slog.Logger
}

// GapDetector is a Watcher that reports suspends no signal announced.
//
// A suspend shows in one of two ways, depending on the platform's monotonic
// clock: where it stops during sleep (Linux CLOCK_MONOTONIC, macOS), the wall
// clock advances by much more than the monotonic one between two ticks; where
// it keeps counting (Windows interrupt time, a process frozen by a debugger
// or a paused VM), the tick simply arrives far later than scheduled. Either
// way the detector emits Sleeping stamped at the last tick before the gap and
// Woke stamped now. A wall clock stepped forward by more than Threshold looks
// the same and is reported the same way; a step backwards is ignored.
type GapDetector struct {
	cfg    GapConfig
	out    chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// NewGapDetector starts a clock-gap detector; Close stops it.
func NewGapDetector(cfg GapConfig) *GapDetector {
	if cfg.Tick <= 0 {
		cfg.Tick = 15 * time.Second
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 30 * time.Second
	}
	if cfg.Wall == nil {
		cfg.Wall = func() time.Time { return time.Now().Round(0) }
	}
	if cfg.Mono == nil {
		start := time.Now()
		cfg.Mono = func() time.Duration { return time.Since(start) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &GapDetector{cfg: cfg, out: make(chan Event, 4), cancel: cancel, done: make(chan struct{})}
	go g.run(ctx)
	return g
}

// Name implements Watcher.
func (g *GapDetector) Name() string { return GapName }

// Events implements Watcher.
func (g *GapDetector) Events() <-chan Event { return g.out }

// LockedNow implements Watcher: the clocks know nothing of the screen.
func (g *GapDetector) LockedNow(context.Context) (bool, error) {
	return false, unsupported("%s cannot tell the lock state", GapName)
}

// Close stops the detector and closes Events.
func (g *GapDetector) Close() error {
	g.once.Do(func() {
		g.cancel()
		<-g.done
	})
	return nil
}

func (g *GapDetector) run(ctx context.Context) {
	defer close(g.done)
	defer close(g.out)
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	wall, mono := g.cfg.Wall(), g.cfg.Mono()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w, m := g.cfg.Wall(), g.cfg.Mono()
		if missing := gapMissing(w.Sub(wall), m-mono, g.cfg.Tick); missing > g.cfg.Threshold {
			g.cfg.Logger.Info("clock gap: the machine was suspended",
				"from", wall, "to", w, "missing", missing.Round(time.Second))
			for _, ev := range []Event{{Kind: Sleeping, At: wall, Source: GapName}, {Kind: Woke, At: w, Source: GapName}} {
				select {
				case g.out <- ev:
				case <-ctx.Done():
					return
				}
			}
			// Waiting on a slow reader is not a suspend: measure from now.
			w, m = g.cfg.Wall(), g.cfg.Mono()
		}
		wall, mono = w, m
	}
}

// gapMissing is how much time went unaccounted for between two ticks that
// should be tick apart: the wall clock running ahead of the monotonic one,
// or the monotonic interval itself overshooting the schedule, whichever is
// larger.
func gapMissing(dWall, dMono, tick time.Duration) time.Duration {
	return max(dWall-dMono, dMono-tick, 0)
}

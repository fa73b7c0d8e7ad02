package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// pollLock is a Watcher for platforms that can read the lock state but have
// no notification reachable without a window or run loop: it reads the
// state every interval and reports changes. A lock is noticed within one
// interval, which is far inside the service's pulse window.
type pollLock struct {
	name     string
	read     func(ctx context.Context) (bool, error)
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	out    chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// newPollLock probes read once and starts polling it.
func newPollLock(ctx context.Context, name string, read func(context.Context) (bool, error), interval time.Duration, now func() time.Time, logger *slog.Logger) (*pollLock, error) {
	locked, err := read(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	p := &pollLock{
		name: name, read: read, interval: interval, now: now, logger: logger,
		out: make(chan Event, 4), cancel: cancel, done: make(chan struct{}),
	}
	go p.run(rctx, locked)
	return p, nil
}

func (p *pollLock) Name() string                                { return p.name }
func (p *pollLock) Events() <-chan Event                        { return p.out }
func (p *pollLock) LockedNow(ctx context.Context) (bool, error) { return p.read(ctx) }

func (p *pollLock) Close() error {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
	return nil
}

func (p *pollLock) run(ctx context.Context, locked bool) {
	defer close(p.done)
	defer close(p.out)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := p.read(ctx)
		if err != nil {
			// Log the first failure and the recovery, not every poll.
			if !failing {
				p.logger.Warn("reading the lock state failed", logBackend, p.name, logErr, err)
				failing = true
			}
			continue
		}
		if failing {
			p.logger.Info("reading the lock state works again", logBackend, p.name)
			failing = false
		}
		if now == locked {
			continue
		}
		locked = now
		ev := Event{Kind: Unlocked, At: p.now(), Source: p.name}
		if locked {
			ev.Kind = Locked
		}
		select {
		case p.out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

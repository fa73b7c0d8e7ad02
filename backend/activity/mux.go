package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// mux merges several watchers into one and removes what they say twice.
type mux struct {
	name   string
	logger *slog.Logger
	ws     []Watcher
	out    chan Event
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// newMux starts merging ws; it owns them and closes them on Close. The
// initial lock state is read from the watchers so that a first "unlocked"
// while already unlocked is not reported.
func newMux(ctx context.Context, logger *slog.Logger, ws ...Watcher) *mux {
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name()
	}
	m := &mux{
		name:   strings.Join(names, "+"),
		logger: logger,
		ws:     ws,
		out:    make(chan Event, 16),
		done:   make(chan struct{}),
	}
	st := newDedup()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if locked, err := m.LockedNow(lctx); err == nil {
		st.locked = &locked
	}
	cancel()

	rctx, rcancel := context.WithCancel(context.Background())
	m.cancel = rcancel
	in := make(chan Event)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			for ev := range w.Events() {
				select {
				case in <- ev:
				case <-rctx.Done():
					ev.Done()
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(in)
	}()
	go m.run(rctx, in, st)
	return m
}

func (m *mux) run(ctx context.Context, in <-chan Event, st *dedup) {
	defer close(m.done)
	defer close(m.out)
	for ev := range in {
		if !st.keep(ev) {
			m.logger.Debug("duplicate event dropped", logEvent, ev.String())
			ev.Done() // never hold the system awake for an event nobody sees
			continue
		}
		select {
		case m.out <- ev:
		case <-ctx.Done():
			ev.Done()
		}
	}
}

func (m *mux) Name() string         { return m.name }
func (m *mux) Events() <-chan Event { return m.out }

// LockedNow asks each watcher in order and returns the first answer.
func (m *mux) LockedNow(ctx context.Context) (bool, error) {
	var errs []string
	for _, w := range m.ws {
		locked, err := w.LockedNow(ctx)
		if err == nil {
			return locked, nil
		}
		if !errors.Is(err, ErrUnsupported) {
			errs = append(errs, w.Name()+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("read lock state: %s", strings.Join(errs, "; "))
	}
	return false, unsupported("no backend here can tell whether the screen is locked")
}

// Close closes every watcher, then Events.
func (m *mux) Close() error {
	var errs []error
	m.once.Do(func() {
		for _, w := range m.ws {
			if err := w.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", w.Name(), err))
			}
		}
		m.cancel()
		<-m.done
	})
	return errors.Join(errs...)
}

// dedup is the merge rule: lock events pass only when they change the known
// lock state; Sleeping passes only when awake and Woke only when asleep. A
// Sleeping stamped before the last wake describes a suspend that another
// backend already reported (the clock-gap detector notices after the fact),
// so it and the same source's next Woke are dropped.
type dedup struct {
	locked   *bool
	asleep   bool
	lastWake time.Time
	skipWoke map[string]bool
}

func newDedup() *dedup { return &dedup{skipWoke: map[string]bool{}} }

func (d *dedup) keep(ev Event) bool {
	switch ev.Kind {
	case Locked, Unlocked:
		locked := ev.Kind == Locked
		if d.locked != nil && *d.locked == locked {
			return false
		}
		d.locked = &locked
		return true
	case Sleeping:
		if d.asleep {
			return false
		}
		if ev.At.Before(d.lastWake) {
			d.skipWoke[ev.Source] = true
			return false
		}
		d.asleep = true
		return true
	case Woke:
		if d.skipWoke[ev.Source] {
			delete(d.skipWoke, ev.Source)
			return false
		}
		if !d.asleep {
			return false
		}
		d.asleep = false
		d.lastWake = ev.At
		return true
	}
	return false
}

package notify

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Service is what the Watcher needs of the presence service: the
// agent's host implements it over the API client with the device token.
type Service interface {
	// Watches is the user's watch list (GET /api/v1/watches).
	Watches(ctx context.Context) ([]presence.Watch, error)
	// Presence is every person's status now, by handle (GET /api/v1/presence).
	Presence(ctx context.Context) (map[string]presence.State, error)
	// Events opens the live stream (GET /api/v1/events), from now on.
	Events(ctx context.Context) (Stream, error)
}

// Stream is an open live stream.
type Stream interface {
	// Next blocks for the next presence change; an error (io.EOF when the
	// service ended the stream) ends the stream.
	Next() (Change, error)
	// Close ends the stream and unblocks Next.
	Close() error
}

// Defaults of Config.
const (
	// DefaultRefresh is how often the watch list is read again, so a
	// change made elsewhere (another computer, the browser) takes effect.
	DefaultRefresh = 5 * time.Minute
	retryMin       = 2 * time.Second
	retryMax       = 2 * time.Minute
	sendTimeout    = 15 * time.Second
)

// Config wires a Watcher.
type Config struct {
	Service Service // required
	Sender  Sender  // required
	// Self is the user's own handle ("" while unknown): never announced.
	Self func() string
	// Enabled reads the "notifications" setting; nil is always on.
	Enabled func() bool
	// Now is the clock of the rate limits (time.Now when nil).
	Now func() time.Time
	// Refresh is how often the watch list is read (DefaultRefresh when 0).
	Refresh time.Duration
	Logger  *slog.Logger
}

// Watcher follows one service's live presence and announces the people
// the user watches as they come online.
type Watcher struct {
	cfg   Config
	d     *Decider
	nudge chan struct{}
}

// NewWatcher returns a Watcher; nothing runs until Run.
func NewWatcher(cfg Config) *Watcher {
	if cfg.Self == nil {
		cfg.Self = func() string { return "" }
	}
	if cfg.Enabled == nil {
		cfg.Enabled = func() bool { return true }
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, d: NewDecider(cfg.Now), nudge: make(chan struct{}, 1)}
}

// Nudge has the watch list read again soon: the window just changed it.
// It never blocks.
func (w *Watcher) Nudge() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// Run follows the service until ctx ends, or until the service refuses
// the token (a revoked device: pairing again starts a new Watcher). Each
// connection opens the stream, takes a snapshot of who is online
// (announcing nobody), reads the watch list, then announces what it sees
// live; a lost stream is opened again after a backoff, with a new
// snapshot, so a reconnect announces nobody twice.
func (w *Watcher) Run(ctx context.Context) {
	tick := time.NewTicker(w.cfg.Refresh)
	defer tick.Stop()
	wait := retryMin
	for ctx.Err() == nil {
		live, err := w.follow(ctx, tick.C)
		if ctx.Err() != nil {
			return
		}
		if presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			w.cfg.Logger.Info("notifications stopped: the service refuses this device's token", "err", err)
			return
		}
		if live {
			wait = retryMin
		}
		w.cfg.Logger.Debug("notifications: presence stream lost", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
	backoff:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				break backoff
			case <-tick.C:
				w.refresh(ctx)
			case <-w.nudge:
				w.refresh(ctx)
			}
		}
		wait = min(2*wait, retryMax)
	}
}

// follow runs one connection; live tells it got as far as the snapshot.
func (w *Watcher) follow(ctx context.Context, tick <-chan time.Time) (live bool, err error) {
	// The stream opens before the snapshot, so no change falls between.
	st, err := w.cfg.Service.Events(ctx)
	if err != nil {
		return false, err
	}
	done := make(chan struct{})
	changes := make(chan Change, 16)
	ended := make(chan error, 1)
	defer func() {
		close(done)
		st.Close()
	}()
	go func() {
		for {
			c, err := st.Next()
			if err != nil {
				ended <- err
				return
			}
			select {
			case changes <- c:
			case <-done:
				return
			}
		}
	}()
	people, err := w.cfg.Service.Presence(ctx)
	if err != nil {
		return false, err
	}
	w.d.Snapshot(people)
	w.refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-ended:
			// Changes read before the end still count: the reader queued
			// them before it reported the end.
		drain:
			for {
				select {
				case c := <-changes:
					w.observe(ctx, c)
				default:
					break drain
				}
			}
			if err == nil {
				err = errors.New("stream ended")
			}
			return true, err
		case c := <-changes:
			w.observe(ctx, c)
		case <-tick:
			w.refresh(ctx)
		case <-w.nudge:
			w.refresh(ctx)
		}
	}
}

func (w *Watcher) observe(ctx context.Context, c Change) {
	n, ok := w.d.Observe(c, w.cfg.Self(), w.cfg.Enabled())
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if err := w.cfg.Sender.Send(ctx, n); err != nil {
		w.cfg.Logger.Warn("show a notification", "title", n.Title, "err", err)
	}
}

// refresh reads the watch list; on failure the last one stays.
func (w *Watcher) refresh(ctx context.Context) {
	ws, err := w.cfg.Service.Watches(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Debug("notifications: read the watch list", "err", err)
		}
		return
	}
	w.d.SetWatches(ws)
}

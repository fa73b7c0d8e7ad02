package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/ssestream"
)

// pump holds the agent's event stream open and re-emits it to the
// frontend. When the stream drops it reconnects with backoff, resuming with
// Last-Event-ID so no event is missed across an agent's brief hiccup.
type pump struct {
	link   *agentLink
	client *http.Client
	events frontendEvents
	log    *slog.Logger

	// MinBackoff doubles per failure up to MaxBackoff (with jitter).
	minBackoff, maxBackoff time.Duration
	// offlineAfter failed attempts in a row turn "reconnecting" into
	// "offline".
	offlineAfter int
	// idle is how long the stream may stay silent before it is taken for
	// dead; the agent sends a keepalive every 15 s, and a laptop waking
	// from sleep otherwise keeps waiting on a socket nobody will write to.
	idle time.Duration

	mu     sync.Mutex
	state  ConnState
	lastID string
}

func newPump(link *agentLink, client *http.Client, events frontendEvents, log *slog.Logger) *pump {
	return &pump{
		link: link, client: client, events: events, log: log,
		minBackoff: 250 * time.Millisecond, maxBackoff: 10 * time.Second,
		offlineAfter: 4, idle: 45 * time.Second,
		state: ConnReconnecting,
	}
}

// State is the current connection state.
func (p *pump) State() ConnState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *pump) setState(s ConnState) {
	p.mu.Lock()
	changed := p.state != s
	p.state = s
	p.mu.Unlock()
	if changed {
		p.events.Connection(s)
	}
}

// announce re-sends the current state, for a page that (re)loaded.
func (p *pump) announce() { p.events.Connection(p.State()) }

// run streams until ctx ends.
func (p *pump) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		live, err := p.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if live {
			failures = 0 // the backoff restarts after a stream that worked
		}
		failures++
		if failures >= p.offlineAfter {
			p.setState(ConnOffline)
		} else {
			p.setState(ConnReconnecting)
		}
		if failures == 1 || failures == p.offlineAfter {
			// Log the first failure and the fall to offline, not each retry.
			p.log.Info("agent event stream lost; reconnecting", "error", err, "failures", failures)
		}
		p.link.reload() // a restarted agent has a new port and secret
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.backoff(failures)):
		}
	}
}

func (p *pump) backoff(failures int) time.Duration {
	d := p.minBackoff
	for i := 1; i < failures && d < p.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.maxBackoff)
	// Up to 25% jitter, so many windows do not knock in step.
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// stream holds one connection. live reports whether it got as far as an
// open stream.
func (p *pump) stream(ctx context.Context) (live bool, err error) {
	info, err := p.link.current()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, info.URL+"/api/v1/events", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+info.Secret)
	req.Header.Set("Accept", "text/event-stream")
	p.mu.Lock()
	if p.lastID != "" {
		req.Header.Set("Last-Event-ID", p.lastID)
	}
	p.mu.Unlock()

	watchdog := time.AfterFunc(p.idle, func() { cancel(errStreamIdle) })
	defer watchdog.Stop()
	resp, err := p.client.Do(req)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errStreamIdle) {
			err = c
		}
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("agent answered %s", resp.Status)
	}
	p.setState(ConnLive)
	err = readSSE(resp.Body, func() { watchdog.Reset(p.idle) }, func(ev StreamEvent) {
		p.mu.Lock()
		p.lastID = ev.ID
		p.mu.Unlock()
		p.events.Event(ev)
	})
	if c := context.Cause(ctx); errors.Is(c, errStreamIdle) {
		err = c
	}
	if err == nil {
		err = errors.New("the agent closed the stream")
	}
	return true, err
}

var errStreamIdle = errors.New("event stream silent for too long")

// readSSE reads a text/event-stream with the shared ssestream reader (the one SSE
// parser), handing each event to dispatch. alive is called on every event
// and keepalive, for the idle watchdog. A stream the agent ends cleanly is
// nil; one cut mid-line, or over-long, is an error.
func readSSE(r io.Reader, alive func(), dispatch func(StreamEvent)) error {
	er := ssestream.NewReader(r)
	for {
		f, err := er.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		alive()
		if !f.Keepalive {
			dispatch(StreamEvent{ID: f.Event.ID, Event: f.Event.Event, Data: f.Event.Data})
		}
	}
}

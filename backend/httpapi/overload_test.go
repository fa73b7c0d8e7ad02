package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
)

// busyStore is the real store whose writer is full: Ingest refuses as the
// SQLite store does when its group-commit queue is at its bound.
type busyStore struct {
	presence.Store
	err error
}

func (b busyStore) Ingest(context.Context, int64, []presence.Beat, *presence.Facts) (presence.IngestResult, error) {
	return presence.IngestResult{}, b.err
}

// An overloaded store answers 503 with Retry-After (whole seconds, rounded
// up) and the JSON error, and the Go client hands the agent that hint, so
// the beats stay in its outbox and come back later.
func TestHeartbeatOverloadIs503WithRetryAfter(t *testing.T) {
	full := fmt.Errorf("%w: %w", presence.Errorf(presence.EUNAVAILABLE, "too many beats are waiting to be written; retry in a moment"),
		&groupcommit.FullError{Waiting: 10, Max: 10, Wait: 1200 * time.Millisecond})
	e := newEnv(t, func(c *Config) { c.Store = busyStore{Store: c.Store, err: fmt.Errorf("ingest: %w", full)} })
	ann, _ := e.user("ann")
	_, tok := e.device(ann, "laptop")

	r := e.do(request{method: "POST", path: "/api/v1/heartbeats", token: tok, body: batchJSON(beatJSON(1, T0, "active"))})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503", r.status, r.body)
	}
	if got := r.apiError(t); got.Code != presence.EUNAVAILABLE || got.Message != "too many beats are waiting to be written; retry in a moment" {
		t.Errorf("error %+v", got)
	}
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (1.2 s rounded up)", ra)
	}

	_, err := e.client(tok).PostHeartbeats(e.ctx, presence.Batch{SentAt: T0, Beats: []presence.Beat{beat(1, T0, presence.Active)}})
	var ra presence.RetryAfterer
	if presence.ErrorCode(err) != presence.EUNAVAILABLE || !asRetry(err, &ra) || ra.RetryAfter() != 2*time.Second {
		t.Errorf("client error %v, want unavailable with RetryAfter 2s", err)
	}
}

// A 503 without a hint (a closed store) sends no Retry-After: the client
// falls back to its own backoff.
func TestUnavailableWithoutHintHasNoRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Store = busyStore{Store: c.Store, err: presence.Errorf(presence.EUNAVAILABLE, "the store is closed")}
	})
	ann, _ := e.user("ann")
	_, tok := e.device(ann, "laptop")
	r := e.do(request{method: "POST", path: "/api/v1/heartbeats", token: tok, body: batchJSON(beatJSON(1, T0, "active"))})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "" {
		t.Errorf("status %d, Retry-After %q; want 503 and none", r.status, r.header.Get("Retry-After"))
	}
}

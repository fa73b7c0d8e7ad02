package agentdb

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// syncLevel reads PRAGMA synchronous through q: 1 is NORMAL, 2 is FULL.
func syncLevel(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	var level int
	if err := q.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	return level
}

// Only a bare acknowledgement commits without an fsync; everything else,
// and everything after it, is durable again.
func TestSettleRelaxesOnlyAcknowledgements(t *testing.T) {
	ctx := context.Background()
	db := openHeld(t, filepath.Join(t.TempDir(), "agent.db"), Options{})
	if got := syncLevel(t, db.db); got != 2 {
		t.Fatalf("synchronous = %d at open, want 2 (FULL)", got)
	}

	// Inside a relaxed write the connection is at NORMAL.
	var inside int
	if err := db.writeRelaxed(ctx, func(tx *sql.Tx) (func(), error) {
		inside = syncLevel(t, tx)
		return nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if inside != 1 {
		t.Errorf("synchronous inside a relaxed write = %d, want 1 (NORMAL)", inside)
	}
	if got := syncLevel(t, db.db); got != 2 {
		t.Errorf("synchronous after a relaxed write = %d, want 2 (FULL)", got)
	}
	// An ordinary write inside stays FULL.
	if err := db.write(ctx, func(tx *sql.Tx) (func(), error) {
		inside = syncLevel(t, tx)
		return nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if inside != 2 {
		t.Errorf("synchronous inside an ordinary write = %d, want 2", inside)
	}

	// Through the public API: acknowledging works and leaves FULL behind.
	for i := range 3 {
		if _, err := db.Record(ctx, Entry{At: heldT0.Add(time.Duration(i) * time.Second), Local: presence.Active, Send: presence.Active}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Ack(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if d := db.Depth(); d != 1 {
		t.Errorf("depth after ack = %d, want 1", d)
	}
	if got := syncLevel(t, db.db); got != 2 {
		t.Errorf("synchronous after Ack = %d, want 2", got)
	}
}

// A restore that failed is retried before the next commit: no durable
// write ever commits at NORMAL.
func TestFailedRestoreIsRetriedBeforeTheNextCommit(t *testing.T) {
	ctx := context.Background()
	db := openHeld(t, filepath.Join(t.TempDir(), "agent.db"), Options{})
	if _, err := db.db.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	db.relaxed = true // as if the restore after a relaxed write had failed
	db.mu.Unlock()
	var inside int
	if err := db.write(ctx, func(tx *sql.Tx) (func(), error) {
		inside = syncLevel(t, tx)
		return nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if inside != 2 {
		t.Errorf("synchronous inside the next write = %d, want 2 (FULL)", inside)
	}
}

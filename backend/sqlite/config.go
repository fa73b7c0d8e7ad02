package sqlite

import (
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
)

// DefaultMaxWaiting is Config.MaxWaiting's default: room for four full
// batches (presence.MaxBatchBeats) or two thousand single beats, about a
// tenth of a second of the writer's work on a small machine. An accepted
// beat thus never waits long for the disk, and when the writer falls
// behind the rest is answered "later" (503) instead of piling up.
const DefaultMaxWaiting = 4096

// Config is how the store uses SQLite; the zero value is the default.
type Config struct {
	// Synchronous is the writer's PRAGMA synchronous: sqlitedb.SyncFull (the
	// default) fsyncs every group commit, so an acknowledged beat survives a
	// power cut; sqlitedb.SyncNormal fsyncs at checkpoints only, which
	// still survives kill -9 but may lose the last acknowledged beats to a
	// power cut.
	Synchronous string
	// MaxWaiting bounds the beats (counting one more per request) waiting
	// for the group-commit writer; past it Ingest answers EUNAVAILABLE with
	// a retry hint (presence.RetryAfterer). Zero takes DefaultMaxWaiting;
	// negative means no bound (callers wait for room).
	MaxWaiting int
}

// writerOptions are the group-commit writer's options under cfg.
func (cfg Config) writerOptions() groupcommit.Options[ingestReq] {
	o := groupcommit.Options[ingestReq]{
		Linger:     ingestLinger,
		MaxBatch:   ingestMaxBatch,
		Weight:     func(r ingestReq) int { return len(r.beats) + 1 },
		MaxWaiting: cfg.MaxWaiting,
	}
	switch {
	case cfg.MaxWaiting == 0:
		o.MaxWaiting = DefaultMaxWaiting
	case cfg.MaxWaiting < 0:
		o.MaxWaiting = 0
	}
	return o
}

// writeError is what a failure of the group-commit writer means to a
// caller: a closed or full writer is EUNAVAILABLE (a full one with the
// writer's retry hint, which the API sends as Retry-After); anything else
// is internal.
func writeError(deviceID int64, err error) error {
	var full *groupcommit.FullError
	switch {
	case errors.Is(err, groupcommit.ErrClosed):
		return presence.Errorf(presence.EUNAVAILABLE, "the store is closed")
	case errors.As(err, &full):
		return fmt.Errorf("%w: %w", presence.Errorf(presence.EUNAVAILABLE,
			"too many beats are waiting to be written; retry in a moment"), full)
	case diskTrouble(err):
		// Nothing was committed, so nothing acknowledged is lost: the
		// client keeps its beats and retries (503, not a 500 that reads as
		// a bug in the request).
		return fmt.Errorf("%w: %w", presence.Errorf(presence.EUNAVAILABLE,
			"the database cannot be written now (disk full or read-only); retry later"), err)
	}
	return fmt.Errorf("ingest into device %d: %w", deviceID, err)
}

// diskTrouble reports a write that failed for the file's sake (full,
// read-only, I/O error), not for what was written.
func diskTrouble(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrPerm:
		return true
	}
	return false
}

package agentdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Stats describe the outbox and quarantine for Diagnostics.
type Stats struct {
	// OutboxDepth is the number of beats waiting for the service.
	OutboxDepth int64
	// OldestQueued is the time of the oldest waiting beat (zero when none).
	OldestQueued time.Time
	// LastSeq is the highest seq handed out; SentSeq the highest sent to the
	// current target.
	LastSeq, SentSeq int64
	// Compacted counts beats thinned from full outboxes without changing any
	// span; Dropped counts the oldest beats dropped because thinning was not
	// enough. Both are totals over the database's life.
	Compacted, Dropped int64
	// Quarantined is the number of quarantined beats kept; QuarantineDropped
	// the number pushed out of the quarantine by its bound.
	Quarantined, QuarantineDropped int64
	// LastSync is the last successful exchange with the service (zero: never).
	LastSync time.Time
}

// Stats reads the counters.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	rows, err := db.db.QueryContext(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			v    int64
		)
		if err := rows.Scan(&name, &v); err != nil {
			return Stats{}, fmt.Errorf("read stats: %w", err)
		}
		switch name {
		case "last_seq":
			s.LastSeq = v
		case "sent_seq":
			s.SentSeq = v
		case "dropped":
			s.Dropped = v
		case "compacted":
			s.Compacted = v
		case "quarantine_dropped":
			s.QuarantineDropped = v
		case "last_sync_ns":
			if v != 0 {
				s.LastSync = fromNS(v)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	var oldest sql.NullInt64
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(at_ns) FROM outbox`).Scan(&s.OutboxDepth, &oldest); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	if oldest.Valid {
		s.OldestQueued = fromNS(oldest.Int64)
	}
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine`).Scan(&s.Quarantined); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.lastSeq > s.LastSeq {
		s.LastSeq = db.lastSeq
	}
	if h := &db.held; h.active() {
		// What memory holds counts as if it were written.
		s.OutboxDepth = db.depth
		s.OldestQueued = time.Time{}
		if first, err := db.outboxLocked(ctx, 1); err != nil {
			return Stats{}, fmt.Errorf("read stats: %w", err)
		} else if len(first) > 0 {
			s.OldestQueued = first[0].At
		}
		if h.target != "" {
			s.SentSeq = h.sent
		} else {
			s.SentSeq = max(s.SentSeq, h.sent)
		}
		s.Dropped += h.dropped
		s.Quarantined += int64(len(h.quar))
		s.QuarantineDropped += h.quarDropped
		if h.syncedAt.After(s.LastSync) {
			s.LastSync = h.syncedAt
		}
	}
	return s, nil
}

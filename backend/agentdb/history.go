package agentdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// recordHistory merges one real-state beat into the local history with the
// service's own rule, so the device's history and the service's spans agree
// whenever the service heard every beat.
func (db *DB) recordHistory(ctx context.Context, tx *sql.Tx, b presence.Beat) (func(), error) {
	out := presence.Merge(db.tail, b, db.pulse.Window())
	if out.Stale {
		// The clock stepped back past the tail's end: the beat cannot be placed
		// without rewriting history, and the service would ignore it too.
		return nil, nil
	}
	if out.Closed != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE history SET end_ns = ?, closed = 1 WHERE id = ?`,
			toNS(out.Closed.End), out.Closed.ID); err != nil {
			return nil, fmt.Errorf("close span: %w", err)
		}
	}
	tail := out.Tail
	switch {
	case tail == nil:
	case out.Started:
		res, err := tx.ExecContext(ctx, `INSERT INTO history (state, start_ns, end_ns) VALUES (?, ?, ?)`,
			string(tail.State), toNS(tail.Start), toNS(tail.End))
		if err != nil {
			return nil, fmt.Errorf("start span: %w", err)
		}
		if tail.ID, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("start span: %w", err)
		}
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE history SET end_ns = ? WHERE id = ?`,
			toNS(tail.End), tail.ID); err != nil {
			return nil, fmt.Errorf("extend span: %w", err)
		}
	}
	return func() { db.tail = tail }, nil
}

// History lists the device's own spans overlapping [from, to), oldest first,
// every state. A span whose Closed is false may still be running; see
// presence.Span.OpenAt with Pulse().Window().
func (db *DB) History(ctx context.Context, from, to time.Time) ([]presence.Span, error) {
	if to.Before(from) {
		return nil, presence.Errorf(presence.EINVALID, "history range ends before it starts")
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, state, start_ns, end_ns, closed FROM history
		WHERE start_ns < ? AND end_ns >= ? ORDER BY start_ns, id`, toNS(to), toNS(from))
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []presence.Span
	for rows.Next() {
		var (
			s          presence.Span
			state      string
			start, end int64
		)
		if err := rows.Scan(&s.ID, &state, &start, &end, &s.Closed); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		s.State, s.Start, s.End = presence.State(state), fromNS(start), fromNS(end)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return out, nil
}

// ActiveToday is the device's active time on the calendar day (in loc) that
// holds now, from its local history.
func (db *DB) ActiveToday(ctx context.Context, now time.Time, loc *time.Location) (time.Duration, error) {
	if loc == nil {
		loc = time.Local
	}
	n := now.In(loc)
	start := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
	end := time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, loc)
	spans, err := db.History(ctx, start, end)
	if err != nil {
		return 0, err
	}
	days := presence.DailyTotals(spans, loc, start, start)
	if len(days) == 0 {
		return 0, nil
	}
	return time.Duration(days[0].ActiveS) * time.Second, nil
}

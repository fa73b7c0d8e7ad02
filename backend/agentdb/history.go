package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// recordHistory folds one real-state beat into the local history with the
// service's own rule (presence.Fold), so the device's history and the
// service's spans agree whenever the service heard every beat. History has
// no seq of its own: each beat takes the next local one.
func (db *DB) recordHistory(ctx context.Context, tx *sql.Tx, b presence.Beat) (func(), error) {
	b.Seq = db.hist.Presence.LastSeq + 1
	var nextID int64
	f := presence.Fold(db.hist, []presence.Beat{b}, db.pulse.Window(), func() int64 {
		if nextID == 0 {
			nextID = db.histMaxID
		}
		nextID++
		return nextID
	})
	if len(f.Rejected) > 0 {
		return nil, fmt.Errorf("history beat at %v: %s", b.At, f.Rejected[0].Error)
	}
	// A stale beat (the clock stepped back past the last beat) changes no
	// span: it cannot be placed without rewriting history, and the service
	// ignores it too.
	for _, c := range f.Spans {
		sp := c.Span
		var err error
		if c.New {
			_, err = tx.ExecContext(ctx, `INSERT INTO history (id, state, why, start_ns, end_ns, closed, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				sp.ID, string(sp.State), string(sp.Why), toNS(sp.Start), toNS(sp.End), sp.Closed, string(sp.EndReason))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE history SET end_ns = ?, closed = ?, end_reason = ? WHERE id = ?`,
				toNS(sp.End), sp.Closed, string(sp.EndReason), sp.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("write history span: %w", err)
		}
	}
	return func() {
		db.hist = f.Device
		if nextID > db.histMaxID {
			db.histMaxID = nextID
		}
	}, nil
}

// loadHistory restores the history's fold state: its open tail, and as
// its last beat the latest end of any span (an offline beat that closed no
// span leaves no trace, so after a restart the stale rule starts there).
func (db *DB) loadHistory() error {
	var maxID, maxEnd sql.NullInt64
	if err := db.db.QueryRow(`SELECT MAX(id), MAX(end_ns) FROM history`).Scan(&maxID, &maxEnd); err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	db.histMaxID = maxID.Int64
	db.hist = presence.DeviceState{Presence: presence.DevicePresence{State: presence.Offline}}
	if maxEnd.Valid {
		db.hist.Presence.LastBeat = fromNS(maxEnd.Int64)
	}
	var (
		s          presence.Span
		state      string
		start, end int64
	)
	var why string
	err := db.db.QueryRow(`SELECT id, state, why, start_ns, end_ns FROM history
		WHERE closed = 0 ORDER BY id DESC LIMIT 1`).Scan(&s.ID, &state, &why, &start, &end)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read history tail: %w", err)
	default:
		s.State, s.Why, s.Start, s.End = presence.State(state), presence.Why(why).Of(presence.State(state)), fromNS(start), fromNS(end)
		db.hist.Tail = &s
		db.hist.Presence.State = s.State
	}
	return nil
}

// History lists the device's own spans overlapping [from, to), oldest first,
// every state. A span whose Closed is false may still be running; see
// presence.Span.OpenAt with Pulse().Window().
func (db *DB) History(ctx context.Context, from, to time.Time) ([]presence.Span, error) {
	if to.Before(from) {
		return nil, presence.Errorf(presence.EINVALID, "history range ends before it starts")
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, state, why, start_ns, end_ns, closed, end_reason FROM history
		WHERE start_ns < ? AND end_ns >= ? ORDER BY start_ns, id`, toNS(to), toNS(from))
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []presence.Span
	for rows.Next() {
		var (
			s                  presence.Span
			state, why, reason string
			start, end         int64
		)
		if err := rows.Scan(&s.ID, &state, &why, &start, &end, &s.Closed, &reason); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		s.State, s.Why, s.Start, s.End = presence.State(state), presence.Why(why).Of(presence.State(state)), fromNS(start), fromNS(end)
		s.EndReason = presence.EndReason(reason)
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

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// ImportSpans adds closed history to a device (see presence.Store). Each
// chunk of presence.ImportChunk spans is one transaction on the writer
// connection, so heartbeats interleave with a large import, and the
// device's tail is read in that transaction, under the write lock, where
// no beat can move it. Spans written by an earlier chunk are existing
// spans to the next, which is what makes a retried import add only what is
// missing.
func (s *Store) ImportSpans(ctx context.Context, deviceID int64, spans []presence.Span) (added, skipped int, err error) {
	if err := s.usable(); err != nil {
		return 0, 0, err
	}
	prepared, err := presence.PrepareImport(deviceID, spans, 0)
	if err != nil {
		return 0, 0, err
	}
	return presence.WriteImport(prepared, func(chunk []presence.Span) (int, int, error) {
		return s.importChunk(ctx, deviceID, chunk)
	})
}

func (s *Store) importChunk(ctx context.Context, deviceID int64, chunk []presence.Span) (added, skipped int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("import into device %d: %w", deviceID, err)
	}
	defer tx.Rollback()
	var (
		userID    int64
		revoked   bool
		tailStart sql.NullInt64
		tailOpen  sql.NullBool
	)
	err = tx.QueryRowContext(ctx, `SELECT d.user_id, d.revoked_ns IS NOT NULL, t.start_ns, t.closed = 0
		FROM devices d LEFT JOIN spans t ON t.id = d.tail_span_id WHERE d.id = ?`, deviceID).
		Scan(&userID, &revoked, &tailStart, &tailOpen)
	if err == sql.ErrNoRows || (err == nil && revoked) {
		return 0, 0, presence.Errorf(presence.ENOTFOUND, "device %d not found", deviceID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("import into device %d: %w", deviceID, err)
	}
	if len(chunk) == 0 {
		return 0, 0, nil
	}
	var tail time.Time
	if tailStart.Valid && tailOpen.Valid && tailOpen.Bool {
		tail = fromNS(tailStart.Int64)
	}
	from, to := presence.ImportWindow(chunk)
	existing, err := deviceSpans(ctx, tx, deviceID, from, to)
	if err != nil {
		return 0, 0, fmt.Errorf("import into device %d: %w", deviceID, err)
	}
	keep := presence.PlanImport(chunk, existing, tail, s.opts.Now())
	if len(keep) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO spans (device_id, user_id, state, why, start_ns, end_ns, closed, end_reason, replayed)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)`)
		if err != nil {
			return 0, 0, fmt.Errorf("import into device %d: %w", deviceID, err)
		}
		defer ins.Close()
		for _, sp := range keep {
			if _, err := ins.ExecContext(ctx, deviceID, userID, string(sp.State), string(sp.Why), sp.Start.UnixNano(), sp.End.UnixNano(),
				string(sp.EndReason), sp.Replayed); err != nil {
				return 0, 0, fmt.Errorf("import into device %d: %w", deviceID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("import into device %d: commit: %w", deviceID, err)
	}
	return len(keep), len(chunk) - len(keep), nil
}

// deviceSpans reads a device's spans that end at or after from and start
// at or before to: every span that could overlap that stretch.
func deviceSpans(ctx context.Context, q querier, deviceID int64, from, to time.Time) ([]presence.Span, error) {
	rows, err := q.QueryContext(ctx, `SELECT start_ns, end_ns FROM spans
		WHERE device_id = ? AND end_ns >= ? AND start_ns <= ?`, deviceID, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	defer rows.Close()
	var out []presence.Span
	for rows.Next() {
		var start, end int64
		if err := rows.Scan(&start, &end); err != nil {
			return nil, fmt.Errorf("read spans: %w", err)
		}
		out = append(out, presence.Span{Start: time.Unix(0, start).UTC(), End: time.Unix(0, end).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	return out, nil
}

// pruneBatch bounds the spans one pruning transaction deletes, so the
// write lock is never held for long.
const pruneBatch = 5000

// PruneSpans deletes the spans that ended before before, except every
// device's tail span (the one its next beat may extend), in batches.
// Lapsed sessions, links and pairings go with them (see pruneLapsed).
func (s *Store) PruneSpans(ctx context.Context, before time.Time) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if err := s.pruneLapsed(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		r, err := s.db.ExecContext(ctx, `DELETE FROM spans WHERE id IN (
			SELECT id FROM spans WHERE end_ns < ?
			AND id NOT IN (SELECT tail_span_id FROM devices WHERE tail_span_id IS NOT NULL)
			LIMIT ?)`, before.UnixNano(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune spans: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune spans: %w", err)
		}
		total += int(n)
		if n < pruneBatch {
			return total, nil
		}
	}
}

// HistoryStart is the start of the user's earliest span, zero for none.
func (s *Store) HistoryStart(ctx context.Context, userID int64) (time.Time, error) {
	if err := s.usable(); err != nil {
		return time.Time{}, err
	}
	var start sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT min(start_ns) FROM spans WHERE user_id = ?`, userID).Scan(&start); err != nil {
		return time.Time{}, fmt.Errorf("history start of user %d: %w", userID, err)
	}
	if !start.Valid {
		return time.Time{}, nil
	}
	return time.Unix(0, start.Int64).UTC(), nil
}

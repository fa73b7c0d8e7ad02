package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// ImportSpans adds closed history to a device (see presence.Store). Times
// are truncated to the microsecond, the column's resolution, before they
// are compared, so an import from a nanosecond source is idempotent here
// too. Each chunk of presence.ImportChunk spans is one transaction that
// first locks the device's row, the same lock every write group takes, so
// the tail it reads cannot move under it on any instance.
func (s *Store) ImportSpans(ctx context.Context, deviceID int64, spans []presence.Span) (added, skipped int, err error) {
	if s.isClosed() {
		return 0, 0, errClosed
	}
	prepared, err := presence.PrepareImport(deviceID, spans, time.Microsecond)
	if err != nil {
		return 0, 0, err
	}
	return presence.WriteImport(prepared, func(chunk []presence.Span) (int, int, error) {
		return s.importChunk(ctx, deviceID, chunk)
	})
}

func (s *Store) importChunk(ctx context.Context, deviceID int64, chunk []presence.Span) (added, skipped int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, dbError("import spans", err)
	}
	defer tx.Rollback(context.Background())
	var (
		revoked   bool
		tailStart *time.Time
		tailOpen  *bool
	)
	err = tx.QueryRow(ctx, `SELECT d.revoked_at IS NOT NULL, t.start_at, NOT t.closed
		FROM devices d LEFT JOIN spans t ON t.id = d.tail_span_id
		WHERE d.id = $1 FOR UPDATE OF d`, deviceID).Scan(&revoked, &tailStart, &tailOpen)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && revoked) {
		return 0, 0, presence.Errorf(presence.ENOTFOUND, "device %d not found", deviceID)
	}
	if err != nil {
		return 0, 0, dbError("import spans", err)
	}
	if len(chunk) == 0 {
		return 0, 0, nil
	}
	var tail time.Time
	if tailStart != nil && tailOpen != nil && *tailOpen {
		tail = tailStart.UTC()
	}
	from, to := presence.ImportWindow(chunk)
	rows, _ := tx.Query(ctx, `SELECT start_at, end_at FROM spans
		WHERE device_id = $1 AND end_at >= $2 AND start_at <= $3`, deviceID, from, to)
	existing, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.Span, error) {
		var sp presence.Span
		err := r.Scan(&sp.Start, &sp.End)
		return sp, err
	})
	if err != nil {
		return 0, 0, dbError("import spans: read the device's spans", err)
	}
	keep := presence.PlanImport(chunk, existing, tail, s.now())
	if len(keep) > 0 {
		var c spanCols
		for _, sp := range keep {
			c.device = append(c.device, deviceID)
			c.state = append(c.state, string(sp.State))
			c.why = append(c.why, string(sp.Why))
			c.start = append(c.start, sp.Start)
			c.end = append(c.end, sp.End)
			c.reason = append(c.reason, string(sp.EndReason))
			c.replayed = append(c.replayed, sp.Replayed)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO spans (device_id, state, why, start_at, end_at, closed, end_reason, replayed)
			SELECT d, st, w, s, e, true, r, p
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::boolean[])
				AS u(d, st, w, s, e, r, p)`,
			c.device, c.state, c.why, c.start, c.end, c.reason, c.replayed); err != nil {
			return 0, 0, dbError("import spans", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, dbError("import spans: commit", err)
	}
	return len(keep), len(chunk) - len(keep), nil
}

// pruneBatch bounds the spans one pruning statement deletes, so no single
// transaction holds many row locks or grows the WAL by much.
const pruneBatch = 10000

// PruneSpans deletes the spans that ended before before, except every
// device's tail span, in batches. Several instances may prune at once:
// each batch deletes what is still there.
func (s *Store) PruneSpans(ctx context.Context, before time.Time) (int, error) {
	if s.isClosed() {
		return 0, errClosed
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM spans WHERE id IN (
			SELECT s.id FROM spans s
			WHERE s.end_at < $1 AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.tail_span_id = s.id)
			LIMIT $2)`, before, pruneBatch)
		if err != nil {
			return total, dbError("prune spans", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// HistoryStart is the start of the user's earliest span, zero for none.
func (s *Store) HistoryStart(ctx context.Context, userID int64) (time.Time, error) {
	if s.isClosed() {
		return time.Time{}, errClosed
	}
	var start *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(s.start_at) FROM spans s JOIN devices d ON d.id = s.device_id
		WHERE d.user_id = $1`, userID).Scan(&start); err != nil {
		return time.Time{}, dbError("history start", err)
	}
	if start == nil {
		return time.Time{}, nil
	}
	return start.UTC(), nil
}

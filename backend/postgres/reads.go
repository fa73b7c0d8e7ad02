package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// Presence is every user's presence from memory, users by handle and their
// devices by id.
func (s *Store) Presence(ctx context.Context) ([]presence.UserPresence, error) {
	if s.isClosed() {
		return nil, errClosed
	}
	now := s.now()
	s.confirm(ctx)
	return s.cache.presence(now, s.opts.Pulse), nil
}

// DeviceStatus is one device's presence from memory; a device memory does
// not know yet (just created on another instance) is read from the database.
func (s *Store) DeviceStatus(ctx context.Context, deviceID int64) (presence.DeviceStatus, error) {
	if s.isClosed() {
		return presence.DeviceStatus{}, errClosed
	}
	now := s.now()
	e, ok := s.cache.device(deviceID)
	if ok && isSuspect(&e, now, s.opts.Pulse) {
		s.confirm(ctx)
		e, ok = s.cache.device(deviceID)
	}
	if !ok {
		if err := s.loadDevices(ctx, []int64{deviceID}); err != nil {
			return presence.DeviceStatus{}, err
		}
		e, ok = s.cache.device(deviceID)
	}
	if !ok {
		return presence.DeviceStatus{}, presence.Errorf(presence.ENOTFOUND, "device not found")
	}
	return status(&e, now, s.opts.Pulse), nil
}

// Spans lists a user's spans overlapping [q.From, q.To), oldest first:
// Start < To and End > From, plus zero-length spans at From (a lone beat at
// the query's start). A zero From or To leaves that side open.
func (s *Store) Spans(ctx context.Context, q presence.SpanQuery) ([]presence.Span, error) {
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return nil, presence.Errorf(presence.EINVALID, "to is before from")
	}
	states := make([]string, 0, len(q.States))
	for _, st := range q.States {
		if !st.Valid() {
			return nil, presence.Errorf(presence.EINVALID, "unknown state %q (want active, idle, away or offline)", string(st))
		}
		states = append(states, string(st))
	}
	rows, err := s.pool.Query(ctx, `SELECT s.id, s.device_id, s.state, s.why, s.start_at, s.end_at, s.closed, s.end_reason, s.replayed
		FROM spans s JOIN devices d ON d.id = s.device_id
		WHERE d.user_id = $1
		  AND ($2 = 0 OR s.device_id = $2)
		  AND (cardinality($3::text[]) = 0 OR s.state = ANY($3))
		  AND ($4::timestamptz IS NULL OR s.end_at > $4 OR (s.start_at = s.end_at AND s.start_at = $4))
		  AND ($5::timestamptz IS NULL OR s.start_at < $5)
		ORDER BY s.start_at, s.id`,
		q.UserID, q.DeviceID, states, dbTime(q.From), dbTime(q.To))
	if err != nil {
		return nil, fmt.Errorf("list spans: %w", err)
	}
	spans, err := pgx.CollectRows(rows, scanSpan)
	if err != nil {
		return nil, fmt.Errorf("list spans: %w", err)
	}
	return spans, nil
}

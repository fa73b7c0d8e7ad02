package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/lastseen/lastseen/backend/presence"
)

// Spans lists a user's spans overlapping [q.From, q.To), oldest first: those
// with Start < To and End > From, plus zero-length spans (a lone beat) at
// From. A zero From or To leaves that side open.
func (s *Store) Spans(ctx context.Context, q presence.SpanQuery) ([]presence.Span, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	if to < from {
		return nil, presence.Errorf(presence.EINVALID, "the end of the range is before its start")
	}
	// end_ns >= from first, so the (user_id, end_ns) index bounds the scan.
	var b strings.Builder
	b.WriteString(`SELECT id, device_id, state, why, start_ns, end_ns, closed, end_reason, replayed FROM spans
		WHERE user_id = ? AND end_ns >= ? AND start_ns < ? AND (end_ns > ? OR start_ns = ?)`)
	args := []any{q.UserID, from, to, from, from}
	if q.DeviceID != 0 {
		b.WriteString(` AND device_id = ?`)
		args = append(args, q.DeviceID)
	}
	if len(q.States) > 0 {
		b.WriteString(` AND state IN (?` + strings.Repeat(", ?", len(q.States)-1) + `)`)
		for _, st := range q.States {
			if !st.Valid() {
				return nil, presence.Errorf(presence.EINVALID, "unknown state %q (want active, idle, away or offline)", string(st))
			}
			args = append(args, string(st))
		}
	}
	b.WriteString(` ORDER BY start_ns, id`)
	rows, err := s.rdb.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list spans of user %d: %w", q.UserID, err)
	}
	defer rows.Close()
	var out []presence.Span
	for rows.Next() {
		var sp presence.Span
		var state, why, reason string
		var start, end int64
		if err := rows.Scan(&sp.ID, &sp.DeviceID, &state, &why, &start, &end, &sp.Closed, &reason, &sp.Replayed); err != nil {
			return nil, fmt.Errorf("list spans of user %d: %w", q.UserID, err)
		}
		sp.State, sp.Why, sp.Start, sp.End = presence.State(state), presence.Why(why).Of(presence.State(state)), fromNS(start), fromNS(end)
		sp.EndReason = presence.EndReason(reason)
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list spans of user %d: %w", q.UserID, err)
	}
	return out, nil
}

package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// expire announces the TTL expiry of devices that memory says went silent.
// Memory may be behind: another instance may be hearing the device. So the
// database decides, with one conditional UPDATE that marks the expiry of a
// device's current last beat as announced only if that beat is still the
// latest and older than the TTL, and only if nobody announced it before.
// Exactly one instance wins each expiry and writes its events; every other
// suspect is re-read so memory catches up with the beats it missed.
func (s *Store) expire(ctx context.Context) error {
	now := s.now()
	p := s.opts.Pulse
	ids := s.cache.suspects(now, p)
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()

	var won []deviceRow
	var evs []pendingEvent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		won, evs = nil, nil
		// Row locks in id order, as the writer takes them: no deadlock.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
			return fmt.Errorf("lock devices: %w", err)
		}
		rows, err := tx.Query(ctx, `UPDATE devices d SET expired_beat = d.last_beat, updated_at = now()
			FROM users u
			WHERE u.id = d.user_id AND d.id = ANY($1) AND d.revoked_at IS NULL
			  AND d.state <> 'offline' AND d.last_beat < $2
			  AND d.expired_beat IS DISTINCT FROM d.last_beat
			RETURNING `+deviceCols+`, u.handle, d.tail_span_id`, ids, now.Add(-p.Window()))
		if err != nil {
			return fmt.Errorf("mark expired: %w", err)
		}
		type expired struct {
			row    deviceRow
			handle string
			tail   *int64
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (expired, error) {
			var x expired
			var err error
			x.row, err = scanDevice(r, &x.handle, &x.tail)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("mark expired: %w", err)
		}
		if len(got) == 0 {
			return nil
		}
		slices.SortFunc(got, func(a, b expired) int { return cmp.Compare(a.row.dev.ID, b.row.dev.ID) })
		var tailIDs []int64
		for _, x := range got {
			if x.tail != nil {
				tailIDs = append(tailIDs, *x.tail)
			}
		}
		tails := map[int64]presence.Span{}
		if len(tailIDs) > 0 {
			rows, err := tx.Query(ctx, `SELECT id, device_id, state, why, start_at, end_at, closed, end_reason, replayed FROM spans WHERE id = ANY($1)`, tailIDs)
			if err != nil {
				return fmt.Errorf("read tail spans: %w", err)
			}
			spans, err := pgx.CollectRows(rows, scanSpan)
			if err != nil {
				return fmt.Errorf("read tail spans: %w", err)
			}
			for _, sp := range spans {
				tails[sp.DeviceID] = sp
			}
		}
		for _, x := range got {
			e := x.row.devEntry
			won = append(won, x.row)
			// The session ends with the device's silence; its End stays the
			// last beat (expiry never stretches a span to "now").
			if sp, ok := tails[e.dev.ID]; ok && !sp.Closed {
				evs = append(evs, pendingEvent{rec: eventRecord{Event: presence.ExpiredSessionEvent(e.dev.UserID, sp)}})
			}
			us, seen := s.cache.userStatus(e.dev.UserID, now, p, &e)
			evs = append(evs, pendingEvent{
				rec: eventRecord{
					Event: presence.Event{
						Kind: presence.EventPresence, UserID: e.dev.UserID, At: e.pres.StatusSince(presence.Offline, p),
						Presence: &presence.PresenceChange{
							Handle: x.handle, DeviceID: e.dev.ID, DeviceName: e.dev.Name,
							Status: presence.Offline, UserStatus: us, LastSeen: seen,
						},
					},
					Device: snapOf(&e),
				},
			})
		}
		return writeEvents(ctx, tx, evs)
	})
	if err != nil {
		return err
	}
	announced := map[int64]bool{}
	for _, r := range won {
		s.cache.putDevice(r.devEntry)
		announced[r.dev.ID] = true
	}
	var others []int64
	for _, id := range ids {
		if !announced[id] {
			others = append(others, id)
		}
	}
	if len(evs) > 0 {
		if err := s.catchUp(ctx); err != nil {
			s.log.Warn("postgres: delivering expiry events failed; the listener will retry", "err", err)
		}
	}
	if len(others) > 0 {
		// Another instance heard these devices, or announced their expiry
		// first: take the database's word for them.
		if err := s.loadDevices(ctx, others); err != nil {
			return err
		}
	}
	return nil
}

func scanSpan(r pgx.CollectableRow) (presence.Span, error) {
	var sp presence.Span
	var st, why, reason string
	err := r.Scan(&sp.ID, &sp.DeviceID, &st, &why, &sp.Start, &sp.End, &sp.Closed, &reason, &sp.Replayed)
	sp.State, sp.Why, sp.EndReason = presence.State(st), presence.Why(why).Of(presence.State(st)), presence.EndReason(reason)
	sp.Start, sp.End = sp.Start.UTC(), sp.End.UTC()
	return sp, err
}

// confirm settles, before memory answers a presence read, the devices it
// would call offline by TTL without anybody having announced it: expire
// either announces them (the read then agrees with the events) or finds
// that another instance heard them and refreshes memory. Usually there are
// no such devices and a read costs no query. A database error leaves the
// answer to memory: a read must not fail because the database hiccups.
func (s *Store) confirm(ctx context.Context) {
	if len(s.cache.suspects(s.now(), s.opts.Pulse)) == 0 {
		return
	}
	// After a failure, reads answer from memory for a while rather than each
	// waiting on a database that is not there.
	if t := s.confirmFailed.Load(); t != 0 && time.Since(time.Unix(0, t)) < 5*time.Second {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.expire(ctx); err != nil {
		s.confirmFailed.Store(time.Now().UnixNano())
		s.log.Warn("postgres: confirming expiries failed; answering from memory", "err", err)
		return
	}
	s.confirmFailed.Store(0)
}

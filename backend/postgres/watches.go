package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// SetWatch starts watching handle (see presence.Watches).
func (s *Store) SetWatch(ctx context.Context, userID int64, handle string) (presence.Watch, error) {
	if s.isClosed() {
		return presence.Watch{}, errClosed
	}
	w := presence.Watch{Handle: handle}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		var disabled bool
		err := tx.QueryRow(ctx, `SELECT id, name, disabled FROM users WHERE handle = $1`, handle).Scan(&id, &w.Name, &disabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && disabled:
			return presence.Errorf(presence.ENOTFOUND, "no user %q", handle)
		case err != nil:
			return err
		case id == userID:
			return presence.Errorf(presence.EINVALID, "you cannot watch yourself")
		}
		// The watcher's row, locked: two watches added at once by two
		// instances take turns at the bound.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT created_at FROM watches WHERE user_id = $1 AND watched_id = $2`, userID, id).Scan(&w.CreatedAt)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM watches WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if n >= presence.MaxWatches {
			return presence.Errorf(presence.ECONFLICT, "you watch %d people already, the most there may be", presence.MaxWatches)
		}
		w.CreatedAt = s.now().Truncate(time.Microsecond)
		_, err = tx.Exec(ctx, `INSERT INTO watches (user_id, watched_id, created_at) VALUES ($1, $2, $3)`, userID, id, w.CreatedAt)
		return err
	})
	if err != nil {
		if presence.ErrorCode(err) != presence.EINTERNAL {
			return presence.Watch{}, err
		}
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	w.CreatedAt = w.CreatedAt.UTC()
	return w, nil
}

// RemoveWatch stops watching handle.
func (s *Store) RemoveWatch(ctx context.Context, userID int64, handle string) error {
	if s.isClosed() {
		return errClosed
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM watches WHERE user_id = $1 AND watched_id = (SELECT id FROM users WHERE handle = $2)`, userID, handle)
	if err != nil {
		return fmt.Errorf("unwatch %q: %w", handle, err)
	}
	if tag.RowsAffected() == 0 {
		return presence.Errorf(presence.ENOTFOUND, "you do not watch %q", handle)
	}
	return nil
}

// WatchList is the user's watches, by handle; disabled users' are kept but
// not listed.
func (s *Store) WatchList(ctx context.Context, userID int64) ([]presence.Watch, error) {
	if s.isClosed() {
		return nil, errClosed
	}
	rows, err := s.pool.Query(ctx, `SELECT u.handle, u.name, w.created_at FROM watches w JOIN users u ON u.id = w.watched_id
		WHERE w.user_id = $1 AND NOT u.disabled ORDER BY u.handle`, userID)
	if err != nil {
		return nil, fmt.Errorf("watches of user %d: %w", userID, err)
	}
	out := []presence.Watch{}
	for rows.Next() {
		var w presence.Watch
		if err := rows.Scan(&w.Handle, &w.Name, &w.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("watches of user %d: %w", userID, err)
		}
		w.CreatedAt = w.CreatedAt.UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("watches of user %d: %w", userID, err)
	}
	return out, nil
}

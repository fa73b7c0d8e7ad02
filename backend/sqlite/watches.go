package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lastseen/lastseen/backend/presence"
)

// watchTarget finds the user a watch names: an enabled user who is not
// the watcher.
func watchTarget(ctx context.Context, q querier, userID int64, handle string) (id int64, name string, err error) {
	var disabled bool
	err = q.QueryRowContext(ctx, `SELECT id, name, disabled FROM users WHERE handle = ?`, handle).Scan(&id, &name, &disabled)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && disabled:
		return 0, "", presence.Errorf(presence.ENOTFOUND, "no user %q", handle)
	case err != nil:
		return 0, "", fmt.Errorf("find user %q: %w", handle, err)
	case id == userID:
		return 0, "", presence.Errorf(presence.EINVALID, "you cannot watch yourself")
	}
	return id, name, nil
}

// SetWatch starts watching handle (see presence.Watches).
func (s *Store) SetWatch(ctx context.Context, userID int64, handle string) (presence.Watch, error) {
	if err := s.usable(); err != nil {
		return presence.Watch{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	defer tx.Rollback()
	id, name, err := watchTarget(ctx, tx, userID, handle)
	if err != nil {
		return presence.Watch{}, err
	}
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT created_ns FROM watches WHERE user_id = ? AND watched_id = ?`, userID, id).Scan(&created)
	if err == nil {
		return presence.Watch{Handle: handle, Name: name, CreatedAt: fromNS(created)}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM watches WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	if n >= presence.MaxWatches {
		return presence.Watch{}, presence.Errorf(presence.ECONFLICT, "you watch %d people already, the most there may be", presence.MaxWatches)
	}
	now := s.opts.Now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO watches (user_id, watched_id, created_ns) VALUES (?, ?, ?)`, userID, id, ns(now)); err != nil {
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Watch{}, fmt.Errorf("watch %q: %w", handle, err)
	}
	return presence.Watch{Handle: handle, Name: name, CreatedAt: fromNS(ns(now))}, nil
}

// RemoveWatch stops watching handle.
func (s *Store) RemoveWatch(ctx context.Context, userID int64, handle string) error {
	if err := s.usable(); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM watches WHERE user_id = ? AND watched_id = (SELECT id FROM users WHERE handle = ?)`, userID, handle)
	if err != nil {
		return fmt.Errorf("unwatch %q: %w", handle, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return presence.Errorf(presence.ENOTFOUND, "you do not watch %q", handle)
	}
	return nil
}

// WatchList is the user's watches, by handle. A disabled user's watch is
// kept (enabling them brings it back) but not listed.
func (s *Store) WatchList(ctx context.Context, userID int64) ([]presence.Watch, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT u.handle, u.name, w.created_ns FROM watches w JOIN users u ON u.id = w.watched_id
		WHERE w.user_id = ? AND NOT u.disabled ORDER BY u.handle`, userID)
	if err != nil {
		return nil, fmt.Errorf("watches of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []presence.Watch{}
	for rows.Next() {
		var w presence.Watch
		var created int64
		if err := rows.Scan(&w.Handle, &w.Name, &created); err != nil {
			return nil, fmt.Errorf("watches of user %d: %w", userID, err)
		}
		w.CreatedAt = fromNS(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("watches of user %d: %w", userID, err)
	}
	return out, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/lastseen/lastseen/backend/presence"
)

const userColumns = `id, handle, name, tz, public, created_ns`

func scanUser(sc interface{ Scan(...any) error }) (presence.User, error) {
	var u presence.User
	var created int64
	if err := sc.Scan(&u.ID, &u.Handle, &u.Name, &u.TZ, &u.Public, &created); err != nil {
		return presence.User{}, err
	}
	u.CreatedAt = fromNS(created)
	return u, nil
}

// CreateUser adds a user with a fresh user token, shown once.
func (s *Store) CreateUser(ctx context.Context, handle, name string) (presence.User, string, error) {
	if err := s.usable(); err != nil {
		return presence.User{}, "", err
	}
	if err := presence.ValidateHandle(handle); err != nil {
		return presence.User{}, "", err
	}
	name, err := presence.NormalizeUserName(name)
	if err != nil {
		return presence.User{}, "", err
	}
	now := s.opts.Now()
	token, hash := presence.NewToken(presence.UserToken)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.User{}, "", fmt.Errorf("create user: %w", err)
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `INSERT INTO users (handle, name, created_ns) VALUES (?, ?, ?)`, handle, name, ns(now))
	if isUnique(err) {
		return presence.User{}, "", presence.Errorf(presence.ECONFLICT, "handle %q is taken", handle)
	}
	if err != nil {
		return presence.User{}, "", fmt.Errorf("create user %s: %w", handle, err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return presence.User{}, "", fmt.Errorf("create user %s: %w", handle, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, user_id, created_ns) VALUES (?, ?, ?, ?)`,
		hash, string(presence.UserToken), id, ns(now)); err != nil {
		return presence.User{}, "", fmt.Errorf("create token of user %s: %w", handle, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.User{}, "", fmt.Errorf("create user %s: %w", handle, err)
	}
	return presence.User{ID: id, Handle: handle, Name: name, CreatedAt: fromNS(ns(now))}, token, nil
}

// UserByID returns a user; ENOTFOUND when there is none.
func (s *Store) UserByID(ctx context.Context, id int64) (presence.User, error) {
	return s.userWhere(ctx, s.rdb, "id = ?", id)
}

// UserByHandle returns a user; ENOTFOUND when there is none.
func (s *Store) UserByHandle(ctx context.Context, handle string) (presence.User, error) {
	return s.userWhere(ctx, s.rdb, "handle = ?", handle)
}

func (s *Store) userWhere(ctx context.Context, q querier, where string, arg any) (presence.User, error) {
	if err := s.usable(); err != nil {
		return presence.User{}, err
	}
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return presence.User{}, presence.Errorf(presence.ENOTFOUND, "user %v not found", arg)
	}
	if err != nil {
		return presence.User{}, fmt.Errorf("read user %v: %w", arg, err)
	}
	return u, nil
}

// Users lists every user by handle.
func (s *Store) Users(ctx context.Context) ([]presence.User, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY handle`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []presence.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser applies a partial change; an invalid field refuses all of it.
func (s *Store) UpdateUser(ctx context.Context, id int64, upd presence.UserUpdate) (presence.User, error) {
	if err := s.usable(); err != nil {
		return presence.User{}, err
	}
	upd, err := upd.Normalize()
	if err != nil {
		return presence.User{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	defer tx.Rollback()
	u, err := s.userWhere(ctx, tx, "id = ?", id)
	if err != nil {
		return presence.User{}, err
	}
	if upd.Name != nil {
		u.Name = *upd.Name
	}
	if upd.TZ != nil {
		u.TZ = *upd.TZ
	}
	if upd.Public != nil {
		u.Public = *upd.Public
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET name = ?, tz = ?, public = ? WHERE id = ?`, u.Name, u.TZ, u.Public, id); err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	return u, nil
}

// CreateDevice adds a device to a user with a fresh device token, shown once.
func (s *Store) CreateDevice(ctx context.Context, userID int64, name string) (presence.Device, string, error) {
	if err := s.usable(); err != nil {
		return presence.Device{}, "", err
	}
	name, err := presence.NormalizeDeviceName(name)
	if err != nil {
		return presence.Device{}, "", err
	}
	now := s.opts.Now()
	token, hash := presence.NewToken(presence.DeviceToken)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device: %w", err)
	}
	defer tx.Rollback()
	if _, err := s.userWhere(ctx, tx, "id = ?", userID); err != nil {
		return presence.Device{}, "", err
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, name, created_ns) VALUES (?, ?, ?)`, userID, name, ns(now))
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", userID, err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", userID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, user_id, device_id, created_ns) VALUES (?, ?, ?, ?, ?)`,
		hash, string(presence.DeviceToken), userID, id, ns(now)); err != nil {
		return presence.Device{}, "", fmt.Errorf("create token of device %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", userID, err)
	}
	return presence.Device{ID: id, UserID: userID, Name: name, CreatedAt: fromNS(ns(now))}, token, nil
}

// RevokeDevice revokes a device and its token. A device of another user is
// as unknown as one that does not exist.
func (s *Store) RevokeDevice(ctx context.Context, userID, deviceID int64) error {
	if err := s.usable(); err != nil {
		return err
	}
	now := ns(s.opts.Now())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke device %d: %w", deviceID, err)
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `UPDATE devices SET revoked_ns = ? WHERE id = ? AND user_id = ? AND revoked_ns IS NULL`, now, deviceID, userID)
	if err != nil {
		return fmt.Errorf("revoke device %d: %w", deviceID, err)
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("revoke device %d: %w", deviceID, err)
		}
		return presence.Errorf(presence.ENOTFOUND, "device %d not found", deviceID)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_ns = ? WHERE device_id = ? AND revoked_ns IS NULL`, now, deviceID); err != nil {
		return fmt.Errorf("revoke token of device %d: %w", deviceID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke device %d: %w", deviceID, err)
	}
	s.announceRevoked(deviceID)
	return nil
}

// announceRevoked takes a revoked device out of memory's presence and, if
// it was online, tells that its user lost it.
func (s *Store) announceRevoked(deviceID int64) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	if d == nil || d.dev.Revoked {
		return // a refresh got there first
	}
	d.dev.Revoked = true
	if u := s.users[d.dev.UserID]; u != nil {
		u.devices = slices.DeleteFunc(u.devices, func(id int64) bool { return id == deviceID })
	}
	if d.announced != presence.Offline {
		d.announced = presence.Offline
		s.announce([]presence.Event{s.presenceEvent(d, presence.Offline, now, now)})
	}
}

// authQuery finds a live token by its hash. Prepared once on the read pool
// (database/sql prepares it again on each pool connection that first runs
// it): every API request authenticates, and compiling the statement was
// half the lookup's cost.
const authQuery = `SELECT t.hash, t.kind, t.user_id, t.device_id
	FROM tokens t LEFT JOIN devices d ON d.id = t.device_id
	WHERE t.hash = ? AND t.revoked_ns IS NULL AND d.revoked_ns IS NULL`

// Authenticate resolves a token by its hash, read from the database every
// time so that a token created or revoked by another process counts at once.
func (s *Store) Authenticate(ctx context.Context, token string) (presence.Principal, error) {
	if err := s.usable(); err != nil {
		return presence.Principal{}, err
	}
	kind, err := presence.TokenKindOf(token)
	if err != nil {
		return presence.Principal{}, err
	}
	hash := presence.HashToken(token)
	var (
		stored   []byte
		stKind   string
		p        presence.Principal
		deviceID sql.NullInt64
	)
	// The lookup is one primary-key probe that never waits on a lock (WAL
	// readers do not), so there is nothing to cancel; under a cancellable
	// context database/sql and the driver would each start a goroutine per
	// query just to watch it.
	err = s.authStmt.QueryRowContext(context.WithoutCancel(ctx), hash).Scan(&stored, &stKind, &p.UserID, &deviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return presence.Principal{}, presence.Errorf(presence.EUNAUTHORIZED, "unknown or revoked token")
	}
	if err != nil {
		return presence.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	// The index found the row by hash; comparing again in constant time
	// keeps the decision itself free of timing.
	if !presence.HashesEqual(stored, hash) || presence.TokenKind(stKind) != kind || (kind == presence.DeviceToken) != deviceID.Valid {
		return presence.Principal{}, presence.Errorf(presence.EUNAUTHORIZED, "unknown or revoked token")
	}
	p.Kind, p.DeviceID = kind, deviceID.Int64
	return p, nil
}

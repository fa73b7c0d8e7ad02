package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/lastseen/lastseen/backend/presence"
)

const userColumns = `id, handle, name, tz, public, public_detail, admin, disabled, created_ns`

func scanUser(sc interface{ Scan(...any) error }) (presence.User, error) {
	var u presence.User
	var created int64
	if err := sc.Scan(&u.ID, &u.Handle, &u.Name, &u.TZ, &u.Public, &u.PublicDetail, &u.Admin, &u.Disabled, &created); err != nil {
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
	u, err := insertUser(ctx, tx, presence.User{Handle: handle, Name: name, CreatedAt: now}, "")
	if err != nil {
		return presence.User{}, "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, user_id, created_ns, name) VALUES (?, ?, ?, ?, ?)`,
		hash, string(presence.UserToken), u.ID, ns(now), accountTokenName); err != nil {
		return presence.User{}, "", fmt.Errorf("create token of user %s: %w", handle, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.User{}, "", fmt.Errorf("create user %s: %w", handle, err)
	}
	return u, token, nil
}

// accountTokenName names the user token an account is created with.
const accountTokenName = "created with the account"

// insertUser adds u (handle, name, tz, admin) with a password hash. The
// first user of a server is an admin whatever u says: the check and the
// insert are one statement, so two first users cannot both miss it.
func insertUser(ctx context.Context, tx *sql.Tx, u presence.User, passwordHash string) (presence.User, error) {
	err := tx.QueryRowContext(ctx, `INSERT INTO users (handle, name, tz, admin, password_hash, created_ns)
		VALUES (?, ?, ?, ? OR NOT EXISTS (SELECT 1 FROM users), ?, ?) RETURNING id, admin`,
		u.Handle, u.Name, u.TZ, u.Admin, passwordHash, ns(u.CreatedAt)).Scan(&u.ID, &u.Admin)
	if isUnique(err) {
		return presence.User{}, presence.Errorf(presence.ECONFLICT, "handle %q is taken", u.Handle)
	}
	if err != nil {
		return presence.User{}, fmt.Errorf("create user %s: %w", u.Handle, err)
	}
	u.CreatedAt = fromNS(ns(u.CreatedAt))
	return u, nil
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
	if upd.PublicDetail != nil {
		u.PublicDetail = *upd.PublicDetail
	}
	if upd.Admin != nil {
		u.Admin = *upd.Admin
	}
	if upd.Disabled != nil {
		u.Disabled = *upd.Disabled
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET name = ?, tz = ?, public = ?, public_detail = ?, admin = ?, disabled = ? WHERE id = ?`,
		u.Name, u.TZ, u.Public, u.PublicDetail, u.Admin, u.Disabled, id); err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	if u.Disabled {
		// In the same write: there is no instant at which a disabled user
		// still has a session.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return presence.User{}, fmt.Errorf("end sessions of user %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	s.auth.invalidate()
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device: %w", err)
	}
	defer tx.Rollback()
	if _, err := s.userWhere(ctx, tx, "id = ?", userID); err != nil {
		return presence.Device{}, "", err
	}
	d, token, err := insertDevice(ctx, tx, presence.Device{UserID: userID, Name: name, CreatedAt: now})
	if err != nil {
		return presence.Device{}, "", err
	}
	if err := tx.Commit(); err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", userID, err)
	}
	return d, token, nil
}

// insertDevice adds d (user, name, OS) with a fresh device token.
func insertDevice(ctx context.Context, tx *sql.Tx, d presence.Device) (presence.Device, string, error) {
	token, hash := presence.NewToken(presence.DeviceToken)
	r, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, name, os, created_ns) VALUES (?, ?, ?, ?)`, d.UserID, d.Name, d.OS, ns(d.CreatedAt))
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", d.UserID, err)
	}
	if d.ID, err = r.LastInsertId(); err != nil {
		return presence.Device{}, "", fmt.Errorf("create device of user %d: %w", d.UserID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, user_id, device_id, created_ns) VALUES (?, ?, ?, ?, ?)`,
		hash, string(presence.DeviceToken), d.UserID, d.ID, ns(d.CreatedAt)); err != nil {
		return presence.Device{}, "", fmt.Errorf("create token of device %d: %w", d.ID, err)
	}
	d.CreatedAt = fromNS(ns(d.CreatedAt))
	return d, token, nil
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
	s.auth.invalidate()
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

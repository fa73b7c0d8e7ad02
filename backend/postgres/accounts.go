package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// wakeOthers tells the other instances, at COMMIT, that users or devices
// changed, so they refresh their memory now rather than at the next
// periodic refresh.
func wakeOthers(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, wakeRefresh); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// CreateUser adds a user and returns a fresh user token, shown once.
func (s *Store) CreateUser(ctx context.Context, handle, name string) (presence.User, string, error) {
	if s.isClosed() {
		return presence.User{}, "", errClosed
	}
	if err := presence.ValidateHandle(handle); err != nil {
		return presence.User{}, "", err
	}
	name, err := presence.NormalizeUserName(name)
	if err != nil {
		return presence.User{}, "", err
	}
	token, hash := presence.NewToken(presence.UserToken)
	var u presence.User
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		u, err = s.insertUser(ctx, tx, newUser{handle: handle, name: name})
		if err != nil {
			return err
		}
		if _, err := insertAPIToken(ctx, tx, u.ID, hash, accountTokenName, u.CreatedAt); err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return wakeOthers(ctx, tx)
	})
	if pgCode(err) == codeUniqueViolation {
		return presence.User{}, "", presence.Errorf(presence.ECONFLICT, "handle %q is taken", handle)
	}
	if err != nil {
		return presence.User{}, "", fmt.Errorf("create user: %w", err)
	}
	s.cache.putUser(u)
	return u, token, nil
}

// accountTokenName names the user token a user is created with (an API
// token like any other, listed and revocable).
const accountTokenName = "created with the account"

// newUser is a user as insertUser writes it.
type newUser struct {
	handle, name, tz, passwordHash string
	admin                          bool
}

// insertUser adds a user inside tx. The first user of the server is an
// admin whatever n says: the transaction lock makes user creations of every
// instance take turns, and the INSERT, a statement after the lock, sees
// every user committed before it.
func (s *Store) insertUser(ctx context.Context, tx pgx.Tx, n newUser) (presence.User, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockUsers); err != nil {
		return presence.User{}, err
	}
	return scanUser(tx.QueryRow(ctx, `INSERT INTO users AS u (handle, name, tz, password_hash, admin, created_at)
		VALUES ($1, $2, $3, $4, $5 OR NOT EXISTS (SELECT 1 FROM users), $6) RETURNING `+userCols,
		n.handle, n.name, n.tz, n.passwordHash, n.admin, s.now()))
}

// UserByID reads a user from the database.
func (s *Store) UserByID(ctx context.Context, id int64) (presence.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.User{}, presence.Errorf(presence.ENOTFOUND, "user not found")
	}
	if err != nil {
		return presence.User{}, fmt.Errorf("read user %d: %w", id, err)
	}
	return u, nil
}

// UserByHandle reads a user from the database.
func (s *Store) UserByHandle(ctx context.Context, handle string) (presence.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users u WHERE u.handle = $1`, handle))
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.User{}, presence.Errorf(presence.ENOTFOUND, "user %q not found", handle)
	}
	if err != nil {
		return presence.User{}, fmt.Errorf("read user %q: %w", handle, err)
	}
	return u, nil
}

// Users lists every user by handle.
func (s *Store) Users(ctx context.Context) ([]presence.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users u ORDER BY u.handle`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// UpdateUser changes the fields of upd that are set. Disabling a user ends
// their sessions in the same transaction; its wake-up makes every instance
// forget their remembered credentials.
func (s *Store) UpdateUser(ctx context.Context, id int64, upd presence.UserUpdate) (presence.User, error) {
	if s.isClosed() {
		return presence.User{}, errClosed
	}
	upd, err := upd.Normalize()
	if err != nil {
		return presence.User{}, err
	}
	name, tz := upd.Name, upd.TZ
	var detail *string
	if upd.PublicDetail != nil {
		d := string(*upd.PublicDetail)
		detail = &d
	}
	disabling := upd.Disabled != nil && *upd.Disabled
	var u presence.User
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users u SET
				name = coalesce($2, u.name), tz = coalesce($3, u.tz), public = coalesce($4, u.public),
				admin = coalesce($5, u.admin), disabled = coalesce($6, u.disabled),
				public_detail = coalesce($7, u.public_detail), updated_at = now()
			WHERE u.id = $1 RETURNING `+userCols, id, name, tz, upd.Public, upd.Admin, upd.Disabled, detail))
		if err != nil {
			return err
		}
		if disabling {
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id); err != nil {
				return fmt.Errorf("end sessions: %w", err)
			}
		}
		return wakeOthers(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.User{}, presence.Errorf(presence.ENOTFOUND, "user not found")
	}
	if err != nil {
		return presence.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	s.cache.putUser(u)
	if disabling {
		s.tokens.invalidate()
	}
	return u, nil
}

// CreateDevice adds a device to a user and returns its token, shown once.
func (s *Store) CreateDevice(ctx context.Context, userID int64, name string) (presence.Device, string, error) {
	if s.isClosed() {
		return presence.Device{}, "", errClosed
	}
	name, err := presence.NormalizeDeviceName(name)
	if err != nil {
		return presence.Device{}, "", err
	}
	token, hash := presence.NewToken(presence.DeviceToken)
	var d deviceRow
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		// INSERT … SELECT: no row (hence ErrNoRows) when the user does not exist.
		d, err = scanDevice(tx.QueryRow(ctx, `INSERT INTO devices AS d (user_id, name, token_hash, created_at)
			SELECT id, $2, $3, $4 FROM users WHERE id = $1 RETURNING `+deviceCols, userID, name, hash, s.now()))
		if err != nil {
			return err
		}
		return wakeOthers(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Device{}, "", presence.Errorf(presence.ENOTFOUND, "user not found")
	}
	if err != nil {
		return presence.Device{}, "", fmt.Errorf("create device: %w", err)
	}
	s.cache.putDevice(d.devEntry)
	return d.dev, token, nil
}

// Devices lists a user's devices that are not revoked, oldest first, with
// their status. The list comes from the database; statuses from memory,
// refreshed by the rows just read.
func (s *Store) Devices(ctx context.Context, userID int64) ([]presence.DeviceStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices d
		WHERE d.user_id = $1 AND d.revoked_at IS NULL ORDER BY d.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	devs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deviceRow, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	for _, d := range devs {
		s.cache.putDevice(d.devEntry)
	}
	s.confirm(ctx)
	now := s.now()
	out := make([]presence.DeviceStatus, 0, len(devs))
	for _, d := range devs {
		e, ok := s.cache.device(d.dev.ID)
		if !ok {
			e = d.devEntry
		}
		out = append(out, status(&e, now, s.opts.Pulse))
	}
	return out, nil
}

// RevokeDevice revokes a device and its token. A device that is not the
// user's is reported exactly like one that does not exist.
func (s *Store) RevokeDevice(ctx context.Context, userID, deviceID int64) error {
	if s.isClosed() {
		return errClosed
	}
	now := s.now()
	var d deviceRow
	var handle string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRow(ctx, `UPDATE devices d SET revoked_at = $3, updated_at = now()
			FROM users u WHERE u.id = d.user_id AND d.id = $1 AND d.user_id = $2 AND d.revoked_at IS NULL
			RETURNING `+deviceCols+`, u.handle`, deviceID, userID, now), &handle)
		if err != nil {
			return err
		}
		// A device that was online leaves: its user's watchers must see it.
		if d.pres.Status(now, s.opts.Pulse) != presence.Offline {
			if err := writeEvents(ctx, tx, []pendingEvent{s.revokedEvent(d, handle, now)}); err != nil {
				return err
			}
		}
		return wakeOthers(ctx, tx)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Errorf(presence.ENOTFOUND, "device not found")
	}
	if err != nil {
		return fmt.Errorf("revoke device %d: %w", deviceID, err)
	}
	s.cache.revokeDevice(deviceID)
	s.tokens.invalidate()
	if err := s.catchUp(ctx); err != nil {
		s.log.Warn("postgres: catch-up after revoke failed", "err", err)
	}
	return nil
}

func (s *Store) revokedEvent(d deviceRow, handle string, now time.Time) pendingEvent {
	// The row is revoked: it counts for last seen, not for the status.
	us, seen := s.cache.userStatus(d.dev.UserID, now, s.opts.Pulse, &d.devEntry)
	return pendingEvent{rec: eventRecord{Event: presence.Event{
		Kind: presence.EventPresence, UserID: d.dev.UserID, At: now,
		Presence: &presence.PresenceChange{
			Handle: handle, DeviceID: d.dev.ID, DeviceName: d.dev.Name,
			Status: presence.Offline, UserStatus: us, LastSeen: seen,
		},
	}}}
}

// Authenticate resolves a credential: a session secret, a user (API) token
// or a device token, of a user who is not disabled. A credential the database confirmed recently is
// answered from memory (see tokenCache for why an ended session, a
// revocation or a disabled user made on any instance still holds at once
// here, or within the NOTIFY round trip); anything else is looked up in the
// database.
func (s *Store) Authenticate(ctx context.Context, token string) (presence.Principal, error) {
	var kind presence.TokenKind
	session := strings.HasPrefix(token, presence.SessionPrefix)
	if !session {
		var err error
		if kind, err = presence.TokenKindOf(token); err != nil {
			return presence.Principal{}, err
		}
	}
	hash := presence.HashToken(token)
	key := [32]byte(hash)
	cached := s.tokens.enabled() && s.listening.Load()
	if cached {
		if p, ok := s.tokens.get(key, s.now()); ok && s.trusted(p) {
			return p, nil
		}
	}
	gen := s.tokens.generation()
	var (
		p      presence.Principal
		stored []byte
		until  time.Time
		err    error
	)
	switch {
	case session:
		p.Kind = presence.UserToken
		var lastUsed time.Time
		err = s.pool.QueryRow(ctx, `SELECT s.id, s.user_id, s.hash, s.last_used
			FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.hash = $1 AND NOT u.disabled`, hash).Scan(&p.SessionID, &p.UserID, &stored, &lastUsed)
		until = lastUsed.Add(presence.SessionIdle)
		if err == nil && s.now().After(until) {
			err = pgx.ErrNoRows // unused for too long: as good as ended
		}
	case kind == presence.UserToken:
		p.Kind = presence.UserToken
		err = s.pool.QueryRow(ctx, `SELECT t.user_id, t.hash, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled`, hash).Scan(&p.UserID, &stored, &p.TokenID)
	default:
		p.Kind = presence.DeviceToken
		err = s.pool.QueryRow(ctx, `SELECT d.id, d.user_id, d.token_hash FROM devices d JOIN users u ON u.id = d.user_id
			WHERE d.token_hash = $1 AND d.revoked_at IS NULL AND NOT u.disabled`, hash).Scan(&p.DeviceID, &p.UserID, &stored)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Principal{}, presence.Errorf(presence.EUNAUTHORIZED, "unknown or revoked token")
	}
	if err != nil {
		return presence.Principal{}, dbError("authenticate", err)
	}
	// The index lookup found it; the constant-time compare is the check.
	if !presence.HashesEqual(stored, hash) {
		return presence.Principal{}, presence.Errorf(presence.EUNAUTHORIZED, "unknown or revoked token")
	}
	if cached {
		s.tokens.putUntil(key, p, gen, s.now(), until)
	}
	return p, nil
}

// trusted reports whether a remembered principal still stands by memory:
// its user known and not disabled, and a device token's device known and
// not revoked.
func (s *Store) trusted(p presence.Principal) bool {
	if u, ok := s.cache.user(p.UserID); !ok || u.Disabled {
		return false
	}
	if p.Kind != presence.DeviceToken {
		return true
	}
	_, ok := s.cache.device(p.DeviceID)
	return ok
}

package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
)

// People on PostgreSQL. Every change that takes a credential away (a
// session ended, an API token revoked, a user disabled) commits with a
// wake-up (wakeOthers) and drops this instance's remembered credentials at
// once, so every instance refuses it within the NOTIFY round trip, as it
// does a revoked device. Spending a one-time secret (a link, a pairing's
// device code) locks its row, so of two instances redeeming it at once the
// second finds it spent.

// ---- Passwords ----------------------------------------------------------

// PasswordHash is the user's password hash for a sign-in by handle.
func (s *Store) PasswordHash(ctx context.Context, handle string) (presence.User, string, error) {
	var hash string
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+`, u.password_hash FROM users u WHERE u.handle = $1`, handle), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.User{}, "", presence.Errorf(presence.ENOTFOUND, "user %q not found", handle)
	}
	if err != nil {
		return presence.User{}, "", dbError("read password", err)
	}
	return u, hash, nil
}

// SetPassword replaces the user's password hash.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string) error {
	if s.isClosed() {
		return errClosed
	}
	if hash == "" {
		return presence.Errorf(presence.EINVALID, "a password is required")
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, userID, hash)
	if err != nil {
		return dbError("set password", err)
	}
	if tag.RowsAffected() == 0 {
		return presence.Errorf(presence.ENOTFOUND, "user not found")
	}
	return nil
}

// ---- Sessions -------------------------------------------------------------

const sessionCols = `s.id, s.user_id, s.created_at, s.last_used, s.user_agent, s.addr`

func scanSession(row pgx.Row) (presence.Session, error) {
	var x presence.Session
	err := row.Scan(&x.ID, &x.UserID, &x.CreatedAt, &x.LastUsed, &x.UserAgent, &x.Addr)
	x.CreatedAt, x.LastUsed = x.CreatedAt.UTC(), x.LastUsed.UTC()
	return x, err
}

// CreateSession signs a user in. A disabled user is refused. The user's
// sessions that lapsed unused are cleared on the way.
func (s *Store) CreateSession(ctx context.Context, userID int64, c presence.Client) (presence.Session, string, error) {
	if s.isClosed() {
		return presence.Session{}, "", errClosed
	}
	c = c.Normalize()
	secret, hash := presence.NewSecret(presence.SessionPrefix)
	now := s.now()
	var x presence.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		x, err = scanSession(tx.QueryRow(ctx, `INSERT INTO sessions AS s (user_id, hash, created_at, last_used, user_agent, addr)
			SELECT id, $2, $3, $3, $4, $5 FROM users WHERE id = $1 AND NOT disabled
			RETURNING `+sessionCols, userID, hash, now, c.UserAgent, c.Addr))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND last_used < $2`, userID, now.Add(-presence.SessionIdle))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Session{}, "", s.noSuchUser(ctx, userID)
	}
	if err != nil {
		return presence.Session{}, "", dbError("create session", err)
	}
	return x, secret, nil
}

// noSuchUser explains why a write for a user found no row: the user is
// unknown (ENOTFOUND) or disabled (EUNAUTHORIZED).
func (s *Store) noSuchUser(ctx context.Context, userID int64) error {
	u, err := s.UserByID(ctx, userID)
	switch {
	case err != nil:
		return err
	case u.Disabled:
		return presence.Errorf(presence.EUNAUTHORIZED, "user %q is disabled", u.Handle)
	}
	// Enabled by now: it was disabled when the write looked.
	return presence.Errorf(presence.ECONFLICT, "user %q changed meanwhile; try again", u.Handle)
}

// Sessions lists the user's live sessions, most recently used first.
func (s *Store) Sessions(ctx context.Context, userID int64) ([]presence.Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sessionCols+` FROM sessions s
		WHERE s.user_id = $1 AND s.last_used >= $2 ORDER BY s.last_used DESC, s.id DESC`,
		userID, s.now().Add(-presence.SessionIdle))
	if err != nil {
		return nil, dbError("list sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, dbError("list sessions", err)
	}
	return out, nil
}

// EndSession ends one of the user's sessions. One that lapsed unused is
// deleted too, but is not found: it had already ended.
func (s *Store) EndSession(ctx context.Context, userID, sessionID int64) error {
	n, err := s.endSessions(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id = $2 RETURNING last_used`, userID, sessionID)
	if err != nil {
		return err
	}
	if n == 0 {
		return presence.Errorf(presence.ENOTFOUND, "session not found")
	}
	return nil
}

// EndSessions ends all of the user's sessions but except and says how many
// live ones it ended (lapsed ones go too, uncounted).
func (s *Store) EndSessions(ctx context.Context, userID, except int64) (int, error) {
	return s.endSessions(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING last_used`, userID, except)
}

// endSessions runs a DELETE of sessions returning their last_used, wakes
// the other instances when it deleted any, and returns how many of them
// were live.
func (s *Store) endSessions(ctx context.Context, sql string, args ...any) (int, error) {
	if s.isClosed() {
		return 0, errClosed
	}
	live := s.now().Add(-presence.SessionIdle)
	n := 0
	deleted := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, sql, args...)
		used, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return err
		}
		n, deleted = 0, len(used) > 0
		for _, t := range used {
			if !t.Before(live) {
				n++
			}
		}
		if !deleted {
			return nil
		}
		return wakeOthers(ctx, tx)
	})
	if err != nil {
		return 0, dbError("end sessions", err)
	}
	if deleted {
		s.tokens.invalidate()
	}
	return n, nil
}

// Touch records a use of a session (time and client) or an API token
// (time). It wakes nobody: a use takes nothing away.
func (s *Store) Touch(ctx context.Context, p presence.Principal, c presence.Client) error {
	if s.isClosed() {
		return errClosed
	}
	now := s.now()
	var err error
	switch {
	case p.Kind != presence.UserToken:
		return nil
	case p.SessionID != 0:
		c = c.Normalize()
		// Never brings a lapsed session back, nor its last use back in time.
		_, err = s.pool.Exec(ctx, `UPDATE sessions SET last_used = greatest(last_used, $3), user_agent = $4, addr = $5
			WHERE id = $1 AND user_id = $2 AND last_used >= $6`,
			p.SessionID, p.UserID, now, c.UserAgent, c.Addr, now.Add(-presence.SessionIdle))
	case p.TokenID != "":
		_, err = s.pool.Exec(ctx, `UPDATE api_tokens SET last_used = greatest(last_used, $3)
			WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, p.TokenID, p.UserID, now)
	}
	if err != nil {
		return dbError("touch", err)
	}
	return nil
}

// ---- API tokens -----------------------------------------------------------

// apiTokenID is an API token's public id: the first 8 bytes of its hash.
func apiTokenID(hash []byte) string { return hex.EncodeToString(hash[:8]) }

const apiTokenCols = `t.id, t.name, t.created_at, t.last_used`

func scanAPIToken(row pgx.Row) (presence.APIToken, error) {
	var t presence.APIToken
	err := row.Scan(&t.ID, &t.Name, &t.CreatedAt, (*nullTime)(&t.LastUsed))
	t.CreatedAt = t.CreatedAt.UTC()
	return t, err
}

// CreateAPIToken makes a named user token, shown once.
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name string) (presence.APIToken, string, error) {
	if s.isClosed() {
		return presence.APIToken{}, "", errClosed
	}
	name, err := presence.NormalizeTokenName(name)
	if err != nil {
		return presence.APIToken{}, "", err
	}
	token, hash := presence.NewToken(presence.UserToken)
	t, err := insertAPIToken(ctx, s.pool, userID, hash, name, s.now())
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.APIToken{}, "", presence.Errorf(presence.ENOTFOUND, "user not found")
	}
	if err != nil {
		return presence.APIToken{}, "", dbError("create API token", err)
	}
	return t, token, nil
}

// insertAPIToken adds a user token; pgx.ErrNoRows when the user does not
// exist.
func insertAPIToken(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, userID int64, hash []byte, name string, now time.Time) (presence.APIToken, error) {
	return scanAPIToken(q.QueryRow(ctx, `INSERT INTO api_tokens AS t (hash, id, user_id, name, created_at)
		SELECT $1, $2, id, $4, $5 FROM users WHERE id = $3 RETURNING `+apiTokenCols,
		hash, apiTokenID(hash), userID, name, now))
}

// APITokens lists the user's tokens that are not revoked, oldest first.
func (s *Store) APITokens(ctx context.Context, userID int64) ([]presence.APIToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenCols+` FROM api_tokens t
		WHERE t.user_id = $1 AND t.revoked_at IS NULL ORDER BY t.seq`, userID)
	if err != nil {
		return nil, dbError("list API tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.APIToken, error) { return scanAPIToken(r) })
	if err != nil {
		return nil, dbError("list API tokens", err)
	}
	return out, nil
}

// RevokeAPIToken revokes one of the user's tokens.
func (s *Store) RevokeAPIToken(ctx context.Context, userID int64, id string) error {
	if s.isClosed() {
		return errClosed
	}
	var found bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $3
			WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL`, userID, id, s.now())
		if err != nil {
			return err
		}
		if found = tag.RowsAffected() > 0; !found {
			return nil
		}
		return wakeOthers(ctx, tx)
	})
	if err != nil {
		return dbError("revoke API token", err)
	}
	if !found {
		return presence.Errorf(presence.ENOTFOUND, "token not found")
	}
	s.tokens.invalidate()
	return nil
}

// ---- One-time links ---------------------------------------------------------

const linkCols = `l.id, l.purpose, l.handle, l.name, l.admin, coalesce(l.user_id, 0), coalesce(l.created_by, 0),
	l.created_at, l.expires_at`

// liveLink is the condition on a links row that is neither used, revoked
// nor expired at $now (the placeholder named).
func liveLink(now string) string {
	return `l.used_at IS NULL AND l.revoked_at IS NULL AND l.expires_at > ` + now
}

func scanLink(row pgx.Row) (presence.Link, error) {
	var l presence.Link
	err := row.Scan(&l.ID, &l.Purpose, &l.Handle, &l.Name, &l.Admin, &l.UserID, &l.CreatedBy, &l.CreatedAt, &l.ExpiresAt)
	l.CreatedAt, l.ExpiresAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC()
	return l, err
}

// CreateLink makes a one-time link, replacing any pending one for the same
// purpose and handle.
func (s *Store) CreateLink(ctx context.Context, l presence.Link) (presence.Link, string, error) {
	if s.isClosed() {
		return presence.Link{}, "", errClosed
	}
	var ttl time.Duration
	switch l.Purpose {
	case presence.SignupLink:
		ttl = presence.InviteTTL
	case presence.ResetLink:
		ttl = presence.ResetTTL
		l.Admin = false
	default:
		return presence.Link{}, "", presence.Errorf(presence.EINVALID, "unknown link purpose %q", l.Purpose)
	}
	if err := presence.ValidateHandle(l.Handle); err != nil {
		return presence.Link{}, "", err
	}
	name, err := presence.NormalizeUserName(l.Name)
	if err != nil {
		return presence.Link{}, "", err
	}
	l.Name = name
	var createdBy *int64
	if l.CreatedBy != 0 {
		createdBy = &l.CreatedBy
	}
	secret, hash := presence.NewSecret(presence.LinkPrefix)
	// Two links made at once for one handle: the pending-link index lets
	// one in, and the other, trying again, replaces it.
	for attempt := 0; ; attempt++ {
		now := s.now()
		var out presence.Link
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var userID *int64
			if l.Purpose == presence.ResetLink {
				var id int64
				err := tx.QueryRow(ctx, `SELECT id FROM users WHERE handle = $1`, l.Handle).Scan(&id)
				if errors.Is(err, pgx.ErrNoRows) {
					return presence.Errorf(presence.ENOTFOUND, "user %q not found", l.Handle)
				}
				if err != nil {
					return err
				}
				userID = &id
			} else {
				var taken bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE handle = $1)`, l.Handle).Scan(&taken); err != nil {
					return err
				}
				if taken {
					return presence.Errorf(presence.ECONFLICT, "handle %q is taken", l.Handle)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE links SET revoked_at = $3
				WHERE purpose = $1 AND handle = $2 AND used_at IS NULL AND revoked_at IS NULL`, l.Purpose, l.Handle, now); err != nil {
				return err
			}
			var err error
			out, err = scanLink(tx.QueryRow(ctx, `INSERT INTO links AS l
					(purpose, hash, handle, name, admin, user_id, created_by, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+linkCols,
				l.Purpose, hash, l.Handle, l.Name, l.Admin, userID, createdBy, now, now.Add(ttl)))
			return err
		})
		if pgCode(err) == codeUniqueViolation && attempt < 3 {
			continue
		}
		if pgCode(err) == codeForeignKeyViolation {
			return presence.Link{}, "", presence.Errorf(presence.ENOTFOUND, "the inviting user was not found")
		}
		if err != nil {
			if presence.ErrorCode(err) != "" {
				return presence.Link{}, "", err
			}
			return presence.Link{}, "", dbError("create link", err)
		}
		return out, secret, nil
	}
}

// LinkBySecret is a live link.
func (s *Store) LinkBySecret(ctx context.Context, secret string) (presence.Link, error) {
	if !strings.HasPrefix(secret, presence.LinkPrefix) {
		return presence.Link{}, errNoLink
	}
	l, err := scanLink(s.pool.QueryRow(ctx, `SELECT `+linkCols+` FROM links l WHERE l.hash = $1 AND `+liveLink("$2"),
		presence.HashToken(secret), s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Link{}, errNoLink
	}
	if err != nil {
		return presence.Link{}, dbError("read link", err)
	}
	return l, nil
}

// errNoLink answers for a link that is unknown, expired, used or revoked
// alike.
var errNoLink = presence.Errorf(presence.ENOTFOUND, "the link is unknown, expired or already used")

// Links lists the live links, newest first.
func (s *Store) Links(ctx context.Context) ([]presence.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+linkCols+` FROM links l WHERE `+liveLink("$1")+`
		ORDER BY l.created_at DESC, l.id DESC`, s.now())
	if err != nil {
		return nil, dbError("list links", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (presence.Link, error) { return scanLink(r) })
	if err != nil {
		return nil, dbError("list links", err)
	}
	return out, nil
}

// RevokeLink withdraws a live link.
func (s *Store) RevokeLink(ctx context.Context, id int64) error {
	if s.isClosed() {
		return errClosed
	}
	now := s.now()
	tag, err := s.pool.Exec(ctx, `UPDATE links l SET revoked_at = $2 WHERE l.id = $1 AND `+liveLink("$2"), id, now)
	if err != nil {
		return dbError("revoke link", err)
	}
	if tag.RowsAffected() == 0 {
		return errNoLink
	}
	return nil
}

// RedeemLink spends a live link. The UPDATE that marks it used locks its
// row: a second redemption, on any instance, waits for the first and then
// finds it used (or, when the first rolled back, live again).
func (s *Store) RedeemLink(ctx context.Context, secret string, r presence.Redemption) (presence.User, error) {
	if s.isClosed() {
		return presence.User{}, errClosed
	}
	if r.PasswordHash == "" {
		return presence.User{}, presence.Errorf(presence.EINVALID, "a password is required")
	}
	if !strings.HasPrefix(secret, presence.LinkPrefix) {
		return presence.User{}, errNoLink
	}
	now := s.now()
	var (
		u     presence.User
		reset bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := scanLink(tx.QueryRow(ctx, `UPDATE links l SET used_at = $2
			WHERE l.hash = $1 AND `+liveLink("$2")+` RETURNING `+linkCols, presence.HashToken(secret), now))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoLink
		}
		if err != nil {
			return err
		}
		switch l.Purpose {
		case presence.SignupLink:
			// The name the link proposed, unless the person gave another.
			name := l.Name
			if r.Name != "" {
				if name, err = presence.NormalizeUserName(r.Name); err != nil {
					return err
				}
			}
			if err := presence.ValidateTZ(r.TZ); err != nil {
				return err
			}
			u, err = s.insertUser(ctx, tx, newUser{handle: l.Handle, name: name, tz: r.TZ, passwordHash: r.PasswordHash, admin: l.Admin})
			if pgCode(err) == codeUniqueViolation {
				return presence.Errorf(presence.ECONFLICT, "handle %q is taken", l.Handle)
			}
			if err != nil {
				return err
			}
		case presence.ResetLink:
			reset = true
			u, err = scanUser(tx.QueryRow(ctx, `UPDATE users u SET password_hash = $2, updated_at = now()
				WHERE u.id = $1 RETURNING `+userCols, l.UserID, r.PasswordHash))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, u.ID); err != nil {
				return err
			}
		default:
			return fmt.Errorf("link %d has unknown purpose %q", l.ID, l.Purpose)
		}
		return wakeOthers(ctx, tx)
	})
	if err != nil {
		if presence.ErrorCode(err) != "" {
			return presence.User{}, err
		}
		return presence.User{}, dbError("redeem link", err)
	}
	s.cache.putUser(u)
	if reset {
		s.tokens.invalidate()
	}
	return u, nil
}

// ---- Pairing --------------------------------------------------------------

const pairingCols = `p.id, p.user_code, p.device_name, p.os, p.state, coalesce(p.user_id, 0), coalesce(p.device_id, 0),
	p.interval_ms, p.created_at, p.expires_at, p.last_poll`

func scanPairing(row pgx.Row) (presence.Pairing, error) {
	var p presence.Pairing
	var ms int64
	err := row.Scan(&p.ID, &p.UserCode, &p.DeviceName, &p.OS, &p.State, &p.UserID, &p.DeviceID,
		&ms, &p.CreatedAt, &p.ExpiresAt, (*nullTime)(&p.LastPoll))
	p.Interval = time.Duration(ms) * time.Millisecond
	p.CreatedAt, p.ExpiresAt = p.CreatedAt.UTC(), p.ExpiresAt.UTC()
	return p, err
}

// errNoPairing answers for a code that is unknown, spent, expired or no
// longer pending alike.
var errNoPairing = presence.Errorf(presence.ENOTFOUND, "no such pairing, or it is no longer pending")

// pairingRetention is how long a pairing is kept after it expired, so a
// late poll still hears expired_token rather than invalid_grant;
// CreatePairing deletes older ones.
const pairingRetention = time.Hour

// CreatePairing starts a pairing. The user code is drawn under a
// transaction lock, so it is unique among live pairings of every instance.
func (s *Store) CreatePairing(ctx context.Context, deviceName, os string) (presence.Pairing, string, error) {
	if s.isClosed() {
		return presence.Pairing{}, "", errClosed
	}
	secret, hash := presence.NewSecret(presence.DeviceCodePrefix)
	now := s.now()
	var p presence.Pairing
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockUserCodes); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pairings WHERE expires_at < $1`, now.Add(-pairingRetention)); err != nil {
			return err
		}
		code := ""
		// 20^8 codes: a draw that is taken is all but impossible, twice
		// in a row even more so.
		for range 8 {
			c := presence.NewUserCode()
			var taken bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pairings WHERE user_code = $1 AND expires_at > $2)`,
				c, now).Scan(&taken); err != nil {
				return err
			}
			if !taken {
				code = c
				break
			}
		}
		if code == "" {
			return presence.Errorf(presence.EUNAVAILABLE, "no free pairing code; retry")
		}
		var err error
		p, err = scanPairing(tx.QueryRow(ctx, `INSERT INTO pairings AS p
				(device_code_hash, user_code, device_name, os, interval_ms, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+pairingCols,
			hash, code, deviceName, os, presence.PairingInterval.Milliseconds(), now, now.Add(presence.PairingTTL)))
		return err
	})
	if err != nil {
		if presence.ErrorCode(err) != "" {
			return presence.Pairing{}, "", err
		}
		return presence.Pairing{}, "", dbError("create pairing", err)
	}
	return p, secret, nil
}

// PairingByUserCode is a live pending pairing.
func (s *Store) PairingByUserCode(ctx context.Context, userCode string) (presence.Pairing, error) {
	code, err := presence.NormalizeUserCode(userCode)
	if err != nil {
		return presence.Pairing{}, errNoPairing
	}
	p, err := scanPairing(s.pool.QueryRow(ctx, `SELECT `+pairingCols+` FROM pairings p
		WHERE p.user_code = $1 AND p.state = 'pending' AND p.expires_at > $2 ORDER BY p.id DESC LIMIT 1`, code, s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return presence.Pairing{}, errNoPairing
	}
	if err != nil {
		return presence.Pairing{}, dbError("read pairing", err)
	}
	return p, nil
}

// DecidePairing approves (for userID) or denies a live pending pairing.
func (s *Store) DecidePairing(ctx context.Context, userCode string, userID int64, approve bool) (presence.Pairing, error) {
	if s.isClosed() {
		return presence.Pairing{}, errClosed
	}
	code, err := presence.NormalizeUserCode(userCode)
	if err != nil {
		return presence.Pairing{}, errNoPairing
	}
	state := presence.PairingDenied
	if approve {
		state = presence.PairingApproved
	}
	p, err := scanPairing(s.pool.QueryRow(ctx, `UPDATE pairings p SET state = $3, user_id = $2
		WHERE p.user_code = $1 AND p.state = 'pending' AND p.expires_at > $4 RETURNING `+pairingCols,
		code, userID, state, s.now()))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return presence.Pairing{}, errNoPairing
	case pgCode(err) == codeForeignKeyViolation:
		return presence.Pairing{}, presence.Errorf(presence.ENOTFOUND, "user not found")
	case err != nil:
		return presence.Pairing{}, dbError("decide pairing", err)
	}
	return p, nil
}

// PollPairing runs Pairing.Poll on the pairing's row, locked for the
// transaction, and on approval creates the device and its token in it: of
// two polls at once (on any instance) the second waits and finds the code
// spent.
func (s *Store) PollPairing(ctx context.Context, deviceCode string) (presence.PairingResult, error) {
	if s.isClosed() {
		return presence.PairingResult{}, errClosed
	}
	if !strings.HasPrefix(deviceCode, presence.DeviceCodePrefix) {
		return presence.PairingResult{}, errNoPairing
	}
	var (
		res presence.PairingResult
		dev *deviceRow
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := scanPairing(tx.QueryRow(ctx, `SELECT `+pairingCols+` FROM pairings p
			WHERE p.device_code_hash = $1 FOR UPDATE`, presence.HashToken(deviceCode)))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoPairing
		}
		if err != nil {
			return err
		}
		if p.State == presence.PairingDone {
			return errNoPairing
		}
		now := s.now()
		out, np := p.Poll(now)
		res = presence.PairingResult{Outcome: out, Interval: np.Interval}
		if out == presence.PollExpired {
			return nil // nothing changed
		}
		if out == presence.PollApproved {
			name, err := presence.NormalizeDeviceName(np.DeviceName)
			if err != nil {
				name = "device" // the caller normalizes; never fail the device at the last step
			}
			token, hash := presence.NewToken(presence.DeviceToken)
			d, err := scanDevice(tx.QueryRow(ctx, `INSERT INTO devices AS d (user_id, name, os, token_hash, created_at)
				VALUES ($1, $2, $3, $4, $5) RETURNING `+deviceCols, np.UserID, name, np.OS, hash, now))
			if err != nil {
				return fmt.Errorf("create device: %w", err)
			}
			dev = &d
			np.DeviceID = d.dev.ID
			res.Device, res.Token = d.dev, token
			if err := wakeOthers(ctx, tx); err != nil {
				return err
			}
		}
		var deviceID *int64
		if np.DeviceID != 0 {
			deviceID = &np.DeviceID
		}
		_, err = tx.Exec(ctx, `UPDATE pairings SET state = $2, last_poll = $3, interval_ms = $4, device_id = $5 WHERE id = $1`,
			np.ID, np.State, np.LastPoll, np.Interval.Milliseconds(), deviceID)
		return err
	})
	if err != nil {
		if presence.ErrorCode(err) != "" {
			return presence.PairingResult{}, err
		}
		return presence.PairingResult{}, dbError("poll pairing", err)
	}
	if dev != nil {
		s.cache.putDevice(dev.devEntry)
	}
	return res, nil
}

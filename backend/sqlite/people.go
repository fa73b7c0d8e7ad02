package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// People: passwords, sessions, API tokens, one-time links and pairings
// (presence.People). Every write that takes a credential away forgets the
// remembered credentials once it commits (s.auth.invalidate), and moves a
// meta counter for other processes (see authCache).

// ---- Passwords ---------------------------------------------------------

// PasswordHash is the user's password hash for a sign-in by handle.
func (s *Store) PasswordHash(ctx context.Context, handle string) (presence.User, string, error) {
	if err := s.usable(); err != nil {
		return presence.User{}, "", err
	}
	var hash string
	var u presence.User
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE handle = ?`, handle).
		Scan(&u.ID, &u.Handle, &u.Name, &u.TZ, &u.Public, &u.PublicDetail, &u.Admin, &u.Disabled, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return presence.User{}, "", presence.Errorf(presence.ENOTFOUND, "user %q not found", handle)
	}
	if err != nil {
		return presence.User{}, "", fmt.Errorf("read password of %s: %w", handle, err)
	}
	u.CreatedAt = fromNS(created)
	return u, hash, nil
}

// SetPassword replaces the user's password hash.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string) error {
	if err := s.usable(); err != nil {
		return err
	}
	if hash == "" {
		return presence.Errorf(presence.EINVALID, "a password is required")
	}
	r, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("set password of user %d: %w", userID, err)
		}
		return presence.Errorf(presence.ENOTFOUND, "user %d not found", userID)
	}
	return nil
}

// ---- Sessions ----------------------------------------------------------

// CreateSession signs a user in. A disabled user cannot sign in.
func (s *Store) CreateSession(ctx context.Context, userID int64, c presence.Client) (presence.Session, string, error) {
	if err := s.usable(); err != nil {
		return presence.Session{}, "", err
	}
	c = c.Normalize()
	now := s.opts.Now()
	secret, hash := presence.NewSecret(presence.SessionPrefix)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Session{}, "", fmt.Errorf("create session: %w", err)
	}
	defer tx.Rollback()
	u, err := s.userWhere(ctx, tx, "id = ?", userID)
	if err != nil {
		return presence.Session{}, "", err
	}
	if u.Disabled {
		return presence.Session{}, "", presence.Errorf(presence.EUNAUTHORIZED, "the account is disabled")
	}
	// Lapsed sessions of the user go now; others' with their owners' next
	// sign-in or PruneSpans.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND last_used_ns < ?`, userID, ns(now.Add(-presence.SessionIdle))); err != nil {
		return presence.Session{}, "", fmt.Errorf("prune sessions of user %d: %w", userID, err)
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO sessions (user_id, hash, created_ns, last_used_ns, user_agent, addr) VALUES (?, ?, ?, ?, ?, ?)`,
		userID, hash, ns(now), ns(now), c.UserAgent, c.Addr)
	if err != nil {
		return presence.Session{}, "", fmt.Errorf("create session of user %d: %w", userID, err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return presence.Session{}, "", fmt.Errorf("create session of user %d: %w", userID, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Session{}, "", fmt.Errorf("create session of user %d: %w", userID, err)
	}
	at := fromNS(ns(now))
	return presence.Session{ID: id, UserID: userID, CreatedAt: at, LastUsed: at, UserAgent: c.UserAgent, Addr: c.Addr}, secret, nil
}

// Sessions lists the user's live sessions, most recently used first.
func (s *Store) Sessions(ctx context.Context, userID int64) ([]presence.Session, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	cutoff := ns(s.opts.Now().Add(-presence.SessionIdle))
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, created_ns, last_used_ns, user_agent, addr FROM sessions
		WHERE user_id = ? AND last_used_ns >= ? ORDER BY last_used_ns DESC, id DESC`, userID, cutoff)
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []presence.Session{}
	for rows.Next() {
		se := presence.Session{UserID: userID}
		var created, used int64
		if err := rows.Scan(&se.ID, &created, &used, &se.UserAgent, &se.Addr); err != nil {
			return nil, fmt.Errorf("list sessions of user %d: %w", userID, err)
		}
		se.CreatedAt, se.LastUsed = fromNS(created), fromNS(used)
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions of user %d: %w", userID, err)
	}
	return out, nil
}

// EndSession ends one of the user's sessions.
func (s *Store) EndSession(ctx context.Context, userID, sessionID int64) error {
	if err := s.usable(); err != nil {
		return err
	}
	cutoff := ns(s.opts.Now().Add(-presence.SessionIdle))
	var used int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ? RETURNING last_used_ns`, sessionID, userID).Scan(&used)
	s.auth.invalidate() // after the delete, whatever it says: no harm in forgetting
	if errors.Is(err, sql.ErrNoRows) || (err == nil && used < cutoff) {
		return presence.Errorf(presence.ENOTFOUND, "session %d not found", sessionID)
	}
	if err != nil {
		return fmt.Errorf("end session %d: %w", sessionID, err)
	}
	return nil
}

// EndSessions ends all of the user's sessions but except and says how many
// live ones it ended.
func (s *Store) EndSessions(ctx context.Context, userID, except int64) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	cutoff := ns(s.opts.Now().Add(-presence.SessionIdle))
	rows, err := s.db.QueryContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING last_used_ns`, userID, except)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	defer s.auth.invalidate()
	n := 0
	for rows.Next() {
		var used int64
		if err := rows.Scan(&used); err != nil {
			rows.Close()
			return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
		}
		if used >= cutoff {
			n++
		}
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// Touch records a use of a session (time and client) or an API token
// (time). It moves no counter: a later use takes nothing away.
func (s *Store) Touch(ctx context.Context, p presence.Principal, c presence.Client) error {
	if err := s.usable(); err != nil {
		return err
	}
	now := s.opts.Now()
	switch {
	case p.Kind != presence.UserToken:
		return nil
	case p.SessionID != 0:
		c = c.Normalize()
		// Never brings a lapsed session back.
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_used_ns = ?, user_agent = ?, addr = ?
			WHERE id = ? AND user_id = ? AND last_used_ns >= ?`,
			ns(now), c.UserAgent, c.Addr, p.SessionID, p.UserID, ns(now.Add(-presence.SessionIdle))); err != nil {
			return fmt.Errorf("touch session %d: %w", p.SessionID, err)
		}
	case p.TokenID != "":
		prefix, ok := tokenPrefix(p.TokenID)
		if !ok {
			return nil
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_ns = ?
			WHERE user_id = ? AND kind = 'usr' AND substr(hash, 1, 8) = ? AND revoked_ns IS NULL`,
			ns(now), p.UserID, prefix); err != nil {
			return fmt.Errorf("touch token %s: %w", p.TokenID, err)
		}
	}
	return nil
}

// ---- API tokens --------------------------------------------------------

// CreateAPIToken makes a named user token for scripts.
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name string) (presence.APIToken, string, error) {
	if err := s.usable(); err != nil {
		return presence.APIToken{}, "", err
	}
	name, err := presence.NormalizeTokenName(name)
	if err != nil {
		return presence.APIToken{}, "", err
	}
	now := s.opts.Now()
	token, hash := presence.NewToken(presence.UserToken)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.APIToken{}, "", fmt.Errorf("create token: %w", err)
	}
	defer tx.Rollback()
	if _, err := s.userWhere(ctx, tx, "id = ?", userID); err != nil {
		return presence.APIToken{}, "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, user_id, created_ns, name) VALUES (?, 'usr', ?, ?, ?)`,
		hash, userID, ns(now), name); err != nil {
		return presence.APIToken{}, "", fmt.Errorf("create token of user %d: %w", userID, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.APIToken{}, "", fmt.Errorf("create token of user %d: %w", userID, err)
	}
	return presence.APIToken{ID: tokenID(hash), Name: name, CreatedAt: fromNS(ns(now))}, token, nil
}

// APITokens lists the user's tokens that are not revoked, oldest first.
func (s *Store) APITokens(ctx context.Context, userID int64) ([]presence.APIToken, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT hash, name, created_ns, last_used_ns FROM tokens
		WHERE user_id = ? AND kind = 'usr' AND revoked_ns IS NULL ORDER BY created_ns, hash`, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []presence.APIToken{}
	for rows.Next() {
		var (
			hash          []byte
			tok           presence.APIToken
			created, used int64
		)
		if err := rows.Scan(&hash, &tok.Name, &created, &used); err != nil {
			return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
		}
		tok.ID, tok.CreatedAt, tok.LastUsed = tokenID(hash), fromNS(created), fromNS(used)
		out = append(out, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// RevokeAPIToken revokes one of the user's tokens.
func (s *Store) RevokeAPIToken(ctx context.Context, userID int64, id string) error {
	if err := s.usable(); err != nil {
		return err
	}
	notFound := presence.Errorf(presence.ENOTFOUND, "token %q not found", id)
	prefix, ok := tokenPrefix(id)
	if !ok {
		return notFound
	}
	r, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_ns = ?
		WHERE user_id = ? AND kind = 'usr' AND substr(hash, 1, 8) = ? AND revoked_ns IS NULL`,
		ns(s.opts.Now()), userID, prefix)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.auth.invalidate()
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		return notFound
	}
	return nil
}

// tokenPrefix reads a token's public ID back into the hash prefix it is.
func tokenPrefix(id string) ([]byte, bool) {
	b, err := hex.DecodeString(id)
	return b, err == nil && len(b) == 8
}

// ---- One-time links ----------------------------------------------------

const linkColumns = `id, purpose, handle, name, admin, coalesce(user_id, 0), coalesce(created_by, 0), created_ns, expires_ns`

func scanLink(sc interface{ Scan(...any) error }) (presence.Link, error) {
	var l presence.Link
	var purpose string
	var created, expires int64
	if err := sc.Scan(&l.ID, &purpose, &l.Handle, &l.Name, &l.Admin, &l.UserID, &l.CreatedBy, &created, &expires); err != nil {
		return presence.Link{}, err
	}
	l.Purpose, l.CreatedAt, l.ExpiresAt = presence.LinkPurpose(purpose), fromNS(created), fromNS(expires)
	return l, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// CreateLink makes a one-time link, replacing any pending one for the same
// handle (signup) or user (reset).
func (s *Store) CreateLink(ctx context.Context, l presence.Link) (presence.Link, string, error) {
	if err := s.usable(); err != nil {
		return presence.Link{}, "", err
	}
	var ttl time.Duration
	switch l.Purpose {
	case presence.SignupLink:
		ttl = presence.InviteTTL
	case presence.ResetLink:
		ttl = presence.ResetTTL
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
	now := s.opts.Now()
	secret, hash := presence.NewSecret(presence.LinkPrefix)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Link{}, "", fmt.Errorf("create link: %w", err)
	}
	defer tx.Rollback()
	u, err := s.userWhere(ctx, tx, "handle = ?", l.Handle)
	switch {
	case l.Purpose == presence.SignupLink && err == nil:
		return presence.Link{}, "", presence.Errorf(presence.ECONFLICT, "handle %q is taken", l.Handle)
	case l.Purpose == presence.SignupLink && presence.ErrorCode(err) == presence.ENOTFOUND:
		u = presence.User{}
	case err != nil:
		return presence.Link{}, "", err
	}
	signup := l.Purpose == presence.SignupLink
	if !signup {
		name = "" // a reset proposes nothing
	}
	out := presence.Link{
		Purpose: l.Purpose, Handle: l.Handle, Name: name, Admin: l.Admin && signup,
		UserID: u.ID, CreatedBy: l.CreatedBy, CreatedAt: fromNS(ns(now)), ExpiresAt: fromNS(ns(now.Add(ttl))),
	}
	// The replaced link and every expired one go.
	if _, err := tx.ExecContext(ctx, `DELETE FROM links WHERE expires_ns <= ? OR (purpose = ? AND handle = ?)`,
		ns(now), string(l.Purpose), l.Handle); err != nil {
		return presence.Link{}, "", fmt.Errorf("replace links for %s: %w", l.Handle, err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO links (purpose, hash, handle, name, admin, user_id, created_by, created_ns, expires_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		string(out.Purpose), hash, out.Handle, out.Name, out.Admin, nullID(out.UserID), nullID(out.CreatedBy), ns(now), ns(out.ExpiresAt)).Scan(&out.ID)
	if err != nil {
		return presence.Link{}, "", fmt.Errorf("create link for %s: %w", l.Handle, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Link{}, "", fmt.Errorf("create link for %s: %w", l.Handle, err)
	}
	return out, secret, nil
}

var errNoLink = presence.Errorf(presence.ENOTFOUND, "this link is not valid: it may have expired or been used")

// liveLink reads a live link by its secret.
func (s *Store) liveLink(ctx context.Context, q querier, secret string) (presence.Link, []byte, error) {
	hash := presence.HashToken(secret)
	l, err := scanLink(q.QueryRowContext(ctx, `SELECT `+linkColumns+` FROM links WHERE hash = ? AND expires_ns > ?`, hash, ns(s.opts.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return presence.Link{}, nil, errNoLink
	}
	if err != nil {
		return presence.Link{}, nil, fmt.Errorf("read link: %w", err)
	}
	return l, hash, nil
}

// LinkBySecret is a live link.
func (s *Store) LinkBySecret(ctx context.Context, secret string) (presence.Link, error) {
	if err := s.usable(); err != nil {
		return presence.Link{}, err
	}
	l, _, err := s.liveLink(ctx, s.rdb, secret)
	return l, err
}

// Links lists the live links, newest first.
func (s *Store) Links(ctx context.Context) ([]presence.Link, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+linkColumns+` FROM links WHERE expires_ns > ? ORDER BY created_ns DESC, id DESC`, ns(s.opts.Now()))
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	defer rows.Close()
	out := []presence.Link{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// RevokeLink withdraws a live link.
func (s *Store) RevokeLink(ctx context.Context, id int64) error {
	if err := s.usable(); err != nil {
		return err
	}
	r, err := s.db.ExecContext(ctx, `DELETE FROM links WHERE id = ? AND expires_ns > ?`, id, ns(s.opts.Now()))
	if err != nil {
		return fmt.Errorf("revoke link %d: %w", id, err)
	}
	if n, err := r.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("revoke link %d: %w", id, err)
		}
		return presence.Errorf(presence.ENOTFOUND, "link %d not found", id)
	}
	return nil
}

// RedeemLink spends a live link. The read, the change it makes and the
// link's deletion are one transaction on the one writer connection, so
// of concurrent redemptions exactly one finds the link.
func (s *Store) RedeemLink(ctx context.Context, secret string, r presence.Redemption) (presence.User, error) {
	if err := s.usable(); err != nil {
		return presence.User{}, err
	}
	if r.PasswordHash == "" {
		return presence.User{}, presence.Errorf(presence.EINVALID, "a password is required")
	}
	now := s.opts.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.User{}, fmt.Errorf("redeem link: %w", err)
	}
	defer tx.Rollback()
	l, hash, err := s.liveLink(ctx, tx, secret)
	if err != nil {
		return presence.User{}, err
	}
	var u presence.User
	switch l.Purpose {
	case presence.SignupLink:
		name := l.Name
		if r.Name != "" {
			if name, err = presence.NormalizeUserName(r.Name); err != nil {
				return presence.User{}, err
			}
		}
		if err := presence.ValidateTZ(r.TZ); err != nil {
			return presence.User{}, err
		}
		// A conflict rolls back: the link stays live.
		if u, err = insertUser(ctx, tx, presence.User{Handle: l.Handle, Name: name, TZ: r.TZ, Admin: l.Admin, CreatedAt: now}, r.PasswordHash); err != nil {
			return presence.User{}, err
		}
	case presence.ResetLink:
		if u, err = s.userWhere(ctx, tx, "id = ?", l.UserID); err != nil {
			return presence.User{}, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, r.PasswordHash, u.ID); err != nil {
			return presence.User{}, fmt.Errorf("reset password of user %d: %w", u.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
			return presence.User{}, fmt.Errorf("end sessions of user %d: %w", u.ID, err)
		}
	default:
		return presence.User{}, fmt.Errorf("link %d has unknown purpose %q", l.ID, l.Purpose)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM links WHERE hash = ?`, hash); err != nil {
		return presence.User{}, fmt.Errorf("spend link %d: %w", l.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.User{}, fmt.Errorf("redeem link %d: %w", l.ID, err)
	}
	s.auth.invalidate()
	return u, nil
}

// ---- Pairing -----------------------------------------------------------

const pairingColumns = `id, user_code, device_name, os, state, coalesce(user_id, 0), coalesce(device_id, 0),
	interval_ns, created_ns, expires_ns, last_poll_ns`

func scanPairing(sc interface{ Scan(...any) error }) (presence.Pairing, error) {
	var p presence.Pairing
	var state string
	var interval, created, expires, lastPoll int64
	if err := sc.Scan(&p.ID, &p.UserCode, &p.DeviceName, &p.OS, &state, &p.UserID, &p.DeviceID,
		&interval, &created, &expires, &lastPoll); err != nil {
		return presence.Pairing{}, err
	}
	p.State, p.Interval = presence.PairingState(state), time.Duration(interval)
	p.CreatedAt, p.ExpiresAt, p.LastPoll = fromNS(created), fromNS(expires), fromNS(lastPoll)
	return p, nil
}

// pairingKeep is how long a pairing stays after it expired, so that a late
// poll still hears expired_token rather than invalid_grant.
const pairingKeep = time.Hour

// CreatePairing starts a pairing for a device.
func (s *Store) CreatePairing(ctx context.Context, deviceName, os string) (presence.Pairing, string, error) {
	if err := s.usable(); err != nil {
		return presence.Pairing{}, "", err
	}
	now := s.opts.Now()
	code, hash := presence.NewSecret(presence.DeviceCodePrefix)
	p := presence.Pairing{
		DeviceName: deviceName, OS: os, State: presence.PairingPending, Interval: presence.PairingInterval,
		CreatedAt: fromNS(ns(now)), ExpiresAt: fromNS(ns(now.Add(presence.PairingTTL))),
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Pairing{}, "", fmt.Errorf("create pairing: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM pairings WHERE expires_ns <= ?`, ns(now.Add(-pairingKeep))); err != nil {
		return presence.Pairing{}, "", fmt.Errorf("prune pairings: %w", err)
	}
	// A user code is unique among live pairings; with 20^8 codes a draw
	// that collides is all but impossible, and a few more end it.
	for try := 0; ; try++ {
		p.UserCode = presence.NewUserCode()
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pairings WHERE user_code = ? AND expires_ns > ?`, p.UserCode, ns(now)).Scan(&n); err != nil {
			return presence.Pairing{}, "", fmt.Errorf("create pairing: %w", err)
		}
		if n == 0 {
			break
		}
		if try == 10 {
			return presence.Pairing{}, "", fmt.Errorf("create pairing: no free user code after %d draws", try+1)
		}
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO pairings (device_code_hash, user_code, device_name, os, state, interval_ns, created_ns, expires_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		hash, p.UserCode, p.DeviceName, p.OS, string(p.State), int64(p.Interval), ns(p.CreatedAt), ns(p.ExpiresAt)).Scan(&p.ID)
	if err != nil {
		return presence.Pairing{}, "", fmt.Errorf("create pairing: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Pairing{}, "", fmt.Errorf("create pairing: %w", err)
	}
	return p, code, nil
}

var errNoPairing = presence.Errorf(presence.ENOTFOUND, "no pairing waits for this code: it may have expired or been decided")

// pendingPairing reads a live pending pairing by its user code, in any
// form a person may type it.
func (s *Store) pendingPairing(ctx context.Context, q querier, userCode string) (presence.Pairing, error) {
	code, err := presence.NormalizeUserCode(userCode)
	if err != nil {
		return presence.Pairing{}, errNoPairing
	}
	p, err := scanPairing(q.QueryRowContext(ctx, `SELECT `+pairingColumns+` FROM pairings
		WHERE user_code = ? AND expires_ns > ? AND state = 'pending'`, code, ns(s.opts.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return presence.Pairing{}, errNoPairing
	}
	if err != nil {
		return presence.Pairing{}, fmt.Errorf("read pairing: %w", err)
	}
	return p, nil
}

// PairingByUserCode is a live pending pairing.
func (s *Store) PairingByUserCode(ctx context.Context, userCode string) (presence.Pairing, error) {
	if err := s.usable(); err != nil {
		return presence.Pairing{}, err
	}
	return s.pendingPairing(ctx, s.rdb, userCode)
}

// DecidePairing approves (for userID) or denies a live pending pairing.
func (s *Store) DecidePairing(ctx context.Context, userCode string, userID int64, approve bool) (presence.Pairing, error) {
	if err := s.usable(); err != nil {
		return presence.Pairing{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.Pairing{}, fmt.Errorf("decide pairing: %w", err)
	}
	defer tx.Rollback()
	p, err := s.pendingPairing(ctx, tx, userCode)
	if err != nil {
		return presence.Pairing{}, err
	}
	if _, err := s.userWhere(ctx, tx, "id = ?", userID); err != nil {
		return presence.Pairing{}, err
	}
	p.State, p.UserID = presence.PairingDenied, userID
	if approve {
		p.State = presence.PairingApproved
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pairings SET state = ?, user_id = ? WHERE id = ?`, string(p.State), userID, p.ID); err != nil {
		return presence.Pairing{}, fmt.Errorf("decide pairing %d: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.Pairing{}, fmt.Errorf("decide pairing %d: %w", p.ID, err)
	}
	return p, nil
}

// PollPairing runs presence.Pairing.Poll for a device code in one write
// transaction; on approval the device and its token are made in it too.
func (s *Store) PollPairing(ctx context.Context, deviceCode string) (presence.PairingResult, error) {
	if err := s.usable(); err != nil {
		return presence.PairingResult{}, err
	}
	now := s.opts.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return presence.PairingResult{}, fmt.Errorf("poll pairing: %w", err)
	}
	defer tx.Rollback()
	p, err := scanPairing(tx.QueryRowContext(ctx, `SELECT `+pairingColumns+` FROM pairings WHERE device_code_hash = ?`, presence.HashToken(deviceCode)))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && p.State == presence.PairingDone) {
		return presence.PairingResult{}, presence.Errorf(presence.ENOTFOUND, "unknown or spent device code")
	}
	if err != nil {
		return presence.PairingResult{}, fmt.Errorf("poll pairing: %w", err)
	}
	outcome, next := p.Poll(now)
	res := presence.PairingResult{Outcome: outcome, Interval: next.Interval}
	if outcome == presence.PollApproved {
		name, err := presence.NormalizeDeviceName(next.DeviceName)
		if err != nil {
			name = "device" // the caller normalizes; never fail the device at the last step
		}
		if res.Device, res.Token, err = insertDevice(ctx, tx, presence.Device{UserID: next.UserID, Name: name, OS: next.OS, CreatedAt: now}); err != nil {
			return presence.PairingResult{}, err
		}
		next.DeviceID = res.Device.ID
	}
	if _, err := tx.ExecContext(ctx, `UPDATE pairings SET state = ?, device_id = ?, interval_ns = ?, last_poll_ns = ? WHERE id = ?`,
		string(next.State), nullID(next.DeviceID), int64(next.Interval), ns(next.LastPoll), p.ID); err != nil {
		return presence.PairingResult{}, fmt.Errorf("poll pairing %d: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return presence.PairingResult{}, fmt.Errorf("poll pairing %d: %w", p.ID, err)
	}
	return res, nil
}

// pruneLapsed deletes what can no longer be used: sessions unused for
// SessionIdle, expired links, and pairings expired for pairingKeep. None
// of them counts once lapsed; this only keeps the tables small.
func (s *Store) pruneLapsed(ctx context.Context) error {
	now := s.opts.Now()
	for _, q := range []struct {
		query string
		arg   int64
	}{
		{`DELETE FROM sessions WHERE last_used_ns < ?`, ns(now.Add(-presence.SessionIdle))},
		{`DELETE FROM links WHERE expires_ns <= ?`, ns(now)},
		{`DELETE FROM pairings WHERE expires_ns <= ?`, ns(now.Add(-pairingKeep))},
	} {
		if _, err := s.db.ExecContext(ctx, q.query, q.arg); err != nil {
			return fmt.Errorf("prune lapsed credentials: %w", err)
		}
	}
	return nil
}

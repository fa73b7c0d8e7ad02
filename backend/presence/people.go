package presence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// People: how a person gets an account (a one-time link), proves who they
// are (a password, then a server-side session), keeps scripts working (named
// API tokens) and connects a computer (a pairing code, RFC 8628). The
// secrets of all of these are random, shown once, and kept only as their
// SHA-256 hash (HashToken), like device tokens.

// Secret prefixes. Sessions authenticate like user tokens; link and pairing
// secrets only ever redeem themselves.
const (
	SessionPrefix    = "ls_ses_"
	LinkPrefix       = "ls_inv_"
	DeviceCodePrefix = "ls_pair_"
)

// NewSecret returns a fresh secret with the prefix (32 random bytes) and the
// hash a store keeps of it.
func NewSecret(prefix string) (secret string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // cannot happen on supported systems
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashToken(secret)
}

// Password bounds, in bytes. The floor is the one rule that matters (NIST
// SP 800-63B); the ceiling bounds what hashing one attempt can cost.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 1024
)

// ValidatePassword checks a new password's length. Anything else is the
// person's choice.
func ValidatePassword(pw string) error {
	if len(pw) < MinPasswordBytes || len(pw) > MaxPasswordBytes {
		return Errorf(EINVALID, "password must be %d to %d bytes long", MinPasswordBytes, MaxPasswordBytes)
	}
	return nil
}

// ---- Sessions ---------------------------------------------------------

// SessionIdle is how long a browser session lasts unused. Every use (at most
// once a minute, see Store.Touch) moves its end.
const SessionIdle = 30 * 24 * time.Hour

// Session is a signed-in browser. Only the hash of its secret is kept.
type Session struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used"`
	UserAgent string    `json:"user_agent"`
	Addr      string    `json:"addr"`
}

// Client describes who used a credential: the browser and its address.
type Client struct {
	UserAgent string
	Addr      string
}

// Client field bounds, in runes.
const (
	MaxUserAgentRunes = 256
	MaxAddrRunes      = 64
)

// Normalize trims the fields to their bounds and drops control characters,
// so a store can always write what a request sent.
func (c Client) Normalize() Client {
	clip := func(s string, n int) string {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == utf8.RuneError {
				return -1
			}
			return r
		}, strings.ToValidUTF8(s, ""))
		if utf8.RuneCountInString(s) > n {
			s = string([]rune(s)[:n])
		}
		return strings.TrimSpace(s)
	}
	return Client{UserAgent: clip(c.UserAgent, MaxUserAgentRunes), Addr: clip(c.Addr, MaxAddrRunes)}
}

// ---- API tokens -------------------------------------------------------

// APIToken is a named user token for scripts. Its ID is public (the first
// 8 bytes of the token's hash, hex); the token itself is shown once.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// MaxTokenNameRunes bounds an API token's name.
const MaxTokenNameRunes = 64

// NormalizeTokenName trims an API token's name and checks it: 1 to
// MaxTokenNameRunes characters, no control characters.
func NormalizeTokenName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if n == "" || utf8.RuneCountInString(n) > MaxTokenNameRunes || strings.ContainsFunc(n, unicode.IsControl) {
		return "", Errorf(EINVALID, "token name must be 1-%d characters, without control characters", MaxTokenNameRunes)
	}
	return n, nil
}

// ---- One-time links: invites and password resets ------------------------

// LinkPurpose says what a one-time link does when redeemed.
type LinkPurpose string

// Link purposes.
const (
	// SignupLink creates the user named by its handle (an invite).
	SignupLink LinkPurpose = "signup"
	// ResetLink sets a new password for an existing user and ends all of
	// their sessions.
	ResetLink LinkPurpose = "reset"
)

// Link lifetimes.
const (
	InviteTTL = 7 * 24 * time.Hour
	ResetTTL  = 24 * time.Hour
)

// Link is a pending one-time link. A new link for the same handle (signup)
// or user (reset) replaces any pending one.
type Link struct {
	ID      int64       `json:"id"`
	Purpose LinkPurpose `json:"purpose"`
	// Handle is the account the link is for: the one a signup creates, or
	// the user a reset is for.
	Handle string `json:"handle"`
	// Name and Admin are what a signup proposes; the person may change the name.
	Name      string    `json:"name,omitempty"`
	Admin     bool      `json:"admin,omitempty"`
	UserID    int64     `json:"-"` // reset: the user; signup: 0
	CreatedBy int64     `json:"-"` // the inviting user, 0 from the command line
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Redemption is what the person fills in on a link's page. For a reset only
// PasswordHash is used.
type Redemption struct {
	Name         string
	TZ           string
	PasswordHash string // a password.Hash result, never the password
}

// ---- Pairing a device (RFC 8628) --------------------------------------

// Pairing timings (RFC 8628 §3.2, §3.5).
const (
	PairingTTL      = 10 * time.Minute
	PairingInterval = 5 * time.Second
	// SlowDownStep is added to the interval each time a device polls too fast.
	SlowDownStep = 5 * time.Second
)

// PairingState is where a pairing is in its life.
type PairingState string

// Pairing states.
const (
	PairingPending  PairingState = "pending"
	PairingApproved PairingState = "approved"
	PairingDenied   PairingState = "denied"
	// PairingDone: the device collected its token; the codes are spent.
	PairingDone PairingState = "done"
)

// Pairing is a device asking to join a user's account.
type Pairing struct {
	ID         int64         `json:"-"`
	UserCode   string        `json:"user_code"` // canonical: 8 letters, no dash
	DeviceName string        `json:"device_name"`
	OS         string        `json:"os"`
	State      PairingState  `json:"state"`
	UserID     int64         `json:"-"` // who approved or denied
	DeviceID   int64         `json:"-"` // set when done
	Interval   time.Duration `json:"-"`
	CreatedAt  time.Time     `json:"created_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	LastPoll   time.Time     `json:"-"`
}

// userCodeAlphabet has no vowels (no words are spelled by accident) and no
// letters easily misheard or misread in pairs (RFC 8628 §6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLen is the number of letters in a user code.
const UserCodeLen = 8

// NewUserCode returns a random user code in canonical form (8 letters).
// 20^8 ≈ 2^34.6 codes; with codes live 10 minutes and approval rate-limited,
// guessing one is out of reach.
func NewUserCode() string {
	b := make([]byte, UserCodeLen)
	var r [1]byte
	for i := 0; i < len(b); {
		if _, err := rand.Read(r[:]); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		if int(r[0]) >= 256-256%len(userCodeAlphabet) {
			continue // reject to keep the draw uniform
		}
		b[i] = userCodeAlphabet[int(r[0])%len(userCodeAlphabet)]
		i++
	}
	return string(b)
}

// NormalizeUserCode reads a code as a person types it: case, spaces and
// dashes do not matter. EINVALID when what is left is not a user code.
func NormalizeUserCode(s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
	if len(s) != UserCodeLen || strings.Trim(s, userCodeAlphabet) != "" {
		return "", Errorf(EINVALID, "a pairing code is 8 letters, such as BDFG-HJKL")
	}
	return s, nil
}

// DisplayUserCode is the code as shown and read aloud: BDFG-HJKL.
func DisplayUserCode(code string) string {
	if len(code) != UserCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// PollOutcome is the answer to one poll of the token endpoint.
type PollOutcome string

// Poll outcomes, named as RFC 8628 §3.5 names its error codes.
const (
	PollPending  PollOutcome = "authorization_pending"
	PollSlowDown PollOutcome = "slow_down"
	PollDenied   PollOutcome = "access_denied"
	PollExpired  PollOutcome = "expired_token"
	PollApproved PollOutcome = "approved" // the token is issued
)

// Poll is the pairing rule: what a poll at now gets, and the pairing as it
// stands after it. A store runs it inside the transaction that reads the
// pairing and writes back what it returns (and, for PollApproved, creates
// the device and its token and marks the pairing done).
//
// Expiry wins over everything, approval included: a token not collected in
// time is never issued. A device polling sooner than the interval after its
// last poll gets slow_down and a longer interval (§3.5), whatever the state.
func (p Pairing) Poll(now time.Time) (PollOutcome, Pairing) {
	if !now.Before(p.ExpiresAt) {
		return PollExpired, p
	}
	fast := !p.LastPoll.IsZero() && now.Sub(p.LastPoll) < p.Interval
	p.LastPoll = now
	if fast {
		p.Interval += SlowDownStep
		return PollSlowDown, p
	}
	switch p.State {
	case PairingApproved:
		p.State = PairingDone
		return PollApproved, p
	case PairingDenied:
		return PollDenied, p
	case PairingDone:
		// Spent: the store refuses a spent code before asking; keep it so.
		return PollExpired, p
	}
	return PollPending, p
}

// PairingResult is what a poll gives the device.
type PairingResult struct {
	Outcome  PollOutcome
	Interval time.Duration // the interval to poll at from now on
	// Set for PollApproved only: the new device and its token, shown once.
	Device Device
	Token  string
}

// ---- The store's part -------------------------------------------------

// People is the store's side of accounts beyond users, devices and tokens.
// Every method is in the contract suite (backend/storetest) on both stores.
//
// Rules beyond each method's comment:
//   - The first user created on a server (by CreateUser or by redeeming a
//     signup link) is an admin.
//   - A disabled user's sessions are ended when they are disabled, and
//     Authenticate refuses every credential of theirs (sessions, API tokens,
//     device tokens) with EUNAUTHORIZED while they stay disabled.
//   - Authenticate resolves a session secret (ls_ses_…) to a Principal of
//     Kind UserToken with SessionID set, and refuses one unused for longer
//     than SessionIdle; a user API token to Kind UserToken with TokenID set.
//   - Unknown, expired, spent or revoked secrets of every kind are
//     ENOTFOUND for links and pairings, EUNAUTHORIZED for credentials; the
//     answer never tells which.
type People interface {
	// PasswordHash is the user's password hash for a sign-in by handle;
	// "" when they have none. ENOTFOUND for an unknown handle.
	PasswordHash(ctx context.Context, handle string) (User, string, error)
	// SetPassword replaces the user's password hash.
	SetPassword(ctx context.Context, userID int64, hash string) error

	// CreateSession signs a user in and returns the session's secret, shown once.
	CreateSession(ctx context.Context, userID int64, c Client) (Session, string, error)
	// Sessions lists the user's live sessions, most recently used first.
	Sessions(ctx context.Context, userID int64) ([]Session, error)
	// EndSession ends one of the user's sessions; ENOTFOUND when it is not theirs.
	EndSession(ctx context.Context, userID, sessionID int64) error
	// EndSessions ends all of the user's sessions but except (0: all) and
	// says how many it ended.
	EndSessions(ctx context.Context, userID, except int64) (int, error)
	// Touch records a use of the principal's session or API token (its
	// time, and for a session the client). Callers touch at most once a
	// minute per credential; other principals are ignored.
	Touch(ctx context.Context, p Principal, c Client) error

	// CreateAPIToken makes a named user token for scripts, shown once.
	CreateAPIToken(ctx context.Context, userID int64, name string) (APIToken, string, error)
	// APITokens lists the user's tokens that are not revoked, oldest first.
	APITokens(ctx context.Context, userID int64) ([]APIToken, error)
	// RevokeAPIToken revokes one; ENOTFOUND when it is not the user's.
	RevokeAPIToken(ctx context.Context, userID int64, id string) error

	// CreateLink makes a one-time link (Purpose, Handle, Name, Admin and
	// CreatedBy from l; the store sets the rest, ExpiresAt from the TTL of
	// the purpose) and returns it with its secret. A signup for a handle
	// that is a user is ECONFLICT; a reset for an unknown handle ENOTFOUND.
	CreateLink(ctx context.Context, l Link) (Link, string, error)
	// LinkBySecret is a live (pending, unexpired) link.
	LinkBySecret(ctx context.Context, secret string) (Link, error)
	// Links lists the live links, newest first.
	Links(ctx context.Context) ([]Link, error)
	// RevokeLink withdraws a live link.
	RevokeLink(ctx context.Context, id int64) error
	// RedeemLink spends a live link at once: a signup creates its user with
	// the redemption's name, time zone and password hash (ECONFLICT if the
	// handle was taken meanwhile; the link stays live then); a reset sets
	// the password and ends all of the user's sessions.
	RedeemLink(ctx context.Context, secret string, r Redemption) (User, error)

	// CreatePairing starts a pairing for a device (name and OS as the
	// device says; normalized by the caller) and returns it with the device
	// code, shown once. User codes are unique among live pairings.
	CreatePairing(ctx context.Context, deviceName, os string) (Pairing, string, error)
	// PairingByUserCode is a live pending pairing by its canonical user code.
	PairingByUserCode(ctx context.Context, userCode string) (Pairing, error)
	// DecidePairing approves (for userID) or denies a live pending pairing.
	DecidePairing(ctx context.Context, userCode string, userID int64, approve bool) (Pairing, error)
	// PollPairing runs Pairing.Poll for the device code at the store's
	// clock. ENOTFOUND for an unknown or spent code; on PollApproved the
	// device (with the pairing's name and OS) and its token are created in
	// the same transaction that spends the code.
	PollPairing(ctx context.Context, deviceCode string) (PairingResult, error)
}

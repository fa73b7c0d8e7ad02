package presence

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is a person on a service. Handle is their public, URL-safe name.
type User struct {
	ID     int64  `json:"-"`
	Handle string `json:"handle"`
	Name   string `json:"name"`
	TZ     string `json:"tz"`
	Public bool   `json:"public"`
	// PublicDetail is how much the public status shows ("" = the default).
	PublicDetail PublicDetail `json:"public_detail,omitempty"`
	// Admin may invite people, list them, disable them and end their
	// sessions. The first user of a server is one.
	Admin bool `json:"admin"`
	// Disabled users cannot sign in, and none of their credentials
	// (sessions, API tokens, device tokens) authenticates.
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"-"`
}

// Location is the user's time zone, UTC when unset or unknown.
func (u User) Location() *time.Location {
	if loc, err := time.LoadLocation(u.TZ); err == nil && u.TZ != "" {
		return loc
	}
	return time.UTC
}

var handleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,38}$`)

// ValidateHandle checks a handle: 1–39 lowercase letters, digits, '-' or '_'.
func ValidateHandle(h string) error {
	if !handleRE.MatchString(h) {
		return Errorf(EINVALID, "handle %q must be 1-39 lowercase letters, digits, '-' or '_'", h)
	}
	return nil
}

// ValidateTZ checks an IANA time-zone name.
func ValidateTZ(tz string) error {
	if tz == "" {
		return nil
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return Errorf(EINVALID, "unknown time zone %q (want an IANA name such as Europe/Paris)", tz)
	}
	return nil
}

// MaxUserNameRunes bounds a user's display name.
const MaxUserNameRunes = 100

// NormalizeUserName trims a display name and checks it: at most
// MaxUserNameRunes characters, no control characters. Empty is allowed.
func NormalizeUserName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > MaxUserNameRunes || strings.ContainsFunc(name, unicode.IsControl) {
		return "", Errorf(EINVALID, "name must be at most %d characters, without control characters", MaxUserNameRunes)
	}
	return name, nil
}

// UserUpdate is a partial change to a user (PATCH /api/v1/me); nil fields stay.
type UserUpdate struct {
	Name   *string
	TZ     *string
	Public *bool
	// PublicDetail, when set, must parse (ParsePublicDetail).
	PublicDetail *PublicDetail
	// Admin and Disabled are an admin's to change (the API checks who asks).
	// Disabling ends the user's sessions in the same write.
	Admin    *bool
	Disabled *bool
}

// Normalize checks every set field and returns the update as a store
// writes it (the name trimmed); an invalid field refuses all of it.
func (u UserUpdate) Normalize() (UserUpdate, error) {
	if u.Name != nil {
		n, err := NormalizeUserName(*u.Name)
		if err != nil {
			return UserUpdate{}, err
		}
		u.Name = &n
	}
	if u.TZ != nil {
		if err := ValidateTZ(*u.TZ); err != nil {
			return UserUpdate{}, err
		}
	}
	if u.PublicDetail != nil {
		d, err := ParsePublicDetail(string(*u.PublicDetail))
		if err != nil {
			return UserUpdate{}, err
		}
		u.PublicDetail = &d
	}
	return u, nil
}

// Device is one machine of a user. Facts come from the agent when it connects.
type Device struct {
	ID       int64  `json:"id"`
	UserID   int64  `json:"-"`
	Name     string `json:"name"`
	OS       string `json:"os"`
	Platform string `json:"platform,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Version is the agent's version as it last said (Facts.Version).
	Version   string    `json:"version,omitempty"`
	CreatedAt time.Time `json:"-"`
	Revoked   bool      `json:"-"`
}

// Facts describe a device's machine, sent by the agent when it first connects.
type Facts struct {
	Hostname string `json:"hostname,omitempty"`
	OS       string `json:"os,omitempty"`
	Platform string `json:"platform,omitempty"`
	// Version is the agent's version ("1.4.0", "dev-3f2a1c9").
	Version string `json:"version,omitempty"`
}

// MaxDeviceNameRunes bounds a device's display name.
const MaxDeviceNameRunes = 64

// NormalizeDeviceName trims a device's display name and checks it: 1 to
// MaxDeviceNameRunes characters, no control characters.
func NormalizeDeviceName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if n == "" || utf8.RuneCountInString(n) > MaxDeviceNameRunes || strings.ContainsFunc(n, unicode.IsControl) {
		return "", Errorf(EINVALID, "device name must be 1-%d characters, without control characters", MaxDeviceNameRunes)
	}
	return n, nil
}

// TokenKind says what a token authenticates.
type TokenKind string

// Token kinds and their prefixes.
const (
	UserToken   TokenKind = "usr"
	DeviceToken TokenKind = "dev"
)

// NewToken returns a fresh token of the kind ("ls_usr_…" or "ls_dev_…", 32
// random bytes) and the SHA-256 hash that is all a store keeps of it.
func NewToken(kind TokenKind) (token string, hash []byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // cannot happen on supported systems
	}
	token = "ls_" + string(kind) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken is the at-rest form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenKindOf returns the kind a token claims by its prefix, or an
// EUNAUTHORIZED error for anything that is not a Lastseen token.
func TokenKindOf(token string) (TokenKind, error) {
	switch {
	case strings.HasPrefix(token, "ls_usr_"):
		return UserToken, nil
	case strings.HasPrefix(token, "ls_dev_"):
		return DeviceToken, nil
	}
	return "", Errorf(EUNAUTHORIZED, "not a Lastseen token")
}

// HashesEqual compares two token hashes in constant time.
func HashesEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Principal is who a request acts as: a user, or one device of a user.
type Principal struct {
	Kind     TokenKind
	UserID   int64
	DeviceID int64 // only for device tokens
	// SessionID is set when a browser session authenticated (Kind is
	// UserToken then); TokenID when a user API token did.
	SessionID int64
	TokenID   string
}

package httpapi

import (
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Wire types of the People endpoints: sessions, API tokens, one-time links,
// the admin's list of people and invites, and pairing (RFC 8628).

// PasswordChange is the body of PUT /api/v1/me/password. Current is
// required when the user has a password.
type PasswordChange struct {
	Current string `json:"current,omitempty"`
	New     string `json:"new"`
}

// SignInSession is one signed-in browser in GET /api/v1/me/sessions.
type SignInSession struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used"`
	UserAgent string    `json:"user_agent"`
	Addr      string    `json:"addr"`
	// Current is the session that asked.
	Current bool `json:"current"`
}

// NewAPITokenRequest is the body of POST /api/v1/me/tokens.
type NewAPITokenRequest struct {
	Name string `json:"name"`
}

// NewAPIToken is the answer to POST /api/v1/me/tokens. Token is shown this once.
type NewAPIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token"`
}

// LinkSecret is the body of POST /api/v1/links/peek.
type LinkSecret struct {
	Secret string `json:"secret"`
}

// LinkInfo is what a live one-time link is for.
type LinkInfo struct {
	Purpose   presence.LinkPurpose `json:"purpose"`
	Handle    string               `json:"handle"`
	Name      string               `json:"name"`
	ExpiresAt time.Time            `json:"expires_at"`
}

// RedeemRequest is the body of POST /api/v1/links/redeem. Name and TZ are
// read for a signup only.
type RedeemRequest struct {
	Secret   string `json:"secret"`
	Name     string `json:"name,omitempty"`
	TZ       string `json:"tz,omitempty"`
	Password string `json:"password"`
}

// Person is one user in the admin's GET /api/v1/people.
type Person struct {
	Handle   string         `json:"handle"`
	Name     string         `json:"name"`
	Admin    bool           `json:"admin"`
	Disabled bool           `json:"disabled"`
	Status   presence.State `json:"status"`
	LastSeen *time.Time     `json:"last_seen"`
	Sessions int            `json:"sessions"`
}

// PersonUpdate is the body of PATCH /api/v1/people/{handle}; absent fields stay.
type PersonUpdate struct {
	Disabled *bool `json:"disabled,omitempty"`
	Admin    *bool `json:"admin,omitempty"`
}

// EndedSessions is the answer to DELETE /api/v1/people/{handle}/sessions.
type EndedSessions struct {
	Ended int `json:"ended"`
}

// ResetLink is the answer to POST /api/v1/people/{handle}/reset.
type ResetLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// InviteRequest is the body of POST /api/v1/invites.
type InviteRequest struct {
	Handle string `json:"handle"`
	Name   string `json:"name,omitempty"`
	Admin  bool   `json:"admin,omitempty"`
}

// Invite is a pending invite. URL is set only in the answer to POST
// /api/v1/invites: the secret is shown that once.
type Invite struct {
	ID        int64     `json:"id"`
	Handle    string    `json:"handle"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url,omitempty"`
}

// PairRequest is the body of POST /api/v1/pair: the device as it names itself.
type PairRequest struct {
	DeviceName string `json:"device_name"`
	OS         string `json:"os"`
}

// PairStartResponse is the answer to POST /api/v1/pair (RFC 8628 §3.2).
type PairStartResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"` // BDFG-HJKL
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	Interval                int64  `json:"interval"`   // seconds
	ExpiresIn               int64  `json:"expires_in"` // seconds
}

// DeviceCodeGrant is the grant_type of POST /api/v1/pair/token (RFC 8628 §3.4).
const DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// PairTokenRequest is the JSON body of POST /api/v1/pair/token (the form
// encoding of RFC 8628 §3.4 is accepted too). GrantType may be left out of JSON.
type PairTokenRequest struct {
	GrantType  string `json:"grant_type,omitempty"`
	DeviceCode string `json:"device_code"`
}

// PairTokenResponse is POST /api/v1/pair/token when the pairing was
// approved: the device's token, shown this once.
type PairTokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	Device      presence.Device `json:"device"`
	Handle      string          `json:"handle"`
}

// PairTokenError is every other answer of POST /api/v1/pair/token, in the
// shape of RFC 8628 §3.5 (RFC 6749 §5.2): the one answer of the API that is
// not the usual error envelope.
type PairTokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	Interval         int64  `json:"interval,omitempty"` // seconds
}

// PairInfo is GET /api/v1/pair/{user_code}: what the person approves.
type PairInfo struct {
	UserCode   string                `json:"user_code"` // BDFG-HJKL
	DeviceName string                `json:"device_name"`
	OS         string                `json:"os"`
	State      presence.PairingState `json:"state"`
	ExpiresAt  time.Time             `json:"expires_at"`
}

// PairDecision is the body of POST /api/v1/pair/{user_code}.
type PairDecision struct {
	Approve *bool `json:"approve"`
}

// PairDecided is the answer to POST /api/v1/pair/{user_code}.
type PairDecided struct {
	State      presence.PairingState `json:"state"`
	DeviceName string                `json:"device_name"`
}

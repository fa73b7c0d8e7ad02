package httpapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// SessionCookie is the browser's sign-in cookie.
//
// Its value is the secret of a server-side session (ls_ses_…, see
// presence.Session), never a token: signing out, a password change or reset,
// an admin ending the sessions or disabling the user ends it on the server,
// and every request authenticates it against the store. The cookie is
// HttpOnly (no script ever reads it), SameSite=Strict (no other site's page
// sends it) and Secure on TLS.
const SessionCookie = "lastseen_session"

// sessionMaxAge is how long a browser keeps the cookie: as long as the
// session lasts unused. Each recorded use (at most once a minute) sends the
// cookie again, so the two end together.
const sessionMaxAge = presence.SessionIdle

// caller is who a request acts as, and how it proved it.
type caller struct {
	presence.Principal
	key    [32]byte // the credential's hash: the rate-limit key
	cookie bool     // authenticated by the session cookie (CSRF rules apply)
	secret string   // the credential itself, to send the cookie again
}

// access is what a route asks of its caller.
type access int

const (
	// readAccess admits user tokens and device tokens acting for their user:
	// the desktop agent proxies the dashboard's reads with its device token.
	readAccess access = iota
	// userAccess admits user credentials only: a session, a user token (changing
	// the user, managing devices, sessions, tokens, approving a pairing).
	userAccess
	// deviceAccess admits device tokens only (posting heartbeats).
	deviceAccess
	// personalAccess admits what readAccess does, for writes that change
	// only the user's own preferences and no account, device or credential
	// (the watch list): the window manages them through the agent, which
	// holds only its device token. Cookie-borne writes keep the CSRF rule.
	personalAccess
)

// authed wraps h with authentication, the route's access rule, the CSRF rule
// for cookie-borne writes, and the per-token rate limit.
func (s *Server) authed(a access, h func(http.ResponseWriter, *http.Request, caller) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.authenticate(r)
		if err != nil {
			return s.authFailed(r, err)
		}
		rate := s.cfg.UserRate
		if c.Kind == presence.DeviceToken {
			rate = s.cfg.DeviceRate
		}
		if ok, wait := s.limiter.allow(c.key, rate); !ok {
			return &limitedError{
				err:   presence.Errorf(presence.ERATELIMIT, "too many requests for this token; retry in %s", retryAfterSeconds(wait)+"s"),
				after: wait,
			}
		}
		switch {
		case a == userAccess && c.Kind != presence.UserToken:
			return presence.Errorf(presence.EFORBIDDEN, "this needs a user token; a device token may only post heartbeats and read, not change the user or its devices")
		case a == deviceAccess && c.Kind != presence.DeviceToken:
			return presence.Errorf(presence.EFORBIDDEN, "heartbeats need a device token")
		}
		if c.cookie {
			if err := s.checkOrigin(r); err != nil {
				return err
			}
		}
		if s.touch(r, c.Principal) && c.cookie {
			// The session's idle end moved; so does the cookie's.
			http.SetCookie(w, s.sessionCookie(r, c.secret, int(sessionMaxAge/time.Second)))
		}
		return h(w, r, c)
	}
}

// errNoCredentials is a request that offered no token at all: a browser
// before sign-in, not a guess, so it is not counted as a failure.
var errNoCredentials = presence.Errorf(presence.EUNAUTHORIZED, "sign in: send Authorization: Bearer <token>, or sign in at /api/v1/login")

// maxFailedAuthAddrs bounds the failed-authentication limiter's memory.
const maxFailedAuthAddrs = 10_000

// authFailed answers a failed authentication: as it came (401), unless the
// client's address has failed too often lately, then 429 with Retry-After.
//
// Only failures are counted, and the token is always looked up first: a
// valid token is never refused or slowed, whatever its address did before.
// The lookup of a bad token is one indexed read (tokens are 32 random
// bytes, so there is nothing to guess); the limit tells a runaway or
// guessing client to stop, and keeps its noise to a trickle.
func (s *Server) authFailed(r *http.Request, err error) error {
	if presence.ErrorCode(err) != presence.EUNAUTHORIZED || err == errNoCredentials {
		return err
	}
	if ok, wait := s.failedAuth.allow(addrKey(r.RemoteAddr), s.cfg.FailedAuthRate); !ok {
		s.metrics.authFailure(true)
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "too many failed sign-ins from this address; retry in %ss", retryAfterSeconds(wait)),
			after: wait,
		}
	}
	s.metrics.authFailure(false)
	return err
}

// addrKey is the failed-authentication key of a client: its IPv4 address,
// or its IPv6 /64 (one machine, or one site, usually holds a whole /64).
func addrKey(remote string) [32]byte {
	var k [32]byte
	a, err := netip.ParseAddr(remote)
	if ap, perr := netip.ParseAddrPort(remote); perr == nil {
		a, err = ap.Addr(), nil
	}
	if err != nil {
		// Not an IP (a test's pipe, a unix socket): all such share one key.
		k[0] = 'x'
		return k
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		k[0] = 4
		copy(k[1:], b[:])
		return k
	}
	b := a.As16()
	k[0] = 6
	copy(k[1:], b[:8])
	return k
}

// authenticate resolves the request's bearer token, or else its session cookie.
func (s *Server) authenticate(r *http.Request) (caller, error) {
	token, cookie, err := credentials(r)
	if err != nil {
		return caller{}, err
	}
	if cookie && !strings.HasPrefix(token, presence.SessionPrefix) {
		// A cookie from before sessions held a token; it signs in no more.
		return caller{}, presence.Errorf(presence.EUNAUTHORIZED, "the session cookie does not hold a session; sign in again")
	}
	p, err := s.store.Authenticate(r.Context(), token)
	if err != nil {
		if presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			return caller{}, err
		}
		return caller{}, fmt.Errorf("authenticate: %w", err)
	}
	c := caller{Principal: p, cookie: cookie}
	copy(c.key[:], presence.HashToken(token))
	if cookie {
		c.secret = token
	}
	return c, nil
}

// credentials finds the token: the Authorization header wins over the cookie,
// so a script holding a token is never confused by a stale browser session.
func credentials(r *http.Request) (token string, cookie bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", false, presence.Errorf(presence.EUNAUTHORIZED, `the Authorization header must be "Bearer <token>"`)
		}
		return tok, false, nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, errNoCredentials
}

// checkOrigin refuses a state-changing browser request from another origin
// (Sec-Fetch-Site, else Origin against Host). SameSite=Strict already keeps
// the cookie off cross-site requests; this also covers same-site siblings
// and old browsers. Requests from non-browsers carry neither header and pass.
func (s *Server) checkOrigin(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return presence.Errorf(presence.EFORBIDDEN, "cross-origin request refused")
	}
	return nil
}

func (s *Server) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		// Behind a TLS-terminating proxy the request arrives in plain HTTP;
		// trusting X-Forwarded-Proto here is safe, since it can only make
		// the cookie stricter.
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	}
}

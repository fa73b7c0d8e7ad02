package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/password"
	"github.com/lastseen/lastseen/backend/presence"
)

// peopleState is what the People endpoints keep in memory: the limiters of
// password sign-ins and pairing codes, and when each credential's use was
// last recorded. Every map in it is bounded.
type peopleState struct {
	// accountFails counts failed password sign-ins per account (by the
	// handle tried, known or not, so the limiter's answers tell nothing of
	// which handles exist); accountAddrFails per account and address.
	accountFails     *limiter
	accountAddrFails *limiter
	// pairStarts counts pairings started per address; codeMisses user codes
	// tried in vain, per address and per user.
	pairStarts *limiter
	codeMisses *limiter
	touched    touches
	// adminMu makes "is this the last admin?" and the change one step on
	// this server.
	adminMu sync.Mutex
}

// maxLimiterKeys bounds each People limiter's memory.
const maxLimiterKeys = 10_000

func newPeopleState(now func() time.Time) *peopleState {
	return &peopleState{
		accountFails:     newBoundedLimiter(now, maxLimiterKeys),
		accountAddrFails: newBoundedLimiter(now, maxLimiterKeys),
		pairStarts:       newBoundedLimiter(now, maxLimiterKeys),
		codeMisses:       newBoundedLimiter(now, maxLimiterKeys),
		touched:          touches{last: make(map[string]time.Time)},
	}
}

// errWrongPassword is the one answer to a failed password sign-in, whether
// the handle is unknown, the password wrong, the user without a password or
// disabled: the same status, the same words, and (see checkPassword) the
// same time.
var errWrongPassword = presence.Errorf(presence.EUNAUTHORIZED, "wrong handle or password")

// login is POST /api/v1/login: a handle and password (or, as before, a user
// token) start a server-side session, whose secret becomes the cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	var req LoginRequest
	if err := decodeBody(w, r, maxBodyBytes, &req); err != nil {
		return err
	}
	switch {
	case req.Token != "" && (req.Handle != "" || req.Password != ""):
		return presence.Errorf(presence.EINVALID, "send a handle and password, or a token, not both")
	case req.Token != "":
		return s.loginToken(w, r, req.Token)
	case req.Handle == "" || req.Password == "":
		return presence.Errorf(presence.EINVALID, "handle and password are required")
	}
	handle := strings.ToLower(strings.TrimSpace(req.Handle))
	addr := addrKey(r.RemoteAddr)
	if err := s.signInAllowed(handle, addr); err != nil {
		return err
	}
	u, ok, err := s.checkPassword(r.Context(), handle, req.Password)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if !ok {
		s.signInFailed(handle, addr)
		return errWrongPassword
	}
	return s.startSession(w, r, u)
}

// loginToken signs in with a user token, as sign-in worked before
// passwords: the token is checked, and a session is made for its user.
func (s *Server) loginToken(w http.ResponseWriter, r *http.Request, token string) error {
	kind, err := presence.TokenKindOf(token)
	if err != nil {
		return s.authFailed(r, presence.Errorf(presence.EUNAUTHORIZED, "token: not a Lastseen token"))
	}
	if kind != presence.UserToken {
		return presence.Errorf(presence.EFORBIDDEN, "sign in with a user token (ls_usr_…); device tokens cannot sign in")
	}
	p, err := s.store.Authenticate(r.Context(), token)
	if err != nil {
		if presence.ErrorCode(err) == presence.EUNAUTHORIZED {
			return s.authFailed(r, err)
		}
		return fmt.Errorf("login: %w", err)
	}
	var key [32]byte
	copy(key[:], presence.HashToken(token))
	if ok, wait := s.limiter.allow(key, s.cfg.UserRate); !ok {
		return &limitedError{err: presence.Errorf(presence.ERATELIMIT, "too many requests for this token"), after: wait}
	}
	u, err := s.store.UserByID(r.Context(), p.UserID)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return s.startSession(w, r, u)
}

// startSession signs u in: a new session, its cookie, and u as /me. A
// session the browser already held is ended, so signing in again does not
// pile up sessions.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u presence.User) error {
	if err := s.endCookieSession(r); err != nil {
		s.log.Warn("could not end the session the browser held before signing in again", attrErr, err)
	}
	sess, secret, err := s.store.CreateSession(r.Context(), u.ID, clientOf(r))
	if err != nil {
		return fmt.Errorf("create session for user %d: %w", u.ID, err)
	}
	// Creating it recorded its first use.
	s.ppl.touched.due(touchKey(presence.Principal{SessionID: sess.ID}), s.now())
	me, err := s.me(r.Context(), u)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.sessionCookie(r, secret, int(sessionMaxAge/time.Second)))
	writeJSON(w, http.StatusOK, me)
	return nil
}

// logout is POST /api/v1/logout: it ends the cookie's session on the server
// (and the streams it opened) and clears the cookie, signed in or not.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	if err := s.endCookieSession(r); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	http.SetCookie(w, s.sessionCookie(r, "", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// endCookieSession ends the session the request's cookie holds, if any is
// live, and its streams.
func (s *Server) endCookieSession(r *http.Request) error {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || !strings.HasPrefix(ck.Value, presence.SessionPrefix) {
		return nil
	}
	p, err := s.store.Authenticate(r.Context(), ck.Value)
	switch {
	case err == nil && p.SessionID != 0:
		if err := s.store.EndSession(r.Context(), p.UserID, p.SessionID); err != nil && presence.ErrorCode(err) != presence.ENOTFOUND {
			return fmt.Errorf("end session %d: %w", p.SessionID, err)
		}
		s.endSessionStreams(p.SessionID)
	case err != nil && presence.ErrorCode(err) != presence.EUNAUTHORIZED:
		return err
	}
	return nil
}

// checkPassword tells whether pw is handle's password, for a user who may
// sign in. Every way of being wrong costs one argon2id check of the same
// parameters (an unknown handle, or a user without a password, is checked
// against password's dummy hash), so the time of the answer does not tell
// an unknown handle from a wrong password.
func (s *Server) checkPassword(ctx context.Context, handle, pw string) (presence.User, bool, error) {
	var (
		u    presence.User
		hash string
	)
	if presence.ValidateHandle(handle) == nil {
		got, h, err := s.store.PasswordHash(ctx, handle)
		switch {
		case err == nil:
			u, hash = got, h
		case presence.ErrorCode(err) != presence.ENOTFOUND:
			return presence.User{}, false, fmt.Errorf("password of %q: %w", handle, err)
		}
	}
	tooLong := len(pw) > presence.MaxPasswordBytes
	if tooLong {
		pw = pw[:presence.MaxPasswordBytes] // bounds the work; never a match
	}
	ok, err := password.Verify(ctx, hash, pw)
	if errors.Is(err, password.ErrMalformed) {
		s.log.Error("a stored password hash cannot be read; the user cannot sign in with a password", attrUser, u.ID)
		ok, err = false, nil
	}
	if err != nil {
		return presence.User{}, false, err
	}
	return u, ok && !tooLong && u.ID != 0 && !u.Disabled, nil
}

// Password sign-ins are limited three ways, each checked before any
// hashing (a limit that only bit after a correct check would still answer
// the guess), and each counting failures only:
//
//   - per client address (the failedAuth limiter every credential shares):
//     one address cannot guess across many accounts;
//   - per account, over all addresses: many addresses cannot guess one
//     account quickly;
//   - but the account's limit holds back only the addresses that have
//     themselves failed for that account (accountGrace times, in the
//     account limit's window). An address that has not is let through
//     to the password check whatever the account's count says.
//
// So a guesser hammering alice's account locks the account for itself (and
// for every address that joins in and fails), while alice, signing in from
// her own address with her right password, is never refused for their
// failures: a correct password is only ever refused for failures made from
// its own address. The price is that an attacker gets accountGrace
// guesses per fresh address on a locked account; the per-address limit
// and the cost of addresses (an IPv6 /64 counts as one) bound that.
const accountGrace = 3

// accountAddrRate is the (account, address) limiter's rate: the account's
// refill, with a burst of accountGrace.
func (s *Server) accountAddrRate() Rate {
	return Rate{PerSecond: s.cfg.AccountFailRate.PerSecond, Burst: accountGrace}
}

func accountKey(handle string) [32]byte {
	return sha256.Sum256([]byte("account\x00" + handle))
}

func accountAddrKey(handle string, addr [32]byte) [32]byte {
	return sha256.Sum256(append([]byte("account-addr\x00"+handle+"\x00"), addr[:]...))
}

// signInAllowed refuses (429) a password sign-in the limits hold back.
func (s *Server) signInAllowed(handle string, addr [32]byte) error {
	if ok, wait := s.failedAuth.peek(addr, s.cfg.FailedAuthRate); !ok {
		s.metrics.authFailure(true)
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "too many failed sign-ins from this address; retry in %ss", retryAfterSeconds(wait)),
			after: wait,
		}
	}
	ok, wait := s.ppl.accountFails.peek(accountKey(handle), s.cfg.AccountFailRate)
	if ok {
		return nil
	}
	ok, pairWait := s.ppl.accountAddrFails.peek(accountAddrKey(handle, addr), s.accountAddrRate())
	if ok {
		return nil // this address has not failed (much) for the account: let it try
	}
	wait = min(wait, pairWait)
	s.metrics.authFailure(true)
	return &limitedError{
		err:   presence.Errorf(presence.ERATELIMIT, "too many failed sign-ins for this account from this address; retry in %ss", retryAfterSeconds(wait)),
		after: wait,
	}
}

// signInFailed counts a failed password check against every limit.
func (s *Server) signInFailed(handle string, addr [32]byte) {
	s.failedAuth.allow(addr, s.cfg.FailedAuthRate)
	s.ppl.accountFails.allow(accountKey(handle), s.cfg.AccountFailRate)
	s.ppl.accountAddrFails.allow(accountAddrKey(handle, addr), s.accountAddrRate())
	s.metrics.authFailure(false)
}

// countFailure counts a failed use of a secret that cannot be guessed (a
// link, a device code: 32 random bytes) for the client's address, as
// authFailed does for tokens, and says whether the address is now limited.
func (s *Server) countFailure(r *http.Request) *limitedError {
	if ok, wait := s.failedAuth.allow(addrKey(r.RemoteAddr), s.cfg.FailedAuthRate); !ok {
		s.metrics.authFailure(true)
		return &limitedError{
			err:   presence.Errorf(presence.ERATELIMIT, "too many failed attempts from this address; retry in %ss", retryAfterSeconds(wait)),
			after: wait,
		}
	}
	s.metrics.authFailure(false)
	return nil
}

// me is u as GET /api/v1/me shows them.
func (s *Server) me(ctx context.Context, u presence.User) (MeResponse, error) {
	me := meOf(u)
	_, hash, err := s.store.PasswordHash(ctx, u.Handle)
	if err != nil && presence.ErrorCode(err) != presence.ENOTFOUND {
		return MeResponse{}, fmt.Errorf("password of user %d: %w", u.ID, err)
	}
	me.HasPassword = hash != ""
	return me, nil
}

// clientOf is who is using a credential: the browser and its address (the
// connection's: behind a proxy, the proxy's).
func clientOf(r *http.Request) presence.Client {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return presence.Client{UserAgent: r.UserAgent(), Addr: addr}.Normalize()
}

// touchEvery is how often a credential's use is recorded at most.
const touchEvery = time.Minute

// maxTouched bounds the memory of when credentials were last recorded.
const maxTouched = 100_000

// touches remembers when each session and API token's use was last
// recorded, so that the store is written at most once a minute per
// credential however busy it is.
type touches struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether a use of key at now should be recorded, and if so
// notes it. When the map is full, entries older than touchEvery go first
// (they would be due anyway), then all of them: forgetting costs one write
// per credential, never a missed one.
func (t *touches) due(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[key]; ok && now.Sub(last) < touchEvery && !now.Before(last) {
		return false
	}
	if _, ok := t.last[key]; !ok && len(t.last) >= maxTouched {
		for k, at := range t.last {
			if now.Sub(at) >= touchEvery || now.Before(at) {
				delete(t.last, k)
			}
		}
		if len(t.last) >= maxTouched {
			clear(t.last)
		}
	}
	t.last[key] = now
	return true
}

// forget drops what is known of key (the credential ended).
func (t *touches) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, key)
}

func touchKey(p presence.Principal) string {
	switch {
	case p.SessionID != 0:
		return "s" + strconv.FormatInt(p.SessionID, 10)
	case p.TokenID != "":
		return "t" + p.TokenID
	}
	return ""
}

// touch records a use of the request's session or API token when one is
// due, and reports whether it did. A failure to record is logged, not
// answered: the request itself is fine.
func (s *Server) touch(r *http.Request, p presence.Principal) bool {
	key := touchKey(p)
	if key == "" || !s.ppl.touched.due(key, s.now()) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.store.Touch(ctx, p, clientOf(r)); err != nil {
		s.ppl.touched.forget(key) // try again at the next use
		s.log.Warn("could not record a credential's use", attrUser, p.UserID, attrErr, err)
		return false
	}
	return true
}

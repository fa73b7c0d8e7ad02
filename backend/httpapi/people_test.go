package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/password"
	"github.com/lastseen/lastseen/backend/presence"
)

// ---- helpers ----

// setPassword gives a user a password.
func (e *env) setPassword(u presence.User, pw string) {
	e.t.Helper()
	h, err := password.Hash(e.ctx, pw)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.SetPassword(e.ctx, u.ID, h); err != nil {
		e.t.Fatalf("set password: %v", err)
	}
}

// admin makes the first user (an admin) with a password, and returns it
// with a user token.
func (e *env) admin(handle string) (presence.User, string) {
	e.t.Helper()
	u, tok := e.user(handle)
	if !u.Admin {
		e.t.Fatalf("the first user %s is no admin", handle)
	}
	return u, tok
}

// from is a request from a client address, served in-process so that the
// address can be chosen (the limits key on it).
func (e *env) from(addr string, req request) response {
	e.t.Helper()
	r := httptest.NewRequestWithContext(e.ctx, req.method, req.path, strings.NewReader(req.body))
	r.RemoteAddr = addr
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// sessionSecret is the session secret a response's Set-Cookie holds.
func sessionSecret(t testing.TB, resp response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name == SessionCookie && c.MaxAge > 0 {
			if !strings.HasPrefix(c.Value, presence.SessionPrefix) {
				t.Fatalf("the cookie holds %q, not a session secret", c.Value)
			}
			return c.Value
		}
	}
	t.Fatalf("no session cookie in %v (status %d: %s)", resp.header, resp.status, resp.body)
	return ""
}

func cookie(secret string) map[string]string {
	return map[string]string{"Cookie": SessionCookie + "=" + secret}
}

// login signs in with a password and returns the session secret.
func (e *env) login(handle, pw string) string {
	e.t.Helper()
	resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON(handle, pw)})
	if resp.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", handle, resp.status, resp.body)
	}
	return sessionSecret(e.t, resp)
}

func loginJSON(handle, pw string) string {
	b, _ := json.Marshal(LoginRequest{Handle: handle, Password: pw})
	return string(b)
}

// status is the status of a GET with a session cookie.
func (e *env) statusWithCookie(path, secret string) int {
	e.t.Helper()
	return e.do(request{method: "GET", path: path, header: cookie(secret)}).status
}

func decode[T any](t testing.TB, resp response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(resp.body, &v); err != nil {
		t.Fatalf("status %d body %q: %v", resp.status, resp.body, err)
	}
	return v
}

// cookieStream opens an event stream with a session cookie.
func cookieStream(t *testing.T, e *env, secret string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: test\r\nCookie: %s=%s\r\nAccept: text/event-stream\r\n\r\n", SessionCookie, secret)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the response head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body := bufio.NewReader(resp.Body)
	readUntil(t, body, "")
	return conn, body
}

// tokenStream opens an event stream with a bearer token.
func tokenStream(t *testing.T, e *env, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, _, br := rawStream(t, e, token)
	readUntil(t, br, "")
	return conn, br
}

// ---- sign-in ----

func TestPasswordLogin(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.admin("ann")
	e.setPassword(ann, "ann's password")
	bob, _ := e.user("bob") // no password
	carol, _ := e.user("carol")
	e.setPassword(carol, "carol's password")
	if _, err := e.store.UpdateUser(e.ctx, carol.ID, presence.UserUpdate{Disabled: new(true)}); err != nil {
		t.Fatal(err)
	}
	_ = bob

	t.Run("right password", func(t *testing.T) {
		resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON("ann", "ann's password")})
		if resp.status != 200 {
			t.Fatalf("%d %s", resp.status, resp.body)
		}
		me := decode[MeResponse](t, resp)
		if me.Handle != "ann" || !me.Admin || !me.HasPassword {
			t.Errorf("me %+v", me)
		}
		secret := sessionSecret(t, resp)
		sc := resp.header.Get("Set-Cookie")
		for _, want := range []string{"Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="} {
			if !strings.Contains(sc, want) {
				t.Errorf("Set-Cookie %q lacks %q", sc, want)
			}
		}
		if st := e.statusWithCookie("/api/v1/me", secret); st != 200 {
			t.Errorf("me by the session: %d", st)
		}
		// A handle typed with capitals and spaces is the handle.
		if resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON(" Ann ", "ann's password")}); resp.status != 200 {
			t.Errorf("login as ' Ann ': %d %s", resp.status, resp.body)
		}
	})

	// No enumeration: every wrong sign-in is the same answer, byte for byte.
	var first []byte
	for _, tc := range []struct{ name, handle, pw string }{
		{"wrong password", "ann", "not ann's password"},
		{"unknown handle", "nobody", "ann's password"},
		{"not a handle at all", "Not A Handle!", "ann's password"},
		{"user without a password", "bob", "anything at all"},
		{"disabled user, right password", "carol", "carol's password"},
		{"password too long", "ann", strings.Repeat("x", presence.MaxPasswordBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON(tc.handle, tc.pw)})
			refusal(t, resp, 401, presence.EUNAUTHORIZED, "wrong handle or password")
			if resp.header.Get("Set-Cookie") != "" {
				t.Errorf("a failed sign-in set a cookie: %s", resp.header.Get("Set-Cookie"))
			}
			if first == nil {
				first = resp.body
			} else if string(resp.body) != string(first) {
				t.Errorf("answer %s differs from %s", resp.body, first)
			}
		})
	}

	for _, tc := range []struct{ name, body, msg string }{
		{"both", `{"handle":"ann","password":"x","token":"` + annTok + `"}`, "not both"},
		{"no password", `{"handle":"ann"}`, "required"},
		{"nothing", `{}`, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusal(t, e.do(request{method: "POST", path: "/api/v1/login", body: tc.body}), 400, presence.EINVALID, tc.msg)
		})
	}

	t.Run("a token still signs in, into a session", func(t *testing.T) {
		resp := e.do(request{method: "POST", path: "/api/v1/login", body: `{"token":"` + annTok + `"}`})
		if resp.status != 200 {
			t.Fatalf("%d %s", resp.status, resp.body)
		}
		secret := sessionSecret(t, resp)
		if strings.Contains(resp.header.Get("Set-Cookie"), annTok) {
			t.Error("the cookie holds the token")
		}
		if st := e.statusWithCookie("/api/v1/me", secret); st != 200 {
			t.Errorf("me: %d", st)
		}
		// A cookie holding a token (as before sessions) signs in no more.
		if st := e.statusWithCookie("/api/v1/me", annTok); st != 401 {
			t.Errorf("a token in the cookie: %d, want 401", st)
		}
	})
}

// TestLoginRateLimit: an address guessing alice's password is slowed down
// and then refused (429 with Retry-After), and so is the account for every
// address that failed for it; alice, from her own address with her right
// password, still signs in. Unknown handles are limited alike.
func TestLoginRateLimit(t *testing.T) {
	const accountBurst = 4
	e := newEnv(t, func(c *Config) {
		c.AccountFailRate = Rate{PerSecond: 1.0 / 60, Burst: accountBurst}
		c.FailedAuthRate = Rate{PerSecond: 1, Burst: 50}
	})
	alice, _ := e.admin("alice")
	e.setPassword(alice, "alice's password")
	const attacker, alicesAddr, other = "192.0.2.66:4000", "198.51.100.7:5000", "203.0.113.9:6000"

	login := func(addr, handle, pw string) response {
		return e.from(addr, request{method: "POST", path: "/api/v1/login", body: loginJSON(handle, pw)})
	}
	hammer := func(handle string) int {
		t.Helper()
		for i := range accountBurst + accountGrace + 2 {
			resp := login(attacker, handle, fmt.Sprintf("guess %d", i))
			switch resp.status {
			case 401:
				continue
			case 429:
				refusal(t, resp, 429, presence.ERATELIMIT, "too many failed sign-ins for this account")
				return i
			default:
				t.Fatalf("guess %d: %d %s", i, resp.status, resp.body)
			}
		}
		t.Fatalf("the attacker was never refused")
		return 0
	}
	n := hammer("alice")
	if n > accountBurst {
		t.Errorf("refused after %d guesses, want at most the account's burst %d", n, accountBurst)
	}
	// Refused before the check: the right password gets 429 too from there.
	if resp := login(attacker, "alice", "alice's password"); resp.status != 429 {
		t.Errorf("the right password from the attacker's address: %d, want 429", resp.status)
	}
	// Alice, from an address that has not failed, is never refused.
	for i := range 3 {
		if resp := login(alicesAddr, "alice", "alice's password"); resp.status != 200 {
			t.Fatalf("alice's sign-in %d: %d %s", i, resp.status, resp.body)
		}
	}
	// Another address may fail a few times (accountGrace), then is held too.
	for i := range accountGrace {
		if resp := login(other, "alice", "wrong"); resp.status != 401 {
			t.Fatalf("another address's failure %d: %d %s", i, resp.status, resp.body)
		}
	}
	if resp := login(other, "alice", "wrong"); resp.status != 429 {
		t.Errorf("another address after %d failures on a locked account: %d, want 429", accountGrace, resp.status)
	}
	// An unknown handle is limited exactly alike: the limiter tells no one
	// which handles exist.
	if m := hammer("nobody"); m != n {
		t.Errorf("an unknown handle was refused after %d guesses, alice after %d", m, n)
	}
	// The account unlocks as time passes.
	e.clock.Advance(time.Hour)
	if resp := login(attacker, "alice", "alice's password"); resp.status != 200 {
		t.Errorf("an hour later: %d %s", resp.status, resp.body)
	}
}

// TestLoginRateLimitPerAddress: one address guessing across accounts is
// held by the per-address limit, and only that address.
func TestLoginRateLimitPerAddress(t *testing.T) {
	const burst = 3
	e := newEnv(t, func(c *Config) { c.FailedAuthRate = Rate{PerSecond: 0.01, Burst: burst} })
	ann, _ := e.admin("ann")
	e.setPassword(ann, "ann's password")
	for i := range burst {
		resp := e.from("192.0.2.1:1", request{method: "POST", path: "/api/v1/login", body: loginJSON(fmt.Sprintf("user%d", i), "x")})
		if resp.status != 401 {
			t.Fatalf("guess %d: %d", i, resp.status)
		}
	}
	refusal(t, e.from("192.0.2.1:1", request{method: "POST", path: "/api/v1/login", body: loginJSON("ann", "ann's password")}),
		429, presence.ERATELIMIT, "too many failed sign-ins from this address")
	if resp := e.from("192.0.2.2:1", request{method: "POST", path: "/api/v1/login", body: loginJSON("ann", "ann's password")}); resp.status != 200 {
		t.Errorf("another address: %d %s", resp.status, resp.body)
	}
}

func TestLogoutEndsSession(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.admin("ann")
	e.setPassword(ann, "ann's password")
	secret := e.login("ann", "ann's password")
	conn, br := cookieStream(t, e, secret)

	resp := e.do(request{method: "POST", path: "/api/v1/logout", header: cookie(secret)})
	if resp.status != 204 || !strings.Contains(resp.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d, Set-Cookie %q", resp.status, resp.header.Get("Set-Cookie"))
	}
	endsWithin(t, conn, br, time.Second)
	// The old cookie, kept by someone, opens nothing any more.
	if st := e.statusWithCookie("/api/v1/me", secret); st != 401 {
		t.Errorf("the old cookie after logout: %d, want 401", st)
	}
	// Logging out without a session (or twice) is fine.
	if resp := e.do(request{method: "POST", path: "/api/v1/logout", header: cookie(secret)}); resp.status != 204 {
		t.Errorf("second logout: %d", resp.status)
	}

	// Signing in again from a signed-in browser ends its old session.
	first := e.login("ann", "ann's password")
	resp = e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON("ann", "ann's password"), header: cookie(first)})
	second := sessionSecret(t, resp)
	if st := e.statusWithCookie("/api/v1/me", first); st != 401 {
		t.Errorf("the session replaced by signing in again: %d, want 401", st)
	}
	if st := e.statusWithCookie("/api/v1/me", second); st != 200 {
		t.Errorf("the new session: %d", st)
	}
}

// ---- the user's own sessions, tokens, password ----

func TestMySessions(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.admin("ann")
	e.setPassword(ann, "ann's password")
	_, devTok := e.device(ann, "laptop")
	one := e.login("ann", "ann's password")
	e.clock.Advance(time.Second)
	two := e.login("ann", "ann's password")
	conn, br := cookieStream(t, e, two)

	list := decode[[]SignInSession](t, e.do(request{method: "GET", path: "/api/v1/me/sessions", header: cookie(one)}))
	if len(list) != 2 {
		t.Fatalf("sessions %+v", list)
	}
	var current, otherID int64
	for _, s := range list {
		if s.Current {
			current = s.ID
		} else {
			otherID = s.ID
		}
		if s.CreatedAt.IsZero() || s.Addr == "" {
			t.Errorf("session %+v lacks its creation or address", s)
		}
	}
	if current == 0 || otherID == 0 {
		t.Fatalf("want one current session of two: %+v", list)
	}
	// With a token there is no current session.
	for _, s := range decode[[]SignInSession](t, e.do(request{method: "GET", path: "/api/v1/me/sessions", token: annTok})) {
		if s.Current {
			t.Errorf("a token's list has a current session: %+v", s)
		}
	}

	// Ending the other session signs that browser out and ends its stream.
	if resp := e.do(request{method: "DELETE", path: "/api/v1/me/sessions/" + strconv.FormatInt(otherID, 10), header: cookie(one)}); resp.status != 204 {
		t.Fatalf("end session: %d %s", resp.status, resp.body)
	}
	endsWithin(t, conn, br, time.Second)
	if st := e.statusWithCookie("/api/v1/me", two); st != 401 {
		t.Errorf("the ended session: %d, want 401", st)
	}
	if st := e.statusWithCookie("/api/v1/me", one); st != 200 {
		t.Errorf("the session that asked: %d", st)
	}

	for _, tc := range []struct {
		name   string
		req    request
		status int
	}{
		{"unknown session", request{method: "DELETE", path: "/api/v1/me/sessions/999999", header: cookie(one)}, 404},
		{"not a number", request{method: "DELETE", path: "/api/v1/me/sessions/x", header: cookie(one)}, 400},
		{"a device token may not list", request{method: "GET", path: "/api/v1/me/sessions", token: devTok}, 403},
		{"nor end", request{method: "DELETE", path: "/api/v1/me/sessions/1", token: devTok}, 403},
		{"no credential", request{method: "GET", path: "/api/v1/me/sessions"}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := e.do(tc.req); resp.status != tc.status {
				t.Errorf("status %d, want %d: %s", resp.status, tc.status, resp.body)
			}
		})
	}

	// Ending one's own session clears the cookie.
	resp := e.do(request{method: "DELETE", path: "/api/v1/me/sessions/" + strconv.FormatInt(current, 10), header: cookie(one)})
	if resp.status != 204 || !strings.Contains(resp.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("ending the current session: %d, Set-Cookie %q", resp.status, resp.header.Get("Set-Cookie"))
	}
}

// TestTouchOncePerMinute: a session's last use moves with its use, but the
// store is written at most once a minute per credential.
func TestTouchOncePerMinute(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.admin("ann")
	e.setPassword(ann, "ann's password")
	secret := e.login("ann", "ann's password")
	lastUsed := func() time.Time {
		t.Helper()
		list := decode[[]SignInSession](t, e.do(request{method: "GET", path: "/api/v1/me/sessions", header: cookie(secret)}))
		if len(list) != 1 {
			t.Fatalf("sessions %+v", list)
		}
		return list[0].LastUsed
	}
	start := lastUsed()
	e.clock.Advance(30 * time.Second)
	if got := lastUsed(); !got.Equal(start) {
		t.Errorf("last used moved within the minute: %v → %v", start, got)
	}
	e.clock.Advance(31 * time.Second)
	resp := e.do(request{method: "GET", path: "/api/v1/me", header: cookie(secret)})
	if !strings.Contains(resp.header.Get("Set-Cookie"), secret) {
		t.Errorf("a recorded use did not send the cookie again: %q", resp.header.Get("Set-Cookie"))
	}
	if got := lastUsed(); !got.Equal(T0.Add(61 * time.Second)) {
		t.Errorf("last used %v, want %v", got, T0.Add(61*time.Second))
	}
}

func TestTouchesBounded(t *testing.T) {
	tc := touches{last: map[string]time.Time{}}
	for i := range maxTouched + 10 {
		if !tc.due(strconv.Itoa(i), T0) {
			t.Fatalf("a new key %d is not due", i)
		}
	}
	if len(tc.last) > maxTouched {
		t.Errorf("%d keys kept, the bound is %d", len(tc.last), maxTouched)
	}
	if tc.due(strconv.Itoa(maxTouched+9), T0.Add(time.Second)) {
		t.Error("a key touched a second ago is due again")
	}
}

func TestAPITokens(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.admin("ann")
	_, devTok := e.device(ann, "laptop")
	resp := e.do(request{method: "POST", path: "/api/v1/me/tokens", token: annTok, body: `{"name":" backup script "}`})
	if resp.status != 201 {
		t.Fatalf("create: %d %s", resp.status, resp.body)
	}
	nt := decode[NewAPIToken](t, resp)
	if nt.Name != "backup script" || nt.ID == "" || !strings.HasPrefix(nt.Token, "ls_usr_") {
		t.Fatalf("new token %+v", nt)
	}
	if resp := e.do(request{method: "GET", path: "/api/v1/me", token: nt.Token}); resp.status != 200 {
		t.Fatalf("the new token: %d", resp.status)
	}
	list := decode[[]presence.APIToken](t, e.do(request{method: "GET", path: "/api/v1/me/tokens", token: annTok}))
	found := false
	for _, tk := range list {
		found = found || (tk.ID == nt.ID && tk.Name == "backup script")
	}
	if !found {
		t.Fatalf("the new token is not listed by name: %+v", list)
	}
	if strings.Contains(string(e.do(request{method: "GET", path: "/api/v1/me/tokens", token: annTok}).body), nt.Token) {
		t.Error("the list shows a token itself")
	}
	conn, br := tokenStream(t, e, nt.Token)

	if resp := e.do(request{method: "DELETE", path: "/api/v1/me/tokens/" + nt.ID, token: annTok}); resp.status != 204 {
		t.Fatalf("revoke: %d %s", resp.status, resp.body)
	}
	endsWithin(t, conn, br, time.Second)
	if resp := e.do(request{method: "GET", path: "/api/v1/me", token: nt.Token}); resp.status != 401 {
		t.Errorf("the revoked token: %d, want 401", resp.status)
	}
	for _, tc := range []struct {
		name   string
		req    request
		status int
	}{
		{"revoked again", request{method: "DELETE", path: "/api/v1/me/tokens/" + nt.ID, token: annTok}, 404},
		{"unknown", request{method: "DELETE", path: "/api/v1/me/tokens/0011223344556677", token: annTok}, 404},
		{"no name", request{method: "POST", path: "/api/v1/me/tokens", token: annTok, body: `{"name":"  "}`}, 400},
		{"a device token may not make one", request{method: "POST", path: "/api/v1/me/tokens", token: devTok, body: `{"name":"x"}`}, 403},
		{"nor list", request{method: "GET", path: "/api/v1/me/tokens", token: devTok}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := e.do(tc.req); resp.status != tc.status {
				t.Errorf("status %d, want %d: %s", resp.status, tc.status, resp.body)
			}
		})
	}
}

func TestPasswordChange(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.admin("ann")
	e.setPassword(ann, "old password")
	mine := e.login("ann", "old password")
	other := e.login("ann", "old password")
	conn, br := cookieStream(t, e, other)
	tokConn, tokBr := tokenStream(t, e, annTok)

	put := func(secret, body string) response {
		return e.do(request{method: "PUT", path: "/api/v1/me/password", header: cookie(secret), body: body})
	}
	refusal(t, put(mine, `{"new":"new password"}`), 400, presence.EINVALID, "current password is required")
	refusal(t, put(mine, `{"current":"wrong","new":"new password"}`), 403, presence.EFORBIDDEN, "current password is wrong")
	refusal(t, put(mine, `{"current":"old password","new":"short"}`), 400, presence.EINVALID, "password must be")
	if resp := put(mine, `{"current":"old password","new":"new password"}`); resp.status != 204 {
		t.Fatalf("change: %d %s", resp.status, resp.body)
	}
	endsWithin(t, conn, br, time.Second)
	if st := e.statusWithCookie("/api/v1/me", other); st != 401 {
		t.Errorf("the other session: %d, want 401", st)
	}
	if st := e.statusWithCookie("/api/v1/me", mine); st != 200 {
		t.Errorf("the session that changed it: %d", st)
	}
	// Tokens are no sessions: they and their streams go on.
	_ = tokConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	e.beats(e.deviceToken(ann), beat(1, T0, presence.Active))
	readUntil(t, tokBr, "event: presence")

	if resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON("ann", "old password")}); resp.status != 401 {
		t.Errorf("the old password: %d", resp.status)
	}
	e.login("ann", "new password")

	// A user without a password sets one without a current one.
	_, bobTok := e.user("bob")
	if resp := e.do(request{method: "PUT", path: "/api/v1/me/password", token: bobTok, body: `{"new":"bob's first"}`}); resp.status != 204 {
		t.Fatalf("first password: %d %s", resp.status, resp.body)
	}
	e.login("bob", "bob's first")
}

// deviceToken adds a device to u and returns its token.
func (e *env) deviceToken(u presence.User) string {
	_, tok := e.device(u, "d"+strconv.FormatInt(time.Now().UnixNano()%1e6, 10))
	return tok
}

// ---- one-time links ----

// linkSecret is the secret in a link's URL fragment.
func linkSecret(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Path != "/welcome" || !strings.HasPrefix(u.Fragment, presence.LinkPrefix) || u.RawQuery != "" {
		t.Fatalf("link %q is not BASE/welcome#ls_inv_…", link)
	}
	return u.Fragment
}

func TestInvites(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BaseURL = "https://presence.example.com/" })
	_, annTok := e.admin("ann")

	resp := e.do(request{method: "POST", path: "/api/v1/invites", token: annTok, body: `{"handle":"bob","name":"Bob"}`})
	if resp.status != 201 {
		t.Fatalf("invite: %d %s", resp.status, resp.body)
	}
	inv := decode[Invite](t, resp)
	if !strings.HasPrefix(inv.URL, "https://presence.example.com/welcome#") || inv.Handle != "bob" {
		t.Fatalf("invite %+v", inv)
	}
	secret := linkSecret(t, inv.URL)
	list := decode[[]Invite](t, e.do(request{method: "GET", path: "/api/v1/invites", token: annTok}))
	if len(list) != 1 || list[0].ID != inv.ID || list[0].URL != "" {
		t.Fatalf("invites %+v (the URL must not be listed)", list)
	}

	peek := decode[LinkInfo](t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"` + secret + `"}`}))
	if peek.Purpose != presence.SignupLink || peek.Handle != "bob" || peek.Name != "Bob" {
		t.Fatalf("peek %+v", peek)
	}
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/redeem", body: `{"secret":"` + secret + `","password":"short"}`}),
		400, presence.EINVALID, "password")
	resp = e.do(request{method: "POST", path: "/api/v1/links/redeem",
		body: `{"secret":"` + secret + `","name":"Bobby","tz":"Europe/Paris","password":"bob's password"}`})
	if resp.status != 200 {
		t.Fatalf("redeem: %d %s", resp.status, resp.body)
	}
	me := decode[MeResponse](t, resp)
	if me.Handle != "bob" || me.Name != "Bobby" || me.TZ != "Europe/Paris" || me.Admin || !me.HasPassword {
		t.Errorf("me %+v", me)
	}
	if st := e.statusWithCookie("/api/v1/me", sessionSecret(t, resp)); st != 200 {
		t.Errorf("signed in after redeeming: %d", st)
	}
	e.login("bob", "bob's password")

	// Spent: the same link again.
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/redeem", body: `{"secret":"` + secret + `","password":"another password"}`}),
		404, presence.ENOTFOUND, "not valid")
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"` + secret + `"}`}), 404, presence.ENOTFOUND, "not valid")

	// Expired.
	resp = e.do(request{method: "POST", path: "/api/v1/invites", token: annTok, body: `{"handle":"carol"}`})
	old := linkSecret(t, decode[Invite](t, resp).URL)
	e.clock.Advance(presence.InviteTTL + time.Minute)
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"` + old + `"}`}), 404, presence.ENOTFOUND, "not valid")
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/redeem", body: `{"secret":"` + old + `","password":"carol's password"}`}),
		404, presence.ENOTFOUND, "not valid")

	// Revoked.
	resp = e.do(request{method: "POST", path: "/api/v1/invites", token: annTok, body: `{"handle":"dan","admin":true}`})
	dan := decode[Invite](t, resp)
	if !dan.Admin {
		t.Errorf("admin invite %+v", dan)
	}
	if resp := e.do(request{method: "DELETE", path: "/api/v1/invites/" + strconv.FormatInt(dan.ID, 10), token: annTok}); resp.status != 204 {
		t.Fatalf("revoke invite: %d %s", resp.status, resp.body)
	}
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"` + linkSecret(t, dan.URL) + `"}`}), 404, presence.ENOTFOUND, "not valid")

	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"a user's handle", `{"handle":"bob"}`, 409},
		{"not a handle", `{"handle":"Not A Handle"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := e.do(request{method: "POST", path: "/api/v1/invites", token: annTok, body: tc.body}); resp.status != tc.status {
				t.Errorf("status %d, want %d: %s", resp.status, tc.status, resp.body)
			}
		})
	}
}

// TestLinkMissesLimited: unknown link secrets count as failed sign-ins of
// the address.
func TestLinkMissesLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FailedAuthRate = Rate{PerSecond: 0.01, Burst: 2} })
	for i := range 2 {
		if resp := e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"ls_inv_nope"}`}); resp.status != 404 {
			t.Fatalf("miss %d: %d", i, resp.status)
		}
	}
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"ls_inv_nope"}`}), 429, presence.ERATELIMIT, "too many failed")
}

func TestResetLink(t *testing.T) {
	e := newEnv(t)
	_, annTok := e.admin("ann")
	bob, _ := e.user("bob")
	e.setPassword(bob, "forgotten password")
	old := e.login("bob", "forgotten password")
	conn, br := cookieStream(t, e, old)

	resp := e.do(request{method: "POST", path: "/api/v1/people/bob/reset", token: annTok,
		header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "presence.example.org"}})
	if resp.status != 200 {
		t.Fatalf("reset: %d %s", resp.status, resp.body)
	}
	rl := decode[ResetLink](t, resp)
	if !strings.HasPrefix(rl.URL, "https://presence.example.org/welcome#") || !rl.ExpiresAt.Equal(T0.Add(presence.ResetTTL)) {
		t.Fatalf("reset link %+v (the base URL comes from the forwarded headers)", rl)
	}
	secret := linkSecret(t, rl.URL)
	if p := decode[LinkInfo](t, e.do(request{method: "POST", path: "/api/v1/links/peek", body: `{"secret":"` + secret + `"}`})); p.Purpose != presence.ResetLink || p.Handle != "bob" {
		t.Fatalf("peek %+v", p)
	}
	resp = e.do(request{method: "POST", path: "/api/v1/links/redeem", body: `{"secret":"` + secret + `","name":"ignored","password":"a new password"}`})
	if resp.status != 200 {
		t.Fatalf("redeem: %d %s", resp.status, resp.body)
	}
	if me := decode[MeResponse](t, resp); me.Handle != "bob" || me.Name != "Bob" {
		t.Errorf("a reset changed more than the password: %+v", me)
	}
	endsWithin(t, conn, br, time.Second)
	if st := e.statusWithCookie("/api/v1/me", old); st != 401 {
		t.Errorf("the session from before the reset: %d, want 401", st)
	}
	if st := e.statusWithCookie("/api/v1/me", sessionSecret(t, resp)); st != 200 {
		t.Errorf("the session of the reset: %d", st)
	}
	if resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON("bob", "forgotten password")}); resp.status != 401 {
		t.Errorf("the old password: %d", resp.status)
	}
	e.login("bob", "a new password")
	refusal(t, e.do(request{method: "POST", path: "/api/v1/links/redeem", body: `{"secret":"` + secret + `","password":"yet another one"}`}),
		404, presence.ENOTFOUND, "not valid")
}

// ---- admin ----

func TestAdminOnly(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.admin("ann")
	_, bobTok := e.user("bob")
	_, annDev := e.device(ann, "laptop")
	for _, tc := range []request{
		{method: "GET", path: "/api/v1/people"},
		{method: "PATCH", path: "/api/v1/people/ann", body: `{"disabled":true}`},
		{method: "DELETE", path: "/api/v1/people/ann/sessions"},
		{method: "POST", path: "/api/v1/people/ann/reset"},
		{method: "GET", path: "/api/v1/invites"},
		{method: "POST", path: "/api/v1/invites", body: `{"handle":"eve"}`},
		{method: "DELETE", path: "/api/v1/invites/1"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			tc.token = bobTok
			refusal(t, e.do(tc), 403, presence.EFORBIDDEN, "administrator")
			tc.token = annDev // the admin's device may not act for them
			refusal(t, e.do(tc), 403, presence.EFORBIDDEN, "user token")
			tc.token = ""
			refusal(t, e.do(tc), 401, presence.EUNAUTHORIZED, "sign in")
		})
	}
}

func TestPeopleAdmin(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.admin("ann")
	bob, bobTok := e.user("bob")
	e.setPassword(bob, "bob's password")
	_, bobDev := e.device(bob, "bob's laptop")
	bobSession := e.login("bob", "bob's password")
	e.login("bob", "bob's password")
	e.beats(bobDev, beat(1, T0, presence.Active))

	people := decode[[]Person](t, e.do(request{method: "GET", path: "/api/v1/people", token: annTok}))
	byHandle := map[string]Person{}
	for _, p := range people {
		byHandle[p.Handle] = p
	}
	if p := byHandle["bob"]; p.Sessions != 2 || p.Status != presence.Active || p.Admin || p.Disabled || p.LastSeen == nil {
		t.Errorf("bob %+v", p)
	}
	if p := byHandle["ann"]; !p.Admin {
		t.Errorf("ann %+v", p)
	}

	patch := func(handle, body string) response {
		return e.do(request{method: "PATCH", path: "/api/v1/people/" + handle, token: annTok, body: body})
	}
	refusal(t, patch("ann", `{"disabled":true}`), 409, presence.ECONFLICT, "cannot disable yourself")
	refusal(t, patch("ann", `{"admin":false}`), 409, presence.ECONFLICT, "last administrator")
	refusal(t, patch("nobody", `{"admin":true}`), 404, presence.ENOTFOUND, "")
	refusal(t, patch("bob", `{}`), 400, presence.EINVALID, "disabled or admin")

	// Disabling bob: his sessions, tokens and devices stop, and so do
	// every one of his streams.
	sessConn, sessBr := cookieStream(t, e, bobSession)
	tokConn, tokBr := tokenStream(t, e, bobTok)
	devConn, devBr := tokenStream(t, e, bobDev)
	resp := patch("bob", `{"disabled":true}`)
	if resp.status != 200 {
		t.Fatalf("disable: %d %s", resp.status, resp.body)
	}
	if p := decode[Person](t, resp); !p.Disabled || p.Sessions != 0 {
		t.Errorf("disabled bob %+v", p)
	}
	endsWithin(t, sessConn, sessBr, time.Second)
	endsWithin(t, tokConn, tokBr, time.Second)
	endsWithin(t, devConn, devBr, time.Second)
	if st := e.statusWithCookie("/api/v1/me", bobSession); st != 401 {
		t.Errorf("bob's session: %d, want 401", st)
	}
	if resp := e.do(request{method: "GET", path: "/api/v1/me", token: bobTok}); resp.status != 401 {
		t.Errorf("bob's token: %d, want 401", resp.status)
	}
	if _, err := e.client(bobDev).PostHeartbeats(e.ctx, presence.Batch{SentAt: T0, Beats: []presence.Beat{beat(2, T0, presence.Active)}}); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("bob's device beats: %v, want unauthorized", err)
	}
	if resp := e.do(request{method: "POST", path: "/api/v1/login", body: loginJSON("bob", "bob's password")}); resp.status != 401 {
		t.Errorf("bob signs in: %d, want 401", resp.status)
	}

	// Enabled again, bob signs in; his tokens work again.
	if resp := patch("bob", `{"disabled":false}`); resp.status != 200 {
		t.Fatalf("enable: %d %s", resp.status, resp.body)
	}
	e.login("bob", "bob's password")

	// Made admin, bob may demote ann, but not then himself.
	if p := decode[Person](t, patch("bob", `{"admin":true}`)); !p.Admin {
		t.Fatalf("bob %+v", p)
	}
	if p := decode[Person](t, patch("ann", `{"admin":false}`)); p.Admin {
		t.Fatalf("ann %+v", p)
	}
	refusal(t, e.do(request{method: "GET", path: "/api/v1/people", token: annTok}), 403, presence.EFORBIDDEN, "administrator")
	refusal(t, e.do(request{method: "PATCH", path: "/api/v1/people/bob", token: bobTok, body: `{"admin":false}`}), 409, presence.ECONFLICT, "last administrator")
	_ = ann

	// Ending someone's sessions.
	e.login("bob", "bob's password")
	if got := decode[EndedSessions](t, e.do(request{method: "DELETE", path: "/api/v1/people/bob/sessions", token: bobTok})); got.Ended < 1 {
		t.Errorf("ended %+v", got)
	}
}

// TestEndedElsewhereEndsStreams: a user disabled, or an API token revoked,
// outside this server (the command line in another process: only the
// store knows) loses its streams within a second too.
func TestEndedElsewhereEndsStreams(t *testing.T) {
	e := newEnv(t)
	e.admin("ann")
	bob, bobTok := e.user("bob")
	e.setPassword(bob, "bob's password")
	_, bobDev := e.device(bob, "laptop")
	carol, _ := e.user("carol")
	carolTok, err := func() (string, error) {
		_, tok, err := e.store.CreateAPIToken(e.ctx, carol.ID, "script")
		return tok, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := e.store.APITokens(e.ctx, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	var carolTokID string
	for _, tk := range tokens {
		if tk.Name == "script" {
			carolTokID = tk.ID
		}
	}

	sessConn, sessBr := cookieStream(t, e, e.login("bob", "bob's password"))
	tokConn, tokBr := tokenStream(t, e, bobTok)
	devConn, devBr := tokenStream(t, e, bobDev)
	carolConn, carolBr := tokenStream(t, e, carolTok)

	if _, err := e.store.UpdateUser(e.ctx, bob.ID, presence.UserUpdate{Disabled: new(true)}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeAPIToken(e.ctx, carol.ID, carolTokID); err != nil {
		t.Fatal(err)
	}
	d := time.Second + DefaultRevocationCheck/2
	endsWithin(t, sessConn, sessBr, d)
	endsWithin(t, tokConn, tokBr, d)
	endsWithin(t, devConn, devBr, d)
	endsWithin(t, carolConn, carolBr, d)
}

// ---- pairing ----

type pairEnv struct {
	*env
	t *testing.T
}

func (p pairEnv) start(addr string) PairStartResponse {
	p.t.Helper()
	resp := p.from(addr, request{method: "POST", path: "/api/v1/pair", body: `{"device_name":"Ann's laptop","os":"linux"}`})
	if resp.status != 200 {
		p.t.Fatalf("pair: %d %s", resp.status, resp.body)
	}
	return decode[PairStartResponse](p.t, resp)
}

// poll asks the token endpoint once, as JSON.
func (p pairEnv) poll(code string) response {
	return p.do(request{method: "POST", path: "/api/v1/pair/token", body: `{"device_code":"` + code + `"}`})
}

func pairAnswer(t *testing.T, resp response, status int, code string) PairTokenError {
	t.Helper()
	if resp.status != status {
		t.Fatalf("status %d, want %d: %s", resp.status, status, resp.body)
	}
	pe := decode[PairTokenError](t, resp)
	if pe.Error != code || pe.ErrorDescription == "" {
		t.Fatalf("answer %s, want error %q with a description", resp.body, code)
	}
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return pe
}

func TestPairing(t *testing.T) {
	e := newEnv(t)
	p := pairEnv{e, t}
	ann, annTok := e.admin("ann")
	_, annDev := e.device(ann, "desk")

	st := p.start("192.0.2.1:1")
	code, err := presence.NormalizeUserCode(st.UserCode)
	if err != nil || st.UserCode != presence.DisplayUserCode(code) {
		t.Fatalf("user code %q: %v", st.UserCode, err)
	}
	if st.VerificationURI != "http://example.com/pair" || st.VerificationURIComplete != "http://example.com/pair?code="+code {
		t.Errorf("verification URIs %q %q (derived from the request's Host)", st.VerificationURI, st.VerificationURIComplete)
	}
	if st.Interval != 5 || st.ExpiresIn != 600 || !strings.HasPrefix(st.DeviceCode, presence.DeviceCodePrefix) {
		t.Errorf("start %+v", st)
	}

	// §3.5: pending, then slow_down when polled too soon (the interval
	// grows by 5 s), pending again after waiting.
	pairAnswer(t, p.poll(st.DeviceCode), 400, "authorization_pending")
	if pe := pairAnswer(t, p.poll(st.DeviceCode), 400, "slow_down"); pe.Interval != 10 {
		t.Errorf("slow_down interval %d, want 10", pe.Interval)
	}
	e.clock.Advance(10 * time.Second)
	pairAnswer(t, p.poll(st.DeviceCode), 400, "authorization_pending")

	// The person looks at it and approves.
	info := decode[PairInfo](t, e.do(request{method: "GET", path: "/api/v1/pair/" + strings.ToLower(st.UserCode), token: annTok}))
	if info.DeviceName != "Ann's laptop" || info.OS != "linux" || info.State != presence.PairingPending || info.UserCode != st.UserCode {
		t.Fatalf("info %+v", info)
	}
	refusal(t, e.do(request{method: "POST", path: "/api/v1/pair/" + code, token: annDev, body: `{"approve":true}`}), 403, presence.EFORBIDDEN, "")
	refusal(t, e.do(request{method: "POST", path: "/api/v1/pair/" + code, token: annTok, body: `{}`}), 400, presence.EINVALID, "approve")
	dec := decode[PairDecided](t, e.do(request{method: "POST", path: "/api/v1/pair/" + code, token: annTok, body: `{"approve":true}`}))
	if dec.State != presence.PairingApproved || dec.DeviceName != "Ann's laptop" {
		t.Fatalf("decided %+v", dec)
	}
	// Decided: no longer pending.
	if resp := e.do(request{method: "GET", path: "/api/v1/pair/" + code, token: annTok}); resp.status != 404 {
		t.Errorf("a decided code: %d, want 404", resp.status)
	}

	// Success, as the RFC's form.
	e.clock.Advance(10 * time.Second)
	form := url.Values{"grant_type": {DeviceCodeGrant}, "device_code": {st.DeviceCode}}.Encode()
	resp := e.do(request{method: "POST", path: "/api/v1/pair/token", body: form,
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if resp.status != 200 {
		t.Fatalf("token: %d %s", resp.status, resp.body)
	}
	tok := decode[PairTokenResponse](t, resp)
	if !strings.HasPrefix(tok.AccessToken, "ls_dev_") || tok.TokenType != "Bearer" || tok.Handle != "ann" || tok.Device.Name != "Ann's laptop" || tok.Device.ID == 0 {
		t.Fatalf("token answer %+v", tok)
	}
	e.beats(tok.AccessToken, beat(1, T0, presence.Active))

	// Spent: the same code again is invalid_grant; so is one never issued.
	e.clock.Advance(10 * time.Second)
	pairAnswer(t, p.poll(st.DeviceCode), 400, "invalid_grant")
	pairAnswer(t, p.poll(presence.DeviceCodePrefix+"nope"), 400, "invalid_grant")

	// Denied.
	st2 := p.start("192.0.2.1:1")
	if resp := e.do(request{method: "POST", path: "/api/v1/pair/" + st2.UserCode, token: annTok, body: `{"approve":false}`}); resp.status != 200 || decode[PairDecided](t, resp).State != presence.PairingDenied {
		t.Fatalf("deny: %d %s", resp.status, resp.body)
	}
	pairAnswer(t, p.poll(st2.DeviceCode), 400, "access_denied")

	// Expired, even when approved too late to be collected.
	st3 := p.start("192.0.2.1:1")
	e.clock.Advance(presence.PairingTTL + time.Second)
	pairAnswer(t, p.poll(st3.DeviceCode), 400, "expired_token")
	if resp := e.do(request{method: "POST", path: "/api/v1/pair/" + st3.UserCode, token: annTok, body: `{"approve":true}`}); resp.status != 404 {
		t.Errorf("approving an expired code: %d, want 404", resp.status)
	}

	for _, tc := range []struct {
		name, body, ctype, code string
	}{
		{"form without grant_type", "device_code=x", "application/x-www-form-urlencoded", "invalid_request"},
		{"another grant", "grant_type=password&device_code=x", "application/x-www-form-urlencoded", "unsupported_grant_type"},
		{"JSON without a code", `{}`, "application/json", "invalid_request"},
		{"JSON with an unknown field", `{"device_code":"x","colour":"red"}`, "", "invalid_request"},
		{"not JSON", `device_code`, "", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pairAnswer(t, e.do(request{method: "POST", path: "/api/v1/pair/token", body: tc.body, header: map[string]string{"Content-Type": tc.ctype}}), 400, tc.code)
		})
	}
}

func TestPairingBaseURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BaseURL = "https://presence.example.com" })
	st := pairEnv{e, t}.start("192.0.2.1:1")
	if st.VerificationURI != "https://presence.example.com/pair" {
		t.Errorf("verification URI %q", st.VerificationURI)
	}
	e2 := newEnv(t)
	resp := e2.from("192.0.2.1:1", request{method: "POST", path: "/api/v1/pair", body: `{"device_name":"pc","os":""}`,
		header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "p.example.net, proxy.internal"}})
	if st := decode[PairStartResponse](t, resp); st.VerificationURI != "https://p.example.net/pair" {
		t.Errorf("forwarded verification URI %q", st.VerificationURI)
	}
	resp = e2.from("192.0.2.1:1", request{method: "POST", path: "/api/v1/pair", body: `{"device_name":"pc","os":""}`,
		header: map[string]string{"X-Forwarded-Host": "evil.example/x?"}})
	if st := decode[PairStartResponse](t, resp); st.VerificationURI != "http://example.com/pair" {
		t.Errorf("a malformed forwarded host was used: %q", st.VerificationURI)
	}
}

// TestPairingLimits: starting pairings is limited per address, and trying
// user codes in vain per address and per user, before the lookup, so a
// live code cannot be found by guessing.
func TestPairingLimits(t *testing.T) {
	const burst = 3
	e := newEnv(t, func(c *Config) {
		c.PairRate = Rate{PerSecond: 0.001, Burst: burst}
		c.PairCodeRate = Rate{PerSecond: 0.001, Burst: burst}
	})
	p := pairEnv{e, t}
	_, annTok := e.admin("ann")
	_, bobTok := e.user("bob")
	var live PairStartResponse
	for range burst {
		live = p.start("192.0.2.1:1")
	}
	refusal(t, e.from("192.0.2.1:1", request{method: "POST", path: "/api/v1/pair", body: `{"device_name":"pc","os":"linux"}`}),
		429, presence.ERATELIMIT, "too many pairings")
	p.start("192.0.2.2:1") // another address is not held

	const guesser = "198.51.100.1:1"
	for i := range burst {
		guess := presence.DisplayUserCode(strings.Repeat(string("BCDFGHJK"[i]), presence.UserCodeLen))
		if resp := e.from(guesser, request{method: "POST", path: "/api/v1/pair/" + guess, token: annTok, body: `{"approve":true}`}); resp.status != 404 {
			t.Fatalf("guess %d: %d %s", i, resp.status, resp.body)
		}
	}
	// The live code itself is now refused to the guesser, before the lookup.
	refusal(t, e.from(guesser, request{method: "POST", path: "/api/v1/pair/" + live.UserCode, token: annTok, body: `{"approve":true}`}),
		429, presence.ERATELIMIT, "too many pairing codes")
	refusal(t, e.from(guesser, request{method: "GET", path: "/api/v1/pair/" + live.UserCode, token: bobTok}),
		429, presence.ERATELIMIT, "too many pairing codes")
	// And to ann from anywhere: the user's misses count too.
	refusal(t, e.from("203.0.113.5:1", request{method: "GET", path: "/api/v1/pair/" + live.UserCode, token: annTok}),
		429, presence.ERATELIMIT, "too many pairing codes")
	// Someone else, elsewhere, approves it.
	if resp := e.from("203.0.113.6:1", request{method: "POST", path: "/api/v1/pair/" + live.UserCode, token: bobTok, body: `{"approve":true}`}); resp.status != 200 {
		t.Errorf("bob from another address: %d %s", resp.status, resp.body)
	}
}

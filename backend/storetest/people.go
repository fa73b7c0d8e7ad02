package storetest

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// testPeople checks presence.People: admins and disabled users, passwords,
// sessions, API tokens, one-time links and pairing.
func testPeople(t *testing.T, opener Opener) {
	t.Run("Admins", func(t *testing.T) { testAdmins(t, opener) })
	t.Run("Passwords", func(t *testing.T) { testPasswords(t, opener) })
	t.Run("Disabled", func(t *testing.T) { testDisabled(t, opener) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, opener) })
	t.Run("APITokens", func(t *testing.T) { testAPITokens(t, opener) })
	t.Run("Links", func(t *testing.T) { testLinks(t, opener) })
	t.Run("ConcurrentRedeem", func(t *testing.T) { testConcurrentRedeem(t, opener) })
	t.Run("Pairing", func(t *testing.T) { testPairing(t, opener) })
}

// authAs fails unless the credential authenticates as want.
func (e *env) authAs(what, cred string, want presence.Principal) {
	e.t.Helper()
	p, err := e.store.Authenticate(e.ctx, cred)
	if err != nil {
		e.t.Errorf("%s: %v, want %+v", what, err, want)
		return
	}
	if p != want {
		e.t.Errorf("%s: principal %+v, want %+v", what, p, want)
	}
}

// refused fails unless the credential is refused.
func (e *env) refused(what, cred string) {
	e.t.Helper()
	_, err := e.store.Authenticate(e.ctx, cred)
	wantCode(e.t, what, err, presence.EUNAUTHORIZED)
}

func (e *env) session(u presence.User, c presence.Client) (presence.Session, string) {
	e.t.Helper()
	s, secret, err := e.store.CreateSession(e.ctx, u.ID, c)
	if err != nil {
		e.t.Fatalf("create session of %s: %v", u.Handle, err)
	}
	return s, secret
}

func sessionOf(u presence.User, s presence.Session) presence.Principal {
	return presence.Principal{Kind: presence.UserToken, UserID: u.ID, SessionID: s.ID}
}

// sameLink and sameToken compare times with time.Equal, as the suite does.
func sameLink(a, b presence.Link) bool {
	ta, tb := a.CreatedAt, b.CreatedAt
	ea, eb := a.ExpiresAt, b.ExpiresAt
	a.CreatedAt, b.CreatedAt, a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && ta.Equal(tb) && ea.Equal(eb)
}

func sameToken(a, b presence.APIToken) bool {
	return a.ID == b.ID && a.Name == b.Name && a.CreatedAt.Equal(b.CreatedAt) && a.LastUsed.Equal(b.LastUsed)
}

func tokenIDOf(tok string) string { return hex.EncodeToString(presence.HashToken(tok)[:8]) }

func testAdmins(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	first, second := e.user("first"), e.user("second")
	if !first.Admin || second.Admin {
		t.Errorf("first user admin %v, second %v; want only the first", first.Admin, second.Admin)
	}
	yes, no := true, false
	got, err := e.store.UpdateUser(e.ctx, second.ID, presence.UserUpdate{Admin: &yes})
	if err != nil || !got.Admin {
		t.Fatalf("make second an admin: %+v, %v", got, err)
	}
	if got, err := e.store.UpdateUser(e.ctx, first.ID, presence.UserUpdate{Admin: &no}); err != nil || got.Admin {
		t.Fatalf("drop first's admin: %+v, %v", got, err)
	}
	e.reopen()
	all, err := e.store.Users(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Handle != "first" || all[0].Admin || !all[1].Admin {
		t.Errorf("users after swapping admins and a restart = %+v", all)
	}
	third := e.user("third")
	if third.Admin {
		t.Errorf("a later user is an admin: %+v", third)
	}
}

func testPasswords(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann := e.user("ann")
	u, hash, err := e.store.PasswordHash(e.ctx, "ann")
	if err != nil || u.ID != ann.ID || u.Handle != "ann" || hash != "" {
		t.Errorf("password of a new user: %+v, %q, %v; want ann with none", u, hash, err)
	}
	_, _, err = e.store.PasswordHash(e.ctx, "nobody")
	wantCode(t, "password of an unknown handle", err, presence.ENOTFOUND)
	for _, h := range []string{"$argon2id$one", "$argon2id$two"} {
		if err := e.store.SetPassword(e.ctx, ann.ID, h); err != nil {
			t.Fatal(err)
		}
		if _, got, err := e.store.PasswordHash(e.ctx, "ann"); err != nil || got != h {
			t.Errorf("password after setting %q: %q, %v", h, got, err)
		}
	}
	e.reopen()
	if _, got, err := e.store.PasswordHash(e.ctx, "ann"); err != nil || got != "$argon2id$two" {
		t.Errorf("password after a restart: %q, %v", got, err)
	}
	wantCode(t, "set the password of an unknown user", e.store.SetPassword(e.ctx, ann.ID+1000, "$argon2id$x"), presence.ENOTFOUND)
}

func testDisabled(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	e.user("admin")
	ann, annTok, err := e.store.CreateUser(e.ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	desk, devTok, err := e.store.CreateDevice(e.ctx, ann.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	_, apiTok, err := e.store.CreateAPIToken(e.ctx, ann.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	ses, sesSecret := e.session(ann, presence.Client{UserAgent: "Firefox"})
	devP := presence.Principal{Kind: presence.DeviceToken, UserID: ann.ID, DeviceID: desk.ID}
	e.authAs("session before", sesSecret, sessionOf(ann, ses))
	e.authAs("device token before", devTok, devP)
	yes, no := true, false

	got, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Disabled: &yes})
	if err != nil || !got.Disabled {
		t.Fatalf("disable ann: %+v, %v", got, err)
	}
	check := func(when string) {
		t.Helper()
		for what, cred := range map[string]string{"session": sesSecret, "account token": annTok, "API token": apiTok, "device token": devTok} {
			e.refused(when+": "+what+" of a disabled user", cred)
		}
		if list, err := e.store.Sessions(e.ctx, ann.ID); err != nil || len(list) != 0 {
			t.Errorf("%s: sessions of a disabled user = %+v, %v; want none", when, list, err)
		}
		_, _, err := e.store.CreateSession(e.ctx, ann.ID, presence.Client{})
		wantCode(t, when+": a disabled user signs in", err, presence.EUNAUTHORIZED)
		if u, err := e.store.UserByID(e.ctx, ann.ID); err != nil || !u.Disabled {
			t.Errorf("%s: ann = %+v, %v; want disabled", when, u, err)
		}
	}
	check("at once")
	e.reopen()
	check("after a restart")

	if got, err := e.store.UpdateUser(e.ctx, ann.ID, presence.UserUpdate{Disabled: &no}); err != nil || got.Disabled {
		t.Fatalf("enable ann: %+v, %v", got, err)
	}
	e.authAs("device token after enabling", devTok, devP)
	e.authAs("API token after enabling", apiTok, presence.Principal{Kind: presence.UserToken, UserID: ann.ID, TokenID: tokenIDOf(apiTok)})
	e.refused("a session ended by disabling, after enabling", sesSecret)
	ses2, sec2 := e.session(ann, presence.Client{})
	e.authAs("a new session after enabling", sec2, sessionOf(ann, ses2))
}

func testSessions(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann, bob := e.user("ann"), e.user("bob")

	t.Run("a session authenticates as its user", func(t *testing.T) {
		s, secret := e.session(ann, presence.Client{UserAgent: "Firefox", Addr: "192.0.2.1"})
		if !strings.HasPrefix(secret, presence.SessionPrefix) || s.ID == 0 || s.UserID != ann.ID {
			t.Errorf("session %+v, secret %q", s, secret)
		}
		if !s.CreatedAt.Equal(T0) || !s.LastUsed.Equal(T0) || s.UserAgent != "Firefox" || s.Addr != "192.0.2.1" {
			t.Errorf("session = %+v, want created and used at T0 by Firefox from 192.0.2.1", s)
		}
		e.authAs("session", secret, sessionOf(ann, s))
		for _, bad := range []string{secret + "x", secret[:len(secret)-1], presence.SessionPrefix, "ls_ses_" + strings.Repeat("A", 43)} {
			e.refused("bad session secret "+bad, bad)
		}
		if err := e.store.EndSession(e.ctx, ann.ID, s.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the client is kept within bounds", func(t *testing.T) {
		s, _ := e.session(ann, presence.Client{UserAgent: "Evil\x00\x1b[31m" + strings.Repeat("é", 400), Addr: " 198.51.100.7 "})
		if strings.ContainsAny(s.UserAgent, "\x00\x1b") || len([]rune(s.UserAgent)) > presence.MaxUserAgentRunes || s.Addr != "198.51.100.7" {
			t.Errorf("session client = %q from %q", s.UserAgent, s.Addr)
		}
		list, err := e.store.Sessions(e.ctx, ann.ID)
		if err != nil || len(list) != 1 || list[0].UserAgent != s.UserAgent {
			t.Errorf("sessions = %+v, %v; want the one just made, as returned", list, err)
		}
		if err := e.store.EndSession(e.ctx, ann.ID, s.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("listed most recently used first, touches move them", func(t *testing.T) {
		e.clock.Set(T0)
		s1, sec1 := e.session(ann, presence.Client{UserAgent: "one"})
		e.clock.Set(T0.Add(time.Minute))
		s2, sec2 := e.session(ann, presence.Client{UserAgent: "two"})
		e.session(bob, presence.Client{UserAgent: "bob's"})
		list, err := e.store.Sessions(e.ctx, ann.ID)
		if err != nil || len(list) != 2 || list[0].ID != s2.ID || list[1].ID != s1.ID {
			t.Fatalf("sessions = %+v, %v; want two then one", list, err)
		}
		at := e.clock.Advance(time.Minute)
		if err := e.store.Touch(e.ctx, sessionOf(ann, s1), presence.Client{UserAgent: "one, updated", Addr: "203.0.113.9"}); err != nil {
			t.Fatal(err)
		}
		list, err = e.store.Sessions(e.ctx, ann.ID)
		if err != nil || len(list) != 2 || list[0].ID != s1.ID || !list[0].LastUsed.Equal(at) || !list[0].CreatedAt.Equal(T0) ||
			list[0].UserAgent != "one, updated" || list[0].Addr != "203.0.113.9" {
			t.Fatalf("sessions after a touch = %+v, %v; want one first, used at %v by its new client", list, err, at)
		}

		// Unused for SessionIdle, a session ends; used, it lives on.
		e.clock.Set(s2.LastUsed.Add(presence.SessionIdle))
		e.authAs("a session exactly SessionIdle after its last use", sec2, sessionOf(ann, s2))
		e.clock.Set(s2.LastUsed.Add(presence.SessionIdle + time.Second))
		e.refused("a session unused for longer than SessionIdle", sec2)
		e.authAs("a session touched since", sec1, sessionOf(ann, s1))
		if err := e.store.Touch(e.ctx, sessionOf(ann, s2), presence.Client{}); err != nil {
			t.Fatal(err)
		}
		e.refused("a lapsed session, touched", sec2)
		list, err = e.store.Sessions(e.ctx, ann.ID)
		if err != nil || len(list) != 1 || list[0].ID != s1.ID {
			t.Errorf("sessions after one lapsed = %+v, %v; want only one", list, err)
		}
		wantCode(t, "end a lapsed session", e.store.EndSession(e.ctx, ann.ID, s2.ID), presence.ENOTFOUND)
		e.reopen()
		e.authAs("a session after a restart", sec1, sessionOf(ann, s1))
		if n, err := e.store.EndSessions(e.ctx, ann.ID, 0); err != nil || n != 1 {
			t.Errorf("end all of ann's sessions: %d, %v; want the 1 live one", n, err)
		}
	})

	t.Run("touching other principals does nothing", func(t *testing.T) {
		d := e.device(ann, "desk")
		for _, p := range []presence.Principal{
			{Kind: presence.DeviceToken, UserID: ann.ID, DeviceID: d.ID},
			{Kind: presence.UserToken, UserID: ann.ID},
		} {
			if err := e.store.Touch(e.ctx, p, presence.Client{UserAgent: "x"}); err != nil {
				t.Errorf("touch %+v: %v", p, err)
			}
		}
	})

	t.Run("ending one", func(t *testing.T) {
		s, secret := e.session(ann, presence.Client{})
		bs, bsec := e.session(bob, presence.Client{})
		wantCode(t, "ann ends bob's session", e.store.EndSession(e.ctx, ann.ID, bs.ID), presence.ENOTFOUND)
		e.authAs("bob's session after ann tried to end it", bsec, sessionOf(bob, bs))
		if err := e.store.EndSession(e.ctx, ann.ID, s.ID); err != nil {
			t.Fatal(err)
		}
		e.refused("an ended session", secret)
		wantCode(t, "end it again", e.store.EndSession(e.ctx, ann.ID, s.ID), presence.ENOTFOUND)
		wantCode(t, "end an unknown session", e.store.EndSession(e.ctx, ann.ID, s.ID+1000), presence.ENOTFOUND)
		e.reopen()
		e.refused("an ended session after a restart", secret)
	})

	t.Run("ending all but one", func(t *testing.T) {
		keep, keepSec := e.session(ann, presence.Client{UserAgent: "keep"})
		var ended []string
		for range 3 {
			_, s := e.session(ann, presence.Client{})
			ended = append(ended, s)
		}
		bs, bsec := e.session(bob, presence.Client{})
		n, err := e.store.EndSessions(e.ctx, ann.ID, keep.ID)
		if err != nil || n != 3 {
			t.Errorf("end all but one: %d, %v; want 3", n, err)
		}
		for _, s := range ended {
			e.refused("a session ended with the others", s)
		}
		e.authAs("the session kept", keepSec, sessionOf(ann, keep))
		e.authAs("another user's session", bsec, sessionOf(bob, bs))
		if n, err := e.store.EndSessions(e.ctx, ann.ID, 0); err != nil || n != 1 {
			t.Errorf("end all: %d, %v; want 1", n, err)
		}
		e.refused("the kept session, after ending all", keepSec)
		if n, err := e.store.EndSessions(e.ctx, ann.ID, 0); err != nil || n != 0 {
			t.Errorf("end all of none: %d, %v; want 0", n, err)
		}
	})

	t.Run("a session for an unknown user is not found", func(t *testing.T) {
		_, _, err := e.store.CreateSession(e.ctx, ann.ID+1000, presence.Client{})
		wantCode(t, "session of an unknown user", err, presence.ENOTFOUND)
	})
}

func testAPITokens(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann, annTok, err := e.store.CreateUser(e.ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	bob := e.user("bob")

	e.clock.Set(T0.Add(time.Minute))
	ci, ciTok, err := e.store.CreateAPIToken(e.ctx, ann.ID, "  ci  ")
	if err != nil {
		t.Fatal(err)
	}
	ciP := presence.Principal{Kind: presence.UserToken, UserID: ann.ID, TokenID: tokenIDOf(ciTok)}

	t.Run("a new token authenticates by its ID", func(t *testing.T) {
		if k, err := presence.TokenKindOf(ciTok); err != nil || k != presence.UserToken {
			t.Errorf("token %q is of kind %q, %v", ciTok, k, err)
		}
		if ci.ID != tokenIDOf(ciTok) || ci.Name != "ci" || !ci.CreatedAt.Equal(T0.Add(time.Minute)) || !ci.LastUsed.IsZero() {
			t.Errorf("token = %+v, want ID %s, name ci, made at T0+1m, never used", ci, tokenIDOf(ciTok))
		}
		e.authAs("API token", ciTok, ciP)
		e.authAs("the account's token", annTok, presence.Principal{Kind: presence.UserToken, UserID: ann.ID, TokenID: tokenIDOf(annTok)})
	})

	t.Run("listed oldest first, with the account's", func(t *testing.T) {
		list, err := e.store.APITokens(e.ctx, ann.ID)
		if err != nil || len(list) != 2 || list[0].ID != tokenIDOf(annTok) || list[0].Name == "" || !sameToken(list[1], ci) {
			t.Errorf("tokens = %+v, %v; want the account's (named), then ci", list, err)
		}
		if list, err := e.store.APITokens(e.ctx, bob.ID); err != nil || len(list) != 1 {
			t.Errorf("bob's tokens = %+v, %v; want his account's only", list, err)
		}
	})

	t.Run("touching records the last use", func(t *testing.T) {
		at := e.clock.Advance(time.Hour)
		if err := e.store.Touch(e.ctx, ciP, presence.Client{}); err != nil {
			t.Fatal(err)
		}
		e.reopen()
		list, err := e.store.APITokens(e.ctx, ann.ID)
		if err != nil || len(list) != 2 || !list[1].LastUsed.Equal(at) || !list[0].LastUsed.IsZero() {
			t.Errorf("tokens after a touch = %+v, %v; want ci last used at %v", list, err, at)
		}
	})

	for _, n := range []string{"", "  ", strings.Repeat("x", presence.MaxTokenNameRunes+1), "a\nb"} {
		_, _, err := e.store.CreateAPIToken(e.ctx, ann.ID, n)
		wantCode(t, "token named "+n, err, presence.EINVALID)
	}
	_, _, err = e.store.CreateAPIToken(e.ctx, ann.ID+1000, "ghost")
	wantCode(t, "token of an unknown user", err, presence.ENOTFOUND)

	t.Run("revoking", func(t *testing.T) {
		wantCode(t, "bob revokes ann's token", e.store.RevokeAPIToken(e.ctx, bob.ID, ci.ID), presence.ENOTFOUND)
		e.authAs("ann's token after bob tried", ciTok, ciP)
		for _, id := range []string{"", "zz", "00", strings.Repeat("0", 16), ci.ID + "00"} {
			wantCode(t, "revoke unknown id "+id, e.store.RevokeAPIToken(e.ctx, ann.ID, id), presence.ENOTFOUND)
		}
		if err := e.store.RevokeAPIToken(e.ctx, ann.ID, ci.ID); err != nil {
			t.Fatal(err)
		}
		e.refused("a revoked API token", ciTok)
		e.authAs("the account's token after revoking another", annTok, presence.Principal{Kind: presence.UserToken, UserID: ann.ID, TokenID: tokenIDOf(annTok)})
		wantCode(t, "revoke twice", e.store.RevokeAPIToken(e.ctx, ann.ID, ci.ID), presence.ENOTFOUND)
		if list, err := e.store.APITokens(e.ctx, ann.ID); err != nil || len(list) != 1 || list[0].ID != tokenIDOf(annTok) {
			t.Errorf("tokens after revoking ci = %+v, %v", list, err)
		}
		d, devTok, err := e.store.CreateDevice(e.ctx, ann.ID, "desk")
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "revoke a device token as an API token", e.store.RevokeAPIToken(e.ctx, ann.ID, tokenIDOf(devTok)), presence.ENOTFOUND)
		e.authAs("the device token", devTok, presence.Principal{Kind: presence.DeviceToken, UserID: ann.ID, DeviceID: d.ID})
		e.reopen()
		e.refused("a revoked API token after a restart", ciTok)
	})
}

func testLinks(t *testing.T, opener Opener) {
	e := newEnv(t, opener)

	t.Run("the first user may come from a signup link, and is an admin", func(t *testing.T) {
		l, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "root"})
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.store.RedeemLink(e.ctx, secret, presence.Redemption{Name: "Root", PasswordHash: "$h$root"})
		if err != nil || u.Handle != "root" || !u.Admin || u.ID == 0 {
			t.Fatalf("redeem the first signup (%+v): %+v, %v; want root, an admin", l, u, err)
		}
	})
	root, err := e.store.UserByHandle(e.ctx, "root")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an invite", func(t *testing.T) {
		e.clock.Set(T0.Add(time.Hour))
		l, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "newbie", Name: " New Bie ", CreatedBy: root.ID})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, presence.LinkPrefix) || l.ID == 0 || l.Purpose != presence.SignupLink || l.Handle != "newbie" ||
			l.Name != "New Bie" || l.Admin || l.CreatedBy != root.ID || !l.CreatedAt.Equal(T0.Add(time.Hour)) ||
			!l.ExpiresAt.Equal(T0.Add(time.Hour+presence.InviteTTL)) {
			t.Errorf("link = %+v, secret %q", l, secret)
		}
		if got, err := e.store.LinkBySecret(e.ctx, secret); err != nil || !sameLink(got, l) {
			t.Errorf("link by secret = %+v, %v; want %+v", got, err, l)
		}
		if list, err := e.store.Links(e.ctx); err != nil || len(list) != 1 || !sameLink(list[0], l) {
			t.Errorf("links = %+v, %v; want the invite", list, err)
		}
		e.refused("a link secret as a credential", secret)
		e.reopen()
		u, err := e.store.RedeemLink(e.ctx, secret, presence.Redemption{Name: "Newbie Real", TZ: "Europe/Paris", PasswordHash: "$h$newbie"})
		if err != nil || u.Handle != "newbie" || u.Name != "Newbie Real" || u.TZ != "Europe/Paris" || u.Admin || u.Disabled {
			t.Fatalf("redeem the invite: %+v, %v", u, err)
		}
		if got, hash, err := e.store.PasswordHash(e.ctx, "newbie"); err != nil || hash != "$h$newbie" || got.ID != u.ID {
			t.Errorf("newbie's password: %+v %q, %v", got, hash, err)
		}
		_, err = e.store.LinkBySecret(e.ctx, secret)
		wantCode(t, "a spent link", err, presence.ENOTFOUND)
		_, err = e.store.RedeemLink(e.ctx, secret, presence.Redemption{PasswordHash: "$h$again"})
		wantCode(t, "redeem a spent link", err, presence.ENOTFOUND)
		if list, err := e.store.Links(e.ctx); err != nil || len(list) != 0 {
			t.Errorf("links after redeeming = %+v, %v; want none", list, err)
		}
		if _, hash, _ := e.store.PasswordHash(e.ctx, "newbie"); hash != "$h$newbie" {
			t.Errorf("a spent link changed the password to %q", hash)
		}
	})

	t.Run("an admin invite, the proposed name kept when none is given", func(t *testing.T) {
		_, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "boss", Name: "The Boss", Admin: true})
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.store.RedeemLink(e.ctx, secret, presence.Redemption{PasswordHash: "$h$boss"})
		if err != nil || !u.Admin || u.Name != "The Boss" {
			t.Errorf("redeem an admin invite: %+v, %v", u, err)
		}
	})

	t.Run("refused links", func(t *testing.T) {
		_, _, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "root"})
		wantCode(t, "invite a taken handle", err, presence.ECONFLICT)
		_, _, err = e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.ResetLink, Handle: "nobody"})
		wantCode(t, "reset an unknown handle", err, presence.ENOTFOUND)
		_, _, err = e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "Not Valid"})
		wantCode(t, "invite an invalid handle", err, presence.EINVALID)
		_, _, err = e.store.CreateLink(e.ctx, presence.Link{Purpose: "promote", Handle: "root"})
		wantCode(t, "a link of no known purpose", err, presence.EINVALID)
		for _, s := range []string{"", "garbage", presence.LinkPrefix, presence.LinkPrefix + strings.Repeat("A", 43)} {
			_, err := e.store.LinkBySecret(e.ctx, s)
			wantCode(t, "peek at "+s, err, presence.ENOTFOUND)
		}
	})

	t.Run("a newer link replaces a pending one", func(t *testing.T) {
		_, old, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "twice"})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		l, fresh, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "twice", Name: "Second"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.store.LinkBySecret(e.ctx, old)
		wantCode(t, "the replaced link", err, presence.ENOTFOUND)
		_, err = e.store.RedeemLink(e.ctx, old, presence.Redemption{PasswordHash: "$h"})
		wantCode(t, "redeem the replaced link", err, presence.ENOTFOUND)
		if got, err := e.store.LinkBySecret(e.ctx, fresh); err != nil || got.Name != "Second" {
			t.Errorf("the newer link: %+v, %v", got, err)
		}
		list, err := e.store.Links(e.ctx)
		if err != nil || len(list) != 1 || !sameLink(list[0], l) {
			t.Errorf("links = %+v, %v; want only the newer one", list, err)
		}
		if err := e.store.RevokeLink(e.ctx, l.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.store.LinkBySecret(e.ctx, fresh)
		wantCode(t, "a revoked link", err, presence.ENOTFOUND)
		wantCode(t, "revoke twice", e.store.RevokeLink(e.ctx, l.ID), presence.ENOTFOUND)
	})

	t.Run("links expire", func(t *testing.T) {
		start := e.clock.Now()
		inv, invSecret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		rst, rstSecret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.ResetLink, Handle: "newbie"})
		if err != nil {
			t.Fatal(err)
		}
		if !inv.ExpiresAt.Equal(start.Add(presence.InviteTTL)) || !rst.ExpiresAt.Equal(start.Add(presence.ResetTTL)) {
			t.Errorf("invite expires %v, reset %v; want after %v and %v", inv.ExpiresAt, rst.ExpiresAt, presence.InviteTTL, presence.ResetTTL)
		}
		e.clock.Set(rst.ExpiresAt.Add(-time.Second))
		if _, err := e.store.LinkBySecret(e.ctx, rstSecret); err != nil {
			t.Errorf("a reset link a second before it expires: %v", err)
		}
		e.clock.Set(rst.ExpiresAt)
		_, err = e.store.LinkBySecret(e.ctx, rstSecret)
		wantCode(t, "a reset link at its expiry", err, presence.ENOTFOUND)
		_, err = e.store.RedeemLink(e.ctx, rstSecret, presence.Redemption{PasswordHash: "$h$late"})
		wantCode(t, "redeem an expired reset link", err, presence.ENOTFOUND)
		if list, err := e.store.Links(e.ctx); err != nil || len(list) != 1 || list[0].ID != inv.ID {
			t.Errorf("links after the reset expired = %+v, %v; want only the invite", list, err)
		}
		e.clock.Set(inv.ExpiresAt)
		_, err = e.store.RedeemLink(e.ctx, invSecret, presence.Redemption{PasswordHash: "$h$late"})
		wantCode(t, "redeem an expired invite", err, presence.ENOTFOUND)
		wantCode(t, "revoke an expired link", e.store.RevokeLink(e.ctx, inv.ID), presence.ENOTFOUND)
		// Making a link (which may sweep expired ones) brings none back.
		if _, _, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "other"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.store.LinkBySecret(e.ctx, invSecret)
		wantCode(t, "an expired invite after another link", err, presence.ENOTFOUND)
		if _, err := e.store.UserByHandle(e.ctx, "slow"); presence.ErrorCode(err) != presence.ENOTFOUND {
			t.Errorf("an expired invite made its user: %v", err)
		}
	})

	t.Run("a reset sets the password and ends every session", func(t *testing.T) {
		nb, err := e.store.UserByHandle(e.ctx, "newbie")
		if err != nil {
			t.Fatal(err)
		}
		_, s1 := e.session(nb, presence.Client{})
		_, s2 := e.session(nb, presence.Client{})
		rs, rootSes := e.session(root, presence.Client{})
		l, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.ResetLink, Handle: "newbie", Name: "ignored", Admin: true, CreatedBy: root.ID})
		if err != nil {
			t.Fatal(err)
		}
		if l.Purpose != presence.ResetLink || l.Handle != "newbie" || l.Admin {
			t.Errorf("reset link = %+v", l)
		}
		u, err := e.store.RedeemLink(e.ctx, secret, presence.Redemption{Name: "Renamed?", TZ: "Asia/Tokyo", PasswordHash: "$h$reset"})
		if err != nil || u.ID != nb.ID || u.Name != nb.Name || u.Admin {
			t.Fatalf("redeem a reset: %+v, %v; want newbie unchanged", u, err)
		}
		if _, hash, _ := e.store.PasswordHash(e.ctx, "newbie"); hash != "$h$reset" {
			t.Errorf("password after a reset = %q", hash)
		}
		e.refused("a session from before the reset", s1)
		e.refused("another session from before the reset", s2)
		if list, err := e.store.Sessions(e.ctx, nb.ID); err != nil || len(list) != 0 {
			t.Errorf("sessions after a reset = %+v, %v", list, err)
		}
		e.authAs("another user's session", rootSes, sessionOf(root, rs))
		_, err = e.store.RedeemLink(e.ctx, secret, presence.Redemption{PasswordHash: "$h$again"})
		wantCode(t, "redeem a reset twice", err, presence.ENOTFOUND)
	})

	t.Run("a signup whose handle was taken meanwhile stays live", func(t *testing.T) {
		_, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "contested"})
		if err != nil {
			t.Fatal(err)
		}
		e.user("contested")
		_, err = e.store.RedeemLink(e.ctx, secret, presence.Redemption{PasswordHash: "$h$c"})
		wantCode(t, "redeem a signup for a taken handle", err, presence.ECONFLICT)
		if _, err := e.store.LinkBySecret(e.ctx, secret); err != nil {
			t.Errorf("the link after a conflict: %v, want it live", err)
		}
		if _, hash, _ := e.store.PasswordHash(e.ctx, "contested"); hash != "" {
			t.Errorf("a conflicting signup set the existing user's password to %q", hash)
		}
	})

	t.Run("an invalid redemption spends nothing", func(t *testing.T) {
		_, secret, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "careful"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.store.RedeemLink(e.ctx, secret, presence.Redemption{TZ: "Mars/Olympus", PasswordHash: "$h"})
		wantCode(t, "redeem with an unknown zone", err, presence.EINVALID)
		if _, err := e.store.LinkBySecret(e.ctx, secret); err != nil {
			t.Errorf("the link after an invalid redemption: %v, want it live", err)
		}
	})
}

func testConcurrentRedeem(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	admin := e.user("admin")
	_, signup, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.SignupLink, Handle: "once"})
	if err != nil {
		t.Fatal(err)
	}
	_, reset, err := e.store.CreateLink(e.ctx, presence.Link{Purpose: presence.ResetLink, Handle: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, secret string }{{"signup", signup}, {"reset", reset}} {
		t.Run(c.name, func(t *testing.T) {
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			hashes := make([]string, n)
			for i := range n {
				hashes[i] = "$h$" + string(rune('a'+i))
				wg.Go(func() {
					_, errs[i] = e.store.RedeemLink(e.ctx, c.secret, presence.Redemption{Name: "Once", PasswordHash: hashes[i]})
				})
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch presence.ErrorCode(err) {
				case "":
					if won >= 0 {
						t.Errorf("redemptions %d and %d both succeeded", won, i)
					}
					won = i
				case presence.ENOTFOUND:
				default:
					t.Errorf("racing redemption: %v, want success or not found", err)
				}
			}
			if won < 0 {
				t.Fatal("no redemption succeeded")
			}
			handle := map[string]string{"signup": "once", "reset": admin.Handle}[c.name]
			if _, hash, err := e.store.PasswordHash(e.ctx, handle); err != nil || hash != hashes[won] {
				t.Errorf("password of %s = %q, %v; want the winner's %q", handle, hash, err, hashes[won])
			}
		})
	}
}

func testPairing(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann, bob := e.user("ann"), e.user("bob")
	devices := func() int {
		t.Helper()
		list, err := e.store.Devices(e.ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	poll := func(code string, want presence.PollOutcome, interval time.Duration) presence.PairingResult {
		t.Helper()
		res, err := e.store.PollPairing(e.ctx, code)
		if err != nil {
			t.Fatalf("poll at %v: %v, want %s", e.clock.Now().Sub(T0), err, want)
		}
		if res.Outcome != want || res.Interval != interval {
			t.Errorf("poll at %v: %s every %v, want %s every %v", e.clock.Now().Sub(T0), res.Outcome, res.Interval, want, interval)
		}
		if want != presence.PollApproved && (res.Token != "" || res.Device.ID != 0) {
			t.Errorf("a %s poll came with a device: %+v", res.Outcome, res)
		}
		return res
	}
	step := presence.PairingInterval

	t.Run("approved: the device gets its token once", func(t *testing.T) {
		e.clock.Set(T0)
		p, code, err := e.store.CreatePairing(e.ctx, "Ann's laptop", "linux")
		if err != nil {
			t.Fatal(err)
		}
		if canon, err := presence.NormalizeUserCode(p.UserCode); err != nil || canon != p.UserCode {
			t.Errorf("user code %q is not canonical (%v)", p.UserCode, err)
		}
		if !strings.HasPrefix(code, presence.DeviceCodePrefix) || p.State != presence.PairingPending || p.DeviceName != "Ann's laptop" ||
			p.OS != "linux" || p.Interval != step || !p.CreatedAt.Equal(T0) || !p.ExpiresAt.Equal(T0.Add(presence.PairingTTL)) {
			t.Errorf("pairing = %+v, device code %q", p, code)
		}
		e.refused("a device code as a credential", code)
		for _, typed := range []string{p.UserCode, presence.DisplayUserCode(p.UserCode), strings.ToLower(presence.DisplayUserCode(p.UserCode)),
			" " + strings.ToLower(p.UserCode[:4]) + " " + p.UserCode[4:] + " "} {
			if got, err := e.store.PairingByUserCode(e.ctx, typed); err != nil || got.UserCode != p.UserCode || got.DeviceName != "Ann's laptop" {
				t.Errorf("pairing by %q: %+v, %v", typed, got, err)
			}
		}

		poll(code, presence.PollPending, step)
		e.clock.Advance(time.Second)
		poll(code, presence.PollSlowDown, 2*step) // too soon: slow down
		e.clock.Advance(step)
		poll(code, presence.PollSlowDown, 3*step) // sooner than the new interval
		e.clock.Advance(3 * step)
		poll(code, presence.PollPending, 3*step)

		got, err := e.store.DecidePairing(e.ctx, presence.DisplayUserCode(p.UserCode), ann.ID, true)
		if err != nil || got.State != presence.PairingApproved || got.UserID != ann.ID {
			t.Fatalf("approve: %+v, %v", got, err)
		}
		_, err = e.store.PairingByUserCode(e.ctx, p.UserCode)
		wantCode(t, "an approved pairing by its user code", err, presence.ENOTFOUND)
		_, err = e.store.DecidePairing(e.ctx, p.UserCode, bob.ID, false)
		wantCode(t, "decide an approved pairing again", err, presence.ENOTFOUND)

		before := devices()
		e.clock.Advance(3 * step)
		res := poll(code, presence.PollApproved, 3*step)
		if res.Device.ID == 0 || res.Device.UserID != ann.ID || res.Device.Name != "Ann's laptop" || res.Device.OS != "linux" {
			t.Errorf("paired device = %+v", res.Device)
		}
		if k, err := presence.TokenKindOf(res.Token); err != nil || k != presence.DeviceToken {
			t.Fatalf("paired token %q: kind %q, %v", res.Token, k, err)
		}
		e.authAs("the paired device's token", res.Token, presence.Principal{Kind: presence.DeviceToken, UserID: ann.ID, DeviceID: res.Device.ID})
		if n := devices(); n != before+1 {
			t.Errorf("ann has %d devices after pairing, want %d", n, before+1)
		}
		st := e.status(res.Device)
		if st.Name != "Ann's laptop" || st.OS != "linux" || st.UserID != ann.ID {
			t.Errorf("paired device's status = %+v", st.Device)
		}

		e.clock.Advance(3 * step)
		_, err = e.store.PollPairing(e.ctx, code)
		wantCode(t, "poll after the token was issued", err, presence.ENOTFOUND)
		e.reopen()
		_, err = e.store.PollPairing(e.ctx, code)
		wantCode(t, "poll after the token was issued, after a restart", err, presence.ENOTFOUND)
		if n := devices(); n != before+1 {
			t.Errorf("ann has %d devices after polling again, want %d", n, before+1)
		}
	})

	t.Run("denied", func(t *testing.T) {
		e.clock.Set(T0.Add(time.Hour))
		p, code, err := e.store.CreatePairing(e.ctx, "Unknown box", "windows")
		if err != nil {
			t.Fatal(err)
		}
		before := devices()
		got, err := e.store.DecidePairing(e.ctx, p.UserCode, ann.ID, false)
		if err != nil || got.State != presence.PairingDenied {
			t.Fatalf("deny: %+v, %v", got, err)
		}
		poll(code, presence.PollDenied, step)
		e.clock.Advance(step)
		poll(code, presence.PollDenied, step)
		if n := devices(); n != before {
			t.Errorf("a denied pairing made a device: %d, want %d", n, before)
		}
		_, err = e.store.DecidePairing(e.ctx, p.UserCode, ann.ID, true)
		wantCode(t, "approve after a denial", err, presence.ENOTFOUND)
	})

	t.Run("expiry beats approval", func(t *testing.T) {
		e.clock.Set(T0.Add(2 * time.Hour))
		p, code, err := e.store.CreatePairing(e.ctx, "Late box", "darwin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.DecidePairing(e.ctx, p.UserCode, ann.ID, true); err != nil {
			t.Fatal(err)
		}
		before := devices()
		e.clock.Set(p.ExpiresAt)
		poll(code, presence.PollExpired, step)
		if n := devices(); n != before {
			t.Errorf("an expired pairing made a device: %d, want %d", n, before)
		}

		p2, code2, err := e.store.CreatePairing(e.ctx, "Later box", "darwin")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Set(p2.ExpiresAt.Add(-time.Second))
		if _, err := e.store.PairingByUserCode(e.ctx, p2.UserCode); err != nil {
			t.Errorf("a pairing a second before it expires: %v", err)
		}
		e.clock.Set(p2.ExpiresAt)
		_, err = e.store.PairingByUserCode(e.ctx, p2.UserCode)
		wantCode(t, "an expired pairing by its user code", err, presence.ENOTFOUND)
		_, err = e.store.DecidePairing(e.ctx, p2.UserCode, ann.ID, true)
		wantCode(t, "approve an expired pairing", err, presence.ENOTFOUND)
		poll(code2, presence.PollExpired, step)
	})

	t.Run("unknown codes", func(t *testing.T) {
		for _, c := range []string{"", "garbage", presence.DeviceCodePrefix, presence.DeviceCodePrefix + strings.Repeat("A", 43)} {
			_, err := e.store.PollPairing(e.ctx, c)
			wantCode(t, "poll "+c, err, presence.ENOTFOUND)
		}
		_, err := e.store.PairingByUserCode(e.ctx, "BCDFGHJK")
		wantCode(t, "an unknown user code", err, presence.ENOTFOUND)
		_, err = e.store.DecidePairing(e.ctx, "BCDFGHJK", ann.ID, true)
		wantCode(t, "decide an unknown user code", err, presence.ENOTFOUND)
	})

	t.Run("live user codes are distinct", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			p, _, err := e.store.CreatePairing(e.ctx, "box", "linux")
			if err != nil {
				t.Fatal(err)
			}
			if seen[p.UserCode] {
				t.Errorf("user code %s handed out twice", p.UserCode)
			}
			seen[p.UserCode] = true
		}
	})
}

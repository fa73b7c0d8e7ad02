package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/groupcommit"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

// quiet leaves the NOTIFY wake-up as the only way one instance learns what
// another changed: no safety poll or periodic refresh runs during a test.
func quiet(c *Config) {
	c.PollEvery, c.RefreshEvery, c.FullRefreshEvery = time.Hour, time.Hour, time.Hour
}

// A database an older release made (schema 2, users with their tokens)
// upgrades with its oldest user as admin and every user token still
// working, now as the API token "created with the account".
func TestUpgradeKeepsAnAdminAndEveryUserToken(t *testing.T) {
	dsn := newDatabase(t)
	ctx := t.Context()
	conn := adminConn(t, dsn)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version >= 3 {
			break
		}
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	// bob is inserted first but created later: age decides, not id.
	for _, u := range []struct {
		handle string
		at     time.Time
	}{{"bob", t0.Add(time.Hour)}, {"ann", t0}, {"cy", t0.Add(2 * time.Hour)}} {
		tok, hash := presence.NewToken(presence.UserToken)
		tokens[u.handle] = tok
		if _, err := conn.Exec(ctx, `INSERT INTO users (handle, name, token_hash, created_at) VALUES ($1, $1, $2, $3)`,
			u.handle, hash, u.at); err != nil {
			t.Fatal(err)
		}
	}

	s := openInstance(t, dsn, time.Now, nil)
	users, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if want := u.Handle == "ann"; u.Admin != want {
			t.Errorf("%s: admin %v, want %v", u.Handle, u.Admin, want)
		}
		p, err := s.Authenticate(ctx, tokens[u.Handle])
		if err != nil || p.UserID != u.ID || p.TokenID != apiTokenID(presence.HashToken(tokens[u.Handle])) {
			t.Errorf("%s's old token: %+v, %v", u.Handle, p, err)
		}
		list, err := s.APITokens(ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].Name != accountTokenName || list[0].ID != p.TokenID {
			t.Errorf("%s's tokens: %+v, %v", u.Handle, list, err)
		}
	}
	if len(users) != 3 {
		t.Errorf("%d users after the upgrade, want 3", len(users))
	}
}

// Users created at once on two instances of an empty server: exactly one
// of them is the admin.
func TestOneFirstAdminAcrossInstances(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, nil)
	b := openInstance(t, dsn, time.Now, nil)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if _, _, err := s.CreateUser(ctx, "u"+string(rune('a'+i)), ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	users, err := a.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admins := 0
	for _, u := range users {
		if u.Admin {
			admins++
		}
	}
	if len(users) != 8 || admins != 1 {
		t.Errorf("%d users, %d admins; want 8 users and exactly 1 admin", len(users), admins)
	}
}

// A link redeemed at once on two instances creates its user once; every
// other redemption finds the link spent.
func TestLinkRedeemedOnceAcrossInstances(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, nil)
	b := openInstance(t, dsn, time.Now, nil)
	ctx := t.Context()
	if _, _, err := a.CreateUser(ctx, "boss", ""); err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.CreateLink(ctx, presence.Link{Purpose: presence.SignupLink, Handle: "newbie", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, errs[i] = s.RedeemLink(ctx, secret, presence.Redemption{TZ: "Europe/Paris", PasswordHash: "$argon2id$x"})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch presence.ErrorCode(err) {
		case "":
			won++
		case presence.ENOTFOUND:
		default:
			t.Errorf("redeem: %v, want success or ENOTFOUND", err)
		}
	}
	if won != 1 {
		t.Errorf("%d redemptions succeeded, want exactly 1", won)
	}
	u, hash, err := b.PasswordHash(ctx, "newbie")
	if err != nil || u.Name != "New" || u.TZ != "Europe/Paris" || u.Admin || hash != "$argon2id$x" {
		t.Errorf("the new user: %+v, %q, %v", u, hash, err)
	}
}

// An approved pairing polled at once on two instances issues one device
// and one token; every other poll finds the code spent.
func TestPairingIssuedOnceAcrossInstances(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, nil)
	b := openInstance(t, dsn, time.Now, nil)
	ctx := t.Context()
	u, _, err := a.CreateUser(ctx, "pat", "")
	if err != nil {
		t.Fatal(err)
	}
	p, code, err := a.CreatePairing(ctx, "desk", "linux")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DecidePairing(ctx, presence.DisplayUserCode(p.UserCode), u.ID, true); err != nil {
		t.Fatal(err)
	}
	results := make([]presence.PairingResult, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { results[i], errs[i] = s.PollPairing(ctx, code) })
	}
	wg.Wait()
	var token string
	for i, err := range errs {
		switch {
		case err == nil && results[i].Outcome == presence.PollApproved:
			if token != "" {
				t.Error("two polls were given a token")
			}
			token = results[i].Token
			if d := results[i].Device; d.UserID != u.ID || d.Name != "desk" || d.OS != "linux" {
				t.Errorf("device = %+v", d)
			}
		case presence.ErrorCode(err) != presence.ENOTFOUND:
			t.Errorf("poll: %+v, %v; want approved once, ENOTFOUND otherwise", results[i], err)
		}
	}
	if token == "" {
		t.Fatal("no poll was given the token")
	}
	pr, err := b.Authenticate(ctx, token)
	if err != nil || pr.UserID != u.ID || pr.Kind != presence.DeviceToken {
		t.Errorf("the issued token: %+v, %v", pr, err)
	}
	devs, err := b.Devices(ctx, u.ID)
	if err != nil || len(devs) != 1 {
		t.Errorf("devices after pairing: %+v, %v; want exactly one", devs, err)
	}
}

// A session ended, an API token revoked or a user disabled on one instance
// is refused by another that remembered the credential, within the
// wake-up's round trip: nothing else tells it during the test.
func TestCredentialsTakenAwayOnOneInstanceEndOnAll(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, quiet)
	b := openInstance(t, dsn, time.Now, quiet)
	ctx := t.Context()
	u, accountTok, err := a.CreateUser(ctx, "far", "")
	if err != nil {
		t.Fatal(err)
	}
	_, devTok, err := a.CreateDevice(ctx, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	sess, sessTok, err := a.CreateSession(ctx, u.ID, presence.Client{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	apiTok, apiSecret, err := a.CreateAPIToken(ctx, u.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what, tok string) {
		t.Helper()
		start := time.Now()
		testutil.WaitUntil(t, "a refuses "+what, eventWait, func() bool {
			_, err := a.Authenticate(ctx, tok)
			return presence.ErrorCode(err) == presence.EUNAUTHORIZED
		})
		t.Logf("a refused %s %v after b's change", what, time.Since(start))
	}

	for _, tok := range []string{sessTok, apiSecret} {
		remembered(t, a, tok)
	}
	if err := b.EndSession(ctx, u.ID, sess.ID); err != nil {
		t.Fatal(err)
	}
	refused("the session ended on b", sessTok)
	if err := b.RevokeAPIToken(ctx, u.ID, apiTok.ID); err != nil {
		t.Fatal(err)
	}
	refused("the API token revoked on b", apiSecret)

	_, sessTok, err = a.CreateSession(ctx, u.ID, presence.Client{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{sessTok, accountTok, devTok} {
		remembered(t, a, tok)
	}
	yes, no := true, false
	if _, err := b.UpdateUser(ctx, u.ID, presence.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	refused("the session of a user disabled on b", sessTok)
	for _, tok := range []string{accountTok, devTok} {
		if _, err := a.Authenticate(ctx, tok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
			t.Errorf("a token of the disabled user: %v", err)
		}
	}
	if _, _, err := a.CreateSession(ctx, u.ID, presence.Client{}); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a disabled user signs in: %v", err)
	}

	// Enabled again: tokens work, the sessions stay ended.
	if _, err := b.UpdateUser(ctx, u.ID, presence.UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{accountTok, devTok} {
		if _, err := a.Authenticate(ctx, tok); err != nil {
			t.Errorf("a token of the user enabled again: %v", err)
		}
	}
	if _, err := a.Authenticate(ctx, sessTok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a session ended by disabling, after enabling: %v", err)
	}
}

// A remembered session lapses when it has been unused for SessionIdle,
// however long the cache would trust it otherwise.
func TestRememberedSessionLapses(t *testing.T) {
	clock := storetest.NewClock(t0)
	s := openInstance(t, newDatabase(t), clock.Now, func(c *Config) { c.TokenCacheAge = 1000 * time.Hour })
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, "idle", "")
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := s.CreateSession(ctx, u.ID, presence.Client{})
	if err != nil {
		t.Fatal(err)
	}
	remembered(t, s, tok)
	clock.Advance(presence.SessionIdle)
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Errorf("a session unused for exactly SessionIdle: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := s.Authenticate(ctx, tok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a session unused for longer than SessionIdle: %v", err)
	}
}

// The agent's version is kept with the device, like its OS.
func TestFactsVersionIsKept(t *testing.T) {
	dsn := newDatabase(t)
	clock := storetest.NewClock(t0)
	a := openInstance(t, dsn, clock.Now, nil)
	u, d := mustUserDevice(t, a, "ver")
	ctx := t.Context()
	res, err := a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, &presence.Facts{OS: "linux", Version: "1.4.0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Device.Version != "1.4.0" || res.Device.OS != "linux" {
		t.Errorf("ingest result device = %+v", res.Device.Device)
	}
	b := openInstance(t, dsn, clock.Now, nil)
	devs, err := b.Devices(ctx, u.ID)
	if err != nil || len(devs) != 1 || devs[0].Version != "1.4.0" {
		t.Errorf("devices read by another instance: %+v, %v", devs, err)
	}
}

// With the writer stuck (another transaction holds the device's row lock),
// beats pile up to MaxWaiting and then Ingest answers EUNAVAILABLE with a
// retry hint at once; what was admitted commits once the lock is gone.
func TestIngestRefusesPastMaxWaiting(t *testing.T) {
	dsn := newDatabase(t)
	s := openInstance(t, dsn, time.Now, func(c *Config) { c.Writers, c.MaxWaiting = 1, 1 })
	_, d := mustUserDevice(t, s, "busy")
	ctx := t.Context()
	tx, err := adminConn(t, dsn).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM devices WHERE id = $1 FOR UPDATE`, d.ID); err != nil {
		t.Fatal(err)
	}

	// The first beat is taken into a group that waits for the lock; one
	// more may wait behind it (a request alone is admitted whatever its
	// weight); the next must be refused. Each admitted one is left running.
	admitted := make(chan error, 200)
	waiting := 0
	var refusal error
	at := time.Now()
	for seq := int64(1); seq <= 200 && refusal == nil; seq++ {
		res := make(chan error, 1)
		go func() {
			_, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: seq, At: at.Add(time.Duration(seq) * time.Millisecond), State: A}}, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err == nil {
				t.Fatalf("beat %d committed while another transaction holds the device", seq)
			}
			refusal = err
		case <-time.After(20 * time.Millisecond): // still waiting: admitted
			waiting++
			go func() { admitted <- <-res }()
		}
	}
	if refusal == nil {
		t.Fatal("no beat was refused with the writer stuck")
	}
	var ra presence.RetryAfterer
	if presence.ErrorCode(refusal) != presence.EUNAVAILABLE || !errors.As(refusal, &ra) || ra.RetryAfter() <= 0 || !errors.Is(refusal, groupcommit.ErrFull) {
		t.Fatalf("refusal = %v, want EUNAVAILABLE with a retry hint", refusal)
	}
	if msg := presence.ErrorMessage(refusal); msg == "" || msg == "internal error" {
		t.Errorf("message %q says nothing to the caller", msg)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if waiting == 0 {
		t.Error("no beat was admitted before the refusal")
	}
	for range waiting {
		if err := <-admitted; err != nil {
			t.Errorf("an admitted beat failed: %v", err)
		}
	}
}

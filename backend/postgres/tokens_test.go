package postgres

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

func TestTokenCache(t *testing.T) {
	key := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	dev := presence.Principal{Kind: presence.DeviceToken, UserID: 1, DeviceID: 7}
	cases := []struct {
		name   string
		max    int
		age    time.Duration
		run    func(c *tokenCache)
		lookup time.Duration // after t0
		want   bool
	}{
		{"a confirmed token is remembered", 10, time.Minute,
			func(c *tokenCache) { c.put(key("a"), dev, c.generation(), t0) }, time.Second, true},
		{"until its age runs out", 10, time.Minute,
			func(c *tokenCache) { c.put(key("a"), dev, c.generation(), t0) }, time.Minute, false},
		{"invalidate forgets it", 10, time.Minute,
			func(c *tokenCache) { c.put(key("a"), dev, c.generation(), t0); c.invalidate() }, time.Second, false},
		{"a lookup that began before an invalidation cannot store", 10, time.Minute,
			func(c *tokenCache) { g := c.generation(); c.invalidate(); c.put(key("a"), dev, g, t0) }, time.Second, false},
		{"disabled by size", 0, time.Minute,
			func(c *tokenCache) { c.put(key("a"), dev, c.generation(), t0) }, time.Second, false},
		{"disabled by age", 10, -1,
			func(c *tokenCache) { c.put(key("a"), dev, c.generation(), t0) }, time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(tc.max, tc.age)
			if c.enabled() {
				tc.run(c)
			}
			p, ok := c.get(key("a"), t0.Add(tc.lookup))
			if ok != tc.want || (ok && p != dev) {
				t.Errorf("get = %+v, %v; want found %v", p, ok, tc.want)
			}
		})
	}

	t.Run("bounded in size, expired entries first", func(t *testing.T) {
		c := newTokenCache(8, time.Minute)
		c.put(key("old"), dev, c.generation(), t0.Add(-time.Hour))
		for i := range 7 {
			c.put(key(string(rune('a'+i))), dev, c.generation(), t0)
		}
		c.put(key("new"), dev, c.generation(), t0)
		if _, ok := c.get(key("new"), t0); !ok {
			t.Error("the newest entry was evicted")
		}
		for i := range 100 {
			c.put(key(string(rune(1000+i))), dev, c.generation(), t0)
			if n := c.len(); n > 8 {
				t.Fatalf("%d entries, max 8", n)
			}
		}
	})
}

// Authenticate answers a known token from memory, and a revocation on the
// same instance holds at once all the same.
func TestTokensRememberedUntilRevoked(t *testing.T) {
	s := openInstance(t, newDatabase(t), time.Now, nil)
	ctx := t.Context()
	u, userTok, err := s.CreateUser(ctx, "mem", "")
	if err != nil {
		t.Fatal(err)
	}
	d, tok, err := s.CreateDevice(ctx, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, userTok} {
		remembered(t, s, tk)
	}
	if err := s.RevokeDevice(ctx, u.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a revoked device token right after the revocation: %v", err)
	}
	if p, err := s.Authenticate(ctx, userTok); err != nil || p.UserID != u.ID {
		t.Errorf("the user's token after revoking one of their devices: %+v, %v", p, err)
	}
	if _, err := s.Authenticate(ctx, "ls_dev_nonsense"); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("an unknown token: %v", err)
	}
}

// A device revoked on one instance is refused by another that remembered
// its token within the wake-up's round trip: no poll or periodic refresh
// runs during the test, so only the NOTIFY can tell it.
func TestRevocationReachesRememberedTokensOnOtherInstances(t *testing.T) {
	dsn := newDatabase(t)
	quiet := func(c *Config) {
		c.PollEvery, c.RefreshEvery, c.FullRefreshEvery = time.Hour, time.Hour, time.Hour
	}
	a := openInstance(t, dsn, time.Now, quiet)
	b := openInstance(t, dsn, time.Now, quiet)
	ctx := t.Context()
	u, _, err := a.CreateUser(ctx, "far", "")
	if err != nil {
		t.Fatal(err)
	}
	d, tok, err := a.CreateDevice(ctx, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	remembered(t, a, tok)
	if err := b.RevokeDevice(ctx, u.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if _, err := a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: time.Now(), State: A}}, nil); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a ingests for a device revoked on b: %v (the database decides, at once)", err)
	}
	testutil.WaitUntil(t, "a refuses the token revoked on b", eventWait, func() bool {
		_, err := a.Authenticate(ctx, tok)
		return presence.ErrorCode(err) == presence.EUNAUTHORIZED
	})
	t.Logf("a refused the token %v after b's revocation", time.Since(revoked))
}

// While the listener is down a revocation elsewhere would go unheard, so
// no token is answered from memory: the database is asked every time.
func TestDeafInstanceAsksTheDatabase(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, func(c *Config) {
		c.PollEvery, c.RefreshEvery, c.FullRefreshEvery = time.Hour, time.Hour, time.Hour
		c.ReconnectMin, c.ReconnectMax = time.Hour, time.Hour // stays down once cut
	})
	b := openInstance(t, dsn, time.Now, nil)
	ctx := t.Context()
	u, _, err := a.CreateUser(ctx, "deaf", "")
	if err != nil {
		t.Fatal(err)
	}
	d, tok, err := a.CreateDevice(ctx, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	remembered(t, a, tok)
	pid := a.listenerPID.Load()
	var killed bool
	if err := adminConn(t, dsn).QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate a's listener %d: %v, %v", pid, killed, err)
	}
	testutil.WaitUntil(t, "a notices its listener is gone", eventWait, func() bool { return !a.listening.Load() })
	if err := b.RevokeDevice(ctx, u.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, tok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a, deaf, accepts a token revoked on b: %v", err)
	}
}

// remembered waits until s answers tok from memory (the wake-ups of the
// user's and device's creation may still drop it once or twice).
func remembered(t *testing.T, s instance, tok string) {
	t.Helper()
	testutil.WaitUntil(t, "the token is answered from memory", eventWait, func() bool {
		before := s.tokens.hits.Load()
		if _, err := s.Authenticate(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		return s.tokens.hits.Load() > before
	})
}

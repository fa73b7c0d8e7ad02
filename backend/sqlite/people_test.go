package sqlite

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

// A server upgraded from before people had roles keeps an admin (its
// oldest user), and its users' tokens keep working, listed and named.
func TestUpgradeMakesTheOldestUserAdmin(t *testing.T) {
	path := tempDB(t)
	old := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_span_why.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+name] = &fstest.MapFile{Data: b}
	}
	db, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(db, old, "migrations", t0); err != nil {
		t.Fatal(err)
	}
	tok, hash := presence.NewToken(presence.UserToken)
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO users (id, handle, name, created_ns) VALUES (1, 'young', '', ?), (2, 'elder', '', ?)`, []any{t0.UnixNano(), t0.Add(-time.Hour).UnixNano()}},
		{`INSERT INTO tokens (hash, kind, user_id, created_ns) VALUES (?, 'usr', 2, ?)`, []any{hash, t0.UnixNano()}},
	} {
		if _, err := db.Exec(q.query, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openT(t, path, presence.Options{Now: storetest.NewClock(t0).Now})
	ctx := t.Context()
	users, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Handle != "elder" || !users[0].Admin || users[1].Admin {
		t.Errorf("users after the upgrade = %+v, want elder (the oldest) the only admin", users)
	}
	p, err := s.Authenticate(ctx, tok)
	if err != nil || p.UserID != 2 || p.TokenID != tokenID(hash) {
		t.Errorf("an old token after the upgrade: %+v, %v", p, err)
	}
	list, err := s.APITokens(ctx, 2)
	if err != nil || len(list) != 1 || list[0].ID != tokenID(hash) || list[0].Name != accountTokenName {
		t.Errorf("elder's tokens = %+v, %v; want the old one, named %q", list, err, accountTokenName)
	}
}

// A fresh server's first user is an admin, not the oldest of none.
func TestUpgradeOfAnEmptyServerMakesNoAdmin(t *testing.T) {
	s := openT(t, tempDB(t), presence.Options{})
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM users WHERE admin`).Scan(&n); err != nil || n != 0 {
		t.Errorf("admins on an empty server: %d, %v", n, err)
	}
}

// The command line, in its own process, ends sessions, disables users and
// revokes tokens while the service runs: the service refuses them within
// a second, although it remembers the credentials it confirmed.
func TestCredentialsTakenAwayByAnotherProcess(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0)
	server := openT(t, path, presence.Options{Now: clock.Now})
	cli := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()

	ann, _, err := server.CreateUser(ctx, "ann", "")
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := server.CreateUser(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	_, annSes, _ := server.CreateSession(ctx, ann.ID, presence.Client{})
	api, annAPI, _ := server.CreateAPIToken(ctx, ann.ID, "ci")
	_, bobSes, _ := server.CreateSession(ctx, bob.ID, presence.Client{})
	_, bobDev, _ := server.CreateDevice(ctx, bob.ID, "desk")
	for _, cred := range []string{annSes, annAPI, bobSes, bobDev} {
		if _, err := server.Authenticate(ctx, cred); err != nil {
			t.Fatalf("before: %v", err)
		}
	}
	refusedSoon := func(what, cred string) {
		t.Helper()
		testutil.WaitUntil(t, "the server refuses "+what, time.Second, func() bool {
			_, err := server.Authenticate(ctx, cred)
			return presence.ErrorCode(err) == presence.EUNAUTHORIZED
		})
	}

	if _, err := cli.EndSessions(ctx, ann.ID, 0); err != nil {
		t.Fatal(err)
	}
	refusedSoon("a session the CLI ended", annSes)
	if err := cli.RevokeAPIToken(ctx, ann.ID, api.ID); err != nil {
		t.Fatal(err)
	}
	refusedSoon("a token the CLI revoked", annAPI)
	yes := true
	if _, err := cli.UpdateUser(ctx, bob.ID, presence.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	refusedSoon("the session of a user the CLI disabled", bobSes)
	refusedSoon("the device token of a user the CLI disabled", bobDev)
}

// Sessions, links and pairing codes, like tokens, are kept only as hashes.
func TestSecretsAreStoredOnlyAsHashes(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path, presence.Options{})
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, "secret", "")
	if err != nil {
		t.Fatal(err)
	}
	_, ses, err := s.CreateSession(ctx, u.ID, presence.Client{})
	if err != nil {
		t.Fatal(err)
	}
	_, link, err := s.CreateLink(ctx, presence.Link{Purpose: presence.SignupLink, Handle: "invited"})
	if err != nil {
		t.Fatal(err)
	}
	_, code, err := s.CreatePairing(ctx, "box", "linux")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{ses, link, code} {
			body := secret
			for _, prefix := range []string{presence.SessionPrefix, presence.LinkPrefix, presence.DeviceCodePrefix} {
				body = strings.TrimPrefix(body, prefix)
			}
			if len(body) < 40 || bytes.Contains(raw, []byte(body)) {
				t.Errorf("%s holds a secret in plain text (or %q is no secret)", f, secret)
			}
			if f == path && !bytes.Contains(raw, presence.HashToken(secret)) {
				t.Errorf("%s lacks the hash of %.10s…: is it stored at all?", f, secret)
			}
		}
	}
}

// However many requests are authenticating the credential at the time, once
// the call that revoked it returns no request that starts later accepts it:
// a lookup that began before the revocation cannot leave its answer behind.
func TestRevokedCredentialFailsAtOnceUnderLoad(t *testing.T) {
	s := openT(t, tempDB(t), presence.Options{Now: storetest.NewClock(t0).Now})
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, "ann", "")
	if err != nil {
		t.Fatal(err)
	}
	tok, tokSecret, err := s.CreateAPIToken(ctx, u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	var revoked atomic.Bool
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			// Until a few hundred calls after the revocation (or a
			// deadline, should the test fail before revoking).
			deadline := time.Now().Add(10 * time.Second)
			for late := 0; late < 300 && time.Now().Before(deadline); {
				after := revoked.Load()
				_, err := s.Authenticate(ctx, tokSecret)
				calls.Add(1)
				if !after {
					continue
				}
				late++
				if err == nil {
					t.Error("a revoked token authenticated after the revocation returned")
					return
				}
			}
		})
	}
	testutil.WaitUntil(t, "requests under way", 5*time.Second, func() bool { return calls.Load() >= 200 })
	if err := s.RevokeAPIToken(ctx, u.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	wg.Wait()
}

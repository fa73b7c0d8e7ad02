package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlitedb"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

var t0 = storetest.T0

func openT(t *testing.T, path string, opts presence.Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempDB(t *testing.T) string { return filepath.Join(t.TempDir(), "lastseen.db") }

func active(seq int64, off time.Duration) presence.Beat {
	return presence.Beat{Seq: seq, At: t0.Add(off), State: presence.Active}
}

// A second Store on the same file stands for the command line, which adds
// and revokes accounts in its own process while the service runs.
func TestAccountsFromAnotherProcess(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0)
	server := openT(t, path, presence.Options{Now: clock.Now})
	cli := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()

	u, utok, err := cli.CreateUser(ctx, "late", "Late Comer")
	if err != nil {
		t.Fatal(err)
	}
	d, dtok, err := cli.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := server.Authenticate(ctx, utok); err != nil || p.UserID != u.ID {
		t.Errorf("server authenticates the CLI's user token: %+v, %v", p, err)
	}
	if p, err := server.Authenticate(ctx, dtok); err != nil || p.DeviceID != d.ID {
		t.Errorf("server authenticates the CLI's device token: %+v, %v", p, err)
	}
	res, err := server.Ingest(ctx, d.ID, []presence.Beat{active(1, 0)}, nil)
	if err != nil || res.Accepted != 1 || res.Device.Status != presence.Active {
		t.Fatalf("server ingests into the CLI's device: %+v, %v", res, err)
	}
	all, err := server.Presence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].User.Handle != "late" || all[0].Status != presence.Active || len(all[0].Devices) != 1 {
		t.Errorf("server presence = %+v, want late, active on one device", all)
	}

	public := true
	if _, err := cli.UpdateUser(ctx, u.ID, presence.UserUpdate{Public: &public}); err != nil {
		t.Fatal(err)
	}
	if all, _ := server.Presence(ctx); len(all) != 1 || !all[0].User.Public {
		t.Errorf("server presence after the CLI opted the user in = %+v", all)
	}

	if err := cli.RevokeDevice(ctx, u.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	// The server remembers the token it confirmed, until it next reads
	// the counters: within a second.
	testutil.WaitUntil(t, "the server refuses a token the CLI revoked", time.Second, func() bool {
		_, err := server.Authenticate(ctx, dtok)
		return presence.ErrorCode(err) == presence.EUNAUTHORIZED
	})
	if _, err := server.Ingest(ctx, d.ID, []presence.Beat{active(2, time.Second)}, nil); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("server ingests into a device the CLI revoked: %v", err)
	}
	if list, _ := server.Devices(ctx, u.ID); len(list) != 0 {
		t.Errorf("server lists a device the CLI revoked: %+v", list)
	}
}

// Any writer of the file, even one that only touches the tokens table,
// takes a token away (or gives it back) within a second: the triggers move
// the counters the remembered credentials depend on.
func TestAuthenticateSeesOtherWritersWithinASecond(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path, presence.Options{Now: storetest.NewClock(t0).Now})
	ctx := t.Context()
	u, tok, err := s.CreateUser(ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	other, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, step := range []struct {
		revoked any
		want    string
	}{{nil, ""}, {t0.UnixNano(), presence.EUNAUTHORIZED}, {nil, ""}} {
		if _, err := other.ExecContext(ctx, `UPDATE tokens SET revoked_ns = ? WHERE hash = ?`, step.revoked, presence.HashToken(tok)); err != nil {
			t.Fatal(err)
		}
		testutil.WaitUntil(t, fmt.Sprintf("revoked_ns %v counts", step.revoked), time.Second, func() bool {
			_, err := s.Authenticate(ctx, tok)
			return presence.ErrorCode(err) == step.want
		})
		for range readConns + 1 { // whichever connection of the pool answers
			p, err := s.Authenticate(ctx, tok)
			if presence.ErrorCode(err) != step.want || (err == nil && p.UserID != u.ID) {
				t.Fatalf("revoked_ns %v: %+v, %v; want %q", step.revoked, p, err, step.want)
			}
		}
	}
}

// A confirmed credential is answered from memory: a token unchanged in the
// database is not looked up again, and the cache stays bounded.
func TestAuthenticateRemembers(t *testing.T) {
	s := openT(t, tempDB(t), presence.Options{Now: storetest.NewClock(t0).Now})
	ctx := t.Context()
	u, tok, err := s.CreateUser(ctx, "ann", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := s.auth.len(); n != 1 {
		t.Fatalf("%d credentials remembered after one lookup, want 1", n)
	}
	// Taken away behind the store's back, without moving the counters: a
	// remembered answer does not read the table.
	if _, err := s.db.ExecContext(ctx, `DROP TRIGGER tokens_auth_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_ns = 1 WHERE hash = ?`, presence.HashToken(tok)); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate(ctx, tok); err != nil || p.UserID != u.ID {
		t.Errorf("remembered token: %+v, %v; want user %d from memory", p, err, u.ID)
	}
	// A write of the store's own that may take a credential away forgets
	// every remembered one as it returns.
	if _, err := s.EndSessions(ctx, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("after the store forgot: %v, want unauthorized", err)
	}

	for range authCacheMax + 10 {
		var k [32]byte
		rand.Read(k[:])
		s.auth.put(k, authEntry{}, s.auth.generation())
	}
	if n := s.auth.len(); n > authCacheMax {
		t.Errorf("%d credentials remembered, want at most %d", n, authCacheMax)
	}
}

// Two processes should not both ingest into one database, but if they do,
// last_seq stays the one integer that decides: neither process applies a
// beat twice nor loses the other's.
func TestAnotherWriterMovesLastSeq(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0.Add(time.Minute))
	a := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()
	u, _, _ := a.CreateUser(ctx, "two", "")
	d, _, _ := a.CreateDevice(ctx, u.ID, "desk")
	if _, err := a.Ingest(ctx, d.ID, []presence.Beat{active(1, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	b := openT(t, path, presence.Options{Now: clock.Now})
	if _, err := b.Ingest(ctx, d.ID, []presence.Beat{active(2, 10*time.Second), active(3, 20*time.Second)}, nil); err != nil {
		t.Fatal(err)
	}
	// a's memory still says last_seq 1.
	res, err := a.Ingest(ctx, d.ID, []presence.Beat{active(2, 10*time.Second), active(3, 20*time.Second), active(4, 30*time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Duplicates != 2 || res.LastSeq != 4 {
		t.Errorf("after another writer: %+v, want 1 accepted, 2 duplicates, last_seq 4", res)
	}
	spans, err := a.Spans(ctx, presence.SpanQuery{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || !spans[0].Start.Equal(t0) || !spans[0].End.Equal(t0.Add(30*time.Second)) {
		t.Errorf("spans = %+v, want one span [t0, t0+30s]", spans)
	}
}

func TestTokensAreStoredOnlyAsHashes(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path, presence.Options{})
	u, utok, err := s.CreateUser(t.Context(), "secret", "")
	if err != nil {
		t.Fatal(err)
	}
	_, dtok, err := s.CreateDevice(t.Context(), u.ID, "desk")
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
		for _, tok := range []string{utok, dtok} {
			secret := strings.SplitN(tok, "_", 3)[2]
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds a token in plain text", f)
			}
			if !bytes.Contains(raw, presence.HashToken(tok)) && f == path {
				t.Errorf("%s lacks the token's hash: is it stored at all?", f)
			}
		}
	}
}

func TestMigrations(t *testing.T) {
	path := tempDB(t)
	s, err := Open(path, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, presence.Options{}) // a second open applies nothing
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()

	all, err := sqlitedb.Migrations(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, latest int
	if err := db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &latest); err != nil {
		t.Fatal(err)
	}
	if n != len(all) || latest != all[len(all)-1].Version {
		t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d", n, latest, len(all), all[len(all)-1].Version)
	}

	// A database from a newer build is refused, not misread.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_ns) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, presence.Options{}); err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Errorf("open a newer database: %v, want a clear refusal", err)
	}
}

// Storage keeps spans, not beats: a day of beats in one state is one span
// row and one device row.
func TestNoTableGrowsPerBeat(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0)
	s := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()
	u, _, _ := s.CreateUser(ctx, "steady", "")
	d, _, _ := s.CreateDevice(ctx, u.ID, "desk")
	seq := int64(0)
	for range 30 { // 30 batches of 100 beats, 30 s apart: 25 hours
		var bs []presence.Beat
		for range 100 {
			seq++
			bs = append(bs, active(seq, time.Duration(seq)*30*time.Second))
		}
		if _, err := s.Ingest(ctx, d.ID, bs, nil); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	for _, table := range []string{"spans", "devices", "users", "tokens"} {
		var n int
		if err := s.rdb.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	want := map[string]int{"spans": 1, "devices": 1, "users": 1, "tokens": 2}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("after %d beats: %d rows in %s, want %d", seq, counts[k], k, v)
		}
	}
}

// Event IDs rise across restarts even when the clock goes back in between.
func TestEventIDsRiseAcrossRestartsWhateverTheClock(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0)
	rec := &storetest.Recorder{}
	s, err := Open(path, presence.Options{Now: clock.Now, Notify: rec.Notify})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u, _, _ := s.CreateUser(ctx, "ids", "")
	d, _, _ := s.CreateDevice(ctx, u.ID, "desk")
	if _, err := s.Ingest(ctx, d.ID, []presence.Beat{active(1, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	clock.Set(t0.Add(-365 * 24 * time.Hour))
	s = openT(t, path, presence.Options{Now: clock.Now, Notify: rec.Notify})
	d2, _, _ := s.CreateDevice(ctx, u.ID, "laptop")
	if _, err := s.Ingest(ctx, d2.ID, []presence.Beat{{Seq: 1, At: clock.Now(), State: presence.Idle}}, nil); err != nil {
		t.Fatal(err)
	}
	evs := rec.Events()
	if len(evs) < 4 {
		t.Fatalf("events = %+v, want sessions and presence from both runs", evs)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Errorf("event %d has ID %d after %d", i, evs[i].ID, evs[i-1].ID)
		}
	}
}

// One request that cannot apply (an unknown device) shares its group with
// others and costs them nothing.
func TestBadRequestDoesNotSpoilItsGroup(t *testing.T) {
	path := tempDB(t)
	clock := storetest.NewClock(t0.Add(time.Minute))
	s := openT(t, path, presence.Options{Now: clock.Now})
	ctx := t.Context()
	u, _, _ := s.CreateUser(ctx, "group", "")
	var devs []presence.Device
	for range 8 {
		d, _, _ := s.CreateDevice(ctx, u.ID, "machine")
		devs = append(devs, d)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(devs))
	for i, d := range devs {
		wg.Go(func() { _, errs[i] = s.Ingest(ctx, d.ID, []presence.Beat{active(1, 0)}, nil) })
	}
	var badErr error
	wg.Go(func() { _, badErr = s.Ingest(ctx, 9999, []presence.Beat{active(1, 0)}, nil) })
	wg.Wait()
	if presence.ErrorCode(badErr) != presence.ENOTFOUND {
		t.Errorf("unknown device: %v, want not found", badErr)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("device %d beside a bad request: %v", devs[i].ID, err)
		}
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s, err := Open(tempDB(t), presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = s.Ingest(context.Background(), 1, []presence.Beat{active(1, 0)}, nil)
	if presence.ErrorCode(err) != presence.EUNAVAILABLE {
		t.Errorf("ingest after close: %v, want unavailable", err)
	}
	if _, err := s.Presence(context.Background()); presence.ErrorCode(err) != presence.EUNAVAILABLE {
		t.Errorf("presence after close: %v, want unavailable", err)
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	if _, err := Open("", presence.Options{}); presence.ErrorCode(err) != presence.EINVALID {
		t.Errorf("open without a path: %v", err)
	}
	if _, err := Open(tempDB(t), presence.Options{Pulse: presence.Pulse{Interval: -time.Second}}); presence.ErrorCode(err) != presence.EINVALID {
		t.Errorf("open with a negative interval: %v", err)
	}
}

// The expiry loop, on the real timer (fake time in a bubble): a silent
// device is announced offline one pulse window after its last beat, dated
// at its last beat plus grace, and its span keeps its end.
func TestExpiryLoopAnnouncesSilentDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &storetest.Recorder{}
		pulse := presence.DefaultPulse
		s, err := Open(tempDB(t), presence.Options{Pulse: pulse, Notify: rec.Notify})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		u, _, _ := s.CreateUser(ctx, "silent", "")
		d, _, _ := s.CreateDevice(ctx, u.ID, "desk")
		last := time.Now()
		if _, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: last, State: presence.Active}}, nil); err != nil {
			t.Fatal(err)
		}
		offline := func() *presence.Event {
			for _, ev := range rec.Events() {
				if ev.Kind == presence.EventPresence && ev.Presence.Status == presence.Offline {
					return &ev
				}
			}
			return nil
		}
		time.Sleep(time.Until(last.Add(pulse.Window())))
		synctest.Wait()
		if ev := offline(); ev != nil {
			t.Fatalf("offline announced at the window's edge, still within the TTL: %+v", ev)
		}
		time.Sleep(minSweep)
		synctest.Wait()
		ev := offline()
		if ev == nil {
			t.Fatalf("no offline event %v after the window; events %+v", minSweep, rec.Events())
		}
		if want := last.Add(pulse.Grace); !ev.At.Equal(want) || ev.Presence.UserStatus != presence.Offline {
			t.Errorf("offline event %+v, want at last beat + grace (%v), user offline", *ev.Presence, want)
		}
		var ended bool
		for _, ev := range rec.Events() {
			if ev.Kind == presence.EventSession && !ev.Open && ev.Session.End.Equal(last) {
				ended = true
			}
		}
		if !ended {
			t.Errorf("no session event ending the span at its last beat: %+v", rec.Events())
		}
		// Nothing more happens while the device stays silent.
		n := len(rec.Events())
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := len(rec.Events()); got != n {
			t.Errorf("%d more events during an hour of silence", got-n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

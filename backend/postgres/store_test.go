package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

// cluster is the one PostgreSQL cluster this test binary starts (TestMain);
// every test gets its own database in it.
var cluster struct {
	dsn string
	err error
}

func TestMain(m *testing.M) {
	dsn, stop, err := pgtest.StartCluster()
	cluster.dsn, cluster.err = dsn, err
	code := m.Run()
	stop()
	os.Exit(code)
}

// newDatabase returns the DSN of a fresh database, or skips (or fails, with
// LASTSEEN_REQUIRE_POSTGRES=1) when PostgreSQL is not installed.
func newDatabase(t testing.TB) string {
	t.Helper()
	if cluster.err != nil {
		pgtest.Unavailable(t, cluster.err)
	}
	return pgtest.NewDatabase(t, cluster.dsn)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		dsn := newDatabase(t)
		return func(opts presence.Options) (presence.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return Open(ctx, dsn, opts)
		}
	})
}

func TestMigrationsRunOnceUnderConcurrentStarts(t *testing.T) {
	dsn := newDatabase(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Instances starting together: the advisory lock makes them queue.
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := Open(t.Context(), dsn, presence.Options{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var applied int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(ms) {
		t.Errorf("%d migrations recorded, want %d", applied, len(ms))
	}

	// A database a newer release migrated is refused, not written to.
	if _, err := conn.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), dsn, presence.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with an unknown schema version")
	} else if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not name the unknown version", err)
	}
}

func TestCommittedBeatsSurviveAServerCrash(t *testing.T) {
	ctx := t.Context()
	c, err := pgtest.Launch(ctx)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { c.Stop() }) // after the database's own cleanup
	dsn := pgtest.NewDatabase(t, c.DSN("postgres"))
	clock := storetest.NewClock(t0.Add(time.Minute))
	s, err := Open(ctx, dsn, presence.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	u, d := mustUserDevice(t, s, "crash")
	res, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: t0, State: A}, {Seq: 2, At: t0.Add(30 * time.Second), State: A}}, nil)
	if err != nil || res.Accepted != 2 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	// Ingest returned: the beats are committed. kill -9 the whole server.
	if err := c.Crash(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, dsn, presence.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := shapes(allSpans(t, s, u)); fmt.Sprint(got) != fmt.Sprint([]spanShape{{A, 0, 30 * time.Second, false}}) {
		t.Errorf("spans after the crash: %v", got)
	}
	if st, err := s.DeviceStatus(ctx, d.ID); err != nil || st.Presence.LastSeq != 2 {
		t.Errorf("last_seq after the crash: %+v, %v; want 2", st.Presence, err)
	}
}

func TestConcurrentIngestsShareTransactions(t *testing.T) {
	const n = 64
	var groups atomic.Int64
	dsn := newDatabase(t)
	s, err := Open(t.Context(), dsn, presence.Options{
		Now:     func() time.Time { return t0.Add(time.Minute) },
		Observe: func(int, time.Duration) { groups.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _, err := s.CreateUser(t.Context(), "many", "")
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]int64, n)
	for i := range devs {
		d, _, err := s.CreateDevice(t.Context(), u.ID, fmt.Sprintf("d%d", i))
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d.ID
	}
	var wg sync.WaitGroup
	for _, id := range devs {
		wg.Go(func() {
			if _, err := s.Ingest(t.Context(), id, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if g := groups.Load(); g > n/4 {
		t.Errorf("%d concurrent ingests took %d transactions; group commit should need a few", n, g)
	} else {
		t.Logf("%d concurrent ingests in %d transactions", n, g)
	}
	if spans := allSpans(t, s, u); len(spans) != n {
		t.Errorf("%d spans, want %d", len(spans), n)
	}
}

func TestSafetyPollAndPruning(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, func(c *Config) {
		c.PollEvery = 50 * time.Millisecond
		c.EventMaxRows = 3
		c.PruneEvery = time.Hour // pruned by hand below
	})
	_, d := mustUserDevice(t, a, "poll")
	// An event committed without its NOTIFY (as if the wake-up was lost):
	// the periodic poll still delivers it.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO events (id, payload)
		VALUES (nextval('event_ids'), '{"event": {"kind": "presence", "user_id": 1, "at": "2026-11-25T10:00:00Z"}}')`); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, "the polled event", eventWait, func() bool { return len(a.events.Events()) == 1 })

	for i, st := range []presence.State{A, I, A, I, A} {
		if _, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: int64(i + 1), At: time.Now(), State: st}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	var rows, maxID int64
	if err := conn.QueryRow(t.Context(), `SELECT count(*), max(id) FROM events`).Scan(&rows, &maxID); err != nil {
		t.Fatal(err)
	}
	if rows != 3 || maxID != a.lastEventID() {
		t.Errorf("after pruning: %d rows up to id %d; want the newest 3 up to %d", rows, maxID, a.lastEventID())
	}
}

func TestRevokeOnOneInstanceHoldsOnAll(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, nil)
	b := openInstance(t, dsn, time.Now, nil)
	ctx := t.Context()
	u, _, err := a.CreateUser(ctx, "rev", "")
	if err != nil {
		t.Fatal(err)
	}
	d, tok, err := a.CreateDevice(ctx, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: time.Now(), State: A}}, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Authenticate(ctx, tok); err != nil || p.DeviceID != d.ID {
		t.Fatalf("B authenticates A's device: %+v, %v", p, err)
	}
	if err := b.RevokeDevice(ctx, u.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(ctx, tok)
	if presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("A authenticates a device revoked on B: %v", err)
	}
	_, err = a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 2, At: time.Now(), State: A}}, nil)
	if presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("A ingests into a device revoked on B: %v", err)
	}
	testutil.WaitUntil(t, "A drops the device and sees the user offline", eventWait, func() bool {
		all, _ := a.Presence(ctx)
		return len(all) == 1 && len(all[0].Devices) == 0 && all[0].Status == O && all[0].LastSeen.IsZero()
	})
	// A's memory may learn of the revocation (from the database) before
	// its listener delivers the event B wrote: wait for the event itself.
	testutil.WaitUntil(t, "A delivers the offline event", eventWait, func() bool {
		return len(presenceEvents(a.events.Events(), d.ID, O)) > 0
	})
	if off := presenceEvents(a.events.Events(), d.ID, O); len(off) != 1 {
		t.Errorf("A saw %d offline events for the revoked device, want 1", len(off))
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{DSN: "host=/tmp"}.withDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"no DSN", func(c *Config) { c.DSN = "" }},
		{"bad pulse", func(c *Config) { c.Options.Pulse.Interval = -time.Second }},
		{"negative tick", func(c *Config) { c.Tick = -1 }},
		{"negative poll", func(c *Config) { c.PollEvery = -1 }},
		{"backoff upside down", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }},
		{"negative max rows", func(c *Config) { c.EventMaxRows = -5 }},
		{"negative writers", func(c *Config) { c.Writers = -1 }},
		{"too many writers", func(c *Config) { c.Writers = maxWriters + 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if err := c.Validate(); presence.ErrorCode(err) != presence.EINVALID {
				t.Errorf("Validate() = %v, want an EINVALID error", err)
			}
		})
	}
	if _, err := Open(t.Context(), "host=/nonexistent port=notanumber", presence.Options{}); presence.ErrorCode(err) != presence.EINVALID {
		t.Errorf("Open with a malformed DSN: %v, want EINVALID", err)
	}
}

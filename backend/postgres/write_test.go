package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

// adminConn is a plain connection to the test database, outside any store.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// A group that had to wait for another transaction's lock on a device (a
// second instance writing the same device at the same moment) must merge
// its beats into the device's tail as that transaction left it, not as the
// database stood when the group's statement began.
func TestGroupWaitingOnALockReadsWhatTheOtherCommitted(t *testing.T) {
	dsn := newDatabase(t)
	clock := storetest.NewClock(t0.Add(time.Minute))
	a := openInstance(t, dsn, clock.Now, nil)
	u, d := mustUserDevice(t, a, "wait")
	ctx := t.Context()
	if _, err := a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil); err != nil {
		t.Fatal(err)
	}

	// The other writer: it holds the device, and while a's group waits for
	// it, turns the device idle at +30 s (closing the active span and
	// starting an idle one), as an instance's group would.
	other := adminConn(t, dsn)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM devices WHERE id = $1 FOR UPDATE`, d.ID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res presence.IngestResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := a.Ingest(ctx, d.ID, []presence.Beat{{Seq: 3, At: t0.Add(50 * time.Second), State: I}}, nil)
		done <- result{res, err}
	}()
	watch := adminConn(t, dsn)
	testutil.WaitUntil(t, "a's group waits on the lock", eventWait, func() bool {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'lastseend' AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
	var tail int64
	if err := tx.QueryRow(ctx, `SELECT tail_span_id FROM devices WHERE id = $1`, d.ID).Scan(&tail); err != nil {
		t.Fatal(err)
	}
	at30 := t0.Add(30 * time.Second)
	if _, err := tx.Exec(ctx, `UPDATE spans SET end_at = $2, closed = true WHERE id = $1`, tail, at30); err != nil {
		t.Fatal(err)
	}
	var idle int64
	if err := tx.QueryRow(ctx, `INSERT INTO spans (device_id, state, start_at, end_at) VALUES ($1, 'idle', $2, $2) RETURNING id`,
		d.ID, at30).Scan(&idle); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE devices SET state = 'idle', last_beat = $2, last_seq = 2, tail_span_id = $3, updated_at = now()
		WHERE id = $1`, d.ID, at30, idle); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	r := <-done
	if r.err != nil || r.res.Accepted != 1 || r.res.LastSeq != 3 {
		t.Fatalf("ingest after the wait: %+v, %v", r.res, r.err)
	}
	want := []spanShape{{A, 0, 30 * time.Second, true}, {I, 30 * time.Second, 50 * time.Second, false}}
	if got := shapes(allSpans(t, a, u)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spans: %v\nwant %v (the idle beat extends the idle span the other writer started)", got, want)
	}
}

// A group whose writes fail part-way is rolled back whole, COMMIT and all
// travelling in the same round trip notwithstanding: the failing device
// keeps nothing, the other requests of the group are committed on their
// own, and the writer's connections stay usable.
func TestFailedWritesLeaveNothingBehind(t *testing.T) {
	dsn := newDatabase(t)
	clock := storetest.NewClock(t0.Add(time.Minute))
	s := openInstance(t, dsn, clock.Now, func(c *Config) {
		c.Writers = 1
		c.Linger = 50 * time.Millisecond // both requests in one group
	})
	ctx := t.Context()
	u, good := mustUserDevice(t, s, "roll")
	bad, _, err := s.CreateDevice(ctx, u.ID, "cursed")
	if err != nil {
		t.Fatal(err)
	}
	// The database refuses any span of the cursed device: the span upsert,
	// the first statement of the write round trip, fails.
	admin := adminConn(t, dsn)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON spans
			FOR EACH ROW WHEN (NEW.device_id = %d) EXECUTE FUNCTION refuse();`, bad.ID)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var goodErr, badErr error
	wg.Go(func() {
		_, goodErr = s.Ingest(ctx, good.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil)
	})
	wg.Go(func() {
		_, badErr = s.Ingest(ctx, bad.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil)
	})
	wg.Wait()
	if goodErr != nil {
		t.Errorf("the good device's request failed with the bad one: %v", goodErr)
	}
	if badErr == nil {
		t.Error("the refused request reported success")
	}
	var seq int64
	var spans int
	if err := admin.QueryRow(ctx, `SELECT last_seq, (SELECT count(*) FROM spans WHERE device_id = $1) FROM devices WHERE id = $1`,
		bad.ID).Scan(&seq, &spans); err != nil {
		t.Fatal(err)
	}
	if seq != 0 || spans != 0 {
		t.Errorf("the refused device kept last_seq %d and %d spans; want nothing", seq, spans)
	}
	if st, err := s.DeviceStatus(ctx, bad.ID); err != nil || st.Presence.LastSeq != 0 {
		t.Errorf("memory of the refused device: %+v, %v", st.Presence, err)
	}
	// Every connection the failures touched is clean: the writer goes on.
	if _, err := admin.Exec(ctx, `DROP TRIGGER refuse ON spans`); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * int(s.pool.Stat().MaxConns()) {
		if _, err := s.Ingest(ctx, good.ID, []presence.Beat{{Seq: int64(i + 2), At: t0.Add(time.Duration(i+1) * time.Second), State: A}}, nil); err != nil {
			t.Fatalf("ingest %d after the failure: %v", i, err)
		}
	}
	if res, err := s.Ingest(ctx, bad.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil); err != nil || res.Accepted != 1 {
		t.Errorf("the refused beat, sent again: %+v, %v", res, err)
	}
}

// Several writers on each of two instances, many devices each sending its
// script in order, some through both instances: every device ends with the
// spans one writer gives, span ids ascend with time, and both instances
// deliver the same events, each once, in id order.
func TestWritersKeepEveryDeviceInOrder(t *testing.T) {
	beats := beatScript(60)
	clock := storetest.NewClock(beats[len(beats)-1].At)

	ref := openInstance(t, newDatabase(t), clock.Now, func(c *Config) { c.Writers = 1 })
	ru, rd := mustUserDevice(t, ref, "ref")
	for _, b := range beats {
		if _, err := ref.Ingest(t.Context(), rd.ID, []presence.Beat{b}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := shapes(allSpans(t, ref, ru))

	dsn := newDatabase(t)
	four := func(c *Config) { c.Writers = 4 }
	a := openInstance(t, dsn, clock.Now, four)
	b := openInstance(t, dsn, clock.Now, four)
	const devices = 12
	users := make([]presence.User, devices)
	devs := make([]presence.Device, devices)
	for i := range devices {
		users[i], devs[i] = mustUserDevice(t, a, fmt.Sprintf("u%d", i))
	}
	testutil.WaitUntil(t, "B knows every device", eventWait, func() bool {
		for _, d := range devs {
			if _, ok := b.cache.device(d.ID); !ok {
				return false
			}
		}
		return true
	})
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Go(func() {
			for k, bt := range beats {
				s := a
				if i%3 == 0 && k%2 == 1 { // a third of the devices alternate instances
					s = b
				}
				res, err := s.Ingest(t.Context(), d.ID, []presence.Beat{bt}, nil)
				if err != nil {
					t.Errorf("device %d beat %d: %v", d.ID, bt.Seq, err)
					return
				}
				if res.Accepted != 1 {
					t.Errorf("device %d beat %d: %+v", d.ID, bt.Seq, res)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, u := range users {
		spans := allSpans(t, a, u)
		if got := shapes(spans); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("device %d:\n got %v\nwant %v", devs[i].ID, got, want)
		}
		if !slices.IsSortedFunc(spans, func(x, y presence.Span) int { return int(x.ID - y.ID) }) {
			t.Errorf("device %d: span ids do not ascend with time: %v", devs[i].ID, spans)
		}
	}
	testutil.WaitUntil(t, "both instances deliver the same events", eventWait, func() bool {
		return fmt.Sprint(eventIDs(a.events.Events())) == fmt.Sprint(eventIDs(b.events.Events()))
	})
	evs := a.events.Events()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Fatalf("event ids do not increase: %v", eventIDs(evs))
		}
	}
	var n, wrong int
	if err := adminConn(t, dsn).QueryRow(t.Context(), `SELECT count(*),
			count(*) FILTER (WHERE (payload->'event'->>'id')::bigint IS DISTINCT FROM id) FROM events`).Scan(&n, &wrong); err != nil || n != len(evs) || wrong != 0 {
		t.Errorf("%d events in the table (%d whose payload names another id), %d delivered (%v)", n, wrong, len(evs), err)
	}
}

// A user's status in a presence event counts every device the same group
// changed, not the copy memory had of them before the group.
func TestUserStatusCountsTheWholeGroup(t *testing.T) {
	dsn := newDatabase(t)
	clock := storetest.NewClock(t0.Add(time.Minute))
	s := openInstance(t, dsn, clock.Now, func(c *Config) {
		c.Writers = 1
		c.Linger = 50 * time.Millisecond // both requests in one group
	})
	ctx := t.Context()
	u, laptop := mustUserDevice(t, s, "two")
	desk, _, err := s.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ingest(ctx, desk.ID, []presence.Beat{{Seq: 1, At: t0, State: A}}, nil); err != nil {
		t.Fatal(err)
	}
	// In one group: the laptop wakes up active while the desk goes away.
	var wg sync.WaitGroup
	for _, c := range []struct {
		id int64
		b  presence.Beat
	}{{laptop.ID, presence.Beat{Seq: 1, At: t0.Add(40 * time.Second), State: A}}, {desk.ID, presence.Beat{Seq: 2, At: t0.Add(40 * time.Second), State: W}}} {
		wg.Go(func() {
			if _, err := s.Ingest(ctx, c.id, []presence.Beat{c.b}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, id := range []int64{laptop.ID, desk.ID} {
		evs := s.events.Events()
		var last *presence.Event
		for i := range evs {
			if evs[i].Kind == presence.EventPresence && evs[i].Presence.DeviceID == id {
				last = &evs[i]
			}
		}
		if last == nil || last.Presence.UserStatus != A {
			t.Errorf("device %d's last presence event %+v: want the user active (the laptop is)", id, last)
		}
	}
}

func TestExpectNewSpans(t *testing.T) {
	s := &Store{cache: newCache(), opts: presence.Options{Pulse: presence.DefaultPulse}}
	s.cache.putDevice(entry(1, 5, A, t0))          // active, last beat t0
	s.cache.putDevice(entry(2, 0, O, time.Time{})) // never beat
	s.cache.putDevice(revoked(entry(3, 1, A, t0))) // revoked
	beat := func(seq int64, sec int, st presence.State) presence.Beat {
		return presence.Beat{Seq: seq, At: t0.Add(time.Duration(sec) * time.Second), State: st}
	}
	req := func(dev int64, beats ...presence.Beat) ingestReq { return ingestReq{deviceID: dev, beats: beats} }
	cases := []struct {
		name string
		reqs []ingestReq
		want int
	}{
		{"extending the tail starts nothing", []ingestReq{req(1, beat(6, 30, A))}, 0},
		{"a new state starts a span", []ingestReq{req(1, beat(6, 30, I))}, 1},
		{"a gap past the window starts a span", []ingestReq{req(1, beat(6, 61, A))}, 1},
		{"an offline beat starts nothing", []ingestReq{req(1, beat(6, 30, O))}, 0},
		{"duplicates start nothing", []ingestReq{req(1, beat(5, 30, I))}, 0},
		{"the first beat ever starts a span", []ingestReq{req(2, beat(1, 0, A))}, 1},
		{"unknown and revoked devices are left to the lock", []ingestReq{req(9, beat(1, 0, A)), req(3, beat(2, 30, I))}, 0},
		{"beats are judged one after another", []ingestReq{req(1, beat(6, 30, I), beat(7, 40, I), beat(8, 50, A))}, 2},
		{"and so are the requests of one device", []ingestReq{req(1, beat(6, 30, I)), req(1, beat(7, 40, I))}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.expectNewSpans(tc.reqs); got != tc.want {
				t.Errorf("expectNewSpans = %d, want %d", got, tc.want)
			}
		})
	}
}

// Memory's guess of how many spans a group starts only saves a round trip:
// guessed too few or too many, the spans are the same.
func TestWrongSpanGuessesChangeNothing(t *testing.T) {
	s := openInstance(t, newDatabase(t), storetest.NewClock(t0.Add(time.Hour)).Now, nil)
	u, d := mustUserDevice(t, s, "guess")
	ctx := t.Context()
	ingest := func(seq int64, sec int, st presence.State) {
		t.Helper()
		if _, err := s.Ingest(ctx, d.ID, []presence.Beat{{Seq: seq, At: t0.Add(time.Duration(sec) * time.Second), State: st}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Memory wrongly believes the device is away: it guesses an active
	// beat starts a span, but the database's tail is active.
	ingest(1, 0, A)
	e, _ := s.cache.device(d.ID)
	e.pres.State = W
	s.cache.putDevice(e)
	ingest(2, 30, A)
	// Memory wrongly believes it idle: it guesses an idle beat starts
	// nothing, but it does start a span (the database's tail is active).
	e, _ = s.cache.device(d.ID)
	e.pres.State = I
	s.cache.putDevice(e)
	ingest(3, 40, I)
	want := []spanShape{{A, 0, 40 * time.Second, true}, {I, 40 * time.Second, 40 * time.Second, false}}
	spans := allSpans(t, s, u)
	if got := shapes(spans); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spans %v, want %v", got, want)
	}
	if len(spans) == 2 && spans[1].ID <= spans[0].ID {
		t.Errorf("span ids %d then %d: the later span has the smaller id", spans[0].ID, spans[1].ID)
	}
}

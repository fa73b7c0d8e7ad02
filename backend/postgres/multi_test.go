package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
	"github.com/lastseen/lastseen/internal/testutil"
)

var (
	A = presence.Active
	I = presence.Idle
	W = presence.Away
	O = presence.Offline
)

var t0 = storetest.T0

// instance is one Store over a shared database with its own event log.
type instance struct {
	*Store
	events *storetest.Recorder
}

// openInstance opens a Store over dsn as one more lastseend instance would.
func openInstance(t *testing.T, dsn string, now func() time.Time, tune func(*Config)) instance {
	t.Helper()
	rec := &storetest.Recorder{}
	cfg := Config{
		DSN:    dsn,
		Logger: testLogger(t),
		Options: presence.Options{
			Pulse:  presence.DefaultPulse,
			Now:    now,
			Notify: rec.Notify,
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return instance{s, rec}
}

func mustUserDevice(t *testing.T, s presence.Store, handle string) (presence.User, presence.Device) {
	t.Helper()
	ctx := t.Context()
	u, _, err := s.CreateUser(ctx, handle, "User "+handle)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.CreateDevice(ctx, u.ID, "desk")
	if err != nil {
		t.Fatal(err)
	}
	return u, d
}

// eventWait bounds the waits for what must happen between instances. It is
// no latency target (the tests log latency, and check it where it is
// promised): generous, so a loaded machine is slow rather than failing.
const eventWait = 10 * time.Second

func presenceEvents(evs []presence.Event, deviceID int64, st presence.State) []presence.Event {
	var out []presence.Event
	for _, e := range evs {
		if e.Kind == presence.EventPresence && e.Presence.DeviceID == deviceID && e.Presence.Status == st {
			out = append(out, e)
		}
	}
	return out
}

func TestFanOutReachesEveryInstanceWithinASecond(t *testing.T) {
	dsn := newDatabase(t)
	// No safety poll during the test: only the NOTIFY wake-up can deliver.
	noPoll := func(c *Config) { c.PollEvery = time.Hour }
	a := openInstance(t, dsn, time.Now, noPoll)
	b := openInstance(t, dsn, time.Now, noPoll)
	u, d := mustUserDevice(t, a, "fan")

	// The device created on A is known to B (a refresh wake-up).
	testutil.WaitUntil(t, "B learns the device", eventWait, func() bool {
		_, ok := b.cache.device(d.ID)
		return ok
	})

	for i, st := range []presence.State{A, I, A, W} {
		res, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: int64(i + 1), At: time.Now(), State: st}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Device.Status != st {
			t.Fatalf("A says %s after a %s beat", res.Device.Status, st)
		}
		lat := testutil.WaitUntil(t, fmt.Sprintf("B notified of %s", st), eventWait, func() bool {
			return len(presenceEvents(b.events.Events(), d.ID, st)) > 0 && countPresence(b.events.Events(), d.ID) == i+1
		})
		t.Logf("%s reached B after %v", st, lat)
		// B's memory follows the event: its presence read agrees at once.
		got, err := b.DeviceStatus(t.Context(), d.ID)
		if err != nil || got.Status != st {
			t.Errorf("B's status after the event: %v, %v; want %s", got.Status, err, st)
		}
	}
	// Both instances saw the same events, with the same global IDs.
	ea, eb := a.events.Events(), b.events.Events()
	if fmt.Sprint(eventIDs(ea)) != fmt.Sprint(eventIDs(eb)) {
		t.Errorf("A saw events %v, B saw %v", eventIDs(ea), eventIDs(eb))
	}
	for i := 1; i < len(eb); i++ {
		if eb[i].ID <= eb[i-1].ID {
			t.Errorf("B's event IDs do not increase: %v", eventIDs(eb))
		}
	}
	// A user created on B shows in A's presence without waiting for a poll.
	v, _, err := b.CreateUser(t.Context(), "late", "Late")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, "A lists B's new user", eventWait, func() bool {
		all, _ := a.Presence(t.Context())
		return slices.ContainsFunc(all, func(p presence.UserPresence) bool { return p.User.ID == v.ID })
	})
	_ = u
}

func countPresence(evs []presence.Event, deviceID int64) int {
	n := 0
	for _, e := range evs {
		if e.Kind == presence.EventPresence && e.Presence.DeviceID == deviceID {
			n++
		}
	}
	return n
}

func eventIDs(evs []presence.Event) []int64 {
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// beatScript is a deterministic, varied life of one device: runs of one
// state, transitions, gaps longer than the pulse window, offline beats.
func beatScript(n int) []presence.Beat {
	r := rand.New(rand.NewPCG(7, 11))
	states := []presence.State{A, A, A, I, I, W, O}
	at := t0
	st := A
	beats := make([]presence.Beat, n)
	for i := range beats {
		switch x := r.IntN(100); {
		case x < 60:
			at = at.Add(time.Duration(20+r.IntN(15)) * time.Second) // on cadence
		case x < 85:
			at = at.Add(time.Duration(1+r.IntN(10)) * time.Second)
			st = states[r.IntN(len(states))] // a transition
		default:
			at = at.Add(time.Duration(61+r.IntN(300)) * time.Second) // a gap
		}
		beats[i] = presence.Beat{Seq: int64(i + 1), At: at, State: st}
	}
	return beats
}

type spanShape struct {
	State      presence.State
	Start, End time.Duration
	Closed     bool
}

func shapes(spans []presence.Span) []spanShape {
	out := make([]spanShape, len(spans))
	for i, s := range spans {
		out[i] = spanShape{s.State, s.Start.Sub(t0), s.End.Sub(t0), s.Closed}
	}
	return out
}

func allSpans(t *testing.T, s presence.Store, u presence.User) []presence.Span {
	t.Helper()
	spans, err := s.Spans(t.Context(), presence.SpanQuery{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	return spans
}

func TestBeatsOfOneDeviceAcrossInstances(t *testing.T) {
	beats := beatScript(120)
	clock := storetest.NewClock(t0)
	fast := func(c *Config) { c.Tick = 10 * time.Millisecond }

	// The reference: every beat through one instance, in order.
	ref := openInstance(t, newDatabase(t), clock.Now, fast)
	ru, rd := mustUserDevice(t, ref, "one")
	for _, b := range beats {
		clock.Set(b.At)
		if _, err := ref.Ingest(t.Context(), rd.ID, []presence.Beat{b}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := shapes(allSpans(t, ref, ru))
	if len(want) < 10 {
		t.Fatalf("script too tame: %d spans", len(want))
	}

	t.Run("alternating instances give the single instance's spans", func(t *testing.T) {
		dsn := newDatabase(t)
		a := openInstance(t, dsn, clock.Now, fast)
		b := openInstance(t, dsn, clock.Now, fast)
		u, d := mustUserDevice(t, a, "two")
		for i, bt := range beats {
			clock.Set(bt.At)
			s := a
			if i%2 == 1 {
				s = b
			}
			res, err := s.Ingest(t.Context(), d.ID, []presence.Beat{bt}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != 1 || res.LastSeq != bt.Seq {
				t.Fatalf("beat %d on instance %d: %+v", bt.Seq, i%2, res)
			}
		}
		if got := shapes(allSpans(t, b, u)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("spans via A and B alternately:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("every batch sent to both at once counts once", func(t *testing.T) {
		dsn := newDatabase(t)
		a := openInstance(t, dsn, clock.Now, fast)
		b := openInstance(t, dsn, clock.Now, fast)
		u, d := mustUserDevice(t, a, "race")
		accepted, dups := 0, 0
		for k := 0; k < len(beats); k += 4 {
			batch := beats[k:min(k+4, len(beats))]
			clock.Set(batch[len(batch)-1].At)
			var wg sync.WaitGroup
			res := make([]presence.IngestResult, 2)
			errs := make([]error, 2)
			for j, s := range []instance{a, b} {
				wg.Go(func() { res[j], errs[j] = s.Ingest(t.Context(), d.ID, batch, nil) })
			}
			wg.Wait()
			for j := range res {
				if errs[j] != nil {
					t.Fatal(errs[j])
				}
				accepted += res[j].Accepted
				dups += res[j].Duplicates
			}
		}
		if accepted != len(beats) || dups != len(beats) {
			t.Errorf("accepted %d, duplicates %d; want %d each", accepted, dups, len(beats))
		}
		if got := shapes(allSpans(t, a, u)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("spans with racing instances:\n got %v\nwant %v", got, want)
		}
	})
}

func TestListenerReconnectMissesNothing(t *testing.T) {
	dsn := newDatabase(t)
	a := openInstance(t, dsn, time.Now, nil)
	// B polls rarely and reconnects slowly: the events committed while its
	// listener is down can only reach it through the catch-up on reconnect.
	b := openInstance(t, dsn, time.Now, func(c *Config) {
		c.PollEvery = time.Hour
		c.ReconnectMin, c.ReconnectMax = time.Second, time.Second
	})
	_, d := mustUserDevice(t, a, "cut")
	testutil.WaitUntil(t, "B's listener up", eventWait, func() bool { return b.listenerPID.Load() != 0 })
	old := b.listenerPID.Load()

	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed bool
	if err := admin.QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, int32(old)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate listener backend %d: %v, %v", old, killed, err)
	}
	// State changes while B hears nothing.
	for i, st := range []presence.State{A, I, W, A, O} {
		if _, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: int64(i + 1), At: time.Now(), State: st}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := eventIDs(a.events.Events())
	if len(want) < 5 {
		t.Fatalf("A produced only %d events", len(want))
	}
	if pid := b.listenerPID.Load(); pid != old {
		// Not a failure, but this run proved less than it should.
		t.Logf("B reconnected (pid %d) before A's changes were committed", pid)
	}
	testutil.WaitUntil(t, "B catches up after reconnecting", eventWait, func() bool {
		return fmt.Sprint(eventIDs(b.events.Events())) == fmt.Sprint(want)
	})
	if pid := b.listenerPID.Load(); pid == old {
		t.Errorf("listener pid still %d: it did not reconnect", pid)
	}
	if st, err := b.DeviceStatus(t.Context(), d.ID); err != nil || st.Status != O {
		t.Errorf("B's status after catching up: %v, %v; want offline", st.Status, err)
	}
	// And the new connection delivers wake-ups again.
	if _, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: 6, At: time.Now(), State: A}}, nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, "B hears the next change", eventWait, func() bool {
		return fmt.Sprint(eventIDs(b.events.Events())) == fmt.Sprint(eventIDs(a.events.Events()))
	})
}

func TestNoFalseExpiryWhileAnotherInstanceHearsTheDevice(t *testing.T) {
	dsn := newDatabase(t)
	clock := storetest.NewClock(t0)
	// B checks expiry constantly and refreshes rarely: only the check in
	// the database can stop it from expiring the device.
	a := openInstance(t, dsn, clock.Now, nil)
	b := openInstance(t, dsn, clock.Now, func(c *Config) {
		c.Tick = 5 * time.Millisecond
		c.RefreshEvery, c.FullRefreshEvery = time.Hour, time.Hour
	})
	_, d := mustUserDevice(t, a, "steady")
	testutil.WaitUntil(t, "B learns the device", eventWait, func() bool {
		_, ok := b.cache.device(d.ID)
		return ok
	})

	// Ten minutes of beats every 30 s, all to A; the clock jumps a whole
	// interval at a time, far faster than B refreshes.
	var seq int64
	for at := time.Duration(0); at <= 10*time.Minute; at += 30 * time.Second {
		clock.Set(t0.Add(at))
		seq++
		if _, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: seq, At: t0.Add(at), State: A}}, nil); err != nil {
			t.Fatal(err)
		}
		if at == 0 {
			// B hears of the device coming online through A's event; from
			// then on only the check in the database keeps B from calling
			// it offline.
			testutil.WaitUntil(t, "B hears the device come online", eventWait, func() bool {
				return len(presenceEvents(b.events.Events(), d.ID, A)) == 1
			})
		}
		// Just before the next beat: past the window of anything B saw
		// earlier than the previous beat. B checks expiry right then, as
		// its next tick would (and as its ticks go on doing meanwhile).
		clock.Set(t0.Add(at + 29*time.Second))
		if err := b.expire(t.Context()); err != nil {
			t.Fatalf("at +%v B's expiry check: %v", at, err)
		}
		st, err := b.DeviceStatus(t.Context(), d.ID)
		if err != nil || st.Status != A {
			t.Fatalf("at +%v B says %v (%v), want active", at, st.Status, err)
		}
		all, err := b.Presence(t.Context())
		if err != nil || len(all) != 1 || all[0].Status != A {
			t.Fatalf("at +%v B's presence = %+v, %v", at, all, err)
		}
	}
	for _, in := range []instance{a, b} {
		if off := presenceEvents(in.events.Events(), d.ID, O); len(off) != 0 {
			t.Fatalf("false expiry announced: %+v", off)
		}
	}

	// Now the device really goes silent: exactly one expiry, announced by
	// one instance and seen by both.
	clock.Set(t0.Add(10*time.Minute + presence.DefaultPulse.Window() + time.Second))
	for _, in := range []instance{a, b} {
		testutil.WaitUntil(t, "expiry seen", eventWait, func() bool { return len(presenceEvents(in.events.Events(), d.ID, O)) == 1 })
	}
	// Each instance checks once more, as its next tick would: a wrongly
	// repeated announcement is written now. A later change then marks the
	// end of the log: both instances deliver events in the order they were
	// written, so once each has seen it, each has seen every announcement.
	for _, in := range []instance{a, b} {
		if err := in.expire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	actives := len(presenceEvents(a.events.Events(), d.ID, A))
	seq++
	if _, err := a.Ingest(t.Context(), d.ID, []presence.Beat{{Seq: seq, At: clock.Now(), State: A}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, in := range []instance{a, b} {
		testutil.WaitUntil(t, "the marker seen", eventWait, func() bool {
			return len(presenceEvents(in.events.Events(), d.ID, A)) == actives+1
		})
	}
	ea, eb := presenceEvents(a.events.Events(), d.ID, O), presenceEvents(b.events.Events(), d.ID, O)
	if len(ea) != 1 || len(eb) != 1 || ea[0].ID != eb[0].ID {
		t.Fatalf("offline events: A %v, B %v; want the same single one", eventIDs(ea), eventIDs(eb))
	}
	if at := ea[0].At; !at.Equal(t0.Add(10*time.Minute + presence.DefaultPulse.Grace)) {
		t.Errorf("offline at %v, want last beat + grace", at)
	}
}

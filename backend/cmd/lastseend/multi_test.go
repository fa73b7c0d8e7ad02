//go:build unix

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/postgres/pgtest"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

// TestTwoInstancesOnePostgres runs two real lastseend processes on one
// PostgreSQL database, as "Beyond one machine" deploys them behind a load
// balancer without sticky sessions: a change made through one instance
// reaches streams held by the other, a device's beats spread over both give
// the spans one instance gives, killing one instance loses no acknowledged
// beat, and a TTL expiry is announced once while no instance calls a device
// offline that the other still hears.
func TestTwoInstancesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster and lastseend processes")
	}
	clusterDSN, stop, err := pgtest.StartCluster()
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(stop)
	// The load below beats far faster than an agent; the per-token limits
	// are not what is under test.
	t.Setenv("LASTSEEN_DEVICE_RATE", "10000/10000")
	t.Setenv("LASTSEEN_USER_RATE", "10000/10000")

	t.Run("a change on one instance reaches streams on the other", func(t *testing.T) {
		testFanOutAcrossInstances(t, clusterDSN)
	})
	t.Run("alternating instances give one instance's spans", func(t *testing.T) {
		testAlternatingInstances(t, clusterDSN)
	})
	t.Run("killing one instance loses no acknowledged beat", func(t *testing.T) {
		testKillOneInstance(t, clusterDSN)
	})
	t.Run("an expiry is announced once and never while the other instance hears the device", func(t *testing.T) {
		testExpiryAcrossInstances(t, clusterDSN)
	})
}

// pgURL creates a fresh database in the cluster and returns its postgres://
// URL over loopback TCP, the way instances on other machines reach it.
func pgURL(t *testing.T, clusterDSN string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.NewDatabase(t, clusterDSN))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", cfg.User, cfg.Port, cfg.Database)
}

// watcher reads one live stream in the background and keeps every event
// with the moment it was read, so latency is measured where it happens and
// not when the test gets round to looking.
type watcher struct {
	name   string
	stream *httpapi.EventStream
	mu     sync.Mutex
	seen   []seenEvent
	err    error
}

type seenEvent struct {
	httpapi.SSEEvent
	read time.Time
}

func watch(t *testing.T, name, url, userToken string) *watcher {
	t.Helper()
	s, err := httpapi.NewClient(url, userToken, nil).Events(context.Background(), "")
	if err != nil {
		t.Fatalf("open stream on %s: %v", name, err)
	}
	w := &watcher{name: name, stream: s}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1_000_000 {
			ev, err := s.Next()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.seen = append(w.seen, seenEvent{ev, time.Now()})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return w
}

// events returns what was read so far.
func (w *watcher) events() []seenEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

// presenceOf returns the presence events about one device.
func (w *watcher) presenceOf(t *testing.T, deviceID int64) []presenceSeen {
	t.Helper()
	var out []presenceSeen
	for _, ev := range w.events() {
		if ev.Event != "presence" {
			continue
		}
		p, err := ev.Presence()
		if err != nil {
			t.Fatalf("%s: bad presence event %q: %v", w.name, ev.Data, err)
		}
		if p.DeviceID == deviceID {
			out = append(out, presenceSeen{p, ev.ID, ev.read})
		}
	}
	return out
}

type presenceSeen struct {
	httpapi.PresenceEvent
	id   string
	read time.Time
}

// waitPresence waits up to d for the n-th presence event about a device
// and returns it.
func (w *watcher) waitPresence(t *testing.T, deviceID int64, n int, d time.Duration) presenceSeen {
	t.Helper()
	var got presenceSeen
	_, err := testutil.Poll(fmt.Sprintf("%s: presence event %d of device %d", w.name, n, deviceID), d, func() error {
		if evs := w.presenceOf(t, deviceID); len(evs) >= n {
			got = evs[n-1]
			return nil
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Errorf("stream error: %v", w.err)
	})
	if err != nil {
		t.Fatalf("%v; got %+v", err, w.presenceOf(t, deviceID))
	}
	return got
}

// postOne posts one beat of device tok's to url and checks it was accepted.
func postOne(t *testing.T, url, tok string, b presence.Beat) presence.BatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := httpapi.NewClient(url, tok, nil).PostHeartbeats(ctx, presence.Batch{SentAt: time.Now(), Beats: []presence.Beat{b}})
	if err != nil {
		t.Fatalf("post beat %d to %s: %v", b.Seq, url, err)
	}
	if res.Accepted != 1 {
		t.Fatalf("post beat %d to %s: %+v", b.Seq, url, res)
	}
	return res
}

// testFanOutAcrossInstances (1a): a state change posted to one instance is
// read from a dashboard stream held by the other within a second, and both
// streams carry it under the same event id.
func testFanOutAcrossInstances(t *testing.T, clusterDSN string) {
	db := pgURL(t, clusterDSN)
	a, b := startBinary(t, db), startBinary(t, db)
	userTok, tokens, ids := fleetOf(t, db, "ann", 1)
	dev, id := tokens[0], ids[tokens[0]]
	wa, wb := watch(t, "A", a.url, userTok), watch(t, "B", b.url, userTok)

	type hop struct {
		via, far *proc
		farW     *watcher
		names    string
	}
	ab := hop{a, b, wb, "A→B"}
	ba := hop{b, a, wa, "B→A"}
	var worst time.Duration
	for i, st := range []presence.State{presence.Active, presence.Idle, presence.Away, presence.Active, presence.Idle, presence.Active} {
		h := ab
		if i%2 == 1 {
			h = ba
		}
		sent := time.Now()
		postOne(t, h.via.url, dev, presence.Beat{Seq: int64(i + 1), At: sent, State: st})
		got := h.farW.waitPresence(t, id, i+1, eventWait)
		lat := got.read.Sub(sent)
		if got.Status != st {
			t.Fatalf("%s: change %d read as %s, want %s", h.names, i+1, got.Status, st)
		}
		t.Logf("%-7s posted %s, read on the other instance's stream after %v", st, h.names, lat.Round(10*time.Microsecond))
		worst = max(worst, lat)
		if lat > time.Second {
			t.Errorf("%s: %s took %v to reach the other instance, want within 1s", h.names, st, lat)
		}
	}
	t.Logf("slowest cross-instance delivery: %v", worst.Round(10*time.Microsecond))

	// Both instances delivered the same events, in the same order, under
	// the same ids: a stream can resume on either one. The instance a beat
	// was posted to may deliver it after the other one does (when events of
	// the other instance came between, it reads them all from the table
	// first, in id order), so wait for the last on both streams.
	wa.waitPresence(t, id, 6, eventWait)
	wb.waitPresence(t, id, 6, eventWait)
	pa, pb := wa.presenceOf(t, id), wb.presenceOf(t, id)
	if len(pa) != len(pb) {
		t.Fatalf("A's stream has %d presence events, B's %d", len(pa), len(pb))
	}
	for i := range pa {
		if pa[i].id != pb[i].id || pa[i].Status != pb[i].Status {
			t.Errorf("event %d: A has id %s %s, B has id %s %s", i, pa[i].id, pa[i].Status, pb[i].id, pb[i].Status)
		}
	}
}

// scriptBatches is a deterministic life of one device with the default
// pulse (30 s + 30 s) in the past: runs of one state on cadence,
// transitions, gaps longer than the window, offline beats, sent in batches
// of one to three beats.
func scriptBatches(start time.Time) [][]presence.Beat {
	r := rand.New(rand.NewPCG(5, 9))
	states := []presence.State{presence.Active, presence.Active, presence.Active, presence.Idle, presence.Idle, presence.Away, presence.Offline}
	at, st := start, presence.Active
	var out [][]presence.Beat
	seq := int64(0)
	for len(out) < 60 {
		batch := make([]presence.Beat, 1+r.IntN(3))
		for i := range batch {
			switch x := r.IntN(100); {
			case x < 60:
				at = at.Add(time.Duration(20+r.IntN(15)) * time.Second)
			case x < 85:
				at = at.Add(time.Duration(1+r.IntN(10)) * time.Second)
				st = states[r.IntN(len(states))]
			default:
				at = at.Add(time.Duration(61+r.IntN(300)) * time.Second)
			}
			seq++
			batch[i] = presence.Beat{Seq: seq, At: at, State: st}
		}
		out = append(out, batch)
	}
	return out
}

// mergeAll is the spans presence.Merge makes of beats in seq order.
func mergeAll(beats []presence.Beat, window time.Duration) []presence.Span {
	var spans []presence.Span
	var tail *presence.Span
	for _, b := range beats {
		o := presence.Merge(tail, b, window)
		if o.Stale {
			continue
		}
		if o.Closed != nil {
			spans[len(spans)-1] = *o.Closed
		}
		switch {
		case o.Started:
			spans = append(spans, *o.Tail)
		case o.Tail != nil:
			spans[len(spans)-1] = *o.Tail
		}
		tail = o.Tail
	}
	return spans
}

// spanLine is a span as compared: what a user sees of it.
type spanLine struct {
	State      presence.State
	Start, End time.Time
}

func (s spanLine) String() string {
	return fmt.Sprintf("%s %s..%s", s.State, s.Start.Format(time.TimeOnly), s.End.Format(time.TimeOnly))
}

func sessionsOf(t *testing.T, url, userTok string, deviceID int64, from time.Time) []spanLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := httpapi.NewClient(url, userTok, nil).Sessions(ctx, httpapi.SessionsQuery{
		From: from, To: time.Now().Add(time.Hour), DeviceID: deviceID, State: "all",
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]spanLine, len(res.Sessions))
	for i, s := range res.Sessions {
		if want := int64(s.End.Sub(s.Start) / time.Second); s.DurationS != want {
			t.Errorf("session %d: duration_s %d, but end − start is %ds", s.ID, s.DurationS, want)
		}
		out[i] = spanLine{s.State, s.Start.UTC(), s.End.UTC()}
	}
	return out
}

// testAlternatingInstances (1b): one device's batches go to A and B in
// turn, with some batches re-sent to the other instance (a retry after a
// lost answer); the spans are exactly those of the same script sent to a
// single instance on its own database, and those presence.Merge computes.
func testAlternatingInstances(t *testing.T, clusterDSN string) {
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	batches := scriptBatches(start)

	type run struct {
		name     string
		targets  []*proc // batch i goes to targets[i%len]
		userTok  string
		dev      string
		id       int64
		acc, dup int
	}
	db := pgURL(t, clusterDSN)
	a, b := startBinary(t, db), startBinary(t, db)
	single := pgURL(t, clusterDSN)
	c := startBinary(t, single)
	two := &run{name: "A and B alternately", targets: []*proc{a, b}}
	one := &run{name: "one instance", targets: []*proc{c}}
	for _, r := range []struct {
		run *run
		db  string
	}{{two, db}, {one, single}} {
		var toks []string
		var ids map[string]int64
		r.run.userTok, toks, ids = fleetOf(t, r.db, "bo", 1)
		r.run.dev, r.run.id = toks[0], ids[toks[0]]
	}

	ctx := context.Background()
	for _, r := range []*run{two, one} {
		for i, batch := range batches {
			sends := []*proc{r.targets[i%len(r.targets)]}
			if i%7 == 3 { // re-sent to the other instance: all duplicates
				sends = append(sends, r.targets[(i+1)%len(r.targets)])
			}
			for k, p := range sends {
				res, err := httpapi.NewClient(p.url, r.dev, nil).PostHeartbeats(ctx, presence.Batch{SentAt: time.Now(), Beats: batch})
				if err != nil {
					t.Fatalf("%s: batch %d: %v", r.name, i, err)
				}
				last := batch[len(batch)-1].Seq
				if res.LastSeq != last || len(res.Rejected) > 0 || (k == 0 && res.Accepted != len(batch)) || (k == 1 && res.Duplicates != len(batch)) {
					t.Fatalf("%s: batch %d (send %d) answered %+v", r.name, i, k+1, res)
				}
				r.acc += res.Accepted
				r.dup += res.Duplicates
			}
		}
	}
	if two.acc != one.acc || two.dup != one.dup {
		t.Errorf("accepted/duplicates: two instances %d/%d, one instance %d/%d", two.acc, two.dup, one.acc, one.dup)
	}

	var beats []presence.Beat
	for _, b := range batches {
		beats = append(beats, b...)
	}
	var want []spanLine
	for _, s := range mergeAll(beats, presence.DefaultPulse.Window()) {
		want = append(want, spanLine{s.State, s.Start, s.End})
	}
	if len(want) < 10 {
		t.Fatalf("script too tame: %d spans", len(want))
	}
	from := start.Add(-time.Hour)
	gotOne := sessionsOf(t, c.url, one.userTok, one.id, from)
	// Read through both instances: each answers from the shared database.
	gotA := sessionsOf(t, a.url, two.userTok, two.id, from)
	gotB := sessionsOf(t, b.url, two.userTok, two.id, from)
	for _, got := range []struct {
		name  string
		spans []spanLine
	}{{"one instance", gotOne}, {"A and B alternately, read on A", gotA}, {"A and B alternately, read on B", gotB}} {
		if fmt.Sprint(got.spans) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v (presence.Merge)", got.name, got.spans, want)
		}
	}
	t.Logf("%d beats in %d batches (%d re-sent) → %d spans, identical on one instance and on two", len(beats), len(batches), two.dup, len(want))
}

// ackLog is what the load of testKillOneInstance learned, per device.
type ackLog struct {
	mu sync.Mutex
	// beats are every beat a 200 acknowledged, in seq order.
	beats map[string][]presence.Beat
	// accepted and retriedDups count answers: a beat must be accepted once,
	// or reported duplicate only on a retry of a batch whose first answer
	// was lost (the instance died after committing it).
	accepted, retriedDups, firstDups int
	retries, failed                  int
	perInstance                      [2]int
	firstErr                         error
}

// beatAcross keeps one device beating in batches of five, alternating
// between the instances with no stickiness, as behind a round-robin
// balancer; a batch that gets no answer is re-sent, unchanged, to the next
// instance until one acknowledges it, as an agent re-sends its outbox. It
// stops between batches once ctx ends, so every batch it sent is answered.
func beatAcross(ctx context.Context, urls []string, tok string, turn int, log *ackLog) {
	clients := make([]*httpapi.Client, len(urls))
	for i, u := range urls {
		clients[i] = httpapi.NewClient(u, tok, &http.Client{Timeout: 5 * time.Second})
	}
	var seq int64
	for n := 0; n < 100_000 && ctx.Err() == nil; n++ {
		now := time.Now()
		batch := presence.Batch{SentAt: now}
		for i := range 5 {
			seq++
			// Microseconds apart: the database's precision, and far less
			// than a round trip, so the next batch never starts before it.
			batch.Beats = append(batch.Beats, presence.Beat{Seq: seq, At: now.Add(time.Duration(i) * time.Microsecond), State: presence.Active})
		}
		acked := false
		for attempt := 0; attempt < 50 && !acked; attempt++ {
			k := turn % len(urls)
			turn++
			res, err := clients[k].PostHeartbeats(context.Background(), batch)
			log.mu.Lock()
			switch {
			case err != nil:
				log.retries++
			case res.Accepted+res.Duplicates != len(batch.Beats) || res.LastSeq < seq:
				log.failed++
				if log.firstErr == nil {
					log.firstErr = fmt.Errorf("device %s…: batch up to %d answered %+v", tok[:12], seq, res)
				}
			default:
				acked = true
				log.beats[tok] = append(log.beats[tok], batch.Beats...)
				log.accepted += res.Accepted
				if attempt == 0 {
					log.firstDups += res.Duplicates
				} else {
					log.retriedDups += res.Duplicates
				}
				log.perInstance[k]++
			}
			log.mu.Unlock()
			if !acked && err != nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if !acked {
			log.mu.Lock()
			log.failed++
			if log.firstErr == nil {
				log.firstErr = fmt.Errorf("device %s…: batch up to %d never acknowledged", tok[:12], seq)
			}
			log.mu.Unlock()
			return
		}
	}
}

// testKillOneInstance (1c): many devices beat against both instances; A is
// SIGKILLed mid-run and the load goes on against B. Afterwards the database
// holds every acknowledged beat: each device's last_seq reaches its last
// acknowledged seq, every beat was applied exactly once, and the spans are
// those presence.Merge makes of the acknowledged beats.
func testKillOneInstance(t *testing.T, clusterDSN string) {
	db := pgURL(t, clusterDSN)
	a, b := startBinary(t, db), startBinary(t, db)
	const devices = 24
	userTok, tokens, ids := fleetOf(t, db, "cy", devices)

	log := &ackLog{beats: map[string][]presence.Beat{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() { beatAcross(ctx, []string{a.url, b.url}, tok, i, log) })
	}
	count := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.perInstance[0] + log.perInstance[1]
	}
	waitFor := func(n int) {
		t.Helper()
		testutil.WaitUntil(t, fmt.Sprintf("%d batches to be acknowledged", n), 60*time.Second, func() bool { return count() >= n })
	}
	waitFor(300)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 10*time.Second)
	atKill := count()
	log.mu.Lock()
	onA := log.perInstance[0]
	log.mu.Unlock()
	waitFor(atKill + 300)
	cancel()
	wg.Wait()

	log.mu.Lock()
	defer log.mu.Unlock()
	t.Logf("%d batches acknowledged (%d by A before its SIGKILL at batch %d, %d by B), %d attempts without an answer re-sent, %d beats answered as duplicates on a re-send",
		log.perInstance[0]+log.perInstance[1], onA, atKill, log.perInstance[1], log.retries, log.retriedDups)
	if log.failed > 0 {
		t.Fatalf("%d batches failed; first: %v", log.failed, log.firstErr)
	}
	if log.firstDups > 0 {
		t.Errorf("%d beats sent for the first time were answered as duplicates", log.firstDups)
	}
	if log.retries == 0 {
		t.Log("no request was cut off by the kill; the run proved less than it could")
	}

	// The database's own word, read directly.
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT id, last_seq FROM devices`)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := map[int64]int64{}
	var idv, seqv int64
	if _, err := pgx.ForEachRow(rows, []any{&idv, &seqv}, func() error { lastSeq[idv] = seqv; return nil }); err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, tok := range tokens {
		beats := log.beats[tok]
		if len(beats) == 0 {
			t.Errorf("device %d: no beat acknowledged", ids[tok])
			continue
		}
		ackedSeq := beats[len(beats)-1].Seq
		total += ackedSeq
		if got := lastSeq[ids[tok]]; got < ackedSeq {
			t.Errorf("device %d: last_seq %d in the database, but %d was acknowledged", ids[tok], got, ackedSeq)
		}
		var want []spanLine
		for _, s := range mergeAll(beats, presence.DefaultPulse.Window()) {
			want = append(want, spanLine{s.State, s.Start.Truncate(time.Microsecond), s.End.Truncate(time.Microsecond)})
		}
		got := sessionsOf(t, b.url, userTok, ids[tok], beats[0].At.Add(-time.Minute))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("device %d: spans on B %v, want %v (the acknowledged beats)", ids[tok], got, want)
		}
	}
	// Every beat of every device was applied once: accepted by one
	// instance, or (its answer lost with A) reported as a duplicate on the
	// re-send to B.
	if got := int64(log.accepted + log.retriedDups); got != total {
		t.Errorf("accepted %d + duplicates on re-send %d = %d, want every beat once: %d", log.accepted, log.retriedDups, got, total)
	}
}

// testExpiryAcrossInstances (1d): with a 1 s + 1 s pulse, a device beats
// only to A while B, which refreshes its memory far less often than that,
// is read constantly: neither instance ever calls the device offline. When
// the device goes silent, exactly one offline event is written (by
// whichever instance won the check in the database) and both streams carry
// it once, at last beat + grace.
func testExpiryAcrossInstances(t *testing.T, clusterDSN string) {
	const interval, grace = time.Second, time.Second
	t.Setenv("LASTSEEN_INTERVAL", interval.String())
	t.Setenv("LASTSEEN_GRACE", grace.String())
	db := pgURL(t, clusterDSN)
	a, b := startBinary(t, db), startBinary(t, db)
	userTok, tokens, ids := fleetOf(t, db, "dee", 1)
	dev, id := tokens[0], ids[tokens[0]]
	wa, wb := watch(t, "A", a.url, userTok), watch(t, "B", b.url, userTok)

	seq := int64(1)
	postOne(t, a.url, dev, presence.Beat{Seq: seq, At: time.Now(), State: presence.Active})
	wb.waitPresence(t, id, 1, eventWait)

	// Beats to A only, four a second, for over two pulse windows past
	// B's memory; meanwhile B's and A's presence are read all the time.
	ctx, cancel := context.WithCancel(context.Background())
	type wrong struct {
		where string
		at    time.Time
		what  string
	}
	var (
		mu     sync.Mutex
		wrongs []wrong
		reads  int
	)
	var readers sync.WaitGroup
	for _, p := range []struct {
		name string
		url  string
	}{{"A", a.url}, {"B", b.url}} {
		readers.Go(func() {
			c := httpapi.NewClient(p.url, userTok, nil)
			for n := 0; n < 10_000 && ctx.Err() == nil; n++ {
				rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
				pr, err := c.Presence(rctx)
				rcancel()
				mu.Lock()
				switch {
				case ctx.Err() != nil:
				case err != nil:
					wrongs = append(wrongs, wrong{p.name, time.Now(), err.Error()})
				default:
					reads++
					for _, u := range pr.Users {
						for _, d := range u.Devices {
							if d.ID == id && d.Status != presence.Active {
								wrongs = append(wrongs, wrong{p.name, time.Now(), fmt.Sprintf("device %s, user %s", d.Status, u.Status)})
							}
						}
					}
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	var lastAt time.Time
	for end := time.Now().Add(3*(interval+grace) + time.Second); time.Now().Before(end); {
		seq++
		lastAt = time.Now()
		postOne(t, a.url, dev, presence.Beat{Seq: seq, At: lastAt, State: presence.Active})
		time.Sleep(250 * time.Millisecond)
	}
	cancel()
	readers.Wait()
	mu.Lock()
	t.Logf("%d beats to A over %v; %d presence reads on A and B while it beat", seq, (3*(interval+grace) + time.Second), reads)
	for _, w := range wrongs {
		t.Errorf("instance %s at %s: %s while the device beat", w.where, w.at.Format(time.StampMicro), w.what)
	}
	mu.Unlock()
	for _, w := range []*watcher{wa, wb} {
		if evs := w.presenceOf(t, id); len(evs) != 1 {
			t.Errorf("%s's stream, while the device beat: %d presence events %+v, want only the first active", w.name, len(evs), evs)
		}
	}

	// Silence: the expiry comes once the window has passed, within a tick.
	ea := wa.waitPresence(t, id, 2, interval+grace+eventWait)
	eb := wb.waitPresence(t, id, 2, eventWait)
	t.Logf("offline read on A %v and on B %v after the last beat", ea.read.Sub(lastAt).Round(time.Millisecond), eb.read.Sub(lastAt).Round(time.Millisecond))
	for _, e := range []presenceSeen{ea, eb} {
		if e.Status != presence.Offline || e.UserStatus != presence.Offline {
			t.Errorf("expiry event %+v, want device and user offline", e)
		}
		// The database keeps microseconds; the event says last beat + grace.
		if d := e.At.Sub(lastAt.Add(grace)); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("offline at %v, want last beat + grace = %v", e.At, lastAt.Add(grace))
		}
	}
	if ea.id != eb.id {
		t.Errorf("A and B read the expiry under ids %s and %s: two announcements", ea.id, eb.id)
	}
	// A presence read makes an instance settle, before it answers, the
	// expiry check its ticks make: after one read on each, an instance that
	// would announce the expiry again has written that announcement.
	for _, p := range []*proc{a, b} {
		pr, err := httpapi.NewClient(p.url, userTok, nil).Presence(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(pr.Users) != 1 || pr.Users[0].Status != presence.Offline {
			t.Errorf("presence on %s after the expiry: %+v", p.url, pr)
		}
	}
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE payload->'event'->>'kind' = 'presence'
		  AND (payload->'event'->'presence'->>'device_id')::bigint = $1
		  AND payload->'event'->'presence'->>'status' = 'offline'`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d offline events for the device in the events table, want exactly 1", n)
	}
	// A marker: the device beats once more, through B. Events reach a
	// stream in the order they were written, so a second announcement of
	// the expiry would sit between the offline and this one.
	seq++
	postOne(t, b.url, dev, presence.Beat{Seq: seq, At: time.Now(), State: presence.Active})
	for _, w := range []*watcher{wa, wb} {
		w.waitPresence(t, id, 3, eventWait)
		if evs := w.presenceOf(t, id); len(evs) < 3 || evs[1].Status != presence.Offline || evs[2].Status != presence.Active {
			t.Errorf("%s's stream: presence events %+v, want active, one offline, then active again", w.name, evs)
		}
	}
}

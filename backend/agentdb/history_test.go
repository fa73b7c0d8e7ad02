package agentdb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

func local(t *testing.T, db *agentdb.DB, at time.Time, s presence.State) {
	t.Helper()
	b, err := db.Record(context.Background(), agentdb.Entry{At: at, Local: s})
	if err != nil {
		t.Fatalf("Record local %s at %v: %v", s, at, err)
	}
	if b.Seq != 0 {
		t.Fatalf("a local-only entry queued beat %d", b.Seq)
	}
}

type span struct {
	state      presence.State
	start, end time.Duration // from t0
	closed     bool
}

func spansOf(ss []presence.Span) []span {
	var out []span
	for _, s := range ss {
		out = append(out, span{s.State, s.Start.Sub(t0), s.End.Sub(t0), s.Closed})
	}
	return out
}

func TestHistoryAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	m := time.Minute
	for i := range 5 { // 0..2m active
		local(t, db, t0.Add(time.Duration(i)*30*time.Second), presence.Active)
	}
	db.Close()

	// Restarted within the window: the open span continues.
	db = open(t, path, agentdb.Options{})
	local(t, db, t0.Add(2*m+30*time.Second), presence.Active)
	local(t, db, t0.Add(3*m), presence.Idle)
	local(t, db, t0.Add(4*m), presence.Idle)
	local(t, db, t0.Add(5*m), presence.Offline) // quit
	local(t, db, t0.Add(5*m+30*time.Second), presence.Offline)
	db.Close()

	// Restarted much later: a new span.
	db = open(t, path, agentdb.Options{})
	local(t, db, t0.Add(60*m), presence.Away)
	local(t, db, t0.Add(61*m), presence.Away)
	// A crash: no offline beat, then a beat long after; the gap closes the
	// away span at its last beat.
	local(t, db, t0.Add(90*m), presence.Active)
	local(t, db, t0.Add(90*m+30*time.Second), presence.Active)
	// Invisible or not, the outbox is untouched by history.
	if db.Depth() != 0 || db.LastSeq() != 0 {
		t.Fatalf("history wrote to the outbox: depth %d", db.Depth())
	}

	got, err := db.History(ctx, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []span{
		{presence.Active, 0, 3 * m, true},
		{presence.Idle, 3 * m, 5 * m, true},
		{presence.Away, 60 * m, 61 * m, true},
		{presence.Active, 90 * m, 90*m + 30*time.Second, false},
	}
	if g := spansOf(got); !equalSpans(g, want) {
		t.Fatalf("history\n got %+v\nwant %+v", g, want)
	}
	// Range filter: overlapping spans only.
	got, _ = db.History(ctx, t0.Add(4*m), t0.Add(60*m))
	if g := spansOf(got); !equalSpans(g, want[1:2]) {
		t.Fatalf("history [4m, 60m) = %+v", g)
	}
	if _, err := db.History(ctx, t0.Add(time.Hour), t0); presence.ErrorCode(err) != presence.EINVALID {
		t.Fatalf("inverted range: %v", err)
	}

	act, err := db.ActiveToday(ctx, t0.Add(2*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if act != 3*m+30*time.Second {
		t.Fatalf("ActiveToday = %v", act)
	}
	// Tomorrow has nothing yet.
	if act, _ := db.ActiveToday(ctx, t0.Add(24*time.Hour), time.UTC); act != 0 {
		t.Fatalf("ActiveToday tomorrow = %v", act)
	}
}

func equalSpans(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRecordWritesBothInOneBeat(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	// Appear online while really idle: the outbox says active, history idle.
	b, err := db.Record(ctx, agentdb.Entry{At: t0, IdleS: 400, Local: presence.Idle, Send: presence.Active})
	if err != nil {
		t.Fatal(err)
	}
	if b.Seq != 1 || b.State != presence.Active || b.IdleS != 400 {
		t.Fatalf("queued %+v", b)
	}
	h, _ := db.History(ctx, t0, t0.Add(time.Hour))
	if len(h) != 1 || h[0].State != presence.Idle {
		t.Fatalf("history %+v", h)
	}
	if db.Commits() != 1 {
		t.Fatalf("one beat took %d commits", db.Commits())
	}
}

func TestHistoryPulseFollowsInterval(t *testing.T) {
	db := open(t, "", agentdb.Options{})
	if err := db.SetPulse(presence.Pulse{Interval: 5 * time.Minute, Grace: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	local(t, db, t0, presence.Active)
	local(t, db, t0.Add(9*time.Minute), presence.Active) // within a 10 min window
	h, _ := db.History(context.Background(), t0, t0.Add(time.Hour))
	if len(h) != 1 || h[0].End.Sub(h[0].Start) != 9*time.Minute {
		t.Fatalf("history %+v", h)
	}
	if err := db.SetPulse(presence.Pulse{}); err == nil {
		t.Fatal("zero pulse accepted")
	}
}

func TestHistoryIgnoresClockSteppingBack(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	local(t, db, t0, presence.Active)
	local(t, db, t0.Add(time.Minute), presence.Active)
	// The wall clock steps back 30 s: the beat cannot be placed in history,
	// but its outbox part is still queued (the service judges it).
	b, err := db.Record(ctx, agentdb.Entry{At: t0.Add(30 * time.Second), Local: presence.Idle, Send: presence.Idle})
	if err != nil {
		t.Fatal(err)
	}
	if b.Seq != 1 {
		t.Fatalf("queued %+v", b)
	}
	local(t, db, t0.Add(90*time.Second), presence.Active)
	h, _ := db.History(ctx, t0, t0.Add(time.Hour))
	if g := spansOf(h); !equalSpans(g, []span{{presence.Active, 0, 90 * time.Second, false}}) {
		t.Fatalf("history %+v", g)
	}
}

// The local history follows the service's fold: a beat older than the last
// one (the clock stepped back after a quit) opens no span in the past,
// before and after a restart alike.
func TestHistoryIgnoresStaleBeats(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	s := time.Second
	local(t, db, t0, presence.Active)
	local(t, db, t0.Add(10*s), presence.Offline)
	local(t, db, t0.Add(5*s), presence.Active) // stale: before the offline beat
	want := []span{{presence.Active, 0, 10 * s, true}}
	got, err := db.History(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if g := spansOf(got); len(g) != len(want) || g[0] != want[0] {
		t.Fatalf("history %+v, want %+v", g, want)
	}
	db.Close()

	db = open(t, path, agentdb.Options{})
	local(t, db, t0.Add(8*s), presence.Idle) // still before the last known beat
	local(t, db, t0.Add(20*s), presence.Idle)
	got, err = db.History(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, span{presence.Idle, 20 * s, 20 * s, false})
	if g := spansOf(got); len(g) != 2 || g[0] != want[0] || g[1] != want[1] {
		t.Fatalf("history after restart %+v, want %+v", g, want)
	}
}

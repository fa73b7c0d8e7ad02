package agentdb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// A queued beat keeps its edge and its reason until the service has it: what
// Record is given is what Outbox hands the sender, across a reopen too.
func TestOutboxKeepsSinceAndWhy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	entries := []agentdb.Entry{
		{At: t0, Send: presence.Active},
		{At: t0.Add(30 * time.Second), Send: presence.Idle, SendSince: t0.Add(8 * time.Second)},
		{At: t0.Add(40 * time.Second), Send: presence.Active, SendSince: t0.Add(39 * time.Second), SendWhy: presence.ByCall},
		{At: t0.Add(50 * time.Second), Send: presence.Active, SendWhy: presence.ByMedia},
		{At: t0.Add(60 * time.Second), Send: presence.Active, SendWhy: presence.ByInput},
		{At: t0.Add(70 * time.Second), Send: presence.Offline, SendSince: t0.Add(70 * time.Second)},
	}
	want := []presence.Beat{
		{Seq: 1, At: t0, State: presence.Active},
		{Seq: 2, At: t0.Add(30 * time.Second), State: presence.Idle, Since: t0.Add(8 * time.Second)},
		{Seq: 3, At: t0.Add(40 * time.Second), State: presence.Active, Since: t0.Add(39 * time.Second), Why: presence.ByCall},
		{Seq: 4, At: t0.Add(50 * time.Second), State: presence.Active, Why: presence.ByMedia},
		// Input is what no reason means, so it is not spelled out on the wire;
		// a since equal to the beat's own time is the beat's time.
		{Seq: 5, At: t0.Add(60 * time.Second), State: presence.Active},
		{Seq: 6, At: t0.Add(70 * time.Second), State: presence.Offline},
	}
	for i, e := range entries {
		b, err := db.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBeat(b, want[i]) {
			t.Errorf("Record %d = %+v, want %+v", i, b, want[i])
		}
	}
	for round := range 2 {
		got := outbox(t, db)
		if len(got) != len(want) {
			t.Fatalf("round %d: outbox %+v", round, got)
		}
		for i := range got {
			if !sameBeat(got[i], want[i]) {
				t.Errorf("round %d: outbox[%d] = %+v, want %+v", round, i, got[i], want[i])
			}
		}
		db.Close()
		db = open(t, path, agentdb.Options{})
	}
}

func sameBeat(a, b presence.Beat) bool {
	return a.Seq == b.Seq && a.At.Equal(b.At) && a.State == b.State && a.Since.Equal(b.Since) && a.Why == b.Why && a.IdleS == b.IdleS
}

func TestRecordRejectsBadEdges(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	for _, e := range []agentdb.Entry{
		{At: t0, Send: presence.Idle, SendSince: t0.Add(time.Second)},
		{At: t0, Local: presence.Idle, Since: t0.Add(time.Second)},
		{At: t0, Send: presence.Active, SendWhy: "typing"},
		{At: t0, Local: presence.Active, Why: "typing"},
	} {
		if _, err := db.Record(ctx, e); presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("Record(%+v) = %v, want invalid", e, err)
		}
	}
	if d := db.Depth(); d != 0 {
		t.Errorf("a refused entry queued %d beats", d)
	}
}

// An agent database from before 0002 (no since_ns, no why) opens with its
// queue intact; its beats come out with no edge and no reason, and new
// beats keep theirs.
func TestPre0002DatabaseKeepsItsRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	schema, err := os.ReadFile(filepath.Join("migrations", "0001_init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns INTEGER NOT NULL)`,
		string(schema),
		`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 42)`,
		`INSERT INTO outbox (seq, at_ns, state, idle_s) VALUES (1, ` + ns(t0) + `, 'active', 0), (2, ` + ns(t0.Add(time.Minute)) + `, 'idle', 300)`,
		`UPDATE counters SET value = 2 WHERE name = 'last_seq'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("old layout: %v", err)
		}
	}
	raw.Close()

	db := open(t, path, agentdb.Options{})
	got := outbox(t, db)
	want := []presence.Beat{
		{Seq: 1, At: t0, State: presence.Active},
		{Seq: 2, At: t0.Add(time.Minute), State: presence.Idle, IdleS: 300},
	}
	if len(got) != 2 || !sameBeat(got[0], want[0]) || !sameBeat(got[1], want[1]) {
		t.Fatalf("old rows = %+v, want %+v", got, want)
	}
	b, err := db.Record(ctx, agentdb.Entry{At: t0.Add(2 * time.Minute), Send: presence.Active,
		SendSince: t0.Add(110 * time.Second), SendWhy: presence.ByCall})
	if err != nil {
		t.Fatal(err)
	}
	if b.Seq != 3 {
		t.Fatalf("new beat seq %d, want 3", b.Seq)
	}
	if got := outbox(t, db)[2]; !got.Since.Equal(t0.Add(110*time.Second)) || got.Why != presence.ByCall {
		t.Fatalf("new beat after the migration = %+v", got)
	}
}

func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// Local history takes its edges from the beats: an active span ends at the
// last input and the idle span starts there; a call after typing starts a
// span of its own at the last input; a sleep ends the span when it began.
func TestHistoryGetsTheEdges(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{})
	A, I := presence.Active, presence.Idle
	for _, e := range []agentdb.Entry{
		{At: t0, Local: A},
		{At: t0.Add(30 * time.Second), Local: A},
		{At: t0.Add(48 * time.Second), Local: I, Since: t0.Add(38 * time.Second)},
		{At: t0.Add(60 * time.Second), Local: A, Since: t0.Add(59 * time.Second)},
		{At: t0.Add(90 * time.Second), Local: A, Since: t0.Add(70 * time.Second), Why: presence.ByCall},
		{At: t0.Add(120 * time.Second), Local: A, Why: presence.ByCall},
		{At: t0.Add(125 * time.Second), Local: presence.Offline, Since: t0.Add(121 * time.Second)},
	} {
		if _, err := db.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h, err := db.History(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []span{
		{A, 0, 38 * time.Second, true},
		{I, 38 * time.Second, 59 * time.Second, true},
		{A, 59 * time.Second, 70 * time.Second, true},
		{A, 70 * time.Second, 121 * time.Second, true},
	}
	if got := spansOf(h); !equalSpans(got, want) {
		t.Fatalf("history %+v\nwant %+v", got, want)
	}
	today, err := db.ActiveToday(ctx, t0.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if want := 38*time.Second + 62*time.Second; today != want {
		t.Fatalf("active today %v, want %v (input and call, never the threshold's tail)", today, want)
	}
}

// Compaction never thins a beat that carries an edge or a change of reason.
func TestCompactionKeepsEdgesAndReasons(t *testing.T) {
	ctx := context.Background()
	db := open(t, "", agentdb.Options{MaxOutbox: 10})
	var kept []presence.Beat
	at := t0
	rec := func(e agentdb.Entry) {
		t.Helper()
		e.At = at
		b, err := db.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, b)
		at = at.Add(5 * time.Second)
	}
	for range 4 {
		rec(agentdb.Entry{Send: presence.Active})
	}
	rec(agentdb.Entry{Send: presence.Active, SendWhy: presence.ByCall, SendSince: at.Add(-3 * time.Second)})
	for range 3 {
		rec(agentdb.Entry{Send: presence.Active, SendWhy: presence.ByCall})
	}
	rec(agentdb.Entry{Send: presence.Active, SendSince: at.Add(-time.Second)})
	rec(agentdb.Entry{Send: presence.Active}) // the 10th: the bound compacts
	rec(agentdb.Entry{Send: presence.Active})
	got := outbox(t, db)
	if len(got) >= len(kept) {
		t.Fatalf("nothing thinned: %d of %d kept", len(got), len(kept))
	}
	has := func(seq int64) bool {
		for _, b := range got {
			if b.Seq == seq {
				return true
			}
		}
		return false
	}
	for _, seq := range []int64{4, 5, 8, 9} { // each side of each change
		if !has(seq) {
			t.Errorf("beat %d thinned; outbox %v", seq, seqs(got))
		}
	}
	for _, b := range got {
		if b.Seq == 5 && (b.Why != presence.ByCall || b.Since.IsZero()) {
			t.Errorf("edge beat lost its since or why: %+v", b)
		}
	}
}

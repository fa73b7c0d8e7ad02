package agentdb_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// week is a plausible week of one device's beats: mornings and afternoons of
// work at a jittered 30 s cadence with idle stretches, screen locks, a lunch
// sleep (offline, then silence), bursts of extra beats from rapid state
// re-samples, and nights off.
func week(seed uint64) []presence.Beat {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []presence.Beat
	at := t0
	beat := func(s presence.State) {
		out = append(out, presence.Beat{Seq: int64(len(out) + 1), At: at, State: s, IdleS: r.Int64N(60)})
	}
	run := func(s presence.State, d time.Duration, every time.Duration) {
		end := at.Add(d)
		for at.Before(end) {
			beat(s)
			j := time.Duration((r.Float64()*0.2 - 0.1) * float64(every))
			at = at.Add(every + j)
		}
	}
	for day := range 7 {
		at = t0.Add(time.Duration(day) * 24 * time.Hour)
		run(presence.Active, 2*time.Hour, 30*time.Second)
		run(presence.Idle, 20*time.Minute, 30*time.Second)
		run(presence.Active, 90*time.Minute, 5*time.Second) // re-samples: far more than needed
		run(presence.Away, 15*time.Minute, 30*time.Second)
		beat(presence.Offline) // lunch: sleep
		at = at.Add(45 * time.Minute)
		run(presence.Active, 3*time.Hour, 30*time.Second)
		// a missed beat (network stall) longer than the window splits a span
		at = at.Add(2 * time.Minute)
		run(presence.Active, time.Hour, 30*time.Second)
		run(presence.Idle, 10*time.Minute, 30*time.Second)
		beat(presence.Offline)
		beat(presence.Offline) // quit twice (restart at once)
	}
	return out
}

// replay builds the spans the service would build from beats in seq order.
func replay(beats []presence.Beat, window time.Duration) []presence.Span {
	var (
		tail  *presence.Span
		spans []presence.Span
	)
	for _, b := range beats {
		o := presence.Merge(tail, b, window)
		if o.Stale {
			continue
		}
		if o.Closed != nil {
			spans = append(spans, *o.Closed)
		}
		tail = o.Tail
	}
	if tail != nil {
		spans = append(spans, *tail)
	}
	return spans
}

func TestCompactionPreservesSpans(t *testing.T) {
	ctx := context.Background()
	beats := week(7)
	window := presence.DefaultPulse.Window()
	want := replay(beats, window)
	if len(want) < 40 {
		t.Fatalf("fixture too simple: %d spans", len(want))
	}
	// A bound three quarters of the week: thinning must absorb the excess.
	limit := len(beats) * 3 / 4
	db := open(t, "", agentdb.Options{MaxOutbox: limit})
	for _, b := range beats {
		got, err := db.Record(ctx, agentdb.Entry{At: b.At, IdleS: b.IdleS, Send: b.State})
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != b.Seq {
			t.Fatalf("seq %d, want %d", got.Seq, b.Seq)
		}
		if d := db.Depth(); d > int64(limit) {
			t.Fatalf("depth %d over bound %d", d, limit)
		}
	}
	kept := outbox(t, db)
	st, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != 0 || st.Compacted == 0 || st.OutboxDepth != int64(len(kept)) ||
		int64(len(kept))+st.Compacted != int64(len(beats)) {
		t.Fatalf("stats %+v, kept %d of %d", st, len(kept), len(beats))
	}
	got := replay(kept, window)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans differ after compaction: got %d spans, want %d\nfirst got  %+v\nfirst want %+v",
			len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
	// Every kept beat is an original beat, in order.
	j := 0
	for _, k := range kept {
		for j < len(beats) && beats[j].Seq != k.Seq {
			j++
		}
		if j == len(beats) || !beats[j].At.Equal(k.At) || beats[j].State != k.State {
			t.Fatalf("kept beat %+v is not an original", k)
		}
	}
	t.Logf("week of %d beats kept as %d (bound %d), %d spans unchanged", len(beats), len(kept), limit, len(want))
}

func TestBoundDropsOldestAndCounts(t *testing.T) {
	ctx := context.Background()
	const limit = 200
	db := open(t, "", agentdb.Options{MaxOutbox: limit})
	// Alternating states: every beat starts a span, nothing can be thinned.
	const total = 1000
	for i := range total {
		s := presence.Active
		if i%2 == 1 {
			s = presence.Idle
		}
		send(t, db, t0.Add(time.Duration(i)*30*time.Second), s)
		if d := db.Depth(); d > limit {
			t.Fatalf("depth %d over bound", d)
		}
	}
	st, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := outbox(t, db)
	if st.Dropped+int64(len(kept)) != total || st.Compacted != 0 || st.Dropped == 0 {
		t.Fatalf("dropped %d + kept %d != %d (compacted %d)", st.Dropped, len(kept), total, st.Compacted)
	}
	// The newest survive, in order.
	if kept[len(kept)-1].Seq != total {
		t.Fatalf("newest beat %d missing", total)
	}
	for i := 1; i < len(kept); i++ {
		if kept[i].Seq != kept[i-1].Seq+1 {
			t.Fatalf("hole in the kept tail at %d", kept[i].Seq)
		}
	}
	// The count survives a restart.
	path := db.Path()
	db.Close()
	db2 := open(t, path, agentdb.Options{MaxOutbox: limit})
	st2, err := db2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Dropped != st.Dropped || db2.Depth() != int64(len(kept)) {
		t.Fatalf("after reopen dropped %d depth %d, want %d %d", st2.Dropped, db2.Depth(), st.Dropped, len(kept))
	}
}

func TestCompactionThinsOnlyOverBeatenRuns(t *testing.T) {
	ctx := context.Background()
	// Beats exactly one window apart cannot be thinned at all; a run beaten
	// every 10 s keeps one beat per window.
	db := open(t, "", agentdb.Options{MaxOutbox: 20})
	w := presence.DefaultPulse.Window()
	at := t0
	for i := range 10 {
		if i > 0 {
			at = at.Add(w)
		}
		send(t, db, at, presence.Active)
	}
	for range 11 { // the 21st beat overflows the bound
		at = at.Add(10 * time.Second)
		send(t, db, at, presence.Active)
	}
	kept := outbox(t, db)
	st, _ := db.Stats(ctx)
	if st.Dropped != 0 {
		t.Fatalf("dropped %d", st.Dropped)
	}
	// 10 sparse beats all kept; the 11 dense ones (10 s apart, window 60 s)
	// keep one every 60 s plus the last.
	for i := range 10 {
		if kept[i].Seq != int64(i+1) {
			t.Fatalf("sparse beat %d thinned: %v", i+1, seqs(kept))
		}
	}
	for i := 1; i < len(kept); i++ {
		if gap := kept[i].At.Sub(kept[i-1].At); gap > w {
			t.Fatalf("kept beats %d and %d are %v apart (> window)", kept[i-1].Seq, kept[i].Seq, gap)
		}
	}
	if len(kept) >= 21 || kept[len(kept)-1].Seq != 21 {
		t.Fatalf("kept %v", seqs(kept))
	}
}

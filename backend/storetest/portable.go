package storetest

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/importer"
	"github.com/lastseen/lastseen/backend/presence"
)

// testPortable checks the history a user brings in and lets go of:
// ImportSpans, PruneSpans and HistoryStart.
func testPortable(t *testing.T, opener Opener) {
	t.Run("ImportSpans", func(t *testing.T) { testImportSpans(t, opener) })
	t.Run("ImportActivityWatchFixture", func(t *testing.T) { testImportFixture(t, opener) })
	t.Run("PruneSpans", func(t *testing.T) { testPruneSpans(t, opener) })
}

// hist is a closed span at T0 + a..b minutes (negative: before T0).
func hist(st presence.State, a, b int) presence.Span {
	return presence.Span{State: st, Start: T0.Add(time.Duration(a) * time.Minute), End: T0.Add(time.Duration(b) * time.Minute), Closed: true}
}

// spanList renders spans as "state a-b" in minutes after T0, plus "open"
// for a span that is not closed.
func spanList(spans []presence.Span) string {
	var parts []string
	for _, s := range spans {
		p := s.State.String() + " " + minutesOf(s.Start) + "-" + minutesOf(s.End)
		if !s.Closed {
			p += " open"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

func minutesOf(t time.Time) string {
	d := t.Sub(T0)
	if d%time.Minute != 0 {
		return d.String()
	}
	return strconv.Itoa(int(d / time.Minute))
}

func (e *env) importSpans(d presence.Device, spans ...presence.Span) (added, skipped int) {
	e.t.Helper()
	added, skipped, err := e.store.ImportSpans(e.ctx, d.ID, spans)
	if err != nil {
		e.t.Fatalf("import into device %d: %v", d.ID, err)
	}
	if added+skipped != len(spans) {
		e.t.Errorf("import of %d spans: added %d + skipped %d do not add up", len(spans), added, skipped)
	}
	return added, skipped
}

func (e *env) allSpans(u presence.User, d presence.Device) []presence.Span {
	e.t.Helper()
	return e.spans(presence.SpanQuery{UserID: u.ID, DeviceID: d.ID})
}

func testImportSpans(t *testing.T, opener Opener) {
	A, I, W := presence.Active, presence.Idle, presence.Away
	e := newEnv(t, opener)
	u := e.user("importer")

	t.Run("imported spans are closed history, and a second import adds nothing", func(t *testing.T) {
		d := e.device(u, "history")
		in := []presence.Span{hist(I, -50, -40), hist(A, -120, -60), hist(W, -60, -50), {State: A, Why: presence.ByCall, Start: T0.Add(-30 * time.Minute), End: T0.Add(-20 * time.Minute)}}
		if added, skipped := e.importSpans(d, in...); added != 4 || skipped != 0 {
			t.Errorf("first import: added %d, skipped %d; want 4, 0", added, skipped)
		}
		got := e.allSpans(u, d)
		if want := "active -120--60, away -60--50, idle -50--40, active -30--20"; spanList(got) != want {
			t.Errorf("spans %q, want %q", spanList(got), want)
		}
		for _, s := range got {
			if s.ID == 0 || s.DeviceID != d.ID {
				t.Errorf("span %+v: want an ID and device %d", s, d.ID)
			}
			if want := presence.Why("").Of(s.State); s.State == A && s.Start.Equal(T0.Add(-30*time.Minute)) {
				if s.Why != presence.ByCall {
					t.Errorf("the call span lost its why: %q", s.Why)
				}
			} else if s.Why != want {
				t.Errorf("span %s: why %q, want %q", spanList([]presence.Span{s}), s.Why, want)
			}
		}
		if added, skipped := e.importSpans(d, in...); added != 0 || skipped != 4 {
			t.Errorf("second import: added %d, skipped %d; want 0, 4", added, skipped)
		}
		if again := e.allSpans(u, d); spanList(again) != spanList(got) {
			t.Errorf("after the second import %q, want unchanged %q", spanList(again), spanList(got))
		}
		// After a restart too: the spans are in the database.
		e.reopen()
		if added, _ := e.importSpans(d, in...); added != 0 {
			t.Errorf("import after a restart added %d", added)
		}
		if again := e.allSpans(u, d); spanList(again) != spanList(got) {
			t.Errorf("after a restart %q, want %q", spanList(again), spanList(got))
		}
	})

	t.Run("spans that overlap the device's history are skipped, touching ones kept", func(t *testing.T) {
		d := e.device(u, "overlap")
		e.importSpans(d, hist(A, -100, -80))
		added, skipped := e.importSpans(d,
			hist(I, -110, -100), // touches the start
			hist(I, -90, -70),   // overlaps the end
			hist(I, -80, -75),   // touches the end
			hist(A, -75, -74),   // and the next overlaps this one, of the very same import
			presence.Span{State: I, Start: T0.Add(-74*time.Minute - 30*time.Second), End: T0.Add(-70 * time.Minute)},
		)
		if added != 3 || skipped != 2 {
			t.Errorf("added %d, skipped %d; want 3, 2", added, skipped)
		}
		if got, want := spanList(e.allSpans(u, d)), "idle -110--100, active -100--80, idle -80--75, active -75--74"; got != want {
			t.Errorf("spans %q, want %q", got, want)
		}
	})

	t.Run("the open tail is never touched and keeps growing", func(t *testing.T) {
		d := e.device(u, "live")
		e.clock.Set(T0.Add(sec(30)))
		e.ingest(d, beat(1, 0, A), beat(2, sec(30), A))
		// Half an hour later the device is silent, but its tail is still
		// the span a late beat may extend.
		e.clock.Set(T0.Add(30 * time.Minute))
		added, skipped := e.importSpans(d,
			hist(I, -20, -10), // before the tail began: history
			hist(I, -5, 1),    // reaches into the tail
			hist(A, 5, 10),    // after the tail's last beat, before now
		)
		if added != 1 || skipped != 2 {
			t.Errorf("added %d, skipped %d; want 1, 2", added, skipped)
		}
		e.clock.Set(T0.Add(sec(60)))
		e.ingest(d, beat(3, sec(60), A))
		got := e.allSpans(u, d)
		if len(got) != 2 || !got[1].Start.Equal(T0) || !got[1].End.Equal(T0.Add(sec(60))) || got[1].Closed {
			t.Errorf("spans %q, want the imported idle span, then the live tail from 0 s to 60 s, open", spanList(got))
		}
	})

	t.Run("history cannot end after the store's clock", func(t *testing.T) {
		d := e.device(u, "future")
		e.clock.Set(T0)
		added, skipped := e.importSpans(d, hist(A, -10, 0), hist(A, 0, 1))
		if added != 1 || skipped != 1 {
			t.Errorf("added %d, skipped %d; want 1 (ending now), 1 (ending after now)", added, skipped)
		}
	})

	t.Run("a lone beat is imported once", func(t *testing.T) {
		d := e.device(u, "lone")
		if added, _ := e.importSpans(d, hist(A, -3, -3)); added != 1 {
			t.Errorf("zero-length span: added %d, want 1", added)
		}
		if added, skipped := e.importSpans(d, hist(A, -3, -3)); added != 0 || skipped != 1 {
			t.Errorf("the same again: added %d, skipped %d; want 0, 1", added, skipped)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		d := e.device(u, "refusals")
		_, _, err := e.store.ImportSpans(e.ctx, d.ID, []presence.Span{hist(A, -10, -5), hist(presence.Offline, -5, -4)})
		wantCode(t, "an offline span", err, presence.EINVALID)
		_, _, err = e.store.ImportSpans(e.ctx, d.ID, []presence.Span{hist(A, -5, -10)})
		wantCode(t, "a span ending before it starts", err, presence.EINVALID)
		if got := e.allSpans(u, d); len(got) != 0 {
			t.Errorf("a refused import wrote %q", spanList(got))
		}
		_, _, err = e.store.ImportSpans(e.ctx, 999999, []presence.Span{hist(A, -10, -5)})
		wantCode(t, "an unknown device", err, presence.ENOTFOUND)
		_, _, err = e.store.ImportSpans(e.ctx, 999999, nil)
		wantCode(t, "an unknown device, no spans", err, presence.ENOTFOUND)
		gone := e.device(u, "revoked")
		if err := e.store.RevokeDevice(e.ctx, u.ID, gone.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.store.ImportSpans(e.ctx, gone.ID, []presence.Span{hist(A, -10, -5)})
		wantCode(t, "a revoked device", err, presence.ENOTFOUND)
	})

	t.Run("a large import goes in chunks and stays idempotent", func(t *testing.T) {
		d := e.device(u, "large")
		n := presence.ImportChunk*2 + 17
		in := make([]presence.Span, 0, n)
		for i := range n { // one-minute spans with one-minute gaps, newest first
			in = append(in, hist(A, -2*(i+1), -2*(i+1)+1))
		}
		// A span covering them all starts first, so it is kept and every
		// other is skipped, in later chunks too (it is in the database by then).
		in = append(in, hist(I, -2*n-1, 0))
		if added, skipped := e.importSpans(d, in...); added != 1 || skipped != n {
			t.Errorf("added %d, skipped %d; want 1 (the covering span), %d", added, skipped, n)
		}
		d2 := e.device(u, "large 2")
		in = in[:n]
		if added, skipped := e.importSpans(d2, in...); added != n || skipped != 0 {
			t.Errorf("added %d, skipped %d; want %d, 0", added, skipped, n)
		}
		if added, skipped := e.importSpans(d2, in...); added != 0 || skipped != n {
			t.Errorf("again: added %d, skipped %d; want 0, %d", added, skipped, n)
		}
		if got := e.allSpans(u, d2); len(got) != n {
			t.Errorf("%d spans stored, want %d", len(got), n)
		}
	})
}

// fixtureActive is what the fixture's README lists: the stretches of input.
var fixtureActive = []string{
	"2026-02-09T08:02:00Z/2026-02-09T10:47:00Z",
	"2026-02-09T11:05:00Z/2026-02-09T12:30:00Z",
	"2026-02-09T13:31:00Z/2026-02-09T17:12:00Z",
	"2026-02-10T07:55:00Z/2026-02-10T12:01:00Z",
	"2026-02-10T12:58:00Z/2026-02-10T16:40:00Z",
	"2026-11-30T08:30:00Z/2026-11-30T11:15:00Z",
	"2026-11-30T11:40:00Z/2026-11-30T12:10:00Z",
	"2026-11-30T14:00:00Z/2026-11-30T18:20:00Z",
	"2026-12-01T09:10:00Z/2026-12-01T12:45:00Z",
	"2026-12-01T13:30:00Z/2026-12-01T15:05:00Z",
	"2026-12-02T08:45:00Z/2026-12-02T10:00:00Z",
	"2026-12-02T10:20:00Z/2026-12-02T12:00:00Z",
	"2026-12-02T21:30:00Z/2026-12-02T23:10:00Z",
}

// FixturePath is the real aw-server 0.12.0 export the suite imports
// (backend/importer/testdata), found from this file so that any package's
// test can run the suite.
func FixturePath(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the storetest package")
	}
	return filepath.Join(filepath.Dir(file), "..", "importer", "testdata", "activitywatch-export.json")
}

// FixtureNow is a moment after the fixture's last event.
var FixtureNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func testImportFixture(t *testing.T, opener Opener) {
	data, err := os.ReadFile(FixturePath(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := importer.Parse(data, importer.Options{Now: func() time.Time { return FixtureNow }})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sources) != 1 {
		t.Fatalf("%d sources in the fixture, want 1", len(f.Sources))
	}
	spans := f.Sources[0].Spans
	e := newEnv(t, opener)
	e.clock.Set(FixtureNow)
	u := e.user("aw")
	d := e.device(u, f.Sources[0].Name)
	if added, skipped := e.importSpans(d, spans...); added != len(spans) || skipped != 0 {
		t.Errorf("import: added %d, skipped %d; want %d, 0", added, skipped, len(spans))
	}
	all := e.allSpans(u, d)
	act := e.spans(presence.SpanQuery{UserID: u.ID, States: []presence.State{presence.Active}})
	var got []string
	for _, s := range act {
		got = append(got, s.Start.UTC().Format(time.RFC3339)+"/"+s.End.UTC().Format(time.RFC3339))
		if !s.Closed || s.Why != presence.ByInput || s.DeviceID != d.ID {
			t.Errorf("active span %+v: want closed, by input, device %d", s, d.ID)
		}
	}
	if strings.Join(got, "\n") != strings.Join(fixtureActive, "\n") {
		t.Errorf("active spans:\n%s\nwant the README's:\n%s", strings.Join(got, "\n"), strings.Join(fixtureActive, "\n"))
	}
	if added, skipped := e.importSpans(d, spans...); added != 0 || skipped != len(spans) {
		t.Errorf("second import: added %d, skipped %d; want 0, %d", added, skipped, len(spans))
	}
	if again := e.allSpans(u, d); spanList(again) != spanList(all) {
		t.Errorf("the second import changed the spans:\n%s\nwas:\n%s", spanList(again), spanList(all))
	}
	if start, err := e.store.HistoryStart(e.ctx, u.ID); err != nil || !start.Equal(time.Date(2026, 2, 9, 8, 2, 0, 0, time.UTC)) {
		t.Errorf("history start %s, %v; want the fixture's first input, 2026-02-09 08:02", start, err)
	}
}

func testPruneSpans(t *testing.T, opener Opener) {
	A, I := presence.Active, presence.Idle
	e := newEnv(t, opener)
	u := e.user("pruner")
	other := e.user("bystander")
	if start, err := e.store.HistoryStart(e.ctx, u.ID); err != nil || !start.IsZero() {
		t.Errorf("history start with no spans: %s, %v; want zero", start, err)
	}
	old := e.device(u, "old")
	e.importSpans(old, hist(A, -600, -500), hist(I, -500, -400), hist(A, -100, -50))
	// A device whose tail went silent long ago: the tail stays, however old.
	silent := e.device(u, "silent")
	e.clock.Set(T0.Add(-700 * time.Minute))
	e.ingest(silent, presence.Beat{Seq: 1, At: T0.Add(-700 * time.Minute), State: A})
	// A live device: its closed history goes, its tail stays.
	live := e.device(other, "live")
	e.clock.Set(T0.Add(-300 * time.Minute))
	e.ingest(live, presence.Beat{Seq: 1, At: T0.Add(-300 * time.Minute), State: A}, presence.Beat{Seq: 2, At: T0.Add(-299 * time.Minute), State: presence.Offline})
	e.clock.Set(T0)
	e.ingest(live, presence.Beat{Seq: 3, At: T0, State: A})

	if start, err := e.store.HistoryStart(e.ctx, u.ID); err != nil || !start.Equal(T0.Add(-700*time.Minute)) {
		t.Errorf("history start %s, %v; want the silent device's beat at -700 min", start, err)
	}
	n, err := e.store.PruneSpans(e.ctx, T0.Add(-200*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("pruned %d spans, want 3 (two old, one of the live device)", n)
	}
	if got, want := spanList(e.allSpans(u, old)), "active -100--50"; got != want {
		t.Errorf("old device %q, want %q", got, want)
	}
	if got := e.allSpans(u, silent); len(got) != 1 {
		t.Errorf("silent device %q, want its tail kept", spanList(got))
	}
	if got := e.allSpans(other, live); len(got) != 1 || !got[0].Start.Equal(T0) {
		t.Errorf("live device %q, want only its tail", spanList(got))
	}
	if n, err := e.store.PruneSpans(e.ctx, T0.Add(-200*time.Minute)); err != nil || n != 0 {
		t.Errorf("pruning again: %d, %v; want 0", n, err)
	}
	// The silent tail still takes its next beat, as if nothing happened.
	e.clock.Set(T0.Add(-700*time.Minute + 30*time.Second))
	e.ingest(silent, presence.Beat{Seq: 2, At: T0.Add(-700*time.Minute + 30*time.Second), State: A})
	if got := e.allSpans(u, silent); len(got) != 1 || got[0].End.Sub(got[0].Start) != 30*time.Second {
		t.Errorf("silent device after a late beat %q, want one span of 30 s", spanList(got))
	}
	if start, err := e.store.HistoryStart(e.ctx, u.ID); err != nil || !start.Equal(T0.Add(-700*time.Minute)) {
		t.Errorf("history start after pruning %s, %v", start, err)
	}
}

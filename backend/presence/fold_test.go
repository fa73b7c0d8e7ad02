package presence

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// spanIDs hands out 1, 2, 3… as Fold's newID.
func spanIDs() func() int64 {
	var n int64
	return func() int64 { n++; return n }
}

func b(seq int64, sec int, st State) Beat { return Beat{Seq: seq, At: at(sec), State: st} }

func TestFold(t *testing.T) {
	A, I, O := Active, Idle, Offline
	w := DefaultPulse.Window()
	type counts struct{ accepted, duplicates, stale, rejected int }
	tests := []struct {
		name    string
		before  []Beat // folded first, as an earlier request
		beats   []Beat
		counts  counts
		spans   string // "state[start,end]" per span the batch touched, +new, +started, +ended
		seen    int    // last seen, seconds after t0 (-1: none)
		lastSeq int64
	}{
		{
			name:  "a first beat starts a span",
			beats: []Beat{b(1, 0, A)}, counts: counts{accepted: 1},
			spans: "active[0,0]+new+started", seen: 0, lastSeq: 1,
		},
		{
			name:   "a re-sent beat is a duplicate and changes nothing",
			before: []Beat{b(1, 0, A), b(2, 10, A)},
			beats:  []Beat{b(2, 10, A), b(1, 0, A)}, counts: counts{duplicates: 2},
			spans: "", seen: 10, lastSeq: 2,
		},
		{
			name:   "a repeated seq inside one batch counts once",
			beats:  []Beat{b(1, 0, A), b(1, 0, A), b(2, 5, A)},
			counts: counts{accepted: 2, duplicates: 1},
			spans:  "active[0,5]+new+started", seen: 5, lastSeq: 2,
		},
		{
			name:   "beats are taken in seq order, not the order they came",
			beats:  []Beat{b(3, 2, I), b(1, 0, A), b(2, 1, A)},
			counts: counts{accepted: 3},
			spans:  "active[0,2]+new+started+ended idle[2,2]+new+started", seen: 1, lastSeq: 3,
		},
		{
			// The bug this rule fixes: one store let this beat move last seen.
			name:   "an old beat after offline is stale: no span, no last seen",
			before: []Beat{b(1, 0, A), b(2, 10, O)},
			beats:  []Beat{b(3, 5, A)}, counts: counts{accepted: 1, stale: 1},
			spans: "", seen: 0, lastSeq: 3,
		},
		{
			name:   "an old beat inside a span is stale",
			before: []Beat{b(1, 0, A), b(2, 10, A)},
			beats:  []Beat{b(3, 5, I)}, counts: counts{accepted: 1, stale: 1},
			spans: "", seen: 10, lastSeq: 3,
		},
		{
			name:   "a malformed beat is rejected alone",
			beats:  []Beat{b(1, 0, A), {Seq: 2, State: "asleep", At: at(1)}, {Seq: 3, State: A}, b(4, 2, A)},
			counts: counts{accepted: 2, rejected: 2},
			spans:  "active[0,2]+new+started", seen: 2, lastSeq: 4,
		},
		{
			name:   "extending a span from an earlier request touches it once",
			before: []Beat{b(1, 0, A)},
			beats:  []Beat{b(2, 10, A), b(3, 20, A)}, counts: counts{accepted: 2},
			spans: "active[0,20]", seen: 20, lastSeq: 3,
		},
		{
			name:   "a gap past the window ends the span at its last beat",
			before: []Beat{b(1, 0, A)},
			beats:  []Beat{b(2, 61, A)}, counts: counts{accepted: 1},
			spans: "active[0,0]+ended active[61,61]+new+started", seen: 61, lastSeq: 2,
		},
		{
			name:   "offline ends the span at its own time and starts none",
			before: []Beat{b(1, 0, A)},
			beats:  []Beat{b(2, 30, O)}, counts: counts{accepted: 1},
			spans: "active[0,30]+ended", seen: 0, lastSeq: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := spanIDs()
			st := DeviceState{Presence: DevicePresence{DeviceID: 7}}
			if tc.before != nil {
				st = Fold(st, tc.before, w, ids).Device
			}
			f := Fold(st, tc.beats, w, ids)
			got := counts{f.Accepted, f.Duplicates, f.Stale, len(f.Rejected)}
			if got != tc.counts {
				t.Errorf("counts %+v, want %+v", got, tc.counts)
			}
			if s := describeChanges(f.Spans); s != tc.spans {
				t.Errorf("spans %q, want %q", s, tc.spans)
			}
			seen := -1
			if la := f.Device.Presence.LastActive; !la.IsZero() {
				seen = int(la.Sub(t0) / time.Second)
			}
			if seen != tc.seen || f.Device.Presence.LastSeq != tc.lastSeq {
				t.Errorf("last seen %d, last seq %d; want %d, %d", seen, f.Device.Presence.LastSeq, tc.seen, tc.lastSeq)
			}
			for _, c := range f.Spans {
				if c.Span.DeviceID != 7 {
					t.Errorf("span %+v lost its device", c.Span)
				}
			}
		})
	}
}

func describeChanges(cs []SpanChange) string {
	var parts []string
	for _, c := range cs {
		why := ""
		if w := c.Span.Why; w != "" && w != ByInput {
			why = "(" + string(w) + ")"
		}
		s := fmt.Sprintf("%s%s[%d,%d]", c.Span.State, why, int(c.Span.Start.Sub(t0)/time.Second), int(c.Span.End.Sub(t0)/time.Second))
		for _, f := range []struct {
			on   bool
			name string
		}{{c.New, "+new"}, {c.Started, "+started"}, {c.Ended, "+ended"}} {
			if f.on {
				s += f.name
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestFoldDoesNotModifyItsInput(t *testing.T) {
	tail := &Span{ID: 1, State: Active, Start: at(0), End: at(0)}
	st := DeviceState{Presence: DevicePresence{State: Active, LastBeat: at(0), LastActive: at(0), LastSeq: 1}, Tail: tail}
	beats := []Beat{b(3, 20, Idle), b(2, 10, Active)}
	Fold(st, beats, DefaultPulse.Window(), spanIDs())
	if !tail.End.Equal(at(0)) || tail.Closed || st.Presence.LastSeq != 1 || beats[0].Seq != 3 {
		t.Errorf("Fold modified its input: tail %+v, presence %+v, beats %+v", *tail, st.Presence, beats)
	}
}

func TestFoldCutsTimesToPrecision(t *testing.T) {
	f := Fold(DeviceState{}, []Beat{{Seq: 1, State: Active, At: at(0).Add(1500 * time.Nanosecond)}}, time.Minute, spanIDs())
	if want := at(0).Add(time.Microsecond); !f.Spans[0].Span.Start.Equal(want) || !f.Device.Presence.LastBeat.Equal(want) {
		t.Errorf("span start %v, last beat %v; want both %v", f.Spans[0].Span.Start, f.Device.Presence.LastBeat, want)
	}
}

func TestSessionEventsSayWhenItHappened(t *testing.T) {
	w := DefaultPulse.Window()
	ids := spanIDs()
	st := Fold(DeviceState{}, []Beat{b(1, 0, Active)}, w, ids).Device
	f := Fold(st, []Beat{b(2, 40, Idle)}, w, ids)
	evs := f.SessionEvents(9, at(100), w) // noticed a minute later
	if len(evs) != 2 {
		t.Fatalf("events %+v, want the active span's end and the idle span's start", evs)
	}
	if e := evs[0]; e.Session.State != Active || !e.At.Equal(at(40)) || e.Open || e.UserID != 9 {
		t.Errorf("end event %+v, want active ended at +40s, closed", e)
	}
	if e := evs[1]; e.Session.State != Idle || !e.At.Equal(at(40)) {
		t.Errorf("start event %+v, want idle started at +40s", e)
	}
}

func TestStatusSince(t *testing.T) {
	p := DefaultPulse
	d := DevicePresence{State: Active, LastBeat: at(10)}
	if got := d.StatusSince(Active, p); !got.Equal(at(10)) {
		t.Errorf("active since %v, want the last beat", got)
	}
	if got := d.StatusSince(Offline, p); !got.Equal(at(10).Add(p.Grace)) {
		t.Errorf("offline by silence since %v, want last beat + grace", got)
	}
	off := DevicePresence{State: Offline, LastBeat: at(20)}
	if got := off.StatusSince(Offline, p); !got.Equal(at(20)) {
		t.Errorf("offline by its own beat since %v, want that beat", got)
	}
}

func TestNormalizeNames(t *testing.T) {
	tests := []struct {
		in, want string
		device   bool
		ok       bool
	}{
		{"  Ada  ", "Ada", false, true},
		{"", "", false, true},
		{strings.Repeat("é", MaxUserNameRunes), strings.Repeat("é", MaxUserNameRunes), false, true},
		{strings.Repeat("é", MaxUserNameRunes+1), "", false, false},
		{"bell\a", "", false, false},
		{" laptop ", "laptop", true, true},
		{"   ", "", true, false},
		{strings.Repeat("ü", MaxDeviceNameRunes), strings.Repeat("ü", MaxDeviceNameRunes), true, true},
		{strings.Repeat("ü", MaxDeviceNameRunes+1), "", true, false},
		{"tab\tname", "", true, false},
	}
	for _, tc := range tests {
		norm := NormalizeUserName
		if tc.device {
			norm = NormalizeDeviceName
		}
		got, err := norm(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("normalize(%q, device=%v) = %q, %v; want %q, ok=%v", tc.in, tc.device, got, err, tc.want, tc.ok)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("normalize(%q): code %q, want invalid", tc.in, ErrorCode(err))
		}
	}
}

// Edges: a span ends, and the next begins, when the state really changed —
// the moment the beat's Since carries — within the bounds that keep every
// span and every total true.
func TestFoldEdges(t *testing.T) {
	A, I, W, O := Active, Idle, Away, Offline
	w := DefaultPulse.Window() // 60 s
	since := func(bt Beat, sec int) Beat { bt.Since = at(sec); return bt }
	tests := []struct {
		name  string
		beats []Beat
		spans string // every span, oldest first
		seen  int    // last seen, seconds after t0
		since int    // the device's state began, seconds after t0
	}{
		{
			name: "idle begins at the last input, not at the threshold",
			beats: []Beat{b(1, 0, A), b(2, 30, A), b(3, 60, A), b(4, 90, A),
				since(b(5, 100, I), 8)},
			spans: "active[0,8] idle[8,100]", seen: 8, since: 8,
		},
		{
			name:  "an edge never goes before the tail's start",
			beats: []Beat{b(1, 0, A), b(2, 20, A), since(b(3, 30, I), -50)},
			spans: "active[0,0] idle[0,30]", seen: 0, since: 0,
		},
		{
			name:  "no Since: the edge is the beat",
			beats: []Beat{b(1, 0, A), b(2, 40, I)},
			spans: "active[0,40] idle[40,40]", seen: 0, since: 40,
		},
		{
			name: "a lock after minutes without input: active to the last input, idle, away from the lock",
			beats: []Beat{b(1, 0, A), b(2, 30, A), b(3, 60, A), b(4, 90, A), b(5, 120, A),
				since(b(6, 150, I), 70), since(b(7, 150, W), 150)},
			spans: "active[0,70] idle[70,150] away[150,150]", seen: 70, since: 150,
		},
		{
			name:  "sleep: offline from the moment of sleep",
			beats: []Beat{b(1, 0, A), b(2, 30, A), since(b(3, 40, O), 35)},
			spans: "active[0,35]", seen: 30, since: 35,
		},
		{
			name:  "a silent suspend ends the span when the machine was last known awake",
			beats: []Beat{b(1, 0, A), b(2, 30, A), since(b(3, 3600, O), 42)},
			spans: "active[0,42]", seen: 30, since: 42,
		},
		{
			name:  "a suspend found late never stretches a span past its window",
			beats: []Beat{b(1, 0, A), b(2, 30, A), since(b(3, 3600, O), 3000)},
			spans: "active[0,90]", seen: 30, since: 90,
		},
		{
			name:  "waking: the new span starts at the first input, not the next tick",
			beats: []Beat{b(1, 0, A), b(2, 10, O), since(b(3, 1000, A), 990)},
			spans: "active[0,10] active[990,1000]", seen: 1000, since: 990,
		},
		{
			name:  "after a gap a span starts at most a window before its first beat",
			beats: []Beat{b(1, 0, A), since(b(2, 1000, I), 100)},
			spans: "active[0,0] idle[940,1000]", seen: 0, since: 940,
		},
		{
			name:  "after offline an edge never goes back past the offline beat",
			beats: []Beat{b(1, 0, A), b(2, 10, O), since(b(3, 30, A), 5)},
			spans: "active[0,10] active[10,30]", seen: 30, since: 10,
		},
		{
			name: "a call after typing: the active span splits at the last input, and says why",
			beats: []Beat{b(1, 0, A), b(2, 30, A), b(3, 60, A),
				{Seq: 4, At: at(90), Since: at(40), State: A, Why: ByCall}, {Seq: 5, At: at(120), State: A, Why: ByCall}},
			spans: "active[0,40] active(call)[40,120]", seen: 120, since: 40,
		},
		{
			name:  "a re-sent edge beat counts once",
			beats: []Beat{b(1, 0, A), b(2, 30, A), since(b(3, 40, I), 12), since(b(3, 40, I), 12), since(b(2, 30, I), 1)},
			spans: "active[0,12] idle[12,40]", seen: 12, since: 12,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every beat its own batch, as an agent sending at once would;
			// the spans are collected as the stores would persist them.
			ids := spanIDs()
			st := DeviceState{}
			var spans []SpanChange
			for _, bt := range tc.beats {
				f := Fold(st, []Beat{bt}, w, ids)
				st = f.Device
				for _, c := range f.Spans {
					merged := false
					for i := range spans {
						if spans[i].Span.ID == c.Span.ID {
							spans[i].Span = c.Span
							merged = true
						}
					}
					if !merged {
						spans = append(spans, c)
					}
				}
			}
			for i := range spans {
				spans[i].New, spans[i].Started, spans[i].Ended = false, false, false
			}
			if got := describeChanges(spans); got != tc.spans {
				t.Errorf("spans %q\n        want %q", got, tc.spans)
			}
			p := st.Presence
			if got := int(p.LastActive.Sub(t0) / time.Second); got != tc.seen {
				t.Errorf("last seen %d, want %d", got, tc.seen)
			}
			if got := int(p.Since.Sub(t0) / time.Second); got != tc.since {
				t.Errorf("state since %d, want %d", got, tc.since)
			}
		})
	}
}

func TestSinceAfterAtIsMalformed(t *testing.T) {
	bt := Beat{Seq: 1, At: at(10), Since: at(11), State: Idle}
	if err := bt.CheckForm(); err == nil || !strings.Contains(err.Error(), "since") {
		t.Errorf("since after at: %v, want a form error naming since", err)
	}
}

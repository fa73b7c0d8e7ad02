package presence

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	kolkata, _ := time.LoadLocation("Asia/Kolkata") // UTC+5:30: hours start at :30 UTC
	paris, _ := time.LoadLocation("Europe/Paris")
	h := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC) }

	t.Run("union stacked per day, each device on its own", func(t *testing.T) {
		spans := []Span{
			span(1, Active, h(25, 9, 0), h(25, 11, 0)),
			span(2, Active, h(25, 10, 0), h(25, 12, 0)),
			span(2, Idle, h(25, 12, 0), h(25, 12, 30)),
			span(1, Away, h(26, 8, 0), h(26, 9, 0)),
		}
		r := Summarize(spans, time.UTC, h(25, 0, 0), h(26, 0, 0))
		want := []ReportDay{
			{DayTotal: DayTotal{Date: "2026-11-25", ActiveS: 3 * 3600, IdleS: 1800},
				Devices: []DeviceSeconds{{1, 2 * 3600}, {2, 2 * 3600}}},
			{DayTotal: DayTotal{Date: "2026-11-26", AwayS: 3600}, Devices: []DeviceSeconds{}},
		}
		if !reflect.DeepEqual(r.Days, want) {
			t.Errorf("days = %+v\nwant   %+v", r.Days, want)
		}
		if r.ActiveS != 3*3600 || r.IdleS != 1800 || r.AwayS != 3600 {
			t.Errorf("totals = %d/%d/%d", r.ActiveS, r.IdleS, r.AwayS)
		}
		// Wednesday 25 November, 09:00–12:00 UTC: three hours of the union.
		for hour := 9; hour < 12; hour++ {
			if got := r.Heatmap[2][hour]; got != 3600 {
				t.Errorf("heatmap[Wed][%d] = %d, want 3600", hour, got)
			}
		}
		if got := r.Heatmap[2][12]; got != 0 {
			t.Errorf("idle time counted in the heatmap: %d", got)
		}
	})

	t.Run("heatmap hours are the user's wall clock", func(t *testing.T) {
		// 03:30–04:30 UTC is 09:00–10:00 in Kolkata: one whole hour, 9.
		r := Summarize([]Span{span(1, Active, h(25, 3, 30), h(25, 4, 30))}, kolkata, h(25, 0, 0), h(25, 0, 0))
		if got := r.Heatmap[2][9]; got != 3600 {
			t.Errorf("heatmap[Wed][9] = %d, want 3600 (all %v)", got, r.Heatmap[2])
		}
	})

	t.Run("a span over midnight splits into both days and weekdays", func(t *testing.T) {
		// Sunday 29 Nov 23:30 → Monday 00:30, Paris (UTC+1).
		r := Summarize([]Span{span(1, Active, h(29, 22, 30), h(29, 23, 30))}, paris, h(29, 12, 0), h(30, 12, 0))
		if r.Days[0].ActiveS != 1800 || r.Days[1].ActiveS != 1800 {
			t.Errorf("days = %+v", r.Days)
		}
		if r.Heatmap[6][23] != 1800 || r.Heatmap[0][0] != 1800 {
			t.Errorf("Sunday 23h = %d, Monday 0h = %d; want 1800 each", r.Heatmap[6][23], r.Heatmap[0][0])
		}
	})

	t.Run("the days agree with a day-by-day reference", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 7))
		spans := randomSpans(rng, 400, h(1, 0, 0), 30*24*time.Hour)
		from, to := h(3, 0, 0), h(28, 0, 0)
		r := Summarize(spans, paris, from, to)
		daily := naiveDaily(spans, paris, from, to)
		if got := DailyTotals(spans, paris, from, to); !reflect.DeepEqual(got, daily) {
			t.Errorf("DailyTotals disagrees with the reference:\n%+v\n%+v", got, daily)
		}
		if len(r.Days) != len(daily) {
			t.Fatalf("%d days, the reference has %d", len(r.Days), len(daily))
		}
		var heat int64
		for wd := range r.Heatmap {
			for _, s := range r.Heatmap[wd] {
				heat += s
			}
		}
		var active int64
		for i := range daily {
			if r.Days[i].DayTotal != daily[i] {
				t.Errorf("day %d: %+v, reference %+v", i, r.Days[i].DayTotal, daily[i])
			}
			active += daily[i].ActiveS
		}
		// Seconds are truncated per cell, so the heatmap may be a few short.
		if heat > active || active-heat > 7*24 {
			t.Errorf("heatmap sums to %d s, days to %d s", heat, active)
		}
	})
}

// naiveDaily is the obvious per-day sum over the union, day by day and
// segment by segment: slow, and plainly right.
func naiveDaily(spans []Span, loc *time.Location, from, to time.Time) []DayTotal {
	segs := userTimeline(spans)
	var out []DayTotal
	for day := midnight(from, loc); !day.After(to); {
		next := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
		var sum [4]time.Duration
		for _, s := range segs {
			sum[s.State.Precedence()] += overlap(s.Start, s.End, day, next)
		}
		out = append(out, DayTotal{Date: day.Format(time.DateOnly), ActiveS: seconds(sum[Active.Precedence()]),
			IdleS: seconds(sum[Idle.Precedence()]), AwayS: seconds(sum[Away.Precedence()])})
		day = next
	}
	return out
}

func randomSpans(rng *rand.Rand, n int, start time.Time, over time.Duration) []Span {
	states := []State{Active, Active, Idle, Away}
	out := make([]Span, n)
	for i := range out {
		s := start.Add(time.Duration(rng.Int64N(int64(over))))
		out[i] = span(int64(1+rng.IntN(3)), states[rng.IntN(len(states))], s, s.Add(time.Duration(rng.Int64N(int64(3*time.Hour)))))
	}
	return out
}

func TestCompare(t *testing.T) {
	at := func(m time.Month, d, hour int) time.Time { return time.Date(2026, m, d, hour, 0, 0, 0, time.UTC) }
	// Now: Wednesday 2 December 2026, 12:00.
	now := at(12, 2, 12)
	spans := []Span{
		span(1, Active, at(12, 1, 9), at(12, 1, 11)),   // this week and month: 2 h
		span(1, Active, at(11, 24, 9), at(11, 24, 10)), // last week by this point (Tue): 1 h
		span(1, Active, at(11, 27, 9), at(11, 27, 12)), // last week, after this point (Fri): 3 h
		span(1, Active, at(11, 1, 9), at(11, 1, 10)),   // last month by this point: 1 h
		span(2, Active, at(12, 1, 10), at(12, 1, 12)),  // overlaps device 1 by 1 h: union 3 h
	}
	if start := PeriodsStart(now, time.UTC); !start.Equal(at(11, 1, 0)) {
		t.Errorf("PeriodsStart = %v, want 1 November", start)
	}
	got := Compare(spans, time.UTC, now)
	want := Periods{
		Week:  PeriodChange{Start: at(11, 30, 0), ActiveS: 3 * 3600, PreviousToDateS: 3600, PreviousS: 4 * 3600},
		Month: PeriodChange{Start: at(12, 1, 0), ActiveS: 3 * 3600, PreviousToDateS: 3600, PreviousS: 5 * 3600},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Compare = %+v\nwant      %+v", got, want)
	}
}

func TestActiveSessions(t *testing.T) {
	h := func(hour, min int) time.Time { return time.Date(2026, 11, 25, hour, min, 0, 0, time.UTC) }
	spans := []Span{
		{DeviceID: 1, State: Active, Start: h(9, 0), End: h(9, 30), Closed: true},
		{DeviceID: 1, State: Active, Why: ByCall, Start: h(9, 30), End: h(10, 0), Closed: true}, // joins: no gap
		{DeviceID: 1, State: Idle, Start: h(10, 0), End: h(10, 20), Closed: true},
		{DeviceID: 1, State: Active, Start: h(10, 20), End: h(11, 0)}, // a new session, still open
		{DeviceID: 2, State: Active, Why: ByMedia, Start: h(9, 15), End: h(9, 45), Closed: true},
	}
	got := ActiveSessions(spans)
	want := []ActiveSession{
		{DeviceID: 1, Start: h(9, 0), End: h(10, 0), DurationS: 3600, Why: []Why{ByInput, ByCall}},
		{DeviceID: 2, Start: h(9, 15), End: h(9, 45), DurationS: 1800, Why: []Why{ByMedia}},
		{DeviceID: 1, Start: h(10, 20), End: h(11, 0), DurationS: 2400, Why: []Why{ByInput}, Open: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ActiveSessions =\n%+v\nwant\n%+v", got, want)
	}

	names := map[int64]string{1: "tower", 2: "laptop"}
	for _, tc := range []struct {
		by    SessionOrder
		desc  bool
		first int64 // device of the first row
		dur   int64 // its duration
	}{
		{ByStart, false, 1, 3600},
		{ByStart, true, 1, 2400},
		{ByDuration, false, 2, 1800},
		{ByDuration, true, 1, 3600},
		{ByDevice, false, 2, 1800}, // "laptop" < "tower"
	} {
		ss := append([]ActiveSession(nil), got...)
		if err := SortSessions(ss, tc.by, tc.desc, names); err != nil {
			t.Fatal(err)
		}
		if ss[0].DeviceID != tc.first || ss[0].DurationS != tc.dur {
			t.Errorf("sort %s desc=%v: first is %+v", tc.by, tc.desc, ss[0])
		}
	}
	if err := SortSessions(got, "name", false, nil); ErrorCode(err) != EINVALID {
		t.Errorf("unknown order: %v, want EINVALID", err)
	}
}

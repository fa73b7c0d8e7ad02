package presence

import (
	"testing"
	"time"
	_ "time/tzdata" // DST cases run everywhere, with or without the system's zone files
)

func span(dev int64, st State, start, end time.Time) Span {
	return Span{DeviceID: dev, State: st, Start: start, End: end}
}

func TestDailyTotals(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	h := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		spans    []Span
		loc      *time.Location
		from, to time.Time
		want     []DayTotal
	}{
		{
			name:  "two devices active at once count once",
			spans: []Span{span(1, Active, h(25, 9, 0), h(25, 11, 0)), span(2, Active, h(25, 10, 0), h(25, 12, 0))},
			loc:   time.UTC, from: h(25, 0, 0), to: h(25, 0, 0),
			want: []DayTotal{{Date: "2026-11-25", ActiveS: 3 * 3600}},
		},
		{
			name:  "an idle laptop beside an active desktop adds no idle time",
			spans: []Span{span(1, Active, h(25, 9, 0), h(25, 10, 0)), span(2, Idle, h(25, 9, 30), h(25, 10, 30))},
			loc:   time.UTC, from: h(25, 0, 0), to: h(25, 0, 0),
			want: []DayTotal{{Date: "2026-11-25", ActiveS: 3600, IdleS: 1800}},
		},
		{
			name:  "spans are cut at the user's midnight, not UTC's",
			spans: []Span{span(1, Active, h(24, 22, 30), h(24, 23, 30))}, // 23:30–00:30 in Paris (UTC+1)
			loc:   paris, from: h(24, 12, 0), to: h(25, 12, 0),
			want: []DayTotal{{Date: "2026-11-24", ActiveS: 1800}, {Date: "2026-11-25", ActiveS: 1800}},
		},
		{
			name:  "away and idle are totalled, offline never",
			spans: []Span{span(1, Away, h(25, 1, 0), h(25, 2, 0)), span(1, Offline, h(25, 3, 0), h(25, 4, 0))},
			loc:   time.UTC, from: h(25, 0, 0), to: h(25, 0, 0),
			want: []DayTotal{{Date: "2026-11-25", AwayS: 3600}},
		},
		{
			name:  "empty days are listed with zeros",
			spans: nil,
			loc:   time.UTC, from: h(23, 5, 0), to: h(25, 5, 0),
			want: []DayTotal{{Date: "2026-11-23"}, {Date: "2026-11-24"}, {Date: "2026-11-25"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DailyTotals(tt.spans, tt.loc, tt.from, tt.to)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("day %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// On 2026-03-29 Paris springs forward: the day has 23 hours. A device active
// from midnight to midnight is active 23 h that day, and the next day starts
// at the right instant.
func TestDailyTotalsDaylightSaving(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 29, 0, 0, 0, 0, paris)
	end := time.Date(2026, 3, 30, 1, 0, 0, 0, paris)
	got := DailyTotals([]Span{span(1, Active, start, end)}, paris, start, end)
	want := []DayTotal{{Date: "2026-03-29", ActiveS: 23 * 3600}, {Date: "2026-03-30", ActiveS: 3600}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// And autumn: 2026-10-25 has 25 hours.
	start = time.Date(2026, 10, 25, 0, 0, 0, 0, paris)
	end = time.Date(2026, 10, 26, 0, 0, 0, 0, paris)
	got = DailyTotals([]Span{span(1, Idle, start, end)}, paris, start, start)
	if len(got) != 1 || got[0].IdleS != 25*3600 {
		t.Fatalf("autumn day = %+v, want 25 h idle", got)
	}
}

func BenchmarkMerge(b *testing.B) {
	w := DefaultPulse.Window()
	tail := &Span{DeviceID: 1, State: Active, Start: t0, End: t0}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o := Merge(tail, Beat{Seq: int64(i + 1), At: t0.Add(time.Duration(i) * time.Second), State: Active}, w)
		tail = o.Tail
	}
}

func BenchmarkDailyTotals30Days(b *testing.B) {
	var spans []Span
	for d := range 30 {
		for dev := int64(1); dev <= 3; dev++ {
			s := t0.AddDate(0, 0, -d).Add(time.Duration(dev) * time.Hour)
			spans = append(spans, span(dev, Active, s, s.Add(2*time.Hour)), span(dev, Idle, s.Add(2*time.Hour), s.Add(3*time.Hour)))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		DailyTotals(spans, time.UTC, t0.AddDate(0, 0, -30), t0)
	}
}

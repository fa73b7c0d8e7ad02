package presence

import (
	"slices"
	"time"
)

// DayTotal is one calendar day in a user's time zone.
type DayTotal struct {
	Date    string `json:"date"` // YYYY-MM-DD in the user's zone
	ActiveS int64  `json:"active_s"`
	IdleS   int64  `json:"idle_s"`
	AwayS   int64  `json:"away_s"`
}

// DailyTotals sums spans (of any number of devices) per calendar day in loc,
// for every day from the day holding from to the day holding to (inclusive).
//
// At each instant the user has one state, the highest precedence over their
// devices' spans, so two machines active at once count once, and an idle
// laptop next to an active desktop adds nothing to idle. Days are cut at
// loc's midnights, so a day with a daylight-saving change has 23 or 25 hours.
func DailyTotals(spans []Span, loc *time.Location, from, to time.Time) []DayTotal {
	if loc == nil {
		loc = time.UTC
	}
	if to.Before(from) {
		return nil
	}
	cal := calendar(from, to, loc)
	days := make([]DayTotal, len(cal)-1)
	for i := range days {
		days[i].Date = cal[i].Format(time.DateOnly)
	}
	cal.sweep(userTimeline(spans), loc, days, nil)
	return days
}

func midnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

func overlap(s, e, from, to time.Time) time.Duration {
	if s.Before(from) {
		s = from
	}
	if e.After(to) {
		e = to
	}
	if !e.After(s) {
		return 0
	}
	return e.Sub(s)
}

// segment is a stretch of the user's timeline in one state: a span without
// what a timeline does not need (a third of its size, and a year of a busy
// user is tens of thousands of them).
type segment struct {
	Start, End time.Time
	State      State
}

// userTimeline flattens many devices' spans into non-overlapping segments
// carrying, at each instant, the highest-precedence state of any span.
func userTimeline(spans []Span) []segment {
	type edge struct {
		at    time.Time
		state State
		delta int
	}
	edges := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		if !s.State.Valid() || s.State == Offline || !s.End.After(s.Start) {
			continue
		}
		edges = append(edges, edge{s.Start, s.State, +1}, edge{s.End, s.State, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
	out := make([]segment, 0, len(edges)/2+1)
	var count [4]int // open spans per precedence
	cur := func() State {
		for _, st := range States {
			if count[st.Precedence()] > 0 {
				return st
			}
		}
		return Offline
	}
	for i := 0; i < len(edges); {
		at := edges[i].at
		before := cur()
		for ; i < len(edges) && edges[i].at.Equal(at); i++ {
			count[edges[i].state.Precedence()] += edges[i].delta
		}
		after := cur()
		if before == after {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End.IsZero() {
			out[n-1].End = at
		}
		if after != Offline {
			out = append(out, segment{State: after, Start: at})
		}
	}
	return slices.DeleteFunc(out, func(s segment) bool { return s.End.IsZero() })
}

package presence

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// The stats a person asks of their history (GET /api/v1/stats/...): per day
// active, idle and away stacked and per device, an hour × weekday heatmap,
// this week and month against the last, and the sessions themselves. All of
// it is cut at the user's own midnights and hours, and, except where a
// figure is per device, counts the union over devices (see DailyTotals).
//
// Each function walks the spans once (after sorting them), so a year of a
// busy user is a few tens of thousands of steps, not days × spans.

// DeviceSeconds is one device's active time within a day or range.
type DeviceSeconds struct {
	DeviceID int64 `json:"device_id"`
	ActiveS  int64 `json:"active_s"`
}

// ReportDay is one calendar day: the union's states, and each device's own
// active time (two machines active at once both count here).
type ReportDay struct {
	DayTotal
	Devices []DeviceSeconds `json:"devices"`
}

// Heatmap is active time by weekday (Monday first) and hour of the day, in
// seconds, in the user's zone.
type Heatmap [7][24]int64

// Report is the stats of a range of days.
type Report struct {
	Days    []ReportDay     `json:"days"`
	Heatmap Heatmap         `json:"heatmap"`
	Devices []DeviceSeconds `json:"devices"` // active per device over the range, most first
	ActiveS int64           `json:"active_s"`
	IdleS   int64           `json:"idle_s"`
	AwayS   int64           `json:"away_s"`
}

// days is the calendar of a report: the start of every day from the day
// holding from to the day after the one holding to.
type days []time.Time

func calendar(from, to time.Time, loc *time.Location) days {
	var ds days
	for day := midnight(from, loc); !day.After(to); {
		ds = append(ds, day)
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	last := ds[len(ds)-1]
	return append(ds, time.Date(last.Year(), last.Month(), last.Day()+1, 0, 0, 0, 0, loc))
}

// index is the day holding t, or -1 outside the calendar.
func (ds days) index(t time.Time) int {
	i := sort.Search(len(ds), func(i int) bool { return ds[i].After(t) }) - 1
	if i < 0 || i >= len(ds)-1 {
		return -1
	}
	return i
}

// each calls fn with the pieces of [s, e) cut at day boundaries.
func (ds days) each(s, e time.Time, fn func(day int, s, e time.Time)) {
	if s.Before(ds[0]) {
		s = ds[0]
	}
	if end := ds[len(ds)-1]; e.After(end) {
		e = end
	}
	for i := ds.index(s); i >= 0 && s.Before(e); i++ {
		pe := e
		if ds[i+1].Before(pe) {
			pe = ds[i+1]
		}
		fn(i, s, pe)
		s = pe
	}
}

// sweep adds the union's segments to each day's totals (whose Date is
// already set) and, when heat is not nil, its active time to the heatmap.
// Durations are summed exactly and truncated to seconds once per cell.
func (ds days) sweep(segs []segment, loc *time.Location, totals []DayTotal, heat *Heatmap) {
	act, idl, awy := make([]time.Duration, len(totals)), make([]time.Duration, len(totals)), make([]time.Duration, len(totals))
	var h [7][24]time.Duration
	for _, seg := range segs {
		ds.each(seg.Start, seg.End, func(day int, s, e time.Time) {
			switch seg.State {
			case Active:
				act[day] += e.Sub(s)
				if heat != nil {
					hours(s, e, loc, func(wd, hr int, d time.Duration) { h[wd][hr] += d })
				}
			case Idle:
				idl[day] += e.Sub(s)
			case Away:
				awy[day] += e.Sub(s)
			}
		})
	}
	for i := range totals {
		totals[i].ActiveS, totals[i].IdleS, totals[i].AwayS = seconds(act[i]), seconds(idl[i]), seconds(awy[i])
	}
	if heat != nil {
		for wd := range h {
			for hr := range h[wd] {
				heat[wd][hr] = seconds(h[wd][hr])
			}
		}
	}
}

// Summarize is the report of the days from the day holding from to the day
// holding to (inclusive), in loc, from spans of any number of devices.
func Summarize(spans []Span, loc *time.Location, from, to time.Time) Report {
	if loc == nil {
		loc = time.UTC
	}
	r := Report{Days: []ReportDay{}, Devices: []DeviceSeconds{}}
	if to.Before(from) {
		return r
	}
	cal := calendar(from, to, loc)
	r.Days = make([]ReportDay, len(cal)-1)
	for i := range r.Days {
		r.Days[i] = ReportDay{DayTotal: DayTotal{Date: cal[i].Format(time.DateOnly)}, Devices: []DeviceSeconds{}}
	}
	// The union: states stacked per day, active per hour.
	totals := make([]DayTotal, len(r.Days))
	cal.sweep(userTimeline(spans), loc, totals, &r.Heatmap)
	for i := range r.Days {
		d := &r.Days[i]
		d.ActiveS, d.IdleS, d.AwayS = totals[i].ActiveS, totals[i].IdleS, totals[i].AwayS
		r.ActiveS += d.ActiveS
		r.IdleS += d.IdleS
		r.AwayS += d.AwayS
	}
	// Each device on its own: its active spans cut by day.
	perDay := map[int64][]time.Duration{}
	for _, s := range spans {
		if s.State != Active || !s.End.After(s.Start) {
			continue
		}
		ds := perDay[s.DeviceID]
		if ds == nil {
			ds = make([]time.Duration, len(r.Days))
			perDay[s.DeviceID] = ds
		}
		cal.each(s.Start, s.End, func(day int, a, b time.Time) { ds[day] += b.Sub(a) })
	}
	ids := make([]int64, 0, len(perDay))
	for id := range perDay {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		var total time.Duration
		for i, d := range perDay[id] {
			if d > 0 {
				r.Days[i].Devices = append(r.Days[i].Devices, DeviceSeconds{DeviceID: id, ActiveS: seconds(d)})
				total += d
			}
		}
		if total > 0 {
			r.Devices = append(r.Devices, DeviceSeconds{DeviceID: id, ActiveS: seconds(total)})
		}
	}
	slices.SortStableFunc(r.Devices, func(a, b DeviceSeconds) int { return cmp.Compare(b.ActiveS, a.ActiveS) })
	return r
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// hours calls fn with the pieces of [s, e) cut at loc's hour boundaries,
// with the weekday (Monday 0) and hour each piece falls in. Hours are the
// wall clock's: a 30-minute-offset zone's hours start at :30 UTC, and in
// the hour a daylight-saving change repeats, both runs count as that hour.
func hours(s, e time.Time, loc *time.Location, fn func(weekday, hour int, d time.Duration)) {
	for s.Before(e) {
		lt := s.In(loc)
		next := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour()+1, 0, 0, 0, loc)
		if !next.After(s) {
			next = s.Add(time.Hour) // the repeated hour of a fall-back
		}
		if next.After(e) {
			next = e
		}
		fn((int(lt.Weekday())+6)%7, lt.Hour(), next.Sub(s))
		s = next
	}
}

// PeriodChange compares a running period with the one before it.
type PeriodChange struct {
	Start time.Time `json:"start"` // the current period's start
	// ActiveS is active time from Start to now.
	ActiveS int64 `json:"active_s"`
	// PreviousToDateS is the previous period's active time up to the same
	// point (as far into it as now is into this one): the fair comparison.
	PreviousToDateS int64 `json:"previous_to_date_s"`
	// PreviousS is the whole previous period's active time.
	PreviousS int64 `json:"previous_s"`
}

// Periods is this week (from Monday) and this month, each against the last.
type Periods struct {
	Week  PeriodChange `json:"week"`
	Month PeriodChange `json:"month"`
}

// PeriodsStart is the earliest time Compare needs spans from: the start of
// the previous month or week, whichever is earlier.
func PeriodsStart(now time.Time, loc *time.Location) time.Time {
	_, w := weekBounds(now, loc)
	_, m := monthBounds(now, loc)
	if w.Before(m) {
		return w
	}
	return m
}

func weekBounds(now time.Time, loc *time.Location) (start, prev time.Time) {
	day := midnight(now, loc)
	back := (int(day.Weekday()) + 6) % 7
	start = time.Date(day.Year(), day.Month(), day.Day()-back, 0, 0, 0, 0, loc)
	return start, time.Date(start.Year(), start.Month(), start.Day()-7, 0, 0, 0, 0, loc)
}

func monthBounds(now time.Time, loc *time.Location) (start, prev time.Time) {
	n := now.In(loc)
	start = time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, loc)
	return start, time.Date(n.Year(), n.Month()-1, 1, 0, 0, 0, 0, loc)
}

// Compare is this week's and month's active time (the union over devices)
// against the previous week's and month's, in loc, at now. spans must cover
// PeriodsStart(now, loc) to now.
func Compare(spans []Span, loc *time.Location, now time.Time) Periods {
	if loc == nil {
		loc = time.UTC
	}
	segs := userTimeline(spans)
	active := func(from, to time.Time) int64 {
		var d time.Duration
		for _, s := range segs {
			if s.State == Active {
				d += overlap(s.Start, s.End, from, to)
			}
		}
		return seconds(d)
	}
	change := func(start, prev time.Time) PeriodChange {
		// "As far into it": the same wall-clock offset from the period's
		// start, capped at the previous period's end (a 31st has no match
		// in a 30-day month).
		elapsed := now.Sub(start)
		prevTo := prev.Add(elapsed)
		if prevTo.After(start) {
			prevTo = start
		}
		return PeriodChange{Start: start, ActiveS: active(start, now), PreviousToDateS: active(prev, prevTo), PreviousS: active(prev, start)}
	}
	ws, wp := weekBounds(now, loc)
	ms, mp := monthBounds(now, loc)
	return Periods{Week: change(ws, wp), Month: change(ms, mp)}
}

// ActiveSession is a run of one device's active time: its active spans that
// follow each other without a gap, whatever made the person present.
type ActiveSession struct {
	DeviceID  int64     `json:"device_id"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	DurationS int64     `json:"duration_s"`
	// Why lists what made the person present, in the order it first did.
	Why []Why `json:"why"`
	// Open: the device's last span of it has not ended yet.
	Open bool `json:"open,omitempty"`
}

// ActiveSessions joins each device's active spans into sessions, oldest first.
func ActiveSessions(spans []Span) []ActiveSession {
	act := make([]Span, 0, len(spans))
	for _, s := range spans {
		if s.State == Active && !s.End.Before(s.Start) {
			act = append(act, s)
		}
	}
	slices.SortFunc(act, func(a, b Span) int {
		return cmp.Or(cmp.Compare(a.DeviceID, b.DeviceID), a.Start.Compare(b.Start))
	})
	var out []ActiveSession
	for _, s := range act {
		why := s.Why
		if why == "" {
			why = ByInput
		}
		if n := len(out); n > 0 && out[n-1].DeviceID == s.DeviceID && !s.Start.After(out[n-1].End) {
			last := &out[n-1]
			if s.End.After(last.End) {
				last.End = s.End
			}
			if !slices.Contains(last.Why, why) {
				last.Why = append(last.Why, why)
			}
			last.Open = last.Open || !s.Closed
			continue
		}
		out = append(out, ActiveSession{DeviceID: s.DeviceID, Start: s.Start, End: s.End, Why: []Why{why}, Open: !s.Closed})
	}
	for i := range out {
		out[i].DurationS = seconds(out[i].End.Sub(out[i].Start))
	}
	slices.SortStableFunc(out, func(a, b ActiveSession) int { return a.Start.Compare(b.Start) })
	return out
}

// SessionOrder is how a sessions table is sorted.
type SessionOrder string

// Session orders.
const (
	ByStart    SessionOrder = "start"
	ByDuration SessionOrder = "duration"
	ByDevice   SessionOrder = "device"
)

// SortSessions sorts in place by the order (ties by start), descending
// when desc; names gives device names for ByDevice.
func SortSessions(ss []ActiveSession, by SessionOrder, desc bool, names map[int64]string) error {
	var key func(a, b ActiveSession) int
	switch by {
	case ByStart, "":
		key = func(a, b ActiveSession) int { return 0 }
	case ByDuration:
		key = func(a, b ActiveSession) int { return cmp.Compare(a.DurationS, b.DurationS) }
	case ByDevice:
		key = func(a, b ActiveSession) int {
			return cmp.Or(cmp.Compare(names[a.DeviceID], names[b.DeviceID]), cmp.Compare(a.DeviceID, b.DeviceID))
		}
	default:
		return Errorf(EINVALID, "sort must be start, duration or device")
	}
	slices.SortStableFunc(ss, func(a, b ActiveSession) int {
		c := cmp.Or(key(a, b), a.Start.Compare(b.Start))
		if desc {
			return -c
		}
		return c
	})
	return nil
}

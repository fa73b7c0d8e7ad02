package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Stats: /api/v1/stats/daily, /summary and /sessions share one reading of
// from, to and tz (statsRange); the figures are presence.Summarize,
// presence.Compare and presence.ActiveSessions over the user's spans.

const (
	defaultStatsDays = 7
	maxStatsDays     = 366
	// Sessions table pages.
	defaultSessionsLimit = 50
	maxSessionsLimit     = 500
)

// statsRange is the days a stats request asks for, in the zone it asks in.
type statsRange struct {
	loc      *time.Location
	from, to time.Time // midnights of the first and last day
	end      time.Time // the midnight after the last day
	user     presence.User
}

// statsRange reads ?from=&to=&tz= (dates YYYY-MM-DD in tz, the user's zone
// by default; the last 7 days by default; at most 366 days).
func (s *Server) statsRange(r *http.Request, c caller) (statsRange, error) {
	q := r.URL.Query()
	u, err := s.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		return statsRange{}, fmt.Errorf("user %d: %w", c.UserID, err)
	}
	loc := u.Location()
	if tz := q.Get("tz"); tz != "" {
		if err := presence.ValidateTZ(tz); err != nil {
			return statsRange{}, err
		}
		if loc, err = time.LoadLocation(tz); err != nil {
			return statsRange{}, presence.Errorf(presence.EINVALID, "unknown time zone %q", tz)
		}
	}
	now := s.now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	to, err := queryDate(q.Get("to"), "to", loc, today)
	if err != nil {
		return statsRange{}, err
	}
	from, err := queryDate(q.Get("from"), "from", loc, to.AddDate(0, 0, -(defaultStatsDays-1)))
	if err != nil {
		return statsRange{}, err
	}
	switch days := calendarDays(from, to); {
	case days < 1:
		return statsRange{}, presence.Errorf(presence.EINVALID, "from must not be after to")
	case days > maxStatsDays:
		return statsRange{}, presence.Errorf(presence.EINVALID, "at most %d days at once, asked for %d", maxStatsDays, days)
	}
	end := time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, loc)
	return statsRange{loc: loc, from: from, to: to, end: end, user: u}, nil
}

func queryDate(v, name string, loc *time.Location, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, presence.Errorf(presence.EINVALID, "%s must be a date such as 2026-11-25, not %q", name, v)
	}
	return t, nil
}

// calendarDays counts the days from from to to inclusive, by the calendar
// (a daylight-saving day is still one day).
func calendarDays(from, to time.Time) int {
	a := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	b := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a)/(24*time.Hour)) + 1
}

// deviceNames names the user's devices; a revoked device keeps no name.
func (s *Server) deviceNames(r *http.Request, userID int64) (map[int64]string, error) {
	ds, err := s.store.Devices(r.Context(), userID)
	if err != nil {
		return nil, fmt.Errorf("devices of user %d: %w", userID, err)
	}
	names := make(map[int64]string, len(ds))
	for _, d := range ds {
		names[d.ID] = d.Name
	}
	return names, nil
}

// removedDevice names a device that no longer exists.
const removedDevice = "(removed device)"

func nameOf(names map[int64]string, id int64) string {
	if n, ok := names[id]; ok {
		return n
	}
	return removedDevice
}

// getStatsSummary is GET /api/v1/stats/summary?from=&to=&tz=: per day the
// states stacked and each device's active time, the hour × weekday heatmap,
// and this week and month against the last (those at the request's time,
// whatever the range).
func (s *Server) getStatsSummary(w http.ResponseWriter, r *http.Request, c caller) error {
	rg, err := s.statsRange(r, c)
	if err != nil {
		return err
	}
	now := s.now()
	// One read covers both the range and the periods.
	from, to := rg.from, rg.end
	if p := presence.PeriodsStart(now, rg.loc); p.Before(from) {
		from = p
	}
	if now.After(to) {
		to = now
	}
	spans, err := s.store.Spans(r.Context(), presence.SpanQuery{UserID: c.UserID, From: from, To: to})
	if err != nil {
		return fmt.Errorf("spans of user %d: %w", c.UserID, err)
	}
	names, err := s.deviceNames(r, c.UserID)
	if err != nil {
		return err
	}
	rep := presence.Summarize(spans, rg.loc, rg.from, rg.to)
	out := StatsSummary{
		From:    rg.from.Format(time.DateOnly),
		To:      rg.to.Format(time.DateOnly),
		TZ:      rg.loc.String(),
		Report:  rep,
		Devices: make([]DeviceActive, len(rep.Devices)),
		Periods: presence.Compare(spans, rg.loc, now),
	}
	for i, d := range rep.Devices {
		out.Devices[i] = DeviceActive{DeviceSeconds: d, Name: nameOf(names, d.DeviceID)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getStatsSessions is GET /api/v1/stats/sessions?from=&to=&tz=&device=&sort=&order=&limit=&offset=:
// the sessions table — each device's runs of active time, sortable by
// start, duration or device, paged, with the count and total of all rows.
// A session running over the range's edge is listed once, with its whole
// length: the table answers "how long did I work", not "how much of it fell
// in these days" (that is the summary's).
func (s *Server) getStatsSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	rg, err := s.statsRange(r, c)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sq := presence.SpanQuery{UserID: c.UserID, From: rg.from, To: rg.end, States: []presence.State{presence.Active}}
	if v := q.Get("device"); v != "" {
		if sq.DeviceID, err = strconv.ParseInt(v, 10, 64); err != nil || sq.DeviceID <= 0 {
			return presence.Errorf(presence.EINVALID, "device must be a device id, not %q", v)
		}
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		return presence.Errorf(presence.EINVALID, "order must be asc or desc")
	}
	limit, err := queryInt(q.Get("limit"), "limit", defaultSessionsLimit, 1, maxSessionsLimit)
	if err != nil {
		return err
	}
	offset, err := queryInt(q.Get("offset"), "offset", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	spans, err := s.store.Spans(r.Context(), sq)
	if err != nil {
		return fmt.Errorf("spans of user %d: %w", c.UserID, err)
	}
	names, err := s.deviceNames(r, c.UserID)
	if err != nil {
		return err
	}
	sessions := presence.ActiveSessions(spans)
	if err := presence.SortSessions(sessions, presence.SessionOrder(q.Get("sort")), order == "desc", names); err != nil {
		return err
	}
	out := StatsSessions{Sessions: []SessionRow{}, Total: len(sessions), Limit: limit, Offset: offset}
	for _, ss := range sessions {
		out.TotalS += ss.DurationS
	}
	if offset < len(sessions) {
		for _, ss := range sessions[offset:min(len(sessions), offset+limit)] {
			out.Sessions = append(out.Sessions, SessionRow{ActiveSession: ss, DeviceName: nameOf(names, ss.DeviceID)})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func queryInt(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, presence.Errorf(presence.EINVALID, "%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// StatsSummary is GET /api/v1/stats/summary.
type StatsSummary struct {
	From string `json:"from"`
	To   string `json:"to"`
	TZ   string `json:"tz"`
	presence.Report
	// Devices shadows the report's: the same figures, with names.
	Devices []DeviceActive   `json:"devices"`
	Periods presence.Periods `json:"periods"`
}

// DeviceActive is a device's active time over the range, named.
type DeviceActive struct {
	presence.DeviceSeconds
	Name string `json:"name"`
}

// StatsSessions is GET /api/v1/stats/sessions: one page of the table.
type StatsSessions struct {
	Sessions []SessionRow `json:"sessions"`
	Total    int          `json:"total"`   // rows in the whole table
	TotalS   int64        `json:"total_s"` // their summed durations
	Limit    int          `json:"limit"`
	Offset   int          `json:"offset"`
}

// SessionRow is one row of the sessions table.
type SessionRow struct {
	presence.ActiveSession
	DeviceName string `json:"device_name"`
}

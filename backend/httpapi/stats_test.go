package httpapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// history loads spans into a device through the store's import.
func (e *env) history(d presence.Device, spans ...presence.Span) {
	e.t.Helper()
	if _, _, err := e.store.ImportSpans(e.ctx, d.ID, spans); err != nil {
		e.t.Fatalf("import history: %v", err)
	}
}

func getJSON[T any](e *env, path, token string) T {
	e.t.Helper()
	res := e.do(request{method: "GET", path: path, token: token})
	if res.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, res.status, res.body)
	}
	var v T
	if err := json.Unmarshal(res.body, &v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

func active(start, end time.Time, why presence.Why) presence.Span {
	return presence.Span{State: presence.Active, Why: why, Start: start, End: end}
}

func TestStatsSummaryAndSessions(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)) // Wednesday
	ann, annTok := e.user("ann")
	tower, _ := e.device(ann, "tower")
	laptop, _ := e.device(ann, "laptop")
	bob, bobTok := e.user("bob")
	bobPC, _ := e.device(bob, "pc")
	at := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC) }

	e.history(tower,
		active(at(24, 9, 0), at(24, 10, 0), ""),
		active(at(24, 10, 0), at(24, 10, 30), presence.ByCall), // the same session, now on a call
		presence.Span{State: presence.Idle, Start: at(24, 10, 30), End: at(24, 11, 0)},
		active(at(25, 9, 0), at(25, 12, 0), ""),
	)
	e.history(laptop, active(at(25, 11, 0), at(25, 13, 0), presence.ByMedia))
	e.history(bobPC, active(at(25, 0, 0), at(25, 17, 0), "")) // someone else's: never counted for ann

	sum := getJSON[StatsSummary](e, "/api/v1/stats/summary?from=2026-11-24&to=2026-11-25&tz=UTC", annTok)
	if sum.From != "2026-11-24" || sum.To != "2026-11-25" || sum.TZ != "UTC" || len(sum.Days) != 2 {
		t.Fatalf("summary range = %s..%s %s, %d days", sum.From, sum.To, sum.TZ, len(sum.Days))
	}
	if d := sum.Days[0]; d.ActiveS != 5400 || d.IdleS != 1800 {
		t.Errorf("24th = %+v, want 1.5 h active and 30 min idle", d)
	}
	// 25th: tower 9–12 and laptop 11–13 are 4 h together, 5 h apart.
	if d := sum.Days[1]; d.ActiveS != 4*3600 || len(d.Devices) != 2 || d.Devices[0].ActiveS+d.Devices[1].ActiveS != 5*3600 {
		t.Errorf("25th = %+v, want 4 h union over 5 h of devices", d)
	}
	if len(sum.Devices) != 2 || sum.Devices[0].Name != "tower" || sum.Devices[0].ActiveS != 4*3600+1800 || sum.Devices[1].Name != "laptop" {
		t.Errorf("devices = %+v", sum.Devices)
	}
	if got := sum.Heatmap[2][11]; got != 3600 { // Wednesday 11:00: both devices, counted once
		t.Errorf("heatmap[Wed][11] = %d, want 3600", got)
	}
	if sum.Periods.Week.ActiveS != 5400+4*3600 || sum.Periods.Week.Start.Format(time.DateOnly) != "2026-11-23" {
		t.Errorf("week = %+v", sum.Periods.Week)
	}

	// Ann's zone moves the day boundaries: in Tokyo (UTC+9), 25th 09:00 UTC is 18:00.
	tokyo := getJSON[StatsSummary](e, "/api/v1/stats/summary?from=2026-11-25&to=2026-11-25&tz=Asia/Tokyo", annTok)
	if got := tokyo.Heatmap[2][18]; got != 3600 {
		t.Errorf("Tokyo heatmap[Wed][18] = %d, want 3600", got)
	}

	tab := getJSON[StatsSessions](e, "/api/v1/stats/sessions?from=2026-11-24&to=2026-11-25&tz=UTC&sort=duration&order=desc", annTok)
	if tab.Total != 3 || tab.TotalS != 5400+3*3600+2*3600 {
		t.Fatalf("sessions total = %d rows, %d s; want 3 rows, %d s", tab.Total, tab.TotalS, 5400+5*3600)
	}
	first := tab.Sessions[0]
	if first.DeviceName != "tower" || first.DurationS != 3*3600 {
		t.Errorf("longest session = %+v", first)
	}
	last := tab.Sessions[2]
	if last.DurationS != 5400 || len(last.Why) != 2 || last.Why[1] != presence.ByCall {
		t.Errorf("the call session = %+v, want 1.5 h, why input then call", last)
	}
	page := getJSON[StatsSessions](e, "/api/v1/stats/sessions?from=2026-11-24&to=2026-11-25&tz=UTC&limit=1&offset=2", annTok)
	if page.Total != 3 || len(page.Sessions) != 1 || page.Sessions[0].DeviceName != "laptop" {
		t.Errorf("page 3 of 1 = %+v, want the laptop's session (sorted by start)", page)
	}
	past := getJSON[StatsSessions](e, "/api/v1/stats/sessions?from=2026-11-24&to=2026-11-25&offset=99", annTok)
	if past.Total != 3 || len(past.Sessions) != 0 {
		t.Errorf("beyond the last page: %+v", past)
	}
	byDev := getJSON[StatsSessions](e, fmt.Sprintf("/api/v1/stats/sessions?from=2026-11-24&to=2026-11-25&device=%d", laptop.ID), annTok)
	if byDev.Total != 1 {
		t.Errorf("laptop's sessions = %d, want 1", byDev.Total)
	}
	bobs := getJSON[StatsSessions](e, "/api/v1/stats/sessions?from=2026-11-24&to=2026-11-25", bobTok)
	if bobs.Total != 1 || bobs.Sessions[0].DurationS != 17*3600 {
		t.Errorf("bob's sessions = %+v", bobs)
	}

	for _, tc := range []struct {
		path, want string
	}{
		{"/api/v1/stats/summary?from=2025-11-23&to=2026-11-24", "at most 366 days"},
		{"/api/v1/stats/summary?tz=Mars/Base", "unknown time zone"},
		{"/api/v1/stats/sessions?sort=name", "sort must be"},
		{"/api/v1/stats/sessions?order=up", "order must be"},
		{"/api/v1/stats/sessions?limit=0", "limit must be"},
		{"/api/v1/stats/sessions?limit=501", "limit must be"},
		{"/api/v1/stats/sessions?offset=-1", "offset must be"},
		{"/api/v1/stats/sessions?device=x", "device must be"},
		{"/api/v1/stats/sessions?limit=9223372036854775808", "limit must be"},
	} {
		res := e.do(request{method: "GET", path: tc.path, token: annTok})
		if res.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.path, res.status)
			continue
		}
		if msg := res.apiError(t).Message; !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.path, msg, tc.want)
		}
	}
	if res := e.do(request{method: "GET", path: "/api/v1/stats/summary"}); res.status != http.StatusUnauthorized {
		t.Errorf("summary without a token: %d, want 401", res.status)
	}
}

// busyYear is a year of a busy user on two machines: workdays of many short
// active runs broken by idle and away time, evenings on the laptop, some
// weekends — about 40,000 spans.
func busyYear(rng *rand.Rand, start time.Time) (tower, laptop []presence.Span) {
	whys := []presence.Why{"", "", "", presence.ByCall, presence.ByMedia}
	day := func(out []presence.Span, at time.Time, hours float64) []presence.Span {
		end := at.Add(time.Duration(hours * float64(time.Hour)))
		for at.Before(end) {
			n := time.Duration(5+rng.IntN(20)) * time.Minute
			out = append(out, active(at, at.Add(n), whys[rng.IntN(len(whys))]))
			at = at.Add(n)
			gap := time.Duration(1+rng.IntN(8)) * time.Minute
			st := presence.Idle
			if rng.IntN(4) == 0 {
				st = presence.Away
			}
			out = append(out, presence.Span{State: st, Start: at, End: at.Add(gap)})
			at = at.Add(gap + time.Minute) // a minute of silence between runs
		}
		return out
	}
	for d := range 365 {
		date := start.AddDate(0, 0, d)
		if wd := date.Weekday(); wd != time.Saturday && wd != time.Sunday || rng.IntN(3) == 0 {
			tower = day(tower, date.Add(8*time.Hour), 9)
		}
		if rng.IntN(2) == 0 {
			laptop = day(laptop, date.Add(19*time.Hour), 2.5)
		}
	}
	return tower, laptop
}

// BenchmarkStatsYear is the stats API opening a whole year of a busy user
// (≈40,000 spans on two devices) on SQLite: the server time of each answer,
// store read included. The target is ≤ 100 ms per request.
func BenchmarkStatsYear(b *testing.B) {
	e := newEnv(b)
	start := time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC)
	e.clock.Set(start.AddDate(1, 0, 1))
	u, tok := e.user("busy")
	d1, _ := e.device(u, "tower")
	d2, _ := e.device(u, "laptop")
	tower, laptop := busyYear(rand.New(rand.NewPCG(1, 2)), start)
	e.history(d1, tower...)
	e.history(d2, laptop...)
	b.Logf("%d spans", len(tower)+len(laptop))
	// The baseline: reading the year's spans from the store, nothing else.
	// Each endpoint's figure is best read as a ratio to it, from the same run.
	b.Run("spans-read", func(b *testing.B) {
		paris, _ := time.LoadLocation("Europe/Paris")
		from := time.Date(2025, 11, 26, 0, 0, 0, 0, paris)
		for b.Loop() {
			if _, err := e.store.Spans(e.ctx, presence.SpanQuery{UserID: u.ID, From: from, To: from.AddDate(1, 0, 0)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, path := range []string{
		"/api/v1/stats/summary?from=2025-11-26&to=2026-11-25&tz=Europe/Paris",
		"/api/v1/stats/sessions?from=2025-11-26&to=2026-11-25&tz=Europe/Paris&sort=duration&order=desc",
		"/api/v1/stats/daily?from=2025-11-26&to=2026-11-25&tz=Europe/Paris",
	} {
		name, _, _ := strings.Cut(strings.TrimPrefix(path, "/api/v1/stats/"), "?")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				e.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
				}
			}
		})
	}
}

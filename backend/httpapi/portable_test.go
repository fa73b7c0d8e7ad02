package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/importer"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/storetest"
)

func fixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(storetest.FixturePath(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) importBody(token, query, body string) ImportResponse {
	e.t.Helper()
	r := e.do(request{method: http.MethodPost, path: "/api/v1/import" + query, token: token, body: body})
	if r.status != http.StatusOK {
		e.t.Fatalf("import%s: %d %s", query, r.status, r.body)
	}
	var out ImportResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// sessionKey is a span as a person compares two histories: the device by
// name, and everything but the ids and whether it is still running.
func (e *env) sessionKeys(token string, from, to time.Time) []string {
	e.t.Helper()
	devs, err := e.client(token).Devices(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	names := map[int64]string{}
	for _, d := range devs.Devices {
		names[d.ID] = d.Name
	}
	res, err := e.client(token).Sessions(e.ctx, SessionsQuery{From: from, To: to, State: "all"})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range res.Sessions {
		out = append(out, fmt.Sprintf("%s %s %s %s–%s %ds ended %q replayed %v", names[s.DeviceID], s.State, s.Why,
			s.Start.Format(time.RFC3339Nano), s.End.Format(time.RFC3339Nano), s.DurationS, s.EndReason, s.Replayed))
	}
	slices.Sort(out)
	return out
}

func (e *env) daily(token string) []presence.DayTotal {
	e.t.Helper()
	res, err := e.client(token).DailyStats(e.ctx, DailyStatsQuery{From: "2026-02-01", To: "2026-12-03"})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Days
}

// An export imported into a fresh server gives the same sessions and the
// same daily totals, and importing it twice changes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	src := newEnv(t)
	src.clock.Set(storetest.FixtureNow)
	u, tok := src.user("ada")
	tz := "Europe/Paris"
	if _, err := src.store.UpdateUser(src.ctx, u.ID, presence.UserUpdate{TZ: &tz}); err != nil {
		t.Fatal(err)
	}
	// History of three kinds: ActivityWatch's (February to December, so
	// the export walks many pages), a span across a page boundary and a
	// midnight, and live beats with an open tail.
	aw := src.importBody(tok, "?device_name=vm", fixture(t))
	if aw.Added == 0 || len(aw.Devices) != 1 || !aw.Devices[0].Created {
		t.Fatalf("fixture import: %+v", aw)
	}
	desk, dtok := src.device(u, "desk")
	paris, _ := time.LoadLocation(tz)
	cross := presence.Span{State: presence.Away, Start: time.Date(2026, 3, 11, 23, 0, 0, 0, paris), End: time.Date(2026, 3, 12, 1, 30, 0, 0, paris)}
	if added, _, err := src.store.ImportSpans(src.ctx, desk.ID, []presence.Span{cross}); err != nil || added != 1 {
		t.Fatalf("import the crossing span: %d, %v", added, err)
	}
	now := storetest.FixtureNow
	src.beats(dtok,
		beat(1, now.Add(-3*time.Hour), presence.Active),
		beat(2, now.Add(-3*time.Hour+30*time.Second), presence.Active),
		presence.Beat{Seq: 3, At: now.Add(-2 * time.Hour), State: presence.Idle, Since: now.Add(-2*time.Hour - 10*time.Minute)},
		presence.Beat{Seq: 4, At: now.Add(-90 * time.Minute), State: presence.Offline, Reason: presence.EndSleep},
		presence.Beat{Seq: 5, At: now.Add(-time.Minute), State: presence.Active, Why: presence.ByCall},
		presence.Beat{Seq: 6, At: now.Add(-30 * time.Second), State: presence.Active, Why: presence.ByCall},
	)

	r := src.do(request{method: http.MethodGet, path: "/api/v1/export", token: tok})
	if r.status != http.StatusOK {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="lastseen-ada-2026-12-03.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var x importer.Export
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("the export is not the documented JSON: %v\n%s", err, r.body)
	}
	all, err := src.store.Spans(src.ctx, presence.SpanQuery{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if x.Version != 1 || x.User.Handle != "ada" || x.User.TZ != tz || !x.ExportedAt.Equal(now) || len(x.Devices) != 2 {
		t.Errorf("export head: version %d, user %+v, exported_at %s, devices %+v", x.Version, x.User, x.ExportedAt, x.Devices)
	}
	if len(x.Spans) != len(all) {
		t.Fatalf("the export holds %d spans, the store %d: a page boundary lost or repeated some", len(x.Spans), len(all))
	}
	slept := 0
	for i, s := range x.Spans {
		if s.DurationS != int64(s.End.Sub(s.Start)/time.Second) || s.Start.Location() != time.UTC {
			t.Errorf("span %d: %+v: want UTC times and duration_s = end − start", i, s)
		}
		// The beats hours old reached the service late: replayed.
		if s.EndReason == presence.EndSleep && s.State == presence.Idle && s.Replayed {
			slept++
		}
	}
	if slept != 1 {
		t.Errorf("the export has %d replayed idle spans ended by sleep, want 1:\n%s", slept, r.body)
	}
	wantDaily := src.daily(tok)
	var nonEmpty []presence.DayTotal
	for _, d := range wantDaily {
		if d.ActiveS+d.IdleS+d.AwayS > 0 {
			nonEmpty = append(nonEmpty, d)
		}
	}
	if !slices.Equal(x.Daily, nonEmpty) {
		t.Errorf("export daily:\n%+v\nwant the days with presence of /stats/daily:\n%+v", x.Daily, nonEmpty)
	}
	// The crossing span counts on both sides of the Paris midnight.
	for _, d := range x.Daily {
		if d.Date == "2026-03-11" && d.AwayS != 3600 || d.Date == "2026-03-12" && d.AwayS != 5400 {
			t.Errorf("day %s away %d s", d.Date, d.AwayS)
		}
	}

	dst := newEnv(t)
	dst.clock.Set(now)
	u2, tok2 := dst.user("ada")
	if _, err := dst.store.UpdateUser(dst.ctx, u2.ID, presence.UserUpdate{TZ: &tz}); err != nil {
		t.Fatal(err)
	}
	res := dst.importBody(tok2, "", string(r.body))
	if res.Format != importer.FormatLastseen || res.Added != len(all) || res.Skipped != 0 || len(res.Devices) != 2 {
		t.Errorf("import into a fresh server: %+v, want %d added over 2 devices", res, len(all))
	}
	from, to := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), now.Add(time.Hour)
	if a, b := src.sessionKeys(tok, from, to), dst.sessionKeys(tok2, from, to); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("sessions differ:\nsource:\n%s\nimported:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if got := dst.daily(tok2); !slices.Equal(got, wantDaily) {
		t.Errorf("daily totals differ:\nsource:\n%+v\nimported:\n%+v", wantDaily, got)
	}
	again := dst.importBody(tok2, "", string(r.body))
	if again.Added != 0 || again.Skipped != len(all) {
		t.Errorf("second import: %+v, want 0 added, %d skipped", again, len(all))
	}
	for _, d := range again.Devices {
		if d.Created {
			t.Errorf("the second import created device %q again", d.Name)
		}
	}
}

func TestImportActivityWatch(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(storetest.FixtureNow)
	u, tok := e.user("ada")
	res := e.importBody(tok, "?device_name=Laptop", fixture(t))
	if res.Format != importer.FormatActivityWatch || len(res.Devices) != 1 || res.Devices[0].Name != "Laptop" || !res.Devices[0].Created {
		t.Fatalf("import: %+v", res)
	}
	n := res.Added
	if res.Skipped != 0 || n != 26 {
		// 13 stretches of input and 13 afk stretches between and after them.
		t.Errorf("added %d, skipped %d; want 26, 0", n, res.Skipped)
	}
	sessions, err := e.client(tok).Sessions(e.ctx, SessionsQuery{From: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), To: storetest.FixtureNow})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sessions.Sessions {
		got = append(got, s.Start.Format("01-02 15:04")+"–"+s.End.Format("15:04"))
		if s.Open || s.Why != presence.ByInput {
			t.Errorf("session %+v: want closed, by input", s)
		}
	}
	want := "02-09 08:02–10:47 02-09 11:05–12:30 02-09 13:31–17:12 02-10 07:55–12:01 02-10 12:58–16:40 " +
		"11-30 08:30–11:15 11-30 11:40–12:10 11-30 14:00–18:20 12-01 09:10–12:45 12-01 13:30–15:05 " +
		"12-02 08:45–10:00 12-02 10:20–12:00 12-02 21:30–23:10"
	if strings.Join(got, " ") != want {
		t.Errorf("sessions\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	again := e.importBody(tok, "?device_name=Laptop", fixture(t))
	if again.Added != 0 || again.Skipped != n || again.Devices[0].Created || again.Devices[0].ID != res.Devices[0].ID {
		t.Errorf("second import: %+v, want 0 added, %d skipped, into the same device", again, n)
	}
	byID := e.importBody(tok, "?device="+strconv.FormatInt(res.Devices[0].ID, 10), fixture(t))
	if byID.Added != 0 || byID.Devices[0].Name != "Laptop" {
		t.Errorf("import by device id: %+v", byID)
	}
	// Without a device, the bucket's host names it.
	byHost := e.importBody(tok, "", fixture(t))
	if byHost.Devices[0].Name != "vm" || byHost.Added != n {
		t.Errorf("import by host: %+v, want %d added to a new device vm", byHost, n)
	}
	devs, _ := e.store.Devices(e.ctx, u.ID)
	if len(devs) != 2 {
		t.Errorf("%d devices, want Laptop and vm", len(devs))
	}
}

func TestExportCSV(t *testing.T) {
	e := newEnv(t)
	u, tok := e.user("bob")
	evil, _ := e.device(u, "=HYPERLINK(\"http://x\")")
	plain, _ := e.device(u, "desk, upstairs")
	spans := []presence.Span{
		{State: presence.Active, Start: T0.Add(-3 * time.Hour), End: T0.Add(-2*time.Hour - 30*time.Second)},
		{State: presence.Idle, Start: T0.Add(-2*time.Hour - 30*time.Second), End: T0.Add(-2 * time.Hour), EndReason: presence.EndShutdown},
	}
	if _, _, err := e.store.ImportSpans(e.ctx, evil.ID, spans); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.ImportSpans(e.ctx, plain.ID, []presence.Span{{State: presence.Away, Why: presence.ByLock, Start: T0.Add(-time.Hour), End: T0.Add(-time.Minute), Replayed: true}}); err != nil {
		t.Fatal(err)
	}
	r := e.do(request{method: http.MethodGet, path: "/api/v1/export?format=csv", token: tok})
	if r.status != http.StatusOK {
		t.Fatalf("export csv: %d %s", r.status, r.body)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="lastseen-bob-2026-11-25.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"device", "state", "why", "start", "end", "duration_s", "end_reason", "replayed"},
		{`'=HYPERLINK("http://x")`, "active", "input", "2026-11-25T06:00:00Z", "2026-11-25T06:59:30Z", "3570", "", "false"},
		{`'=HYPERLINK("http://x")`, "idle", "", "2026-11-25T06:59:30Z", "2026-11-25T07:00:00Z", "30", "shutdown", "false"},
		{"desk, upstairs", "away", "locked", "2026-11-25T08:00:00Z", "2026-11-25T08:59:00Z", "3540", "", "true"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("csv rows\n%q\nwant\n%q", rows, want)
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"desk": "desk", "": "", "a=b": "a=b", "'quoted": "'quoted",
	} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExportOfNothing(t *testing.T) {
	e := newEnv(t)
	_, tok := e.user("new")
	r := e.do(request{method: http.MethodGet, path: "/api/v1/export", token: tok})
	var x importer.Export
	if err := json.Unmarshal(r.body, &x); err != nil || r.status != 200 {
		t.Fatalf("export: %d %s (%v)", r.status, r.body, err)
	}
	if x.Spans == nil || len(x.Spans) != 0 || x.Daily == nil || len(x.Daily) != 0 || x.Devices == nil {
		t.Errorf("empty export: %s, want empty arrays, not null", r.body)
	}
	r = e.do(request{method: http.MethodGet, path: "/api/v1/export?format=csv", token: tok})
	if string(r.body) != "device,state,why,start,end,duration_s,end_reason,replayed\n" {
		t.Errorf("empty csv: %q", r.body)
	}
}

// endless is an io.Reader of n bytes of JSON-ish filler.
type endless struct{ n int64 }

func (r *endless) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n)
	for i := range k {
		p[i] = ' '
	}
	r.n -= k
	return int(k), nil
}

func TestPortableErrors(t *testing.T) {
	e := newEnv(t)
	u, tok := e.user("ada")
	_, dtok := e.device(u, "desk")
	other, _ := e.user("eve")
	theirs, _ := e.device(other, "theirs")
	aw := fixture(t)
	cases := []struct {
		name              string
		method, path, tok string
		body              string
		status            int
		code, messagePart string
	}{
		{"export without a token", "GET", "/api/v1/export", "", "", 401, "unauthorized", ""},
		{"export with a device token", "GET", "/api/v1/export", dtok, "", 403, "forbidden", "user token"},
		{"export in an unknown format", "GET", "/api/v1/export?format=xml", tok, "", 400, "invalid", "json or csv"},
		{"import without a token", "POST", "/api/v1/import", "", aw, 401, "unauthorized", ""},
		{"import with a device token", "POST", "/api/v1/import", dtok, aw, 403, "forbidden", ""},
		{"import of nothing", "POST", "/api/v1/import", tok, "", 400, "invalid", "empty"},
		{"import of broken JSON", "POST", "/api/v1/import", tok, `{"buckets": {`, 400, "invalid", "malformed JSON"},
		{"import of another file", "POST", "/api/v1/import", tok, `{"name": "x"}`, 400, "invalid", "ActivityWatch"},
		{"import with both device and device_name", "POST", "/api/v1/import?device=1&device_name=x", tok, aw, 400, "invalid", "not both"},
		{"import into a device id that is not one", "POST", "/api/v1/import?device=abc", tok, aw, 400, "invalid", "device id"},
		{"import into someone else's device", "POST", fmt.Sprintf("/api/v1/import?device=%d", theirs.ID), tok, aw, 404, "not_found", ""},
		{"import with a bad device name", "POST", "/api/v1/import?device_name=%0A", tok, aw, 400, "invalid", "device_name"},
		{"GET import", "GET", "/api/v1/import", tok, "", 405, "invalid", "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(request{method: tc.method, path: tc.path, token: tc.tok, body: tc.body})
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			d := r.apiError(t)
			if d.Code != tc.code || !strings.Contains(d.Message, tc.messagePart) {
				t.Errorf("error %+v, want code %s mentioning %q", d, tc.code, tc.messagePart)
			}
			if r.header.Get("Content-Disposition") != "" {
				t.Error("an error came as an attachment")
			}
		})
	}
	t.Run("an import over the cap", func(t *testing.T) {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.ts.URL+"/api/v1/import", &endless{n: MaxImportBytes + 1})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("status %d (%s), want 413", resp.StatusCode, b)
		}
	})
	if devs, _ := e.store.Devices(e.ctx, u.ID); len(devs) != 1 {
		t.Errorf("refused imports left %d devices, want the one", len(devs))
	}
}

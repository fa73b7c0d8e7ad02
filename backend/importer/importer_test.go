package importer

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// now is after the fixture's last event (2026-12-02 23:50 UTC).
var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func opts() Options { return Options{Now: func() time.Time { return now }} }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// FixtureActive is what the fixture's README lists: the stretches of input.
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

func spanText(s presence.Span) string {
	return s.Start.UTC().Format(time.RFC3339) + "/" + s.End.UTC().Format(time.RFC3339)
}

func TestFixtureGivesTheListedSessions(t *testing.T) {
	data, err := os.ReadFile("testdata/activitywatch-export.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, opts())
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != FormatActivityWatch || len(f.Sources) != 1 || f.Sources[0].Name != "vm" {
		t.Fatalf("format %q, sources %+v: want one ActivityWatch source named vm (the window bucket ignored)", f.Format, f.Sources)
	}
	var active []string
	var idle time.Duration
	for i, s := range f.Sources[0].Spans {
		if !s.Closed {
			t.Errorf("span %d is not closed", i)
		}
		if i > 0 && s.Start.Before(f.Sources[0].Spans[i-1].End) {
			t.Errorf("span %d overlaps the one before", i)
		}
		switch s.State {
		case presence.Active:
			active = append(active, spanText(s))
			if s.Why != presence.ByInput {
				t.Errorf("active span %s: why %q, want input", spanText(s), s.Why)
			}
		case presence.Idle:
			idle += s.Duration()
		default:
			t.Errorf("span %s has state %s", spanText(s), s.State)
		}
	}
	if strings.Join(active, "\n") != strings.Join(fixtureActive, "\n") {
		t.Errorf("active spans:\n%s\nwant:\n%s", strings.Join(active, "\n"), strings.Join(fixtureActive, "\n"))
	}
	// The afk events of the fixture, summed: every one is idle, none overlaps.
	if want := (1080 + 3660 + 2400 + 3420 + 2400 + 1500 + 6600 + 2400 + 2700 + 2400 + 1200 + 34200 + 2400) * time.Second; idle != want {
		t.Errorf("idle %s, want %s", idle, want)
	}
}

// aw builds an ActivityWatch export with one AFK bucket of events
// (timestamp, seconds, status) and a window bucket that must be ignored.
func aw(events ...string) string {
	return fmt.Sprintf(`{"buckets": {
		"aw-watcher-window_h": {"type": "currentwindow", "hostname": "h", "events": [
			{"timestamp": "2026-11-30T08:00:00Z", "duration": 99999, "data": {"app": "x"}}]},
		"aw-watcher-afk_h": {"id": "aw-watcher-afk_h", "type": "afkstatus", "hostname": "h", "events": [%s]}}}`,
		strings.Join(events, ","))
}

func ev(ts string, sec float64, status string) string {
	return fmt.Sprintf(`{"timestamp": %q, "duration": %v, "data": {"status": %q}}`, ts, sec, status)
}

func TestActivityWatchMapping(t *testing.T) {
	type want struct {
		state      presence.State
		start, end string
	}
	A, I := presence.Active, presence.Idle
	cases := []struct {
		name   string
		events []string
		want   []want
	}{
		{"not-afk is active, afk idle", []string{
			ev("2026-11-30T08:00:00Z", 600, "not-afk"), ev("2026-11-30T08:10:00Z", 300, "afk")},
			[]want{{A, "08:00", "08:10"}, {I, "08:10", "08:15"}}},
		{"overlapping events of one status merge", []string{
			ev("2026-11-30T08:00:00Z", 600, "not-afk"), ev("2026-11-30T08:05:00Z", 600, "not-afk")},
			[]want{{A, "08:00", "08:15"}}},
		{"touching events of one status merge", []string{
			ev("2026-11-30T08:00:00Z", 600, "not-afk"), ev("2026-11-30T08:10:00Z", 600, "not-afk")},
			[]want{{A, "08:00", "08:20"}}},
		{"zero-length events are dropped", []string{
			ev("2026-11-30T08:00:00Z", 0, "not-afk"), ev("2026-11-30T09:00:00Z", 0, "afk")},
			nil},
		{"not-afk wins where afk overlaps it", []string{
			ev("2026-11-30T08:00:00Z", 3600, "afk"), ev("2026-11-30T08:20:00Z", 600, "not-afk")},
			[]want{{I, "08:00", "08:20"}, {A, "08:20", "08:30"}, {I, "08:30", "09:00"}}},
		{"afk inside not-afk vanishes", []string{
			ev("2026-11-30T08:00:00Z", 3600, "not-afk"), ev("2026-11-30T08:20:00Z", 60, "afk")},
			[]want{{A, "08:00", "09:00"}}},
		{"events in any order", []string{
			ev("2026-11-30T09:00:00Z", 60, "not-afk"), ev("2026-11-30T08:00:00Z", 60, "not-afk")},
			[]want{{A, "08:00", "08:01"}, {A, "09:00", "09:01"}}},
		{"fractional seconds and offsets", []string{
			ev("2026-11-30T09:00:00.500000+01:00", 59.5, "not-afk")},
			[]want{{A, "08:00:00.5", "08:01"}}},
		{"a time without a zone is UTC", []string{
			ev("2026-11-30T08:00:00.000000", 60, "not-afk")},
			[]want{{A, "08:00", "08:01"}}},
		{"spans are cut at the clock", []string{
			ev("2026-12-03T11:00:00Z", 7200, "not-afk"), ev("2026-12-03T12:30:00Z", 60, "afk")},
			[]want{{A, "2026-12-03T11:00", "2026-12-03T12:00"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(aw(tc.events...)), opts())
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Sources) != 1 {
				t.Fatalf("%d sources, want 1", len(f.Sources))
			}
			var got, exp []string
			for _, s := range f.Sources[0].Spans {
				got = append(got, fmt.Sprintf("%s %s", s.State, spanText(s)))
			}
			for _, w := range tc.want {
				exp = append(exp, fmt.Sprintf("%s %s/%s", w.state, hm(w.start), hm(w.end)))
			}
			if strings.Join(got, "\n") != strings.Join(exp, "\n") {
				t.Errorf("spans:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
		})
	}
}

// hm reads "08:10" as that time on 2026-11-30, or a longer form as given.
func hm(s string) string {
	if len(s) <= len("08:00:00.5") {
		s = "2026-11-30T" + s
	}
	if strings.Count(s, ":") == 1 {
		s += ":00"
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		panic(err)
	}
	return t.Format(time.RFC3339)
}

func TestRefusals(t *testing.T) {
	far := now.Add(MaxFuture + time.Hour).Format(time.RFC3339)
	cases := []struct {
		name, body, want string
	}{
		{"empty", ``, "empty"},
		{"not JSON", `{"buckets": [}`, "malformed JSON at byte"},
		{"truncated", `{"buckets": {"aw-watcher-afk_h": {"events": [`, "ends before"},
		{"an array", `[1, 2]`, "must be an object"},
		{"two values", `{"version": 1} {}`, "exactly one JSON value"},
		{"neither format", `{"hello": "world"}`, "not an export this server reads"},
		{"no AFK bucket", `{"buckets": {"aw-watcher-window_h": {"type": "currentwindow", "events": []}}}`, "no AFK bucket"},
		{"buckets not an object", `{"buckets": 3}`, `"buckets" must be an object`},
		{"event not an object", aw(`7`), `events[0] must be an object`},
		{"negative duration", aw(ev("2026-11-30T08:00:00Z", -5, "afk")), "must not be negative"},
		{"huge duration", aw(`{"timestamp": "2026-11-30T08:00:00Z", "duration": 1e300, "data": {"status": "afk"}}`), "more than a hundred years"},
		{"overflowing number", aw(`{"timestamp": "2026-11-30T08:00:00Z", "duration": 1e400, "data": {"status": "afk"}}`), "must be a number of seconds"},
		{"duration not a number", aw(`{"timestamp": "2026-11-30T08:00:00Z", "duration": "long", "data": {"status": "afk"}}`), "events[0]"},
		{"bad timestamp", aw(ev("yesterday", 5, "afk")), `events[0].timestamp must be an RFC 3339 time`},
		{"missing timestamp", aw(`{"duration": 5, "data": {"status": "afk"}}`), "timestamp is missing"},
		{"timestamp before 1980", aw(ev("1601-01-01T00:00:00Z", 5, "afk")), "before 1980"},
		{"timestamp far ahead", aw(ev(far, 5, "afk")), "after this server's clock"},
		{"end far ahead", aw(ev("2026-12-03T00:00:00Z", 10*86400, "afk")), "after this server's clock"},
		{"unknown status", aw(ev("2026-11-30T08:00:00Z", 5, "asleep")), `status is "asleep"`},
		{"missing status", aw(`{"timestamp": "2026-11-30T08:00:00Z", "duration": 5, "data": {}}`), "status is missing"},
		{"wrong version", `{"version": 2, "spans": []}`, "version 2"},
		{"offline span", ls(`{"device_id": 1, "state": "offline", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`), "offline"},
		{"unknown state", ls(`{"device_id": 1, "state": "busy", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`), `spans[0].state`},
		{"bad why", ls(`{"device_id": 1, "state": "active", "why": "vibes", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`), "why"},
		{"unknown end reason", ls(`{"device_id": 1, "state": "active", "end_reason": "nap", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`), "end_reason"},
		{"locked on an active span", ls(`{"device_id": 1, "state": "active", "why": "locked", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`), "why"},
		{"backwards span", ls(`{"device_id": 1, "state": "active", "start": "2026-11-30T09:00:00Z", "end": "2026-11-30T08:00:00Z"}`), "before it starts"},
		{"span without end", ls(`{"device_id": 1, "state": "active", "start": "2026-11-30T09:00:00Z"}`), "needs both start and end"},
		{"span time before 1980", ls(`{"device_id": 1, "state": "active", "start": "0001-01-01T00:00:00Z", "end": "2026-11-30T08:00:00Z"}`), "spans[0].start is 0001-01-01T00:00:00Z, before 1980"},
		{"device id not a number", `{"version": 1, "devices": [{"id": "x", "name": "a"}], "spans": []}`, `"devices.id" must be a number`},
		{"bad device name", `{"version": 1, "devices": [{"id": 1, "name": ""}], "spans": []}`, "devices[0].name"},
		{"device listed twice", `{"version": 1, "devices": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}], "spans": []}`, "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), opts())
			if err == nil {
				t.Fatalf("accepted %s", tc.body)
			}
			if presence.ErrorCode(err) != presence.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (code %s), want EINVALID mentioning %q", err, presence.ErrorCode(err), tc.want)
			}
		})
	}
}

func ls(spans ...string) string {
	return `{"version": 1, "exported_at": "2026-12-01T00:00:00Z", "user": {"handle": "ada"},
		"devices": [{"id": 1, "name": "desk", "os": "linux"}], "spans": [` + strings.Join(spans, ",") + `], "daily": []}`
}

func TestTooManySpans(t *testing.T) {
	events := []string{ev("2026-11-30T08:00:00Z", 5, "afk"), ev("2026-11-30T09:00:00Z", 5, "afk"), ev("2026-11-30T10:00:00Z", 5, "afk")}
	_, err := Parse([]byte(aw(events...)), Options{Now: opts().Now, MaxSpans: 2})
	if presence.ErrorCode(err) != presence.ETOOLARGE {
		t.Errorf("3 events with MaxSpans 2: %v, want ETOOLARGE", err)
	}
	if _, err := Parse([]byte(aw(events...)), Options{Now: opts().Now, MaxSpans: 3}); err != nil {
		t.Errorf("3 events with MaxSpans 3: %v", err)
	}
}

// An export read back gives the spans it was written from, by device.
func TestLastseenRoundTrip(t *testing.T) {
	spans := []presence.Span{
		{DeviceID: 1, State: presence.Active, Why: presence.ByCall, Start: at("2026-11-30T08:00:00Z"), End: at("2026-11-30T09:00:00Z")},
		{DeviceID: 1, State: presence.Idle, Start: at("2026-11-30T09:00:00Z"), End: at("2026-11-30T09:00:00Z"), EndReason: presence.EndSleep}, // a lone beat
		{DeviceID: 2, State: presence.Away, Why: presence.ByLock, Start: at("2026-11-30T07:00:00.123456789Z"), End: at("2026-11-30T08:30:00Z"), Replayed: true},
		{DeviceID: 9, State: presence.Active, Start: at("2026-11-29T07:00:00Z"), End: at("2026-11-29T08:00:00Z")},
	}
	x := Export{
		Version: ExportVersion, ExportedAt: now,
		User:    ExportUser{Handle: "ada", Name: "Ada", TZ: "Europe/Paris"},
		Devices: []ExportDevice{{ID: 1, Name: "desk", OS: "linux"}, {ID: 2, Name: "laptop", OS: "darwin"}},
	}
	for _, s := range spans {
		x.Spans = append(x.Spans, ExportSpanOf(s))
	}
	data, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, opts())
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != FormatLastseen || len(f.Sources) != 3 {
		t.Fatalf("format %s, %d sources: want lastseen, 3", f.Format, len(f.Sources))
	}
	names := []string{"desk", "laptop", "device 9"}
	wantSpans := [][]presence.Span{{spans[0], spans[1]}, {spans[2]}, {spans[3]}}
	for i, src := range f.Sources {
		if src.Name != names[i] {
			t.Errorf("source %d is %q, want %q", i, src.Name, names[i])
		}
		if len(src.Spans) != len(wantSpans[i]) {
			t.Errorf("source %s: %d spans, want %d", src.Name, len(src.Spans), len(wantSpans[i]))
			continue
		}
		for j, s := range src.Spans {
			w := wantSpans[i][j]
			if s.State != w.State || s.Why != w.Why.Of(w.State) || !s.Start.Equal(w.Start) || !s.End.Equal(w.End) || !s.Closed ||
				s.EndReason != w.EndReason || s.Replayed != w.Replayed {
				t.Errorf("source %s span %d: %+v, want %+v (closed)", src.Name, j, s, w)
			}
		}
	}
}

// FuzzImport: whatever the bytes, Parse answers a file or a domain error,
// never panics, and what it answers holds its promises.
func FuzzImport(f *testing.F) {
	if data, err := os.ReadFile("testdata/activitywatch-export.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(aw(ev("2026-11-30T08:00:00Z", 600, "not-afk"), ev("2026-11-30T08:05:00Z", 900, "afk"))))
	f.Add([]byte(aw(ev("2026-11-30T08:00:00Z", -1, "afk"))))
	f.Add([]byte(aw(`{"timestamp": "2026-11-30T08:00:00Z", "duration": 1e308, "data": {"status": "afk"}}`)))
	f.Add([]byte(aw(ev("9999-12-31T23:59:59Z", 1, "afk"))))
	f.Add([]byte(aw(ev("0001-01-01T00:00:00Z", 1, "not-afk"))))
	f.Add([]byte(ls(`{"device_id": 1, "state": "active", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:00:00Z"}`)))
	f.Add([]byte(ls(`{"device_id": -1, "state": "idle", "start": "2026-11-30T08:00:00Z", "end": "2026-11-30T08:00:00Z"}`)))
	f.Add([]byte(`{"version": 1e999}`))
	f.Add([]byte(`{"buckets": {"aw-watcher-afk_": {"events": [{}]}}}`))
	f.Add([]byte(`{"buckets": null}`))
	f.Add([]byte(`[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, Options{Now: opts().Now, MaxSpans: 1000})
		if err != nil {
			if code := presence.ErrorCode(err); code != presence.EINVALID && code != presence.ETOOLARGE {
				t.Fatalf("error %v has code %q, want invalid or too_large", err, code)
			}
			return
		}
		if file.SpanCount() > 1000*2 {
			t.Fatalf("%d spans from a file bounded to 1000 events", file.SpanCount())
		}
		for _, src := range file.Sources {
			if _, err := presence.NormalizeDeviceName(src.Name); err != nil {
				t.Fatalf("source name %q: %v", src.Name, err)
			}
			for i, s := range src.Spans {
				switch {
				case !s.State.Valid() || s.State == presence.Offline:
					t.Fatalf("span %d has state %q", i, s.State)
				case s.End.Before(s.Start):
					t.Fatalf("span %d ends before it starts", i)
				case s.Start.Before(Earliest) || s.End.After(now):
					t.Fatalf("span %d (%s) lies outside [1980, now]", i, spanText(s))
				case !s.Closed:
					t.Fatalf("span %d is not closed", i)
				case i > 0 && s.Start.Before(src.Spans[i-1].Start):
					t.Fatalf("spans out of order at %d", i)
				}
			}
		}
	})
}

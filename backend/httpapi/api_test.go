package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Every endpoint's happy path, through the Go client.
func TestClientHappyPaths(t *testing.T) {
	e := newEnv(t)
	_, annTok := e.user("ann")
	_, _ = e.user("bob")
	c := e.client(annTok)
	ctx := e.ctx

	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	nd, err := c.AddDevice(ctx, "  laptop ")
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	if nd.ID == 0 || nd.Name != "laptop" || !strings.HasPrefix(nd.Token, "ls_dev_") {
		t.Fatalf("new device %+v", nd)
	}
	devs, err := c.Devices(ctx)
	if err != nil || len(devs.Devices) != 1 || devs.Devices[0].Status != presence.Offline || devs.Devices[0].LastSeen != nil {
		t.Fatalf("devices before any beat: %+v, %v", devs, err)
	}

	dc := e.client(nd.Token)
	res, err := dc.PostHeartbeats(ctx, presence.Batch{SentAt: T0, Beats: []presence.Beat{
		beat(1, T0.Add(-60*time.Second), presence.Active),
		beat(2, T0.Add(-30*time.Second), presence.Active),
		beat(3, T0, presence.Active),
	}, Facts: &presence.Facts{OS: "linux", Hostname: "lap"}})
	if err != nil {
		t.Fatalf("post heartbeats: %v", err)
	}
	if res.Accepted != 3 || res.LastSeq != 3 || res.Device.Status != presence.Active || res.Device.LastSeen == nil || !res.Device.LastSeen.Equal(T0) || res.Device.OS != "linux" {
		t.Errorf("batch result %+v", res)
	}

	t.Run("me", func(t *testing.T) {
		me, err := c.Me(ctx)
		if err != nil || me != (MeResponse{Handle: "ann", Name: "Ann", Admin: true, PublicDetail: presence.DefaultPublicDetail}) {
			t.Errorf("me: %+v, %v", me, err)
		}
		name, tz, pub := "Ann Lee", "Europe/Paris", true
		me, err = c.UpdateMe(ctx, MeUpdate{Name: &name, TZ: &tz, Public: &pub})
		if err != nil || me != (MeResponse{Handle: "ann", Name: "Ann Lee", TZ: "Europe/Paris", Public: true, Admin: true, PublicDetail: presence.DefaultPublicDetail}) {
			t.Errorf("update me: %+v, %v", me, err)
		}
		me, err = c.UpdateMe(ctx, MeUpdate{})
		if err != nil || me.Name != "Ann Lee" || me.TZ != "Europe/Paris" {
			t.Errorf("empty update changed something: %+v, %v", me, err)
		}
	})

	t.Run("presence", func(t *testing.T) {
		p, err := c.Presence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byHandle := map[string]UserPresence{}
		for _, u := range p.Users {
			byHandle[u.Handle] = u
		}
		a, b := byHandle["ann"], byHandle["bob"]
		if a.Status != presence.Active || a.LastSeen == nil || !a.LastSeen.Equal(T0) || len(a.Devices) != 1 || a.Devices[0].Status != presence.Active {
			t.Errorf("ann: %+v", a)
		}
		if b.Status != presence.Offline || b.LastSeen != nil || b.Devices == nil || len(b.Devices) != 0 {
			t.Errorf("bob: %+v (want offline, last_seen null, devices [])", b)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		want := Session{DeviceID: nd.ID, State: presence.Active, Why: presence.ByInput, Start: T0.Add(-time.Minute), End: T0, DurationS: 60, Open: true}
		for _, q := range []SessionsQuery{{}, {DeviceID: nd.ID}, {State: "all"}, {State: "active,idle"}, {From: T0.Add(-time.Hour), To: T0.Add(time.Hour)}} {
			s, err := c.Sessions(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			if len(s.Sessions) != 1 {
				t.Fatalf("%+v: %+v, want one session", q, s)
			}
			got := s.Sessions[0]
			want.ID = got.ID
			if got != want {
				t.Errorf("%+v: session %+v, want %+v", q, got, want)
			}
		}
		s, err := c.Sessions(ctx, SessionsQuery{State: "idle"})
		if err != nil || s.Sessions == nil || len(s.Sessions) != 0 {
			t.Errorf("idle sessions: %+v, %v (want [])", s, err)
		}
		e.clock.Set(T0.Add(5 * time.Minute)) // past the pulse window: no longer open
		defer e.clock.Set(T0)
		s, err = c.Sessions(ctx, SessionsQuery{})
		if err != nil || len(s.Sessions) != 1 || s.Sessions[0].Open || s.Sessions[0].DurationS != 60 {
			t.Errorf("after the window: %+v, %v (want closed, still 60 s)", s, err)
		}
	})

	t.Run("daily stats", func(t *testing.T) {
		st, err := c.DailyStats(ctx, DailyStatsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Days) != 7 || st.Days[6] != (presence.DayTotal{Date: "2026-11-25", ActiveS: 60}) || st.Days[0].Date != "2026-11-19" {
			t.Errorf("default stats: %+v", st.Days)
		}
		st, err = c.DailyStats(ctx, DailyStatsQuery{From: "2026-11-25", To: "2026-11-26", TZ: "America/Los_Angeles"})
		if err != nil {
			t.Fatal(err)
		}
		// 08:59 UTC is 00:59 in Los Angeles on the 25th.
		if len(st.Days) != 2 || st.Days[0] != (presence.DayTotal{Date: "2026-11-25", ActiveS: 60}) {
			t.Errorf("stats in LA: %+v", st.Days)
		}
	})

	t.Run("public status and badge", func(t *testing.T) {
		ps, err := e.client("").Public(ctx, "ann")
		if err != nil || ps.Handle != "ann" || ps.Status != presence.Active || !ps.Online || ps.LastSeen == nil || !ps.LastSeen.Equal(T0) {
			t.Errorf("public: %+v, %v", ps, err)
		}
		svg, err := e.client("").Badge(ctx, "ann")
		if err != nil || !strings.Contains(string(svg), ">online<") {
			t.Errorf("badge: %s, %v", svg, err)
		}
		_, err = e.client("").Public(ctx, "bob")
		if presence.ErrorCode(err) != presence.ENOTFOUND {
			t.Errorf("bob is not public: %v", err)
		}
	})

	t.Run("a device token reads for its user", func(t *testing.T) {
		if me, err := dc.Me(ctx); err != nil || me.Handle != "ann" {
			t.Errorf("me: %+v, %v", me, err)
		}
		if _, err := dc.Presence(ctx); err != nil {
			t.Errorf("presence: %v", err)
		}
		if s, err := dc.Sessions(ctx, SessionsQuery{}); err != nil || len(s.Sessions) != 1 {
			t.Errorf("sessions: %+v, %v", s, err)
		}
		if _, err := dc.DailyStats(ctx, DailyStatsQuery{}); err != nil {
			t.Errorf("stats: %v", err)
		}
		if d, err := dc.Devices(ctx); err != nil || len(d.Devices) != 1 {
			t.Errorf("devices: %+v, %v", d, err)
		}
		s, err := dc.Events(ctx, "")
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		s.Close()
	})

	t.Run("but does not change the user, manage devices or sign in", func(t *testing.T) {
		name := "Mallory"
		if _, err := dc.UpdateMe(ctx, MeUpdate{Name: &name}); presence.ErrorCode(err) != presence.EFORBIDDEN {
			t.Errorf("update me: %v", err)
		}
		if _, err := dc.AddDevice(ctx, "sneaky"); presence.ErrorCode(err) != presence.EFORBIDDEN {
			t.Errorf("add device: %v", err)
		}
		if err := dc.RevokeDevice(ctx, nd.ID); presence.ErrorCode(err) != presence.EFORBIDDEN {
			t.Errorf("revoke: %v", err)
		}
		jc, _ := e.jarClient()
		if _, err := jc.Login(ctx, nd.Token); presence.ErrorCode(err) != presence.EFORBIDDEN {
			t.Errorf("login: %v", err)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if err := c.RevokeDevice(ctx, nd.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.Me(ctx); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
			t.Errorf("revoked token: %v", err)
		}
		if d, err := c.Devices(ctx); err != nil || len(d.Devices) != 0 {
			t.Errorf("devices after revoke: %+v, %v", d, err)
		}
		if err := c.RevokeDevice(ctx, nd.ID+1000); presence.ErrorCode(err) != presence.ENOTFOUND {
			t.Errorf("revoke unknown: %v", err)
		}
	})
}

// Every endpoint's failures: the right status, our JSON, a useful message.
func TestEndpointErrors(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	_, annDevTok := e.device(ann, "laptop")
	bob, bobTok := e.user("bob")
	bobDev, bobDevTok := e.device(bob, "phone")
	e.beats(bobDevTok, beat(1, T0, presence.Active))
	strangerTok, _ := presence.NewToken(presence.UserToken)
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	bobDevice := strconv.FormatInt(bobDev.ID, 10)

	tests := []struct {
		name   string
		req    request
		status int
		code   string
		msg    string
	}{
		{"me without a token", request{method: "GET", path: "/api/v1/me"}, 401, presence.EUNAUTHORIZED, "sign in"},
		{"me with an unknown user token", request{method: "GET", path: "/api/v1/me", token: strangerTok}, 401, presence.EUNAUTHORIZED, ""},
		{"sessions: bad from", request{method: "GET", path: "/api/v1/sessions?from=yesterday", token: annTok}, 400, presence.EINVALID, "from must be an RFC 3339 time"},
		{"sessions: from after to", request{method: "GET", path: "/api/v1/sessions?from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z", token: annTok}, 400, presence.EINVALID, "from must be before to"},
		{"sessions: two years", request{method: "GET", path: "/api/v1/sessions?from=2024-11-25T10:00:00Z", token: annTok}, 400, presence.EINVALID, "366 days"},
		{"sessions: unknown state", request{method: "GET", path: "/api/v1/sessions?state=sleeping", token: annTok}, 400, presence.EINVALID, `unknown state "sleeping"`},
		{"sessions: device not a number", request{method: "GET", path: "/api/v1/sessions?device=laptop", token: annTok}, 400, presence.EINVALID, "device must be a device id"},
		{"sessions: another user's device", request{method: "GET", path: "/api/v1/sessions?device=" + bobDevice, token: annTok}, 404, presence.ENOTFOUND, "no device " + bobDevice},
		{"sessions: another user's device, by device token", request{method: "GET", path: "/api/v1/sessions?device=" + bobDevice, token: annDevTok}, 404, presence.ENOTFOUND, "no device"},
		{"sessions: no such device", request{method: "GET", path: "/api/v1/sessions?device=99999", token: annTok}, 404, presence.ENOTFOUND, "no device 99999"},
		{"stats: bad date", request{method: "GET", path: "/api/v1/stats/daily?from=2026-13-01", token: annTok}, 400, presence.EINVALID, "from must be a date"},
		{"stats: from after to", request{method: "GET", path: "/api/v1/stats/daily?from=2026-11-25&to=2026-11-24", token: annTok}, 400, presence.EINVALID, "from must not be after to"},
		{"stats: 367 days", request{method: "GET", path: "/api/v1/stats/daily?from=2025-11-23&to=2026-11-24", token: annTok}, 400, presence.EINVALID, "at most 366 days"},
		{"stats: unknown zone", request{method: "GET", path: "/api/v1/stats/daily?tz=Mars/Base", token: annTok}, 400, presence.EINVALID, "unknown time zone"},
		{"patch me: unknown zone", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: `{"tz":"Mars/Base"}`}, 400, presence.EINVALID, "unknown time zone"},
		{"patch me: wrong type", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: `{"name":5}`}, 400, presence.EINVALID, `field "name" must be a string`},
		{"patch me: public not a bool", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: `{"public":"yes"}`}, 400, presence.EINVALID, `field "public" must be true or false`},
		{"patch me: unknown field", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: `{"handle":"boss"}`}, 400, presence.EINVALID, `unknown field "handle"`},
		{"patch me: long name", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: `{"name":"` + strings.Repeat("n", 101) + `"}`}, 400, presence.EINVALID, "at most 100 characters"},
		{"patch me: body over 64 KiB", request{method: "PATCH", path: "/api/v1/me", token: annTok, body: big}, 413, presence.ETOOLARGE, "64 KiB"},
		{"add device with a device token", request{method: "POST", path: "/api/v1/devices", token: annDevTok, body: `{"name":"x"}`}, 403, presence.EFORBIDDEN, "needs a user token"},
		{"add device without a name", request{method: "POST", path: "/api/v1/devices", token: annTok, body: `{"name":"  "}`}, 400, presence.EINVALID, "device name"},
		{"revoke: id not a number", request{method: "DELETE", path: "/api/v1/devices/laptop", token: annTok}, 400, presence.EINVALID, "positive integer"},
		{"revoke another user's device", request{method: "DELETE", path: "/api/v1/devices/" + bobDevice, token: annTok}, 404, presence.ENOTFOUND, ""},
		{"revoke with a device token", request{method: "DELETE", path: "/api/v1/devices/" + bobDevice, token: bobDevTok}, 403, presence.EFORBIDDEN, ""},
		{"login with a device token", request{method: "POST", path: "/api/v1/login", body: `{"token":"` + annDevTok + `"}`}, 403, presence.EFORBIDDEN, "user token"},
		{"login with garbage", request{method: "POST", path: "/api/v1/login", body: `{"token":"hunter2"}`}, 401, presence.EUNAUTHORIZED, "not a Lastseen token"},
		{"login with an unknown user token", request{method: "POST", path: "/api/v1/login", body: `{"token":"` + strangerTok + `"}`}, 401, presence.EUNAUTHORIZED, ""},
		{"login with malformed JSON", request{method: "POST", path: "/api/v1/login", body: `{"token":`}, 400, presence.EINVALID, "malformed JSON"},
		{"login from another site", request{method: "POST", path: "/api/v1/login", body: `{"token":"` + annTok + `"}`, header: map[string]string{"Origin": "https://evil.example"}}, 403, presence.EFORBIDDEN, "cross-origin"},
		{"events: bad Last-Event-ID", request{method: "GET", path: "/api/v1/events", token: annTok, header: map[string]string{"Last-Event-ID": "abc"}}, 400, presence.EINVALID, "Last-Event-ID"},
		{"unknown API route", request{method: "GET", path: "/api/v1/nope", token: annTok}, 404, presence.ENOTFOUND, "no such endpoint"},
		{"unknown API version", request{method: "GET", path: "/api/v2/me"}, 404, presence.ENOTFOUND, "no such endpoint"},
		{"wrong method on me", request{method: "PUT", path: "/api/v1/me", token: annTok, body: `{}`}, 405, presence.EINVALID, "allowed: GET, HEAD, PATCH"},
		{"GET heartbeats", request{method: "GET", path: "/api/v1/heartbeats", token: annDevTok}, 405, presence.EINVALID, "allowed: POST"},
		{"POST healthz", request{method: "POST", path: "/healthz"}, 405, presence.EINVALID, "allowed: GET, HEAD"},
		{"public: not opted in", request{method: "GET", path: "/api/v1/public/bob"}, 404, presence.ENOTFOUND, `no public status for "bob"`},
		{"public: no such user", request{method: "GET", path: "/api/v1/public/nobody"}, 404, presence.ENOTFOUND, `no public status for "nobody"`},
		{"public: not a handle", request{method: "GET", path: "/api/v1/public/%3Cscript%3E"}, 404, presence.ENOTFOUND, "no public status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(tt.req)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.status, tt.status, resp.body)
			}
			got := resp.apiError(t)
			if got.Code != tt.code || !strings.Contains(got.Message, tt.msg) {
				t.Errorf("error %+v, want code %s and a message with %q", got, tt.code, tt.msg)
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.status == 405 && resp.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}

	t.Run("one user never reads another's sessions", func(t *testing.T) {
		s, err := e.client(annTok).Sessions(e.ctx, SessionsQuery{State: "all"})
		if err != nil || len(s.Sessions) != 0 {
			t.Errorf("ann sees %+v, %v; want none (only bob has spans)", s, err)
		}
		s, err = e.client(bobTok).Sessions(e.ctx, SessionsQuery{})
		if err != nil || len(s.Sessions) != 1 || s.Sessions[0].DeviceID != bobDev.ID {
			t.Errorf("bob sees %+v, %v", s, err)
		}
	})

	t.Run("the public 404 is readable cross-origin", func(t *testing.T) {
		resp := e.do(request{method: "GET", path: "/api/v1/public/bob"})
		if resp.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("no CORS on the 404")
		}
	})
}

func TestCookieAuth(t *testing.T) {
	e := newEnv(t)
	ann, annTok := e.user("ann")
	_, devTok := e.device(ann, "laptop")
	jc, hc := e.jarClient()
	ctx := e.ctx

	if _, err := jc.Me(ctx); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Fatalf("before login: %v", err)
	}
	me, err := jc.Login(ctx, annTok)
	if err != nil || me.Handle != "ann" {
		t.Fatalf("login: %+v, %v", me, err)
	}
	if me, err := jc.Me(ctx); err != nil || me.Handle != "ann" {
		t.Errorf("me by cookie: %+v, %v", me, err)
	}

	t.Run("cookie attributes", func(t *testing.T) {
		for _, tc := range []struct {
			header map[string]string
			secure bool
		}{{nil, false}, {map[string]string{"X-Forwarded-Proto": "https"}, true}} {
			resp := e.do(request{method: "POST", path: "/api/v1/login", body: `{"token":"` + annTok + `"}`, header: tc.header})
			sc := resp.header.Get("Set-Cookie")
			// The cookie holds a session's secret, never the token.
			for _, want := range []string{SessionCookie + "=" + presence.SessionPrefix, "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="} {
				if !strings.Contains(sc, want) {
					t.Errorf("Set-Cookie %q lacks %q", sc, want)
				}
			}
			if strings.Contains(sc, "Secure") != tc.secure {
				t.Errorf("Set-Cookie %q: Secure should be %v", sc, tc.secure)
			}
		}
	})

	cookie := SessionCookie + "=" + sessionSecret(t, e.do(request{method: "POST", path: "/api/v1/login", body: `{"token":"` + annTok + `"}`}))
	t.Run("CSRF", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			header map[string]string
			status int
		}{
			{"same origin", map[string]string{"Origin": e.ts.URL}, 200},
			{"no origin (not a browser)", nil, 200},
			{"another origin", map[string]string{"Origin": "https://evil.example"}, 403},
			{"a cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"another origin with a bearer token is no CSRF", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + annTok}, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := map[string]string{"Cookie": cookie}
				for k, v := range tc.header {
					h[k] = v
				}
				resp := e.do(request{method: "PATCH", path: "/api/v1/me", body: `{"public":true}`, header: h})
				if resp.status != tc.status {
					t.Errorf("status %d, want %d: %s", resp.status, tc.status, resp.body)
				}
			})
		}
		// Reads are safe methods: a cross-origin GET with the cookie (which
		// SameSite=Strict would not even send) is not refused by this check.
		resp := e.do(request{method: "GET", path: "/api/v1/me", header: map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}})
		if resp.status != 200 {
			t.Errorf("GET with origin: %d", resp.status)
		}
	})

	t.Run("a device token in the cookie is refused", func(t *testing.T) {
		resp := e.do(request{method: "GET", path: "/api/v1/me", header: map[string]string{"Cookie": SessionCookie + "=" + devTok}})
		if resp.status != 401 {
			t.Errorf("status %d", resp.status)
		}
	})

	t.Run("events by cookie", func(t *testing.T) {
		s, err := jc.Events(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e.beats(devTok, beat(1, T0, presence.Active))
		ev := nextEvent(t, s, "presence")
		if p, err := ev.Presence(); err != nil || p.Handle != "ann" {
			t.Errorf("event %+v: %v", p, err)
		}
	})

	t.Run("logout", func(t *testing.T) {
		if err := jc.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := jc.Me(ctx); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
			t.Errorf("after logout: %v", err)
		}
		u, _ := http.NewRequest("GET", e.ts.URL, nil)
		if cs := hc.Jar.Cookies(u.URL); len(cs) != 0 {
			t.Errorf("cookies left: %v", cs)
		}
	})
}

// failingStore is the real store with one read broken, for the failure the
// real one cannot produce on demand.
type failingStore struct {
	presence.Store
	err error
}

func (f failingStore) Presence(context.Context) ([]presence.UserPresence, error) {
	return nil, f.err
}

func TestInternalErrorsAreLoggedNotLeaked(t *testing.T) {
	secret := errors.New("disk on fire at /var/secret/lastseen.db")
	e := newEnv(t, func(c *Config) { c.Store = failingStore{Store: c.Store, err: fmt.Errorf("read presence: %w", secret)} })
	_, tok := e.user("ann")
	resp := e.do(request{method: "GET", path: "/api/v1/presence", token: tok})
	if resp.status != 500 {
		t.Fatalf("status %d", resp.status)
	}
	if got := resp.apiError(t); got != (apierror.Detail{Code: presence.EINTERNAL, Message: "internal error"}) {
		t.Errorf("error %+v", got)
	}
	if strings.Contains(string(resp.body), "disk") {
		t.Errorf("leaked: %s", resp.body)
	}
	if n := strings.Count(e.logs.String(), "disk on fire"); n != 1 {
		t.Errorf("the error is logged %d times, want once; logs:\n%s", n, e.logs.String())
	}
	t.Run("health turns 503", func(t *testing.T) {
		resp := e.do(request{method: "GET", path: "/healthz"})
		if resp.status != 503 || resp.apiError(t).Code != presence.EUNAVAILABLE || strings.Contains(string(resp.body), "disk") {
			t.Errorf("health: %d %s", resp.status, resp.body)
		}
	})
	t.Run("metrics still scrape without the device gauge", func(t *testing.T) {
		resp := e.do(request{method: "GET", path: "/metrics"})
		if resp.status != 200 || !strings.Contains(string(resp.body), "lastseen_beats_total") {
			t.Errorf("metrics: %d", resp.status)
		}
	})
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	resp := e.do(request{method: "GET", path: "/healthz"})
	var h HealthResponse
	if resp.status != 200 || json.Unmarshal(resp.body, &h) != nil || h.Status != "ok" {
		t.Fatalf("health: %d %s", resp.status, resp.body)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	err := e.client("").Health(e.ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != presence.EUNAVAILABLE {
		t.Errorf("health after the store closed: %v", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	ann, _ := e.user("ann")
	_, tok := e.device(ann, "laptop")
	_, tok2 := e.device(ann, "desktop")
	e.beats(tok, beat(1, T0, presence.Active))
	e.beats(tok2, beat(1, T0, presence.Away))
	e.do(request{method: "GET", path: "/api/v1/nope"})
	body := string(e.do(request{method: "GET", path: "/metrics"}).body)
	for _, want := range []string{
		`lastseen_devices{state="active"} 1`,
		`lastseen_devices{state="away"} 1`,
		`lastseen_devices{state="idle"} 0`,
		`lastseen_http_requests_total{code="200",route="POST /api/v1/heartbeats"} 2`,
		`lastseen_http_requests_total{code="404",route="unmatched"} 1`,
		`lastseen_sse_streams 0`,
		`lastseen_writer_batch_beats_count`,
		`lastseen_writer_commit_seconds_bucket`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestConfig(t *testing.T) {
	e := newEnv(t)
	good := Config{Store: e.store, Hub: e.hub}
	tests := []struct {
		name string
		mod  func(*Config)
		msg  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no store", func(c *Config) { c.Store = nil }, "store is required"},
		{"no hub", func(c *Config) { c.Hub = nil }, "hub is required"},
		{"bad rate", func(c *Config) { c.UserRate = Rate{PerSecond: -1, Burst: 3} }, "user rate"},
		{"zero burst", func(c *Config) { c.DeviceRate = Rate{PerSecond: 1} }, "device rate"},
		{"negative keepalive", func(c *Config) { c.KeepAlive = -time.Second }, "keepalive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			_, err := New(c)
			if (err == nil) != (tt.msg == "") || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("New: %v, want %q", err, tt.msg)
			}
		})
	}
	d := good.WithDefaults()
	if d.KeepAlive != 15*time.Second || d.Limits != presence.DefaultLimits || d.UserRate != DefaultUserRate || d.Logger == nil || d.Now == nil || d.Metrics == nil {
		t.Errorf("defaults: %+v", d)
	}
}

package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// fakeControls answers with func fields (STYLE: fakes without a mocking library).
type fakeControls struct {
	status   func() (Status, error)
	setMode  func(ModeRequest) (Status, error)
	update   func(SettingsUpdate) (Settings, error)
	test     func(ServiceRequest) (ServiceCheck, error)
	history  func(from, to time.Time) ([]presence.Span, error)
	pair     func(PairRequest) (PairStatus, error)
	settings Settings
	// pairing is what GET /local/v1/pair answers; DELETE sets it to none.
	pairing PairStatus
}

var _ Controls = (*fakeControls)(nil)

func (f *fakeControls) Status(context.Context) (Status, error) { return f.status() }
func (f *fakeControls) SetMode(_ context.Context, m ModeRequest) (Status, error) {
	return f.setMode(m)
}
func (f *fakeControls) Settings(context.Context) (Settings, error) { return f.settings, nil }
func (f *fakeControls) UpdateSettings(_ context.Context, u SettingsUpdate) (Settings, error) {
	return f.update(u)
}
func (f *fakeControls) TestService(_ context.Context, s ServiceRequest) (ServiceCheck, error) {
	return f.test(s)
}
func (f *fakeControls) SetService(context.Context, ServiceRequest) (Settings, error) {
	return f.settings, nil
}
func (f *fakeControls) History(_ context.Context, from, to time.Time) ([]presence.Span, error) {
	return f.history(from, to)
}
func (f *fakeControls) Diagnostics(context.Context) (Diagnostics, error) {
	return Diagnostics{ActivityBackend: "x11-screensaver"}, nil
}
func (f *fakeControls) StartPairing(_ context.Context, r PairRequest) (PairStatus, error) {
	st, err := f.pair(r)
	if err == nil {
		f.pairing = st
	}
	return st, err
}
func (f *fakeControls) Pairing(context.Context) (PairStatus, error) { return f.pairing, nil }
func (f *fakeControls) CancelPairing(context.Context) (PairStatus, error) {
	f.pairing = PairStatus{State: PairNone}
	return f.pairing, nil
}

const secret = "0123456789abcdef0123456789abcdef"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestHandler(t *testing.T, fc *fakeControls, svc http.Handler) http.Handler {
	t.Helper()
	if svc == nil {
		svc = http.NotFoundHandler()
	}
	h, err := New(Config{Secret: secret, Controls: fc, Service: svc, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("body %q is not the error envelope: %v", w.Body.String(), err)
	}
	if env.Error.Message == "" {
		t.Fatalf("error without a message: %s", w.Body.String())
	}
	return env.Error.Code
}

func TestSecretIsRequired(t *testing.T) {
	fc := &fakeControls{status: func() (Status, error) { return Status{Mode: "auto"}, nil }}
	h := newTestHandler(t, fc, nil)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + secret, "Bearer " + secret + "x", "ls_dev_abc"} {
		w := do(h, "GET", "/local/v1/status", auth, "")
		if w.Code != http.StatusUnauthorized || errCode(t, w) != presence.EUNAUTHORIZED {
			t.Errorf("auth %q: status %d, want 401", auth, w.Code)
		}
	}
	if w := do(h, "GET", "/local/v1/status", "Bearer "+secret, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"mode":"auto"`) {
		t.Fatalf("with the secret: %d %s", w.Code, w.Body)
	}
}

func TestRequestValidation(t *testing.T) {
	fc := &fakeControls{
		setMode: func(m ModeRequest) (Status, error) {
			if m.Mode == "nap" {
				return Status{}, presence.Errorf(presence.EINVALID, "unknown mode %q", m.Mode)
			}
			return Status{Mode: m.Mode}, nil
		},
		update: func(u SettingsUpdate) (Settings, error) {
			if *u.IdleAfterS < 60 {
				return Settings{}, presence.Errorf(presence.EINVALID, "idle_after_s is too short")
			}
			return Settings{IdleAfterS: *u.IdleAfterS}, nil
		},
		test: func(ServiceRequest) (ServiceCheck, error) {
			return ServiceCheck{}, presence.Errorf(presence.EUNAVAILABLE, "cannot reach http://example.invalid")
		},
	}
	h := newTestHandler(t, fc, nil)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // code, or a body substring on success
	}{
		{"mode ok", "PUT", "/local/v1/mode", `{"mode":"invisible"}`, 200, `"mode":"invisible"`},
		{"unknown mode", "PUT", "/local/v1/mode", `{"mode":"nap"}`, 400, presence.EINVALID},
		{"malformed JSON", "PUT", "/local/v1/mode", `{"mode":`, 400, presence.EINVALID},
		{"unknown field", "PUT", "/local/v1/mode", `{"mood":"x"}`, 400, presence.EINVALID},
		{"wrong type", "PUT", "/local/v1/settings", `{"idle_after_s":"5m"}`, 400, presence.EINVALID},
		{"a refused value is 400", "PUT", "/local/v1/settings", `{"idle_after_s":10}`, 400, presence.EINVALID},
		{"idle threshold ok", "PUT", "/local/v1/settings", `{"idle_after_s":600}`, 200, `"idle_after_s":600`},
		{"empty body", "PUT", "/local/v1/settings", ``, 400, presence.EINVALID},
		{"two objects", "PUT", "/local/v1/settings", `{} {}`, 400, presence.EINVALID},
		{"too large", "PUT", "/local/v1/settings", `{"x":"` + strings.Repeat("a", 70<<10) + `"}`, 413, presence.ETOOLARGE},
		{"service test needs a URL", "POST", "/local/v1/service/test", `{"token":"ls_dev_x"}`, 400, presence.EINVALID},
		{"unreachable service is 502", "POST", "/local/v1/service/test", `{"server_url":"http://example.invalid","token":"t"}`, 502, presence.EUNAVAILABLE},
		{"unknown local route", "GET", "/local/v1/nope", ``, 404, presence.ENOTFOUND},
		{"wrong method", "DELETE", "/local/v1/status", ``, 404, presence.ENOTFOUND},
		{"bad history time", "GET", "/local/v1/history?from=yesterday", ``, 400, presence.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.method, tt.path, "Bearer "+secret, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status >= 400 {
				if got := errCode(t, w); got != tt.want {
					t.Fatalf("code %q, want %q", got, tt.want)
				}
			} else if !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("body %s, want %s", w.Body, tt.want)
			}
		})
	}
}

func TestHistoryShape(t *testing.T) {
	var gotFrom, gotTo time.Time
	fc := &fakeControls{history: func(from, to time.Time) ([]presence.Span, error) {
		gotFrom, gotTo = from, to
		return []presence.Span{
			{ID: 1, DeviceID: 1, State: presence.Active, Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour), Closed: true},
			{ID: 2, DeviceID: 1, State: presence.Idle, Start: now.Add(-time.Hour), End: now.Add(-10 * time.Second)},
		}, nil
	}}
	h := newTestHandler(t, fc, nil)
	w := do(h, "GET", "/local/v1/history", "Bearer "+secret, "")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !gotTo.Equal(now) || !gotFrom.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("default range %v..%v, want the last 24 h", gotFrom, gotTo)
	}
	var out struct {
		Local    bool          `json:"local"`
		Sessions []SessionItem `json:"sessions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if !out.Local || len(out.Sessions) != 2 || out.Sessions[0].DurationS != 3600 || out.Sessions[0].Open || !out.Sessions[1].Open {
		t.Fatalf("history %+v", out)
	}
}

// The service reads are passed on without the caller's credentials: the
// secret must never reach the service, local or remote.
func TestServiceReadsAreForwardedWithoutCredentials(t *testing.T) {
	var sawAuth, sawCookie string
	svc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth, sawCookie = r.Header.Get("Authorization"), r.Header.Get("Cookie")
		w.Write([]byte(`{"users":[]}`))
	})
	h := newTestHandler(t, &fakeControls{}, svc)
	r := httptest.NewRequest("GET", "/api/v1/presence", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	r.Header.Set("Cookie", "lastseen_session=x")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != `{"users":[]}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if sawAuth != "" || sawCookie != "" {
		t.Fatalf("credentials leaked to the service: auth %q cookie %q", sawAuth, sawCookie)
	}
}

func TestNewRejectsWeakSecret(t *testing.T) {
	if _, err := New(Config{Secret: "short", Controls: &fakeControls{}, Service: http.NotFoundHandler()}); err == nil {
		t.Fatal("a short secret must be refused")
	}
}

// The calls-and-media setting goes through PUT /local/v1/settings on its
// own, and the status says why an active machine is active.
func TestCallsAndMediaFields(t *testing.T) {
	var got SettingsUpdate
	fc := &fakeControls{
		status: func() (Status, error) { return Status{State: presence.Active, Why: presence.ByCall}, nil },
		update: func(u SettingsUpdate) (Settings, error) {
			got = u
			return Settings{CountCallsAndMedia: u.CountCallsAndMedia != nil && *u.CountCallsAndMedia}, nil
		},
	}
	h := newTestHandler(t, fc, nil)
	w := do(h, "PUT", "/local/v1/settings", "Bearer "+secret, `{"count_calls_and_media":true}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"count_calls_and_media":true`) {
		t.Fatalf("settings: %d %s", w.Code, w.Body)
	}
	if got.CountCallsAndMedia == nil || !*got.CountCallsAndMedia || got.IdleAfterS != nil || got.IntervalS != nil || got.StartAtLogin != nil {
		t.Fatalf("update reached the controls as %+v", got)
	}
	w = do(h, "GET", "/local/v1/status", "Bearer "+secret, "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"state":"active","why":"call"`) {
		t.Fatalf("status: %d %s", w.Code, w.Body)
	}
}

// The pairing routes: start (its shape checked here, its values by the
// Controls), read, cancel; a service that cannot be reached is the
// upstream's failure (502), a refusal passes through.
func TestPairRoutes(t *testing.T) {
	expires := now.Add(10 * time.Minute)
	var asked []string
	fc := &fakeControls{pairing: PairStatus{State: PairNone}, pair: func(r PairRequest) (PairStatus, error) {
		asked = append(asked, r.URL)
		switch r.URL {
		case "https://down.example":
			return PairStatus{}, presence.Errorf(presence.EUNAVAILABLE, "cannot reach down.example")
		case "ftp://x":
			return PairStatus{}, presence.Errorf(presence.EINVALID, "server URL must look like https://…")
		case "https://busy.example":
			return PairStatus{}, presence.Errorf(presence.ERATELIMIT, "too many pairings")
		}
		return PairStatus{State: PairPending, URL: r.URL, UserCode: "BDFG-HJKL", VerificationURI: r.URL + "/pair",
			VerificationURIComplete: r.URL + "/pair?code=BDFGHJKL", ExpiresAt: &expires}, nil
	}}
	h := newTestHandler(t, fc, nil)
	auth := "Bearer " + secret

	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{``, 400, presence.EINVALID},
		{`{}`, 400, presence.EINVALID},
		{`{"url":"  "}`, 400, presence.EINVALID},
		{`{"url":"https://s.example","token":"ls_dev_x"}`, 400, presence.EINVALID},
		{`{"url":"ftp://x"}`, 400, presence.EINVALID},
		{`{"url":"https://down.example"}`, 502, presence.EUNAVAILABLE},
		{`{"url":"https://busy.example"}`, 429, presence.ERATELIMIT},
	} {
		w := do(h, "POST", "/local/v1/pair", auth, tc.body)
		if w.Code != tc.status || errCode(t, w) != tc.code {
			t.Errorf("POST %s: %d %s, want %d %s", tc.body, w.Code, w.Body, tc.status, tc.code)
		}
	}
	if want := []string{"ftp://x", "https://down.example", "https://busy.example"}; strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Fatalf("the controls were asked for %v, want %v (a malformed request never reaches them)", asked, want)
	}

	w := do(h, "GET", "/local/v1/pair", auth, "")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"state":"none"}` {
		t.Fatalf("no pairing: %d %s", w.Code, w.Body)
	}
	w = do(h, "POST", "/local/v1/pair", auth, `{"url":"https://s.example"}`)
	var st PairStatus
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	if st.State != PairPending || st.UserCode != "BDFG-HJKL" || st.VerificationURIComplete != "https://s.example/pair?code=BDFGHJKL" ||
		st.ExpiresAt == nil || !st.ExpiresAt.Equal(expires) {
		t.Fatalf("start answered %+v", st)
	}
	if w := do(h, "GET", "/local/v1/pair", auth, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"state":"pending"`) ||
		!strings.Contains(w.Body.String(), `"verification_uri":"https://s.example/pair"`) {
		t.Fatalf("pending: %d %s", w.Code, w.Body)
	}
	if w := do(h, "DELETE", "/local/v1/pair", auth, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"state":"none"`) {
		t.Fatalf("cancel: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/local/v1/pair", "", ""); w.Code != 401 {
		t.Fatalf("without the secret: %d", w.Code)
	}
	if w := do(h, "PUT", "/local/v1/pair", auth, `{"url":"https://s.example"}`); w.Code != 404 {
		t.Fatalf("PUT: %d, want 404", w.Code)
	}
}

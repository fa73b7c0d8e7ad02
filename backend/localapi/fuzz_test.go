package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// echoControls accepts whatever the handler decoded, so the fuzz target
// sees the decoder alone.
type echoControls struct{}

var _ Controls = echoControls{}

func (echoControls) Status(context.Context) (Status, error) { return Status{}, nil }
func (echoControls) SetMode(_ context.Context, m ModeRequest) (Status, error) {
	return Status{Mode: m.Mode}, nil
}
func (echoControls) Settings(context.Context) (Settings, error) { return Settings{}, nil }
func (echoControls) UpdateSettings(context.Context, SettingsUpdate) (Settings, error) {
	return Settings{}, nil
}
func (echoControls) TestService(_ context.Context, s ServiceRequest) (ServiceCheck, error) {
	return ServiceCheck{OK: true, Handle: s.ServerURL}, nil
}
func (echoControls) SetService(_ context.Context, s ServiceRequest) (Settings, error) {
	return Settings{ServerURL: s.ServerURL}, nil
}
func (echoControls) History(context.Context, time.Time, time.Time) ([]presence.Span, error) {
	return nil, nil
}
func (echoControls) Diagnostics(context.Context) (Diagnostics, error) { return Diagnostics{}, nil }
func (echoControls) StartPairing(_ context.Context, r PairRequest) (PairStatus, error) {
	return PairStatus{State: PairPending, URL: r.URL}, nil
}
func (echoControls) Pairing(context.Context) (PairStatus, error) {
	return PairStatus{State: PairNone}, nil
}
func (echoControls) CancelPairing(context.Context) (PairStatus, error) {
	return PairStatus{State: PairNone}, nil
}

// bodyRoutes are the local API's routes that read a JSON body.
var bodyRoutes = []struct{ method, path string }{
	{http.MethodPut, "/local/v1/mode"},
	{http.MethodPut, "/local/v1/settings"},
	{http.MethodPost, "/local/v1/service/test"},
	{http.MethodPost, "/local/v1/pair"},
	{http.MethodPut, "/local/v1/service"},
}

// FuzzLocalAPIBodies sends any body to every route that reads one: the
// answer is a 200 or the caller's error (400 or 413 in the JSON envelope),
// never a 5xx or a panic, and always JSON.
func FuzzLocalAPIBodies(f *testing.F) {
	for _, seed := range []string{
		`{"mode":"away","for_s":1800}`, `{"mode":"auto","until":"tomorrow"}`,
		`{"idle_after_s":300,"interval_s":30,"start_at_login":true,"count_calls_and_media":false}`,
		`{"server_url":"https://example.net","token":"ls_dev_x"}`, `{"server_url":""}`, `{"url":"https://example.net"}`,
		`{"mode":1}`, `{"bogus":true}`, `{}{}`, `[]`, `null`, ``, `{"idle_after_s":1e400}`, "\xff",
	} {
		for i := range bodyRoutes {
			f.Add(uint8(i), []byte(seed))
		}
	}
	h, err := New(Config{Secret: "0123456789abcdef0123456789abcdef", Controls: echoControls{}, Service: http.NotFoundHandler()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer 0123456789abcdef0123456789abcdef")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s answered %d with non-JSON %q", rt.method, rt.path, w.Code, w.Body.String())
		}
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			d := apierror.Decode(w.Code, w.Body.Bytes())
			if d.Code != apierror.CodeOf(w.Code) || d.Message == "" {
				t.Fatalf("%s %s: %d with %+v", rt.method, rt.path, w.Code, d)
			}
		default:
			t.Fatalf("%s %s answered %d to %q: %s", rt.method, rt.path, w.Code, body, w.Body.String())
		}
	})
}

package localapi

import (
	"net/http"
	"strings"
	"testing"
)

// The window manages watches through the agent: PUT and DELETE under
// /api/v1/ reach the service like reads, without the caller's secret.
func TestWatchWritesReachTheService(t *testing.T) {
	var seen []string
	svc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("%s %s reached the service with the caller's Authorization", r.Method, r.URL.Path)
		}
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	})
	h := newTestHandler(t, &fakeControls{}, svc)
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		path := "/api/v1/watches/bob"
		if m == "GET" {
			path = "/api/v1/watches"
		}
		if w := do(h, m, path, "Bearer "+secret, ""); w.Code != http.StatusNoContent {
			t.Errorf("%s %s = %d %s", m, path, w.Code, w.Body)
		}
	}
	if got := strings.Join(seen, ", "); got != "GET /api/v1/watches, PUT /api/v1/watches/bob, DELETE /api/v1/watches/bob" {
		t.Errorf("the service saw %s", got)
	}
	if w := do(h, "PUT", "/api/v1/watches/bob", "", ""); w.Code != http.StatusUnauthorized || len(seen) != 3 {
		t.Errorf("without the secret: %d, and the service saw %d requests", w.Code, len(seen))
	}
}

// The notifications setting goes through PUT /local/v1/settings on its own.
func TestNotificationsSetting(t *testing.T) {
	var got SettingsUpdate
	fc := &fakeControls{update: func(u SettingsUpdate) (Settings, error) {
		got = u
		return Settings{Notifications: u.Notifications != nil && *u.Notifications}, nil
	}}
	h := newTestHandler(t, fc, nil)
	w := do(h, "PUT", "/local/v1/settings", "Bearer "+secret, `{"notifications":false}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"notifications":false`) {
		t.Fatalf("settings: %d %s", w.Code, w.Body)
	}
	if got.Notifications == nil || *got.Notifications || got.CountCallsAndMedia != nil || got.IdleAfterS != nil {
		t.Fatalf("update reached the controls as %+v", got)
	}
}

package localapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// 503 is the agent's own failure, 502 the remote service's: the window shows
// the agent's local history only for the second.
func TestUnavailableIsTheAgentsOrTheUpstreams(t *testing.T) {
	fc := &fakeControls{
		status: func() (Status, error) {
			return Status{}, presence.Errorf(presence.EUNAVAILABLE, "the agent is shutting down")
		},
		test: func(ServiceRequest) (ServiceCheck, error) {
			return ServiceCheck{}, presence.Errorf(presence.EUNAVAILABLE, "cannot reach lastseen.example.com")
		},
		history: func(from, to time.Time) ([]presence.Span, error) { return nil, errors.New("disk I/O error at /home/x") },
	}
	h := newTestHandler(t, fc, nil)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"agent unavailable", "GET", "/local/v1/status", "", http.StatusServiceUnavailable, presence.EUNAVAILABLE},
		{"remote unavailable", "POST", "/local/v1/service/test", `{"server_url":"https://lastseen.example.com","token":"ls_dev_x"}`, http.StatusBadGateway, presence.EUNAVAILABLE},
		{"internal", "GET", "/local/v1/history", "", http.StatusInternalServerError, presence.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, tc.method, tc.path, "Bearer "+secret, tc.body)
			if w.Code != tc.status || errCode(t, w) != tc.code {
				t.Errorf("%d %s, want %d with code %s", w.Code, w.Body, tc.status, tc.code)
			}
			if strings.Contains(w.Body.String(), "/home/x") {
				t.Errorf("an internal error's detail leaked: %s", w.Body)
			}
		})
	}
}

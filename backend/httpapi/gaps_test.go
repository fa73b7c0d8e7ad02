package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// The sessions list and the live session event tell why a span ended and
// whether it was replayed; a tail read after its TTL ended in silence.
func TestSessionPayloadSaysWhyItEnded(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tail := presence.Span{ID: 7, DeviceID: 1, State: presence.Active, Start: t0, End: t0.Add(time.Minute), Replayed: true}
	cases := []struct {
		name string
		sp   presence.Span
		open bool
		want []string
		not  []string
	}{
		{"open", tail, true, []string{`"replayed":true`, `"open":true`}, []string{`end_reason`}},
		{"expired", tail, false, []string{`"end_reason":"silence"`, `"replayed":true`}, nil},
		{"asleep", presence.Span{State: presence.Idle, Start: t0, End: t0, EndReason: presence.EndSleep, Closed: true}, false,
			[]string{`"end_reason":"sleep"`}, []string{`replayed`}},
		{"a new state followed", presence.Span{State: presence.Away, Why: presence.ByLock, Start: t0, End: t0, Closed: true}, false,
			[]string{`"why":"locked"`}, []string{`end_reason`}},
	}
	for _, tc := range cases {
		b, err := json.Marshal(SessionEvent{Session: sessionOf(tc.sp, tc.open), Handle: "ada"})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: %s lacks %s", tc.name, b, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(string(b), n) {
				t.Errorf("%s: %s has %s", tc.name, b, n)
			}
		}
	}
}

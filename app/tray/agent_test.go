package tray

import (
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/presence"
)

func TestStatusOf(t *testing.T) {
	until := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		st      agent.Status
		service string
		login   bool
		want    Status
	}{
		{"local, active", agent.Status{Mode: agent.Automatic, State: presence.Active, TodayActive: time.Hour}, "local", true,
			Status{Mode: agent.Automatic, State: "active", TodayActive: time.Hour, Service: "local", StartAtLogin: true}},
		{"paused on a remote service", agent.Status{Mode: agent.Pause, Until: until, State: presence.Idle}, "https://ls.example.com", false,
			Status{Mode: agent.Pause, ModeUntil: until, State: "idle", Service: "https://ls.example.com"}},
		{"a sending problem is the error shown", agent.Status{SyncError: "revoked", IdleError: "no X"}, "local", false,
			Status{Service: "local", Error: "revoked"}},
		{"else the idle reader's", agent.Status{IdleError: "no X"}, "local", false,
			Status{Service: "local", Error: "no X"}},
		{"a database that cannot be written comes before the idle reader", agent.Status{StoreError: "disk full; beats in memory", IdleError: "no X"}, "local", false,
			Status{Service: "local", Error: "disk full; beats in memory"}},
		{"but after a sending problem", agent.Status{SyncError: "revoked", StoreError: "disk full"}, "local", false,
			Status{Service: "local", Error: "revoked"}},
		{"in a call, calls counted", agent.Status{State: presence.Active, Why: presence.ByCall, CountCallsAndMedia: true}, "local", false,
			Status{State: "active", Why: "call", Service: "local", CountCallsAndMedia: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatusOf(tc.st, tc.service, tc.login); got != tc.want {
				t.Fatalf("StatusOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

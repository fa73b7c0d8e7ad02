package agentdb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// The final beat's reason reaches the outbox and the local history, the
// lock's why reaches the outbox, and both survive a restart: the window's
// timeline in local mode says what the service's says.
func TestReasonsInOutboxAndHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db := open(t, path, agentdb.Options{})
	rec := func(e agentdb.Entry) {
		t.Helper()
		if _, err := db.Record(ctx, e); err != nil {
			t.Fatalf("Record %+v: %v", e, err)
		}
	}
	A, W, O := presence.Active, presence.Away, presence.Offline
	rec(agentdb.Entry{At: t0, Local: A, Send: A})
	rec(agentdb.Entry{At: t0.Add(30 * time.Second), Local: W, Why: presence.ByLock, Send: W, SendWhy: presence.ByLock})
	rec(agentdb.Entry{At: t0.Add(40 * time.Second), Local: O, Send: O, Reason: presence.EndSleep})
	// Invisible: the service hears offline (why: invisible) while history
	// goes on, and the reason does not stick to the local active beat.
	rec(agentdb.Entry{At: t0.Add(time.Hour), Local: A, Send: O, Reason: presence.EndInvisible})
	rec(agentdb.Entry{At: t0.Add(time.Hour + 10*time.Second), Local: O, Reason: presence.EndQuit})
	db.Close()
	db = open(t, path, agentdb.Options{})

	out := outbox(t, db)
	if len(out) != 4 {
		t.Fatalf("outbox %+v, want 4 beats", out)
	}
	if out[1].Why != presence.ByLock || out[2].Reason != presence.EndSleep || out[3].Reason != presence.EndInvisible || out[0].Reason != "" {
		t.Errorf("outbox %+v: want away locked, offline by sleep, offline by invisible", out)
	}
	hist, err := db.History(ctx, t0.Add(-time.Hour), t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		state  presence.State
		why    presence.Why
		reason presence.EndReason
	}
	want := []got{{A, presence.ByInput, ""}, {W, presence.ByLock, presence.EndSleep}, {A, presence.ByInput, presence.EndQuit}}
	if len(hist) != len(want) {
		t.Fatalf("history %+v, want %d spans", hist, len(want))
	}
	for i, s := range hist {
		if (got{s.State, s.Why, s.EndReason}) != want[i] {
			t.Errorf("history span %d = %s(%s) ended %q, want %+v", i, s.State, s.Why, s.EndReason, want[i])
		}
	}
}

func TestRecordRefusesAMisplacedWhyOrAnUnknownReason(t *testing.T) {
	db := open(t, "", agentdb.Options{})
	for _, e := range []agentdb.Entry{
		{At: t0, Local: presence.Active, Why: presence.ByLock},
		{At: t0, Send: presence.Idle, SendWhy: presence.ByLock},
		{At: t0, Send: presence.Offline, Reason: "nap"},
	} {
		if _, err := db.Record(context.Background(), e); presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("Record %+v: %v, want EINVALID", e, err)
		}
	}
	if n := len(outbox(t, db)); n != 0 {
		t.Errorf("%d beats queued by refused entries", n)
	}
}

package agenthost

import (
	"context"
	"testing"

	"github.com/lastseen/lastseen/backend/localapi"
)

// "Count calls and videos as present" is off out of the box, turned on
// through the local API (or the tray), kept across a restart, and
// overridden for one run by the command line.
func TestCountCallsAndMediaSetting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(override *bool) (*Host, *controls) {
		t.Helper()
		h, err := Open(ctx, Config{DataDir: dir, Idle: unreadableIdle{}, CountCallsAndMedia: override})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, (*controls)(h)
	}
	setting := func(c *controls) bool {
		t.Helper()
		s, err := c.Settings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.CountCallsAndMedia
	}

	h, c := open(nil)
	if setting(c) || h.Status().CountCallsAndMedia {
		t.Fatal("on out of the box")
	}
	on := true
	s, err := c.UpdateSettings(ctx, localapi.SettingsUpdate{CountCallsAndMedia: &on})
	if err != nil || !s.CountCallsAndMedia {
		t.Fatalf("turn on: %+v, %v", s, err)
	}
	if !h.Status().CountCallsAndMedia {
		t.Fatal("the agent did not take the setting")
	}
	if d, err := c.Diagnostics(ctx); err != nil || d.SignalBackend != "none" {
		t.Fatalf("diagnostics without a signal source: %q, %v", d.SignalBackend, err)
	}
	h.Close()

	h, c = open(nil)
	if !setting(c) {
		t.Fatal("the setting was not kept across a restart")
	}
	h.Close()

	off := false
	h, c = open(&off)
	if setting(c) {
		t.Fatal("the command line did not win for its run")
	}
	if err := h.SetCountCallsAndMedia(ctx, true); err != nil || !setting(c) {
		t.Fatalf("the tray's switch: %v", err)
	}
}

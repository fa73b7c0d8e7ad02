package agenthost

import (
	"context"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
)

// The tray's view of the host: the agent's status as it changes, where
// presence goes, and what the menu can ask.

// Status is the agent loop's status now.
func (h *Host) Status() agent.Status { return h.agent.Status() }

// Subscribe delivers the agent loop's status whenever it changes, until
// cancel is called.
func (h *Host) Subscribe() (updates <-chan agent.Status, cancel func()) {
	return h.agent.Subscribe()
}

// Service is "local" in local mode, else the remote service's URL.
func (h *Host) Service() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.svc.remote {
		return kindLocal
	}
	return h.svc.url
}

// SetMode changes the manual mode (see agent.Agent.SetMode).
func (h *Host) SetMode(ctx context.Context, mode agent.Mode, until time.Time) error {
	return h.agent.SetMode(ctx, mode, until)
}

// SetCountCallsAndMedia turns "count calls and videos as present" on or off:
// at once in the agent, and saved for the next run.
func (h *Host) SetCountCallsAndMedia(ctx context.Context, on bool) error {
	cfg := h.agent.Config()
	cfg.CountCallsAndMedia = on
	if err := h.agent.SetConfig(cfg); err != nil {
		return err
	}
	return h.db.SetCountCallsAndMedia(ctx, on)
}

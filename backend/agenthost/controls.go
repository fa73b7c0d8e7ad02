package agenthost

import (
	"context"
	"os"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// controls is the Host seen as the local API's Controls. It is a type of
// its own because the local API's Status differs from the tray's.
type controls Host

var _ localapi.Controls = (*controls)(nil)

func (c *controls) h() *Host { return (*Host)(c) }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// current is the service in use and who this device is there.
func (h *Host) current() (kind, url string, id identity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.svc.kind(), h.svc.url, h.svc.id
}

func (c *controls) Status(ctx context.Context) (localapi.Status, error) {
	h := c.h()
	st := h.agent.Status()
	kind, url, id := h.current()
	errText := st.SyncError
	if errText == "" {
		errText = st.IdleError
	}
	return localapi.Status{
		Mode: string(st.Mode), ModeUntil: timePtr(st.Until),
		State: st.State, Why: st.Why, SentState: st.SentState, IdleS: int64(st.Idle / time.Second),
		ActivityBackend: h.cfg.IdleName,
		Service: localapi.ServiceStatus{
			Kind: kind, URL: url, Reachable: st.Reachable, LastSync: timePtr(st.LastSync), Error: errText,
		},
		Device:          localapi.DeviceRef{ID: id.deviceID, Name: id.deviceName},
		Handle:          id.handle,
		TodayActiveS:    int64(st.TodayActive / time.Second),
		LocalStoreError: st.StoreError,
		Pairing:         h.pairs.status(),
	}, nil
}

// untilTomorrow is ModeRequest.Until's one word: the next local midnight.
const untilTomorrow = "tomorrow"

func (c *controls) SetMode(ctx context.Context, r localapi.ModeRequest) (localapi.Status, error) {
	mode, err := agent.ParseMode(r.Mode)
	if err != nil {
		return localapi.Status{}, err
	}
	var until time.Time
	now := time.Now()
	switch {
	case mode != agent.Pause && (r.ForS != 0 || r.Until != ""):
		return localapi.Status{}, presence.Errorf(presence.EINVALID, "for_s and until go only with mode pause")
	case mode == agent.Pause && r.Until == untilTomorrow:
		until = agent.NextMidnight(now)
	case mode == agent.Pause && r.Until != "":
		return localapi.Status{}, presence.Errorf(presence.EINVALID, `until must be "tomorrow"`)
	case mode == agent.Pause && r.ForS > 0:
		until = now.Add(time.Duration(r.ForS) * time.Second)
	case mode == agent.Pause:
		return localapi.Status{}, presence.Errorf(presence.EINVALID, `pause needs for_s (seconds) or until "tomorrow"`)
	}
	if err := c.h().agent.SetMode(ctx, mode, until); err != nil {
		return localapi.Status{}, err
	}
	return c.Status(ctx)
}

func (c *controls) Settings(ctx context.Context) (localapi.Settings, error) {
	h := c.h()
	s, err := h.db.Settings(ctx)
	if err != nil {
		return localapi.Settings{}, err
	}
	cfg := h.agent.Config()
	on, err := h.cfg.Login.Enabled()
	if err != nil {
		h.log.Warn("read login item", "err", err)
	}
	return localapi.Settings{
		ServerURL: s.ServerURL, HasToken: s.DeviceToken != "",
		IdleAfterS: int64(cfg.IdleAfter / time.Second), IntervalS: int64(cfg.Interval / time.Second),
		StartAtLogin: on, CountCallsAndMedia: cfg.CountCallsAndMedia,
		Notifications: s.Notifications,
	}, nil
}

// UpdateSettings checks the values against the agent's bounds (the
// dashboard's, for the idle threshold), applies them and saves them.
func (c *controls) UpdateSettings(ctx context.Context, u localapi.SettingsUpdate) (localapi.Settings, error) {
	h := c.h()
	cfg := h.agent.Config()
	if u.IdleAfterS != nil {
		cfg.IdleAfter = time.Duration(*u.IdleAfterS) * time.Second
		if err := agent.CheckSettingsIdleAfter("idle_after_s", cfg.IdleAfter); err != nil {
			return localapi.Settings{}, err
		}
	}
	if u.IntervalS != nil {
		cfg.Interval = time.Duration(*u.IntervalS) * time.Second
		if err := agent.CheckInterval("interval_s", cfg.Interval); err != nil {
			return localapi.Settings{}, err
		}
		// The embedded service joins beats by its own pulse, fixed when it
		// opened; a longer interval would split every span until restart.
		if local := h.store.Pulse().Interval; h.isLocal() && cfg.Interval > local {
			return localapi.Settings{}, presence.Errorf(presence.EINVALID,
				"in local mode the interval can be at most %d s (restart the agent with --interval to raise it)", int64(local/time.Second))
		}
	}
	if u.IdleAfterS != nil || u.IntervalS != nil {
		if err := h.agent.SetConfig(cfg); err != nil {
			return localapi.Settings{}, err
		}
		if err := h.db.SetIdleAfter(ctx, cfg.IdleAfter); err != nil {
			return localapi.Settings{}, err
		}
		if err := h.db.SetInterval(ctx, cfg.Interval); err != nil {
			return localapi.Settings{}, err
		}
	}
	if u.StartAtLogin != nil {
		if err := h.SetStartAtLogin(ctx, *u.StartAtLogin); err != nil {
			return localapi.Settings{}, err
		}
	}
	if u.CountCallsAndMedia != nil {
		if err := h.SetCountCallsAndMedia(ctx, *u.CountCallsAndMedia); err != nil {
			return localapi.Settings{}, err
		}
	}
	if u.Notifications != nil {
		if err := h.SetNotifications(ctx, *u.Notifications); err != nil {
			return localapi.Settings{}, err
		}
	}
	return c.Settings(ctx)
}

func (c *controls) TestService(ctx context.Context, r localapi.ServiceRequest) (localapi.ServiceCheck, error) {
	handle, err := c.h().testService(ctx, r.ServerURL, r.Token)
	if err != nil {
		return localapi.ServiceCheck{}, err
	}
	host, _ := os.Hostname()
	return localapi.ServiceCheck{OK: true, Handle: handle, Device: host}, nil
}

// SetService switches to a remote service (tested first) or, with an empty
// URL, back to the embedded one, and saves the choice.
func (c *controls) SetService(ctx context.Context, r localapi.ServiceRequest) (localapi.Settings, error) {
	h := c.h()
	var handle string
	if r.ServerURL != "" {
		var err error
		if handle, err = h.testService(ctx, r.ServerURL, r.Token); err != nil {
			return localapi.Settings{}, err
		}
	}
	h.switching.Lock()
	err := h.db.SetServer(ctx, r.ServerURL, r.Token)
	if err == nil {
		err = h.useService(ctx, r.ServerURL, r.Token, handle)
	}
	h.switching.Unlock()
	if err != nil {
		return localapi.Settings{}, err
	}
	return c.Settings(ctx)
}

func (c *controls) History(ctx context.Context, from, to time.Time) ([]presence.Span, error) {
	h := c.h()
	spans, err := h.db.History(ctx, from, to)
	_, _, id := h.current()
	for i := range spans {
		spans[i].DeviceID = id.deviceID
	}
	return spans, err
}

func (c *controls) Diagnostics(ctx context.Context) (localapi.Diagnostics, error) {
	h := c.h()
	d, err := h.agent.Diagnostics(ctx)
	if err != nil {
		return localapi.Diagnostics{}, err
	}
	out := localapi.Diagnostics{
		ActivityBackend: h.cfg.IdleName, IdleOrder: h.cfg.IdleOrder, LockBackend: h.cfg.LockName, SignalBackend: h.signalName(),
		OutboxDepth: d.OutboxDepth, OutboxDropped: d.OutboxDropped,
		LocalStoreError: d.StoreError, LocalStoreErrorSince: timePtr(d.StoreErrorSince),
		HeldInMemory: d.Held, HeldDropped: d.HeldDropped,
		LastSync: timePtr(d.LastSync), LastError: d.LastError,
		Version: h.cfg.Version, DataDir: h.cfg.DataDir, UptimeS: int64(time.Since(h.started) / time.Second),
	}
	for _, q := range d.Quarantine {
		out.Quarantine = append(out.Quarantine, localapi.QuarantineItem{
			Seq: q.Beat.Seq, At: q.Beat.At, State: q.Beat.State, Error: q.Error, QuarantinedAt: q.QuarantinedAt,
		})
	}
	if s, err := h.sampler.Sample(ctx); err == nil {
		out.CPUPercent, out.RSSBytes = s.CPUPercent, s.RSSBytes
	} else {
		h.log.Debug("self stats", "err", err)
	}
	return out, nil
}

func (h *Host) isLocal() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.svc.remote
}

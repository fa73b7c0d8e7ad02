package main

import (
	"context"
	"os"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// controls is Main seen as the local API's Controls.
type controls Main

var _ localapi.Controls = (*controls)(nil)

func (c *controls) m() *Main { return (*Main)(c) }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (c *controls) Status(ctx context.Context) (localapi.Status, error) {
	m := c.m()
	st := m.agent.Status()
	m.mu.Lock()
	id := m.ident
	m.mu.Unlock()
	errText := st.SyncError
	if errText == "" {
		errText = st.IdleError
	}
	return localapi.Status{
		Mode: string(st.Mode), ModeUntil: timePtr(st.Until),
		State: st.State, SentState: st.SentState, IdleS: int64(st.Idle / time.Second),
		ActivityBackend: m.idleName,
		Service: localapi.ServiceStatus{
			Kind: id.kind, URL: id.url, Reachable: st.Reachable, LastSync: timePtr(st.LastSync), Error: errText,
		},
		Device:       localapi.DeviceRef{ID: id.deviceID, Name: id.deviceName},
		Handle:       id.handle,
		TodayActiveS: int64(st.TodayActive / time.Second),
	}, nil
}

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
	case mode == agent.Pause && r.Until == "tomorrow":
		until = agent.NextMidnight(now)
	case mode == agent.Pause && r.Until != "":
		return localapi.Status{}, presence.Errorf(presence.EINVALID, `until must be "tomorrow"`)
	case mode == agent.Pause && r.ForS > 0:
		until = now.Add(time.Duration(r.ForS) * time.Second)
	case mode == agent.Pause:
		return localapi.Status{}, presence.Errorf(presence.EINVALID, `pause needs for_s (seconds) or until "tomorrow"`)
	}
	if err := c.m().agent.SetMode(ctx, mode, until); err != nil {
		return localapi.Status{}, err
	}
	return c.Status(ctx)
}

func (c *controls) Settings(ctx context.Context) (localapi.Settings, error) {
	m := c.m()
	s, err := m.db.Settings(ctx)
	if err != nil {
		return localapi.Settings{}, err
	}
	cfg := m.agent.Config()
	on, err := m.login.Enabled()
	if err != nil {
		m.log.Warn("read login item", "err", err)
	}
	return localapi.Settings{
		ServerURL: s.ServerURL, HasToken: s.DeviceToken != "",
		IdleAfterS: int64(cfg.IdleAfter / time.Second), IntervalS: int64(cfg.Interval / time.Second),
		StartAtLogin: on,
	}, nil
}

func (c *controls) UpdateSettings(ctx context.Context, u localapi.SettingsUpdate) (localapi.Settings, error) {
	m := c.m()
	cfg := m.agent.Config()
	if u.IdleAfterS != nil {
		cfg.IdleAfter = time.Duration(*u.IdleAfterS) * time.Second
	}
	if u.IntervalS != nil {
		cfg.Interval = time.Duration(*u.IntervalS) * time.Second
		// The embedded service joins beats by its own pulse, fixed when it
		// opened; a longer interval would split every span until restart.
		if local := m.store.Pulse().Interval; m.isLocal() && cfg.Interval > local {
			return localapi.Settings{}, presence.Errorf(presence.EINVALID,
				"in local mode the interval can be at most %d s (restart the agent with --interval to raise it)", int64(local/time.Second))
		}
	}
	if u.IdleAfterS != nil || u.IntervalS != nil {
		if err := m.agent.SetConfig(cfg); err != nil {
			return localapi.Settings{}, err
		}
		if err := m.db.SetIdleAfter(ctx, cfg.IdleAfter); err != nil {
			return localapi.Settings{}, err
		}
		if err := m.db.SetInterval(ctx, cfg.Interval); err != nil {
			return localapi.Settings{}, err
		}
	}
	if u.StartAtLogin != nil {
		if err := m.setStartAtLogin(ctx, *u.StartAtLogin); err != nil {
			return localapi.Settings{}, err
		}
	}
	return c.Settings(ctx)
}

func (c *controls) TestService(ctx context.Context, r localapi.ServiceRequest) (localapi.ServiceCheck, error) {
	handle, err := c.m().testService(ctx, r.ServerURL, r.Token)
	if err != nil {
		return localapi.ServiceCheck{}, err
	}
	host, _ := os.Hostname()
	return localapi.ServiceCheck{OK: true, Handle: handle, Device: host}, nil
}

func (c *controls) SetService(ctx context.Context, r localapi.ServiceRequest) (localapi.Settings, error) {
	m := c.m()
	if r.ServerURL == "" {
		if err := m.db.SetServer(ctx, "", ""); err != nil {
			return localapi.Settings{}, err
		}
		if err := m.useService(ctx, "", ""); err != nil {
			return localapi.Settings{}, err
		}
		s, err := m.db.Settings(ctx)
		if err == nil {
			if p, aerr := m.store.Authenticate(ctx, s.LocalDeviceToken); aerr == nil {
				err = m.loadLocalIdentity(ctx, p)
			}
		}
		if err != nil {
			return localapi.Settings{}, err
		}
		return c.Settings(ctx)
	}
	handle, err := m.testService(ctx, r.ServerURL, r.Token)
	if err != nil {
		return localapi.Settings{}, err
	}
	if err := m.db.SetServer(ctx, r.ServerURL, r.Token); err != nil {
		return localapi.Settings{}, err
	}
	if err := m.useService(ctx, r.ServerURL, r.Token); err != nil {
		return localapi.Settings{}, err
	}
	m.mu.Lock()
	m.ident.handle = handle
	m.mu.Unlock()
	return c.Settings(ctx)
}

func (c *controls) History(ctx context.Context, from, to time.Time) ([]presence.Span, error) {
	m := c.m()
	spans, err := m.db.History(ctx, from, to)
	m.mu.Lock()
	id := m.ident.deviceID
	m.mu.Unlock()
	for i := range spans {
		spans[i].DeviceID = id
	}
	return spans, err
}

func (c *controls) Diagnostics(ctx context.Context) (localapi.Diagnostics, error) {
	m := c.m()
	d, err := m.agent.Diagnostics(ctx)
	if err != nil {
		return localapi.Diagnostics{}, err
	}
	out := localapi.Diagnostics{
		ActivityBackend: m.idleName, LockBackend: m.lockName,
		OutboxDepth: d.OutboxDepth, OutboxDropped: d.OutboxDropped,
		LastSync: timePtr(d.LastSync), LastError: d.LastError,
		Version: version, DataDir: m.flags.DataDir, UptimeS: int64(time.Since(m.started) / time.Second),
	}
	for _, q := range d.Quarantine {
		out.Quarantine = append(out.Quarantine, localapi.QuarantineItem{
			Seq: q.Beat.Seq, At: q.Beat.At, State: q.Beat.State, Error: q.Error, QuarantinedAt: q.QuarantinedAt,
		})
	}
	if s, err := m.sampler.Sample(ctx); err == nil {
		out.CPUPercent, out.RSSBytes = s.CPUPercent, s.RSSBytes
	} else {
		m.log.Debug("self stats", "err", err)
	}
	return out, nil
}

func (m *Main) isLocal() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ident.kind == "local"
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lastseen/lastseen/app/tray"
	"github.com/lastseen/lastseen/backend/agent"
)

// runTray shows the tray on this (the main) goroutine until ctx ends or the
// user quits. Status changes from the agent redraw it.
func (m *Main) runTray(ctx context.Context, quit context.CancelFunc) error {
	updates, cancel := m.agent.Subscribe()
	defer cancel()
	out := make(chan tray.Status, 1)
	go func() {
		defer close(out)
		push := func(st agent.Status) {
			ts := m.trayStatus(st)
			select {
			case <-out: // latest wins
			default:
			}
			out <- ts
		}
		push(m.agent.Status())
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-updates:
				if !ok {
					return
				}
				push(st)
			}
		}
	}()
	return tray.Run(ctx, tray.Options{
		Updates: out,
		Logger:  m.log,
		Actions: tray.Actions{
			OpenDashboard: m.openDashboard,
			SetMode: func(mode string, until time.Time) {
				if err := m.agent.SetMode(ctx, agent.Mode(mode), until); err != nil {
					m.log.Error("set mode from the tray", "mode", mode, "err", err)
				}
			},
			SetStartAtLogin: func(on bool) {
				if err := m.setStartAtLogin(ctx, on); err != nil {
					m.log.Error("start at login", "err", err)
				}
			},
			Quit: quit,
		},
	})
}

func (m *Main) trayStatus(st agent.Status) tray.Status {
	m.mu.Lock()
	id := m.ident
	m.mu.Unlock()
	svc := "local"
	if id.kind == "remote" {
		svc = id.url
	}
	errText := st.SyncError
	if errText == "" {
		errText = st.IdleError
	}
	on, _ := m.login.Enabled()
	return tray.Status{
		Mode: string(st.Mode), ModeUntil: st.Until, State: string(st.State),
		TodayActive: st.TodayActive, Service: svc, Error: errText, StartAtLogin: on,
	}
}

// openDashboard starts the window binary that ships next to this one; the
// window itself focuses an already open dashboard (single instance).
func (m *Main) openDashboard() {
	exe, err := os.Executable()
	if err != nil {
		m.log.Error("open dashboard: find own executable", "err", err)
		return
	}
	name := "lastseen"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	win := filepath.Join(filepath.Dir(exe), name)
	cmd := exec.Command(win, "--data-dir", m.flags.DataDir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		m.log.Error("open dashboard", "exe", win, "err", err)
		return
	}
	go cmd.Wait() // reap it; the window lives on its own
}

// setStartAtLogin writes or removes the login item that runs this agent.
func (m *Main) setStartAtLogin(ctx context.Context, on bool) error {
	if !on {
		if err := m.login.Disable(); err != nil {
			return err
		}
		return m.db.SetStartAtLogin(ctx, false)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	var args []string
	if m.flags.explicitDataDir {
		args = []string{"--data-dir", m.flags.DataDir}
	}
	if err := m.login.Enable(exe, args); err != nil {
		return err
	}
	return m.db.SetStartAtLogin(ctx, true)
}

// firstRunLoginItem turns the login item on once, the first time the agent
// runs with a tray; after that only the user's choice counts.
func (m *Main) firstRunLoginItem(ctx context.Context) {
	const key = "login_item_offered"
	if _, done, err := m.db.Setting(ctx, key); err != nil || done {
		return
	}
	if err := m.setStartAtLogin(ctx, true); err != nil {
		m.log.Warn("could not add the login item", "err", err)
	}
	if err := m.db.SetSetting(ctx, key, "true"); err != nil {
		m.log.Warn("remember login item", "err", err)
	}
}

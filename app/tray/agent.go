package tray

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
)

// Agent is what the tray needs of the agent's host: its status as it
// changes, where presence goes, and what the menu can ask of it.
type Agent interface {
	// Status is the agent's status now; Subscribe delivers it on every
	// change until cancel is called.
	Status() agent.Status
	Subscribe() (updates <-chan agent.Status, cancel func())
	// Service is "local" in local mode, else the remote service's URL.
	Service() string
	// StartAtLogin reports whether the login item is on.
	StartAtLogin() bool
	SetMode(ctx context.Context, mode agent.Mode, until time.Time) error
	SetStartAtLogin(ctx context.Context, on bool) error
	// SetCountCallsAndMedia turns "count calls and videos as present" on
	// or off; the agent's status reports the setting back.
	SetCountCallsAndMedia(ctx context.Context, on bool) error
}

// AgentOptions configure RunAgent.
type AgentOptions struct {
	// DataDir is handed to the dashboard window "Open dashboard" starts, so
	// it finds this agent.
	DataDir string
	// Quit stops the agent; the tray ends right after.
	Quit   func()
	Logger *slog.Logger
}

// RunAgent shows the tray for a until ctx ends or the user quits. Like Run,
// it must be called from the main goroutine.
func RunAgent(ctx context.Context, a Agent, o AgentOptions) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	updates, cancel := a.Subscribe()
	defer cancel()
	out := make(chan Status, 1)
	go func() {
		defer close(out)
		push := func(st agent.Status) {
			s := StatusOf(st, a.Service(), a.StartAtLogin())
			select {
			case <-out: // the latest wins
			default:
			}
			out <- s
		}
		push(a.Status())
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
	log := o.Logger
	return Run(ctx, Options{
		Updates: out,
		Logger:  log,
		Actions: Actions{
			OpenDashboard: func() { openDashboard(o.DataDir, log) },
			SetMode: func(mode agent.Mode, until time.Time) {
				if err := a.SetMode(ctx, mode, until); err != nil {
					log.Error("set mode from the tray", "mode", mode, "err", err)
				}
			},
			SetStartAtLogin: func(on bool) {
				if err := a.SetStartAtLogin(ctx, on); err != nil {
					log.Error("start at login", "err", err)
				}
			},
			SetCountCallsAndMedia: func(on bool) {
				if err := a.SetCountCallsAndMedia(ctx, on); err != nil {
					log.Error("count calls and videos", "err", err)
				}
			},
			Quit: o.Quit,
		},
	})
}

// StatusOf is what the tray shows for the agent's status st, the service in
// use and the login item: one error, the first of a sending problem (a
// revoked token: nothing is sent), a database that cannot be written
// (beats live in memory only) and a failing idle reader.
func StatusOf(st agent.Status, service string, startAtLogin bool) Status {
	errText := st.SyncError
	if errText == "" {
		errText = st.StoreError
	}
	if errText == "" {
		errText = st.IdleError
	}
	return Status{
		Mode: st.Mode, ModeUntil: st.Until, State: string(st.State), Why: string(st.Why),
		TodayActive: st.TodayActive, Service: service, Error: errText, StartAtLogin: startAtLogin,
		CountCallsAndMedia: st.CountCallsAndMedia,
	}
}

// openDashboard starts the window binary that ships next to the agent; the
// window itself focuses an already open dashboard (single instance).
func openDashboard(dataDir string, log *slog.Logger) {
	exe, err := os.Executable()
	if err != nil {
		log.Error("open dashboard: find own executable", "err", err)
		return
	}
	name := "lastseen"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	win := filepath.Join(filepath.Dir(exe), name)
	cmd := exec.Command(win, "--data-dir", dataDir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Error("open dashboard", "exe", win, "err", err)
		return
	}
	go cmd.Wait() // reap it; the window lives on its own
}

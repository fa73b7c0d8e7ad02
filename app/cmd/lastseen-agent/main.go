// The runtime re-reads the cgroup CPU limit about once a second to adjust
// GOMAXPROCS (Go 1.25+). An always-on process that must wake at most twice
// a second, and does one thing at a time, gains nothing from that and pays
// a wakeup a second for it: GOMAXPROCS stays what it was at start.
//
//go:debug updatemaxprocs=0

// Command lastseen-agent is the always-on presence agent: it samples the OS's
// idle time and lock and sleep signals, writes every beat to a local outbox,
// sends them to a presence service (its own embedded one by default), keeps
// local history, serves the loopback API the dashboard window reads, and shows
// the tray icon. It links no webview, so it costs a few MB.
//
// This package parses flags and wires: the OS backends (package activity),
// the login item and the tray around the agent's host (package agenthost).
//
//	lastseen-agent [--data-dir DIR] [--server URL --token TOKEN]
//	               [--idle-after 5m] [--interval 30s] [--headless]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jezek/xgb"

	"github.com/lastseen/lastseen/app/tray"
	"github.com/lastseen/lastseen/backend/activity"
	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/autostart"
)

// version is set by the build (-ldflags -X main.version=…).
var version = "dev"

// lockFile keeps a second agent off the same data dir.
const lockFile = "agent.lock"

var errAlreadyRunning = errors.New("already running for this data dir")

// Flags is the agent's command line; every flag has a LASTSEEN_* twin.
type Flags struct {
	DataDir   string
	Server    string
	Token     string
	IdleAfter time.Duration
	Interval  time.Duration
	Headless  bool
	LogLevel  string
	// explicitDataDir records that --data-dir was given, so the login item
	// starts this same instance.
	explicitDataDir bool
}

// ParseFlags reads args and the LASTSEEN_* environment (flags win).
func ParseFlags(args []string, getenv func(string) string, stderr io.Writer) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet("lastseen-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envDur := func(name string, def time.Duration) time.Duration {
		if v := getenv(name); v != "" {
			if d, err := time.ParseDuration(v); err == nil {
				return d
			}
		}
		return def
	}
	fs.StringVar(&f.DataDir, "data-dir", env("LASTSEEN_DATA_DIR", ""), "directory for every file of this instance (default: the OS's per-user config dir)")
	fs.StringVar(&f.Server, "server", env("LASTSEEN_SERVER", ""), "URL of a remote lastseend (default: the embedded local service)")
	fs.StringVar(&f.Token, "token", env("LASTSEEN_TOKEN", ""), "device token for --server (ls_dev_…)")
	fs.DurationVar(&f.IdleAfter, "idle-after", envDur("LASTSEEN_IDLE_AFTER", 0), "idle threshold (default 5m, or the saved setting)")
	fs.DurationVar(&f.Interval, "interval", envDur("LASTSEEN_INTERVAL", 0), "heartbeat interval (default 30s, or the saved setting)")
	fs.BoolVar(&f.Headless, "headless", getenv("LASTSEEN_HEADLESS") == "1" || getenv("LASTSEEN_HEADLESS") == "true", "run without a tray icon")
	fs.StringVar(&f.LogLevel, "log-level", env("LASTSEEN_LOG_LEVEL", "info"), "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if *showVersion {
		fmt.Fprintln(stderr, "lastseen-agent", version)
		return f, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (f.Server == "") != (f.Token == "") {
		return f, errors.New("--server and --token go together")
	}
	if f.Token != "" {
		if err := agenthost.CheckDeviceToken(f.Token); err != nil {
			return f, fmt.Errorf("--token: %w", err)
		}
	}
	if f.IdleAfter != 0 {
		if err := agent.CheckIdleAfter("--idle-after", f.IdleAfter); err != nil {
			return f, err
		}
	}
	if f.Interval != 0 {
		if err := agent.CheckInterval("--interval", f.Interval); err != nil {
			return f, err
		}
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "data-dir" {
			f.explicitDataDir = true
		}
	})
	if getenv("LASTSEEN_DATA_DIR") != "" {
		f.explicitDataDir = true
	}
	if f.DataDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return f, fmt.Errorf("find the config dir (pass --data-dir): %w", err)
		}
		f.DataDir = filepath.Join(dir, "lastseen")
	}
	abs, err := filepath.Abs(f.DataDir)
	if err != nil {
		return f, fmt.Errorf("data dir: %w", err)
	}
	f.DataDir = abs
	return f, nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func main() {
	f, err := ParseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lastseen-agent:", err)
		os.Exit(2)
	}
	log, err := newLogger(f.LogLevel, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lastseen-agent:", err)
		os.Exit(2)
	}
	// xgb logs through its own global logger; the agent speaks through slog.
	xgb.Logger = stdlog.New(io.Discard, "", 0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, f, log)
	stop()
	switch {
	case errors.Is(err, errAlreadyRunning):
		fmt.Fprintln(os.Stderr, "lastseen-agent:", err)
	case err != nil:
		log.Error("agent stopped", "err", err)
		os.Exit(1)
	}
}

// run takes the data dir, wires the OS backends, the login item and (unless
// headless) the tray to the agent's host, and runs it until ctx ends or the
// user quits from the tray.
func run(ctx context.Context, f Flags, log *slog.Logger) error {
	if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	lock, err := acquireLock(filepath.Join(f.DataDir, lockFile))
	if err != nil {
		return err
	}
	defer lock.release()

	idle, idleName := detectIdle(ctx, log)
	defer idle.Close()
	events, lockName, closeWatcher := watchSession(ctx, log)
	defer closeWatcher()
	var loginArgs []string
	if f.explicitDataDir {
		loginArgs = []string{"--data-dir", f.DataDir}
	}
	h, err := agenthost.Open(ctx, agenthost.Config{
		DataDir: f.DataDir, Server: f.Server, Token: f.Token,
		IdleAfter: f.IdleAfter, Interval: f.Interval,
		Idle: idle, IdleName: idleName, Events: events, LockName: lockName,
		Login: autostart.Item{}, LoginArgs: loginArgs,
		Version: version, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	defer func() {
		if err := h.Close(); err != nil {
			log.Error("shutdown", "err", err)
		}
	}()

	ctx, quit := context.WithCancel(ctx)
	defer quit()
	done := make(chan error, 1)
	go func() {
		done <- h.Run(ctx)
		quit() // a host that stopped on its own takes the tray with it
	}()
	if !f.Headless {
		h.OfferLoginItem(ctx)
		// The tray holds the main goroutine (macOS draws menus only there).
		if err := tray.RunAgent(ctx, h, tray.AgentOptions{DataDir: f.DataDir, Quit: quit, Logger: log}); err != nil {
			log.Warn("tray", "err", err)
		}
	}
	return <-done
}

// detectIdle picks the idle-time backend that works here. With none, the
// agent runs with a reader that reports why, so the state is never guessed.
func detectIdle(ctx context.Context, log *slog.Logger) (activity.IdleSource, string) {
	idle, err := activity.Config{Logger: log}.DetectIdle(ctx)
	if err != nil {
		log.Warn("no idle-time source: presence cannot follow activity", "err", err)
		idle = unavailableIdle{err: err}
	}
	return idle, idle.Name()
}

// watchSession picks the lock and sleep backends that work here and hands
// their events on in the agent's terms.
func watchSession(ctx context.Context, log *slog.Logger) (<-chan agent.OSEvent, string, func()) {
	w, err := activity.Config{Logger: log}.DetectWatcher(ctx)
	if err != nil {
		log.Warn("no lock or sleep signals", "err", err)
		return nil, "none", func() {}
	}
	out := make(chan agent.OSEvent, 8)
	go forwardOSEvents(w.Events(), out)
	return out, w.Name(), func() {
		if err := w.Close(); err != nil {
			log.Debug("close the session watcher", "err", err)
		}
	}
}

// unavailableIdle stands in when no backend works: every read is the error.
type unavailableIdle struct{ err error }

func (u unavailableIdle) Name() string { return "unavailable" }
func (u unavailableIdle) Idle(context.Context) (time.Duration, error) {
	return 0, u.err
}
func (u unavailableIdle) Close() error { return nil }

func forwardOSEvents(in <-chan activity.Event, out chan<- agent.OSEvent) {
	defer close(out)
	for ev := range in {
		var k agent.OSEventKind
		switch ev.Kind {
		case activity.Locked:
			k = agent.Locked
		case activity.Unlocked:
			k = agent.Unlocked
		case activity.Sleeping:
			k = agent.Sleeping
		case activity.Woke:
			k = agent.Woke
		default:
			ev.Done()
			continue
		}
		out <- agent.OSEvent{Kind: k, At: ev.At, Done: ev.Done}
	}
}

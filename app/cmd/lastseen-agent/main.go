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
//	               [--idle-after 5m] [--interval 30s] [--count-calls-and-media]
//	               [--headless]
//	lastseen-agent pair [--data-dir DIR] [--name NAME] URL
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
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/jezek/xgb"

	"github.com/lastseen/lastseen/app/tray"
	"github.com/lastseen/lastseen/backend/activity"
	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/autostart"
	"github.com/lastseen/lastseen/backend/notify"
	"github.com/lastseen/lastseen/internal/version"
)

// lockFile keeps a second agent off the same data dir.
const lockFile = "agent.lock"

var errAlreadyRunning = errors.New("already running for this data dir")

// errShowVersion is ParseFlags' answer to --version: main prints the version
// to standard output and exits 0.
var errShowVersion = errors.New("show the version")

// Flags is the agent's command line; every flag has a LASTSEEN_* twin.
type Flags struct {
	DataDir   string
	Server    string
	Token     string
	IdleAfter time.Duration
	Interval  time.Duration
	// CountCallsAndMedia is set when --count-calls-and-media (or its twin)
	// was given: it overrides the saved setting for this run.
	CountCallsAndMedia *bool
	Headless           bool
	LogLevel           string
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
	calls := optBool{name: "LASTSEEN_COUNT_CALLS_AND_MEDIA"}
	if v := getenv(calls.name); v != "" {
		if err := calls.Set(v); err != nil {
			return f, fmt.Errorf("%s: %w", calls.name, err)
		}
	}
	fs.Var(&calls, "count-calls-and-media", "count calls and videos as present without input (default off, or the saved setting)")
	fs.BoolVar(&f.Headless, "headless", getenv("LASTSEEN_HEADLESS") == "1" || getenv("LASTSEEN_HEADLESS") == "true", "run without a tray icon")
	fs.StringVar(&f.LogLevel, "log-level", env("LASTSEEN_LOG_LEVEL", "info"), "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if *showVersion {
		return f, errShowVersion
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if calls.set {
		on := calls.on
		f.CountCallsAndMedia = &on
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

// optBool is a boolean flag that knows whether it was given: an absent
// flag leaves the saved setting alone.
type optBool struct {
	name    string
	on, set bool
}

func (o *optBool) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatBool(o.on)
}

func (o *optBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", v)
	}
	o.on, o.set = on, true
	return nil
}

// IsBoolFlag lets the flag stand alone: --count-calls-and-media means true.
func (o *optBool) IsBoolFlag() bool { return true }

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "pair" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := pairMain(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr, pairDeps{})
		stop()
		os.Exit(code)
	}
	f, err := ParseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, errShowVersion) {
		fmt.Println("lastseen-agent", version.String())
		os.Exit(0)
	}
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
	// Windows ends a session with window messages, not signals.
	ctx, stopped := onSessionEnd(ctx, log)
	err = run(ctx, f, log)
	stopped() // the final beat is out: a session end may go on
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
	if err := prepareDataDir(f.DataDir); err != nil {
		var loose errLooseDataDir
		if !errors.As(err, &loose) {
			return err
		}
		// The files in it are owner-only all the same (sqlitedb and the
		// discovery file see to that); a file system without modes (FAT,
		// some network shares) must not keep the agent from running.
		log.Warn("the data dir stays open to other users", "err", err)
	}
	lock, err := acquireLock(filepath.Join(f.DataDir, lockFile))
	if err != nil {
		return err
	}
	defer lock.release()

	idle, idleName, idleOrder := detectIdle(ctx, log)
	defer idle.Close()
	events, lockName, closeWatcher := watchSession(ctx, log)
	defer closeWatcher()
	signals, signalName := detectSignals(ctx, log)
	if signals != nil {
		defer signals.Close()
	}
	var loginArgs []string
	if f.explicitDataDir {
		loginArgs = []string{"--data-dir", f.DataDir}
	}
	h, err := agenthost.Open(ctx, agenthost.Config{
		DataDir: f.DataDir, Server: f.Server, Token: f.Token,
		IdleAfter: f.IdleAfter, Interval: f.Interval, CountCallsAndMedia: f.CountCallsAndMedia,
		Idle: idle, IdleName: idleName, IdleOrder: idleOrder, Events: events, LockName: lockName,
		Signals: signals, SignalName: signalName,
		Login: autostart.Item{}, LoginArgs: loginArgs, Notifications: notify.Desktop(),
		Version: version.String(), Logger: log,
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
		if !loginChosenAtInstall() {
			h.OfferLoginItem(ctx)
		}
		// The tray holds the main goroutine (macOS draws menus only there).
		if err := tray.RunAgent(ctx, h, tray.AgentOptions{DataDir: f.DataDir, Quit: quit, Logger: log}); err != nil {
			log.Warn("tray", "err", err)
		}
	}
	return <-done
}

// errLooseDataDir: the data dir exists but could not be made owner-only.
type errLooseDataDir struct{ err error }

func (e errLooseDataDir) Error() string { return e.err.Error() }
func (e errLooseDataDir) Unwrap() error { return e.err }

// prepareDataDir creates the data dir owner-only (0700) and makes an
// existing one that other users may read or enter owner-only: it holds the
// device token, the local API's secret and every beat. MkdirAll alone
// leaves an existing directory as it is. On Windows access is an ACL
// matter that mode bits do not express, and the per-user config dir is
// private already.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return errLooseDataDir{fmt.Errorf("make data dir %s owner-only (it is %v): %w", dir, perm, err)}
		}
	}
	return nil
}

// detectIdle picks the idle-time backend that works here. With none, the
// agent runs with a reader that reports why, so the state is never guessed.
func detectIdle(ctx context.Context, log *slog.Logger) (idle activity.IdleSource, name string, order []string) {
	c := activity.Config{Logger: log}
	idle, err := c.DetectIdle(ctx)
	if err != nil {
		log.Warn("no idle-time source: presence cannot follow activity", "err", err)
		idle = unavailableIdle{err: err}
	}
	return idle, idle.Name(), c.IdleOrder()
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

// detectSignals starts the call and media watchers that work here; the
// agent listens to them only while the user counts calls and videos. With
// none, those never count (nil, "none").
func detectSignals(ctx context.Context, log *slog.Logger) (agent.SignalSource, string) {
	src, err := activity.DetectSignals(ctx, log, time.Now)
	if err != nil {
		log.Info("no call or video signals: only input keeps the user present", "err", err)
		return nil, "none"
	}
	return signalSource{src}, src.Name()
}

// signalSource hands activity's signals on in the agent's terms.
type signalSource struct{ activity.SignalSource }

func (s signalSource) Signal() agent.Signal {
	v := s.SignalSource.Signal()
	return agent.Signal{Why: v.Why, Since: v.Since, Ended: v.Ended}
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

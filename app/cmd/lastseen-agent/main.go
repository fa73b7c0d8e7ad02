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
	"strings"
	"syscall"
	"time"

	"github.com/jezek/xgb"
)

// version is set by the build (-ldflags -X main.version=…).
var version = "dev"

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
	if f.Token != "" && !strings.HasPrefix(f.Token, "ls_dev_") {
		return f, errors.New("--token must be a device token (ls_dev_…); create one with `lastseend device add HANDLE NAME`")
	}
	if f.IdleAfter != 0 && (f.IdleAfter < 5*time.Second || f.IdleAfter > time.Hour) {
		return f, fmt.Errorf("--idle-after must be between 5s and 1h, not %s", f.IdleAfter)
	}
	if f.Interval != 0 && (f.Interval < 10*time.Second || f.Interval > 5*time.Minute) {
		return f, fmt.Errorf("--interval must be between 10s and 5m, not %s", f.Interval)
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
	defer stop()

	m, err := Open(ctx, f, log)
	if errors.Is(err, errAlreadyRunning) {
		fmt.Fprintln(os.Stderr, "lastseen-agent:", err)
		os.Exit(0)
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	runErr := m.Run(ctx)
	if err := m.Close(); err != nil {
		log.Error("shutdown", "err", err)
	}
	if runErr != nil {
		log.Error("agent stopped", "err", runErr)
		os.Exit(1)
	}
}

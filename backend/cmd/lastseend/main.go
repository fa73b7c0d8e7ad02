// Command lastseend is the Lastseen presence service: the HTTP JSON API, the
// live event stream, the public status and badge, and the dashboard for
// browsers, over SQLite or PostgreSQL. It is also the admin tool that adds
// users and devices and hands out their tokens.
//
// This file is the composition root: the only place that wires the store,
// the event hub, the metrics and the HTTP handler together. Main carries the
// whole program so tests run the real code path in-process on 127.0.0.1:0.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/frontend"
	"github.com/lastseen/lastseen/internal/version"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful stop, a second one kills
		// the process at once, as people expect of Ctrl-C twice.
		<-ctx.Done()
		stop()
	}()
	os.Exit(NewMain().Main(ctx, os.Args[1:]))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong
)

// Main is the program: its configuration, its I/O, and once serve runs, the
// live pieces tests reach into.
type Main struct {
	Config Config

	Stdout, Stderr io.Writer
	// LookupEnv reads LASTSEEN_* twins (os.LookupEnv in production).
	LookupEnv func(string) (string, bool)
	// Now is the clock of the store and the handler.
	Now func() time.Time

	cmd    command
	args   []string // the command's positional arguments
	admin  adminInput
	health healthInput

	logger *slog.Logger

	// Set by Run for serve.
	Store   presence.Store
	Handler *httpapi.Server
	HTTP    *http.Server
	ln      net.Listener
	tls     bool
	served  chan error // receives Serve's result when it stops on its own
	// stopPruning ends the --retain loop (see startPruning).
	stopPruning func()

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main with the default configuration and the process's
// standard streams and environment.
func NewMain() *Main {
	return &Main{
		Config:    DefaultConfig(),
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		Now:       time.Now,
	}
}

// Main runs the whole program with args and returns the exit code: it
// parses, runs, and for serve blocks until ctx ends (a signal) or the server
// fails, then shuts down gracefully.
func (m *Main) Main(ctx context.Context, args []string) int {
	if err := m.ParseFlags(ctx, args); errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		fmt.Fprintf(m.Stderr, "lastseend: %v\n", err)
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprint(m.Stderr, "\n", ue.Usage)
		}
		return exitUsage
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		fmt.Fprintf(m.Stderr, "lastseend: %v\n", err)
		return exitFailure
	}
	if m.cmd.name != "serve" {
		return exitOK
	}
	var serveErr error
	select {
	case <-ctx.Done():
		m.logger.Info("stopping", "reason", "signal")
	case serveErr = <-m.served:
	}
	if err := errors.Join(serveErr, m.Close()); err != nil {
		fmt.Fprintf(m.Stderr, "lastseend: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// UsageError is a wrong command line; main prints it with the usage text of
// the command and exits 2.
type UsageError struct {
	Err   error
	Usage string
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ParseFlags reads the command, its flags and their LASTSEEN_* twins into
// m.Config. It returns flag.ErrHelp after printing help to Stdout, and a
// *UsageError for a wrong command line.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	cmd, rest, err := findCommand(args)
	if err != nil {
		return &UsageError{Err: err, Usage: topUsage}
	}
	if cmd.name == "help" {
		if len(rest) > 0 {
			if c, _, err := findCommand(rest); err == nil && c.name != "help" {
				fmt.Fprint(m.Stdout, m.commandUsage(c))
				return flag.ErrHelp
			}
		}
		fmt.Fprint(m.Stdout, topUsage)
		return flag.ErrHelp
	}
	fs := m.flagSet(cmd)
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(m.Stdout, m.commandUsage(cmd))
		return flag.ErrHelp
	}
	if err == nil {
		err = applyEnv(fs, m.LookupEnv)
		m.recordGiven(fs)
	}
	if err == nil && (len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs) {
		err = fmt.Errorf("%s takes %s", cmd.name, cmd.argsText())
	}
	if err == nil {
		err = m.Config.Validate()
	}
	if err == nil && cmd.check != nil {
		err = cmd.check(m, fs, pos)
	}
	if err != nil {
		return &UsageError{Err: err, Usage: m.commandUsage(cmd)}
	}
	m.cmd, m.args = cmd, pos
	return nil
}

// Run executes the parsed command. For serve it opens the store, starts
// listening and returns; Close stops it. Every other command runs to its end.
func (m *Main) Run(ctx context.Context) error {
	if m.cmd.name == "" {
		m.cmd = commands["serve"]
	}
	m.logger = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: m.Config.LogLevel}))
	if m.cmd.name == "version" {
		fmt.Fprintln(m.Stdout, "lastseend", version.String())
		return nil
	}
	if m.cmd.name == "serve" {
		return m.serve(ctx)
	}
	if m.cmd.runFile != nil {
		return m.cmd.runFile(ctx, m, m.args)
	}
	store, err := m.openStore(ctx, presence.Options{})
	if err != nil {
		return err
	}
	err = m.cmd.run(ctx, m, store, m.args)
	if cerr := store.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	return err
}

// serve wires store, hub, metrics and handler, and starts listening.
func (m *Main) serve(ctx context.Context) error {
	c := m.Config
	hub := httpapi.NewHub(c.EventRing, m.logger)
	metrics := httpapi.NewMetrics()
	store, err := m.openStore(ctx, presence.Options{Notify: hub.Publish, Observe: metrics.ObserveBatch})
	if err != nil {
		return err
	}
	m.Store = store

	caps := c.Caps.caps()
	if caps.clamped {
		m.logger.Warn("--max-conns is above what the descriptor limit leaves; lowered", "max_conns", caps.conns, "descriptor_limit", caps.fdLimit)
	}
	handler, err := httpapi.New(httpapi.Config{
		Store:                   store,
		Hub:                     hub,
		Metrics:                 metrics,
		Logger:                  m.logger,
		Now:                     m.Now,
		Limits:                  presence.DefaultLimits,
		Frontend:                frontend.Dist(),
		UserRate:                c.UserRate,
		DeviceRate:              c.DeviceRate,
		FailedAuthRate:          c.Caps.FailedAuthRate,
		MaxStreams:              caps.streams,
		MaxStreamsPerUser:       c.Caps.MaxStreamsPerUser,
		MaxDevicesPerUser:       c.Caps.MaxDevicesPerUser,
		MaxPublicStreamsPerAddr: c.Caps.MaxPublicStreamsPerAddr,
		BaseURL:                 c.BaseURL,
	})
	if err != nil {
		return fmt.Errorf("build handler: %w", err)
	}
	m.Handler = handler

	var tlsConf *tls.Config
	if c.TLSCert != "" {
		// Load now so a bad file fails the start, not the first handshake.
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.ln = ln
	// Every connection holds a descriptor until closed: past the cap, one
	// is answered 503 at once, so the process never runs out of them.
	ln = httpapi.LimitListener(ln, caps.conns, tlsConf, metrics)
	m.HTTP = &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for requests in flight, and a live stream never ends
	// by itself: ending the streams is part of shutting down.
	m.HTTP.RegisterOnShutdown(handler.Close)

	m.served = make(chan error, 1)
	m.tls = tlsConf != nil
	go func() {
		var err error
		if m.tls {
			err = m.HTTP.ServeTLS(ln, "", "")
		} else {
			err = m.HTTP.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			m.served <- fmt.Errorf("serve: %w", err)
		}
	}()
	m.logger.Info("listening",
		"url", m.URL(), "db", c.RedactedDB(), "version", version.String(),
		"interval", c.Pulse.Interval.String(), "grace", c.Pulse.Grace.String(),
		"max_conns", caps.conns, "max_streams", caps.streams)
	m.stopPruning = m.startPruning()
	return nil
}

// URL is the base URL of the running server ("" before Run).
func (m *Main) URL() string {
	if m.ln == nil {
		return ""
	}
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	return scheme + "://" + m.ln.Addr().String()
}

// Close stops serving gracefully: no new connections, live streams ended,
// requests in flight answered (up to ShutdownTimeout), then the store is
// closed, which flushes every accepted beat. It is safe to call twice.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.HTTP != nil {
			ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
			err := m.HTTP.Shutdown(ctx)
			cancel()
			if err != nil {
				m.logger.Warn("requests still running at the shutdown deadline; cutting them off", "err", err)
				_ = m.HTTP.Close()
			}
		}
		if m.Handler != nil {
			m.Handler.Close()
		}
		if m.stopPruning != nil {
			m.stopPruning()
		}
		if m.Store != nil {
			if err := m.Store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		if m.HTTP != nil {
			m.logger.Info("stopped")
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

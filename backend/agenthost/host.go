// Package agenthost is the agent's host: which service the agent talks to —
// its embedded local service or a remote lastseend —, the local account on
// the embedded service, the proxy that carries the dashboard's reads to a
// remote service, the loopback listener with the local API and its
// discovery file, the controls the window (through the local API) and
// the tray use, and pairing with a service (RFC 8628) for the window and
// the pair command. It sits next to the lastseen-agent command the way a
// daemon's backend sits next to its main: the command parses flags, picks
// the OS backends and the tray, and wires them into a Host.
package agenthost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/notify"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/backend/sysinfo"
)

// Files of one instance in the data dir (the discovery file is
// localapi.DiscoveryFile).
const (
	AgentDBFile = "agent.db" // outbox, quarantine, history, settings
	LocalDBFile = "local.db" // the embedded service's store (local mode)
)

// localGrace is the embedded service's grace; its interval follows the agent's.
const localGrace = 30 * time.Second

// Config is what the command hands the host.
type Config struct {
	// DataDir holds every file of this instance (required). The caller
	// creates it and holds the single-instance lock on it.
	DataDir string
	// Server and Token, when set, are saved as the remote service before the
	// host opens (--server and --token); they go together.
	Server, Token string
	// IdleAfter and Interval override the saved settings for this run; zero
	// leaves the saved setting, else the default.
	IdleAfter, Interval time.Duration
	// CountCallsAndMedia, when set, overrides the saved setting for this run
	// (--count-calls-and-media).
	CountCallsAndMedia *bool
	// Idle reads the user's idle time (required); IdleName names its
	// backend for the status and diagnostics.
	Idle     agent.IdleReader
	IdleName string
	// IdleOrder names the idle backends tried, in order (Diagnostics).
	IdleOrder []string
	// Events carries lock, sleep and wake changes (optional); LockName
	// names their backends ("none" without).
	Events   <-chan agent.OSEvent
	LockName string
	// Signals reports calls and media (optional); SignalName names its
	// backends ("none" without).
	Signals    agent.SignalSource
	SignalName string
	// Login is the login item that starts the agent (nil: none on this
	// system); LoginArgs are the arguments it starts the agent with.
	Login     LoginItem
	LoginArgs []string
	// Notifications shows watched people coming online (notify.Desktop);
	// nil: none.
	Notifications notify.Sender
	// Version is the agent's version, for the discovery file and diagnostics.
	Version string
	// Logger receives the host's and the agent's logs (discarded when nil).
	Logger *slog.Logger
}

// LoginItem is the OS login item that starts the agent (autostart.Item).
type LoginItem interface {
	Enabled() (bool, error)
	Enable(exe string, args []string) error
	Disable() error
}

// Host is the running agent: every part, wired.
type Host struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	sampler *sysinfo.Sampler

	db *agentdb.DB
	// The embedded service (local mode), served on the same loopback
	// listener to callers that present a Lastseen token.
	store   *sqlite.Store
	service *httpapi.Server
	agent   *agent.Agent

	ln     net.Listener
	srv    *http.Server
	url    string
	secret string
	hc     *http.Client

	// life ends at Close: work for a service (a handle lookup) stops with it.
	life    context.Context
	endLife context.CancelFunc
	// switching makes a change of service one step: saving it, the reads
	// and the uploader never come from two different switches.
	switching sync.Mutex

	// pairs is the pairing the window started (pair.go).
	pairs pairings

	// Notifications (notify.go): the setting, Run's start (closed once),
	// and the watchers, which Close waits for.
	notifyOn atomic.Bool
	running  chan struct{}
	runOnce  sync.Once
	bg       sync.WaitGroup

	mu         sync.Mutex
	local      identity // this computer's account on the embedded service
	svc        *service // the service in use; replaced whole on every switch
	discovered bool     // the discovery file is ours to remove
}

// identity is who this device is on a service.
type identity struct {
	handle     string
	deviceID   int64
	deviceName string
}

// Open builds the host: it opens both databases, makes sure the local
// account exists, listens on loopback and points the agent at the saved
// service. Nothing runs until Run.
func Open(ctx context.Context, cfg Config) (_ *Host, err error) {
	if cfg.DataDir == "" || cfg.Idle == nil {
		return nil, errors.New("agenthost: DataDir and Idle are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Login == nil {
		cfg.Login = noLoginItem{}
	}
	h := &Host{cfg: cfg, log: cfg.Logger, started: time.Now(), sampler: sysinfo.NewSampler(time.Now), running: make(chan struct{})}
	h.life, h.endLife = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.db, err = agentdb.Open(filepath.Join(cfg.DataDir, AgentDBFile), agentdb.Options{Logger: h.log}); err != nil {
		return nil, fmt.Errorf("open agent database: %w", err)
	}
	if cfg.Server != "" {
		if err := h.db.SetServer(ctx, cfg.Server, cfg.Token); err != nil {
			return nil, fmt.Errorf("save the server: %w", err)
		}
	}
	settings, err := h.db.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	acfg := h.agentConfig(settings)
	h.notifyOn.Store(settings.Notifications)

	// The embedded service. Its pulse must cover the agent's interval, or
	// every beat would start a new span.
	hub := httpapi.NewHub(httpapi.DefaultHubRing, h.log)
	metrics := httpapi.NewMetrics()
	h.store, err = sqlite.Open(filepath.Join(cfg.DataDir, LocalDBFile), presence.Options{
		Pulse:   presence.Pulse{Interval: max(acfg.Interval, presence.DefaultPulse.Interval), Grace: localGrace},
		Notify:  hub.Publish,
		Observe: metrics.ObserveBatch,
	})
	if err != nil {
		return nil, fmt.Errorf("open local service store: %w", err)
	}
	// No Frontend: the agent serves the API only; the window draws the dashboard.
	h.service, err = httpapi.New(httpapi.Config{Store: h.store, Hub: hub, Metrics: metrics, Logger: h.log})
	if err != nil {
		return nil, fmt.Errorf("local service: %w", err)
	}
	if err := h.ensureLocalAccount(ctx, settings); err != nil {
		return nil, err
	}

	if h.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	h.url = "http://" + h.ln.Addr().String()
	h.secret = randomHex(32)
	h.hc = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
	local, err := localapi.New(localapi.Config{
		Secret: h.secret, Controls: (*controls)(h), Service: http.HandlerFunc(h.serveReads),
		Logger: h.log, Window: h.store.Pulse().Window(),
	})
	if err != nil {
		return nil, err
	}
	h.srv = &http.Server{Handler: h.route(local), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug)}

	facts, err := sysinfo.Facts(ctx)
	if err != nil {
		h.log.Warn("cannot read device facts", "err", err)
	}
	facts.Version = cfg.Version
	h.agent, err = agent.New(agent.Deps{DB: h.db, Idle: cfg.Idle, Events: cfg.Events, Signals: cfg.Signals, Facts: &facts, Logger: h.log}, acfg)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := h.useService(ctx, settings.ServerURL, settings.DeviceToken, ""); err != nil {
		return nil, err
	}
	return h, nil
}

// agentConfig is the agent's cadence: this run's overrides, else the saved
// settings, else DESIGN's defaults. A saved value out of bounds (written by
// another version) is ignored rather than keeping the agent from starting.
func (h *Host) agentConfig(s agentdb.Settings) agent.Config {
	cfg := agent.DefaultConfig()
	if s.IdleAfter > 0 {
		if err := agent.CheckIdleAfter("the saved idle threshold", s.IdleAfter); err != nil {
			h.log.Warn("ignoring a saved setting", "err", err)
		} else {
			cfg.IdleAfter = s.IdleAfter
		}
	}
	if s.Interval > 0 {
		if err := agent.CheckInterval("the saved interval", s.Interval); err != nil {
			h.log.Warn("ignoring a saved setting", "err", err)
		} else {
			cfg.Interval = s.Interval
		}
	}
	cfg.CountCallsAndMedia = s.CountCallsAndMedia
	if h.cfg.IdleAfter > 0 {
		cfg.IdleAfter = h.cfg.IdleAfter
	}
	if h.cfg.CountCallsAndMedia != nil {
		cfg.CountCallsAndMedia = *h.cfg.CountCallsAndMedia
	}
	if h.cfg.Interval > 0 {
		cfg.Interval = h.cfg.Interval
	}
	return cfg
}

// route sends callers holding a Lastseen token (the agent's own sender in
// local mode, or a script) to the embedded service; everything else is the
// local API, which demands the per-run secret.
func (h *Host) route(local http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if _, err := presence.TokenKindOf(tok); err == nil {
				h.service.ServeHTTP(w, r)
				return
			}
		}
		local.ServeHTTP(w, r)
	})
}

// serveReads answers the dashboard's /api/v1 requests from the service in
// use, except device management (see managesDevices).
func (h *Host) serveReads(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	reads, remote := h.svc.reads, h.svc.remote
	h.mu.Unlock()
	if managesDevices(r) {
		msg := "the agent is this computer's one device: the window does not add or revoke devices"
		if remote {
			msg = "the agent holds only this device's token: add or revoke devices in the service's own dashboard"
		}
		status, d, _ := apierror.From(presence.Errorf(presence.EFORBIDDEN, "%s", msg))
		apierror.Write(w, status, d)
		return
	}
	reads.ServeHTTP(w, r)
	h.watchesChanged(r)
}

// managesDevices reports a request that adds or revokes devices (anything
// but a read of /api/v1/devices). In local mode the agent forwards the
// window's requests as the local account's user, so without this the
// window could mint a device token (POST /api/v1/devices answers one) that
// reaches the embedded service on this listener without the per-run
// secret, and outlives the run; or revoke the agent's own token. The path
// is the one the service's router matches (decoded, as sent: an unclean
// path is only redirected there, never served).
func managesDevices(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p == "/api/v1/devices" || strings.HasPrefix(p, "/api/v1/devices/")
}

// URL is the loopback address of the local API (and, for token holders, of
// the embedded service).
func (h *Host) URL() string { return h.url }

// Run serves the local API, publishes the discovery file and runs the
// agent until ctx ends; then the agent writes and sends its final beat.
func (h *Host) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	h.runOnce.Do(func() { close(h.running) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- h.srv.Serve(h.ln) }()
	if err := localapi.WriteDiscovery(h.cfg.DataDir, localapi.Discovery{URL: h.url, Secret: h.secret, PID: os.Getpid(), Version: h.cfg.Version}); err != nil {
		return err
	}
	h.mu.Lock()
	h.discovered = true
	h.mu.Unlock()
	agentDone := make(chan error, 1)
	go func() { agentDone <- h.agent.Run(ctx) }()
	h.log.Info("agent running", "version", h.cfg.Version, "local_api", h.url, "data_dir", h.cfg.DataDir,
		"idle_source", h.cfg.IdleName, "lock_source", h.cfg.LockName, "signal_source", h.signalName(),
		"count_calls_and_media", h.agent.Config().CountCallsAndMedia)
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stop()
		<-agentDone
		return fmt.Errorf("local API: %w", err)
	}
	// The agent's final beat may go to the embedded service over the local
	// listener, so the listener stays up until the agent is done.
	return <-agentDone
}

// Close stops serving, removes the discovery file and closes both
// databases; safe on a partly opened Host, and after Run.
func (h *Host) Close() error {
	var errs []error
	if h.endLife != nil {
		h.endLife()
	}
	h.bg.Wait()
	// A pairing approved just now saves its token before the database closes.
	h.pairs.wg.Wait()
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		h.service.Close()
		if err := h.srv.Shutdown(ctx); err != nil {
			h.srv.Close()
		}
		cancel()
	} else if h.ln != nil {
		h.ln.Close()
	}
	h.mu.Lock()
	discovered := h.discovered
	h.discovered = false
	h.mu.Unlock()
	if discovered {
		errs = append(errs, localapi.RemoveDiscovery(h.cfg.DataDir))
	}
	if h.store != nil {
		errs = append(errs, h.store.Close())
	}
	if h.db != nil {
		errs = append(errs, h.db.Close())
	}
	return errors.Join(errs...)
}

// signalName names the call and media backends, "none" without.
func (h *Host) signalName() string {
	if h.cfg.Signals == nil || h.cfg.SignalName == "" {
		return "none"
	}
	return h.cfg.SignalName
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"github.com/lastseen/lastseen/backend/activity"
	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/autostart"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/backend/sysinfo"
)

// Files of one instance, all inside the data dir.
const (
	lockFile    = "agent.lock" // single instance per data dir
	agentDBFile = "agent.db"   // outbox, quarantine, history, settings
	localDBFile = "local.db"   // the embedded service's store (local mode)
	discovery   = "agent.json" // where the window finds the local API
)

// localGrace is the embedded service's grace; its interval follows the agent's.
const localGrace = 30 * time.Second

// Discovery is agent.json: how the window reaches the local API. It holds the
// per-run secret, so it is written owner-only.
type Discovery struct {
	URL     string `json:"url"`
	Secret  string `json:"secret"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// Main is the agent process: every part, wired.
type Main struct {
	flags   Flags
	log     *slog.Logger
	started time.Time

	lock *instanceLock
	db   *agentdb.DB

	// The embedded service (local mode), served on the same loopback listener
	// to callers that present a Lastseen token.
	store   *sqlite.Store
	service *httpapi.Server

	ln     net.Listener
	srv    *http.Server
	url    string
	secret string
	hc     *http.Client

	idle    activity.IdleSource
	watcher activity.Watcher
	agent   *agent.Agent
	sampler *sysinfo.Sampler
	login   autostart.Item

	mu    sync.Mutex
	reads http.Handler // what /api/v1 reads go to: local service or remote proxy
	ident identity

	idleName, lockName string
}

// identity is who this device is on the service it talks to.
type identity struct {
	kind       string // "local" or "remote"
	url        string
	handle     string
	deviceID   int64
	deviceName string
}

var errAlreadyRunning = errors.New("already running for this data dir")

// Open builds the agent: it takes the single-instance lock, opens both
// databases, starts nothing yet.
func Open(ctx context.Context, f Flags, log *slog.Logger) (_ *Main, err error) {
	m := &Main{flags: f, log: log, started: time.Now(), sampler: sysinfo.NewSampler(time.Now)}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if m.lock, err = acquireLock(filepath.Join(f.DataDir, lockFile)); err != nil {
		return nil, err
	}
	if m.db, err = agentdb.Open(filepath.Join(f.DataDir, agentDBFile), agentdb.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("open agent database: %w", err)
	}
	if f.Server != "" {
		if err := m.db.SetServer(ctx, f.Server, f.Token); err != nil {
			return nil, fmt.Errorf("save --server: %w", err)
		}
	}
	settings, err := m.db.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	cfg := m.config(settings)

	// The embedded service. Its pulse must cover the agent's interval, or
	// every beat would start a new span.
	hub := httpapi.NewHub(httpapi.DefaultHubRing, log)
	metrics := httpapi.NewMetrics()
	m.store, err = sqlite.Open(filepath.Join(f.DataDir, localDBFile), presence.Options{
		Pulse:   presence.Pulse{Interval: max(cfg.Interval, presence.DefaultPulse.Interval), Grace: localGrace},
		Notify:  hub.Publish,
		Observe: metrics.ObserveBatch,
	})
	if err != nil {
		return nil, fmt.Errorf("open local service store: %w", err)
	}
	m.service, err = httpapi.New(httpapi.Config{Store: m.store, Hub: hub, Metrics: metrics, Logger: log, Frontend: fstest.MapFS{}})
	if err != nil {
		return nil, fmt.Errorf("local service: %w", err)
	}
	if err := m.ensureLocalAccount(ctx, settings); err != nil {
		return nil, err
	}

	if m.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	m.url = "http://" + m.ln.Addr().String()
	m.secret = randomHex(32)
	m.hc = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}}
	local, err := localapi.New(localapi.Config{
		Secret: m.secret, Controls: (*controls)(m), Service: http.HandlerFunc(m.serveReads),
		Logger: log, Window: m.store.Pulse().Window(),
	})
	if err != nil {
		return nil, err
	}
	m.srv = &http.Server{Handler: m.route(local), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	m.detectActivity(ctx)
	facts, err := sysinfo.Facts(ctx)
	if err != nil {
		log.Warn("cannot read device facts", "err", err)
	}
	osEvents := make(chan agent.OSEvent, 8)
	if m.watcher != nil {
		go forwardOSEvents(m.watcher.Events(), osEvents)
	}
	m.agent, err = agent.New(agent.Deps{DB: m.db, Idle: m.idle, Events: osEvents, Facts: &facts, Logger: log}, cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := m.useService(ctx, settings.ServerURL, settings.DeviceToken); err != nil {
		return nil, err
	}
	return m, nil
}

// config is the agent's cadence: flags for this run, else saved settings,
// else DESIGN's defaults.
func (m *Main) config(s agentdb.Settings) agent.Config {
	cfg := agent.DefaultConfig()
	if s.IdleAfter > 0 {
		cfg.IdleAfter = s.IdleAfter
	}
	if s.Interval > 0 {
		cfg.Interval = s.Interval
	}
	if m.flags.IdleAfter > 0 {
		cfg.IdleAfter = m.flags.IdleAfter
	}
	if m.flags.Interval > 0 {
		cfg.Interval = m.flags.Interval
	}
	return cfg
}

// ensureLocalAccount makes sure the embedded service has this computer's
// user and device, creating them on first run.
func (m *Main) ensureLocalAccount(ctx context.Context, s agentdb.Settings) error {
	if s.LocalUserToken != "" && s.LocalDeviceToken != "" {
		if p, err := m.store.Authenticate(ctx, s.LocalDeviceToken); err == nil {
			return m.loadLocalIdentity(ctx, p)
		}
		m.log.Warn("the local service no longer knows this device; creating it again")
	}
	base := localHandle()
	var user presence.User
	var userToken string
	var err error
	for i := 1; i <= 20; i++ {
		h := base
		if i > 1 {
			h = fmt.Sprintf("%s-%d", base, i)
		}
		user, userToken, err = m.store.CreateUser(ctx, h, displayName())
		if presence.ErrorCode(err) != presence.ECONFLICT {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create local user: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "this computer"
	}
	dev, devToken, err := m.store.CreateDevice(ctx, user.ID, truncate(host, 64))
	if err != nil {
		return fmt.Errorf("create local device: %w", err)
	}
	if err := m.db.SetLocalTokens(ctx, userToken, devToken); err != nil {
		return fmt.Errorf("save local tokens: %w", err)
	}
	m.log.Info("created the local account", "handle", user.Handle, "device", dev.Name)
	return m.loadLocalIdentity(ctx, presence.Principal{Kind: presence.DeviceToken, UserID: user.ID, DeviceID: dev.ID})
}

func (m *Main) loadLocalIdentity(ctx context.Context, p presence.Principal) error {
	u, err := m.store.UserByID(ctx, p.UserID)
	if err != nil {
		return fmt.Errorf("local user: %w", err)
	}
	ds, err := m.store.DeviceStatus(ctx, p.DeviceID)
	if err != nil {
		return fmt.Errorf("local device: %w", err)
	}
	m.mu.Lock()
	m.ident = identity{kind: "local", handle: u.Handle, deviceID: p.DeviceID, deviceName: ds.Name}
	m.mu.Unlock()
	return nil
}

// detectActivity picks the idle and lock/sleep backends that work here. With
// none, the agent runs with an idle reader that reports why, so the state is
// never guessed.
func (m *Main) detectActivity(ctx context.Context) {
	cfg := activity.Config{Logger: m.log}
	idle, err := cfg.DetectIdle(ctx)
	if err != nil {
		m.log.Warn("no idle-time source: presence cannot follow activity", "err", err)
		idle = unavailableIdle{err: err}
	}
	m.idle, m.idleName = idle, idle.Name()
	w, err := cfg.DetectWatcher(ctx)
	if err != nil {
		m.log.Warn("no lock or sleep signals", "err", err)
		m.lockName = "none"
		return
	}
	m.watcher, m.lockName = w, w.Name()
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

// route sends callers holding a Lastseen token (the agent's own sender in
// local mode, or a script) to the embedded service; everything else is the
// local API, which demands the per-run secret.
func (m *Main) route(local http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ls_") {
			m.service.ServeHTTP(w, r)
			return
		}
		local.ServeHTTP(w, r)
	})
}

func (m *Main) serveReads(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	h := m.reads
	m.mu.Unlock()
	h.ServeHTTP(w, r)
}

// Run serves the local API, runs the agent and (unless headless) the tray
// until ctx ends or the user quits, then lets the agent write and send its
// final beat.
func (m *Main) Run(ctx context.Context) error {
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	serveErr := make(chan error, 1)
	go func() { serveErr <- m.srv.Serve(m.ln) }()
	if err := m.writeDiscovery(); err != nil {
		return err
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- m.agent.Run(ctx) }()
	m.log.Info("agent running", "version", version, "local_api", m.url, "data_dir", m.flags.DataDir,
		"idle_source", m.idleName, "lock_source", m.lockName)

	if !m.flags.Headless {
		m.firstRunLoginItem(ctx)
		if err := m.runTray(ctx, quit); err != nil {
			m.log.Warn("tray", "err", err)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		quit()
		<-agentDone
		return fmt.Errorf("local API: %w", err)
	}
	// The agent's final beat may go to the embedded service over the local
	// listener, so the listener stays up until the agent is done.
	return <-agentDone
}

// Close stops serving and releases every resource; safe on a partly opened Main.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m.service.Close()
		if err := m.srv.Shutdown(ctx); err != nil {
			m.srv.Close()
		}
		cancel()
	} else if m.ln != nil {
		m.ln.Close()
	}
	if m.lock != nil && m.flags.DataDir != "" {
		os.Remove(filepath.Join(m.flags.DataDir, discovery))
	}
	if m.watcher != nil {
		errs = append(errs, m.watcher.Close())
	}
	if m.idle != nil {
		errs = append(errs, m.idle.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	if m.lock != nil {
		errs = append(errs, m.lock.release())
	}
	return errors.Join(errs...)
}

// writeDiscovery writes agent.json atomically, owner-only.
func (m *Main) writeDiscovery() error {
	b, err := json.Marshal(Discovery{URL: m.url, Secret: m.secret, PID: os.Getpid(), Version: version})
	if err != nil {
		return err
	}
	path := filepath.Join(m.flags.DataDir, discovery)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", discovery, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", discovery, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

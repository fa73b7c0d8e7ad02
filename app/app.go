// Package app is the dashboard window, `lastseen`: the composition root of
// a Wails v2 window that shows the dashboard and talks only to the agent's
// local API. It finds the agent through <data-dir>/agent.json, starts it
// (detached, from beside its own executable) when none answers, binds one
// Bridge for the dashboard's requests, and re-emits the agent's event stream
// to the page. Closing the window ends this process; the agent stays.
//
// This and the agent's tray are the only Go code that touches GUI toolkits;
// the window links WebKit, so nothing always-on lives here.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	"github.com/wailsapp/wails/v2/pkg/options/windows"
	"github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/lastseen/lastseen/app/tray/icons"
	"github.com/lastseen/lastseen/frontend"
	"github.com/lastseen/lastseen/internal/version"
)

// Config is the window's command line.
type Config struct {
	// DataDir keeps every file of one Lastseen instance, shared with its
	// agent.
	DataDir string
}

// ErrShowVersion is ParseFlags' answer to --version: print the version and
// open nothing.
var ErrShowVersion = errors.New("show the version")

// ParseFlags reads `lastseen [--data-dir DIR] [--version]`; LASTSEEN_DATA_DIR
// is the flag's environment twin.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("lastseen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data-dir", os.Getenv("LASTSEEN_DATA_DIR"),
		"directory for this instance's files (default: the per-user config directory)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if *showVersion {
		return Config{}, ErrShowVersion
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.DataDir == "" {
		dir, err := DefaultDataDir()
		if err != nil {
			return Config{}, err
		}
		cfg.DataDir = dir
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return Config{}, fmt.Errorf("data dir: %w", err)
	}
	cfg.DataDir = abs
	return cfg, nil
}

// DefaultDataDir is where Lastseen keeps its files without --data-dir: the
// OS's per-user config directory (~/.config/lastseen, ~/Library/Application
// Support/lastseen, %AppData%\lastseen). The agent must use the same.
func DefaultDataDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the per-user config directory (pass --data-dir): %w", err)
	}
	return filepath.Join(base, "lastseen"), nil
}

// Run is `lastseen`: parse args, make sure the agent runs, show the window
// until it is closed.
func Run(args []string) error {
	cfg, err := ParseFlags(args, os.Stderr)
	if errors.Is(err, ErrShowVersion) {
		fmt.Println("lastseen", version.String())
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	w := newWindow(cfg, logger)
	// Without WebView2 (Windows only) Wails asks to install it first; the
	// agent starts once the window can show, so a cancelled install
	// leaves nothing running.
	missing := webviewMissing()
	if missing == nil {
		w.connect(context.Background())
	} else {
		w.connectAtStartup = true
	}
	if err := wails.Run(w.options()); err != nil {
		if missing != nil {
			return fmt.Errorf("%w, and the dashboard window needs it: get it from %s (the window did not open; the agent was not started; %v)",
				missing, webview2Download, err)
		}
		return fmt.Errorf("window: %w", err)
	}
	return nil
}

// webview2Download is where the WebView2 runtime is offered by hand.
const webview2Download = "https://developer.microsoft.com/microsoft-edge/webview2/"

// window is the composition root's state.
type window struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	link   *agentLink
	bridge *Bridge
	pump   *pump
	state  windowState
	// startupDone is closed once OnStartup has set ctx and events; bound
	// methods and Wails callbacks wait on it.
	startupDone chan struct{}
	ctx         context.Context // the Wails runtime context
	cancel      context.CancelFunc
	events      frontendEvents
	pumpOnce    sync.Once
	// native is the window as the geometry logic sees it.
	native windowAPI
	// connectAtStartup: the agent is started once Wails is past its
	// WebView2 check (see Run).
	connectAtStartup bool
}

func newWindow(cfg Config, logger *slog.Logger) *window {
	w := &window{
		cfg:         cfg,
		log:         logger,
		client:      newLoopbackClient(),
		link:        newAgentLink(cfg.DataDir),
		startupDone: make(chan struct{}),
	}
	// Events go nowhere until the runtime context exists.
	w.events = frontendEvents{emit: func(name string, data ...any) {
		<-w.startupDone
		runtime.EventsEmit(w.ctx, name, data...)
	}}
	w.pump = newPump(w.link, w.client, w.events, logger)
	w.bridge = &Bridge{
		link: w.link, client: w.client, log: logger,
		ready:   w.startupDone,
		base:    func() context.Context { return w.ctx },
		state:   w.pump.State,
		timeout: 30 * time.Second,
	}
	state, err := loadWindowState(cfg.DataDir)
	if err != nil {
		logger.Warn("window geometry not restored", "error", err)
	}
	w.state = state
	return w
}

// connect finds or starts the agent. Failing that, the window still opens:
// the dashboard shows the agent as offline (with this reason on every
// request) and the pump keeps looking for agent.json.
func (w *window) connect(ctx context.Context) {
	info, err := agentStarter{DataDir: w.cfg.DataDir, Client: w.client}.ensure(ctx)
	if err != nil {
		w.log.Error("the Lastseen agent is not running", "error", err)
	}
	w.link.set(info, err)
}

// uniqueID names this window for the single-instance lock: one window per
// data dir, so instances with separate data dirs (tests, power users) do
// not focus each other. Wails turns it into a D-Bus name on Linux, so it
// holds only letters, digits and dots.
func uniqueID(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "app.lastseen.window.d" + hex.EncodeToString(sum[:6])
}

// assets is the built dashboard, or a page saying it is missing (Wails
// refuses to start on an asset tree without index.html).
func assets() *assetserver.Options {
	if frontend.Built() {
		return &assetserver.Options{Assets: frontend.Dist()}
	}
	return &assetserver.Options{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(rw, notBuiltPage)
	})}
}

const notBuiltPage = `<!doctype html><meta charset="utf-8"><title>Lastseen</title>
<body style="font:16px system-ui,sans-serif;margin:3em;color:#1e293b">
<h1 style="font-size:1.4em">The dashboard is not part of this build</h1>
<p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>, then build this program again.
The agent keeps running in the tray meanwhile.</p></body>`

func (w *window) options() *options.App {
	state := w.state
	start := options.Normal
	if state.Maximised {
		start = options.Maximised
	}
	return &options.App{
		Title:            "Lastseen",
		Width:            state.Width,
		Height:           state.Height,
		MinWidth:         minWidth,
		MinHeight:        minHeight,
		WindowStartState: start,
		AssetServer:      assets(),
		Bind:             []any{w.bridge},
		OnStartup:        w.startup,
		OnDomReady:       w.domReady,
		OnBeforeClose:    w.beforeClose,
		OnShutdown:       w.shutdown,
		Logger:           wailsLogger{w.log},
		SingleInstanceLock: &options.SingleInstanceLock{
			UniqueId:               uniqueID(w.cfg.DataDir),
			OnSecondInstanceLaunch: w.secondInstance,
		},
		Linux: &linux.Options{
			Icon:        icons.AppPNG(256),
			ProgramName: "lastseen", // matches StartupWMClass in lastseen.desktop
			// GPU compositing in WebKitGTK breaks on many drivers and
			// virtual displays; a dashboard does not need it.
			WebviewGpuPolicy: linux.WebviewGpuPolicyNever,
		},
		// The window icon is resource 3 of the executable (build/windows).
		Windows: &windows.Options{
			// With the rest of this instance's files, not %AppData%\lastseen.exe:
			// the uninstaller's "remove data" then leaves nothing behind.
			WebviewUserDataPath: filepath.Join(w.cfg.DataDir, "webview2"),
		},
	}
}

func (w *window) startup(ctx context.Context) {
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.native = wailsWindow{ctx}
	if w.connectAtStartup {
		// WebView2 was installed just now; the pump finds the agent once
		// it answers.
		go w.connect(w.ctx)
	}
	if restorePosition(w.native, w.state) {
		w.log.Debug("window position restored", "x", w.state.X, "y", w.state.Y)
	}
	close(w.startupDone)
}

// domReady starts the event pump once the page has had the chance to
// subscribe; a reloaded page gets the current connection state again.
func (w *window) domReady(context.Context) {
	<-w.startupDone
	started := false
	w.pumpOnce.Do(func() {
		started = true
		go w.pump.run(w.ctx)
	})
	if !started {
		w.pump.announce()
	}
}

// beforeClose saves the geometry while the window still exists and lets
// it close. Closing the window quits the process; the agent keeps running.
func (w *window) beforeClose(context.Context) bool {
	<-w.startupDone
	s := captureWindowState(w.native, w.state)
	if err := saveWindowState(w.cfg.DataDir, s); err != nil {
		w.log.Warn("window geometry not saved", "error", err)
	}
	return false
}

func (w *window) shutdown(context.Context) {
	if w.cancel != nil {
		w.cancel()
	}
}

// secondInstance brings this window forward when `lastseen` is launched
// again (the second process exits after handing over).
func (w *window) secondInstance(options.SecondInstanceData) {
	<-w.startupDone
	runtime.WindowUnminimise(w.ctx)
	runtime.WindowShow(w.ctx)
	// Window managers refuse to raise on request; toggling always-on-top
	// is the portable way to come to the front.
	runtime.WindowSetAlwaysOnTop(w.ctx, true)
	runtime.WindowSetAlwaysOnTop(w.ctx, false)
}

// wailsWindow is windowAPI over the Wails runtime.
type wailsWindow struct{ ctx context.Context }

func (n wailsWindow) Size() (int, int)     { return runtime.WindowGetSize(n.ctx) }
func (n wailsWindow) Position() (int, int) { return runtime.WindowGetPosition(n.ctx) }
func (n wailsWindow) IsMaximised() bool    { return runtime.WindowIsMaximised(n.ctx) }
func (n wailsWindow) SetPosition(x, y int) { runtime.WindowSetPosition(n.ctx, x, y) }
func (n wailsWindow) Screens() []screen {
	all, err := runtime.ScreenGetAll(n.ctx)
	if err != nil {
		return nil
	}
	out := make([]screen, 0, len(all))
	for _, s := range all {
		out = append(out, screen{Width: s.Size.Width, Height: s.Size.Height})
	}
	return out
}

// wailsLogger routes Wails' own log lines into ours.
type wailsLogger struct{ log *slog.Logger }

func (l wailsLogger) Print(m string)   { l.log.Info(m, "source", "wails") }
func (l wailsLogger) Trace(m string)   { l.log.Debug(m, "source", "wails") }
func (l wailsLogger) Debug(m string)   { l.log.Debug(m, "source", "wails") }
func (l wailsLogger) Info(m string)    { l.log.Info(m, "source", "wails") }
func (l wailsLogger) Warning(m string) { l.log.Warn(m, "source", "wails") }
func (l wailsLogger) Error(m string)   { l.log.Error(m, "source", "wails") }
func (l wailsLogger) Fatal(m string)   { l.log.Error(m, "source", "wails"); os.Exit(1) }

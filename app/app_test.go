package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wailsapp/wails/v2/pkg/options"

	"github.com/lastseen/lastseen/frontend"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("LASTSEEN_DATA_DIR", "")
	cfg, err := ParseFlags([]string{"--data-dir", "rel/dir"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.DataDir) || !strings.HasSuffix(cfg.DataDir, filepath.Join("rel", "dir")) {
		t.Errorf("data dir %q, want it made absolute", cfg.DataDir)
	}

	t.Setenv("LASTSEEN_DATA_DIR", "/from/env")
	if cfg, _ := ParseFlags(nil, io.Discard); cfg.DataDir != filepath.Clean("/from/env") {
		t.Errorf("env twin ignored: %q", cfg.DataDir)
	}
	if cfg, _ := ParseFlags([]string{"--data-dir=/from/flag"}, io.Discard); cfg.DataDir != filepath.Clean("/from/flag") {
		t.Errorf("flag does not win over env: %q", cfg.DataDir)
	}

	t.Setenv("LASTSEEN_DATA_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("HOME", "/home/someone")
	cfg, err = ParseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := DefaultDataDir(); cfg.DataDir != want || filepath.Base(want) != "lastseen" {
		t.Errorf("default data dir %q, want %q", cfg.DataDir, want)
	}

	for _, bad := range [][]string{{"--nope"}, {"stray"}} {
		if _, err := ParseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseFlags([]string{"--version"}, io.Discard); !errors.Is(err, ErrShowVersion) {
		t.Errorf("--version: %v, want ErrShowVersion", err)
	}
}

func TestUniqueID(t *testing.T) {
	a, b := uniqueID("/home/a/.config/lastseen"), uniqueID("/tmp/test-data dir")
	if a == b {
		t.Error("two data dirs share a single-instance id")
	}
	if a != uniqueID("/home/a/.config/lastseen") {
		t.Error("id is not stable")
	}
	// Wails maps the id into a D-Bus name element on Linux: letters,
	// digits, '_' and '.' only, not starting with a digit.
	ok := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]*$`)
	for _, id := range []string{a, b} {
		if !ok.MatchString(id) || len(id) > 200 {
			t.Errorf("id %q cannot be a D-Bus name", id)
		}
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	w := newWindow(Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	o := w.options()
	if o.Title != "Lastseen" || o.Width != defaultWidth || o.Height != defaultHeight {
		t.Errorf("title/size: %q %dx%d", o.Title, o.Width, o.Height)
	}
	if len(o.Bind) != 1 || o.Bind[0] != any(w.bridge) {
		t.Errorf("Bind = %v, want just the bridge", o.Bind)
	}
	if o.SingleInstanceLock == nil || o.SingleInstanceLock.UniqueId != uniqueID(dir) || o.SingleInstanceLock.OnSecondInstanceLaunch == nil {
		t.Errorf("single instance lock: %+v", o.SingleInstanceLock)
	}
	if o.OnStartup == nil || o.OnDomReady == nil || o.OnBeforeClose == nil || o.OnShutdown == nil {
		t.Error("lifecycle hooks missing")
	}
	if o.Linux == nil || len(o.Linux.Icon) == 0 {
		t.Error("no window icon")
	}
	if err := o.AssetServer.Validate(); err != nil {
		t.Error(err)
	}
	if !frontend.Built() {
		// Without a built dashboard the window says so instead of failing.
		rec := httptest.NewRecorder()
		o.AssetServer.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if !strings.Contains(rec.Body.String(), "not part of this build") {
			t.Errorf("placeholder page: %q", rec.Body.String())
		}
	}

	// A saved maximised window opens maximised, at its saved normal size.
	saveWindowState(dir, windowState{Width: 900, Height: 650, Maximised: true})
	o = newWindow(Config{DataDir: dir}, slog.New(slog.DiscardHandler)).options()
	if o.WindowStartState != options.Maximised || o.Width != 900 || o.Height != 650 {
		t.Errorf("restored start: state %v, %dx%d", o.WindowStartState, o.Width, o.Height)
	}
}

// TestWindowLifecycle drives the hooks Wails would call, minus the Wails
// runtime: startup opens the gate, DOM ready starts the pump once, close
// saves the geometry.
func TestWindowLifecycle(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/events" {
			w.WriteHeader(200)
			io.WriteString(w, "id: 1\nevent: presence\ndata: {}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	writeAgentJSON(t, dir, AgentInfo{URL: srv.URL, Secret: "s"})

	w := newWindow(Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	rec := newRecorder()
	w.events = rec.emitter()
	w.pump.events = w.events
	native := &fakeWindow{w: 1000, h: 700, x: 10, y: 20, screens: []screen{{1920, 1080}}}

	// The Wails-independent part of startup.
	ctx, cancel := context.WithCancel(context.Background())
	w.ctx, w.cancel = ctx, cancel
	w.native = native
	close(w.startupDone)

	w.domReady(ctx)
	rec.waitFor(t, "the first event", func(ev []StreamEvent, c []ConnState) bool { return len(ev) == 1 })
	w.domReady(ctx) // a reload re-announces, it does not start a second pump
	rec.waitFor(t, "the re-announced state", func(_ []StreamEvent, c []ConnState) bool { return len(c) == 2 })
	rec.mu.Lock()
	if rec.conns[0] != ConnLive || rec.conns[1] != ConnLive {
		t.Errorf("connection = %v", rec.conns)
	}
	rec.mu.Unlock()

	resp, err := w.bridge.Request("GET", "/local/v1/status", "")
	if err != nil || resp.Status != 200 {
		t.Errorf("bridge: %+v, %v", resp, err)
	}

	if prevent := w.beforeClose(ctx); prevent {
		t.Error("closing the window was prevented")
	}
	w.shutdown(ctx)
	got, err := loadWindowState(dir)
	if err != nil || got != (windowState{Width: 1000, Height: 700, X: 10, Y: 20, HasPosition: true}) {
		t.Errorf("saved %+v, %v", got, err)
	}
	// Requests after shutdown fail fast instead of hanging.
	start := time.Now()
	resp, _ = w.bridge.Request("GET", "/local/v1/status", "")
	if resp.Status != 503 || time.Since(start) > 2*time.Second {
		t.Errorf("after shutdown: %+v in %v", resp, time.Since(start))
	}
}

// TestDependencies holds the split DESIGN §1 asks for: the window never
// links the tray library (it owns the main thread of the agent), and the
// tray side never links Wails or WebKit.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	deps := func(pkgs ...string) string {
		out, err := exec.Command(goTool, append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return string(out)
	}
	if d := deps("github.com/lastseen/lastseen/app"); strings.Contains(d, "fyne.io/systray") ||
		strings.Contains(d, "github.com/lastseen/lastseen/app/tray\n") {
		t.Error("package app links the tray")
	}
	for _, line := range strings.Split(deps("github.com/lastseen/lastseen/app/tray/..."), "\n") {
		if strings.HasPrefix(line, "github.com/wailsapp/") {
			t.Errorf("the tray links %s", line)
		}
	}
}

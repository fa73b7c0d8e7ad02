//go:build wine

package winetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

// requireWine, set to 1, turns a missing Wine, mingw-w64 or Windows build
// from a skip into a failure (CI sets it in .ci/run).
const requireWine = "LASTSEEN_REQUIRE_WINE"

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// TestWindowsUnderWine runs the Windows programs and installer in a fresh
// 64-bit Wine prefix on a private X server, against a Linux lastseend:
// lastseend.exe answers /healthz; the agent reads idle time through
// GetLastInputInfo, sends beats the service records, goes idle, shows its
// tray menu and quits from it with a final offline beat; the window without
// WebView2 asks for it and, cancelled, exits saying why and starts no agent;
// the installer lays its files and Start-menu entry and the uninstaller
// stops the agent (final beat) and removes them, keeping the data unless
// told; the end of the session sends the final offline beat.
func TestWindowsUnderWine(t *testing.T) {
	w := setupWine(t)
	svc := startService(t)

	t.Run("lastseend.exe serves and answers /healthz", func(t *testing.T) {
		out := w.output(t, w.dist("lastseend.exe"), "--version")
		if !strings.Contains(out, "lastseend") {
			t.Fatalf("lastseend.exe version said %q", out)
		}
		if err := os.MkdirAll(w.cPath("lastseend"), 0o700); err != nil {
			t.Fatal(err)
		}
		addr := freeAddr(t)
		p := w.start(t, "lastseend", w.dist("lastseend.exe"), "serve", "--addr", addr, "--db", `C:\lastseend\lastseen.db`)
		defer p.kill()
		testutil.WaitNoError(t, "lastseend.exe to answer /healthz", 60*time.Second, func() error {
			select {
			case <-p.exited:
				return fmt.Errorf("lastseend.exe exited: %s", p.logText())
			default:
			}
			return healthz("http://" + addr)
		})
	})

	t.Run("agent: idle time, beats, idle, tray menu, Quit with a final offline beat", func(t *testing.T) {
		agent := w.start(t, "agent", w.dist("lastseen-agent.exe"), svc.agentArgs(`C:\lsdata`)...)
		defer agent.kill()
		tray := w.trayIcon(t, agent)
		if !strings.Contains(agent.logText(), `"backend":"getlastinputinfo"`) {
			t.Fatalf("the agent did not pick GetLastInputInfo for idle time:\n%s", agent.logText())
		}
		w.activeByInput(t, svc, tray)
		took := svc.waitStatus(t, "idle", 30*time.Second)
		t.Logf("idle on the service %v after the last input", took.Round(100*time.Millisecond))

		menu := w.openTrayMenu(t, tray)
		// Quit is the menu's last item: half an item above the bottom edge.
		w.xdo(t, "mousemove", itoa(menu.x+menu.w/4), itoa(menu.y+menu.h-11), "click", "1")
		svc.waitStatus(t, "offline", 15*time.Second)
		agent.waitExit(t, 20*time.Second)
		if !strings.Contains(agent.logText(), `"item":"quit"`) {
			t.Fatalf("the agent stopped, but not through the tray's Quit:\n%s", agent.logText())
		}
	})

	t.Run("window without WebView2: asks for it; cancelled, exits saying why and starts no agent", func(t *testing.T) {
		win := w.start(t, "window", w.dist("lastseen.exe"), "--data-dir", `C:\lswindow`)
		defer win.kill()
		// Wails' dialog: "The WebView2 runtime is required. Press Ok to
		// download and install…", titled "Missing Requirements".
		id := w.waitWindow(t, win, "Missing Requirements", 60*time.Second)
		w.xdo(t, "windowfocus", "--sync", id, "key", "Escape")
		code := win.waitExit(t, 30*time.Second)
		if code == 0 {
			t.Errorf("lastseen.exe exited 0 after the WebView2 dialog was cancelled")
		}
		out := win.logText()
		for _, want := range []string{"WebView2 runtime is not installed", "the agent was not started"} {
			if !strings.Contains(out, want) {
				t.Errorf("lastseen.exe's message lacks %q:\n%s", want, out)
			}
		}
		// The window starts the agent before it returns, if at all: by
		// the time it has exited, an agent it started would be running.
		if pids := processes("lastseen-agent.exe"); len(pids) > 0 {
			t.Errorf("an agent runs after the cancelled window: pids %v", pids)
		}
		if _, err := os.Stat(w.cPath("lswindow", "agent.json")); err == nil {
			t.Errorf("an agent published itself in the window's data dir")
		}
	})

	t.Run("installer /S lays files and Start-menu entry; uninstaller /S stops the agent and removes them", func(t *testing.T) {
		installDir := filepath.Join(w.profile, "AppData", "Local", "Programs", "Lastseen")
		shortcut := filepath.Join(w.profile, "AppData", "Roaming", "Microsoft", "Windows", "Start Menu", "Programs", "Lastseen.lnk")
		dataDir := filepath.Join(w.profile, "AppData", "Roaming", "lastseen")
		files := []string{"lastseen.exe", "lastseen-agent.exe", "lastseend.exe", "uninstall.exe"}
		install := func(args ...string) {
			t.Helper()
			// Wine's exit code says nothing about the install (a failed
			// one exits 0 too): what counts is what is on disk.
			w.run(t, w.setup, append([]string{"/S"}, args...)...)
			testutil.WaitUntil(t, "the installer's files and Start-menu entry", 30*time.Second, func() bool {
				for _, f := range append(files, "") {
					if _, err := os.Stat(filepath.Join(installDir, f)); err != nil {
						return false
					}
				}
				_, err := os.Stat(shortcut)
				return err == nil
			})
		}
		removed := func(what string, paths ...string) {
			t.Helper()
			// uninstall.exe /S returns before it has finished (it runs a
			// copy of itself from the temp dir).
			testutil.WaitUntil(t, what, 30*time.Second, func() bool {
				for _, p := range paths {
					if _, err := os.Stat(p); err == nil {
						return false
					}
				}
				return true
			})
		}

		install()
		for _, f := range files[:3] {
			if sum(t, filepath.Join(installDir, f)) != sum(t, w.dist(f)) {
				t.Errorf("installed %s differs from the built one", f)
			}
		}
		uninstallKey := `HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Lastseen`
		if out := w.output(t, "reg", "query", uninstallKey); !strings.Contains(out, `uninstall.exe" /S`) || !strings.Contains(out, "DisplayVersion") {
			t.Errorf("no uninstaller registered under %s:\n%s", uninstallKey, out)
		}
		runKey := `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`
		if out := w.output(t, "reg", "query", runKey); !strings.Contains(out, `Programs\Lastseen\lastseen-agent.exe"`) {
			t.Errorf("start at login (ticked by default) is not in %s:\n%s", runKey, out)
		}

		// The installed agent, in its default data dir, running when the
		// uninstaller comes: it is asked to close and says offline.
		agent := w.start(t, "installed-agent", filepath.Join(installDir, "lastseen-agent.exe"), svc.agentArgs("")...)
		defer agent.kill()
		w.activeByInput(t, svc, w.trayIcon(t, agent))
		w.run(t, filepath.Join(installDir, "uninstall.exe"), "/S")
		removed("the uninstaller to remove the program files and the Start-menu entry", installDir, shortcut)
		agent.waitExit(t, 20*time.Second)
		svc.waitStatus(t, "offline", 10*time.Second)
		for _, key := range []string{uninstallKey, `HKCU\Software\Lastseen`} {
			if out := w.output(t, "reg", "query", key); strings.Contains(out, "REG_") {
				t.Errorf("%s is left behind:\n%s", key, out)
			}
		}
		if out := w.output(t, "reg", "query", runKey); strings.Contains(out, "Lastseen") {
			t.Errorf("the Run value is left behind:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "agent.db")); err != nil {
			t.Errorf("a silent uninstall removed the data: %v", err)
		}

		// Start at login unticked: the agent's first run must not turn it
		// on behind the installer's back. Its tray icon shows after that
		// first-run offer would have been made; Wine hides its tray window
		// while it holds no icon, so the icon seen is the new agent's.
		testutil.WaitUntil(t, "Wine's tray to hide once the agent's icon is gone", 20*time.Second, func() bool {
			return len(w.windows("--onlyvisible", "--name", "^Wine System Tray$")) == 0
		})
		// As for someone who never ran Lastseen: no data that says the
		// offer was made.
		if err := os.RemoveAll(dataDir); err != nil {
			t.Fatal(err)
		}
		install("/NOAUTOSTART")
		if out := w.output(t, "reg", "query", runKey); strings.Contains(out, "Lastseen") {
			t.Errorf("/NOAUTOSTART, yet the Run value is there:\n%s", out)
		}
		agent = w.start(t, "installed-agent-2", filepath.Join(installDir, "lastseen-agent.exe"), svc.agentArgs("")...)
		defer agent.kill()
		w.activeByInput(t, svc, w.trayIcon(t, agent))
		if out := w.output(t, "reg", "query", runKey); strings.Contains(out, "Lastseen") {
			t.Errorf("the agent turned start at login on although the installer was told not to:\n%s", out)
		}
		w.run(t, filepath.Join(installDir, "uninstall.exe"), "/S", "/REMOVEDATA")
		removed("the uninstaller to remove the program files and, with /REMOVEDATA, the data", installDir, shortcut, dataDir)
		agent.waitExit(t, 20*time.Second)
	})

	// Last: Wine's end of session also ends its desktop process.
	t.Run("the end of the session sends the final offline beat", func(t *testing.T) {
		agent := w.start(t, "agent-session", w.dist("lastseen-agent.exe"), svc.agentArgs(`C:\lsdata`)...)
		defer agent.kill()
		w.activeByInput(t, svc, w.trayIcon(t, agent))
		// WM_QUERYENDSESSION and WM_ENDSESSION to every window, as at
		// sign-out; --shutdown: no restart of the session afterwards.
		w.run(t, w.wine, "wineboot", "--end-session", "--shutdown")
		svc.waitStatus(t, "offline", 15*time.Second)
		agent.waitExit(t, 20*time.Second)
		if !strings.Contains(agent.logText(), "the session is ending") {
			t.Fatalf("the agent stopped, but not for the session's end:\n%s", agent.logText())
		}
	})
}

// wine is a fresh prefix on a private X server.
type wine struct {
	wine, server, setup, distDir string
	prefix, profile              string // the prefix; the user's profile dir in it
	display, xdotool, dir        string
	env                          []string
}

func setupWine(t *testing.T) *wine {
	t.Helper()
	if testing.Short() {
		t.Skip("Wine smoke test: starts a Wine prefix")
	}
	w := &wine{
		wine:   findTool(t, "wine64", "/usr/lib/wine/wine64", "Debian package wine64"),
		server: findTool(t, "wineserver", "/usr/lib/wine/wineserver", "Debian package wine64"),
	}
	gcc := findTool(t, "x86_64-w64-mingw32-gcc", "", "Debian package gcc-mingw-w64-x86-64")
	w.distDir = os.Getenv("LASTSEEN_WINDOWS_DIST")
	w.setup = os.Getenv("LASTSEEN_WINDOWS_SETUP")
	if w.distDir == "" || w.setup == "" {
		testutil.Missing(t, requireWine, "LASTSEEN_WINDOWS_DIST and LASTSEEN_WINDOWS_SETUP are not set: run `make test-wine`, which builds the Windows files (make dist-windows) and sets them")
	}
	for _, f := range []string{w.dist("lastseen.exe"), w.dist("lastseen-agent.exe"), w.dist("lastseend.exe"), w.setup} {
		if _, err := os.Stat(f); err != nil {
			testutil.Missing(t, requireWine, "the Windows build is incomplete (%v): run `make dist-windows`", err)
		}
	}
	w.xdotool = testutil.Tool(t, "xdotool", requireWine)
	w.display = testutil.StartXvfb(t)
	w.dir = t.TempDir()
	w.prefix = filepath.Join(w.dir, "prefix")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LASTSEEN_") && !strings.HasPrefix(kv, "WINE") && !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "HOME=") {
			w.env = append(w.env, kv)
		}
	}
	w.env = append(w.env,
		"WINEPREFIX="+w.prefix, "WINEARCH=win64", "WINEDEBUG=-all",
		// No Mono or Gecko prompts; no menu entries written to the
		// (private) home for the Start-menu shortcut.
		"WINEDLLOVERRIDES=mscoree,mshtml=;winemenubuilder.exe=d",
		"DISPLAY="+w.display, "HOME="+filepath.Join(w.dir, "home"), "TZ=UTC")
	if err := os.MkdirAll(filepath.Join(w.dir, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every process of the prefix, before the prefix goes.
		cmd := exec.Command(w.server, "-k")
		cmd.Env = w.env
		cmd.Run()
		cmd = exec.Command(w.server, "-w")
		cmd.Env = w.env
		cmd.Run()
	})
	start := time.Now()
	w.run(t, w.wine, "wineboot", "--init")
	// Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Go ≥ 1.24
	// needs to start at all: a stub in the prefix's system32.
	sys32 := filepath.Join(w.prefix, "drive_c", "windows", "system32")
	if out, err := exec.Command(gcc, "-shared", "-O2", "-s", "-o", filepath.Join(sys32, "bcryptprimitives.dll"),
		filepath.Join("testdata", "processprng.c"), "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("build the ProcessPrng stub: %v\n%s", err, out)
	}
	users, _ := filepath.Glob(filepath.Join(w.prefix, "drive_c", "users", "*"))
	for _, u := range users {
		if filepath.Base(u) != "Public" {
			w.profile = u
		}
	}
	if w.profile == "" {
		t.Fatalf("wineboot made no user profile in %s", w.prefix)
	}
	t.Logf("Wine prefix ready in %v", time.Since(start).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			shot := filepath.Join(os.TempDir(), fmt.Sprintf("lastseen-winetest-%d.png", time.Now().Unix()))
			cmd := exec.Command("import", "-window", "root", shot)
			cmd.Env = w.env
			if cmd.Run() == nil {
				t.Logf("the screen at the failure: %s", shot)
			}
		}
	})
	return w
}

func findTool(t *testing.T, name, fallback, pkg string) string {
	t.Helper()
	if p, err := testutil.LookTool(name); err == nil {
		return p
	}
	if fallback != "" {
		if _, err := os.Stat(fallback); err == nil {
			return fallback
		}
	}
	testutil.Missing(t, requireWine, "%s is not installed (%s; `make deps-test` installs it)", name, pkg)
	return ""
}

func (w *wine) dist(name string) string { return filepath.Join(w.distDir, name) }

// cPath is a path under the prefix's C: drive.
func (w *wine) cPath(elem ...string) string {
	return filepath.Join(append([]string{w.prefix, "drive_c"}, elem...)...)
}

// command runs a Windows program (or a Wine tool such as "reg") under Wine.
func (w *wine) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.wine, append([]string{prog}, args...)...)
	if prog == w.wine { // wine's own tools: wine64 wineboot …
		cmd = exec.CommandContext(ctx, w.wine, args...)
	}
	cmd.Env = w.env
	cmd.WaitDelay = 5 * time.Second
	testutil.DieWithTest(cmd)
	return cmd
}

// run runs prog to its end; its exit status is not checked (Wine's says
// little): callers check what it did.
func (w *wine) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	w.output(t, prog, args...)
}

func (w *wine) output(t *testing.T, prog string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := w.command(ctx, prog, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish: %v\n%s", filepath.Base(prog), args, err, out)
	}
	return string(out)
}

// proc is a Windows program running under Wine, its output in a file.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

func (w *wine) start(t *testing.T, name, prog string, args ...string) *proc {
	t.Helper()
	p := &proc{log: filepath.Join(w.dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = w.command(context.Background(), prog, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, p.logText())
		}
	})
	return p
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// waitExit waits for the program to end and returns its exit code.
func (p *proc) waitExit(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("%s still runs after %v", filepath.Base(p.cmd.Args[1]), limit)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func (w *wine) xdo(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.xdotool, args...)
	cmd.Env = w.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xdotool %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// windows lists the X windows xdotool finds (no match is no error).
func (w *wine) windows(args ...string) []string {
	cmd := exec.Command(w.xdotool, append([]string{"search"}, args...)...)
	cmd.Env = w.env
	out, _ := cmd.Output()
	return strings.Fields(string(out))
}

type rect struct{ x, y, w, h int }

func (w *wine) geometry(t *testing.T, id string) rect {
	t.Helper()
	var r rect
	for _, line := range strings.Split(w.xdo(t, "getwindowgeometry", "--shell", id), "\n") {
		k, v, _ := strings.Cut(line, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "X":
			r.x = n
		case "Y":
			r.y = n
		case "WIDTH":
			r.w = n
		case "HEIGHT":
			r.h = n
		}
	}
	return r
}

// waitWindow waits for a visible window named name while p runs.
func (w *wine) waitWindow(t *testing.T, p *proc, name string, limit time.Duration) string {
	t.Helper()
	var id string
	testutil.WaitNoError(t, "a window named "+name, limit, func() error {
		select {
		case <-p.exited:
			return fmt.Errorf("the program exited: %s", p.logText())
		default:
		}
		if ids := w.windows("--onlyvisible", "--name", "^"+name+"$"); len(ids) > 0 {
			id = ids[0]
			return nil
		}
		return fmt.Errorf("no window %q yet", name)
	})
	return id
}

// trayIcon waits for the agent's icon in Wine's notification area, which
// Wine draws as a window of its own, and returns that window's place.
func (w *wine) trayIcon(t *testing.T, agent *proc) rect {
	t.Helper()
	return w.geometry(t, w.waitWindow(t, agent, "Wine System Tray", 60*time.Second))
}

// activeByInput moves the pointer over the tray's window until the service
// has the device active. X input reaches Wine's GetLastInputInfo only over
// one of Wine's windows, not over the bare root window.
func (w *wine) activeByInput(t *testing.T, svc *service, tray rect) {
	t.Helper()
	i := 0
	testutil.WaitUntil(t, "the device to be active on the service", 30*time.Second, func() bool {
		i++
		x := tray.x + tray.h + 10 + (i%4)*10 // right of the icon
		w.xdo(t, "mousemove", itoa(x), itoa(tray.y+tray.h/2))
		return svc.status(t) == "active"
	})
}

// openTrayMenu clicks the icon (the first in the tray) and returns the
// menu's place once the agent shows it.
func (w *wine) openTrayMenu(t *testing.T, tray rect) rect {
	t.Helper()
	w.xdo(t, "mousemove", itoa(tray.x+tray.h/2), itoa(tray.y+tray.h/2), "click", "1")
	var menu rect
	testutil.WaitUntil(t, "the agent's tray menu", 20*time.Second, func() bool {
		for _, id := range w.windows("--onlyvisible", "--class", "lastseen-agent.exe") {
			if r := w.geometry(t, id); r.h > 100 {
				menu = r
				return true
			}
		}
		return false
	})
	t.Logf("tray menu at %+v", menu)
	return menu
}

// service is a Linux lastseend with one user and one device for the agent.
type service struct {
	url, token string
}

func startService(t *testing.T) *service {
	t.Helper()
	bin := testutil.BuildBinary(t, "./backend/cmd/lastseend")
	db := filepath.Join(t.TempDir(), "svc.db")
	admin := func(args ...string) string {
		out, err := exec.Command(bin, append(args, "--db", db)...).Output()
		if err != nil {
			t.Fatalf("lastseend %v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[len(lines)-1]
	}
	admin("user", "add", "ada", "--name", "Ada")
	s := &service{token: admin("device", "add", "ada", "windows-pc")}
	addr := freeAddr(t)
	s.url = "http://" + addr
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", db, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	testutil.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	testutil.WaitNoError(t, "lastseend to answer /healthz", 30*time.Second, func() error { return healthz(s.url) })
	return s
}

// agentArgs run an agent against this service with the shortest idle
// threshold and beat interval the agent accepts.
func (s *service) agentArgs(dataDir string) []string {
	args := []string{"--server", s.url, "--token", s.token, "--idle-after", "5s", "--interval", "10s", "--log-level", "debug"}
	if dataDir != "" {
		args = append(args, "--data-dir", dataDir)
	}
	return args
}

// status is the device's state as the service has it.
func (s *service) status(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Devices []struct {
			Status string `json:"status"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Devices) != 1 {
		return fmt.Sprintf("error: %s %v %+v", resp.Status, err, body)
	}
	return body.Devices[0].Status
}

func (s *service) waitStatus(t *testing.T, want string, limit time.Duration) time.Duration {
	t.Helper()
	var last string
	took, err := testutil.Poll("the device to be "+want+" on the service", limit, func() error {
		if last = s.status(t); last != want {
			return fmt.Errorf("it is %s", last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return took
}

func healthz(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Status != "ok" {
		return fmt.Errorf("/healthz: %s %+v %v", resp.Status, body, err)
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// processes lists the pids whose command line names prog: Wine runs each
// Windows program as a Linux process showing its Windows path.
func processes(prog string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(prog))) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lastseen/lastseen/app/tray/traydbus"
)

// child is one measured process.
type child struct {
	name    string
	bin     string
	logPath string
	dataDir string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	tr      tracker
	trace   *Trace // wake bursts under strace; nil when not traced
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the process to quit (the agent writes its final beat on
// SIGTERM) and kills it if it takes too long.
func (c *child) stop() {
	if c.cmd == nil || c.cmd.Process == nil || c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// logTail is the end of the process's log, for an error message.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func (c *child) diedErr() error {
	return fmt.Errorf("%s exited (%v); its log ends:\n%s", c.name, c.waitErr, c.logTail())
}

func startChild(c *child, args, env []string) error {
	logf, err := os.Create(c.logPath)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	defer logf.Close() // the child holds its own copy
	c.cmd = exec.Command(c.bin, args...)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = childAttr()
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.done = make(chan struct{})
	go func() { c.waitErr = c.cmd.Wait(); close(c.done) }()
	return nil
}

// startXvfb starts a private X server and returns its display (":N");
// -displayfd lets the server pick a free display number itself.
func startXvfb(ctx context.Context, logPath string) (*exec.Cmd, string, error) {
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		return nil, "", fmt.Errorf("the agent's X11 idle source needs an X server: install Xvfb (Debian: xvfb): %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", fmt.Errorf("start Xvfb: %w", err)
	}
	defer r.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		w.Close()
		return nil, "", fmt.Errorf("start Xvfb: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1024x768x24")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("start Xvfb: %w", err)
	}
	w.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s != "" {
			return cmd, ":" + s, nil
		}
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	b, _ := os.ReadFile(logPath)
	return nil, "", fmt.Errorf("Xvfb reported no display: %s", strings.TrimSpace(string(b)))
}

// childEnv is a session of its own for one process: the private X server
// and bus, and a home whose config dirs are inside the work dir, so the tray
// agent's first-run login item never lands in the real ~/.config.
func childEnv(home, display, bus string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
		"DISPLAY=" + display,
		"XDG_SESSION_TYPE=x11",
		bus,
	}
	// A real system bus (logind) is part of the desktop the agent finds.
	if v := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); v != "" {
		env = append(env, "DBUS_SYSTEM_BUS_ADDRESS="+v)
	}
	return env
}

// Measure runs the baseline and the agents at the same time and reads their
// cost over c.Duration after c.Warmup.
func Measure(ctx context.Context, c Config) (_ *Report, err error) {
	progress := func(format string, a ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "lastseen-agentcost: "+format+"\n", a...)
		}
	}
	rep := newReport(c)
	rep.Links, rep.GUILinks, err = sharedLibs(c.Agent)
	if err != nil {
		return nil, err
	}

	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lastseen-agentcost-"); err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}

	xvfb, display, err := startXvfb(ctx, filepath.Join(dir, "xvfb.log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = xvfb.Process.Kill(); _ = xvfb.Wait() }()
	// dbus-daemon's socket path must stay under the 108-byte limit of
	// sun_path, so the bus gets a short directory of its own.
	busDir, err := os.MkdirTemp("", "lsbus")
	if err != nil {
		return nil, fmt.Errorf("bus dir: %w", err)
	}
	defer os.RemoveAll(busDir)
	bus, err := traydbus.StartBus(ctx, busDir)
	if err != nil {
		return nil, err
	}
	defer bus.Close()
	conn, err := bus.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The watcher stands in for the panel; without one the tray has
	// nowhere to show and would not cost what it costs on a desktop.
	watcher, err := traydbus.StartWatcher(conn)
	if err != nil {
		return nil, fmt.Errorf("tray watcher: %w", err)
	}
	defer watcher.Close()
	progress("X server %s, session bus %s", display, bus.Address)

	base := &child{name: "baseline", bin: c.Baseline}
	headless := &child{name: "agent --headless", bin: c.Agent}
	children := []*child{base, headless}
	var tray *child
	if c.Tray {
		tray = &child{name: "agent with tray", bin: filepath.Join(dir, "tray-bin", filepath.Base(c.Agent))}
		if err := copyFile(c.Agent, tray.bin); err != nil {
			return nil, fmt.Errorf("copy the agent for the tray run: %w", err)
		}
		children = append(children, tray)
	}
	defer func() {
		for _, ch := range children {
			ch.stop()
		}
	}()
	for i, ch := range children {
		slug := []string{"baseline", "headless", "tray"}[i]
		home := filepath.Join(dir, slug)
		for _, d := range []string{filepath.Join(home, "run"), filepath.Join(home, ".config")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("home of %s: %w", ch.name, err)
			}
		}
		ch.logPath = filepath.Join(dir, slug+".log")
		ch.dataDir = filepath.Join(home, "data")
	}
	// Started back to back so that all three see the same minutes of the
	// machine: whatever else runs on it weighs on them alike.
	started := time.Now()
	for _, ch := range children {
		var args []string
		switch ch {
		case headless:
			args = []string{"--headless", "--data-dir", ch.dataDir}
		case tray:
			args = []string{"--data-dir", ch.dataDir}
		}
		env := append(childEnv(filepath.Dir(ch.dataDir), display, bus.Env()), c.Env...)
		if err := startChild(ch, args, env); err != nil {
			return nil, err
		}
	}
	progress("started %d processes; warm-up %s", len(children), c.Warmup)

	// Ready means serving: the discovery file is written once the local API
	// listens, and the tray registers with the watcher once its menu is up.
	readyCtx, cancel := context.WithTimeout(ctx, max(c.Warmup, 0)+30*time.Second)
	defer cancel()
	for _, ch := range []*child{headless, tray} {
		if ch == nil {
			continue
		}
		if err := waitFile(readyCtx, ch, filepath.Join(ch.dataDir, "agent.json")); err != nil {
			return nil, err
		}
	}
	var trayName string
	if tray != nil {
		name, err := watcher.WaitItem(readyCtx)
		if err != nil {
			return nil, fmt.Errorf("the tray never registered with the watcher: %w; its log ends:\n%s", err, tray.logTail())
		}
		trayName = name
	}
	progress("agents ready after %s", time.Since(started).Round(10*time.Millisecond))
	if err := sleepCtx(ctx, c.Warmup-time.Since(started)); err != nil {
		return nil, err
	}

	progress("measuring for %s", c.Duration)
	begin := time.Now()
	if err := sampleAll(children); err != nil {
		return nil, err
	}
	tick := time.NewTicker(c.Sample)
	defer tick.Stop()
	deadline := time.NewTimer(c.Duration)
	defer deadline.Stop()
	lastNote := begin
measure:
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted after %s of the window", time.Since(begin).Round(time.Second))
		case <-deadline.C:
			break measure
		case <-tick.C:
			if err := sampleAll(children); err != nil {
				return nil, err
			}
			if time.Since(lastNote) >= time.Minute {
				lastNote = time.Now()
				progress("%s of %s", time.Since(begin).Round(time.Second), c.Duration)
			}
		}
	}
	if err := sampleAll(children); err != nil {
		return nil, err
	}
	window := time.Since(begin)
	rep.WindowS = window.Seconds()

	if c.Strace != "" {
		progress("tracing syscalls for %s (after the window: tracing costs switches of its own)", c.StraceWindow)
		if err := straceAll(ctx, c.Strace, c.StraceWindow, dir, children); err != nil {
			return nil, err
		}
	}

	subject := func(ch *child) Subject {
		bin := ch.bin
		if ch == tray {
			bin = c.Agent + " (run from a copy)"
		}
		return Subject{Name: ch.name, Binary: bin, SizeMiB: fileMiB(ch.bin), Cost: ch.tr.cost(window, rep.ClockTicks), Trace: ch.trace}
	}
	rep.Baseline = subject(base)
	for _, ch := range children[1:] {
		s := subject(ch)
		s.Backends = agentBackends(ch.logPath)
		if ch == tray {
			s.Tray = trayName
		}
		rep.Agents = append(rep.Agents, s)
	}
	rep.judge()
	return rep, nil
}

// copyFile copies an executable to dst, creating dst's directory.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// sampleAll takes one snapshot of every process; a process that died is an
// error, since its cost would silently drop to nothing.
func sampleAll(children []*child) error {
	for _, ch := range children {
		if ch.exited() {
			return ch.diedErr()
		}
		s, err := readSnapshot("/proc", ch.cmd.Process.Pid)
		if err != nil {
			if ch.exited() {
				return ch.diedErr()
			}
			return fmt.Errorf("read /proc for %s: %w", ch.name, err)
		}
		ch.tr.observe(s)
	}
	return nil
}

func waitFile(ctx context.Context, ch *child, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if ch.exited() {
			return ch.diedErr()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never wrote %s: %w; its log ends:\n%s", ch.name, filepath.Base(path), ctx.Err(), ch.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// agentBackends reads the agent's "agent running" log line for the idle and
// lock sources it picked, so the report shows it ran on real backends.
func agentBackends(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			Idle string `json:"idle_source"`
			Lock string `json:"lock_source"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "agent running" {
			return fmt.Sprintf("idle source %s, lock source %s", line.Idle, line.Lock)
		}
	}
	return ""
}

// guiLib tells the libraries the agent must never link: linking GTK and
// WebKit alone costs ~46 MB of RSS (DESIGN §1).
func guiLib(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"webkit", "javascriptcore", "libgtk", "libgdk"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// sharedLibs lists what bin loads, as ldd resolves it (dependencies of
// dependencies included); without ldd, the ELF's own DT_NEEDED entries.
func sharedLibs(bin string) (all, gui []string, err error) {
	var names []string
	if ldd, lerr := exec.LookPath("ldd"); lerr == nil {
		out, err := exec.Command(ldd, bin).CombinedOutput()
		switch {
		case bytes.Contains(out, []byte("not a dynamic executable")), bytes.Contains(out, []byte("statically linked")):
		case err != nil:
			return nil, nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
		default:
			names = parseLdd(out)
		}
	} else {
		f, err := elf.Open(bin)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", bin, err)
		}
		defer f.Close()
		names, err = f.ImportedLibraries()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, nil, fmt.Errorf("read %s: %w", bin, err)
		}
	}
	for _, n := range names {
		if guiLib(n) {
			gui = append(gui, n)
		}
	}
	return names, gui, nil
}

// parseLdd takes the library names from ldd's lines ("libc.so.6 =>
// /lib/…", "/lib64/ld-linux-x86-64.so.2 (0x…)").
func parseLdd(out []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		names = append(names, filepath.Base(f[0]))
	}
	return names
}

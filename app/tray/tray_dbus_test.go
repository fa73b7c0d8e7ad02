//go:build linux

package tray_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/app/tray"
	"github.com/lastseen/lastseen/app/tray/icons"
	"github.com/lastseen/lastseen/app/tray/traydbus"
	"github.com/lastseen/lastseen/backend/agent"
	"github.com/lastseen/lastseen/internal/testutil"
)

// The D-Bus tests run the real tray in a child process (the systray library
// keeps process-wide state and runs once per process): this test binary,
// re-executed with childEnv set, whose TestMain runs tray.Run on the main
// goroutine like the agent does. The child reads Status values as JSON lines
// on stdin (EOF ends it) and prints each action it receives on stdout.
const childEnv = "LASTSEEN_TRAY_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(trayChild())
	}
	os.Exit(m.Run())
}

func trayChild() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan tray.Status, 1)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var s tray.Status
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				logger.Error("bad status line", "error", err)
				continue
			}
			updates <- s
		}
		cancel() // stdin closed: the parent wants us gone
	}()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	err := tray.Run(ctx, tray.Options{
		Logger:  logger,
		Updates: updates,
		Actions: tray.Actions{
			OpenDashboard: func() { say("open") },
			SetMode: func(mode agent.Mode, until time.Time) {
				if until.IsZero() {
					say("mode %s -", mode)
				} else {
					say("mode %s %s", mode, until.Format(time.RFC3339))
				}
			},
			SetStartAtLogin:       func(on bool) { say("login %v", on) },
			SetCountCallsAndMedia: func(on bool) { say("calls %v", on) },
			Quit:                  func() { say("quit") },
		},
	})
	if err != nil {
		logger.Error("tray", "error", err)
		return 1
	}
	say("exited")
	return 0
}

// child is a running tray process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	exited chan struct{} // closed when the process has ended
	err    error         // its exit error, once exited is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, b bus, first tray.Status) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Under -race the child reports races to files the parent triages (see
	// checkRaces) instead of failing on races inside the systray library.
	raceDir := t.TempDir()
	cmd.Env = append(os.Environ(), childEnv+"=1", b.env(),
		"GORACE=exitcode=0 log_path="+filepath.Join(raceDir, "race"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	testutil.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-c.exited
		}
		checkRaces(t, raceDir)
		if t.Failed() {
			t.Logf("tray log:\n%s", c.stderr)
		}
	})
	c.send(t, first)
	return c
}

// checkRaces reads the child's race reports. fyne.io/systray v1.12.2 races
// on its own menu revision counter (GetLayout reads it under one lock while
// refresh writes it under another); that is not ours to fix, so a report
// fails the test only when one of the two racing accesses is in our code.
func checkRaces(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "race.*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, report := range strings.Split(string(b), "WARNING: DATA RACE")[1:] {
			if racesInOurCode(report) {
				t.Errorf("data race in the tray:%s", report)
			} else {
				t.Logf("race inside fyne.io/systray ignored")
			}
		}
	}
}

// racesInOurCode looks at the top frame of each racing access (the lines
// after "Read at"/"Write at"/"Previous … at").
func racesInOurCode(report string) bool {
	lines := strings.Split(report, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if (strings.HasPrefix(l, "Read at") || strings.HasPrefix(l, "Write at") || strings.HasPrefix(l, "Previous")) && i+1 < len(lines) {
			if strings.HasPrefix(strings.TrimSpace(lines[i+1]), "github.com/lastseen/") {
				return true
			}
		}
	}
	return false
}

func (c *child) send(t *testing.T, s tray.Status) {
	t.Helper()
	b, _ := json.Marshal(s)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("send status: %v", err)
	}
}

func (c *child) expect(t *testing.T, want string) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("tray exited; want %q", want)
		}
		if !strings.HasPrefix(l, want) {
			t.Fatalf("tray said %q, want %q", l, want)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("tray said nothing; want %q", want)
	}
	return ""
}

// bus is a private session bus for one test.
type bus struct{ addr string }

func startBus(t *testing.T) bus { return bus{testutil.StartSessionBus(t)} }

func (b bus) env() string { return "DBUS_SESSION_BUS_ADDRESS=" + b.addr }

func (b bus) connect(t *testing.T, ctx context.Context) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(b.addr, dbus.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// itemMenu finds the menu of the item at dest once the item answers for
// it. The tray takes its bus name before it exports its objects, so a name
// that has appeared says nothing yet about the object behind it.
func itemMenu(t *testing.T, ctx context.Context, conn *dbus.Conn, dest string) *traydbus.Menu {
	t.Helper()
	var menu *traydbus.Menu
	testutil.WaitNoError(t, "the tray item to export its menu", menuWait, func() (err error) {
		menu, err = traydbus.ItemMenu(ctx, conn, dest)
		return err
	})
	return menu
}

// menuWait bounds how long the tray may take to show a change; generous,
// since the child is a separate process on a possibly busy machine.
const menuWait = 20 * time.Second

// waitMenu polls the layout until cond holds: the tray applies a status
// asynchronously, and exports the menu object a moment after the item says
// where it is, so a failed read is tried again too.
func waitMenu(t *testing.T, ctx context.Context, m *traydbus.Menu, what string, cond func(traydbus.Node) bool) traydbus.Node {
	t.Helper()
	var last traydbus.Node
	_, err := testutil.Poll("the menu to show "+what, menuWait, func() error {
		n, err := m.Layout(ctx)
		if err != nil {
			return err
		}
		last = n
		if !cond(n) {
			return errors.New("not shown yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v; last menu:\n%s", err, last)
	}
	return last
}

func TestTrayOverDBus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := startBus(t)
	conn := bus.connect(t, ctx)
	watcher, err := traydbus.StartWatcher(conn)
	if err != nil {
		t.Fatal(err)
	}

	c := startChild(t, bus, tray.Status{Mode: agent.Automatic, State: "active", TodayActive: 3*time.Hour + 12*time.Minute})
	dest, err := watcher.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	menu := itemMenu(t, ctx, conn, dest)

	root := waitMenu(t, ctx, menu, "the first status", func(n traydbus.Node) bool {
		s, ok := n.Find("Active · 3 h 12 min today")
		return ok && !s.Enabled
	})
	want := `Active · 3 h 12 min today (off)
Local mode — this computer only (off)
---
Open dashboard
---
[x] Automatic
[ ] Appear online
[ ] Appear away
[ ] Invisible
Pause
  30 minutes
  1 hour
  Until tomorrow
  Resume (hidden)
---
[ ] Count calls and videos as present
[ ] Start at login
---
Quit
`
	if got := root.String(); got != want {
		t.Errorf("menu over D-Bus:\n%s\nwant:\n%s", got, want)
	}
	if tip, err := traydbus.ItemTooltip(ctx, conn, dest); err != nil || tip != "Active · 3 h 12 min today" {
		t.Errorf("tooltip = %q, %v", tip, err)
	}
	checkIcon(t, ctx, conn, dest, icons.Active)

	// The click the brief is about: Invisible reaches SetMode.
	if err := menu.Click(ctx, "Invisible"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "mode invisible -")
	// The checkmark follows the core, not the click.
	c.send(t, tray.Status{Mode: agent.Invisible, State: "active"})
	waitMenu(t, ctx, menu, "Invisible checked", func(n traydbus.Node) bool {
		inv, _ := n.Find("Invisible")
		auto, _ := n.Find("Automatic")
		return inv.Checked && !auto.Checked
	})
	if tip, _ := traydbus.ItemTooltip(ctx, conn, dest); tip != "Invisible — not sharing presence" {
		t.Errorf("tooltip = %q", tip)
	}
	checkIcon(t, ctx, conn, dest, icons.Offline)

	before := time.Now()
	if err := menu.Click(ctx, "Pause", "30 minutes"); err != nil {
		t.Fatal(err)
	}
	line := c.expect(t, "mode pause ")
	until, err := time.Parse(time.RFC3339, strings.TrimPrefix(line, "mode pause "))
	if err != nil {
		t.Fatal(err)
	}
	if d := until.Sub(before); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("pause until %v, %v from now; want 30 min", until, d)
	}
	c.send(t, tray.Status{Mode: agent.Pause, ModeUntil: until, State: "active"})
	waitMenu(t, ctx, menu, "Resume shown", func(n traydbus.Node) bool {
		r, ok := n.Find("Pause", "Resume")
		return ok && r.Visible
	})
	if err := menu.Click(ctx, "Pause", "Resume"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "mode auto -")

	if err := menu.Click(ctx, "Start at login"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "login true")
	if err := menu.Click(ctx, "Count calls and videos as present"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "calls true")
	// The check follows the core's report, and the tooltip says why.
	c.send(t, tray.Status{State: "active", Why: "call", CountCallsAndMedia: true})
	waitMenu(t, ctx, menu, "calls checked", func(n traydbus.Node) bool {
		it, _ := n.Find("Count calls and videos as present")
		return it.Checked
	})
	if tip, _ := traydbus.ItemTooltip(ctx, conn, dest); tip != "Active · in a call · 0 min today" {
		t.Errorf("tooltip = %q", tip)
	}
	if err := menu.Click(ctx, "Open dashboard"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "open")

	// The tray may quit before the bus has its answer to the click; that
	// the click arrived is what the lines below check.
	if err := menu.Click(ctx, "Quit"); err != nil && !noReply(err) {
		t.Fatal(err)
	}
	c.expect(t, "quit")
	c.expect(t, "exited")
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("tray process: %v", c.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tray did not exit after Quit")
	}
	log := c.stderr.String()
	if !strings.Contains(log, "system tray host found") || strings.Contains(log, "no system tray host") {
		t.Errorf("log should say a host was found:\n%s", log)
	}
}

// TestTrayWithoutHost: no watcher on the bus, so nothing would draw the
// icon. The tray says so once, keeps serving its menu, and registers when a
// panel shows up later.
func TestTrayWithoutHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := startBus(t)
	conn := bus.connect(t, ctx)

	avail, err := hostAvailableOn(t, ctx, bus)
	if err != nil || avail {
		t.Fatalf("HostAvailable on an empty bus = %v, %v; want false, nil", avail, err)
	}

	c := startChild(t, bus, tray.Status{State: "idle"})
	// Without a watcher nobody hears from the tray: it is found by the
	// well-known name it takes, and used once its item object answers.
	menu := itemMenu(t, ctx, conn, traydbus.ItemName(c.cmd.Process.Pid))
	waitMenu(t, ctx, menu, "the status", func(n traydbus.Node) bool {
		_, ok := n.Find("Idle · 0 min today")
		return ok
	})
	if err := menu.Click(ctx, "Open dashboard"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "open")

	// A panel starts: the tray registers with it by itself.
	watcher, err := traydbus.StartWatcher(conn)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := watcher.WaitItem(ctx); err != nil {
		t.Fatal(err)
	} else if !strings.HasPrefix(got, ":") {
		t.Errorf("registered from %q, want a unique bus name", got)
	}
	if avail, err := hostAvailableOn(t, ctx, bus); err != nil || !avail {
		t.Errorf("HostAvailable with a watcher = %v, %v; want true", avail, err)
	}
	testutil.WaitUntil(t, "the tray to log that a host appeared", menuWait, func() bool {
		return strings.Contains(c.stderr.String(), "a system tray host appeared")
	})

	// Closing stdin cancels the child's context: Run returns on its own.
	c.stdin.Close()
	c.expect(t, "exited")

	log := c.stderr.String()
	if n := strings.Count(log, "no system tray host"); n != 1 {
		t.Errorf("log says %d times that there is no tray host, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "a system tray host appeared") {
		t.Errorf("log does not say the host appeared:\n%s", log)
	}
	if strings.Contains(log, "systray error") {
		t.Errorf("the library's own complaint leaked above debug level:\n%s", log)
	}
}

// noReply reports the bus's answer to a call whose recipient left without
// replying.
func noReply(err error) bool {
	const name = "org.freedesktop.DBus.Error.NoReply"
	var de dbus.Error
	var dep *dbus.Error
	return (errors.As(err, &de) && de.Name == name) || (errors.As(err, &dep) && dep != nil && dep.Name == name)
}

func hostAvailableOn(t *testing.T, ctx context.Context, b bus) (bool, error) {
	t.Helper()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", b.addr)
	return tray.HostAvailable(ctx)
}

// TestNoSessionBus: with no bus at all Run logs once and simply waits.
func TestNoSessionBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+t.TempDir()+"/nothing-here")
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan tray.Status)
	done := make(chan error, 1)
	go func() { done <- tray.Run(ctx, tray.Options{Logger: logger, Updates: updates}) }()
	// The core is never blocked by a tray that cannot show.
	for range 3 {
		select {
		case updates <- tray.Status{State: "active"}:
		case <-time.After(5 * time.Second):
			t.Fatal("Run does not drain updates without a bus")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := strings.Count(buf.String(), "no system tray"); n != 1 {
		t.Errorf("log mentions the missing tray %d times, want once:\n%s", n, buf.String())
	}
	if ok, err := tray.HostAvailable(context.Background()); ok || err == nil {
		t.Errorf("HostAvailable without a bus = %v, %v; want false and an error", ok, err)
	}
}

// checkIcon compares the item's pixmap with the glyph's drawing.
func checkIcon(t *testing.T, ctx context.Context, conn *dbus.Conn, dest string, g icons.Glyph) {
	t.Helper()
	want, err := icons.TrayImage(g, icons.TraySize2x)
	if err != nil {
		t.Fatal(err)
	}
	_, err = testutil.Poll("the tray icon to be the "+string(g)+" glyph", menuWait, func() error {
		px, err := traydbus.ItemIcon(ctx, conn, dest)
		if err != nil {
			return err
		}
		if len(px) != 1 || !matches(px[0], want) {
			return errors.New("another picture")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func matches(p traydbus.IconPixmap, img *image.NRGBA) bool {
	b := img.Bounds()
	if int(p.W) != b.Dx() || int(p.H) != b.Dy() || len(p.ARGB) != 4*b.Dx()*b.Dy() {
		return false
	}
	for i := 0; i < b.Dx()*b.Dy(); i++ {
		c := img.NRGBAAt(i%b.Dx(), i/b.Dx())
		// systray converts through premultiplied colour; compare alpha and
		// allow rounding in the channels.
		q := p.ARGB[4*i:]
		if q[0] != c.A || (c.A == 0xff && (q[1] != c.R || q[2] != c.G || q[3] != c.B)) {
			return false
		}
	}
	return true
}

func TestRacesInOurCode(t *testing.T) {
	library := `
  Write at 0x000000c059f8 by goroutine 41:
      fyne.io/systray.refresh()
  Previous read at 0x000000c059f8 by goroutine 75:
      fyne.io/systray.(*tray).GetLayout()
  Goroutine 41 (running) created at:
      github.com/lastseen/lastseen/app/tray.(*controller).ready()
`
	ours := `
  Read at 0x00c000123 by goroutine 7:
      github.com/lastseen/lastseen/app/tray.(*controller).apply()
  Previous write at 0x00c000123 by goroutine 9:
      fyne.io/systray.SetIcon()
`
	if racesInOurCode(library) {
		t.Error("a race between two library frames blamed on us")
	}
	if !racesInOurCode(ours) {
		t.Error("a race with our frame on top not caught")
	}
}

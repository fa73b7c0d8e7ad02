//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"

	"github.com/lastseen/lastseen/app/tray/traydbus"
	"github.com/lastseen/lastseen/internal/testutil"
)

// The window's titles (the frontend sets them from the user's own state).
const (
	titleActive = "Lastseen — Active"
	titleIdle   = "Lastseen — Idle"
)

// isDashboard matches the dashboard window's titles: "Lastseen" before the
// state is known, "Lastseen — <State>" after.
func isDashboard(title string) bool {
	return title == "Lastseen" || strings.HasPrefix(title, "Lastseen — ")
}

// opened is a dashboard window on the screen and the processes behind it.
type opened struct {
	win     xproto.Window
	ui      proc   // the lastseen process
	helpers []proc // its WebKit processes
}

// findDashboard waits for the dashboard window and the processes behind it.
func findDashboard(t *testing.T, d *desktop, limit time.Duration) opened {
	t.Helper()
	w, took := d.waitWindow(limit, "the dashboard window", isDashboard)
	t.Logf("the window was shown %v after the request", took.Round(time.Millisecond))
	pid := d.windowPID(w)
	ps := tree(pid)
	if len(ps) == 0 {
		t.Fatalf("the window's process %d is gone", pid)
	}
	if ps[0].Comm != windowBin {
		t.Fatalf("the dashboard window belongs to %q (pid %d), not %s", ps[0].Comm, pid, windowBin)
	}
	o := opened{win: w, ui: ps[0]}
	// WebKit starts its web and network processes as the page loads.
	testutil.WaitUntil(t, "the window's WebKit processes", 15*time.Second, func() bool {
		o.helpers = nil
		for _, p := range tree(pid)[1:] {
			if strings.HasPrefix(p.Comm, "WebKit") {
				o.helpers = append(o.helpers, p)
			}
		}
		return len(o.helpers) >= 2
	})
	return o
}

// closeDashboard closes the window as a window manager does and checks
// that the process and every WebKit helper of it end.
func closeDashboard(t *testing.T, d *desktop, o opened) {
	t.Helper()
	d.closeWindow(o.win)
	took := testutil.WaitUntil(t, "the lastseen process to exit after its window closed", 10*time.Second, func() bool { return !o.ui.alive() })
	t.Logf("lastseen exited %v after WM_DELETE_WINDOW", took.Round(time.Millisecond))
	testutil.WaitUntil(t, "the WebKit helpers to exit", 10*time.Second, func() bool {
		for _, p := range o.helpers {
			if p.alive() {
				return false
			}
		}
		return true
	})
	if left := onDisplay(d.display); len(left) > 0 {
		t.Fatalf("processes of the closed window are left: %+v", left)
	}
	if ws := d.windows(isDashboard); len(ws) > 0 {
		t.Fatalf("the dashboard window is still shown: %v", ws)
	}
}

// TestDesktopWindow is the desktop acceptance: the tray opens the window,
// the window follows real input (its title says the user's state), renders,
// closes like any window, and leaves the agent beating on its own.
func TestDesktopWindow(t *testing.T) {
	gate(t, "LASTSEEN_DESKTOP_E2E")
	agentPath := built(t, agentBin)
	built(t, windowBin) // the agent starts it from beside itself
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := startDesktop(t, ctx)
	d.move()

	// Local mode: the agent serves the presence API itself.
	a := d.startAgent(agentPath, "--idle-after", "5s", "--interval", "10s")
	var st localStatus
	if err := a.get("/local/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Service.Kind != "local" {
		t.Fatalf("service kind %q, want local (no --server)", st.Service.Kind)
	}

	var win opened
	step(t, "the tray's Open dashboard shows the window", func(t *testing.T) {
		d := d.on(t)
		item, err := d.watcher.WaitItem(ctx)
		if err != nil {
			t.Fatal(err)
		}
		menu, err := traydbus.ItemMenu(ctx, d.conn, item)
		if err != nil {
			t.Fatal(err)
		}
		if err := menu.Click(ctx, "Open dashboard"); err != nil {
			t.Fatal(err)
		}
		win = findDashboard(t, d, 30*time.Second)
		t.Logf("window %d: %s pid %d, helpers %s", win.win, win.ui.Comm, win.ui.PID, names(win.helpers))
	})

	step(t, "input makes the title say Active", func(t *testing.T) {
		d := d.on(t)
		took := d.waitTitle(win.win, titleActive, 20*time.Second, d.move)
		t.Logf("title %q %v after input began", titleActive, took.Round(time.Millisecond))
		d.screenshot("window-active", win.win)
	})

	step(t, "no input turns it Idle within 15 s", func(t *testing.T) {
		d := d.on(t)
		took := d.waitTitle(win.win, titleIdle, 15*time.Second, nil)
		t.Logf("title %q %v after input stopped", titleIdle, took.Round(time.Millisecond))
		d.screenshot("window-idle", win.win)
	})

	var before time.Time
	step(t, "closing the window ends it and its WebKit processes", func(t *testing.T) {
		d := d.on(t)
		var dg diagnostics
		if err := a.get("/local/v1/diagnostics", &dg); err != nil {
			t.Fatal(err)
		}
		if dg.LastSync != nil {
			before = *dg.LastSync
		}
		closeDashboard(t, d, win)
	})

	step(t, "the agent keeps beating after the window closed", func(t *testing.T) {
		if !a.running() {
			t.Fatal("the agent exited with the window")
		}
		status, err := a.deviceStatus()
		if err != nil {
			t.Fatal(err)
		}
		if status == "offline" || status == "" {
			t.Fatalf("this device is %q on the service after the window closed", status)
		}
		// The next interval's beat is synced: last_sync moves on and the
		// outbox drains.
		var dg diagnostics
		took := testutil.WaitUntil(t, "the agent's last sync to advance", 25*time.Second, func() bool {
			if err := a.get("/local/v1/diagnostics", &dg); err != nil {
				return false
			}
			return dg.LastSync != nil && dg.LastSync.After(before)
		})
		if dg.OutboxDepth != 0 {
			t.Errorf("outbox depth %d after a sync in local mode, want 0", dg.OutboxDepth)
		}
		t.Logf("device %s; last sync %s → %s (%v after close); outbox %d; agent RSS %.1f MB",
			status, before.Format(time.TimeOnly), dg.LastSync.Format(time.TimeOnly), took.Round(time.Millisecond),
			dg.OutboxDepth, float64(dg.RSSBytes)/1e6)
	})

	step(t, "a dark desktop gets the dark dashboard", func(t *testing.T) {
		d := d.on(t)
		// Launched directly, as from the application menu: it finds the
		// running agent through agent.json.
		cmd := d.command("window-dark", built(t, windowBin), "--data-dir", d.dataDir())
		cmd.Env = append(cmd.Env, "GTK_THEME=Adwaita:dark")
		p := start(t, cmd)
		dark := findDashboard(t, d, 30*time.Second)
		d.waitTitle(dark.win, titleActive, 20*time.Second, d.move)
		d.screenshot("window-dark", dark.win)
		closeDashboard(t, d, dark)
		if err, ended := p.wait(5 * time.Second); !ended || err != nil {
			t.Fatalf("lastseen: ended %v, exit %v; want a clean exit", ended, err)
		}
	})

	step(t, "the agent ends cleanly", func(t *testing.T) {
		a.stop(t)
	})
}

// step runs one stage; the stages build on each other, so the first
// failure ends the test.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

func names(ps []proc) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%s(%d)", p.Comm, p.PID)
	}
	return strings.Join(s, " ")
}

//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/lastseen/lastseen/internal/testutil"
)

// Targets of the window benchmark.
const (
	// maxPSSRatio: the dashboard may cost at most 15 % more memory than an
	// empty webview window; the rest is the webview's own price.
	maxPSSRatio = 1.15
	// maxCPUPercent of one core while the window sits untouched.
	maxCPUPercent = 1.0
)

// envDuration reads a duration knob of the benchmark.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 60s", name, v)
	}
	return d
}

// cost is what one window cost while open and untouched.
type cost struct {
	name   string
	procs  []proc         // the window's process and its helpers
	pss    map[int]uint64 // kB per PID at the end of the measurement
	uss    map[int]uint64 // kB per PID, its private pages only
	maxPSS uint64         // kB, the highest sum seen during it
	cpu    float64        // % of one core over the measurement
	ticks  map[int]uint64 // CPU ticks per PID over the measurement
	shown  time.Duration  // from start to the window on screen
	exit   time.Duration  // from WM_DELETE_WINDOW to the process gone
	left   []proc         // processes of it still alive after close
}

func (c cost) pssSum() uint64 { return sum(c.pss) }
func (c cost) ussSum() uint64 { return sum(c.uss) }

func sum(m map[int]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

// measureWindow starts a window program, lets it settle, measures its
// processes for span without touching it, then closes it as a window
// manager does.
func measureWindow(t *testing.T, d *desktop, name, bin string, args []string, match func(string) bool, ready func(string) bool, settle, span time.Duration) cost {
	t.Helper()
	c := cost{name: name, pss: map[int]uint64{}, uss: map[int]uint64{}, ticks: map[int]uint64{}}
	p := start(t, d.command(name, bin, args...))
	w, took := d.waitWindow(30*time.Second, name, match)
	c.shown = took
	testutil.WaitUntil(t, name+" to be ready", 30*time.Second, func() bool { return ready(d.title(w)) })
	pid := p.cmd.Process.Pid
	if got := d.windowPID(w); got != pid {
		t.Fatalf("%s: window %d belongs to pid %d, started pid %d", name, w, got, pid)
	}
	time.Sleep(settle)

	c.procs = tree(pid)
	if len(c.procs) < 3 {
		t.Fatalf("%s: %d processes (%s); a webview window has its own, a web and a network process", name, len(c.procs), names(c.procs))
	}
	begin := map[int]uint64{}
	for _, pr := range c.procs {
		begin[pr.PID] = cpuTicks([]proc{pr})
	}
	t0 := time.Now()
	// PSS is sampled along the way: a leak or a growing heap shows as a
	// rising maximum, not only in the last figure.
	tick := time.NewTicker(5 * time.Second)
	end := time.After(span)
sampling:
	for {
		select {
		case <-tick.C:
			var sum uint64
			for _, pr := range tree(pid) {
				kb, _ := pssKB(pr.PID)
				sum += kb
			}
			c.maxPSS = max(c.maxPSS, sum)
		case <-end:
			break sampling
		}
	}
	tick.Stop()
	elapsed := time.Since(t0)
	if now := tree(pid); len(now) != len(c.procs) {
		t.Logf("%s: processes changed while untouched: %s → %s", name, names(c.procs), names(now))
		c.procs = now
	}
	var ticks uint64
	for _, pr := range c.procs {
		n := cpuTicks([]proc{pr}) - begin[pr.PID]
		c.ticks[pr.PID] = n
		ticks += n
		kb, err := pssKB(pr.PID)
		if err != nil {
			t.Fatalf("%s: PSS of %s(%d): %v", name, pr.Comm, pr.PID, err)
		}
		c.pss[pr.PID] = kb
		if c.uss[pr.PID], err = ussKB(pr.PID); err != nil {
			t.Fatalf("%s: USS of %s(%d): %v", name, pr.Comm, pr.PID, err)
		}
	}
	c.maxPSS = max(c.maxPSS, c.pssSum())
	c.cpu = float64(ticks) / userHZ / elapsed.Seconds() * 100

	closed := time.Now()
	d.closeWindow(w)
	err, ended := p.wait(10 * time.Second)
	if !ended {
		t.Fatalf("%s did not exit within 10 s of WM_DELETE_WINDOW", name)
	}
	if err != nil {
		t.Errorf("%s exit: %v", name, err)
	}
	c.exit = time.Since(closed)
	// Helpers may take a moment after their parent.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.left = c.left[:0]
		for _, pr := range c.procs {
			if pr.alive() {
				c.left = append(c.left, pr)
			}
		}
		if len(c.left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// TestWindowCost measures what an open, untouched dashboard costs next to
// an empty Wails window on the same display: memory summed over every
// process of each (PSS, so shared libraries count once), CPU while nobody
// touches it, and what the agent costs once the window is closed.
// scripts/bench-window.sh runs it; LASTSEEN_BENCH_SETTLE, _MEASURE and
// _AFTER set its spans.
func TestWindowCost(t *testing.T) {
	gate(t, "LASTSEEN_WINDOW_COST")
	settle := envDuration(t, "LASTSEEN_BENCH_SETTLE", 15*time.Second)
	span := envDuration(t, "LASTSEEN_BENCH_MEASURE", 60*time.Second)
	after := envDuration(t, "LASTSEEN_BENCH_AFTER", 30*time.Second)
	agentPath, windowPath, emptyPath := built(t, agentBin), built(t, windowBin), built(t, emptyBin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*(settle+span)+after+3*time.Minute)
	defer cancel()
	d := startDesktop(t, ctx)
	d.move()
	// The agent as a user runs it: default idle threshold and interval.
	a := d.startAgent(agentPath)

	dash := measureWindow(t, d, "dashboard", windowPath, []string{"--data-dir", d.dataDir()},
		isDashboard, func(title string) bool { return strings.HasPrefix(title, "Lastseen — ") }, settle, span)
	empty := measureWindow(t, d, "empty window", emptyPath, nil,
		func(title string) bool { return title == "Lastseen empty window" }, func(string) bool { return true }, settle, span)

	// The agent alone, after both windows closed.
	if !a.running() {
		t.Fatal("the agent exited while the windows were measured")
	}
	agentProc := tree(a.cmd.Process.Pid)[:1]
	t0, c0 := time.Now(), cpuTicks(agentProc)
	time.Sleep(after)
	agentCPU := float64(cpuTicks(agentProc)-c0) / userHZ / time.Since(t0).Seconds() * 100
	agentRSS, err := rssKB(agentProc[0].PID)
	if err != nil {
		t.Fatal(err)
	}
	agentPSS, err := pssKB(agentProc[0].PID)
	if err != nil {
		t.Fatal(err)
	}
	left := onDisplay(d.display)
	status, err := a.deviceStatus()
	if err != nil {
		t.Fatal(err)
	}

	ratio := float64(dash.pssSum()) / float64(empty.pssSum())
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	var fails []string
	check := func(what string, ok bool) string {
		if !ok {
			fails = append(fails, what)
		}
		return verdict(ok)
	}

	fmt.Printf("\nWindow cost: settle %v, untouched %v, agent alone %v (screen %s)\n\n", settle, span, after, screenSize)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "process\tdashboard PSS MB\tempty PSS MB\tdashboard CPU s\tempty CPU s\t")
	for _, role := range []string{"window (Go + GTK)", "WebKitWebProcess", "WebKitNetworkProcess", "other"} {
		dp, dc := byRole(dash, role)
		ep, ec := byRole(empty, role)
		if dp == 0 && ep == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%.2f\t\n", role, mb(dp), mb(ep), dc, ec)
	}
	fmt.Fprintf(tw, "total\t%.1f\t%.1f\t%.2f\t%.2f\t\n", mb(dash.pssSum()), mb(empty.pssSum()), sumTicks(dash), sumTicks(empty))
	fmt.Fprintf(tw, "peak while untouched\t%.1f\t%.1f\t\t\t\n", mb(dash.maxPSS), mb(empty.maxPSS))
	tw.Flush()
	fmt.Println()

	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "check\tmeasured\ttarget\tresult")
	fmt.Fprintf(tw, "PSS dashboard / empty window\t%.1f / %.1f MB = %.3f×\t≤ %.2f×\t%s\n",
		mb(dash.pssSum()), mb(empty.pssSum()), ratio, maxPSSRatio, check("PSS ratio", ratio <= maxPSSRatio))
	fmt.Fprintf(tw, "USS dashboard / empty window\t%.1f / %.1f MB = %.3f×\t(reference)\t\n",
		mb(dash.ussSum()), mb(empty.ussSum()), float64(dash.ussSum())/float64(empty.ussSum()))
	fmt.Fprintf(tw, "dashboard CPU, untouched\t%.3f %% of a core\t≤ %.1f %%\t%s\n", dash.cpu, maxCPUPercent, check("dashboard CPU", dash.cpu <= maxCPUPercent))
	fmt.Fprintf(tw, "empty window CPU, untouched\t%.3f %% of a core\t(reference)\t\n", empty.cpu)
	fmt.Fprintf(tw, "shown after start (dashboard / empty)\t%v / %v\t\t\n", dash.shown.Round(time.Millisecond), empty.shown.Round(time.Millisecond))
	fmt.Fprintf(tw, "dashboard exit after close\t%v, %d of %d processes left\tnone left\t%s\n",
		dash.exit.Round(time.Millisecond), len(dash.left), len(dash.procs), check("dashboard leftovers", len(dash.left) == 0))
	fmt.Fprintf(tw, "empty window exit after close\t%v, %d of %d processes left\tnone left\t%s\n",
		empty.exit.Round(time.Millisecond), len(empty.left), len(empty.procs), check("empty window leftovers", len(empty.left) == 0))
	fmt.Fprintf(tw, "webview processes on the display after both closed\t%d\tnone\t%s\n", len(left), check("leftovers on the display", len(left) == 0))
	fmt.Fprintf(tw, "agent after close: CPU\t%.3f %% of a core\t≤ %.1f %%\t%s\n", agentCPU, maxCPUPercent, check("agent CPU", agentCPU <= maxCPUPercent))
	fmt.Fprintf(tw, "agent after close: RSS / PSS\t%.1f / %.1f MB\t(reference)\t\n", mb(agentRSS), mb(agentPSS))
	fmt.Fprintf(tw, "agent after close: device status\t%s\tnot offline\t%s\n", status, check("agent beats", status != "offline" && status != ""))
	tw.Flush()
	fmt.Println()
	if len(fails) > 0 {
		t.Errorf("window cost: FAIL: %s", strings.Join(fails, ", "))
	}
}

// byRole sums PSS (kB) and CPU (s) of one kind of process of a window.
func byRole(c cost, role string) (kb uint64, cpu float64) {
	for _, p := range c.procs {
		r := "other"
		switch {
		case p.PID == c.procs[0].PID:
			r = "window (Go + GTK)"
		case p.Comm == "WebKitWebProces":
			r = "WebKitWebProcess"
		case p.Comm == "WebKitNetworkPr":
			r = "WebKitNetworkProcess"
		}
		if r == role {
			kb += c.pss[p.PID]
			cpu += float64(c.ticks[p.PID]) / userHZ
		}
	}
	return kb, cpu
}

func sumTicks(c cost) float64 {
	var s uint64
	for _, v := range c.ticks {
		s += v
	}
	return float64(s) / userHZ
}

func mb(kb uint64) float64 { return float64(kb) / 1024 }

//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/app/tray/traydbus"
	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// service is a real lastseend process on a fixed loopback address, so it can
// be killed and started again on the same address and database.
type service struct {
	t    *testing.T
	bin  string
	addr string
	db   string
	cmd  *exec.Cmd
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "serve", "--addr", s.addr, "--db", s.db, "--log-level", "warn")
	s.cmd.Stderr = os.Stderr
	testutil.DieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := httpapi.NewClient("http://"+s.addr, "", nil)
	waitFor(s.t, 10*time.Second, "lastseend to answer /healthz", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Health(ctx) == nil
	})
}

func (s *service) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

func (s *service) admin(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(s.bin, append(args, "--db", s.db)...).Output()
	if err != nil {
		s.t.Fatalf("lastseend %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestAgentEndToEnd runs the real lastseen-agent binary with its tray on a
// private session bus and a real X server, against a real lastseend: idle
// follows real X input, a service outage loses nothing, the tray's menu is
// clicked over D-Bus, and SIGTERM records offline at once.
func TestAgentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs binaries")
	}
	xdotool := testutil.Tool(t, "xdotool", testutil.RequireDesktop)
	testutil.Tool(t, "dbus-daemon", testutil.RequireDesktop)
	display := testutil.StartXvfb(t)
	busDir, err := os.MkdirTemp("", "lsbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(busDir) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bus, err := traydbus.StartBus(ctx, busDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	conn, err := bus.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := traydbus.StartWatcher(conn) // stands in for the panel
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	dir := t.TempDir()
	svc := &service{t: t, bin: testutil.BuildBinary(t, "./backend/cmd/lastseend"), addr: freePort(t), db: filepath.Join(dir, "svc.db")}
	agentBin := testutil.BuildBinary(t, "./app/cmd/lastseen-agent")
	svc.admin("user", "add", "ada", "--name", "Ada")
	svc.admin("user", "add", "grace") // another user on the server must not matter
	devToken := svc.admin("device", "add", "ada", "laptop")
	svc.start()
	t.Cleanup(svc.kill)

	// Every input the test gives, and when: the spans must end where it
	// stopped.
	var (
		movesMu sync.Mutex
		moves   []time.Time
	)
	move := func() {
		x := 100 + time.Now().Nanosecond()%400
		if out, err := exec.Command(xdotool, "mousemove", fmt.Sprint(x), "200").CombinedOutput(); err != nil {
			t.Errorf("xdotool: %v %s", err, out)
		}
		movesMu.Lock()
		moves = append(moves, time.Now())
		movesMu.Unlock()
	}
	xenv := []string{"DISPLAY=" + display, "XDG_SESSION_TYPE=x11"}
	t.Setenv("DISPLAY", display) // for xdotool
	move()

	agentLog, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(agentBin, "--data-dir", filepath.Join(dir, "agent"),
		"--server", "http://"+svc.addr, "--token", devToken, "--idle-after", "5s", "--interval", "10s")
	// TZ: the agent's "today" and the service's daily stats cut the same day.
	agent.Env = append(os.Environ(), append(xenv, bus.Env(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "TZ=UTC")...)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	testutil.DieWithTest(agent)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(agentLog.Name())
			t.Logf("agent log:\n%s", b)
		}
	})

	c := httpapi.NewClient("http://"+svc.addr, devToken, nil)
	status := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		d, err := c.Devices(ctx)
		if err != nil || len(d.Devices) != 1 {
			return fmt.Sprintf("error %v %+v", err, d)
		}
		return string(d.Devices[0].Status)
	}
	waitState := func(limit time.Duration, want presence.State) time.Duration {
		t.Helper()
		return waitFor(t, limit, "the device to be "+string(want)+" on the service", func() bool { return status() == string(want) })
	}

	t.Run("active on real input", func(t *testing.T) {
		// Input all along, so every input since the agent started is one
		// stretch of activity.
		waitFor(t, 10*time.Second, "the device to be active on the service", func() bool {
			move()
			return status() == string(presence.Active)
		})
	})
	t.Run("input for 8 s, then hands off: the active span ends at the last input", func(t *testing.T) {
		for range 8 {
			time.Sleep(time.Second)
			move()
		}
		movesMu.Lock()
		input := slices.Clone(moves)
		movesMu.Unlock()
		last := input[len(input)-1]
		waitState(15*time.Second, presence.Idle)
		// The idle beat carries the edge, so the span is cut back once the
		// service has it: no waiting beyond the idle state itself.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		from := input[0].Add(-time.Minute)
		var service []presence.Span
		for _, st := range []string{"active", "idle"} {
			res, err := c.Sessions(ctx, httpapi.SessionsQuery{From: from, State: st})
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range res.Sessions {
				service = append(service, presence.Span{State: sp.State, Start: sp.Start, End: sp.End})
			}
		}
		checkEdge(t, "on the service", service, last)

		local := localAPI(t, filepath.Join(dir, "agent"))
		var hist struct {
			Sessions []presence.Span `json:"sessions"`
		}
		local.get(t, "/local/v1/history?from="+from.UTC().Format(time.RFC3339), &hist)
		checkEdge(t, "in local history", hist.Sessions, last)

		// Today's active time is the time with input: from the first input
		// of the stretch to the last, never the threshold after it.
		want := activeTime(input, 5*time.Second)
		today := time.Now().UTC().Format(time.DateOnly)
		days, err := c.DailyStats(ctx, httpapi.DailyStatsQuery{From: today, To: today, TZ: "UTC"})
		if err != nil || len(days.Days) != 1 {
			t.Fatalf("daily stats: %+v, %v", days, err)
		}
		if got := time.Duration(days.Days[0].ActiveS) * time.Second; (got - want).Abs() > 2*time.Second {
			t.Errorf("service: active today %v, want the time with input %v ±2 s", got, want.Round(time.Millisecond))
		}
		var st struct {
			TodayActiveS int64 `json:"today_active_s"`
		}
		local.get(t, "/local/v1/status", &st)
		if got := time.Duration(st.TodayActiveS) * time.Second; (got - want).Abs() > 2*time.Second {
			t.Errorf("agent: active today %v, want the time with input %v ±2 s", got, want.Round(time.Millisecond))
		}
		t.Logf("last input %s; %s of input, active today %d s on the service, %d s in the agent",
			last.Format("15:04:05.000"), want.Round(time.Millisecond), days.Days[0].ActiveS, st.TodayActiveS)
	})
	t.Run("active again after xdotool input", func(t *testing.T) {
		move()
		waitState(6*time.Second, presence.Active)
	})

	t.Run("an outage loses nothing: the span comes out whole", func(t *testing.T) {
		stopMoving := make(chan struct{})
		moved := make(chan struct{})
		go func() {
			defer close(moved)
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			for {
				select {
				case <-stopMoving:
					return
				case <-tk.C:
					move()
				}
			}
		}()
		defer func() { close(stopMoving); <-moved }()
		local := localAPI(t, filepath.Join(dir, "agent"))
		time.Sleep(2 * time.Second) // input before the outage, so the span starts before it
		killedAt := time.Now()
		svc.kill()
		// Down long enough for beats (every 10 s) to queue in the outbox and
		// for the service's TTL to pass: wait for the queue, not a clock.
		waitFor(t, 60*time.Second, "two beats queued in the outbox while the service is down", func() bool {
			var d struct {
				OutboxDepth int64 `json:"outbox_depth"`
			}
			local.get(t, "/local/v1/diagnostics", &d)
			return d.OutboxDepth >= 2
		})
		svc.start()
		restartedAt := time.Now()
		// The backlog replays; the open span must reach past the restart
		// as one span, with no gap where the service was down.
		waitFor(t, 60*time.Second, "one active span across the outage", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := c.Sessions(ctx, httpapi.SessionsQuery{From: killedAt.Add(-time.Second), State: "active"})
			if err != nil {
				return false
			}
			for _, sp := range s.Sessions {
				if sp.Start.Before(killedAt) && sp.End.After(restartedAt) {
					return true
				}
			}
			return false
		})
	})

	t.Run("tray: Invisible over D-Bus turns the device offline", func(t *testing.T) {
		item, err := watcher.WaitItem(ctx)
		if err != nil {
			t.Fatal(err)
		}
		menu, err := traydbus.ItemMenu(ctx, conn, item)
		if err != nil {
			t.Fatal(err)
		}
		move()
		if err := menu.Click(ctx, "Invisible"); err != nil {
			t.Fatal(err)
		}
		took := waitState(5*time.Second, presence.Offline)
		t.Logf("invisible reached the service in %s", took.Round(time.Millisecond))
		// The service hears the beat before the tray redraws: wait for the
		// menu to show the mode, do not read it once.
		waitFor(t, 5*time.Second, "Invisible checked in the tray menu", func() bool {
			root, err := menu.Layout(ctx)
			if err != nil {
				return false
			}
			n, ok := root.Find("Invisible")
			return ok && n.Checked
		})
		if err := menu.Click(ctx, "Automatic"); err != nil {
			t.Fatal(err)
		}
		move()
		waitState(6*time.Second, presence.Active)
	})

	t.Run("SIGTERM records offline within two seconds", func(t *testing.T) {
		move()
		if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		took := waitState(2*time.Second, presence.Offline)
		t.Logf("offline reached the service %s after SIGTERM", took.Round(time.Millisecond))
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("agent exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("agent did not exit after SIGTERM")
		}
		if _, err := os.Stat(filepath.Join(dir, "agent", localapi.DiscoveryFile)); !os.IsNotExist(err) {
			t.Fatalf("agent.json left behind after exit: %v", err)
		}
	})

	// Every beat was acknowledged: nothing is left queued and nothing was
	// quarantined.
	db, err := agentdb.Open(filepath.Join(dir, "agent", agenthost.AgentDBFile), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stats, err := db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.OutboxDepth != 0 || stats.Quarantined != 0 || stats.Dropped != 0 {
		t.Fatalf("after a clean exit: outbox %d, quarantined %d, dropped %d; want all zero", stats.OutboxDepth, stats.Quarantined, stats.Dropped)
	}
}

// checkEdge finds, in spans, the active span that ended around last (the
// last input) and the idle span after it: both edges must sit within 2 s of
// the input, not a threshold later.
func checkEdge(t *testing.T, where string, spans []presence.Span, last time.Time) {
	t.Helper()
	var active, idle *presence.Span
	for i := range spans {
		sp := &spans[i]
		switch {
		case sp.State == presence.Active && !sp.Start.After(last) && (active == nil || sp.End.After(active.End)):
			active = sp
		case sp.State == presence.Idle && (idle == nil || sp.Start.Before(idle.Start)) && sp.Start.After(last.Add(-time.Minute)):
			idle = sp
		}
	}
	if active == nil || idle == nil {
		t.Fatalf("%s: no active span up to the last input and idle span after it: %+v", where, spans)
	}
	if d := active.End.Sub(last); d.Abs() > 2*time.Second {
		t.Errorf("%s: the active span ends %s after the last input (%s), want within 2 s", where, d.Round(time.Millisecond), last.Format("15:04:05.000"))
	}
	if d := idle.Start.Sub(last); d.Abs() > 2*time.Second {
		t.Errorf("%s: the idle span starts %s after the last input, want within 2 s", where, d.Round(time.Millisecond))
	}
	t.Logf("%s: active span ends %s, idle starts %s after the last input", where,
		active.End.Sub(last).Round(time.Millisecond), idle.Start.Sub(last).Round(time.Millisecond))
}

// activeTime is how long inputs at the given times keep a user active with
// the idle threshold after: each stretch of inputs less than threshold apart
// counts from its first input to its last.
func activeTime(inputs []time.Time, threshold time.Duration) time.Duration {
	var total time.Duration
	first := inputs[0]
	for i := 1; i <= len(inputs); i++ {
		if i == len(inputs) || inputs[i].Sub(inputs[i-1]) >= threshold {
			total += inputs[i-1].Sub(first)
			if i < len(inputs) {
				first = inputs[i]
			}
		}
	}
	return total
}

// localClient calls the agent's local API as the window does: the address
// and the secret from its discovery file.
type localClient struct{ d localapi.Discovery }

func localAPI(t *testing.T, dataDir string) localClient {
	t.Helper()
	d, err := localapi.ReadDiscovery(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return localClient{d}
}

func (l localClient) get(t *testing.T, path string, out any) {
	t.Helper()
	req, err := http.NewRequest("GET", l.d.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+l.d.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// waitFor polls ok until it holds and says how long that took.
func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	return testutil.WaitUntil(t, what, limit, ok)
}

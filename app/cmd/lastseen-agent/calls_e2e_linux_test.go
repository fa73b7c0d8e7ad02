//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

// The names GNOME's session manager answers on, written out: what
// gnome-session defines, not what the agent's watcher says it calls.
const (
	fakeSMName  = "org.gnome.SessionManager"
	fakeSMPath  = dbus.ObjectPath("/org/gnome/SessionManager")
	fakeSMIface = "org.gnome.SessionManager"
	inhibitIdle = 8 // GsmInhibitorFlag "idle": what a video player holds
)

// sessionManager stands in for gnome-session on the test's session bus: one
// idle inhibitor, held or not, announced the way gnome-session announces
// each inhibitor taken or released.
type sessionManager struct {
	conn *dbus.Conn
	mu   sync.Mutex
	held bool
}

// smMethods is what the bus sees: IsInhibited alone.
type smMethods struct{ sm *sessionManager }

func (m smMethods) IsInhibited(flags uint32) (bool, *dbus.Error) {
	m.sm.mu.Lock()
	defer m.sm.mu.Unlock()
	return m.sm.held && flags&inhibitIdle != 0, nil
}

func startSessionManager(t *testing.T, addr string) *sessionManager {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sm := &sessionManager{conn: conn}
	if err := conn.Export(smMethods{sm}, fakeSMPath, fakeSMIface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(fakeSMName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: reply %v, %v", fakeSMName, reply, err)
	}
	return sm
}

// hold takes (true) or releases (false) the idle inhibitor and announces
// it; it returns the moment just before the announcement.
func (sm *sessionManager) hold(t *testing.T, on bool) time.Time {
	t.Helper()
	sm.mu.Lock()
	sm.held = on
	sm.mu.Unlock()
	member := "InhibitorRemoved"
	if on {
		member = "InhibitorAdded"
	}
	at := time.Now()
	if err := sm.conn.Emit(fakeSMPath, fakeSMIface+"."+member, dbus.ObjectPath("/org/gnome/SessionManager/Inhibitor1")); err != nil {
		t.Fatal(err)
	}
	return at
}

// callsDesktop is what both runs share: an X server, a session bus with the
// session manager on it, and a service with one device per run.
type callsDesktop struct {
	xdotool, display, bus string
	sm                    *sessionManager
	svc                   *service
	agentBin              string
	tokens                map[string]string // device name → token
}

// callsAgent is one run of the real agent against the desktop.
type callsAgent struct {
	t       *testing.T
	d       *callsDesktop
	device  string
	dataDir string
	c       *httpapi.Client
	id      int64 // the device's id on the service
	lastIn  time.Time
	exited  chan error
	proc    *exec.Cmd
	stopped sync.Once
}

// move gives one input and remembers when.
func (a *callsAgent) move() {
	x := 100 + time.Now().Nanosecond()%400
	if out, err := exec.Command(a.d.xdotool, "mousemove", fmt.Sprint(x), "300").CombinedOutput(); err != nil {
		a.t.Errorf("xdotool: %v %s", err, out)
	}
	a.lastIn = time.Now()
}

// view is this run's device as the service shows it.
func (a *callsAgent) view() (presence.DeviceView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := a.c.Devices(ctx)
	if err != nil {
		return presence.DeviceView{}, err
	}
	for _, v := range d.Devices {
		if v.Name == a.device {
			return v, nil
		}
	}
	return presence.DeviceView{}, fmt.Errorf("no device %q in %+v", a.device, d.Devices)
}

func (a *callsAgent) waitView(limit time.Duration, what string, ok func(presence.DeviceView) bool) time.Duration {
	a.t.Helper()
	return waitFor(a.t, limit, "the device to be "+what+" on the service", func() bool {
		v, err := a.view()
		return err == nil && ok(v)
	})
}

// activeBy is a DeviceView test for active with the given why.
func activeBy(why presence.Why) func(presence.DeviceView) bool {
	return func(v presence.DeviceView) bool { return v.Status == presence.Active && v.Why == why }
}

func isIdle(v presence.DeviceView) bool { return v.Status == presence.Idle }

// localStatus is the agent's own view (GET /local/v1/status).
func (a *callsAgent) localStatus() localapi.Status {
	var st localapi.Status
	localAPI(a.t, a.dataDir).get(a.t, "/local/v1/status", &st)
	return st
}

// spans are this device's spans since from: the service's (every state)
// and local history's.
func (a *callsAgent) spans(from time.Time) (service, local []presence.Span) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := a.c.Sessions(ctx, httpapi.SessionsQuery{From: from, DeviceID: a.id, State: "all"})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, sp := range res.Sessions {
		service = append(service, presence.Span{State: sp.State, Why: sp.Why, Start: sp.Start, End: sp.End})
	}
	var hist struct {
		Sessions []presence.Span `json:"sessions"`
	}
	localAPI(a.t, a.dataDir).get(a.t, "/local/v1/history?from="+from.UTC().Format(time.RFC3339), &hist)
	return service, hist.Sessions
}

// startAgent runs the real agent, headless, for device with extra flags,
// and waits until input makes it active on the service.
func (d *callsDesktop) startAgent(t *testing.T, device string, flags ...string) *callsAgent {
	t.Helper()
	dir := t.TempDir()
	a := &callsAgent{t: t, d: d, device: device, dataDir: filepath.Join(dir, "agent"),
		c: httpapi.NewClient("http://"+d.svc.addr, d.tokens[device], nil), exited: make(chan error, 1)}
	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--data-dir", a.dataDir, "--server", "http://" + d.svc.addr, "--token", d.tokens[device],
		"--idle-after", "5s", "--interval", "10s", "--headless", "--log-level", "debug"}, flags...)
	a.proc = exec.Command(d.agentBin, args...)
	// The session bus stands for the system bus too, so no inhibitor of the
	// machine's (logind's) can reach the run, and the setting comes from
	// the flags alone.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LASTSEEN_") && !strings.HasPrefix(kv, "DBUS_") {
			env = append(env, kv)
		}
	}
	a.proc.Env = append(env, "DISPLAY="+d.display, "XDG_SESSION_TYPE=x11", "DBUS_SESSION_BUS_ADDRESS="+d.bus,
		"DBUS_SYSTEM_BUS_ADDRESS="+d.bus, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "TZ=UTC")
	a.proc.Stdout, a.proc.Stderr = log, log
	testutil.DieWithTest(a.proc)
	if err := a.proc.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.proc.Wait() }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("agent log (%s):\n%s", device, b)
		}
	})
	waitFor(t, 15*time.Second, "the agent to report the device active", func() bool {
		a.move()
		v, err := a.view()
		return err == nil && v.Status == presence.Active
	})
	v, err := a.view()
	if err != nil {
		t.Fatal(err)
	}
	a.id = v.ID
	return a
}

// stop ends the run as the session would (SIGTERM), once.
func (a *callsAgent) stop() {
	a.stopped.Do(func() {
		a.proc.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			a.proc.Process.Kill()
			<-a.exited
		}
	})
}

// typeFor gives input every second for n seconds.
func (a *callsAgent) typeFor(n int) {
	for range n {
		time.Sleep(time.Second)
		a.move()
	}
}

// sleepUntil waits for a moment the test checks a state at.
func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// findSpan is the span of state (and why, unless why is "") that starts
// closest to near, or nil.
func findSpan(spans []presence.Span, state presence.State, why presence.Why, near time.Time) *presence.Span {
	var best *presence.Span
	for i := range spans {
		sp := &spans[i]
		if sp.State != state || why != "" && sp.Why.Of(state) != why {
			continue
		}
		if best == nil || sp.Start.Sub(near).Abs() < best.Start.Sub(near).Abs() {
			best = sp
		}
	}
	return best
}

// within fails unless got is want ±2 s.
func within(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d.Abs() > 2*time.Second {
		t.Errorf("%s at %s, %s from %s; want within 2 s", what, got.Format("15:04:05.000"),
			d.Round(time.Millisecond), want.Format("15:04:05.000"))
	}
}

// TestAgentCallsAndMedia runs the real agent on a real X server with a
// stand-in for GNOME's session manager on its session bus: with "count
// calls and media" on, a video's idle inhibitor keeps the device active
// (why: media) past the idle threshold, and idle begins at the later of
// the last input and the inhibitor's release; with it off, the same
// inhibitor changes nothing.
func TestAgentCallsAndMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs binaries")
	}
	d := &callsDesktop{xdotool: testutil.Tool(t, "xdotool", testutil.RequireDesktop)}
	d.display = testutil.StartXvfb(t)
	d.bus = testutil.StartSessionBus(t)
	t.Setenv("DISPLAY", d.display) // for xdotool
	d.sm = startSessionManager(t, d.bus)

	dir := t.TempDir()
	d.svc = &service{t: t, bin: testutil.BuildBinary(t, "./backend/cmd/lastseend"), addr: freePort(t), db: filepath.Join(dir, "svc.db")}
	d.agentBin = testutil.BuildBinary(t, "./app/cmd/lastseen-agent")
	d.svc.admin("user", "add", "ada", "--name", "Ada")
	d.tokens = map[string]string{}
	for _, dev := range []string{"counts", "ignores"} {
		d.tokens[dev] = d.svc.admin("device", "add", "ada", dev)
	}
	d.svc.start()
	t.Cleanup(d.svc.kill)
	const threshold = 5 * time.Second

	t.Run("setting on: a video keeps the device present without input", func(t *testing.T) {
		a := d.startAgent(t, "counts", "--count-calls-and-media")
		from := time.Now().Add(-time.Minute)

		// A video that ended before the last input changes nothing: idle
		// from the last input.
		a.typeFor(1)
		d.sm.hold(t, true)
		a.typeFor(1)
		d.sm.hold(t, false)
		a.typeFor(2)
		last := a.lastIn
		a.waitView(threshold+5*time.Second, "idle", isIdle)
		t.Logf("a video over before the last input: idle on the service %s after it", time.Since(last).Round(time.Millisecond))
		svc, local := a.spans(from)
		for where, spans := range map[string][]presence.Span{"service": svc, "local history": local} {
			if sp := findSpan(spans, presence.Idle, "", last); sp == nil {
				t.Fatalf("%s: no idle span: %+v", where, spans)
			} else {
				within(t, where+": idle after a video over before the last input starts", sp.Start, last)
			}
		}

		// Input, then hands off while a video plays.
		a.move()
		a.waitView(6*time.Second, "active by input", activeBy(presence.ByInput))
		a.typeFor(2)
		last = a.lastIn
		time.Sleep(time.Second)
		on := d.sm.hold(t, true)
		a.waitView(threshold+5*time.Second, "active by media", activeBy(presence.ByMedia))
		t.Logf("media took over %s after the last input", time.Since(last).Round(time.Millisecond))
		sleepUntil(last.Add(threshold + 5*time.Second))
		if v, err := a.view(); err != nil || v.Status != presence.Active || v.Why != presence.ByMedia {
			t.Fatalf("service at the threshold + 5 s: %+v, %v; want active, why media", v, err)
		}
		if st := a.localStatus(); st.State != presence.Active || st.Why != presence.ByMedia {
			t.Fatalf("agent at the threshold + 5 s: state %q why %q; want active, why media", st.State, st.Why)
		}

		// The video ends: idle from then, the later of the two.
		off := d.sm.hold(t, false)
		took := a.waitView(5*time.Second, "idle", isIdle)
		t.Logf("idle on the service %s after the video ended", took.Round(time.Millisecond))
		svc, local = a.spans(last.Add(-time.Second))
		// Both keep why: the video's span is active by media on each side.
		for _, side := range []struct {
			where string
			spans []presence.Span
			why   presence.Why
		}{{"service", svc, presence.ByMedia}, {"local history", local, presence.ByMedia}} {
			where, spans := side.where, side.spans
			idle := findSpan(spans, presence.Idle, "", off)
			media := findSpan(spans, presence.Active, side.why, on)
			if idle == nil || media == nil {
				t.Fatalf("%s: want an active span by media, then idle: %+v", where, spans)
			}
			within(t, where+": the media span starts", media.Start, on)
			within(t, where+": the media span ends", media.End, off)
			within(t, where+": idle after the video starts", idle.Start, off)
			t.Logf("%s: media %s → %s, idle from %s (inhibitor %s → %s, last input %s)", where,
				media.Start.Format("15:04:05.000"), media.End.Format("15:04:05.000"), idle.Start.Format("15:04:05.000"),
				on.Format("15:04:05.000"), off.Format("15:04:05.000"), last.Format("15:04:05.000"))
		}
		a.stop()
	})

	t.Run("setting off: the video changes nothing", func(t *testing.T) {
		a := d.startAgent(t, "ignores")
		a.typeFor(2)
		last := a.lastIn
		time.Sleep(time.Second)
		d.sm.hold(t, true)
		t.Cleanup(func() { d.sm.hold(t, false) })
		took := a.waitView(threshold+5*time.Second, "idle", isIdle)
		idleAfter := time.Since(last)
		t.Logf("idle on the service %s after the last input (waited %s)", idleAfter.Round(time.Millisecond), took.Round(time.Millisecond))
		if idleAfter > threshold+3*time.Second {
			t.Errorf("idle %s after the last input; want at the threshold (%s) + at most 3 s", idleAfter.Round(time.Millisecond), threshold)
		}
		if st := a.localStatus(); st.State != presence.Idle {
			t.Errorf("agent: state %q why %q; want idle", st.State, st.Why)
		}
		svc, local := a.spans(last.Add(-time.Minute))
		for where, spans := range map[string][]presence.Span{"service": svc, "local history": local} {
			idle := findSpan(spans, presence.Idle, "", last)
			if idle == nil {
				t.Fatalf("%s: no idle span: %+v", where, spans)
			}
			within(t, where+": idle starts", idle.Start, last)
		}
		for _, sp := range svc {
			if sp.State == presence.Active && sp.Why.Of(sp.State) != presence.ByInput {
				t.Errorf("service: an active span by %s with the setting off: %+v", sp.Why, sp)
			}
		}
	})
}

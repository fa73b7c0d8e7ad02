//go:build linux

package e2e

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/internal/testutil"
)

const serverBin = "lastseend"

// server is a lastseend on a loopback port with its own database.
type server struct {
	bin, db, url string
}

// admin runs a lastseend admin command and returns its last line (where a
// token is printed).
func (s server) admin(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(s.bin, append(args, "--db", s.db)...).Output()
	if err != nil {
		t.Fatalf("lastseend %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// device posts beats as another device's agent would.
type device struct {
	c   *httpapi.Client
	seq int64
}

// beats posts a beat every 30 s from..to, as an agent that ran then would
// have.
func (dv *device) beats(t *testing.T, from, to time.Time, state presence.State) {
	t.Helper()
	var b presence.Batch
	for at := from; !at.After(to); at = at.Add(30 * time.Second) {
		dv.seq++
		b.Beats = append(b.Beats, presence.Beat{Seq: dv.seq, At: at, State: state})
	}
	b.SentAt = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := dv.c.PostHeartbeats(ctx, b)
	if err != nil {
		t.Fatalf("post beats: %v", err)
	}
	if res.Accepted != len(b.Beats) {
		t.Fatalf("post beats: %d of %d accepted: %+v", res.Accepted, len(b.Beats), res)
	}
}

// TestWindowRemote opens the window of an agent connected to a team's
// lastseend: the dashboard shows the server's presence (other people, this
// user's other devices and their history), the title follows this user
// across devices, and both themes render. Its screenshots are the ones the
// docs show.
func TestWindowRemote(t *testing.T) {
	gate(t, "LASTSEEN_DESKTOP_E2E")
	agentPath, windowPath := built(t, agentBin), built(t, windowBin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := startDesktop(t, ctx)
	d.move()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	svc := server{bin: built(t, serverBin), db: filepath.Join(d.dir, "server.db"), url: "http://" + addr}
	svc.admin(t, "user", "add", "ada", "--name", "Ada Lovelace")
	svc.admin(t, "user", "add", "grace", "--name", "Grace Hopper")
	svc.admin(t, "user", "add", "alan", "--name", "Alan Turing")
	laptop := svc.admin(t, "device", "add", "ada", "laptop")
	desk := svc.admin(t, "device", "add", "ada", "desktop")
	graceWS := svc.admin(t, "device", "add", "grace", "workstation")
	start(t, d.command("lastseend", svc.bin, "serve", "--addr", addr, "--db", svc.db, "--log-level", "warn"))
	health := httpapi.NewClient(svc.url, "", nil)
	testutil.WaitUntil(t, "lastseend to answer /healthz", 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return health.Health(ctx) == nil
	})
	// This morning on the desktop, then Grace at work now.
	now := time.Now()
	desktop := &device{c: httpapi.NewClient(svc.url, desk, nil)}
	grace := &device{c: httpapi.NewClient(svc.url, graceWS, nil)}
	desktop.beats(t, now.Add(-100*time.Minute), now.Add(-12*time.Minute), presence.Active)
	grace.beats(t, now.Add(-20*time.Minute), now, presence.Active)

	a := d.startAgent(agentPath, "--server", svc.url, "--token", laptop, "--idle-after", "5s", "--interval", "10s")
	var st localStatus
	testutil.WaitUntil(t, "the agent to reach the remote service", 15*time.Second, func() bool {
		return a.get("/local/v1/status", &st) == nil && st.Service.Kind == "remote" && st.Service.Reachable
	})

	themes := []struct {
		name, gtk string
		grace     presence.State // what Grace turns while the window is open
	}{{"light", "", presence.Idle}, {"dark", "Adwaita:dark", presence.Active}}
	for _, theme := range themes {
		step(t, "the window in remote mode, "+theme.name, func(t *testing.T) {
			d := d.on(t)
			cmd := d.command("window-"+theme.name, windowPath, "--data-dir", d.dataDir())
			if theme.gtk != "" {
				cmd.Env = append(cmd.Env, "GTK_THEME="+theme.gtk)
			}
			p := start(t, cmd)
			win := findDashboard(t, d, 30*time.Second)
			d.waitTitle(win.win, titleActive, 20*time.Second, d.move)
			// A change of someone else's arrives live, through the agent.
			grace.beats(t, time.Now(), time.Now(), theme.grace)
			d.screenshot("remote-"+theme.name, win.win)
			closeDashboard(t, d, win)
			if err, ended := p.wait(5 * time.Second); !ended || err != nil {
				t.Fatalf("lastseen: ended %v, exit %v; want a clean exit", ended, err)
			}
		})
	}
	step(t, "the agent ends cleanly", func(t *testing.T) { a.stop(t) })
}

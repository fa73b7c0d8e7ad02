//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
	"github.com/lastseen/lastseen/backend/sqlite"
	"github.com/lastseen/lastseen/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuilt()
	os.Exit(code)
}

// lastseendBinary builds this package once per test run.
func lastseendBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	return testutil.BuildBinary(t, "./backend/cmd/lastseend")
}

// proc is a running lastseend serve.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan error
}

// startBinary runs `lastseend serve` on 127.0.0.1:0 and learns its URL from
// the "listening" log line, as an operator's tooling would.
func startBinary(t *testing.T, db string) *proc {
	t.Helper()
	cmd := exec.Command(lastseendBinary(t), "serve", "--db", db)
	cmd.Env = append(os.Environ(), "LASTSEEN_ADDR=127.0.0.1:0", "LASTSEEN_SHUTDOWN_TIMEOUT=5s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	testutil.DieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &lockedBuffer{}, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				select {
				case urls <- rec.URL:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("lastseend log:\n%s", p.logs.String())
		}
	})
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("lastseend exited at start: %v\n%s", err, p.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("lastseend did not start\n%s", p.logs.String())
	}
	return p
}

// wait returns the exit code, failing the test if it takes longer than d.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		default:
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("lastseend still running after %s\n%s", d, p.logs.String())
	}
	return -1
}

// binCmd runs an admin command with the binary.
func binCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(lastseendBinary(t), args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("lastseend %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return string(out)
}

// acked is what the load learned was committed: per device, the highest seq
// and the time of the last beat a 200 acknowledged.
type acked struct {
	mu    sync.Mutex
	seq   map[string]int64
	at    map[string]time.Time
	count int
}

// load posts batches from every device until ctx ends or a request fails
// (the server went away), recording each acknowledgement.
func load(ctx context.Context, url string, tokens []string, a *acked) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() {
			c := httpapi.NewClient(url, tok, nil)
			var seq int64
			for range 100000 {
				if ctx.Err() != nil {
					return
				}
				now := time.Now()
				b := presence.Batch{SentAt: now}
				for i := range 5 {
					seq++
					b.Beats = append(b.Beats, presence.Beat{Seq: seq, At: now.Add(time.Duration(i) * time.Millisecond), State: presence.Active})
				}
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := c.PostHeartbeats(rctx, b)
				cancel()
				if err != nil {
					return
				}
				a.mu.Lock()
				if res.Accepted == len(b.Beats) {
					a.seq[tok] = res.LastSeq
					a.at[tok] = b.Beats[len(b.Beats)-1].At
					a.count++
				}
				a.mu.Unlock()
			}
		})
	}
	return &wg
}

// waitAcks waits until at least n batches were acknowledged.
func waitAcks(t *testing.T, a *acked, n int) {
	t.Helper()
	testutil.WaitUntil(t, fmt.Sprintf("%d batches to be acknowledged", n), 60*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.count >= n
	})
}

// checkDurable reopens the database and checks that every acknowledged beat
// is there: each device's high-water mark, and its active span reaching the
// last acknowledged beat.
func checkDurable(t *testing.T, db, handle string, tokens []string, ids map[string]int64, a *acked) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(db, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.UserByHandle(ctx, handle)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := s.Devices(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := map[int64]int64{}
	for _, d := range devs {
		lastSeq[d.ID] = d.Presence.LastSeq
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tok := range tokens {
		id := ids[tok]
		want, ok := a.seq[tok]
		if !ok {
			continue
		}
		if lastSeq[id] < want {
			t.Errorf("device %d: last_seq %d in the database, but %d was acknowledged", id, lastSeq[id], want)
		}
		spans, err := s.Spans(ctx, presence.SpanQuery{UserID: u.ID, DeviceID: id, From: a.at[tok].Add(-time.Hour), To: a.at[tok].Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// Stores keep times to presence.Precision.
		if len(spans) == 0 || spans[len(spans)-1].End.Before(a.at[tok].Truncate(presence.Precision)) {
			t.Errorf("device %d: spans %+v do not reach the last acknowledged beat at %v", id, spans, a.at[tok])
		}
	}
}

// fleetOf adds a user and n devices with the binary while it serves db.
func fleetOf(t *testing.T, db, handle string, n int) (userTok string, tokens []string, ids map[string]int64) {
	t.Helper()
	userTok = mustToken(t, binCmd(t, "user", "add", handle, "--db", db), "ls_usr_")
	ids = map[string]int64{}
	for i := range n {
		out := binCmd(t, "device", "add", handle, fmt.Sprintf("dev-%d", i), "--db", db)
		tok := mustToken(t, out, "ls_dev_")
		var id int64
		if _, err := fmt.Sscanf(out, "added device %d", &id); err != nil {
			t.Fatalf("no device id in %q", out)
		}
		tokens = append(tokens, tok)
		ids[tok] = id
	}
	return userTok, tokens, ids
}

// TestGracefulShutdown SIGTERMs the real binary under load with a live
// stream open: it ends the stream, answers or refuses what is in flight,
// exits 0, and every acknowledged beat is in the database.
func TestGracefulShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "lastseen.db")
	p := startBinary(t, db)
	userTok, tokens, ids := fleetOf(t, db, "erin", 4)

	stream, err := httpapi.NewClient(p.url, userTok, nil).Events(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	a := &acked{seq: map[string]int64{}, at: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := load(ctx, p.url, tokens, a)
	waitAcks(t, a, 40)
	nextEvent(t, stream, "presence", eventWait)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopping := time.Now()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, p.logs.String())
	}
	// The open stream must not hold the stop up to the shutdown deadline
	// (5 s here): ending streams is part of a graceful stop.
	if took := time.Since(stopping); took > 3*time.Second {
		t.Errorf("stopping took %s", took)
	}
	cancel()
	wg.Wait()
	logs := p.logs.String()
	if !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "cutting them off") {
		t.Errorf("not a clean stop:\n%s", logs)
	}
	for range 1000 { // the stream ends: no more than the events already queued
		if _, err := stream.Next(); err != nil {
			break
		}
	}
	checkDurable(t, db, "erin", tokens, ids, a)
}

// TestKill9 kills the binary mid-load: every beat a 200 acknowledged is in
// the database ("a 200 means committed").
func TestKill9(t *testing.T) {
	db := filepath.Join(t.TempDir(), "lastseen.db")
	p := startBinary(t, db)
	_, tokens, ids := fleetOf(t, db, "frank", 8)

	a := &acked{seq: map[string]int64{}, at: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := load(ctx, p.url, tokens, a)
	waitAcks(t, a, 200)

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)
	wg.Wait() // every request in flight has failed or was acknowledged
	a.mu.Lock()
	t.Logf("%d batches acknowledged before the kill", a.count)
	a.mu.Unlock()
	checkDurable(t, db, "frank", tokens, ids, a)
}

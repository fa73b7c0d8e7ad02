package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeAgentEnv makes this test binary act as lastseen-agent when it is
// started under that name by the code under test: it serves the two
// endpoints the window uses and publishes agent.json like the real one.
const fakeAgentEnv = "LASTSEEN_TEST_FAKE_AGENT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeAgentEnv); mode != "" {
		os.Exit(fakeAgent(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeAgent behaves per mode: "serve" runs the local API (for at most a
// minute, should a test forget it); "crash" fails at start the way a broken
// agent would; "mute" starts and never publishes agent.json.
func fakeAgent(mode string, args []string) int {
	fs := flag.NewFlagSet("lastseen-agent", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	if err := fs.Parse(args); err != nil || *dataDir == "" {
		fmt.Fprintln(os.Stderr, "fake agent: want --data-dir")
		return 2
	}
	switch mode {
	case "crash":
		fmt.Fprintln(os.Stderr, "open agent database: disk I/O error")
		return 3
	case "mute":
		// Leaves its pid where the test can stop it, and nothing else.
		os.WriteFile(filepath.Join(*dataDir, "mute.pid"), []byte(fmt.Sprint(os.Getpid())), 0o600)
		time.Sleep(time.Minute)
		return 0
	}
	var b [16]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+secret {
				http.Error(w, `{"error":{"code":"unauthorized","message":"bad secret"}}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /local/v1/status", auth(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"mode":"auto","state":"active"}`)
	}))
	// A slow start, like a real agent opening its database, proves the
	// window waits rather than taking the first look as final.
	time.Sleep(300 * time.Millisecond)
	info, _ := json.Marshal(AgentInfo{URL: "http://" + ln.Addr().String(), Secret: secret, PID: os.Getpid()})
	tmp := filepath.Join(*dataDir, AgentFile+".tmp")
	if err := os.WriteFile(tmp, info, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(tmp, filepath.Join(*dataDir, AgentFile)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	time.Sleep(time.Minute)
	return 0
}

// fakeAgentExe puts this test binary in a temporary directory under the agent's
// name, the way the window finds the real one beside itself.
func fakeAgentExe(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), AgentExecutable())
	if err := os.Symlink(self, exe); err != nil {
		t.Skipf("cannot link the test binary: %v", err)
	}
	return exe
}

func killAgent(t *testing.T, dir string) {
	t.Helper()
	info, err := ReadAgentInfo(dir)
	if err != nil {
		return
	}
	p, err := os.FindProcess(info.PID)
	if err == nil {
		p.Kill()
	}
}

func TestEnsureStartsAgent(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake agent is linked by symlink")
	}
	exe := fakeAgentExe(t)
	dir := t.TempDir()
	t.Setenv(fakeAgentEnv, "serve")
	t.Cleanup(func() { killAgent(t, dir) })

	s := agentStarter{DataDir: dir, Exe: exe, Wait: 10 * time.Second, Poll: 20 * time.Millisecond}
	start := time.Now()
	info, err := s.ensure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.PID == os.Getpid() || info.PID == 0 {
		t.Errorf("agent pid %d", info.PID)
	}
	if err := probeAgent(context.Background(), newLoopbackClient(), info); err != nil {
		t.Fatal(err)
	}
	t.Logf("agent answered after %v", time.Since(start).Round(time.Millisecond))

	// The agent runs in a session of its own: it survives the window.
	checkOwnSession(t, info.PID)

	// A second window finds the running agent and starts nothing.
	t.Setenv(fakeAgentEnv, "crash") // a second start would fail loudly
	again, err := s.ensure(context.Background())
	if err != nil || again != info {
		t.Errorf("second ensure = %+v, %v; want the same agent %+v", again, err, info)
	}
}

func TestEnsureAgentCrashes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake agent is linked by symlink")
	}
	exe := fakeAgentExe(t)
	dir := t.TempDir()
	t.Setenv(fakeAgentEnv, "crash")
	s := agentStarter{DataDir: dir, Exe: exe, Wait: 10 * time.Second, Poll: 20 * time.Millisecond}
	start := time.Now()
	_, err := s.ensure(context.Background())
	if err == nil {
		t.Fatal("no error for an agent that exits")
	}
	for _, want := range []string{"exited at start", "exit status 3", "disk I/O error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// It does not wait out the deadline for an agent already gone.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestEnsureAgentSilent(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake agent is linked by symlink")
	}
	exe := fakeAgentExe(t)
	dir := t.TempDir()
	t.Setenv(fakeAgentEnv, "mute")
	// A stale agent.json from a crashed run must not count as an answer.
	writeAgentJSON(t, dir, AgentInfo{URL: "http://127.0.0.1:1", Secret: "old", PID: 1})
	s := agentStarter{DataDir: dir, Exe: exe, Wait: 400 * time.Millisecond, Poll: 20 * time.Millisecond}
	_, err := s.ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "mute.pid")); err == nil {
		var pid int
		fmt.Sscan(string(b), &pid)
		if p, err := os.FindProcess(pid); err == nil && pid > 0 {
			p.Kill()
		}
	}
}

func TestEnsureAgentMissing(t *testing.T) {
	dir := t.TempDir()
	s := agentStarter{DataDir: dir, Exe: filepath.Join(dir, "nowhere", AgentExecutable())}
	_, err := s.ensure(context.Background())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestReadAgentInfo(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"ipv4 loopback", `{"url":"http://127.0.0.1:4567","secret":"s","pid":3}`, true},
		{"ipv6 loopback", `{"url":"http://[::1]:4567","secret":"s"}`, true},
		{"localhost, trailing slash", `{"url":"http://localhost:4567/","secret":"s"}`, true},
		{"no secret", `{"url":"http://127.0.0.1:4567"}`, false},
		{"remote host", `{"url":"http://192.168.1.9:4567","secret":"s"}`, false},
		{"dns name", `{"url":"http://example.com:4567","secret":"s"}`, false},
		{"https", `{"url":"https://127.0.0.1:4567","secret":"s"}`, false},
		{"not a url", `{"url":"127.0.0.1:4567","secret":"s"}`, false},
		{"not json", `{`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, AgentFile), []byte(tc.body), 0o600)
			info, err := ReadAgentInfo(dir)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && strings.HasSuffix(info.URL, "/") {
				t.Errorf("url %q keeps its trailing slash", info.URL)
			}
		})
	}
	if _, err := ReadAgentInfo(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestProbeAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/local/v1/status" || r.Header.Get("Authorization") != "Bearer right" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	c := newLoopbackClient()
	if err := probeAgent(context.Background(), c, AgentInfo{URL: srv.URL, Secret: "right"}); err != nil {
		t.Errorf("right secret: %v", err)
	}
	if err := probeAgent(context.Background(), c, AgentInfo{URL: srv.URL, Secret: "wrong"}); err == nil {
		t.Error("wrong secret accepted: another program on a reused port would pass")
	}
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/localapi"
)

// AgentFile is where the agent publishes its local API, in the data dir.
const AgentFile = localapi.DiscoveryFile

// agentLogFile keeps what an agent started by the window printed, so a
// crash at start leaves a reason behind.
const agentLogFile = "agent-start.log"

// AgentInfo is the content of agent.json, as the agent writes it: the
// agent's loopback URL and its per-run secret (LOCALAPI.md).
type AgentInfo = localapi.Discovery

// ReadAgentInfo reads and checks <dataDir>/agent.json. The secret is only
// ever sent to a loopback address, whatever the file says.
func ReadAgentInfo(dataDir string) (AgentInfo, error) { return localapi.ReadDiscovery(dataDir) }

// probeAgent checks that the agent behind info answers its status endpoint
// with this secret: a stale agent.json (crashed agent, port reused) fails.
func probeAgent(ctx context.Context, client *http.Client, info AgentInfo) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, info.URL+"/local/v1/status", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+info.Secret)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the agent at %s: %w", info.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask the agent at %s: %s", info.URL, resp.Status)
	}
	return nil
}

// AgentExecutable is the agent's file name on this OS.
func AgentExecutable() string {
	if runtime.GOOS == "windows" {
		return "lastseen-agent.exe"
	}
	return "lastseen-agent"
}

// agentNextTo returns the agent executable beside our own: the two ship
// side by side.
func agentNextTo() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	return filepath.Join(filepath.Dir(self), AgentExecutable()), nil
}

// agentStarter finds a running agent or starts one.
type agentStarter struct {
	DataDir string
	// Exe is the agent executable; agentNextTo when empty.
	Exe    string
	Client *http.Client
	// Wait bounds how long a fresh agent may take to answer; Poll is how
	// often agent.json is looked at meanwhile.
	Wait, Poll time.Duration
}

// ensure returns a running agent's info, starting the agent (detached, so
// it outlives the window) when none answers.
func (s agentStarter) ensure(ctx context.Context) (AgentInfo, error) {
	if s.Wait == 0 {
		s.Wait = 5 * time.Second
	}
	if s.Poll == 0 {
		s.Poll = 100 * time.Millisecond
	}
	if s.Client == nil {
		s.Client = newLoopbackClient()
	}
	if info, err := ReadAgentInfo(s.DataDir); err == nil && probeAgent(ctx, s.Client, info) == nil {
		return info, nil
	}
	exe := s.Exe
	if exe == "" {
		var err error
		if exe, err = agentNextTo(); err != nil {
			return AgentInfo{}, err
		}
	}
	if _, err := os.Stat(exe); err != nil {
		return AgentInfo{}, fmt.Errorf("start the agent: %w", err)
	}
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return AgentInfo{}, fmt.Errorf("start the agent: %w", err)
	}
	logPath := filepath.Join(s.DataDir, agentLogFile)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return AgentInfo{}, fmt.Errorf("start the agent: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(exe, "--data-dir", s.DataDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = s.DataDir
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return AgentInfo{}, fmt.Errorf("start %s: %w", exe, err)
	}
	// Reap the child if it ends while we run, and learn about it at once
	// instead of waiting out the deadline.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.NewTimer(s.Wait)
	defer deadline.Stop()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	var lastErr error
	for {
		info, err := ReadAgentInfo(s.DataDir)
		if err == nil {
			if err = probeAgent(ctx, s.Client, info); err == nil {
				return info, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return AgentInfo{}, ctx.Err()
		case err := <-exited:
			// A second agent exits when one already runs (two windows
			// launched at once): that one may be answering by now.
			if info, rerr := ReadAgentInfo(s.DataDir); rerr == nil && probeAgent(ctx, s.Client, info) == nil {
				return info, nil
			}
			return AgentInfo{}, fmt.Errorf("the agent (%s) exited at start: %v%s", exe, exitText(err), logTail(logPath))
		case <-deadline.C:
			return AgentInfo{}, fmt.Errorf("the agent (%s) did not answer within %v: %v", exe, s.Wait, lastErr)
		case <-tick.C:
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail quotes the end of the agent's output for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	const max = 600
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return "; it said: " + s
}

// newLoopbackClient is the HTTP client for the agent: never through a
// proxy (the secret stays on this machine) and without an overall timeout,
// since the event stream is held open; requests carry their own deadlines.
func newLoopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// agentLink is the window's current idea of where the agent is. The agent
// may restart while the window is open (new port, new secret), so callers
// reload it when a request fails.
type agentLink struct {
	dataDir string

	mu   sync.Mutex
	info AgentInfo
	err  error // why there is no agent, while info is empty
}

func newAgentLink(dataDir string) *agentLink { return &agentLink{dataDir: dataDir} }

func (l *agentLink) set(info AgentInfo, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info, l.err = info, err
}

// current is the agent to talk to, or the reason there is none.
func (l *agentLink) current() (AgentInfo, error) {
	l.mu.Lock()
	info, err := l.info, l.err
	l.mu.Unlock()
	if info.URL != "" {
		return info, nil
	}
	if _, changed := l.reload(); changed {
		return l.current()
	}
	if err == nil {
		err = errors.New("no agent found")
	}
	return AgentInfo{}, err
}

// reload re-reads agent.json and reports whether it now names a different
// agent (URL or secret) than before.
func (l *agentLink) reload() (AgentInfo, bool) {
	info, err := ReadAgentInfo(l.dataDir)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if l.info.URL == "" {
			l.err = err
		}
		return l.info, false
	}
	changed := info.URL != l.info.URL || info.Secret != l.info.Secret
	l.info, l.err = info, nil
	return info, changed
}

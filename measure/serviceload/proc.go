package serviceload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a server the load drives from outside, in a process of its own:
// lastseend as shipped, or the bare handler (this program started again).
// Its memory is read from the operating system, and nothing the load does
// in its own process (allocating, collecting garbage) weighs on it.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	addr string // 127.0.0.1:port

	stdin io.WriteCloser // closed to tell the bare server to go
	tail  *tailWriter    // the end of its standard error, for failures
	done  chan struct{}  // closed when the process has exited
	err   error          // its exit status, once done
}

// startupTimeout bounds how long a child may take to say where it listens.
const startupTimeout = 60 * time.Second

// startChild starts a server process and waits for its JSON log line
// {"msg":"listening","url":…} on standard error.
func startChild(name, path string, args, env []string) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	setChildAttrs(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, tail: &tailWriter{max: 4096}, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		// Read the log for the address, then keep draining it so the child
		// never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			c.tail.Write(append(line, '\n'))
			var rec struct{ Msg, URL string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" && rec.URL != "" {
				select {
				case found <- rec.URL:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	select {
	case u := <-found:
		c.url = strings.TrimSuffix(u, "/")
		c.addr = strings.TrimPrefix(c.url, "http://")
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before listening (%v): %s", name, c.err, c.tail.String())
	case <-time.After(startupTimeout):
		c.kill()
		return nil, fmt.Errorf("%s did not start listening within %s: %s", name, startupTimeout, c.tail.String())
	}
}

// alive reports whether the process still runs.
func (c *child) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop asks the child to end (SIGTERM, and for the bare server the end of
// its standard input) and waits for it, killing it after a while.
func (c *child) stop() error {
	if !c.alive() {
		return c.exitError()
	}
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.exitError()
	case <-time.After(20 * time.Second):
		c.kill()
		return fmt.Errorf("%s ignored SIGTERM for 20s; killed", c.name)
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// exitError is the child's exit, unless it was the SIGTERM asked for.
func (c *child) exitError() error {
	var ee *exec.ExitError
	if c.err == nil || (errors.As(c.err, &ee) && ee.String() == "signal: terminated") {
		return nil
	}
	return fmt.Errorf("%s: %v: %s", c.name, c.err, c.tail.String())
}

// procMem is a process's memory as the kernel counts it.
type procMem struct {
	rss, hwm uint64 // resident set now and at its peak, bytes
}

// mem reads the child's /proc/PID/status (zero where there is none).
func (c *child) mem() procMem {
	return readProcStatus(filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "status"))
}

func readProcStatus(path string) procMem {
	b, err := os.ReadFile(path)
	if err != nil {
		return procMem{}
	}
	var m procMem
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m
}

// goMem is the Go runtime's view of a lastseend, from its /metrics.
type goMem struct {
	heapInuse, stackInuse uint64
}

// scrapeGoMem reads the runtime's memory gauges from lastseend's /metrics
// (zero when they cannot be read: the figure is a complement to the RSS).
func scrapeGoMem(ctx context.Context, hc *http.Client, base string) goMem {
	m := scrapeMetrics(ctx, hc, base)
	return goMem{heapInuse: uint64(m["go_memstats_heap_inuse_bytes"]), stackInuse: uint64(m["go_memstats_stack_inuse_bytes"])}
}

// scrapeMetrics reads the unlabelled series of lastseend's /metrics (none
// when it cannot be read).
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.ContainsAny(name, "{#") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// WriterStats is what lastseend's group-commit writer did over a run, from
// its /metrics: how many transactions, how many beats each held on
// average, and how long each took to commit (the disk sync included).
type WriterStats struct {
	Commits      int64   `json:"commits"`
	BeatsPerTx   float64 `json:"beats_per_commit"`
	CommitMeanMs float64 `json:"commit_mean_ms"`
}

// writerDelta is the writer's work between two scrapes.
func writerDelta(before, after map[string]float64) WriterStats {
	n := after["lastseen_writer_commit_seconds_count"] - before["lastseen_writer_commit_seconds_count"]
	if n <= 0 {
		return WriterStats{}
	}
	return WriterStats{
		Commits:      int64(n),
		BeatsPerTx:   (after["lastseen_writer_batch_beats_sum"] - before["lastseen_writer_batch_beats_sum"]) / n,
		CommitMeanMs: 1000 * (after["lastseen_writer_commit_seconds_sum"] - before["lastseen_writer_commit_seconds_sum"]) / n,
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// childEnv is this process's environment without any LASTSEEN_* variable,
// so that the service runs with its shipped defaults whatever the shell
// exports; dropped lists the names it left out.
func childEnv(extra ...string) (env, dropped []string) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LASTSEEN_") {
			dropped = append(dropped, name)
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...), dropped
}

// buildLastseend builds the service binary into dir with the go command
// (the load runs inside the module, as `go run` or `go test` does).
func buildLastseend(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "lastseend")
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-o", out, "github.com/lastseen/lastseen/backend/cmd/lastseend")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build lastseend: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// goCommand is the go command that runs this program, when known.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

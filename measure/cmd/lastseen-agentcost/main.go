// Command lastseen-agentcost measures what the always-on lastseen-agent
// costs the machine it runs on, next to a bare Go process that does nothing
// but tick every 2 s (the baseline program beside this one), started at the
// same moment so both see the same machine.
//
// It gives the agents a real desktop to find: a private X server (Xvfb),
// whose idle counter the agent reads, and a private D-Bus session bus with a
// StatusNotifierWatcher on it, where the tray registers its icon and menu.
// It runs, at once, the baseline, `lastseen-agent --headless` and (unless
// --tray=false) `lastseen-agent` with its tray, each in its own data dir and
// home, all in local mode (the agent's embedded service gets every beat).
// The tray run starts from a copy of the binary: two processes mapping one
// file share its page cache, which would halve each one's PSS.
// After a warm-up that is not counted, it reads /proc for --duration:
//
//   - memory: VmRSS and VmHWM from /proc/PID/status, PSS from
//     /proc/PID/smaps_rollup, sampled every --sample (max and final);
//   - CPU: utime+stime from /proc/PID/stat (clock ticks, threads that
//     exited included) over the window, as a percentage of one core, and
//     the same from the threads' schedstat nanoseconds as a finer check;
//   - wakeups: voluntary + involuntary context switches summed over
//     /proc/PID/task/*/status, per second. Linux keeps no per-process
//     wakeup counter without tracing, and a thread that wakes and sleeps
//     again makes exactly one voluntary switch, so switches are the proxy
//     (preemptions add to it, which only errs on the side of caution);
//   - wake bursts (when strace is installed, after the window, for
//     --strace-window): every thread's sleeping and I/O syscalls, time-
//     stamped; syscalls under 1 ms apart are one burst, one wakeup of the
//     process however many threads it passed through; and, apart, the
//     fsync and fdatasync calls per second, which add switches without a
//     wakeup.
//
// It prints each agent run beside the baseline with the ratio and a verdict
// against the targets (RSS ≤ 25 MiB, ≤ 0.05 % of a core, ≤ 2 wakeups/s),
// the binaries' sizes and the agent's shared libraries (no GTK, no WebKit).
// It exits non-zero on a missed target only with --strict.
//
//	lastseen-agentcost [--agent PATH] [--baseline PATH] [--duration 10m]
//	                   [--warmup 10s] [--sample 1s] [--tray=true] [--dir DIR]
//	                   [--strace PATH] [--strace-window 60s]
//	                   [--env KEY=VALUE]... [--json] [--strict]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Config is one measurement.
type Config struct {
	Agent    string        // lastseen-agent binary
	Baseline string        // the bare ticker binary
	Duration time.Duration // measured window
	Warmup   time.Duration // from start to the window, not measured
	Sample   time.Duration // how often memory is sampled
	Tray     bool          // also measure the agent with its tray
	Dir      string        // keep logs and data dirs here; "" means a temporary dir, removed
	// Env is added to every measured process's environment (KEY=VALUE),
	// the baseline's too, so both stay the same Go runtime under test:
	// GOMAXPROCS=1 or GODEBUG=updatemaxprocs=0 for instance.
	Env     []string
	Targets Targets
	// Strace is the strace binary counting wake bursts after the window
	// ("" skips it; StraceNote says why); StraceWindow how long it traces.
	Strace       string
	StraceWindow time.Duration
	StraceNote   string
	Progress     io.Writer // one line per phase; nil for none
}

// Validate rejects a configuration that cannot measure anything.
func (c Config) Validate() error {
	switch {
	case c.Agent == "" || c.Baseline == "":
		return errors.New("--agent and --baseline are required")
	case c.Duration < time.Second:
		return fmt.Errorf("--duration must be at least 1s, not %s", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative, not %s", c.Warmup)
	case c.Sample <= 0 || c.Sample > c.Duration:
		return fmt.Errorf("--sample must be positive and at most --duration, not %s", c.Sample)
	case c.Strace != "" && (c.StraceWindow < time.Second || c.StraceWindow > c.Duration):
		return fmt.Errorf("--strace-window must be 1s to --duration, not %s", c.StraceWindow)
	}
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("--env wants KEY=VALUE, not %q", kv)
		}
	}
	for _, p := range []string{c.Agent, c.Baseline} {
		if fi, err := os.Stat(p); err != nil {
			return fmt.Errorf("binary: %w", err)
		} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("binary %s is not an executable file", p)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := Config{Duration: 10 * time.Minute, Warmup: 10 * time.Second, Sample: time.Second, Targets: DefaultTargets}
	if p, err := exec.LookPath("strace"); err == nil {
		c.Strace = p
	}
	// By default the binaries sit next to this one, as scripts/bench-agent.sh
	// builds them.
	if exe, err := os.Executable(); err == nil {
		c.Agent = filepath.Join(filepath.Dir(exe), "lastseen-agent")
		c.Baseline = filepath.Join(filepath.Dir(exe), "lastseen-agentcost-baseline")
	}
	fs := flag.NewFlagSet("lastseen-agentcost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Agent, "agent", c.Agent, "lastseen-agent `binary` to measure")
	fs.StringVar(&c.Baseline, "baseline", c.Baseline, "baseline `binary` (a bare Go 2 s ticker loop)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured window, after the warm-up")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "time from start to the window, not measured")
	fs.DurationVar(&c.Sample, "sample", c.Sample, "how often RSS and PSS are sampled")
	fs.BoolVar(&c.Tray, "tray", true, "also measure the agent with its tray (on the private session bus)")
	fs.Func("env", "add `KEY=VALUE` to every measured process's environment (repeatable)", func(v string) error {
		c.Env = append(c.Env, v)
		return nil
	})
	fs.StringVar(&c.Dir, "dir", "", "keep the agents' data dirs and logs in this `directory` (default: a temporary one, removed)")
	fs.StringVar(&c.Strace, "strace", c.Strace, "strace `binary` counting wake bursts after the window (\"\" to skip; default: strace from PATH)")
	fs.DurationVar(&c.StraceWindow, "strace-window", 0, "how long strace traces (default: 60s, or --duration if shorter)")
	fs.Float64Var(&c.Targets.RSSMiB, "max-rss", c.Targets.RSSMiB, "target: highest RSS in MiB")
	fs.Float64Var(&c.Targets.CPUPercent, "max-cpu", c.Targets.CPUPercent, "target: % of one core")
	fs.Float64Var(&c.Targets.Wakeups, "max-wakeups", c.Targets.Wakeups, "target: wakeups (context switches) per second")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lastseen-agentcost: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if c.StraceWindow == 0 {
		c.StraceWindow = min(time.Minute, c.Duration)
	}
	if c.Strace == "" {
		c.StraceNote = "wake bursts not counted: no strace (Debian package strace, or --strace PATH)"
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "lastseen-agentcost: %v\n", err)
		return 2
	}
	c.Progress = stderr

	rep, err := Measure(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "lastseen-agentcost: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "lastseen-agentcost: %v\n", err)
			return 1
		}
	} else {
		rep.WriteText(stdout)
	}
	if *strict && !rep.Passed {
		return 1
	}
	return 0
}

// fileMiB is a file's size in MiB, 0 when it cannot be read.
func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// newReport fills what is known before anything runs.
func newReport(c Config) *Report {
	return &Report{
		TraceNote:  c.StraceNote,
		WindowS:    c.Duration.Seconds(),
		WarmupS:    c.Warmup.Seconds(),
		SampleS:    c.Sample.Seconds(),
		CPUs:       runtime.NumCPU(),
		ClockTicks: clockTicks(),
		Targets:    c.Targets,
		Env:        c.Env,
	}
}

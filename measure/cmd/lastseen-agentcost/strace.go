package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Context switches count a wakeup per thread that runs, so one wakeup that
// passes through three goroutines on three threads counts three times, and
// preemptions count too. The truer count is of the moments the process does
// anything at all: strace timestamps every blocking and I/O syscall of every
// thread, and syscalls less than burstGap apart (across threads) are one
// burst of work, that is one wakeup.
//
// Tracing stops the traced threads at each syscall, which would inflate the
// context switches, so it runs after the measured window, for its own
// bounded window, on all processes at once.
const burstGap = time.Millisecond

// traceSyscalls are where a Go process sleeps (futex, epoll, nanosleep) and
// what it does when it wakes to talk to the X server, the bus or its socket;
// and the syncs that make its writes durable (see Trace.Syncs).
const traceSyscalls = "epoll_pwait,epoll_pwait2,epoll_wait,futex,nanosleep,clock_nanosleep,read,write," + syncSyscalls

// syncSyscalls flush a file to the disk. They are counted apart and left out
// of the bursts, which thus count what they always counted: a sync is not a
// wakeup. It costs switches all the same: its thread blocks on the disk
// (about a millisecond) and the runtime's other threads switch around it,
// and the silence splits the burst it falls in. A store that syncs every
// commit (SQLite synchronous=FULL) thus adds switches and bursts to every
// beat without a single new wakeup, which this count tells apart.
const syncSyscalls = "fsync,fdatasync"

var syncNames = strings.Split(syncSyscalls, ",")

// traceSettle lets strace attach to every thread (which interrupts their
// sleeps once) before the counted window opens.
const traceSettle = time.Second

// Trace is one process's wake bursts under strace.
type Trace struct {
	WindowS    float64 `json:"window_s"`
	Syscalls   int     `json:"syscalls"` // traced syscall lines in the window, syncs left out
	Bursts     int     `json:"bursts"`
	BurstsPerS float64 `json:"bursts_per_s"`
	// Syncs are the fsync and fdatasync calls begun in the window.
	Syncs     int     `json:"syncs"`
	SyncsPerS float64 `json:"syncs_per_s"`
}

// straceAll traces every child for window at the same time and fills
// their traces.
func straceAll(ctx context.Context, strace string, window time.Duration, dir string, children []*child) error {
	type running struct {
		ch      *child
		cmd     *exec.Cmd
		out     string
		errb    *strings.Builder
		done    chan struct{}
		waitErr error
	}
	var rs []*running
	stopAll := func() {
		for _, r := range rs {
			_ = r.cmd.Process.Signal(syscall.SIGINT) // strace detaches and exits
		}
		for _, r := range rs {
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
	}
	for _, ch := range children {
		r := &running{ch: ch, out: filepath.Join(dir, slug(ch.name)+".strace"), errb: &strings.Builder{}, done: make(chan struct{})}
		r.cmd = exec.Command(strace, "-f", "-ttt", "-qq", "-e", "trace="+traceSyscalls,
			"-o", r.out, "-p", strconv.Itoa(ch.cmd.Process.Pid))
		r.cmd.Stderr = r.errb
		r.cmd.SysProcAttr = childAttr()
		if err := r.cmd.Start(); err != nil {
			stopAll()
			return fmt.Errorf("start strace: %w", err)
		}
		go func() { r.waitErr = r.cmd.Wait(); close(r.done) }()
		rs = append(rs, r)
	}
	if err := sleepCtx(ctx, traceSettle); err != nil {
		stopAll()
		return err
	}
	for _, r := range rs {
		select {
		case <-r.done:
			stopAll()
			return fmt.Errorf("strace on %s exited at once (%v): %s", r.ch.name, r.waitErr, strings.TrimSpace(r.errb.String()))
		default:
		}
	}
	from := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		stopAll()
		return err
	}
	to := time.Now()
	stopAll()
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	for i, r := range rs {
		wg.Go(func() {
			f, err := os.Open(r.out)
			if err != nil {
				errs[i] = fmt.Errorf("strace output of %s: %w", r.ch.name, err)
				return
			}
			defer f.Close()
			tr, err := traceBursts(f, from, to)
			if err != nil {
				errs[i] = fmt.Errorf("strace output of %s: %w", r.ch.name, err)
				return
			}
			r.ch.trace = &tr
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// traceBursts reads `strace -f -ttt` output ("PID SECONDS.MICROS call…",
// resumed and signal lines alike) and counts the bursts that begin within
// [from, to), and apart from them the syncs begun within it.
func traceBursts(r io.Reader, from, to time.Time) (Trace, error) {
	var ts []int64 // µs since the epoch
	syncs := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lo, hi := from.UnixMicro(), to.UnixMicro()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		sec, frac, ok := strings.Cut(f[1], ".")
		if !ok || len(frac) != 6 {
			continue // not a -ttt timestamp: the line is not a syscall
		}
		s, err1 := strconv.ParseInt(sec, 10, 64)
		us, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		t := s*1e6 + us
		if t < lo || t >= hi {
			continue
		}
		if call, resumed := syncCall(f[2:]); call {
			if !resumed {
				syncs++
			}
			continue
		}
		ts = append(ts, t)
	}
	if err := sc.Err(); err != nil {
		return Trace{}, err
	}
	slices.Sort(ts)
	tr := Trace{WindowS: to.Sub(from).Seconds(), Syscalls: len(ts), Syncs: syncs}
	gap := burstGap.Microseconds()
	for i, t := range ts {
		if i == 0 || t-ts[i-1] >= gap {
			tr.Bursts++
		}
	}
	if tr.WindowS > 0 {
		tr.BurstsPerS = float64(tr.Bursts) / tr.WindowS
		tr.SyncsPerS = float64(tr.Syncs) / tr.WindowS
	}
	return tr, nil
}

// syncCall reports whether a line's call (the fields after PID and time) is
// one of syncSyscalls, and whether the line is its "<... fsync resumed>"
// end rather than its start.
func syncCall(rest []string) (call, resumed bool) {
	if len(rest) >= 2 && rest[0] == "<..." {
		return slices.Contains(syncNames, rest[1]), true
	}
	name, _, ok := strings.Cut(rest[0], "(")
	return ok && slices.Contains(syncNames, name), false
}

// slug is a name fit for a file name.
func slug(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
}

// Command lastseen-load measures the presence service from outside, as
// shipped: it builds (or takes) the lastseend binary, registers thousands
// of devices in a temporary database, starts lastseend on it with its
// default settings and a bare handler beside it, each in a process of its
// own, and reports ingest throughput next to the bare handler at several
// concurrencies, latency at half of that rate, a flood at twice the max
// (503 share, memory, recovery), memory per idle SSE stream, and
// state-change latency to many SSE subscribers, each against its target.
// Any setting a run changes from lastseend's defaults is printed with the
// report. With --phases p it also starts a throwaway PostgreSQL cluster and
// compares the same ingest load on PostgreSQL and on SQLite.
//
// It exits non-zero on a missed target only with --strict, so it can run
// as a report or as a gate.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/measure/serviceload"
)

func main() {
	serviceload.RunBareIfAsked() // when started again as the bare server
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// intsValue reads a comma-separated list of positive integers.
type intsValue struct{ v *[]int }

func (l intsValue) String() string {
	if l.v == nil {
		return ""
	}
	parts := make([]string, len(*l.v))
	for i, n := range *l.v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l intsValue) Set(s string) error {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return fmt.Errorf("want positive integers separated by commas, got %q", s)
		}
		out = append(out, n)
	}
	*l.v = out
	return nil
}

// rateValue reads a rate as lastseend does, "PER_SECOND/BURST".
type rateValue struct{ r *httpapi.Rate }

func (v rateValue) String() string {
	if v.r == nil || *v.r == (httpapi.Rate{}) {
		return ""
	}
	return fmt.Sprintf("%g/%d", v.r.PerSecond, v.r.Burst)
}

func (v rateValue) Set(s string) error {
	var r httpapi.Rate
	if _, err := fmt.Sscanf(s, "%g/%d", &r.PerSecond, &r.Burst); err != nil || strings.Count(s, "/") != 1 || r.PerSecond <= 0 || r.Burst < 1 {
		return fmt.Errorf("want PER_SECOND/BURST such as 10/60, got %q", s)
	}
	*v.r = r
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := serviceload.DefaultConfig()
	fs := flag.NewFlagSet("lastseen-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Lastseend, "lastseend", "", "the lastseend `binary` to measure (default: build it from this module)")
	fs.IntVar(&c.Devices, "devices", c.Devices, "devices beating, each with its own token, two to a user")
	fs.Var(intsValue{&c.Concurrencies}, "concurrency", "requests in flight (keep-alive connections) for phase a, `N,N,…`; b uses the largest")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each measured run in phases a and b")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "warm-up before each measured run of phase a")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "phases a and b alternate the handlers in this many rounds")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "beats per request")
	fs.Float64Var(&c.OverloadFactor, "overload-factor", c.OverloadFactor, "phase o floods at this many times phase a's max")
	fs.DurationVar(&c.OverloadDuration, "overload-duration", c.OverloadDuration, "how long phase o floods")
	fs.IntVar(&c.OverloadConns, "overload-conns", c.OverloadConns, "connections phase o floods from")
	fs.DurationVar(&c.RecoveryTimeout, "recovery-timeout", c.RecoveryTimeout, "how long phase o waits for p99 to come back after the flood")
	fs.IntVar(&c.Streams, "streams", c.Streams, "idle SSE streams in phase c")
	fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "SSE subscribers in phase d")
	fs.IntVar(&c.Changes, "changes", c.Changes, "state changes in phase d")
	fs.DurationVar(&c.ChangeTimeout, "change-timeout", c.ChangeTimeout, "how long one change may take to reach every subscriber")
	fs.StringVar(&c.Phases, "phases", c.Phases, `phases to run, letters of "abocdep" (e: public status streams; p: PostgreSQL vs SQLite, needs the PostgreSQL server binaries)`)
	fs.Float64Var(&c.PacedRate, "paced-rate", 0, "beats/s for phases b and o when phase a does not run")
	fs.StringVar(&c.Sync, "sync", "", "CHANGE lastseend's --sync (full or normal; default: lastseend's own, full)")
	fs.Var(rateValue{&c.DeviceRate}, "device-rate", "CHANGE lastseend's --device-rate, `PER_SECOND/BURST` (default: lastseend's own)")
	fs.Var(rateValue{&c.UserRate}, "user-rate", "CHANGE lastseend's --user-rate, `PER_SECOND/BURST` (default: lastseend's own)")
	fs.StringVar(&c.Dir, "dir", "", "keep the database in this directory (default: a temporary one, removed)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the load's client side, and phase p's in-process service) to `file`")
	verbose := fs.Bool("v", false, "log phase p's in-process service warnings to standard error")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lastseen-load: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "lastseen-load: %v\n", err)
		return 2
	}
	if *verbose {
		c.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !*asJSON {
		c.Progress = stderr
	}
	// Each stream and each connection holds a descriptor here (the other
	// end is the service's).
	if soft, hard, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "lastseen-load: raising the open-file limit: %v (soft %d, hard %d)\n", err, soft, hard)
	} else if need := uint64(max(c.Streams, c.Subscribers) + c.OverloadConns + 4*slicesMax(c.Concurrencies) + 64); soft < need {
		fmt.Fprintf(stderr, "lastseen-load: the open-file limit %d is below the %d this run needs\n", soft, need)
		return 1
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "lastseen-load: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "lastseen-load: cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := serviceload.Run(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "lastseen-load: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "lastseen-load: %v\n", err)
			return 1
		}
	} else {
		rep.WriteText(stdout)
	}
	if *strict && !rep.Passed() {
		return 1
	}
	return 0
}

func slicesMax(v []int) int {
	m := 0
	for _, n := range v {
		m = max(m, n)
	}
	return m
}

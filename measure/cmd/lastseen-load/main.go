// Command lastseen-load measures the presence service in one process: it
// starts lastseend's real handler and group-commit SQLite store on
// 127.0.0.1 with a temporary database, registers many devices, and reports
// ingest throughput next to a minimal net/http handler, latency at half of
// that rate, memory per idle SSE stream, and state-change latency to many
// SSE subscribers, each against its target. With --phases p it also starts
// a throwaway PostgreSQL cluster and compares the same ingest load on
// PostgreSQL and on SQLite.
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
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/lastseen/lastseen/measure/serviceload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := serviceload.DefaultConfig()
	fs := flag.NewFlagSet("lastseen-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Devices, "devices", c.Devices, "devices beating, each with its own token")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "requests in flight (keep-alive connections)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each measured run in phases a and b")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "warm-up before each measured run of phase a")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "phase a alternates the two handlers in this many rounds")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "beats per request")
	fs.IntVar(&c.Streams, "streams", c.Streams, "idle SSE streams in phase c")
	fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "SSE subscribers in phase d")
	fs.IntVar(&c.Changes, "changes", c.Changes, "state changes in phase d")
	fs.DurationVar(&c.ChangeTimeout, "change-timeout", c.ChangeTimeout, "how long one change may take to reach every subscriber")
	fs.StringVar(&c.Phases, "phases", c.Phases, `phases to run, letters of "abcdp" (p: PostgreSQL vs SQLite, needs the PostgreSQL server binaries)`)
	fs.Float64Var(&c.PacedRate, "paced-rate", 0, "beats/s for phase b when phase a does not run")
	fs.Float64Var(&c.DeviceRate.PerSecond, "device-rate", c.DeviceRate.PerSecond, "the service's per-device-token rate limit, per second")
	fs.IntVar(&c.DeviceRate.Burst, "device-burst", c.DeviceRate.Burst, "the service's per-device-token burst")
	fs.Float64Var(&c.UserRate.PerSecond, "user-rate", c.UserRate.PerSecond, "the service's per-user-token rate limit, per second")
	fs.IntVar(&c.UserRate.Burst, "user-burst", c.UserRate.Burst, "the service's per-user-token burst")
	fs.StringVar(&c.Dir, "dir", "", "keep the database in this directory (default: a temporary one, removed)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file`")
	heapProfile := fs.String("memprofile", "", "write a heap profile taken while phase c's streams are open to `file`")
	verbose := fs.Bool("v", false, "log the service's warnings to standard error")
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
	// Each stream holds a socket at both ends of the loopback: two
	// thousand idle streams alone need four thousand descriptors.
	if soft, hard, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "lastseen-load: raising the open-file limit: %v (soft %d, hard %d)\n", err, soft, hard)
	} else if need := uint64(2*max(c.Streams, c.Subscribers) + 2*c.Concurrency + 64); soft < need {
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

	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			fmt.Fprintf(stderr, "lastseen-load: %v\n", err)
			return 1
		}
		defer f.Close()
		runtime.MemProfileRate = 1 // every allocation, so small per-stream objects show
		c.HeapProfile = f
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

// Package serviceload measures the presence service under load inside one
// process, with the real handler over the real group-commit SQLite store on
// 127.0.0.1 (measure/cmd/lastseen-load is its command; nothing shipped
// links it):
//
//   - (a) ingest throughput, next to a minimal net/http handler driven by the
//     same client at the same concurrency, and the ratio of the two;
//   - (b) latency when ingest is paced, open-loop, at half of that rate;
//   - (c) memory held per idle SSE stream;
//   - (d) how long a state change takes to reach a thousand SSE subscribers;
//   - (p), on request, the same closed-loop ingest on PostgreSQL (a throwaway
//     cluster) and on SQLite, in alternating rounds, and their ratio.
//
// Load looks like many devices, not one client: rate limits are per token,
// so every device has its own token and its own rising seq.
package serviceload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
)

// Targets the service is held to.
const (
	TargetThroughputRatio = 0.35                  // ours ≥ 0.35 × the minimal handler
	TargetPacedP99        = 25 * time.Millisecond // p99 at half of our max rate
	TargetBytesPerStream  = 30 << 10              // per idle SSE stream
	TargetFanOutP99       = 100 * time.Millisecond
)

// Config sets the size of every phase. Every loop is bounded by these counts
// and durations.
type Config struct {
	// Devices is how many devices (each with its own token) beat.
	Devices int
	// Concurrency is the number of requests in flight, and so of keep-alive
	// connections.
	Concurrency int
	// Duration is how long each measured run of phases (a) and (b) lasts;
	// Warmup runs before each measured run of (a) and is not counted.
	Duration, Warmup time.Duration
	// Rounds splits the Duration of phases (a) and (b) into alternating
	// rounds of the minimal handler and lastseend.
	Rounds int
	// BatchSize is the number of beats per request.
	BatchSize int
	// Streams is the number of idle SSE streams of phase (c).
	Streams int
	// Subscribers and Changes size phase (d); ChangeTimeout bounds how long
	// one change may take to reach every subscriber.
	Subscribers   int
	Changes       int
	ChangeTimeout time.Duration
	// Phases is a subset of "abcdp". (b) needs (a)'s rate; without (a) it
	// uses PacedRate. (p) needs the PostgreSQL server binaries (see pgtest)
	// and is not in the default set.
	Phases    string
	PacedRate float64
	// minimalMax is phase (a)'s rate of the minimal handler, for (b)'s
	// reference at the same relative load.
	minimalMax float64
	// DeviceRate and UserRate are the service's per-token limits. The load
	// drives each device far faster than a real agent does, so they are
	// generous; they are reported so nobody mistakes them for production's.
	DeviceRate, UserRate httpapi.Rate
	// HeapProfile, when set, receives a heap profile taken while phase (c)'s
	// streams are open (set runtime.MemProfileRate early for a precise one).
	HeapProfile io.Writer
	// Dir, when set, keeps each run's database in a new directory under it;
	// by default it goes to a temporary directory that is removed.
	Dir string
	// Logger receives the service's log (warnings and up are enough).
	Logger *slog.Logger
	// Progress, when set, gets a line as each phase starts.
	Progress io.Writer
}

// DefaultConfig is a run of about a minute.
func DefaultConfig() Config {
	return Config{
		Devices:       200,
		Concurrency:   64,
		Duration:      10 * time.Second,
		Warmup:        time.Second,
		Rounds:        5,
		BatchSize:     1,
		Streams:       1000,
		Subscribers:   1000,
		Changes:       20,
		ChangeTimeout: 5 * time.Second,
		Phases:        "abcd",
		DeviceRate:    httpapi.Rate{PerSecond: 1e6, Burst: 1e6},
		UserRate:      httpapi.Rate{PerSecond: 1e6, Burst: 1e6},
	}
}

// Validate checks the sizes.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(c.Devices >= 1 && c.Devices <= 100000, "devices must be 1..100000")
	check(c.Concurrency >= 1 && c.Concurrency <= 4096, "concurrency must be 1..4096")
	check(c.Concurrency <= c.Devices, "concurrency must not exceed devices: one device's beats go out one at a time, in seq order")
	check(c.Duration > 0 && c.Duration <= time.Hour, "duration must be in (0, 1h]")
	check(c.Warmup >= 0 && c.Warmup <= time.Minute, "warmup must be in [0, 1m]")
	check(c.Rounds >= 1 && c.Rounds <= 100 && c.Duration/time.Duration(max(c.Rounds, 1)) >= 100*time.Millisecond, "rounds must be 1..100, each at least 100ms")
	check(c.BatchSize >= 1 && c.BatchSize <= 1000, "batch must be 1..1000")
	check(c.Streams >= 1 && c.Streams <= 50000, "streams must be 1..50000")
	check(c.Subscribers >= 1 && c.Subscribers <= 50000, "subscribers must be 1..50000")
	check(c.Changes >= 1 && c.Changes <= 10000, "changes must be 1..10000")
	check(c.ChangeTimeout > 0 && c.ChangeTimeout <= time.Minute, "change timeout must be in (0, 1m]")
	check(strings.Trim(c.Phases, "abcdp") == "" && c.Phases != "", `phases must be letters of "abcdp"`)
	check(strings.Contains(c.Phases, "a") || !strings.Contains(c.Phases, "b") || c.PacedRate > 0,
		"phase b without a needs a paced rate")
	check(c.DeviceRate.PerSecond > 0 && c.DeviceRate.Burst >= 1 && c.UserRate.PerSecond > 0 && c.UserRate.Burst >= 1,
		"rates must be positive with a burst of at least 1")
	return errors.Join(errs...)
}

func (c Config) has(phase byte) bool { return strings.IndexByte(c.Phases, phase) >= 0 }

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Run runs the phases and reports what it measured. ctx cancels the run.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// A fresh directory per run: the fleet's user would clash with a
	// previous run's. Under Dir it is kept for inspection.
	dir, err := os.MkdirTemp(c.Dir, "lastseen-load-")
	if err != nil {
		return nil, fmt.Errorf("database dir: %w", err)
	}
	if c.Dir == "" {
		defer os.RemoveAll(dir)
	}
	rep := &Report{Config: configView(c)}
	if c.Dir != "" {
		rep.Config.DB = filepath.Join(dir, "load.db")
	}

	svc, err := startService(dir, c)
	if err != nil {
		return nil, err
	}
	defer svc.close()
	fleet, err := newFleet(ctx, svc.store, c.Devices)
	if err != nil {
		return nil, err
	}

	if c.has('a') {
		c.progress("(a) max throughput: minimal handler, then lastseend, %s each", c.Duration)
		tp, err := runThroughput(ctx, c, svc, fleet)
		if err != nil {
			return rep, fmt.Errorf("phase a: %w", err)
		}
		rep.Throughput = tp
		c.PacedRate = tp.Ours.PerSecond / 2
		c.minimalMax = tp.Minimal.PerSecond
	}
	if c.has('b') {
		c.progress("(b) paced at %.0f beats/s for %s", c.PacedRate, c.Duration)
		p, err := runPaced(ctx, c, svc, fleet)
		if err != nil {
			return rep, fmt.Errorf("phase b: %w", err)
		}
		rep.Paced = p
	}
	if c.has('c') {
		c.progress("(c) memory of %d idle SSE streams", c.Streams)
		m, err := runIdleStreams(ctx, c, svc, fleet)
		if err != nil {
			return rep, fmt.Errorf("phase c: %w", err)
		}
		rep.IdleSSE = m
	}
	if c.has('d') {
		c.progress("(d) %d state changes to %d SSE subscribers", c.Changes, c.Subscribers)
		f, err := runFanOut(ctx, c, svc, fleet)
		if err != nil {
			return rep, fmt.Errorf("phase d: %w", err)
		}
		rep.FanOut = f
	}
	if c.has('p') {
		c.progress("(p) lastseend on PostgreSQL vs on SQLite, %s each", c.Duration)
		p, err := runStoreComparison(ctx, c, dir)
		if err != nil {
			return rep, fmt.Errorf("phase p: %w", err)
		}
		rep.Postgres = p
	}
	if err := svc.close(); err != nil {
		return rep, fmt.Errorf("close service: %w", err)
	}
	rep.judge()
	return rep, nil
}

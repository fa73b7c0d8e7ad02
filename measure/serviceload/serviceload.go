// Package serviceload measures the presence service from outside, as
// shipped: lastseend runs in a process of its own with its default
// settings (rate limits, durability, caps), on a database the load
// prepared, and is driven over loopback HTTP like agents would (one beat
// per request, thousands of devices, each with its own token). Beside it
// runs a bare handler, also in a process of its own, that decodes the same
// JSON and answers the same shape with nothing else to do: the yardstick.
// measure/cmd/lastseen-load is its command; nothing shipped links it.
//
//   - (a) ingest throughput at each concurrency, next to the bare handler
//     driven by the same client, and the ratio of the two;
//   - (b) latency when ingest is paced, open-loop, at half of that rate;
//   - (o) a flood at twice the max: the share refused with 503, latency,
//     the service's memory, and how soon after the flood it is back to
//     its paced latency;
//   - (c) memory per idle SSE stream, read from the service's RSS;
//   - (d) how long a state change takes to reach a thousand SSE subscribers;
//   - (e) the public status stream: memory per idle public stream and how
//     long a state change takes to reach a thousand public subscribers of
//     one handle;
//   - (p), on request, the same closed-loop ingest on PostgreSQL (a throwaway
//     cluster) and on SQLite, in alternating rounds, and their ratio; this
//     one runs the handler and stores in this process.
//
// Any setting a run changes from lastseend's defaults is passed as a flag
// and printed with the report.
package serviceload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
)

// Targets the service is held to.
const (
	TargetThroughputRatio = 0.45                  // ours ≥ 0.45 × the bare handler, at every concurrency
	TargetPacedP99        = 25 * time.Millisecond // p99 at half of our max rate
	TargetBytesPerStream  = 30 << 10              // per idle SSE stream
	TargetFanOutP99       = 100 * time.Millisecond
)

// Config sets the size of every phase. Every loop is bounded by these counts
// and durations.
type Config struct {
	// Lastseend is the service binary; empty builds it from this module
	// into the run's directory.
	Lastseend string
	// Devices is how many devices (each with its own token) beat; they are
	// spread two to a user.
	Devices int
	// Concurrencies are the numbers of requests in flight (keep-alive
	// connections) phase (a) measures at; phases (b) and (p) use the
	// largest.
	Concurrencies []int
	// Duration is how long each measured run of phases (a) and (b) lasts;
	// Warmup runs before each measured run of (a) and is not counted.
	Duration, Warmup time.Duration
	// Rounds splits the Duration of phases (a) and (b) into alternating
	// rounds of the bare handler and lastseend.
	Rounds int
	// BatchSize is the number of beats per request.
	BatchSize int
	// OverloadFactor × (a)'s max is the rate of phase (o)'s flood, which
	// lasts OverloadDuration from OverloadConns connections; the recovery
	// probe after it gives up after RecoveryTimeout.
	OverloadFactor   float64
	OverloadDuration time.Duration
	OverloadConns    int
	RecoveryTimeout  time.Duration
	// Streams is the number of idle SSE streams of phase (c).
	Streams int
	// Subscribers and Changes size phases (d) and (e); ChangeTimeout bounds
	// how long one change may take to reach every subscriber.
	Subscribers   int
	Changes       int
	ChangeTimeout time.Duration
	// Phases is a subset of "abocdep". (b) and (o) need (a)'s rate; without
	// (a) they use PacedRate (and twice it for the max). (p) needs the
	// PostgreSQL server binaries (see pgtest) and is not in the default set.
	Phases    string
	PacedRate float64
	// minimalMax is phase (a)'s rate of the bare handler at the largest
	// concurrency, for (b)'s reference at the same relative load.
	minimalMax float64
	// Sync, DeviceRate and UserRate, when set, change lastseend's
	// --sync, --device-rate and --user-rate; unset, it runs with its
	// defaults. Changed lists what a run changed.
	Sync                 string
	DeviceRate, UserRate httpapi.Rate
	// Dir, when set, keeps the run's database in a new directory under it;
	// by default it goes to a temporary directory that is removed.
	Dir string
	// Logger receives phase (p)'s in-process service log.
	Logger *slog.Logger
	// Progress, when set, gets a line as each phase starts.
	Progress io.Writer
}

// DefaultConfig is a run of about three minutes with lastseend's defaults.
func DefaultConfig() Config {
	return Config{
		Devices:          5000,
		Concurrencies:    []int{32, 64},
		Duration:         10 * time.Second,
		Warmup:           time.Second,
		Rounds:           5,
		BatchSize:        1,
		OverloadFactor:   2,
		OverloadDuration: 20 * time.Second,
		OverloadConns:    1024,
		RecoveryTimeout:  60 * time.Second,
		Streams:          1000,
		Subscribers:      1000,
		Changes:          20,
		ChangeTimeout:    5 * time.Second,
		Phases:           "abocde",
	}
}

// Changed lists the lastseend settings this run changes from the defaults
// (empty when it runs as shipped).
func (c Config) Changed() []string {
	var out []string
	if c.Sync != "" {
		out = append(out, "--sync "+c.Sync)
	}
	if c.DeviceRate != (httpapi.Rate{}) {
		out = append(out, "--device-rate "+rateArg(c.DeviceRate))
	}
	if c.UserRate != (httpapi.Rate{}) {
		out = append(out, "--user-rate "+rateArg(c.UserRate))
	}
	return out
}

func (c Config) maxConcurrency() int { return slices.Max(c.Concurrencies) }

// Validate checks the sizes.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(c.Devices >= 1 && c.Devices <= 100000, "devices must be 1..100000")
	check(len(c.Concurrencies) > 0, "at least one concurrency")
	for _, k := range c.Concurrencies {
		check(k >= 1 && k <= 4096, "concurrency must be 1..4096")
		check(k <= c.Devices, "concurrency must not exceed devices: one device's beats go out one at a time, in seq order")
	}
	check(c.Duration > 0 && c.Duration <= time.Hour, "duration must be in (0, 1h]")
	check(c.Warmup >= 0 && c.Warmup <= time.Minute, "warmup must be in [0, 1m]")
	check(c.Rounds >= 1 && c.Rounds <= 100 && c.Duration/time.Duration(max(c.Rounds, 1)) >= 100*time.Millisecond, "rounds must be 1..100, each at least 100ms")
	check(c.BatchSize >= 1 && c.BatchSize <= 1000, "batch must be 1..1000")
	check(c.OverloadFactor >= 1 && c.OverloadFactor <= 100, "overload factor must be 1..100")
	check(c.OverloadDuration > 0 && c.OverloadDuration <= time.Hour, "overload duration must be in (0, 1h]")
	check(c.OverloadConns >= 1 && c.OverloadConns <= 16384, "overload connections must be 1..16384")
	check(!c.has('o') || c.OverloadConns <= c.Devices, "overload connections must not exceed devices (each device has one request in flight at most)")
	check(c.RecoveryTimeout >= time.Second && c.RecoveryTimeout <= time.Hour, "recovery timeout must be in [1s, 1h]")
	check(c.Streams >= 1 && c.Streams <= 50000, "streams must be 1..50000")
	check(c.Subscribers >= 1 && c.Subscribers <= 50000, "subscribers must be 1..50000")
	check(c.Changes >= 1 && c.Changes <= 10000, "changes must be 1..10000")
	check(c.ChangeTimeout > 0 && c.ChangeTimeout <= time.Minute, "change timeout must be in (0, 1m]")
	check(strings.Trim(c.Phases, "abocdep") == "" && c.Phases != "", `phases must be letters of "abocdep"`)
	check(strings.Contains(c.Phases, "a") || !strings.ContainsAny(c.Phases, "bo") || c.PacedRate > 0,
		"phases b and o without a need a paced rate")
	check(c.Sync == "" || c.Sync == "full" || c.Sync == "normal", "sync must be full or normal")
	for _, r := range []httpapi.Rate{c.DeviceRate, c.UserRate} {
		check(r == (httpapi.Rate{}) || (r.PerSecond > 0 && r.Burst >= 1), "rates must be positive with a burst of at least 1")
	}
	return errors.Join(errs...)
}

func (c Config) has(phase byte) bool { return strings.IndexByte(c.Phases, phase) >= 0 }

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// streamUsers is how many users phases (c) and (d) spread their streams
// over: no user holds more than lastseend lets one hold.
func (c Config) streamUsers() int {
	per := httpapi.DefaultMaxStreamsPerUser
	return (max(c.Streams, c.Subscribers) + per - 1) / per
}

// Run runs the phases and reports what it measured. ctx cancels the run.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp(c.Dir, "lastseen-load-")
	if err != nil {
		return nil, fmt.Errorf("database dir: %w", err)
	}
	if c.Dir == "" {
		defer os.RemoveAll(dir)
	}
	rep := &Report{Config: configView(c)}
	_, rep.Config.DroppedEnv = childEnv()
	db := filepath.Join(dir, "load.db")
	if c.Dir != "" {
		rep.Config.DB = db
	}

	if strings.Trim(c.Phases, "p") != "" {
		if err := runOutside(ctx, &c, rep, db, dir); err != nil {
			return rep, err
		}
	}
	if c.has('p') {
		c.progress("(p) lastseend on PostgreSQL vs on SQLite, %s each (in this process)", c.Duration)
		p, err := runStoreComparison(ctx, c, dir)
		if err != nil {
			return rep, fmt.Errorf("phase p: %w", err)
		}
		rep.Postgres = p
	}
	rep.judge()
	return rep, nil
}

// runOutside runs the phases that drive lastseend in its own process.
func runOutside(ctx context.Context, c *Config, rep *Report, db, dir string) (err error) {
	bin := c.Lastseend
	if bin == "" {
		c.progress("building lastseend")
		if bin, err = buildLastseend(ctx, dir); err != nil {
			return err
		}
	}
	c.progress("registering %d devices", c.Devices)
	f, err := prepareFleet(ctx, db, c.Devices, c.streamUsers())
	if err != nil {
		return err
	}
	rep.Config.Users = len(f.users)
	svc, err := startLastseend(bin, db, *c)
	if err != nil {
		return err
	}
	defer svc.stop()
	rep.Config.ServeArgs = strings.Join(c.serveArgs("DB"), " ")

	if c.has('a') || c.has('b') {
		bare, err := startBare()
		if err != nil {
			return fmt.Errorf("bare server: %w", err)
		}
		err = runVersusBare(ctx, c, rep, bare, svc, f)
		if serr := bare.stop(); err == nil && serr != nil {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	if c.has('o') {
		maxRate := c.PacedRate * 2
		c.progress("(o) flood at %g× the max (%.0f beats/s) for %s from %d connections, then paced at %.0f beats/s until p99 ≤ %s",
			c.OverloadFactor, c.OverloadFactor*maxRate, c.OverloadDuration, c.OverloadConns, c.PacedRate, TargetPacedP99)
		o, err := runOverload(ctx, *c, svc, f, maxRate)
		if err != nil {
			return fmt.Errorf("phase o: %w", err)
		}
		rep.Overload = o
		if !o.Alive {
			return fmt.Errorf("phase o: lastseend died: %v", svc.exitError())
		}
	}
	if c.has('c') {
		c.progress("(c) memory of %d idle SSE streams (lastseend restarted)", c.Streams)
		if err := svc.restart(); err != nil {
			return fmt.Errorf("phase c: restart: %w", err)
		}
		m, err := runIdleStreams(ctx, *c, svc, f)
		if err != nil {
			return fmt.Errorf("phase c: %w", err)
		}
		rep.IdleSSE = m
	}
	if c.has('d') {
		c.progress("(d) %d state changes to %d SSE subscribers", c.Changes, c.Subscribers)
		fo, err := runFanOut(ctx, *c, svc, f)
		if err != nil {
			return fmt.Errorf("phase d: %w", err)
		}
		rep.FanOut = fo
	}
	if c.has('e') {
		c.progress("(e) %d public subscribers of one handle: memory, then %d state changes (lastseend restarted)", c.Subscribers, c.Changes)
		if err := svc.restart(); err != nil {
			return fmt.Errorf("phase e: restart: %w", err)
		}
		p, err := runPublic(ctx, *c, svc, f)
		if err != nil {
			return fmt.Errorf("phase e: %w", err)
		}
		rep.Public = p
	}
	if err := svc.stop(); err != nil {
		return fmt.Errorf("stop lastseend: %w", err)
	}
	return nil
}

// runVersusBare runs phases (a) and (b), which set c.PacedRate (half of
// lastseend's max at the largest concurrency) for the phases after them.
func runVersusBare(ctx context.Context, c *Config, rep *Report, bare *child, svc *lastseend, f *fleet) error {
	if c.has('a') {
		for _, k := range c.Concurrencies {
			c.progress("(a) max throughput at %d connections: bare handler and lastseend, %s each", k, c.Duration)
			tp, err := runThroughput(ctx, *c, k, bare, svc, f)
			if err != nil {
				return fmt.Errorf("phase a: %w", err)
			}
			rep.Throughput = append(rep.Throughput, tp)
			if k == c.maxConcurrency() {
				c.PacedRate = tp.Ours.PerSecond / 2
				c.minimalMax = tp.Minimal.PerSecond
			}
		}
		rep.Config.PacedRateOffered = c.PacedRate
	}
	if c.has('b') {
		c.progress("(b) paced at %.0f beats/s for %s", c.PacedRate, c.Duration)
		p, err := runPaced(ctx, *c, bare, svc, f)
		if err != nil {
			return fmt.Errorf("phase b: %w", err)
		}
		rep.Paced = p
	}
	return nil
}

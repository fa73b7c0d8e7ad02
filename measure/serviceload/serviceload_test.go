package serviceload

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
)

func TestMain(m *testing.M) {
	RunBareIfAsked() // the load starts this test binary again as its bare server
	os.Exit(m.Run())
}

// TestRunSmall runs every outside phase for real at toy sizes against the
// lastseend binary as shipped: the service takes every beat (no failure,
// no duplicate), refuses nothing it should take, survives the flood and
// delivers every change.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lastseend and drives it for several seconds")
	}
	c := DefaultConfig()
	// Enough devices that the shipped per-device limit (10/s, burst 60)
	// never binds in a run this short.
	c.Devices, c.Concurrencies = 300, []int{2, 4}
	c.Duration, c.Warmup, c.Rounds = 400*time.Millisecond, 50*time.Millisecond, 2
	c.OverloadDuration, c.OverloadConns, c.RecoveryTimeout = time.Second, 16, 20*time.Second
	c.Streams, c.Subscribers, c.Changes = 30, 30, 3
	c.Dir = t.TempDir()
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Throughput) != 2 {
		t.Fatalf("throughput = %+v", rep.Throughput)
	}
	for _, tp := range rep.Throughput {
		if tp.Ours.Beats == 0 || tp.Minimal.Beats == 0 || tp.Ours.Failed != 0 || tp.Minimal.Failed != 0 || tp.Ours.Duplicates != 0 || tp.Ratio <= 0 {
			t.Errorf("throughput at %d: %+v", tp.Concurrency, tp)
		}
	}
	if p := rep.Paced; p == nil || p.Stats.Failed != 0 || p.Stats.Beats == 0 || p.Stats.Duplicates != 0 || p.Minimal.Beats == 0 || p.MinimalOwnHalf == nil || p.MinimalOwnHalf.Beats == 0 {
		t.Fatalf("paced = %+v", p)
	}
	if o := rep.Overload; o == nil || !o.Alive || o.Answered == 0 || o.OK == 0 || o.Other != 0 || o.RSSBefore == 0 || o.RSSPeak() == 0 || len(o.Windows) == 0 {
		t.Fatalf("overload = %+v", o)
	}
	if m := rep.IdleSSE; m == nil || m.Streams != 30 || m.RSSTotal == 0 {
		t.Fatalf("idle streams = %+v", m)
	}
	if f := rep.FanOut; f == nil || f.Received != 3*30 || f.Missed != 0 || f.P99Ms <= 0 {
		t.Fatalf("fan-out = %+v", f)
	}
	if p := rep.Public; p == nil || p.Idle.Streams != 30 || p.Idle.RSSTotal == 0 || p.FanOut == nil || p.FanOut.Received != 3*30 || p.FanOut.Missed != 0 || p.Addrs != 2 {
		t.Fatalf("public = %+v, fan-out %+v", p, p.FanOut)
	}
	if len(rep.Targets) != 9 {
		t.Fatalf("targets = %+v", rep.Targets)
	}
	if len(rep.Config.Changed) != 0 || rep.Config.Users < 150 {
		t.Errorf("config = %+v", rep.Config)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	for _, want := range []string{"as shipped", "(a) max throughput at 2 connections", "(a) max throughput at 4 connections", "(b) paced", "(o) flood", "(c) 30 idle SSE streams", "(d) 3 state changes", "(e) 30 public subscribers", "targets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// What a run changes from lastseend's defaults is passed as flags and
// listed for the report, and nothing else is.
func TestChangedSettings(t *testing.T) {
	c := DefaultConfig()
	if got := c.Changed(); len(got) != 0 {
		t.Errorf("defaults change %v", got)
	}
	if got := strings.Join(c.serveArgs("x.db"), " "); got != "serve --addr 127.0.0.1:0 --db x.db" {
		t.Errorf("args %q", got)
	}
	c.Sync, c.DeviceRate = "normal", httpapi.Rate{PerSecond: 100, Burst: 200}
	if got := strings.Join(c.Changed(), ", "); got != "--sync normal, --device-rate 100/200" {
		t.Errorf("changed %q", got)
	}
	if got := strings.Join(c.serveArgs("x.db"), " "); got != "serve --addr 127.0.0.1:0 --db x.db --sync normal --device-rate 100/200" {
		t.Errorf("args %q", got)
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		pass []bool
	}{
		{
			name: "all met",
			rep: Report{
				Throughput: []*ThroughputResult{{Concurrency: 32, Ratio: 0.45}, {Concurrency: 64, Ratio: 0.5}},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 25}},
				Overload:   &OverloadResult{Alive: true, RSSPeak1: 100 << 20, RSSPeak2: 114 << 20, RecoveryS: 30},
				IdleSSE:    &IdleSSEResult{RSSBytes: 30 << 10, GoBytes: 40 << 10},
				FanOut:     &FanOutResult{Received: 100, lat: ramp(100, time.Millisecond)},
			},
			pass: []bool{true, true, true, true, true, true, true},
		},
		{
			name: "each just missed",
			rep: Report{
				Throughput: []*ThroughputResult{{Concurrency: 32, Ratio: 0.449}, {Concurrency: 64, Ratio: 0.449}},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 25.01}},
				Overload:   &OverloadResult{Alive: true, RSSPeak1: 100 << 20, RSSPeak2: 114<<20 + 1, RecoveryS: 30.5},
				IdleSSE:    &IdleSSEResult{RSSBytes: 30<<10 + 1},
				FanOut:     &FanOutResult{Received: 100, lat: ramp(100, 1020*time.Microsecond)},
			},
			pass: []bool{false, false, false, false, false, false, false},
		},
		{
			name: "failed requests fail the target whatever the speed",
			rep: Report{
				Throughput: []*ThroughputResult{{Ratio: 2, Ours: RunStats{Failed: 1}}},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 1, Failed: 1}},
			},
			pass: []bool{false, false},
		},
		{
			name: "a dead service, an odd failure or no recovery fail the flood",
			rep: Report{
				Overload: &OverloadResult{Alive: false, RecoveryS: -1},
			},
			pass: []bool{false, false},
		},
		{
			name: "an error other than 503 or 429 fails the flood",
			rep: Report{
				Overload: &OverloadResult{Alive: true, Other: 1, RecoveryS: 1},
			},
			pass: []bool{false, true},
		},
		{
			name: "a missed delivery fails the fan-out",
			rep: Report{
				FanOut: &FanOutResult{Received: 99, Missed: 1, lat: ramp(99, time.Microsecond)},
			},
			pass: []bool{false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rep
			if r.FanOut != nil {
				r.FanOut.finish(nil)
			}
			r.judge()
			if len(r.Targets) != len(tt.pass) {
				t.Fatalf("targets = %+v", r.Targets)
			}
			for i, want := range tt.pass {
				if r.Targets[i].Pass != want {
					t.Errorf("%s: pass = %v, want %v (got %v)", r.Targets[i].Name, r.Targets[i].Pass, want, r.Targets[i].Got)
				}
				if math.IsInf(r.Targets[i].Got, 0) || math.IsNaN(r.Targets[i].Got) {
					t.Errorf("%s: got %v, which JSON cannot carry", r.Targets[i].Name, r.Targets[i].Got)
				}
			}
			if r.Passed() != !contains(tt.pass, false) {
				t.Errorf("Passed() = %v", r.Passed())
			}
		})
	}
}

// ramp is n latencies step, 2·step, … n·step: its p99 is 0.99·n·step.
func ramp(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func contains(bs []bool, v bool) bool {
	for _, b := range bs {
		if b == v {
			return true
		}
	}
	return false
}

func TestQuantile(t *testing.T) {
	d := ramp(100, time.Millisecond)
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(d, tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing is not zero")
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Devices = 0 },
		func(c *Config) { c.Concurrencies = []int{32, c.Devices + 1} },
		func(c *Config) { c.Concurrencies = nil },
		func(c *Config) { c.Phases = "o" },
		func(c *Config) { c.Sync = "off" },
		func(c *Config) { c.OverloadConns = 0 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Rounds = 200 },
		func(c *Config) { c.Phases = "abx" },
		func(c *Config) { c.Phases = "b" },
		func(c *Config) { c.DeviceRate = httpapi.Rate{PerSecond: 1} },
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted: %+v", i, c)
		}
	}
}

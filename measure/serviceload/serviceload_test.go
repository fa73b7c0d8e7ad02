package serviceload

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs every phase for real at toy sizes: the service must
// take every beat (no failure, no duplicate) and deliver every change.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the service for a few seconds")
	}
	c := DefaultConfig()
	c.Devices, c.Concurrency = 8, 4
	c.Duration, c.Warmup, c.Rounds = 400*time.Millisecond, 50*time.Millisecond, 2
	c.Streams, c.Subscribers, c.Changes = 20, 20, 3
	c.Dir = t.TempDir()
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	tp := rep.Throughput
	if tp == nil || tp.Ours.Beats == 0 || tp.Minimal.Beats == 0 || tp.Ours.Failed != 0 || tp.Ours.Duplicates != 0 || tp.Ratio <= 0 {
		t.Fatalf("throughput = %+v", tp)
	}
	if p := rep.Paced; p == nil || p.Stats.Failed != 0 || p.Stats.Beats == 0 || p.Stats.Duplicates != 0 || p.Minimal.Beats == 0 || p.MinimalOwnHalf == nil || p.MinimalOwnHalf.Beats == 0 {
		t.Fatalf("paced = %+v", p)
	}
	if m := rep.IdleSSE; m == nil || m.Streams != 20 || m.GrossGoBytes <= 0 {
		t.Fatalf("idle streams = %+v", m)
	}
	if f := rep.FanOut; f == nil || f.Received != 3*20 || f.Missed != 0 || f.P99Ms <= 0 {
		t.Fatalf("fan-out = %+v", f)
	}
	if len(rep.Targets) != 4 {
		t.Fatalf("targets = %+v", rep.Targets)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.WriteText(&out)
	for _, want := range []string{"(a) max throughput", "(b) paced", "(c) 20 idle SSE streams", "(d) 3 state changes", "targets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
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
				Throughput: &ThroughputResult{Ratio: 0.35},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 25}},
				IdleSSE:    &IdleSSEResult{ServerGoBytes: 30 << 10, ServerRSSBytes: 20 << 10},
				FanOut:     &FanOutResult{Received: 100, lat: ramp(100, time.Millisecond)},
			},
			pass: []bool{true, true, true, true},
		},
		{
			name: "each just missed",
			rep: Report{
				Throughput: &ThroughputResult{Ratio: 0.349},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 25.01}},
				IdleSSE:    &IdleSSEResult{ServerGoBytes: 20 << 10, ServerRSSBytes: 30<<10 + 1},
				FanOut:     &FanOutResult{Received: 100, lat: ramp(100, 1020*time.Microsecond)},
			},
			pass: []bool{false, false, false, false},
		},
		{
			name: "failed requests fail the target whatever the speed",
			rep: Report{
				Throughput: &ThroughputResult{Ratio: 2, Ours: RunStats{Failed: 1}},
				Paced:      &PacedResult{Stats: RunStats{P99Ms: 1, Failed: 1}},
			},
			pass: []bool{false, false},
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
		func(c *Config) { c.Concurrency = c.Devices + 1 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Rounds = 200 },
		func(c *Config) { c.Phases = "abx" },
		func(c *Config) { c.Phases = "b" },
		func(c *Config) { c.DeviceRate.Burst = 0 },
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

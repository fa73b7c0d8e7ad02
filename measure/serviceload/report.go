package serviceload

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"time"
)

// Report is everything a run measured. Latencies are in milliseconds and
// memory in bytes so the JSON form reads without units.
type Report struct {
	Config     ConfigView        `json:"config"`
	Throughput *ThroughputResult `json:"throughput,omitempty"`
	Paced      *PacedResult      `json:"paced,omitempty"`
	IdleSSE    *IdleSSEResult    `json:"idle_sse,omitempty"`
	FanOut     *FanOutResult     `json:"fan_out,omitempty"`
	Postgres   *StoreComparison  `json:"postgres,omitempty"`
	Targets    []Target          `json:"targets"`
}

// ConfigView is the configuration as reported.
type ConfigView struct {
	Devices          int     `json:"devices"`
	Concurrency      int     `json:"concurrency"`
	DurationS        float64 `json:"duration_s"`
	WarmupS          float64 `json:"warmup_s"`
	Rounds           int     `json:"rounds"`
	BatchSize        int     `json:"batch_size"`
	Streams          int     `json:"streams"`
	Subscribers      int     `json:"subscribers"`
	Changes          int     `json:"changes"`
	DeviceRatePerS   float64 `json:"device_rate_per_s"`
	DeviceRateBurst  int     `json:"device_rate_burst"`
	UserRatePerS     float64 `json:"user_rate_per_s"`
	UserRateBurst    int     `json:"user_rate_burst"`
	GOMAXPROCS       int     `json:"gomaxprocs"`
	Phases           string  `json:"phases"`
	PacedRateOffered float64 `json:"paced_rate,omitempty"`
	DB               string  `json:"db,omitempty"` // kept database, with --dir
}

func configView(c Config) ConfigView {
	return ConfigView{
		Devices: c.Devices, Concurrency: c.Concurrency,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), Rounds: c.Rounds, BatchSize: c.BatchSize,
		Streams: c.Streams, Subscribers: c.Subscribers, Changes: c.Changes,
		DeviceRatePerS: c.DeviceRate.PerSecond, DeviceRateBurst: c.DeviceRate.Burst,
		UserRatePerS: c.UserRate.PerSecond, UserRateBurst: c.UserRate.Burst,
		GOMAXPROCS: gomaxprocs(), Phases: c.Phases, PacedRateOffered: c.PacedRate,
	}
}

// RunStats summarises one run of requests.
type RunStats struct {
	Requests   int64   `json:"requests"`
	Failed     int64   `json:"failed"`
	Beats      int64   `json:"beats"`
	Duplicates int64   `json:"duplicates"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"beats_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func statsOf(t *tally, elapsed time.Duration) RunStats {
	slices.Sort(t.lat)
	return RunStats{
		Requests: t.ok + t.failed, Failed: t.failed, Beats: t.beats, Duplicates: t.duplicates,
		Seconds:   elapsed.Seconds(),
		PerSecond: float64(t.beats) / elapsed.Seconds(),
		P50Ms:     ms(quantile(t.lat, 0.50)), P99Ms: ms(quantile(t.lat, 0.99)), MaxMs: ms(quantile(t.lat, 1)),
		FirstError: t.firstErr,
	}
}

// ThroughputResult is phase (a).
type ThroughputResult struct {
	Minimal RunStats `json:"minimal"`
	Ours    RunStats `json:"lastseend"`
	Ratio   float64  `json:"ratio"`
}

// PacedResult is phase (b). Minimal is the minimal handler paced alike,
// the reference for the tail the machine itself adds.
type PacedResult struct {
	Offered float64  `json:"offered_beats_per_s"`
	Stats   RunStats `json:"lastseend"`
	Minimal RunStats `json:"minimal"`
	// MinimalOwnHalf is the minimal handler paced at half of its own max
	// (MinimalOwnHalfRate): what the same relative load costs any handler
	// here. Set when phase (a) ran.
	MinimalOwnHalf     *RunStats `json:"minimal_own_half,omitempty"`
	MinimalOwnHalfRate float64   `json:"minimal_own_half_rate,omitempty"`
}

// IdleSSEResult is phase (c). Gross is the whole process's growth per
// stream; Client is the measured cost of a bare loopback socket (half a
// connection pair), the only thing the client keeps per stream; Server is
// the difference.
type IdleSSEResult struct {
	Streams      int     `json:"streams"`
	GrossGoBytes float64 `json:"gross_go_bytes"`
	// GrossStackBytes is the goroutine-stack part of GrossGoBytes.
	GrossStackBytes float64 `json:"gross_stack_bytes"`
	GrossRSSBytes   float64 `json:"gross_rss_bytes"`
	ClientGoBytes   float64 `json:"client_go_bytes"`
	ClientRSSBytes  float64 `json:"client_rss_bytes"`
	ServerGoBytes   float64 `json:"server_go_bytes"`
	ServerRSSBytes  float64 `json:"server_rss_bytes"`
	Goroutines      int     `json:"goroutines"`
}

// ServerBytes is the figure judged: the larger of the Go-heap-and-stacks
// and the RSS estimates, so neither an allocator's slack nor a page not yet
// returned to the OS flatters the result.
func (r IdleSSEResult) ServerBytes() float64 { return math.Max(r.ServerGoBytes, r.ServerRSSBytes) }

// FanOutResult is phase (d). Latency runs from the moment the beat was sent
// to the moment a subscriber had read the whole event.
type FanOutResult struct {
	Subscribers int     `json:"subscribers"`
	Changes     int     `json:"changes"`
	Received    int     `json:"received"`
	Missed      int     `json:"missed"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	CommitP50Ms float64 `json:"post_p50_ms"` // the POST's own answer time
	CommitMaxMs float64 `json:"post_max_ms"`

	lat []time.Duration
}

func (r *FanOutResult) finish(commit []time.Duration) {
	slices.Sort(r.lat)
	slices.Sort(commit)
	r.Received = len(r.lat)
	r.P50Ms, r.P99Ms, r.MaxMs = ms(quantile(r.lat, .5)), ms(quantile(r.lat, .99)), ms(quantile(r.lat, 1))
	r.CommitP50Ms, r.CommitMaxMs = ms(quantile(commit, .5)), ms(quantile(commit, 1))
}

// p99 counts a missed delivery as infinitely late: a change that never
// arrived cannot pass the latency target.
func (r *FanOutResult) p99() float64 {
	total := r.Received + r.Missed
	if total == 0 {
		return math.Inf(1)
	}
	idx := int(math.Ceil(0.99*float64(total))) - 1
	if idx >= len(r.lat) {
		return math.Inf(1)
	}
	return ms(r.lat[idx])
}

// Target is one goal and how the run did against it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Pass bool    `json:"pass"`
}

func (r *Report) judge() {
	r.Targets = nil
	if t := r.Throughput; t != nil {
		ok := t.Ratio >= TargetThroughputRatio && t.Ours.Failed == 0
		r.Targets = append(r.Targets, Target{"throughput vs minimal net/http", fmt.Sprintf("≥ %.2f×, no failed request", TargetThroughputRatio), t.Ratio, "×", ok})
	}
	if p := r.Paced; p != nil {
		ok := p.Stats.P99Ms <= ms(TargetPacedP99) && p.Stats.Failed == 0
		r.Targets = append(r.Targets, Target{"p99 at half the max rate", fmt.Sprintf("≤ %s, no failed request", TargetPacedP99), p.Stats.P99Ms, "ms", ok})
	}
	if m := r.IdleSSE; m != nil {
		r.Targets = append(r.Targets, Target{"memory per idle SSE stream", fmt.Sprintf("≤ %d KB", TargetBytesPerStream>>10), m.ServerBytes() / 1024, "KB", m.ServerBytes() <= TargetBytesPerStream})
	}
	if f := r.FanOut; f != nil {
		p := f.p99()
		ok := p <= ms(TargetFanOutP99) && f.Missed == 0
		if math.IsInf(p, 1) {
			p = f.MaxMs // JSON has no infinity; the missed count already fails it
		}
		r.Targets = append(r.Targets, Target{fmt.Sprintf("p99 state change to %d subscribers", f.Subscribers), fmt.Sprintf("≤ %s, none missed", TargetFanOutP99), p, "ms", ok})
	}
	if p := r.Postgres; p != nil {
		r.Targets = append(r.Targets, p.target())
	}
}

// Passed reports whether every target was met.
func (r *Report) Passed() bool {
	for _, t := range r.Targets {
		if !t.Pass {
			return false
		}
	}
	return true
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "lastseen-load: %d devices, %d in flight, %gs per run (+%gs warm-up), %d beat(s) per request, GOMAXPROCS %d\n",
		c.Devices, c.Concurrency, c.DurationS, c.WarmupS, c.BatchSize, c.GOMAXPROCS)
	fmt.Fprintf(w, "service limits for this load: device rate %g/s burst %d, user rate %g/s burst %d (per token; production defaults are far lower)\n\n",
		c.DeviceRatePerS, c.DeviceRateBurst, c.UserRatePerS, c.UserRateBurst)
	run := func(name string, s RunStats) {
		fmt.Fprintf(w, "    %-22s %9.0f beats/s   p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms   (%d requests, %d failed",
			name, s.PerSecond, s.P50Ms, s.P99Ms, s.MaxMs, s.Requests, s.Failed)
		if s.Duplicates > 0 {
			fmt.Fprintf(w, ", %d duplicates", s.Duplicates)
		}
		fmt.Fprint(w, ")\n")
		if s.FirstError != "" {
			fmt.Fprintf(w, "    %-22s first error: %s\n", "", s.FirstError)
		}
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "(a) max throughput, closed loop, %d alternating rounds\n", c.Rounds)
		run("minimal net/http", t.Minimal)
		run("lastseend", t.Ours)
		fmt.Fprintf(w, "    ratio lastseend/minimal: %.2f\n\n", t.Ratio)
	}
	if p := r.Paced; p != nil {
		fmt.Fprintf(w, "(b) paced open-loop at %.0f beats/s, half of lastseend's max, %d alternating rounds (latency from each request's due time)\n", p.Offered, c.Rounds)
		run("minimal net/http", p.Minimal)
		run("lastseend", p.Stats)
		if o := p.MinimalOwnHalf; o != nil {
			fmt.Fprintf(w, "    reference: the minimal handler at half of its own max (%.0f beats/s), the same relative load:\n", p.MinimalOwnHalfRate)
			run("minimal net/http", *o)
		}
		fmt.Fprintln(w)
	}
	if m := r.IdleSSE; m != nil {
		fmt.Fprintf(w, "(c) %d idle SSE streams, per stream\n", m.Streams)
		fmt.Fprintf(w, "    process growth       Go heap+stacks %6.1f KB   RSS %6.1f KB   (of which goroutine stacks %.1f KB)\n", m.GrossGoBytes/1024, m.GrossRSSBytes/1024, m.GrossStackBytes/1024)
		fmt.Fprintf(w, "    client raw socket    Go heap+stacks %6.1f KB   RSS %6.1f KB   (half of a measured idle connection pair)\n", m.ClientGoBytes/1024, m.ClientRSSBytes/1024)
		fmt.Fprintf(w, "    server               Go heap+stacks %6.1f KB   RSS %6.1f KB\n\n", m.ServerGoBytes/1024, m.ServerRSSBytes/1024)
	}
	if f := r.FanOut; f != nil {
		fmt.Fprintf(w, "(d) %d state changes to %d SSE subscribers (from sending the beat to each subscriber reading the event)\n", f.Changes, f.Subscribers)
		fmt.Fprintf(w, "    delivered %d, missed %d   p50 %.2f ms   p99 %.2f ms   max %.2f ms   (the POST itself: p50 %.2f ms, max %.2f ms)\n\n",
			f.Received, f.Missed, f.P50Ms, f.P99Ms, f.MaxMs, f.CommitP50Ms, f.CommitMaxMs)
	}
	if p := r.Postgres; p != nil {
		p.writeText(w, c.Rounds, run)
	}
	fmt.Fprintln(w, "targets")
	for _, t := range r.Targets {
		verdict := "PASS"
		if !t.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "    %s  %-42s %10.2f %-3s (want %s)\n", verdict, t.Name, t.Got, t.Unit, t.Want)
	}
}

// quantile of sorted durations (nearest rank); zero for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

package serviceload

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is everything a run measured. Latencies are in milliseconds and
// memory in bytes so the JSON form reads without units.
type Report struct {
	Config     ConfigView          `json:"config"`
	Throughput []*ThroughputResult `json:"throughput,omitempty"`
	Paced      *PacedResult        `json:"paced,omitempty"`
	Overload   *OverloadResult     `json:"overload,omitempty"`
	IdleSSE    *IdleSSEResult      `json:"idle_sse,omitempty"`
	FanOut     *FanOutResult       `json:"fan_out,omitempty"`
	Public     *PublicResult       `json:"public,omitempty"`
	Postgres   *StoreComparison    `json:"postgres,omitempty"`
	Targets    []Target            `json:"targets"`
}

// ConfigView is the configuration as reported.
type ConfigView struct {
	Devices          int     `json:"devices"`
	Users            int     `json:"users"`
	Concurrencies    []int   `json:"concurrencies"`
	DurationS        float64 `json:"duration_s"`
	WarmupS          float64 `json:"warmup_s"`
	Rounds           int     `json:"rounds"`
	BatchSize        int     `json:"batch_size"`
	Streams          int     `json:"streams"`
	Subscribers      int     `json:"subscribers"`
	Changes          int     `json:"changes"`
	GOMAXPROCS       int     `json:"gomaxprocs"`
	Phases           string  `json:"phases"`
	PacedRateOffered float64 `json:"paced_rate,omitempty"`
	// ServeArgs is how lastseend was started (DB stands for the database);
	// Changed lists what it changes from lastseend's defaults, DroppedEnv
	// the LASTSEEN_* variables kept from it.
	ServeArgs  string   `json:"serve_args"`
	Changed    []string `json:"changed"`
	DroppedEnv []string `json:"dropped_env,omitempty"`
	DB         string   `json:"db,omitempty"` // kept database, with --dir
}

func configView(c Config) ConfigView {
	return ConfigView{
		Devices: c.Devices, Concurrencies: c.Concurrencies,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), Rounds: c.Rounds, BatchSize: c.BatchSize,
		Streams: c.Streams, Subscribers: c.Subscribers, Changes: c.Changes,
		GOMAXPROCS: gomaxprocs(), Phases: c.Phases, PacedRateOffered: c.PacedRate,
		Changed: append([]string{}, c.Changed()...),
	}
}

// RunStats summarises one run of requests.
type RunStats struct {
	Requests    int64   `json:"requests"`
	Failed      int64   `json:"failed"`
	Unavailable int64   `json:"unavailable"` // 503s, also in Failed
	Limited     int64   `json:"limited"`     // 429s, also in Failed
	Beats       int64   `json:"beats"`
	Duplicates  int64   `json:"duplicates"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"beats_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func statsOf(t *tally, elapsed time.Duration) RunStats {
	slices.Sort(t.lat)
	return RunStats{
		Requests: t.ok + t.failed, Failed: t.failed, Unavailable: t.unavailable, Limited: t.limited,
		Beats: t.beats, Duplicates: t.duplicates,
		Seconds:   elapsed.Seconds(),
		PerSecond: float64(t.beats) / elapsed.Seconds(),
		P50Ms:     ms(quantile(t.lat, 0.50)), P99Ms: ms(quantile(t.lat, 0.99)), MaxMs: ms(quantile(t.lat, 1)),
		FirstError: t.firstErr,
	}
}

// ThroughputResult is phase (a) at one concurrency. Minimal is the bare
// handler.
type ThroughputResult struct {
	Concurrency int         `json:"concurrency"`
	Writer      WriterStats `json:"writer"` // lastseend's group commits in the measured rounds
	Minimal     RunStats    `json:"bare"`
	Ours        RunStats    `json:"lastseend"`
	Ratio       float64     `json:"ratio"`
}

// PacedResult is phase (b). Minimal is the bare handler paced alike, the
// reference for the tail the machine itself adds.
type PacedResult struct {
	Offered float64  `json:"offered_beats_per_s"`
	Stats   RunStats `json:"lastseend"`
	Minimal RunStats `json:"bare"`
	// MinimalOwnHalf is the bare handler paced at half of its own max
	// (MinimalOwnHalfRate): what the same relative load costs any handler
	// here. Set when phase (a) ran.
	MinimalOwnHalf     *RunStats `json:"bare_own_half,omitempty"`
	MinimalOwnHalfRate float64   `json:"bare_own_half_rate,omitempty"`
}

// IdleSSEResult is phase (c), read from outside the service: RSSBytes is
// its resident set's growth per stream (the figure judged), GoBytes its Go
// heap and stacks in use per stream, from its /metrics (no collection
// forced: garbage not yet collected counts).
type IdleSSEResult struct {
	Streams  int     `json:"streams"`
	RSSBytes float64 `json:"rss_bytes"`
	GoBytes  float64 `json:"go_bytes"`
	RSSTotal uint64  `json:"rss_total"` // the service's RSS with the streams open
}

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
	for _, t := range r.Throughput {
		ok := t.Ratio >= TargetThroughputRatio && t.Ours.Failed == 0
		r.Targets = append(r.Targets, Target{fmt.Sprintf("throughput vs bare handler, %d conns", t.Concurrency), fmt.Sprintf("≥ %.2f×, no failed request", TargetThroughputRatio), t.Ratio, "×", ok})
	}
	if p := r.Paced; p != nil {
		ok := p.Stats.P99Ms <= ms(TargetPacedP99) && p.Stats.Failed == 0
		r.Targets = append(r.Targets, Target{"p99 at half the max rate", fmt.Sprintf("≤ %s, no failed request", TargetPacedP99), p.Stats.P99Ms, "ms", ok})
	}
	if o := r.Overload; o != nil {
		r.Targets = append(r.Targets,
			Target{"flood: RSS flat (2nd half over 1st)", fmt.Sprintf("≤ %.0f%%, alive, only 200/503/429", 100*TargetFlatGrowth), 100 * o.Growth(), "%", o.flat()},
			Target{"flood: back to paced p99", fmt.Sprintf("≤ %s", TargetRecovery), o.RecoveryS, "s",
				o.RecoveryS >= 0 && o.RecoveryS <= TargetRecovery.Seconds()})
	}
	if m := r.IdleSSE; m != nil {
		r.Targets = append(r.Targets, Target{"RSS per idle SSE stream", fmt.Sprintf("≤ %d KB", TargetBytesPerStream>>10), m.RSSBytes / 1024, "KB", m.RSSBytes <= TargetBytesPerStream})
	}
	if f := r.FanOut; f != nil {
		p := f.p99()
		ok := p <= ms(TargetFanOutP99) && f.Missed == 0
		if math.IsInf(p, 1) {
			p = f.MaxMs // JSON has no infinity; the missed count already fails it
		}
		r.Targets = append(r.Targets, Target{fmt.Sprintf("p99 state change to %d subscribers", f.Subscribers), fmt.Sprintf("≤ %s, none missed", TargetFanOutP99), p, "ms", ok})
	}
	if pub := r.Public; pub != nil {
		m, f := pub.Idle, pub.FanOut
		p := f.p99()
		ok := p <= ms(TargetFanOutP99) && f.Missed == 0
		if math.IsInf(p, 1) {
			p = f.MaxMs
		}
		r.Targets = append(r.Targets,
			Target{"RSS per idle public stream", fmt.Sprintf("≤ %d KB", TargetBytesPerPublicStream>>10), m.RSSBytes / 1024, "KB", m.RSSBytes <= TargetBytesPerPublicStream},
			Target{fmt.Sprintf("p99 state change to %d public subscribers", f.Subscribers), fmt.Sprintf("≤ %s, none missed", TargetFanOutP99), p, "ms", ok})
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
	fmt.Fprintf(w, "lastseen-load: %d devices over %d users, %v connections, %gs per run (+%gs warm-up), %d beat(s) per request, GOMAXPROCS %d\n",
		c.Devices, c.Users, c.Concurrencies, c.DurationS, c.WarmupS, c.BatchSize, c.GOMAXPROCS)
	fmt.Fprintf(w, "service: lastseend %s\n", c.ServeArgs)
	if len(c.Changed) == 0 {
		fmt.Fprintln(w, "         as shipped: default rate limits, sync full, default caps (nothing changed)")
	} else {
		fmt.Fprintf(w, "         CHANGED from the defaults: %s\n", strings.Join(c.Changed, ", "))
	}
	if len(c.DroppedEnv) > 0 {
		fmt.Fprintf(w, "         (not passed on from the environment: %s)\n", strings.Join(c.DroppedEnv, ", "))
	}
	fmt.Fprintln(w)
	run := func(name string, s RunStats) {
		fmt.Fprintf(w, "    %-22s %9.0f beats/s   p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms   (%d requests, %d failed",
			name, s.PerSecond, s.P50Ms, s.P99Ms, s.MaxMs, s.Requests, s.Failed)
		if s.Unavailable+s.Limited > 0 {
			fmt.Fprintf(w, ": %d × 503, %d × 429", s.Unavailable, s.Limited)
		}
		if s.Duplicates > 0 {
			fmt.Fprintf(w, ", %d duplicates", s.Duplicates)
		}
		fmt.Fprint(w, ")\n")
		if s.FirstError != "" {
			fmt.Fprintf(w, "    %-22s first error: %s\n", "", s.FirstError)
		}
	}
	for _, t := range r.Throughput {
		fmt.Fprintf(w, "(a) max throughput at %d connections, closed loop, %d alternating rounds\n", t.Concurrency, c.Rounds)
		run("bare handler", t.Minimal)
		run("lastseend", t.Ours)
		if wr := t.Writer; wr.Commits > 0 {
			fmt.Fprintf(w, "    lastseend's writer: %d commits, %.1f beats each, %.2f ms each (disk sync included)\n", wr.Commits, wr.BeatsPerTx, wr.CommitMeanMs)
		}
		fmt.Fprintf(w, "    ratio lastseend/bare: %.2f\n\n", t.Ratio)
	}
	if p := r.Paced; p != nil {
		fmt.Fprintf(w, "(b) paced open-loop at %.0f beats/s, half of lastseend's max, %d alternating rounds (latency from each request's due time)\n", p.Offered, c.Rounds)
		run("bare handler", p.Minimal)
		run("lastseend", p.Stats)
		if o := p.MinimalOwnHalf; o != nil {
			fmt.Fprintf(w, "    reference: the bare handler at half of its own max (%.0f beats/s), the same relative load:\n", p.MinimalOwnHalfRate)
			run("bare handler", *o)
		}
		fmt.Fprintln(w)
	}
	if o := r.Overload; o != nil {
		fmt.Fprintf(w, "(o) flood at %g× the max: %.0f requests/s offered, %.0f/s sent, for %gs from %d connections\n", o.Factor, o.Offered, o.Sent, o.Seconds, o.Conns)
		fmt.Fprintf(w, "    answered %d: %d × 200, %d × 503 (%.1f%%), %d × 429, %d other failures\n",
			o.Answered, o.OK, o.Unavailable, 100*o.UnavailableShare, o.Limited, o.Other)
		if o.FirstOther != "" {
			fmt.Fprintf(w, "    first other failure: %s\n", o.FirstOther)
		}
		fmt.Fprintf(w, "    latency from sending: p50 %.2f ms   p99 %.2f ms   max %.2f ms   (the 200s alone: p99 %.2f ms)\n", o.P50Ms, o.P99Ms, o.MaxMs, o.OKP99Ms)
		fmt.Fprintf(w, "    lastseend RSS %.1f MiB before; peak %.1f MiB in the first half, %.1f MiB in the second; %.1f MiB after; Go heap in use %.1f → %.1f MiB; alive: %v\n",
			mib(o.RSSBefore), mib(o.RSSPeak1), mib(o.RSSPeak2), mib(o.RSSAfter), mib(o.HeapBefore), mib(o.HeapAfter), o.Alive)
		if o.RecoveryS >= 0 {
			fmt.Fprintf(w, "    paced at %.0f requests/s after the flood: p99 ≤ %s again %.0f s after it ended", o.ProbeRate, TargetPacedP99, o.RecoveryS)
		} else {
			fmt.Fprintf(w, "    paced at %.0f requests/s after the flood: p99 not back under %s", o.ProbeRate, TargetPacedP99)
		}
		fmt.Fprintf(w, " (p99 per second: %s)\n\n", joinMs(o.Windows))
	}
	if m := r.IdleSSE; m != nil {
		fmt.Fprintf(w, "(c) %d idle SSE streams on a fresh lastseend, per stream, read from outside\n", m.Streams)
		fmt.Fprintf(w, "    RSS %6.1f KB   Go heap+stacks %6.1f KB   (RSS with them open: %.1f MiB)\n\n", m.RSSBytes/1024, m.GoBytes/1024, mib(m.RSSTotal))
	}
	if f := r.FanOut; f != nil {
		fmt.Fprintf(w, "(d) %d state changes to %d SSE subscribers (from sending the beat to each subscriber reading the event)\n", f.Changes, f.Subscribers)
		fmt.Fprintf(w, "    delivered %d, missed %d   p50 %.2f ms   p99 %.2f ms   max %.2f ms   (the POST itself: p50 %.2f ms, max %.2f ms)\n\n",
			f.Received, f.Missed, f.P50Ms, f.P99Ms, f.MaxMs, f.CommitP50Ms, f.CommitMaxMs)
	}
	if pub := r.Public; pub != nil {
		m, f := pub.Idle, pub.FanOut
		fmt.Fprintf(w, "(e) %d public subscribers of %s (from %d client addresses) on a fresh lastseend\n", m.Streams, pub.Handle, pub.Addrs)
		fmt.Fprintf(w, "    idle, per stream: RSS %6.1f KB   Go heap+stacks %6.1f KB   (RSS with them open: %.1f MiB)\n", m.RSSBytes/1024, m.GoBytes/1024, mib(m.RSSTotal))
		fmt.Fprintf(w, "    %d state changes: delivered %d, missed %d   p50 %.2f ms   p99 %.2f ms   max %.2f ms   (the POST itself: p50 %.2f ms, max %.2f ms)\n\n",
			f.Changes, f.Received, f.Missed, f.P50Ms, f.P99Ms, f.MaxMs, f.CommitP50Ms, f.CommitMaxMs)
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

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func joinMs(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, " ")
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

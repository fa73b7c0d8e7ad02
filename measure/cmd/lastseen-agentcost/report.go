package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Targets are the agent's budget (DESIGN §1: an always-on tray agent must
// cost nearly nothing).
type Targets struct {
	RSSMiB     float64 `json:"rss_mib"`       // highest RSS in the window
	CPUPercent float64 `json:"cpu_percent"`   // of one core, averaged over the window
	Wakeups    float64 `json:"wakeups_per_s"` // context switches per second
}

// DefaultTargets: 25 MiB is half of what merely linking GTK and WebKit
// costs; 0.05 % of a core and two wakeups a second leave a laptop's CPU
// in its deep idle states.
var DefaultTargets = Targets{RSSMiB: 25, CPUPercent: 0.05, Wakeups: 2}

// Subject is one measured process.
type Subject struct {
	Name    string  `json:"name"`
	Binary  string  `json:"binary"`
	SizeMiB float64 `json:"binary_mib"`
	// Backends is what the agent logged it uses ("idle x11, lock
	// screensaver"); empty for the baseline.
	Backends string `json:"backends,omitempty"`
	// Tray is the bus name the tray registered from, for the tray run.
	Tray string `json:"tray,omitempty"`
	Cost Cost   `json:"cost"`
	// Trace is the wake bursts strace counted; nil when not traced.
	Trace *Trace `json:"trace,omitempty"`
}

// Verdict is one target checked against one agent run.
type Verdict struct {
	Subject string  `json:"subject"`
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	Pass    bool    `json:"pass"`
}

// Report is the whole measurement.
type Report struct {
	WindowS    float64   `json:"window_s"` // measured seconds, warm-up excluded
	WarmupS    float64   `json:"warmup_s"`
	SampleS    float64   `json:"sample_s"`
	CPUs       int       `json:"cpus"`
	ClockTicks uint64    `json:"clock_ticks_per_s"`
	Targets    Targets   `json:"targets"`
	Env        []string  `json:"env,omitempty"` // added to every process's environment
	Baseline   Subject   `json:"baseline"`
	Agents     []Subject `json:"agents"`
	// Links lists the agent's shared libraries; GUILinks the ones that
	// are GTK or WebKit (must be empty).
	Links    []string  `json:"links"`
	GUILinks []string  `json:"gui_links"`
	Verdicts []Verdict `json:"verdicts"`
	Passed   bool      `json:"passed"`
	// TraceNote says why wake bursts were not counted ("" when they were).
	TraceNote string `json:"trace_note,omitempty"`
}

// judge fills Verdicts and Passed from the agents' costs and the links.
func (r *Report) judge() {
	r.Verdicts = nil
	r.Passed = len(r.GUILinks) == 0
	for _, a := range r.Agents {
		for _, v := range []Verdict{
			{Metric: "rss_max_mib", Value: a.Cost.RSSMaxMiB, Limit: r.Targets.RSSMiB},
			{Metric: "cpu_percent", Value: a.Cost.CPUPercent, Limit: r.Targets.CPUPercent},
			{Metric: "wakeups_per_s", Value: a.Cost.Wakeups, Limit: r.Targets.Wakeups},
		} {
			r.add(a.Name, v)
		}
		if a.Trace != nil {
			r.add(a.Name, Verdict{Metric: "wake_bursts_per_s", Value: a.Trace.BurstsPerS, Limit: r.Targets.Wakeups})
		}
	}
}

func (r *Report) add(subject string, v Verdict) {
	v.Subject = subject
	v.Pass = v.Value <= v.Limit
	r.Passed = r.Passed && v.Pass
	r.Verdicts = append(r.Verdicts, v)
}

func (r *Report) verdict(subject, metric string) string {
	for _, v := range r.Verdicts {
		if v.Subject == subject && v.Metric == metric {
			if v.Pass {
				return "PASS"
			}
			return "FAIL"
		}
	}
	return ""
}

// ratio renders a/b as "×n.n"; a zero baseline has no ratio.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("×%.0f", r)
	case r >= 10:
		return fmt.Sprintf("×%.1f", r)
	default:
		return fmt.Sprintf("×%.2f", r)
	}
}

// WriteText prints the report as a table: each agent run beside the
// baseline that ran at the same time, its ratio to it and the verdict.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "lastseen-agent cost: %.0f s measured after a %.0f s warm-up, sampled every %gs; %d CPUs, %d clock ticks/s\n",
		r.WindowS, r.WarmupS, r.SampleS, r.CPUs, r.ClockTicks)
	if len(r.Env) > 0 {
		fmt.Fprintf(w, "  environment of every process: %s\n", strings.Join(r.Env, " "))
	}
	for _, s := range append([]Subject{r.Baseline}, r.Agents...) {
		extra := ""
		if s.Backends != "" {
			extra += "; " + s.Backends
		}
		if s.Tray != "" {
			extra += "; tray registered as " + s.Tray
		}
		fmt.Fprintf(w, "  %-18s %s (%.1f MiB)%s\n", s.Name, s.Binary, s.SizeMiB, extra)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"metric\t", "target\t", "baseline\t"}
	for _, a := range r.Agents {
		head = append(head, a.Name+"\t", "÷ baseline\t", "\t")
	}
	fmt.Fprintln(tw, strings.Join(head, ""))
	type row struct {
		name, target, metric, format string
		get                          func(Cost) float64
	}
	t := r.Targets
	rows := []row{
		{"RSS max, MiB", fmt.Sprintf("≤ %g", t.RSSMiB), "rss_max_mib", "%.1f", func(c Cost) float64 { return c.RSSMaxMiB }},
		{"RSS final, MiB", "", "", "%.1f", func(c Cost) float64 { return c.RSSFinalMiB }},
		{"  of which anon (heap), MiB", "", "", "%.1f", func(c Cost) float64 { return c.AnonMiB }},
		{"  of which file (binary, libs), MiB", "", "", "%.1f", func(c Cost) float64 { return c.FileMiB }},
		{"PSS max, MiB", "", "", "%.1f", func(c Cost) float64 { return c.PSSMaxMiB }},
		{"PSS final, MiB", "", "", "%.1f", func(c Cost) float64 { return c.PSSFinalMiB }},
		{"RSS peak since start, MiB", "", "", "%.1f", func(c Cost) float64 { return c.PeakMiB }},
		{"CPU, % of a core (ticks)", fmt.Sprintf("≤ %g", t.CPUPercent), "cpu_percent", "%.4f", func(c Cost) float64 { return c.CPUPercent }},
		{"CPU ticks in window", "", "", "%.0f", func(c Cost) float64 { return float64(c.CPUTicks) }},
		{"CPU, % of a core (schedstat)", "", "", "%.4f", func(c Cost) float64 { return c.CPUPercentNs }},
		{"wakeups/s (context switches)", fmt.Sprintf("≤ %g", t.Wakeups), "wakeups_per_s", "%.2f", func(c Cost) float64 { return c.Wakeups }},
		{"  voluntary/s", "", "", "%.2f", func(c Cost) float64 { return c.Voluntary }},
		{"  involuntary/s", "", "", "%.2f", func(c Cost) float64 { return c.Involuntary }},
		{"threads", "", "", "%.0f", func(c Cost) float64 { return float64(c.Threads) }},
	}
	for _, rw := range rows {
		base := rw.get(r.Baseline.Cost)
		cells := []string{rw.name + "\t", rw.target + "\t", fmt.Sprintf(rw.format, base) + "\t"}
		for _, a := range r.Agents {
			v := rw.get(a.Cost)
			cells = append(cells, fmt.Sprintf(rw.format, v)+"\t", ratio(v, base)+"\t", r.verdict(a.Name, rw.metric)+"\t")
		}
		fmt.Fprintln(tw, strings.Join(cells, ""))
	}
	if r.Baseline.Trace != nil {
		tr := r.Baseline.Trace
		cells := []string{fmt.Sprintf("wake bursts/s (strace, %.0f s)\t", tr.WindowS), fmt.Sprintf("≤ %g\t", t.Wakeups), fmt.Sprintf("%.2f\t", tr.BurstsPerS)}
		for _, a := range r.Agents {
			if a.Trace == nil {
				cells = append(cells, "–\t", "\t", "\t")
				continue
			}
			cells = append(cells, fmt.Sprintf("%.2f\t", a.Trace.BurstsPerS), ratio(a.Trace.BurstsPerS, tr.BurstsPerS)+"\t", r.verdict(a.Name, "wake_bursts_per_s")+"\t")
		}
		fmt.Fprintln(tw, strings.Join(cells, ""))
		cells = []string{"  traced syscalls/s\t", "\t", fmt.Sprintf("%.1f\t", float64(tr.Syscalls)/tr.WindowS)}
		for _, a := range r.Agents {
			if a.Trace == nil {
				cells = append(cells, "–\t", "\t", "\t")
				continue
			}
			v := float64(a.Trace.Syscalls) / a.Trace.WindowS
			cells = append(cells, fmt.Sprintf("%.1f\t", v), ratio(v, float64(tr.Syscalls)/tr.WindowS)+"\t", "\t")
		}
		fmt.Fprintln(tw, strings.Join(cells, ""))
		cells = []string{"  syncs/s (fsync, fdatasync)\t", "\t", fmt.Sprintf("%.2f\t", tr.SyncsPerS)}
		for _, a := range r.Agents {
			if a.Trace == nil {
				cells = append(cells, "–\t", "\t", "\t")
				continue
			}
			cells = append(cells, fmt.Sprintf("%.2f\t", a.Trace.SyncsPerS), "\t", "\t")
		}
		fmt.Fprintln(tw, strings.Join(cells, ""))
	}
	sizes := []string{"binary, MiB\t", "\t", fmt.Sprintf("%.1f\t", r.Baseline.SizeMiB)}
	for _, a := range r.Agents {
		sizes = append(sizes, fmt.Sprintf("%.1f\t", a.SizeMiB), ratio(a.SizeMiB, r.Baseline.SizeMiB)+"\t", "\t")
	}
	fmt.Fprintln(tw, strings.Join(sizes, ""))
	tw.Flush()
	fmt.Fprintln(w)

	links := "statically linked"
	if len(r.Links) > 0 {
		links = strings.Join(r.Links, " ")
	}
	if len(r.GUILinks) == 0 {
		fmt.Fprintf(w, "agent links %s: no libwebkit, no libgtk: PASS\n", links)
	} else {
		fmt.Fprintf(w, "agent links %s: links %s: FAIL\n", links, strings.Join(r.GUILinks, " "))
	}
	if r.WindowS > 0 && r.ClockTicks > 0 {
		fmt.Fprintf(w, "CPU from clock ticks moves in steps of one tick = %.4f %% of a core over this window; the schedstat row is exact.\n",
			100/float64(r.ClockTicks)/r.WindowS)
	}
	fmt.Fprintln(w, "wakeups are counted as context switches (voluntary + involuntary, summed over /proc/PID/task/*/status):")
	fmt.Fprintln(w, "a thread that sleeps, wakes and sleeps again makes one voluntary switch, so this counts its wakeups, plus preemptions.")
	if r.Baseline.Trace != nil {
		fmt.Fprintln(w, "wake bursts are counted under strace after the window: sleeping and I/O syscalls of all threads less than 1 ms apart")
		fmt.Fprintln(w, "are one burst, i.e. one wakeup of the process however many threads it passes through.")
		fmt.Fprintln(w, "syncs are left out of the bursts; each blocks a thread on the disk, which adds switches (and splits a burst) without a wakeup.")
	} else if r.TraceNote != "" {
		fmt.Fprintln(w, r.TraceNote)
	}
	if r.Passed {
		fmt.Fprintln(w, "result: PASS")
	} else {
		var failed []string
		for _, v := range r.Verdicts {
			if !v.Pass {
				failed = append(failed, fmt.Sprintf("%s %s %.4g > %g", v.Subject, v.Metric, v.Value, v.Limit))
			}
		}
		if len(r.GUILinks) > 0 {
			failed = append(failed, "links a GUI toolkit")
		}
		fmt.Fprintf(w, "result: FAIL (%s)\n", strings.Join(failed, "; "))
	}
}

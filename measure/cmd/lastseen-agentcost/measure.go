package main

import "time"

// Cost is what one process cost over the measured window.
type Cost struct {
	RSSMaxMiB   float64 `json:"rss_max_mib"`   // highest VmRSS sampled in the window
	RSSFinalMiB float64 `json:"rss_final_mib"` // VmRSS at the end
	PSSMaxMiB   float64 `json:"pss_max_mib"`
	PSSFinalMiB float64 `json:"pss_final_mib"`
	AnonMiB     float64 `json:"anon_mib"` // final RSS that is private memory: heap, stacks, C allocations
	FileMiB     float64 `json:"file_mib"` // final RSS that is mapped files: the binary's pages, libraries
	PeakMiB     float64 `json:"peak_mib"` // VmHWM: the peak since exec, start-up included

	CPUTicks     uint64  `json:"cpu_ticks"`       // utime+stime in the window
	CPUPercent   float64 `json:"cpu_percent"`     // of one core, from the ticks
	CPUPercentNs float64 `json:"cpu_percent_ns"`  // of one core, from schedstat nanoseconds
	Wakeups      float64 `json:"wakeups_per_s"`   // context switches per second, all threads
	Voluntary    float64 `json:"voluntary_per_s"` // the part that is the process blocking
	Involuntary  float64 `json:"involuntary_per_s"`
	Threads      int     `json:"threads"`
}

// tracker turns a series of snapshots of one process into a Cost. It keeps
// every thread's last counters even after the thread is gone from
// /proc/PID/task, so a thread that exits mid-window still counts (up to its
// last sample) instead of making the sum go backwards.
type tracker struct {
	first   map[int]taskCounters
	last    map[int]taskCounters
	begin   snapshot
	end     snapshot
	maxRSS  uint64
	maxPSS  uint64
	started bool
}

// observe records a snapshot; the first one opens the window.
func (t *tracker) observe(s snapshot) {
	if !t.started {
		t.started = true
		t.begin = s
		t.first = make(map[int]taskCounters, len(s.Tasks))
		t.last = make(map[int]taskCounters, len(s.Tasks))
		for tid, c := range s.Tasks {
			t.first[tid] = c
		}
	}
	for tid, c := range s.Tasks {
		t.last[tid] = c
	}
	t.maxRSS = max(t.maxRSS, s.RSSKiB)
	t.maxPSS = max(t.maxPSS, s.PSSKiB)
	t.end = s
}

// cost reports the window between the first and the last snapshot, which
// lasted window; hz is the kernel's clock ticks per second.
func (t *tracker) cost(window time.Duration, hz uint64) Cost {
	const mib = 1024
	c := Cost{
		RSSMaxMiB:   float64(t.maxRSS) / mib,
		RSSFinalMiB: float64(t.end.RSSKiB) / mib,
		PSSMaxMiB:   float64(t.maxPSS) / mib,
		PSSFinalMiB: float64(t.end.PSSKiB) / mib,
		AnonMiB:     float64(t.end.AnonKiB) / mib,
		FileMiB:     float64(t.end.FileKiB) / mib,
		PeakMiB:     float64(t.end.HWMKiB) / mib,
		Threads:     t.end.Threads,
	}
	if t.end.CPUTicks >= t.begin.CPUTicks {
		c.CPUTicks = t.end.CPUTicks - t.begin.CPUTicks
	}
	var vol, invol, runNs uint64
	for tid, l := range t.last {
		f, ok := t.first[tid]
		// A thread born in the window counts from zero; so does a thread
		// id the kernel reused for a new thread (its counters restart).
		if !ok || l.Vol < f.Vol || l.Invol < f.Invol || l.RunNs < f.RunNs {
			f = taskCounters{}
		}
		vol += l.Vol - f.Vol
		invol += l.Invol - f.Invol
		runNs += l.RunNs - f.RunNs
	}
	sec := window.Seconds()
	if sec <= 0 || hz == 0 {
		return c
	}
	c.CPUPercent = float64(c.CPUTicks) / float64(hz) / sec * 100
	c.CPUPercentNs = float64(runNs) / 1e9 / sec * 100
	c.Voluntary = float64(vol) / sec
	c.Involuntary = float64(invol) / sec
	c.Wakeups = c.Voluntary + c.Involuntary
	return c
}

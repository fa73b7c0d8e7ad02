package main

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestTrackerCost(t *testing.T) {
	var tr tracker
	tr.observe(snapshot{CPUTicks: 100, RSSKiB: 10 * 1024, PSSKiB: 5 * 1024, Threads: 2, Tasks: map[int]taskCounters{
		1: {Vol: 10, Invol: 1, RunNs: 1e9},
		2: {Vol: 20, Invol: 0, RunNs: 2e9},
	}})
	// Thread 2 exits after this sample; thread 3 is born.
	tr.observe(snapshot{CPUTicks: 102, RSSKiB: 12 * 1024, PSSKiB: 6 * 1024, Threads: 2, Tasks: map[int]taskCounters{
		1: {Vol: 15, Invol: 1, RunNs: 1.01e9},
		2: {Vol: 25, Invol: 2, RunNs: 2.01e9},
	}})
	tr.observe(snapshot{CPUTicks: 103, RSSKiB: 11 * 1024, PSSKiB: 5.5 * 1024, HWMKiB: 13 * 1024,
		AnonKiB: 4 * 1024, FileKiB: 7 * 1024, Threads: 2, Tasks: map[int]taskCounters{
			1: {Vol: 20, Invol: 1, RunNs: 1.02e9},
			3: {Vol: 4, Invol: 1, RunNs: 0.01e9},
		}})
	c := tr.cost(10*time.Second, 100)

	// Switches: thread 1 +10, thread 2 +5+2 (kept after it exited),
	// thread 3 +5 from zero: 22 in 10 s.
	if !near(c.Wakeups, 2.2) || !near(c.Voluntary, 1.9) || !near(c.Involuntary, 0.3) {
		t.Errorf("wakeups %v (vol %v, invol %v), want 2.2 (1.9, 0.3)", c.Wakeups, c.Voluntary, c.Involuntary)
	}
	// CPU: 3 ticks of 10 ms in 10 s = 0.3 %; schedstat 0.02+0.01+0.01 s = 0.4 %.
	if c.CPUTicks != 3 || !near(c.CPUPercent, 0.3) || !near(c.CPUPercentNs, 0.4) {
		t.Errorf("cpu %d ticks %v %% (ns %v %%), want 3, 0.3, 0.4", c.CPUTicks, c.CPUPercent, c.CPUPercentNs)
	}
	if c.RSSMaxMiB != 12 || c.RSSFinalMiB != 11 || c.PSSMaxMiB != 6 || c.PSSFinalMiB != 5.5 || c.PeakMiB != 13 ||
		c.AnonMiB != 4 || c.FileMiB != 7 {
		t.Errorf("memory %+v", c)
	}
}

func TestTrackerReusedThreadID(t *testing.T) {
	var tr tracker
	tr.observe(snapshot{Tasks: map[int]taskCounters{5: {Vol: 100, RunNs: 100}}})
	// Id 5 now belongs to a new thread whose counters restarted.
	tr.observe(snapshot{Tasks: map[int]taskCounters{5: {Vol: 3, RunNs: 1}}})
	if c := tr.cost(time.Second, 100); !near(c.Voluntary, 3) {
		t.Fatalf("voluntary %v/s, want 3 (the new thread counted from zero)", c.Voluntary)
	}
}

func TestTrackerZeroWindow(t *testing.T) {
	var tr tracker
	tr.observe(snapshot{CPUTicks: 1, Tasks: map[int]taskCounters{1: {Vol: 1}}})
	c := tr.cost(0, 100)
	if c.CPUPercent != 0 || c.Wakeups != 0 || math.IsNaN(c.CPUPercentNs) {
		t.Fatalf("a zero window must report no rates: %+v", c)
	}
}

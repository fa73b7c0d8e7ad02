package main

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReadSnapshotSelf reads this very process from the real /proc: its own
// thread is among the tasks, and burning CPU shows up in both counters.
func TestReadSnapshotSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("needs /proc with smaps_rollup (Linux 4.14+)")
	}
	before, err := readSnapshot("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSSKiB == 0 || before.PSSKiB == 0 || before.Threads < 1 || before.AnonKiB+before.FileKiB == 0 {
		t.Fatalf("implausible snapshot %+v", before)
	}
	if _, ok := before.Tasks[syscall.Gettid()]; !ok {
		t.Fatalf("own thread %d missing from tasks %v", syscall.Gettid(), before.Tasks)
	}
	// The kernel's USER_HZ is 100 on every architecture Go supports on Linux
	// but alpha; reading it from the auxiliary vector must agree.
	if hz := clockTicks(); hz != 100 {
		t.Fatalf("clockTicks = %d, want 100", hz)
	}
	// Spin until the kernel has charged at least two ticks.
	deadline := time.Now().Add(5 * time.Second)
	var after snapshot
	for time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			_ = strconv.Itoa(i)
		}
		if after, err = readSnapshot("/proc", os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after.CPUTicks >= before.CPUTicks+2 {
			break
		}
	}
	var tr tracker
	tr.observe(before)
	tr.observe(after)
	c := tr.cost(time.Second, clockTicks())
	if c.CPUTicks < 2 || c.CPUPercentNs <= 0 {
		t.Fatalf("spinning cost nothing: %+v", c)
	}
}

//go:build unix

package sysinfo

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// ownCPU is this process's CPU time as the kernel counts it, read
// independently of gopsutil.
func ownCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSamplerSeesWork: CPU burnt between two samples shows in the second
// one's CPU time and percentage, and idleness in the one after. The machine
// may be shared, so the burn is measured in CPU time, not wall time.
func TestSamplerSeesWork(t *testing.T) {
	s := NewSampler(nil)
	ctx := context.Background()
	first, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start, deadline := ownCPU(t), time.Now().Add(10*time.Second)
	for ownCPU(t)-start < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("could not burn 200 ms of CPU in 10 s")
		}
	}
	busy, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := busy.CPUTime - first.CPUTime; d < 180*time.Millisecond {
		t.Errorf("CPU time rose by %v after burning 200 ms", d)
	}
	if want := cpuPercent(busy.CPUTime-first.CPUTime, busy.CPUWindow); busy.CPUPercent != want || want <= 1 {
		t.Errorf("CPUPercent = %.1f, want %.1f (and clearly above zero)", busy.CPUPercent, want)
	}
	time.Sleep(300 * time.Millisecond)
	quiet, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if quiet.CPUPercent >= busy.CPUPercent {
		t.Errorf("CPUPercent asleep %.1f, busy %.1f: want it lower", quiet.CPUPercent, busy.CPUPercent)
	}
	t.Logf("busy %.1f%% over %v, quiet %.1f%%, rss %d KiB", busy.CPUPercent, busy.CPUWindow.Round(time.Millisecond), quiet.CPUPercent, quiet.RSSBytes>>10)
}

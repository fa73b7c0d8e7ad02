package sysinfo

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestHostInfo(t *testing.T) {
	h, err := HostInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Hostname()
	if h.Hostname != want {
		t.Errorf("Hostname = %q, want %q", h.Hostname, want)
	}
	if h.OS != runtime.GOOS {
		t.Errorf("OS = %q, want %q", h.OS, runtime.GOOS)
	}
	if h.Platform == "" || h.Arch == "" {
		t.Errorf("Platform %q or Arch %q empty", h.Platform, h.Arch)
	}
	if h.BootTime.IsZero() || h.BootTime.After(time.Now()) {
		t.Errorf("BootTime = %v", h.BootTime)
	}
	f := h.Facts()
	if f.Hostname != h.Hostname || f.OS != h.OS || f.Platform == "" {
		t.Errorf("Facts = %+v from %+v", f, h)
	}
	t.Logf("facts: %+v", f)
}

func TestFactsPlatform(t *testing.T) {
	tests := []struct {
		h    Host
		want string
	}{
		{Host{Platform: "debian", PlatformVersion: "12.7"}, "debian 12.7"},
		{Host{Platform: "darwin"}, "darwin"},
		{Host{PlatformVersion: "10.0"}, "10.0"},
		{Host{}, ""},
	}
	for _, tt := range tests {
		if got := tt.h.Facts().Platform; got != tt.want {
			t.Errorf("Facts(%+v).Platform = %q, want %q", tt.h, got, tt.want)
		}
	}
}

func TestCPUPercent(t *testing.T) {
	tests := []struct {
		cpu, wall time.Duration
		want      float64
	}{
		{time.Second, 10 * time.Second, 10},
		{2 * time.Second, time.Second, 200}, // two cores
		{0, time.Second, 0},
		{time.Second, 0, 0},
		{time.Second, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := cpuPercent(tt.cpu, tt.wall); got != tt.want {
			t.Errorf("cpuPercent(%v, %v) = %v, want %v", tt.cpu, tt.wall, got, tt.want)
		}
	}
}

func TestSelf(t *testing.T) {
	st, err := Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != int32(os.Getpid()) {
		t.Errorf("PID = %d, want %d", st.PID, os.Getpid())
	}
	if st.RSSBytes < 1<<20 || st.RSSBytes > 4<<30 {
		t.Errorf("RSSBytes = %d, implausible", st.RSSBytes)
	}
	if st.Goroutines < 1 || st.Uptime <= 0 || st.CPUWindow <= 0 {
		t.Errorf("stats = %+v", st)
	}
	if runtime.GOOS == "linux" && st.Threads < 1 {
		t.Errorf("Threads = %d", st.Threads)
	}
}

func BenchmarkSample(b *testing.B) {
	s := NewSampler(nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
